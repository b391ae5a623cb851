"""Build a version's PII index in chunks, once, resumably, on any number of workers.

A chunk goes pending → running → done. A worker claims it with a conditional UPDATE that also
sets a fresh claim token; a chunk whose claim is older than ``LETHE_INDEX_STALE_SECONDS`` (its
worker died) may be claimed again. The findings are written, the chunk's old findings deleted
first, and the chunk marked done in one transaction that first checks the token, so a retry
never duplicates findings and a chunk done is never redone. The version becomes indexed in the
transaction that finishes its last chunk, and the re-ingestion guard runs in that same
transaction, so no one sees an indexed version whose hits are not flagged yet.
"""

from __future__ import annotations

import logging
import re
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from celery import group
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from compliance import roles
from compliance.audit import audit_event_record
from compliance.celery import app as celery_app
from compliance.queues import TaskName
from requests_app.identifiers import pii_hasher
from unlearning_jobs.datasets.reingestion import reingestion_check
from unlearning_jobs.datasets.storage import DatasetActionNotPermitted, dataset_version_records_read
from unlearning_jobs.engine.pii.match_keys import finding_count_label
from unlearning_jobs.engine.pii.readers import SourceRecord
from unlearning_jobs.models import (
    DatasetRecord,
    DatasetVersion,
    DatasetVersionStatus,
    IndexChunk,
    IndexChunkStatus,
    PiiFinding,
    WorkerHeartbeat,
)

logger = logging.getLogger(__name__)

#: A version in one of these is done with indexing, well or not: nothing about it changes by itself.
VERSION_SETTLED_STATUSES = (DatasetVersionStatus.INDEXED, DatasetVersionStatus.FAILED)

#: A chunk's error text is kept short; it holds exception types and messages, never record text.
MAX_ERROR_LENGTH = 2000

ScanFunction = Callable[[list[SourceRecord]], list]


class IndexingError(RuntimeError):
    """The index of a version cannot be built as asked (wrong key, nothing to resume)."""


@dataclass(frozen=True)
class ChunkClaim:
    """What a worker holds while it scans a chunk: the chunk and the token proving the claim."""

    chunk_id: int
    version_id: int
    start: int
    end: int
    token: str
    attempt: int


# --- configuration ------------------------------------------------------------------------------


def index_scan_settings(configuration: dict | None = None):
    """Return the ``ScanSettings`` an index is built with: from a stored configuration, or current.

    Chunks are scanned with the settings recorded when the version was registered, so a change
    of settings during indexing cannot make one version's chunks disagree.
    """
    from unlearning_jobs.engine.pii.analyzer import AnalyzerSettings
    from unlearning_jobs.engine.pii.scan import ScanSettings

    if configuration and "settings" in configuration:
        scan = configuration.get("scan", {})
        keys = scan.get("match_keys")
        prefixes = (
            tuple((canonical, tuple(spellings)) for canonical, spellings in keys["account_prefixes"].items())
            if keys
            else None
        )
        return ScanSettings(
            analyzer=AnalyzerSettings.from_dict(configuration["settings"]),
            default_region=scan.get("default_region", settings.LETHE_PHONE_REGION),
            match_keys=bool(keys),
            account_prefixes=prefixes,
        )
    return ScanSettings(
        default_region=settings.LETHE_PHONE_REGION,
        match_keys=settings.LETHE_PII_MATCH_KEYS,
        account_prefixes=settings.LETHE_ACCOUNT_ID_PREFIXES,
    )


def index_configuration() -> dict:
    """Return the configuration to store with a new index version: the analyzer's, the scan's, the key id."""
    from unlearning_jobs.engine.pii.scan import scan_configuration

    configuration = scan_configuration(index_scan_settings())
    configuration["hash_key_id"] = settings.LETHE_PII_HASH_KEY_ID
    configuration["postprocessing"] = {
        "surname_first_names": "a capitalised word and a comma before a PERSON span are indexed as "
        "'Surname, Given' too (spaCy's small model splits that form)",
    }
    return configuration


# "Giles, Kathryn": spaCy's small model tags only "Kathryn", or "Giles" as a place. A capitalised
# word, a comma and a space right before a PERSON span is indexed as the name in that order too.
_SURNAME_BEFORE = re.compile(r"(?<![\w'’-])([A-Z][\w'’-]*[a-z][\w'’-]*), $")
_NOT_SURNAMES = frozenset(
    {
        "hello",
        "hi",
        "hey",
        "dear",
        "thanks",
        "thank",
        "yes",
        "no",
        "ok",
        "okay",
        "please",
        "sorry",
        "note",
        "regards",
        "cheers",
        "well",
        "so",
        "and",
        "but",
        "or",
        "then",
        "also",
        "today",
        "yesterday",
        "tomorrow",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "morning",
        "afternoon",
        "evening",
        "sir",
        "madam",
        "mr",
        "mrs",
        "ms",
        "dr",
        "welcome",
        "again",
        "however",
        "meanwhile",
    }
)


def surname_first_findings(records: Sequence[SourceRecord], results: Sequence, *, hasher) -> list:
    """Return ``results`` with a PERSON finding added for each "Surname, Given" the scan split.

    The added finding spans the surname to the end of the PERSON span, with the hashes of the
    whole name (``normalise_name`` reads "Surname, Given" as "given surname"), recogniser
    ``LetheSurnameFirst`` and a score below the NER's, so review can tell where it came from.
    """
    from dataclasses import replace

    from unlearning_jobs.engine.pii.match_keys import RECOGNISER as MATCH_KEY_RECOGNISER
    from unlearning_jobs.engine.pii.normalise import NormalisationError, name_token_sorted, normalise_name
    from unlearning_jobs.engine.pii.scan import Finding

    out = []
    for record, result in zip(records, results, strict=True):
        added = []
        # What the NER tagged; match keys (their own name pairs) are another mechanism.
        detected = [
            f for f in result.findings if f.entity_type == "PERSON" and f.recogniser != MATCH_KEY_RECOGNISER
        ]
        spans = {(f.start, f.end) for f in detected}
        for finding in detected:
            if " " in record.text[finding.start : finding.end].strip():
                continue
            match = _SURNAME_BEFORE.search(record.text[max(0, finding.start - 60) : finding.start])
            if match is None or match.group(1).lower() in _NOT_SURNAMES:
                continue
            start = finding.start - len(match.group(0))
            value = record.text[start : finding.end]
            if (start, finding.end) in spans:
                continue
            try:
                added.append(
                    Finding(
                        "PERSON",
                        start,
                        finding.end,
                        round(min(finding.score, 0.6), 4),
                        "LetheSurnameFirst",
                        hasher.hash("PERSON", normalise_name(value)),
                        hasher.hash("PERSON", name_token_sorted(value)),
                    )
                )
            except NormalisationError:
                continue
        if added:
            findings = tuple(
                sorted((*result.findings, *added), key=lambda f: (f.start, f.end, f.entity_type))
            )
            result = replace(result, findings=findings)
        out.append(result)
    return out


def _hasher_for(version: DatasetVersion):

    hasher = pii_hasher()
    if hasher.key_id != version.hash_key_id:
        raise IndexingError(
            f"{version} was registered under hash key {version.hash_key_id!r} but the server's key "
            f"is now {hasher.key_id!r}; its index would never match a request. Register the file "
            "again to index it under the current key."
        )
    return hasher


# --- claiming and finishing chunks ----------------------------------------------------------------


def index_chunk_claim(*, chunk_id: int, worker: str, now=None) -> ChunkClaim | None:
    """Claim a pending chunk, or a running one whose worker is gone; return None if not claimable.

    A running chunk is taken over when its claim is older than ``LETHE_INDEX_STALE_SECONDS`` or
    its worker's heartbeat is older than ``LETHE_WORKER_STALE_SECONDS`` (the worker died and
    the broker gave the task to another). One conditional UPDATE, so two workers given the same
    chunk cannot both claim it.
    """

    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.LETHE_INDEX_STALE_SECONDS)
    dead = list(
        WorkerHeartbeat.objects.filter(
            last_seen_at__lt=now - timedelta(seconds=settings.LETHE_WORKER_STALE_SECONDS)
        ).values_list("hostname", flat=True)
    )
    token = uuid.uuid4().hex
    claimable = (
        Q(status=IndexChunkStatus.PENDING)
        | Q(status=IndexChunkStatus.RUNNING, started_at__lt=stale_before)
        | Q(status=IndexChunkStatus.RUNNING, worker__in=dead)
    )
    claimed = IndexChunk.objects.filter(claimable, pk=chunk_id).update(
        status=IndexChunkStatus.RUNNING,
        claim_token=token,
        worker=worker[:255],
        started_at=now,
        finished_at=None,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    chunk = IndexChunk.objects.get(pk=chunk_id)
    DatasetVersion.objects.filter(pk=chunk.version_id, status=DatasetVersionStatus.REGISTERED).update(
        status=DatasetVersionStatus.INDEXING, indexing_started_at=now
    )
    return ChunkClaim(
        chunk_id=chunk.pk,
        version_id=chunk.version_id,
        start=chunk.start,
        end=chunk.end,
        token=token,
        attempt=chunk.attempts,
    )


def index_chunk_complete(*, claim: ChunkClaim, results: Sequence) -> bool:
    """Write a claimed chunk's findings and mark it done; return False if the claim was lost.

    ``results`` are the scan's ``RecordFindings`` for the chunk's records, in order.
    """

    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().get(pk=claim.version_id)
        chunk = IndexChunk.objects.select_for_update().get(pk=claim.chunk_id)
        if chunk.status != IndexChunkStatus.RUNNING or chunk.claim_token != claim.token:
            logger.info("index_chunk.claim_lost", extra={"chunk_id": chunk.pk, "status": chunk.status})
            return False
        record_pks = dict(
            DatasetRecord.objects.filter(
                version=version, ordinal__gte=chunk.start, ordinal__lt=chunk.end
            ).values_list("record_id", "pk")
        )
        PiiFinding.objects.filter(record_id__in=list(record_pks.values())).delete()
        rows: list[PiiFinding] = []
        by_type: Counter[str] = Counter()
        dropped = 0
        for result in results:
            record_pk = record_pks.get(result.record_id)
            if record_pk is None:
                raise IndexingError(f"scan returned a record that is not in chunk {chunk.number}")
            dropped += result.dropped
            for finding in result.findings:
                by_type[finding_count_label(finding.entity_type, finding.recogniser)] += 1
                rows.append(
                    PiiFinding(
                        version=version,
                        record_id=record_pk,
                        entity_type=finding.entity_type,
                        start=finding.start,
                        end=finding.end,
                        score=finding.score,
                        recogniser=finding.recogniser[:100],
                        value_hash=finding.value_hash,
                        sorted_hash=finding.sorted_hash,
                    )
                )
        PiiFinding.objects.bulk_create(rows, batch_size=5000)
        chunk.status = IndexChunkStatus.DONE
        chunk.findings = len(rows)
        chunk.findings_by_type = dict(sorted(by_type.items()))
        chunk.dropped = dropped
        chunk.finished_at = timezone.now()
        chunk.error = ""
        chunk.save(
            update_fields=["status", "findings", "findings_by_type", "dropped", "finished_at", "error"]
        )
        if not version.chunks.exclude(status=IndexChunkStatus.DONE).exists():
            _version_indexed(version)
    return True


def _version_indexed(version: DatasetVersion) -> None:
    """Mark the version indexed, run the re-ingestion guard, record the event (caller's transaction)."""

    now = timezone.now()
    version.status = DatasetVersionStatus.INDEXED
    version.indexed_at = now
    version.error = ""
    version.save(update_fields=["status", "indexed_at", "error"])
    progress = dataset_version_progress(version)
    hits = reingestion_check(version=version)
    audit_event_record(
        actor=None,
        action="dataset_version.indexed",
        target=version,
        details={
            "dataset": version.dataset.name,
            "version": version.number,
            "records": version.record_count,
            "chunks": progress["chunks_total"],
            "findings": progress["findings"],
            "findings_by_type": progress["findings_by_type"],
            "dropped": progress["dropped"],
            "duration_s": progress["duration_s"],
            "reingestion_hits": hits,
            "hash_key_id": version.hash_key_id,
        },
    )
    logger.info("dataset_version.indexed", extra={"version_id": version.pk, "findings": progress["findings"]})


def index_chunk_fail(*, claim: ChunkClaim, error: BaseException, retryable: bool) -> str:
    """Give a chunk back after a failed scan; return its new status.

    A retryable failure (or one with attempts left) returns the chunk to pending; the last
    allowed attempt fails the chunk and the version, keeping the error for the engineer.
    """
    message = f"{type(error).__name__}: {error}"[:MAX_ERROR_LENGTH]
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().get(pk=claim.version_id)
        chunk = IndexChunk.objects.select_for_update().get(pk=claim.chunk_id)
        if chunk.status != IndexChunkStatus.RUNNING or chunk.claim_token != claim.token:
            return chunk.status
        final = not retryable or chunk.attempts >= settings.LETHE_INDEX_MAX_ATTEMPTS
        chunk.status = IndexChunkStatus.FAILED if final else IndexChunkStatus.PENDING
        chunk.error = message
        chunk.finished_at = timezone.now()
        chunk.save(update_fields=["status", "error", "finished_at"])
        if final:
            version.status = DatasetVersionStatus.FAILED
            version.error = f"chunk {chunk.number} (records {chunk.start}–{chunk.end - 1}): {message}"
            version.save(update_fields=["status", "error"])
            audit_event_record(
                actor=None,
                action="dataset_version.indexing_failed",
                target=version,
                details={
                    "dataset": version.dataset.name,
                    "version": version.number,
                    "chunk": chunk.number,
                    "attempts": chunk.attempts,
                    "error_type": type(error).__name__,
                },
            )
    logger.warning(
        "index_chunk.failed",
        extra={"chunk_id": claim.chunk_id, "final": final, "error_type": type(error).__name__},
    )
    return chunk.status


def index_chunk_run(*, chunk_id: int, worker: str, scan: ScanFunction | None = None) -> str:
    """Claim, scan and complete one chunk; return "done", "skipped", "busy" or "lost".

    "skipped": nothing to do (done, failed or gone); "busy": another worker holds the chunk and
    may still finish it (the task looks again later); "lost": the claim was taken over while
    this worker scanned, and its findings were not written.

    ``scan`` maps records to findings; default: this process's cached engine with the settings
    the version was registered with. A failure to read or scan gives the chunk back (see
    ``index_chunk_fail``) and re-raises, so the task can retry it.
    """
    from unlearning_jobs.engine.pii.readers import DatasetFormatError

    claim = index_chunk_claim(chunk_id=chunk_id, worker=worker)
    if claim is None:
        running = IndexChunk.objects.filter(pk=chunk_id, status=IndexChunkStatus.RUNNING).exists()
        return "busy" if running else "skipped"
    version = DatasetVersion.objects.get(pk=claim.version_id)
    started = time.monotonic()
    try:
        hasher = _hasher_for(version)
        records = dataset_version_records_read(version=version, start=claim.start, end=claim.end)
        if scan is None:
            from unlearning_jobs.engine.pii.scan import get_scan_engine

            engine = get_scan_engine(index_scan_settings(version.index_configuration))
            results = engine.scan(records, hasher=hasher)
        else:
            results = scan(records)
        if "surname_first_names" in version.index_configuration.get("postprocessing", {}):
            results = surname_first_findings(records, results, hasher=hasher)
    except (IndexingError, DatasetFormatError, OSError) as error:
        index_chunk_fail(claim=claim, error=error, retryable=isinstance(error, OSError))
        raise
    except Exception as error:
        index_chunk_fail(claim=claim, error=error, retryable=True)
        raise
    done = index_chunk_complete(claim=claim, results=results)
    logger.info(
        "index_chunk.finished",
        extra={
            "chunk_id": chunk_id,
            "records": claim.end - claim.start,
            "lost": not done,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return "done" if done else "lost"


# --- enqueueing, resuming, running in-process -----------------------------------------------------


def index_chunks_enqueue(*, chunk_ids: Iterable[int]) -> int:
    """Send one ``index_chunk`` task per chunk to the ``cpu`` queue; return how many were sent."""
    ids = list(chunk_ids)
    if ids:
        group(
            celery_app.signature(TaskName.INDEX_CHUNK.value, args=(chunk_id,)) for chunk_id in ids
        ).apply_async()
    return len(ids)


def _actor_check(actor) -> None:
    if not roles.actor_may(actor, roles.OPERATE_JOBS, system=True):
        raise DatasetActionNotPermitted(f"{roles.actor_name(actor)} may not resume indexing.")


def dataset_version_index_resume(
    *, version: DatasetVersion, actor, enqueue: bool = True, include_failed: bool = True, now=None
) -> list[int]:
    """Queue again every chunk of the version that is not done; return their ids.

    Pending chunks are sent again (a duplicate delivery is skipped by the claim), running chunks
    whose claim is stale are returned to pending, and failed chunks get a fresh set of attempts
    (``include_failed``). Chunks done are left alone: their findings stand.
    """
    _actor_check(actor)
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.LETHE_INDEX_STALE_SECONDS)
    with transaction.atomic():
        locked = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        if locked.status == DatasetVersionStatus.INDEXED:
            return []
        IndexChunk.objects.filter(
            version=locked, status=IndexChunkStatus.RUNNING, started_at__lt=stale_before
        ).update(status=IndexChunkStatus.PENDING, claim_token="")
        if include_failed:
            IndexChunk.objects.filter(version=locked, status=IndexChunkStatus.FAILED).update(
                status=IndexChunkStatus.PENDING, attempts=0, claim_token=""
            )
        ids = list(
            locked.chunks.filter(status=IndexChunkStatus.PENDING)
            .order_by("number")
            .values_list("pk", flat=True)
        )
        if locked.status == DatasetVersionStatus.FAILED:
            started = locked.chunks.filter(status=IndexChunkStatus.DONE).exists()
            locked.status = DatasetVersionStatus.INDEXING if started else DatasetVersionStatus.REGISTERED
            locked.error = ""
            locked.save(update_fields=["status", "error"])
        audit_event_record(
            actor=actor,
            action="dataset_version.indexing_resumed",
            target=locked,
            details={
                "dataset": locked.dataset.name,
                "version": locked.number,
                "chunks_queued": len(ids),
                "chunks_done": locked.chunks.filter(status=IndexChunkStatus.DONE).count(),
            },
        )
        if enqueue and ids:
            transaction.on_commit(lambda: index_chunks_enqueue(chunk_ids=ids))
    version.refresh_from_db()
    return ids


def dataset_versions_rekey(*, actor, enqueue: bool = True) -> list[int]:
    """Queue every version indexed under another PII hash key to be indexed again under the current one.

    Run after the index key was rotated (``rotate_pii_index_key``). Per version, in one
    transaction: its findings (hashes under the old key) are deleted, every chunk returns to
    pending with fresh attempts, the version takes the current key id and goes back to registered
    (not searchable until its last chunk is done again), and an audit event records both key ids.
    Returns the ids of the versions re-keyed; their chunks are sent to the ``cpu`` queue after
    commit when ``enqueue``.
    """
    _actor_check(actor)
    key_id = pii_hasher().key_id
    rekeyed: list[int] = []
    for pk in list(
        DatasetVersion.objects.exclude(hash_key_id=key_id).order_by("pk").values_list("pk", flat=True)
    ):
        with transaction.atomic():
            locked = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=pk)
            if locked.hash_key_id == key_id:
                continue
            old_key_id = locked.hash_key_id
            findings_deleted, _ = PiiFinding.objects.filter(version=locked).delete()
            locked.chunks.update(
                status=IndexChunkStatus.PENDING,
                attempts=0,
                claim_token="",
                worker="",
                findings=0,
                findings_by_type={},
                dropped=0,
                started_at=None,
                finished_at=None,
                error="",
            )
            locked.hash_key_id = key_id
            locked.index_configuration = {**(locked.index_configuration or {}), "hash_key_id": key_id}
            locked.status = DatasetVersionStatus.REGISTERED
            locked.indexing_started_at = None
            locked.indexed_at = None
            locked.error = ""
            locked.save(
                update_fields=[
                    "hash_key_id",
                    "index_configuration",
                    "status",
                    "indexing_started_at",
                    "indexed_at",
                    "error",
                ]
            )
            ids = list(locked.chunks.order_by("number").values_list("pk", flat=True))
            audit_event_record(
                actor=actor,
                action="dataset_version.rekeyed",
                target=locked,
                details={
                    "dataset": locked.dataset.name,
                    "version": locked.number,
                    "from_hash_key_id": old_key_id,
                    "hash_key_id": key_id,
                    "findings_deleted": findings_deleted,
                    "chunks_queued": len(ids),
                },
            )
            if enqueue and ids:
                transaction.on_commit(lambda ids=ids: index_chunks_enqueue(chunk_ids=ids))
        rekeyed.append(pk)
    return rekeyed


def dataset_version_index_inline(
    *,
    version: DatasetVersion,
    processes: int = 1,
    progress: Callable[[dict], None] | None = None,
    scan: ScanFunction | None = None,
) -> dict:
    """Index the version's unfinished chunks in this process (no worker); return its progress.

    With ``processes`` above 1 each chunk is scanned by a ``ScanPool`` of that many processes.
    Chunks are claimed like a worker claims them, so a worker running at the same time shares
    the work instead of repeating it. ``scan`` replaces the engine (tests, benchmarks).
    """
    worker = f"inline@{socket.gethostname()}"
    pool = None
    if processes > 1 and scan is None:
        from django.db import connections

        from unlearning_jobs.engine.pii.scan import ScanPool

        connections.close_all()  # the forked scan processes must not share the parent's sockets
        pool = ScanPool(
            hasher=_hasher_for(version),
            processes=processes,
            settings=index_scan_settings(version.index_configuration),
        )
    try:

        def pooled(records: list[SourceRecord]) -> list:
            size = max(1, -(-len(records) // processes))
            return pool.scan(records, chunk_size=size)

        pending = (
            IndexChunk.objects.filter(version=version)
            .exclude(status=IndexChunkStatus.DONE)
            .order_by("number")
            .values_list("pk", flat=True)
        )
        for chunk_id in list(pending):
            index_chunk_run(chunk_id=chunk_id, worker=worker, scan=pooled if pool else scan)
            if progress is not None:
                progress(dataset_version_progress(version))
    finally:
        if pool is not None:
            pool.close()
    version.refresh_from_db()
    return dataset_version_progress(version)


# --- progress -----------------------------------------------------------------------------------


_PROGRESS_CHUNK_FIELDS = (
    "status",
    "start",
    "end",
    "findings",
    "findings_by_type",
    "dropped",
    "started_at",
    "finished_at",
)


def dataset_version_progress(
    version: DatasetVersion, *, now=None, chunks: Sequence[dict] | None = None
) -> dict:
    """Return the version's indexing progress: chunks and records done, rate, findings by type.

    The rate is records done over the time from the first claim to the last finish (or now
    while indexing), which is what an engineer waiting for it experiences. ``chunks`` are the
    version's chunk rows when the caller has read them already (``dataset_versions_progress``).
    """
    now = now or timezone.now()
    if chunks is None:
        chunks = list(version.chunks.values(*_PROGRESS_CHUNK_FIELDS))
    counts = Counter(chunk["status"] for chunk in chunks)
    done = [chunk for chunk in chunks if chunk["status"] == IndexChunkStatus.DONE]
    records_done = sum(chunk["end"] - chunk["start"] for chunk in done)
    by_type: Counter[str] = Counter()
    for chunk in done:
        by_type.update(chunk["findings_by_type"] or {})
    starts = [chunk["started_at"] for chunk in chunks if chunk["started_at"]]
    finishes = [chunk["finished_at"] for chunk in done if chunk["finished_at"]]
    duration = None
    if starts:
        finished = version.status == DatasetVersionStatus.INDEXED and finishes
        end = max(finishes) if finished else now
        duration = max((end - min(starts)).total_seconds(), 0.0)
    rate = round(records_done / duration, 1) if duration else None
    remaining = version.record_count - records_done
    return {
        "version_id": version.pk,
        "status": version.status,
        "status_display": version.get_status_display(),
        "chunks_total": len(chunks),
        "chunks_done": counts.get(IndexChunkStatus.DONE, 0),
        "chunks_running": counts.get(IndexChunkStatus.RUNNING, 0),
        "chunks_pending": counts.get(IndexChunkStatus.PENDING, 0),
        "chunks_failed": counts.get(IndexChunkStatus.FAILED, 0),
        "records_total": version.record_count,
        "records_done": records_done,
        "percent": round(100.0 * records_done / version.record_count, 1) if version.record_count else 100.0,
        "records_per_second": rate,
        "eta_seconds": round(remaining / rate) if rate and remaining > 0 else None,
        "duration_s": round(duration, 2) if duration is not None else None,
        "findings": sum(by_type.values()),
        "findings_by_type": dict(sorted(by_type.items())),
        "dropped": sum(chunk["dropped"] for chunk in done),
        "error": version.error,
    }


def dataset_versions_progress(versions: Iterable[DatasetVersion], *, now=None) -> dict[int, dict]:
    """Return ``{version id: progress}`` for many versions, their chunks read in one query (list pages)."""
    now = now or timezone.now()
    versions = list(versions)
    chunks: dict[int, list[dict]] = {version.pk: [] for version in versions}
    for chunk in IndexChunk.objects.filter(version__in=[version.pk for version in versions]).values(
        "version_id", *_PROGRESS_CHUNK_FIELDS
    ):
        chunks[chunk["version_id"]].append(chunk)
    return {
        version.pk: dataset_version_progress(version, now=now, chunks=chunks[version.pk])
        for version in versions
    }


def dataset_versions_findings_total(versions: Iterable[DatasetVersion]) -> int:
    """Return the number of findings in the versions' done chunks (no scan of the findings table)."""
    return (
        IndexChunk.objects.filter(version__in=list(versions), status=IndexChunkStatus.DONE).aggregate(
            total=Sum("findings")
        )["total"]
        or 0
    )
