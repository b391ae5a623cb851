"""The data-set registry: register a file as an immutable version, read its records back, derive versions.

Registration reads and checks every record before anything is written to the database: a bad
file (unreadable, empty, malformed, a missing text field, a duplicate id, too large, outside the
allowed folders) raises ``DatasetRegistrationError`` and leaves nothing behind. The records are
copied into a canonical JSON Lines file under ``LETHE_DATA_DIR/datasets/<id>/v<n>/``, written in
a temporary folder and renamed into place only with the database rows, so a version's text can
never change under its index. Indexing is ``unlearning_jobs.datasets.indexing``'s job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from compliance import roles
from compliance.audit import audit_event_record
from compliance.paths import NOT_ALLOWED, PathMissing, PathNotAllowed, confined_path
from compliance.text import LINE_CONTROLS, control_character_found
from unlearning_jobs.datasets import indexing, reingestion
from unlearning_jobs.datasets.storage import (
    MANIFEST_FILE,
    RECORDS_FILE,
    DatasetActionNotPermitted,
    dataset_version_folder,
    dataset_version_iter_texts,
    record_id_hash,
    version_relative_folder,
)
from unlearning_jobs.engine.pii.match_keys import finding_count_label
from unlearning_jobs.engine.pii.readers import (
    DatasetFormat,
    DatasetFormatError,
    SourceRecord,
    file_sha256,
    read_records,
)
from unlearning_jobs.models import (
    Dataset,
    DatasetRecord,
    DatasetVersion,
    DatasetVersionStatus,
    IndexChunk,
    IndexChunkStatus,
    PiiFinding,
)

logger = logging.getLogger(__name__)

MAX_RECORD_ID_LENGTH = 255
MAX_NAME_LENGTH = 200
_BULK = 5000


class DatasetRegistrationError(ValidationError):
    """The data set cannot be registered; ``message_dict`` names the field and the problem."""


@dataclass(frozen=True)
class _StagedRecord:
    record_id: str
    line_no: int
    byte_offset: int
    byte_length: int
    text_sha256: str
    text_length: int


@dataclass(frozen=True)
class _Staged:
    folder: Path
    records: list[_StagedRecord]
    manifest_sha256: str


# --- paths ------------------------------------------------------------------------------------


def dataset_source_path_check(path: str | Path, *, max_bytes: int | None = None) -> Path:
    """Return ``path`` resolved, or raise ``DatasetRegistrationError`` on "path".

    The path is confined to the allowed folders as written and again once its links are followed
    (``compliance.paths``), so neither ``..`` nor a link reaches files the operator did not offer,
    and a refusal says nothing about what exists elsewhere; it must be a readable regular file no
    larger than ``max_bytes`` (default ``LETHE_IMPORT_MAX_BYTES``).
    """
    if not str(path).strip():
        raise DatasetRegistrationError({"path": ["Give the path of the data-set file."]})
    if control_character_found(str(path)):
        raise DatasetRegistrationError({"path": ["The path holds a control character; remove it."]})
    raw = Path(path)
    try:
        resolved = confined_path(raw)
    except PathNotAllowed:
        raise DatasetRegistrationError(
            {
                "path": [
                    f"{NOT_ALLOWED} Data sets are registered from LETHE_DATA_DIR or a folder of LETHE_IMPORT_ROOTS "
                    "(docs/datasets.md)."
                ]
            }
        ) from None
    except PathMissing:
        raise DatasetRegistrationError({"path": [f"{raw.name}: no such file."]}) from None
    if not resolved.is_file():
        raise DatasetRegistrationError({"path": [f"{raw.name}: is not a regular file."]})
    if not os.access(resolved, os.R_OK):
        raise DatasetRegistrationError({"path": [f"{raw.name}: cannot be read (permission denied)."]})
    limit = settings.LETHE_IMPORT_MAX_BYTES if max_bytes is None else max_bytes
    size = resolved.stat().st_size
    if size > limit:
        raise DatasetRegistrationError(
            {"path": [f"{raw.name}: {size:,} bytes is over the limit of {limit:,} bytes."]}
        )
    return resolved


# --- reading back -----------------------------------------------------------------------------


# --- registration -----------------------------------------------------------------------------


def _actor_check(actor, permission: str = roles.OPERATE_JOBS) -> None:
    if not roles.actor_may(actor, permission, system=True):
        raise DatasetActionNotPermitted(f"{roles.actor_name(actor)} may not register or change data sets.")


def _text_fields(text_field: str | Sequence[str] | None) -> tuple[str, ...]:
    if text_field is None:
        return ("text",)
    if isinstance(text_field, str):
        fields = tuple(part.strip() for part in text_field.split(","))
    else:
        fields = tuple(str(part).strip() for part in text_field)
    if not fields or not all(fields):
        raise DatasetRegistrationError({"text_field": ["Name the field that holds the text."]})
    return fields


def _format_of(format: str | None) -> str | None:
    if not format:
        return None
    try:
        return DatasetFormat(str(format).strip().lower()).value
    except ValueError:
        raise DatasetRegistrationError(
            {
                "format": [
                    f"Unknown format {format!r}; use one of {', '.join(f.value for f in DatasetFormat)}."
                ]
            }
        ) from None


def _canonical_line(record_id: str, text: str) -> bytes:
    return (json.dumps({"id": record_id, "text": text}, ensure_ascii=False) + "\n").encode("utf-8")


def _stage_records(records: Iterable[SourceRecord], *, folder: Path) -> _Staged:
    """Write the canonical copy and manifest into ``folder``; return where each record lies."""
    staged: list[_StagedRecord] = []
    offset = 0
    with (folder / RECORDS_FILE).open("wb") as out:
        for record in records:
            if len(record.record_id) > MAX_RECORD_ID_LENGTH:
                raise DatasetFormatError(
                    f"line {record.line_no}: record id is {len(record.record_id)} characters long; "
                    f"at most {MAX_RECORD_ID_LENGTH} are accepted"
                )
            line = _canonical_line(record.record_id, record.text)
            out.write(line)
            staged.append(
                _StagedRecord(
                    record_id=record.record_id,
                    line_no=record.line_no,
                    byte_offset=offset,
                    byte_length=len(line),
                    text_sha256=hashlib.sha256(record.text.encode("utf-8")).hexdigest(),
                    text_length=len(record.text),
                )
            )
            offset += len(line)
    manifest_sha256 = _manifest_write(
        ((item.record_id, item.text_sha256) for item in staged), path=folder / MANIFEST_FILE
    )
    return _Staged(folder=folder, records=staged, manifest_sha256=manifest_sha256)


def _manifest_write(entries: Iterable[tuple[str, str]], *, path: Path) -> str:
    """Write ``{"id", "text_sha256"}`` lines sorted by id; return the file's SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for record_id, text_sha in sorted(entries):
            line = (json.dumps({"id": record_id, "text_sha256": text_sha}, ensure_ascii=False) + "\n").encode(
                "utf-8"
            )
            digest.update(line)
            out.write(line)
    return digest.hexdigest()


def _staging_folder() -> Path:
    base = Path(settings.LETHE_DATA_DIR) / "datasets" / ".staging"
    base.mkdir(parents=True, exist_ok=True)
    folder = base / uuid.uuid4().hex
    folder.mkdir()
    return folder


def _chunks_create(version: DatasetVersion, *, chunk_size: int) -> list[IndexChunk]:
    chunks = [
        IndexChunk(
            version=version, number=number, start=start, end=min(start + chunk_size, version.record_count)
        )
        for number, start in enumerate(range(0, version.record_count, chunk_size))
    ]
    return IndexChunk.objects.bulk_create(chunks)


@dataclass(frozen=True)
class DatasetRegistrationInput:
    """What a registration was asked, checked: the data set's name, the confined source file, how
    to read its records. Made by ``dataset_registration_check`` before any record is read, so the
    API can refuse a bad request at once and hand a good one to a job."""

    name: str
    source: Path
    format: str | None
    text_fields: tuple[str, ...]
    id_field: str | None
    description: str
    chunk_size: int


def dataset_registration_check(
    *,
    name: str,
    path: str | Path,
    format: str | None = None,
    text_field: str | Sequence[str] | None = "text",
    id_field: str | None = None,
    description: str = "",
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> DatasetRegistrationInput:
    """Check what can be checked without reading the file; raise ``DatasetRegistrationError`` by field."""
    name = (name or "").strip()
    if not name:
        raise DatasetRegistrationError({"name": ["Give the data set a name."]})
    if len(name) > MAX_NAME_LENGTH:
        raise DatasetRegistrationError({"name": [f"The name is longer than {MAX_NAME_LENGTH} characters."]})
    if control_character_found(name):
        raise DatasetRegistrationError({"name": ["The name holds a control character; remove it."]})
    if control_character_found(description or "", allow=LINE_CONTROLS):
        raise DatasetRegistrationError(
            {"description": ["The description holds a control character; remove it."]}
        )
    fields = _text_fields(text_field)
    kind = _format_of(format)
    chunk_size = chunk_size or settings.LETHE_INDEX_CHUNK_SIZE
    if chunk_size < 1:
        raise DatasetRegistrationError({"chunk_size": ["The chunk size must be at least 1."]})
    return DatasetRegistrationInput(
        name=name,
        source=dataset_source_path_check(path, max_bytes=max_bytes),
        format=kind,
        text_fields=fields,
        id_field=(id_field or "").strip() or None,
        description=description or "",
        chunk_size=chunk_size,
    )


def dataset_version_register(
    *,
    name: str,
    path: str | Path,
    actor,
    format: str | None = None,
    text_field: str | Sequence[str] | None = "text",
    id_field: str | None = None,
    description: str = "",
    source_name: str = "",
    chunk_size: int | None = None,
    max_bytes: int | None = None,
    enqueue: bool = True,
    on_registered: Callable[[DatasetVersion], None] | None = None,
) -> DatasetVersion:
    """Register the file at ``path`` as the next version of data set ``name`` and queue its indexing.

    The data set is created on first use. Every record is read and checked first; the version,
    its records, its index chunks and the audit event are written in one transaction with the
    stored copy renamed into place, and the chunk tasks are sent after commit (``enqueue``
    False leaves them pending, for ``dataset_version_index_inline``). A file whose records are
    exactly those of an existing version of the data set is refused: versions are immutable,
    so registering it again would only duplicate the index. ``on_registered`` is called with the
    new version inside that transaction, so what it records exists exactly when the version does
    (a registration job remembers the version it made).
    """
    _actor_check(actor)
    checked = dataset_registration_check(
        name=name,
        path=path,
        format=format,
        text_field=text_field,
        id_field=id_field,
        description=description,
        chunk_size=chunk_size,
        max_bytes=max_bytes,
    )
    name, source, kind, fields = checked.name, checked.source, checked.format, checked.text_fields
    id_field, chunk_size, description = checked.id_field, checked.chunk_size, checked.description
    hasher_key_id = settings.LETHE_PII_HASH_KEY_ID
    configuration = indexing.index_configuration()

    folder = _staging_folder()
    final: Path | None = None
    try:
        try:
            records = read_records(source, format=kind, text_field=fields, id_field=id_field)
            staged = _stage_records(records, folder=folder)
            kind = kind or _detected(source)
            source_sha = file_sha256(source)
        except DatasetFormatError as error:
            raise DatasetRegistrationError({"file": [str(error)]}) from None
        with transaction.atomic():
            dataset, _ = Dataset.objects.get_or_create(
                name=name, defaults={"description": description, "created_by": actor}
            )
            dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
            same = dataset.versions.filter(manifest_sha256=staged.manifest_sha256).first()
            if same is not None:
                raise DatasetRegistrationError(
                    {
                        "file": [
                            f"{source.name}: its records are exactly those of {dataset.name} v{same.number}; "
                            "nothing new to register."
                        ]
                    }
                )
            last = dataset.versions.order_by("-number").first()
            number = (last.number + 1) if last else 1
            version = DatasetVersion.objects.create(
                dataset=dataset,
                number=number,
                source_path=str(source),
                source_name=source_name or source.name,
                stored_path=version_relative_folder(dataset.pk, number),
                format=kind,
                text_fields=list(fields),
                id_field=id_field or "",
                record_count=len(staged.records),
                file_sha256=source_sha,
                manifest_sha256=staged.manifest_sha256,
                index_configuration=configuration,
                hash_key_id=hasher_key_id,
                chunk_size=chunk_size,
                registered_by=actor,
            )
            _records_create(version, staged.records)
            chunks = _chunks_create(version, chunk_size=chunk_size)
            audit_event_record(
                actor=actor,
                action="dataset_version.registered",
                target=version,
                details={
                    "dataset": dataset.name,
                    "version": number,
                    "source_name": version.source_name,
                    "format": kind,
                    "text_fields": list(fields),
                    "id_field": id_field,
                    "record_count": version.record_count,
                    "file_sha256": source_sha,
                    "manifest_sha256": staged.manifest_sha256,
                    "chunks": len(chunks),
                    "hash_key_id": hasher_key_id,
                },
            )
            if on_registered is not None:
                on_registered(version)
            final = dataset_version_folder(version)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                raise DatasetRegistrationError(
                    {
                        "file": [
                            f"The folder for {dataset.name} v{number} already exists under LETHE_DATA_DIR; "
                            "remove the leftover folder and register again."
                        ]
                    }
                )
            folder.rename(final)
            if enqueue:
                chunk_ids = [chunk.pk for chunk in chunks]
                transaction.on_commit(lambda: indexing.index_chunks_enqueue(chunk_ids=chunk_ids))
    except BaseException:
        if final is not None and final.exists() and not folder.exists():
            shutil.rmtree(final, ignore_errors=True)
        raise
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    logger.info(
        "dataset_version.registered",
        extra={"dataset_id": dataset.pk, "version": version.number, "records": version.record_count},
    )
    return version


def _detected(source: Path) -> str:
    from unlearning_jobs.engine.pii.readers import detect_format

    return detect_format(source).value


def _records_create(version: DatasetVersion, staged: Sequence[_StagedRecord]) -> None:
    batch: list[DatasetRecord] = []
    for ordinal, item in enumerate(staged):
        batch.append(
            DatasetRecord(
                version=version,
                record_id=item.record_id,
                ordinal=ordinal,
                line_no=item.line_no,
                byte_offset=item.byte_offset,
                byte_length=item.byte_length,
                text_sha256=item.text_sha256,
                text_length=item.text_length,
            )
        )
        if len(batch) >= _BULK:
            DatasetRecord.objects.bulk_create(batch)
            batch = []
    if batch:
        DatasetRecord.objects.bulk_create(batch)


def dataset_upload_save(*, upload, max_bytes: int | None = None) -> Path:
    """Save a browser upload under ``LETHE_DATA_DIR/uploads/`` and return its path.

    The size is checked before a byte is written, so an oversized upload leaves nothing.
    """
    limit = settings.LETHE_UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
    if upload.size > limit:
        raise DatasetRegistrationError(
            {
                "file": [
                    f"{upload.name}: {upload.size:,} bytes is over the upload limit of {limit:,} bytes; "
                    "register larger files by path (ingest_dataset)."
                ]
            }
        )
    if upload.size == 0:
        raise DatasetRegistrationError({"file": [f"{upload.name}: file is empty."]})
    safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(upload.name).name)
    folder = Path(settings.LETHE_DATA_DIR) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / (safe_name.lstrip(".") or "upload")
    with target.open("wb") as out:
        for piece in upload.chunks():
            out.write(piece)
    return target


def dataset_version_register_upload(
    *,
    name: str,
    upload,
    actor,
    format: str | None = None,
    text_field="text",
    id_field: str | None = None,
    description: str = "",
) -> DatasetVersion:
    """Register a file uploaded in the browser, through the same checks as a path.

    The saved upload is removed again when registration refuses it.
    """
    _actor_check(actor)
    saved = dataset_upload_save(upload=upload)
    try:
        return dataset_version_register(
            name=name,
            path=saved,
            actor=actor,
            format=format,
            text_field=text_field,
            id_field=id_field,
            description=description,
            source_name=Path(upload.name).name,
            max_bytes=settings.LETHE_UPLOAD_MAX_BYTES,
        )
    except BaseException:
        shutil.rmtree(saved.parent, ignore_errors=True)
        raise


# --- derived versions ---------------------------------------------------------------------------


def dataset_version_derive(
    *,
    version: DatasetVersion,
    remove: Iterable[DatasetRecord],
    actor,
    reason: str,
    erasure_request=None,
) -> DatasetVersion:
    """Return a new version of the data set without the ``remove`` records (the deletion framework).

    The new version is indexed already: its records keep their ids, texts and findings, which
    are copied rather than scanned again. ``removed_manifest`` lists the removed records by
    keyed hash of their ids, with the SHA-256 of that list, and names the request. One audit event.
    """
    _actor_check(actor)
    reason = (reason or "").strip()
    if not reason:
        raise DatasetRegistrationError({"reason": ["Say why records are removed."]})
    if version.status != DatasetVersionStatus.INDEXED:
        raise DatasetRegistrationError({"version": [f"{version} is not indexed yet."]})
    removed_ids = {record.pk for record in remove if record.version_id == version.pk}
    if not removed_ids:
        raise DatasetRegistrationError({"remove": [f"No record of {version} was given to remove."]})
    kept = version.records.exclude(pk__in=removed_ids).order_by("ordinal")
    folder = _staging_folder()
    final: Path | None = None
    try:
        staged_kept: list[tuple[DatasetRecord, SourceRecord]] = []
        for record, text in dataset_version_iter_texts(version=version, records=kept):
            staged_kept.append((record, SourceRecord(record.record_id, text, record.line_no)))
        staged = _stage_records((item for _, item in staged_kept), folder=folder)
        removed = sorted(version.records.filter(pk__in=removed_ids).values_list("record_id", flat=True))
        removed_hashes = sorted(record_id_hash(record_id) for record_id in removed)
        removed_sha = hashlib.sha256("\n".join(removed_hashes).encode("ascii")).hexdigest()
        with transaction.atomic():
            dataset = Dataset.objects.select_for_update().get(pk=version.dataset_id)
            number = dataset.versions.order_by("-number").first().number + 1
            derived = DatasetVersion.objects.create(
                dataset=dataset,
                number=number,
                parent=version,
                status=DatasetVersionStatus.INDEXED,
                source_path="",
                source_name=f"derived from v{version.number}",
                stored_path=version_relative_folder(dataset.pk, number),
                format=DatasetFormat.JSONL.value,
                text_fields=["text"],
                id_field="id",
                record_count=len(staged.records),
                file_sha256=file_sha256(folder / RECORDS_FILE),
                manifest_sha256=staged.manifest_sha256,
                index_configuration=version.index_configuration,
                hash_key_id=version.hash_key_id,
                chunk_size=version.chunk_size,
                registered_by=actor,
                indexing_started_at=timezone.now(),
                indexed_at=timezone.now(),
                removed_manifest={
                    "reason": reason,
                    "records_removed": len(removed),
                    "record_id_hashes": removed_hashes,
                    "sha256": removed_sha,
                    "erasure_request_id": erasure_request.pk if erasure_request is not None else None,
                    "erasure_request": getattr(erasure_request, "reference", None),
                },
            )
            _records_create(derived, staged.records)
            _findings_copy(source=version, target=derived)
            _derived_chunk_create(derived)
            audit_event_record(
                actor=actor,
                action="dataset_version.derived",
                target=derived,
                details={
                    "dataset": dataset.name,
                    "from_version": version.number,
                    "version": number,
                    "records_removed": len(removed),
                    "removed_sha256": removed_sha,
                    "manifest_sha256": staged.manifest_sha256,
                    "erasure_request": getattr(erasure_request, "reference", None),
                },
            )
            final = dataset_version_folder(derived)
            final.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(final)
            reingestion.reingestion_check(version=derived)
    except BaseException:
        if final is not None and final.exists() and not folder.exists():
            shutil.rmtree(final, ignore_errors=True)
        raise
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    return derived


def _derived_chunk_create(derived: DatasetVersion) -> None:
    """Record the copied index as one chunk done, so progress and counts read as for any version."""
    from collections import Counter

    by_type = Counter(
        finding_count_label(kind, recogniser)
        for kind, recogniser in PiiFinding.objects.filter(version=derived).values_list(
            "entity_type", "recogniser"
        )
    )
    now = timezone.now()
    IndexChunk.objects.create(
        version=derived,
        number=0,
        start=0,
        end=derived.record_count,
        status=IndexChunkStatus.DONE,
        worker="derived",
        findings=sum(by_type.values()),
        findings_by_type=dict(sorted(by_type.items())),
        started_at=now,
        finished_at=now,
    )


def _findings_copy(*, source: DatasetVersion, target: DatasetVersion) -> None:
    new_ids = dict(target.records.values_list("record_id", "pk"))
    batch: list[PiiFinding] = []
    rows = (
        PiiFinding.objects.filter(record__version=source)
        .values_list(
            "record__record_id",
            "entity_type",
            "start",
            "end",
            "score",
            "recogniser",
            "value_hash",
            "sorted_hash",
        )
        .iterator(chunk_size=_BULK)
    )
    for record_id, entity_type, start, end, score, recogniser, value_hash, sorted_hash in rows:
        if record_id not in new_ids:
            continue
        batch.append(
            PiiFinding(
                version=target,
                record_id=new_ids[record_id],
                entity_type=entity_type,
                start=start,
                end=end,
                score=score,
                recogniser=recogniser,
                value_hash=value_hash,
                sorted_hash=sorted_hash,
            )
        )
        if len(batch) >= _BULK:
            PiiFinding.objects.bulk_create(batch)
            batch = []
    if batch:
        PiiFinding.objects.bulk_create(batch)


# --- selectors ----------------------------------------------------------------------------------


def dataset_list():
    """Return every data set with its versions, newest version first, in two queries.

    Each version comes with who registered it and, as ``reingestion_blocked``, how many of its
    records the re-ingestion guard holds back (flagged and not let back in).
    """
    from django.db.models import Count, Prefetch, Q

    versions = (
        DatasetVersion.objects.select_related("registered_by")
        .annotate(
            reingestion_blocked=Count(
                "reingestion_hits", filter=Q(reingestion_hits__overridden_at__isnull=True)
            )
        )
        .order_by("-number")
    )
    return Dataset.objects.prefetch_related(Prefetch("versions", queryset=versions))


def dataset_version_latest_indexed(dataset: Dataset) -> DatasetVersion | None:
    """Return the data set's newest version whose index is complete, or None."""
    return dataset.versions.filter(status=DatasetVersionStatus.INDEXED).order_by("-number").first()
