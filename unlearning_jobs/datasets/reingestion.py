"""The re-ingestion guard: keep erased people's records out of data offered for training again.

When a version's index is complete, its findings are compared with the keyed hashes of the
direct identifiers (e-mail, phone, account id, postal address) of every person whose erasure was
approved or carried out; when a request is approved, the versions already indexed are checked
for that person. Each record that holds such an identifier becomes a ``ReingestionHit``, shown
on the data-set page and left out of ``dataset_version_training_records`` until an officer
overrides it with a reason. Names alone are not used: two people share a name too often for a
name to keep a record out of training without a person looking at it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from compliance import roles
from compliance.audit import audit_event_record
from requests_app.models import ErasureRequest, RequestStatus, SubjectIdentifierHash
from unlearning_jobs.datasets.storage import record_id_hash
from unlearning_jobs.engine.pii.entities import DIRECT_IDENTIFIERS
from unlearning_jobs.models import (
    DatasetRecord,
    DatasetVersion,
    DatasetVersionStatus,
    PiiFinding,
    ReingestionHit,
)

logger = logging.getLogger(__name__)

MAX_REASON_LENGTH = 2000


class ReingestionOverrideError(ValueError):
    """The override cannot be recorded (no reason, no permission, already overridden)."""


def erased_request_statuses() -> tuple[str, ...]:
    """Return the request statuses whose person must not come back: approved and after."""

    return (RequestStatus.APPROVED, RequestStatus.EXECUTING, RequestStatus.VERIFYING, RequestStatus.COMPLETED)


def _erased_hashes(*, key_id: str, erasure_requests=None) -> dict[str, set[int]]:
    """Return ``{digest: {request id, ...}}`` of erased people's direct identifiers under ``key_id``."""

    hashes = SubjectIdentifierHash.objects.filter(
        key_id=key_id,
        is_variant=False,
        entity_type__in=[kind.value for kind in DIRECT_IDENTIFIERS],
        erasure_request__status__in=erased_request_statuses(),
    )
    if erasure_requests is not None:
        hashes = hashes.filter(erasure_request__in=list(erasure_requests))
    found: dict[str, set[int]] = defaultdict(set)
    for digest, request_id in hashes.values_list("digest", "erasure_request_id"):
        found[digest].add(request_id)
    return found


def reingestion_check(*, version: DatasetVersion, erasure_requests: Iterable | None = None) -> int:
    """Flag the version's records that hold an erased person's direct identifier; return new hits.

    Idempotent: a record already flagged for a request is not flagged twice. Writes one audit
    event when something new was found (counts and keyed hashes only).
    """

    erased = _erased_hashes(key_id=version.hash_key_id, erasure_requests=erasure_requests)
    with transaction.atomic():
        DatasetVersion.objects.filter(pk=version.pk).update(guard_checked_at=timezone.now())
        if not erased:
            return 0
        per_record: dict[tuple[int, int], set[str]] = defaultdict(set)
        findings = PiiFinding.objects.filter(version=version, value_hash__in=list(erased)).values_list(
            "record_id", "entity_type", "value_hash"
        )
        for record_pk, entity_type, digest in findings:
            for request_id in erased[digest]:
                per_record[(record_pk, request_id)].add(entity_type)
        if not per_record:
            return 0
        existing = set(
            ReingestionHit.objects.filter(version=version).values_list("record_id", "erasure_request_id")
        )
        new = [
            ReingestionHit(
                version=version,
                record_id=record_pk,
                erasure_request_id=request_id,
                entity_types=sorted(kinds),
            )
            for (record_pk, request_id), kinds in sorted(per_record.items())
            if (record_pk, request_id) not in existing
        ]
        if not new:
            return 0
        ReingestionHit.objects.bulk_create(new)

        references = dict(
            ErasureRequest.objects.filter(pk__in={hit.erasure_request_id for hit in new}).values_list(
                "pk", "reference"
            )
        )
        record_ids = dict(
            DatasetRecord.objects.filter(pk__in={hit.record_id for hit in new}).values_list("pk", "record_id")
        )
        by_request: dict[str, int] = defaultdict(int)
        for hit in new:
            by_request[references[hit.erasure_request_id]] += 1
        audit_event_record(
            actor=None,
            action="dataset_version.reingestion_hits",
            target=version,
            details={
                "dataset": version.dataset.name,
                "version": version.number,
                "records_flagged": len({hit.record_id for hit in new}),
                "hits_by_request": dict(sorted(by_request.items())),
                "record_id_hashes": sorted({record_id_hash(record_ids[hit.record_id]) for hit in new}),
            },
        )
    logger.warning("dataset_version.reingestion_hits", extra={"version_id": version.pk, "hits": len(new)})
    return len(new)


def reingestion_check_for_request(*, erasure_request) -> int:
    """Check every indexed version for the person of a request just approved; return new hits."""
    total = 0
    for version in DatasetVersion.objects.filter(status=DatasetVersionStatus.INDEXED):
        total += reingestion_check(version=version, erasure_requests=[erasure_request])
    return total


def reingestion_hit_override(*, hit: ReingestionHit, actor, reason: str) -> ReingestionHit:
    """Let a flagged record back into training data, with the officer's reason (an audit event)."""

    if not roles.actor_may(actor, roles.MANAGE_REQUESTS):
        raise ReingestionOverrideError(
            "Only a privacy officer may let a flagged record back into training data."
        )
    reason = (reason or "").strip()
    if not reason:
        raise ReingestionOverrideError("Give the reason the record may be used for training.")
    if len(reason) > MAX_REASON_LENGTH:
        raise ReingestionOverrideError(f"The reason is longer than {MAX_REASON_LENGTH} characters.")
    with transaction.atomic():
        locked = (
            ReingestionHit.objects.select_for_update()
            .select_related("version__dataset", "record", "erasure_request")
            .get(pk=hit.pk)
        )
        if locked.overridden_at is not None:
            raise ReingestionOverrideError("This record was already let back in.")
        locked.overridden_by = actor
        locked.overridden_at = timezone.now()
        locked.override_reason = reason
        locked.save(update_fields=["overridden_by", "overridden_at", "override_reason"])
        audit_event_record(
            actor=actor,
            action="dataset_version.reingestion_override",
            target=locked.version,
            details={
                "dataset": locked.version.dataset.name,
                "version": locked.version.number,
                "record_id_hash": record_id_hash(locked.record.record_id),
                "erasure_request": locked.erasure_request.reference,
                "entity_types": locked.entity_types,
                "reason": reason,
            },
        )
    hit.refresh_from_db()
    return hit


# --- selectors ----------------------------------------------------------------------------------


def dataset_version_training_records(version: DatasetVersion):
    """Return the version's records that may be offered for training, in order.

    Every record except those flagged by the guard and not overridden. What training and
    unlearning jobs must read instead of ``version.records``.
    """
    return version.records.exclude(pk__in=_holding_back(version).values("record_id")).order_by("ordinal")


def dataset_version_held_back_record_ids(version: DatasetVersion) -> set[str]:
    """Return the ``record_id`` of every record of the version the guard holds back.

    An erased person's records are used for nothing once held back: verification leaves them out
    of the samples it measures other requests' models on (``verification_inputs``), as training
    and unlearning leave them out through ``dataset_version_training_records``.
    """
    return set(
        DatasetRecord.objects.filter(pk__in=_holding_back(version).values("record_id")).values_list(
            "record_id", flat=True
        )
    )


def _holding_back(version: DatasetVersion):
    """Return the version's hits that hold their record back (not overridden by an officer)."""
    return ReingestionHit.objects.filter(version=version, overridden_at__isnull=True)


def dataset_versions_reingestion_hits(versions) -> dict[int, list[ReingestionHit]]:
    """Return ``{version id: its re-ingestion hits}`` for many versions in one query.

    Hits still holding their record back come first (NULLs first on every database), then the
    overridden ones, each in record order.
    """
    hits: dict[int, list[ReingestionHit]] = {version.pk: [] for version in versions}
    for hit in (
        ReingestionHit.objects.filter(version__in=list(hits))
        .select_related("record", "erasure_request", "overridden_by")
        .order_by(F("overridden_at").asc(nulls_first=True), "record__ordinal")
    ):
        hits[hit.version_id].append(hit)
    return hits
