"""The officer's review of located candidates, the forget set it produces, and what approval needs.

Each confirmation or rejection is an audit event on the request (keyed hash of the record id,
tier and score: never the record's text). The confirmed records are the forget set
(``forget_set_for_request``). Approval waits (a precondition on the request's ``approve`` step)
until the last search has finished, no strong candidate is pending, and at least one record
is confirmed, or the officer has recorded that the search found none of the person's records.
Where no data set in scope has ever been indexed and no search was run, there is nothing to
review and the precondition does not hold approval back.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from compliance import roles
from compliance.audit import audit_event_record
from requests_app.matching.services import request_has_searchable_data
from requests_app.models import ErasureRequest, RequestStatus
from requests_app.services import ActionNotPermitted, TransitionNotAllowed
from unlearning_jobs.datasets.reingestion import reingestion_check_for_request
from unlearning_jobs.datasets.storage import record_id_hash
from unlearning_jobs.models import (
    CandidateStatus,
    DatasetRecord,
    DatasetVersion,
    MatchCandidate,
    MatchTier,
    SearchCoverage,
    SearchCoverageStatus,
)

logger = logging.getLogger(__name__)

MAX_NOTE_LENGTH = 2000
DECIDABLE_STATUSES = (RequestStatus.REVIEW,)


class ReviewError(ValidationError):
    """The decision cannot be recorded; the message says why."""


@dataclass(frozen=True)
class DecisionResult:
    confirmed: int = 0
    rejected: int = 0
    unchanged: int = 0


def _officer_check(actor) -> None:

    if not roles.actor_may(actor, roles.MANAGE_REQUESTS):
        who = roles.actor_name(actor)
        raise ActionNotPermitted(f"{who} may not review located records.")


def _note(note: str | None) -> str:
    text = (note or "").strip()
    if len(text) > MAX_NOTE_LENGTH:
        raise ReviewError({"note": [f"The note is longer than {MAX_NOTE_LENGTH} characters."]})
    return text


def _decidable(erasure_request: ErasureRequest) -> ErasureRequest:
    locked = ErasureRequest.objects.select_for_update().get(pk=erasure_request.pk)
    if locked.status not in DECIDABLE_STATUSES:
        raise TransitionNotAllowed(
            f"{locked.reference} is {locked.get_status_display().lower()}; located records are "
            "confirmed or rejected only while it is in review."
        )
    return locked


# --- decisions ------------------------------------------------------------------------------------


def match_candidates_resolve(*, erasure_request: ErasureRequest, items: Iterable) -> list[MatchCandidate]:
    """Return the request's candidates named by ``items``; raise ``ReviewError`` for unknown ones.

    An item is a ``MatchCandidate``, a candidate id (int), a record id (str), or a candidate
    key ``"v<version id>:<record id>"`` where one record id is a candidate in two data sets.
    """
    items = list(items)
    candidates = {
        c.pk: c
        for c in MatchCandidate.objects.filter(erasure_request=erasure_request).select_related(
            "record", "version__dataset"
        )
    }
    by_record: dict[str, list[MatchCandidate]] = defaultdict(list)
    for candidate in candidates.values():
        by_record[candidate.record.record_id].append(candidate)
        by_record[match_candidate_key(candidate)].append(candidate)
    found: dict[int, MatchCandidate] = {}
    unknown, ambiguous = [], []
    for item in items:
        if isinstance(item, MatchCandidate):
            item = item.pk
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            unknown.append(repr(item))
        elif isinstance(item, int):
            if item in candidates:
                found[item] = candidates[item]
            else:
                unknown.append(str(item))
        elif len(by_record.get(item, [])) == 1:
            found[by_record[item][0].pk] = by_record[item][0]
        elif by_record.get(item):
            ambiguous.append(item)
        else:
            unknown.append(item)
    errors = []
    if unknown:
        errors.append(
            f"Not candidates of {erasure_request.reference}: {', '.join(unknown[:20])}"
            + (" …" if len(unknown) > 20 else "")
            + "."
        )
    if ambiguous:
        errors.append(
            f"Candidates in more than one data set: {', '.join(ambiguous[:20])}; name them "
            'by their key ("v<version id>:<record id>").'
        )
    if errors:
        raise ReviewError({"records": errors})
    return list(found.values())


def match_candidate_key(candidate: MatchCandidate) -> str:
    """Return the candidate's unambiguous key: ``v<version id>:<record id>``."""
    return f"v{candidate.version_id}:{candidate.record.record_id}"


def match_candidates_decide(
    *, erasure_request: ErasureRequest, actor, confirm: Iterable = (), reject: Iterable = (), note: str = ""
) -> DecisionResult:
    """Confirm and reject candidates (see ``match_candidates_resolve`` for how they are named).

    One audit event per candidate whose status changes; a candidate in both lists is refused.
    A decision may be changed while the request is in review, and the change is recorded too.
    """
    _officer_check(actor)
    note = _note(note)
    with transaction.atomic():
        locked = _decidable(erasure_request)
        to_confirm = match_candidates_resolve(erasure_request=locked, items=confirm)
        to_reject = match_candidates_resolve(erasure_request=locked, items=reject)
        both = {c.pk for c in to_confirm} & {c.pk for c in to_reject}
        if both:
            raise ReviewError({"records": [f"{len(both)} candidate(s) are both confirmed and rejected."]})
        counts = Counter()
        for status, candidates in (
            (CandidateStatus.CONFIRMED, to_confirm),
            (CandidateStatus.REJECTED, to_reject),
        ):
            for candidate in candidates:
                counts[_decide(candidate, locked=locked, actor=actor, status=status, note=note)] += 1
    return DecisionResult(
        confirmed=counts[CandidateStatus.CONFIRMED],
        rejected=counts[CandidateStatus.REJECTED],
        unchanged=counts["unchanged"],
    )


def match_candidates_confirm_above(
    *, erasure_request: ErasureRequest, actor, score: float, note: str = ""
) -> DecisionResult:
    """Confirm every pending candidate whose score is at least ``score``; decided ones stay as they are."""
    _officer_check(actor)
    note = _note(note)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
        raise ReviewError({"confirm_above": ["The score must be a number between 0 and 1."]})
    with transaction.atomic():
        locked = _decidable(erasure_request)
        pending = (
            MatchCandidate.objects.filter(
                erasure_request=locked, status=CandidateStatus.PENDING, score__gte=score
            )
            .select_related("record", "version__dataset")
            .order_by("-score", "pk")
        )
        confirmed = 0
        for candidate in pending:
            if (
                _decide(
                    candidate,
                    locked=locked,
                    actor=actor,
                    status=CandidateStatus.CONFIRMED,
                    note=note,
                    rule=f"confirm_above {score}",
                )
                != "unchanged"
            ):
                confirmed += 1
    return DecisionResult(confirmed=confirmed)


def _decide(
    candidate: MatchCandidate, *, locked: ErasureRequest, actor, status: str, note: str, rule: str = ""
) -> str:

    if candidate.status == status:
        return "unchanged"
    previous = candidate.status
    candidate.status = status
    candidate.decided_by = actor
    candidate.decided_at = timezone.now()
    candidate.note = note
    candidate.save(update_fields=["status", "decided_by", "decided_at", "note"])
    details = {
        "reference": locked.reference,
        "candidate": candidate.pk,
        "record_id_hash": record_id_hash(candidate.record.record_id),
        "dataset": candidate.version.dataset.name,
        "dataset_version": candidate.version.number,
        "tier": candidate.tier,
        "score": candidate.score,
        "previous_status": previous,
        "note_given": bool(note),
    }
    if rule:
        details["rule"] = rule
    action = (
        "erasure_request.candidate_confirmed"
        if status == CandidateStatus.CONFIRMED
        else "erasure_request.candidate_rejected"
    )
    audit_event_record(actor=actor, action=action, target=locked, details=details)
    return status


def review_nothing_found_acknowledge(*, erasure_request: ErasureRequest, actor, note: str) -> SearchCoverage:
    """Record the officer's finding that the last search located none of the person's records.

    Allowed when no candidate is confirmed and no strong candidate is pending; the note (why
    the search is complete) is required. Lets approval go ahead with an empty forget set.
    """
    _officer_check(actor)
    note = _note(note)
    if not note:
        raise ReviewError(
            {"note": ["Say why the search is complete although it found none of the person's records."]}
        )
    with transaction.atomic():
        locked = _decidable(erasure_request)
        latest = search_coverage_latest(locked)
        if latest is None or latest.status != SearchCoverageStatus.DONE:
            raise ReviewError({"note": ["No finished search to acknowledge; run the search first."]})
        candidates = MatchCandidate.objects.filter(erasure_request=locked)
        if candidates.filter(status=CandidateStatus.CONFIRMED).exists():
            raise ReviewError(
                {"note": ["Records are confirmed as the person's: reject them first, or approve with them."]}
            )
        if candidates.filter(status=CandidateStatus.PENDING, tier=MatchTier.STRONG).exists():
            raise ReviewError({"note": ["Strong candidates are pending: confirm or reject each first."]})
        latest.nothing_found_by = actor
        latest.nothing_found_at = timezone.now()
        latest.nothing_found_note = note
        latest.save(update_fields=["nothing_found_by", "nothing_found_at", "nothing_found_note"])
        audit_event_record(
            actor=actor,
            action="erasure_request.nothing_found_acknowledged",
            target=locked,
            details={
                "reference": locked.reference,
                "search": latest.pk,
                "note": note,
                "candidates_rejected": candidates.filter(status=CandidateStatus.REJECTED).count(),
                "candidates_pending": candidates.filter(status=CandidateStatus.PENDING).count(),
            },
        )
    return latest


# --- the approval precondition and the guard on approval ---------------------------------------


def review_approval_refusal(erasure_request: ErasureRequest) -> str | None:
    """Return why the request cannot be approved yet as far as its review goes, or None."""

    latest = search_coverage_latest(erasure_request)
    if latest is None:
        if not request_has_searchable_data(erasure_request):
            return None
        return (
            f"{erasure_request.reference}: the training data has not been searched for the person; "
            "start locating and review what it finds before approving."
        )
    if latest.status in (SearchCoverageStatus.QUEUED, SearchCoverageStatus.RUNNING):
        return f"{erasure_request.reference}: the search for the person's records is still running."
    if latest.status == SearchCoverageStatus.FAILED:
        return f"{erasure_request.reference}: the last search failed ({latest.error}); run it again."
    candidates = MatchCandidate.objects.filter(erasure_request=erasure_request)
    pending_strong = candidates.filter(tier=MatchTier.STRONG, status=CandidateStatus.PENDING).count()
    if pending_strong:
        return (
            f"{erasure_request.reference}: {pending_strong} strong candidate record(s) are still "
            "pending; confirm or reject each before approving."
        )
    if not latest.versions and not candidates.exists():
        return None  # nothing was indexed in scope: there was nothing to review
    if not candidates.filter(status=CandidateStatus.CONFIRMED).exists() and latest.nothing_found_at is None:
        return (
            f"{erasure_request.reference}: no record is confirmed as the person's; confirm their "
            "records, or record that the search found none of them."
        )
    return None


def request_approved_guard(*, erasure_request: ErasureRequest) -> int:
    """Run the re-ingestion guard for a request just approved over every indexed version."""

    return reingestion_check_for_request(erasure_request=erasure_request)


# --- selectors ------------------------------------------------------------------------------------


def search_coverage_latest(erasure_request: ErasureRequest) -> SearchCoverage | None:
    """Return the request's most recent search (any status), or None."""
    return (
        SearchCoverage.objects.filter(erasure_request=erasure_request)
        .order_by("-requested_at", "-pk")
        .first()
    )


def forget_set_for_request(
    erasure_request: ErasureRequest, *, version: DatasetVersion | None = None
) -> list[DatasetRecord]:
    """Return the confirmed records of the request: the forget set.

    Without ``version``: the confirmed records as located (in the versions searched), ordered by
    data set, version and position. With ``version``: that version's records with the same id
    and the same text (SHA-256) as a confirmed record of its data set, so a job working on an
    older or newer version of the data set removes exactly what the officer confirmed.
    """
    confirmed = (
        DatasetRecord.objects.filter(
            match_candidates__erasure_request=erasure_request,
            match_candidates__status=CandidateStatus.CONFIRMED,
        )
        .select_related("version__dataset")
        .order_by("version__dataset__name", "version__number", "ordinal")
    )
    if version is None:
        return list(confirmed)
    wanted = {(r.record_id, r.text_sha256) for r in confirmed if r.version.dataset_id == version.dataset_id}
    if not wanted:
        return []
    ids = [record_id for record_id, _ in wanted]
    found = []
    for start in range(0, len(ids), 5000):
        found.extend(DatasetRecord.objects.filter(version=version, record_id__in=ids[start : start + 5000]))
    return sorted((r for r in found if (r.record_id, r.text_sha256) in wanted), key=lambda r: r.ordinal)


def review_candidates(erasure_request: ErasureRequest):
    """Return the request's candidates, strongest first, with their records and data sets."""
    return (
        MatchCandidate.objects.filter(erasure_request=erasure_request)
        .select_related("record", "version__dataset", "decided_by")
        .order_by("-score", "version_id", "record__ordinal")
    )


def review_summary(erasure_request: ErasureRequest) -> dict:
    """Return candidate counts per tier and status, and whether approval may go ahead."""
    counts = {tier.value: {status.value: 0 for status in CandidateStatus} for tier in MatchTier}
    rows = MatchCandidate.objects.filter(erasure_request=erasure_request).values_list("tier", "status")
    for tier, status in rows:
        counts[tier][status] += 1
    totals = {status.value: sum(counts[t][status.value] for t in counts) for status in CandidateStatus}
    return {"by_tier": counts, "totals": totals, "approval_refusal": review_approval_refusal(erasure_request)}


# --- the audit report -------------------------------------------------------------------------------


def report_records_section(erasure_request: ErasureRequest) -> dict | None:
    """Return the report's records section: coverage, candidates per version, confirmed records, removals.

    Records are named by keyed hashes of their ids; evidence is the tier and its generic reason.
    """

    latest = (
        SearchCoverage.objects.filter(erasure_request=erasure_request, status=SearchCoverageStatus.DONE)
        .order_by("-finished_at", "-pk")
        .first()
    )
    candidates = list(review_candidates(erasure_request))
    if latest is None and not candidates:
        return None
    coverage = []
    if latest is not None:
        for item in latest.versions:
            coverage.append(
                {
                    "dataset": item["dataset"],
                    "dataset_version": item["version"],
                    "records_total": item["records_total"],
                    "records_indexed": item["records_indexed"],
                    "index_key_id": item["index_key_id"],
                    "searched_at": latest.finished_at,
                    "manifest_sha256": item["manifest_sha256"],
                    "index_configuration_sha256": item["index_configuration"]["sha256"],
                    "spacy_model": f"{item['index_configuration']['spacy_model']} "
                    f"{item['index_configuration']['spacy_model_version']}",
                    "recognisers": item["index_configuration"]["recognisers"],
                    "match_keys_outdated": bool(item["index_configuration"].get("match_keys_outdated")),
                    "searched_forms": {
                        kind: counts.get("forms", [])
                        for kind, counts in latest.identifier_counts.items()
                        if isinstance(counts, dict)
                    },
                }
            )
        for item in latest.skipped:
            total = 0
            if item.get("dataset_id") and item.get("version"):
                total = (
                    DatasetVersion.objects.filter(dataset_id=item["dataset_id"], number=item["version"])
                    .values_list("record_count", flat=True)
                    .first()
                    or 0
                )
            coverage.append(
                {
                    "dataset": item.get("dataset") or f"data set {item.get('dataset_id')}",
                    "dataset_version": item.get("version") or "none",
                    "records_total": total,
                    "records_indexed": 0,
                    "searched_at": None,
                    "not_searched": item["reason"],
                }
            )
    per_version: dict[int, dict] = {}
    confirmed = []
    for candidate in candidates:
        row = per_version.setdefault(
            candidate.version_id,
            {
                "dataset": candidate.version.dataset.name,
                "dataset_version": candidate.version.number,
                "found": 0,
                "confirmed": 0,
                "rejected": 0,
                "pending": 0,
                "by_tier": {tier.value: 0 for tier in MatchTier},
            },
        )
        row["found"] += 1
        row[candidate.status] += 1
        row["by_tier"][candidate.tier] += 1
        if candidate.status == CandidateStatus.CONFIRMED:
            confirmed.append(
                {
                    "dataset": candidate.version.dataset.name,
                    "dataset_version": candidate.version.number,
                    "record_id_hash": record_id_hash(candidate.record.record_id),
                    "evidence": f"{candidate.tier} (score {candidate.score:.2f})",
                }
            )
    removals = [
        {
            "dataset": derived.dataset.name,
            "from_version": derived.parent.number if derived.parent else None,
            "to_version": derived.number,
            "records_removed": derived.removed_manifest.get("records_removed", 0),
            "manifest_sha256": derived.manifest_sha256,
            "removed_sha256": derived.removed_manifest.get("sha256"),
        }
        for derived in DatasetVersion.objects.filter(removed_manifest__erasure_request_id=erasure_request.pk)
        .select_related("dataset", "parent")
        .order_by("dataset__name", "number")
    ]
    return {
        "search_coverage": coverage,
        "candidates": list(per_version.values()),
        "confirmed_records": confirmed,
        "removals": removals,
    }
