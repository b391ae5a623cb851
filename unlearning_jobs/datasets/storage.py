"""Where a data-set version's records are stored, how they are read back, and how their ids are hashed.

The lowest part of the data-set stage: registration (``services``), indexing and the re-ingestion
guard all read records through these functions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied

from compliance import roles
from unlearning_jobs.engine.pii.readers import (
    DatasetFormatError,
    SourceRecord,
)
from unlearning_jobs.models import (
    DatasetRecord,
    DatasetVersion,
)

RECORDS_FILE = "records.jsonl"


MANIFEST_FILE = "manifest.jsonl"


class DatasetActionNotPermitted(PermissionDenied):
    """The actor's role does not allow this change to the registry."""


def dataset_version_folder(version: DatasetVersion) -> Path:
    """Return the folder of the version's canonical copy and manifest."""
    return Path(settings.LETHE_DATA_DIR) / version.stored_path


def version_relative_folder(dataset_id: int, number: int) -> str:
    return f"datasets/{dataset_id}/v{number}"


def dataset_version_records_read(
    *, version: DatasetVersion, start: int = 0, end: int | None = None
) -> list[SourceRecord]:
    """Return the records with ordinals ``start`` to ``end`` (excluded) from the stored copy.

    Records of a version lie in the copy in ordinal order, so a range is one contiguous read.
    """
    rows = list(
        DatasetRecord.objects.filter(
            version=version, ordinal__gte=start, **({"ordinal__lt": end} if end is not None else {})
        )
        .order_by("ordinal")
        .values_list("record_id", "line_no", "byte_offset", "byte_length")
    )
    if not rows:
        return []
    first, last = rows[0], rows[-1]
    path = dataset_version_folder(version) / RECORDS_FILE
    with path.open("rb") as handle:
        handle.seek(first[2])
        blob = handle.read(last[2] + last[3] - first[2])
    out = []
    for record_id, line_no, offset, length in rows:
        line = blob[offset - first[2] : offset - first[2] + length]
        stored = json.loads(line)
        if stored["id"] != record_id:
            raise DatasetFormatError(
                f"stored copy of {version} does not match its records at line {line_no}: "
                "the file was changed after registration"
            )
        out.append(SourceRecord(record_id=record_id, text=stored["text"], line_no=line_no))
    return out


def dataset_records_texts(records: Iterable[DatasetRecord]) -> dict[int, str]:
    """Return ``{DatasetRecord.pk: text}`` for ``records``, read from their versions' stored copies.

    Each text is checked against the SHA-256 taken at registration, so a copy edited on disk
    is noticed instead of shown or trained on.
    """
    by_version: dict[int, list[DatasetRecord]] = {}
    for record in records:
        by_version.setdefault(record.version_id, []).append(record)
    texts: dict[int, str] = {}
    # One query for all the versions, however many records and versions there are.
    versions = DatasetVersion.objects.select_related("dataset").in_bulk(list(by_version))
    for version_id, items in by_version.items():
        version = versions[version_id]
        path = dataset_version_folder(version) / RECORDS_FILE
        with path.open("rb") as handle:
            for record in sorted(items, key=lambda r: r.byte_offset):
                handle.seek(record.byte_offset)
                text = json.loads(handle.read(record.byte_length))["text"]
                if hashlib.sha256(text.encode("utf-8")).hexdigest() != record.text_sha256:
                    raise DatasetFormatError(
                        f"record {record.ordinal} of {version} differs from the text registered: "
                        "the stored copy was changed"
                    )
                texts[record.pk] = text
    return texts


def dataset_record_text(record: DatasetRecord) -> str:
    """Return one record's text from its version's stored copy."""
    return dataset_records_texts([record])[record.pk]


def dataset_version_iter_texts(
    *, version: DatasetVersion, records: Iterable[DatasetRecord] | None = None, batch: int = 2000
) -> Iterator[tuple[DatasetRecord, str]]:
    """Yield ``(record, text)`` in ordinal order, for all the version's records or those given.

    What training and unlearning jobs read: pass ``dataset_version_training_records(version)``
    to get only the records the re-ingestion guard lets through.
    """
    queryset = records if records is not None else version.records.all()
    if hasattr(queryset, "order_by"):
        queryset = queryset.order_by("ordinal")
        source = queryset.iterator(chunk_size=batch)
    else:
        source = iter(sorted(queryset, key=lambda r: r.ordinal))
    pending: list[DatasetRecord] = []
    for record in source:
        pending.append(record)
        if len(pending) >= batch:
            texts = dataset_records_texts(pending)
            yield from ((item, texts[item.pk]) for item in pending)
            pending = []
    if pending:
        texts = dataset_records_texts(pending)
        yield from ((item, texts[item.pk]) for item in pending)


def record_id_hash(record_id: str) -> str:
    """Return the keyed hash that names a record in audit events and reports.

    Content-derived ids embed a hash of the text and chosen ids may be meaningful, so neither
    goes into the audit log as it is.
    """
    message = f"RECORD:{record_id}".encode("utf-8")
    return hmac.new(bytes(settings.LETHE_PII_HASH_KEY), message, hashlib.sha256).hexdigest()


def record_id_visible(user) -> bool:
    """Return whether ``user`` sees records' own ids: officers (who review them) only.

    A content-derived id is the SHA-256 of the record's text, so whoever holds a guess of the
    text can confirm it; a chosen id may be meaningful. Everyone else sees ``record_id_hash``.
    """
    return roles.actor_may(user, roles.MANAGE_REQUESTS)


def record_id_for(record_id: str, user) -> str:
    """Return the record's id for an officer, ``#`` and the first 16 hex of its keyed hash for others."""
    return record_id if record_id_visible(user) else "#" + record_id_hash(record_id)[:16]
