"""Reads of erasure requests for pages, the API and other apps. Nothing here writes.

Search by identifier goes through keyed hashes only: a term is normalised and hashed the way a
request's identifiers were, and looked up. No row is ever decrypted to be compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from compliance import roles
from compliance.models import AuditEvent
from requests_app import deadlines
from requests_app.identifiers import (
    DUPLICATE_EVIDENCE_TYPES,
    identified_by_names_only,
    identifiers_decrypt,
    pii_hasher,
    search_term_hashes,
    subject_identifiers_masked,
)
from requests_app.models import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    ErasureRequest,
    RequestStatus,
    SubjectIdentifierHash,
)
from requests_app.services import TRANSITIONS, Action, transition_refusal

REFERENCE_PATTERN = re.compile(r"^ER-\d{4}-\d{1,9}$", re.IGNORECASE)
STATUS_FILTER_OPEN = "open"
STATUS_FILTER_CLOSED = "closed"
ASSIGNEE_ME = "me"
ASSIGNEE_NOBODY = "none"


@dataclass(frozen=True)
class ErasureRequestFilters:
    """What a list asks for; every field optional. ``search`` is a reference or an identifier."""

    status: str = ""
    assignee: str = ""
    overdue: bool = False
    due_soon: bool = False
    search: str = ""


def erasure_request_search_ids(term: str) -> QuerySet:
    """Return ids of requests whose reference is ``term`` or that hold ``term`` as an identifier."""
    term = term.strip()
    if not term:
        return ErasureRequest.objects.none().values("pk")
    hasher = pii_hasher()
    candidates = search_term_hashes(term, hasher=hasher, phone_region=settings.LETHE_PHONE_REGION)
    if REFERENCE_PATTERN.match(term):
        matches = Q(reference__iexact=term)
    elif term.upper().startswith("ER-"):
        matches = Q(reference__istartswith=term)
    else:
        matches = Q(pk__in=[])
    if candidates:
        overlap = Q()
        for item in candidates:
            overlap |= Q(entity_type=item.entity_type.value, digest=item.digest)
        hashed = SubjectIdentifierHash.objects.filter(overlap, key_id=hasher.key_id)
        matches |= Q(pk__in=hashed.values("erasure_request_id"))
    return ErasureRequest.objects.filter(matches).values("pk")


def erasure_request_list(*, filters: ErasureRequestFilters, user, now: datetime | None = None) -> QuerySet:
    """Return the requests that match ``filters``, the nearest deadline first."""
    now = now or timezone.now()
    queryset = ErasureRequest.objects.select_related("assigned_officer", "duplicate_of")
    if filters.status == STATUS_FILTER_OPEN:
        queryset = queryset.filter(status__in=OPEN_STATUSES)
    elif filters.status == STATUS_FILTER_CLOSED:
        queryset = queryset.filter(status__in=CLOSED_STATUSES)
    elif filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.assignee == ASSIGNEE_ME:
        queryset = queryset.filter(assigned_officer=user)
    elif filters.assignee == ASSIGNEE_NOBODY:
        queryset = queryset.filter(assigned_officer__isnull=True)
    elif filters.assignee:
        queryset = queryset.filter(assigned_officer__username=filters.assignee)
    urgency = Q()
    if filters.overdue:
        urgency |= Q(due_at__lte=now)
    if filters.due_soon:
        urgency |= Q(due_at__gt=now, due_at__lte=now + deadlines.due_soon_window())
    if filters.overdue or filters.due_soon:
        queryset = queryset.filter(urgency, status__in=OPEN_STATUSES)
    if filters.search:
        queryset = queryset.filter(pk__in=erasure_request_search_ids(filters.search))
    return queryset.order_by("due_at", "pk")


def status_filter_choices() -> list[tuple[str, str]]:
    """Return the status filter's options: open, closed, then every status."""
    return [(STATUS_FILTER_OPEN, "Open"), (STATUS_FILTER_CLOSED, "Closed"), *RequestStatus.choices]


def officer_list() -> QuerySet:
    """Return the active users who may manage requests, for assignment menus and filters."""
    return (
        get_user_model()
        .objects.with_perm(roles.MANAGE_REQUESTS, include_superusers=False)
        .filter(is_active=True)
        .order_by("username")
    )


def erasure_request_timeline(*, erasure_request: ErasureRequest) -> QuerySet:
    """Return the request's audit events, oldest first."""
    return AuditEvent.objects.filter(
        object_type=ErasureRequest._meta.label_lower, object_id=str(erasure_request.pk)
    ).order_by("sequence")


def erasure_request_identifiers_masked(*, erasure_request: ErasureRequest) -> dict[str, list[str]] | None:
    """Return the identifiers masked (``j***@example.com``), or None once they are purged.

    Decrypting one request to mask it is not a reveal: no clear value leaves this function.
    """
    if not erasure_request.identifiers_encrypted:
        return None
    subject = identifiers_decrypt(erasure_request.identifiers_encrypted)
    return subject_identifiers_masked(subject, phone_region=settings.LETHE_PHONE_REGION)


def erasure_request_identifier_hash_counts(*, erasure_request: ErasureRequest) -> dict[str, int]:
    """Return how many keyed hashes of each entity type the request holds (variants included)."""
    counts: dict[str, int] = {}
    for entity_type in erasure_request.identifier_hashes.values_list("entity_type", flat=True):
        counts[entity_type] = counts.get(entity_type, 0) + 1
    return counts


def erasure_request_identified_by_name_only(*, erasure_request: ErasureRequest) -> bool:
    """Return whether names are the request's only identifiers (``identified_by_names_only``).

    In ``bench/guard.py``'s corpus namesakes are the largest cause of other people's texts acted
    on. Read from the keyed hashes, so it still answers after the identifiers are purged.
    """
    return identified_by_names_only(
        erasure_request.identifier_hashes.filter(is_variant=False).values_list("entity_type", flat=True)
    )


def erasure_request_overlapping(*, erasure_request: ErasureRequest) -> QuerySet:
    """Return the other requests that share a direct identifier with this one (any status)."""
    own = erasure_request.identifier_hashes.filter(
        is_variant=False, entity_type__in=[t.value for t in DUPLICATE_EVIDENCE_TYPES]
    )
    overlap = Q()
    for entity_type, digest, key_id in own.values_list("entity_type", "digest", "key_id"):
        overlap |= Q(entity_type=entity_type, digest=digest, key_id=key_id)
    if not overlap:
        return ErasureRequest.objects.none()
    ids = SubjectIdentifierHash.objects.filter(overlap).values("erasure_request_id")
    return ErasureRequest.objects.filter(pk__in=ids).exclude(pk=erasure_request.pk).order_by("received_at")


# How each step is named in URLs (pages and API) and in ``available_actions``.
ACTION_SLUGS: dict[str, str] = {
    Action.VERIFY_IDENTITY: "verify-identity",
    Action.START_LOCATING: "start-locating",
    Action.SUBMIT_FOR_REVIEW: "submit-for-review",
    Action.APPROVE: "approve",
    Action.START_EXECUTING: "start-executing",
    Action.START_VERIFYING: "start-verifying",
    Action.COMPLETE: "complete",
    Action.EXTEND_DEADLINE: "extend",
    Action.ASSIGN: "assign",
    Action.SET_SCOPE: "scope",
    Action.REJECT: "reject",
    Action.WITHDRAW: "withdraw",
    Action.REVEAL_IDENTIFIERS: "reveal-identifiers",
}

# Steps shown on the detail page, in the order of the life cycle.
PAGE_ACTIONS = (
    Action.VERIFY_IDENTITY,
    Action.START_LOCATING,
    Action.SUBMIT_FOR_REVIEW,
    Action.APPROVE,
    Action.START_EXECUTING,
    Action.START_VERIFYING,
    Action.COMPLETE,
    Action.EXTEND_DEADLINE,
    Action.ASSIGN,
    Action.SET_SCOPE,
    Action.REJECT,
    Action.WITHDRAW,
    Action.REVEAL_IDENTIFIERS,
)


def erasure_request_available_actions(
    *, erasure_request: ErasureRequest, user, now: datetime | None = None
) -> list[str]:
    """Return the steps ``user`` may take on the request now, in life-cycle order."""
    now = now or timezone.now()
    available = []
    for action in PAGE_ACTIONS:
        rule = TRANSITIONS[action]
        if not roles.actor_may(user, rule.permission):
            continue
        if transition_refusal(erasure_request=erasure_request, action=action):
            continue
        if action == Action.EXTEND_DEADLINE and (
            erasure_request.is_extended or now >= erasure_request.first_due_at
        ):
            continue
        if action == Action.REVEAL_IDENTIFIERS and erasure_request.identifiers_purged_at:
            continue
        available.append(action)
    return available


def erasure_request_next_to_review() -> ErasureRequest | None:
    """Return the request in review with the nearest deadline: the officer's start panel offers it."""
    return ErasureRequest.objects.filter(status=RequestStatus.REVIEW).order_by("due_at", "pk").first()


#: The workflow's steps in order, as the request page's status bar shows them.
WORKFLOW_STEPS = (
    RequestStatus.RECEIVED,
    RequestStatus.IDENTITY_VERIFICATION,
    RequestStatus.LOCATING,
    RequestStatus.REVIEW,
    RequestStatus.APPROVED,
    RequestStatus.EXECUTING,
    RequestStatus.VERIFYING,
    RequestStatus.COMPLETED,
)


def erasure_request_workflow_steps(*, erasure_request: ErasureRequest) -> list[dict]:
    """Return the status bar: each step with its state, ``done``, ``current`` or ``todo``.

    A rejected or withdrawn request ends the bar there instead of at "completed": the steps it
    never reached are ``skipped``.
    """
    status = erasure_request.status
    steps = list(WORKFLOW_STEPS)
    if status in (RequestStatus.REJECTED, RequestStatus.WITHDRAWN):
        steps[-1] = RequestStatus(status)
        current = len(steps) - 1
    else:
        current = steps.index(status)
    rows = []
    for position, step in enumerate(steps):
        if position < current:
            state = "skipped" if status in (RequestStatus.REJECTED, RequestStatus.WITHDRAWN) else "done"
        elif position == current:
            state = "current"
        else:
            state = "todo"
        rows.append({"status": step.value, "label": step.label, "state": state})
    return rows
