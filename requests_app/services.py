"""Every change to an erasure request: its creation, each step of its life, its housekeeping.

One function per transition. Each one checks the actor's permission (``compliance.roles``) and
the request's current status first, then changes the row and appends the audit event inside one
``transaction.atomic``, so the change and its record exist together or not at all. A refused
transition raises ``TransitionNotAllowed``, bad input ``ErasureRequestError`` (both
``ValidationError``s, with messages per field) and a missing permission ``ActionNotPermitted``;
in every case nothing is written.

Later stages add their own conditions to a transition without editing it: a check listed under
the action in ``settings.LETHE_TRANSITION_CHECKS`` returns a message when the transition must
wait, ``None`` when it may go ahead; what follows a transition (the search that entering
locating starts) is listed in ``settings.LETHE_TRANSITION_FOLLOW_UPS`` and runs inside its
transaction (compliance/extensions.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from compliance import roles
from compliance.audit import audit_event_record
from compliance.extensions import extension_list
from requests_app import deadlines
from requests_app.identifiers import (
    DUPLICATE_EVIDENCE_TYPES,
    SubjectIdentifiers,
    identifier_hashes,
    identifier_warnings,
    identifiers_decrypt,
    identifiers_encrypt,
    identifiers_reencrypt,
    pii_hasher,
    subject_identifiers_clean,
)
from requests_app.models import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    Channel,
    ErasureRequest,
    IdentityMethod,
    LegalGround,
    ReferenceCounter,
    RejectionGround,
    RequestStatus,
    SubjectIdentifierHash,
)

logger = logging.getLogger(__name__)

MAX_NOTE_LENGTH = 2000
MAX_EXPLANATION_LENGTH = 4000
MAX_SCOPE_IDS = 200


class ErasureRequestError(ValidationError):
    """The input cannot be accepted; ``message_dict`` says which field is wrong and why."""


class TransitionNotAllowed(ErasureRequestError):
    """The request's current state does not allow this step now."""


class ActionNotPermitted(PermissionDenied):
    """The actor's role does not allow this step."""


# --- the state machine -------------------------------------------------------------------------


class Action:
    """Names of the steps, as used in audit events, pages and the API (with dashes there)."""

    VERIFY_IDENTITY = "verify_identity"
    START_LOCATING = "start_locating"
    SUBMIT_FOR_REVIEW = "submit_for_review"
    APPROVE = "approve"
    START_EXECUTING = "start_executing"
    START_VERIFYING = "start_verifying"
    COMPLETE = "complete"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    EXTEND_DEADLINE = "extend_deadline"
    ASSIGN = "assign"
    SET_SCOPE = "set_scope"
    REVEAL_IDENTIFIERS = "reveal_identifiers"


@dataclass(frozen=True)
class TransitionRule:
    from_statuses: tuple[str, ...]
    to_status: str | None  # None: the step changes the request but not its status
    permission: str
    audit_action: str
    # Steps that workers take when jobs end may be recorded by the system (actor None).
    system_may_act: bool = False


PRE_APPROVAL_STATUSES = (
    RequestStatus.RECEIVED,
    RequestStatus.IDENTITY_VERIFICATION,
    RequestStatus.LOCATING,
    RequestStatus.REVIEW,
)

TRANSITIONS: dict[str, TransitionRule] = {
    Action.VERIFY_IDENTITY: TransitionRule(
        (RequestStatus.RECEIVED,),
        RequestStatus.IDENTITY_VERIFICATION,
        roles.MANAGE_REQUESTS,
        "erasure_request.identity_verified",
    ),
    Action.START_LOCATING: TransitionRule(
        (RequestStatus.IDENTITY_VERIFICATION, RequestStatus.REVIEW),
        RequestStatus.LOCATING,
        roles.MANAGE_REQUESTS,
        "erasure_request.locating_started",
    ),
    Action.SUBMIT_FOR_REVIEW: TransitionRule(
        (RequestStatus.LOCATING,),
        RequestStatus.REVIEW,
        roles.MANAGE_REQUESTS,
        "erasure_request.submitted_for_review",
        system_may_act=True,
    ),
    Action.APPROVE: TransitionRule(
        (RequestStatus.REVIEW,), RequestStatus.APPROVED, roles.MANAGE_REQUESTS, "erasure_request.approved"
    ),
    Action.START_EXECUTING: TransitionRule(
        (RequestStatus.APPROVED,),
        RequestStatus.EXECUTING,
        roles.MANAGE_REQUESTS,
        "erasure_request.execution_started",
        system_may_act=True,
    ),
    Action.START_VERIFYING: TransitionRule(
        (RequestStatus.EXECUTING,),
        RequestStatus.VERIFYING,
        roles.MANAGE_REQUESTS,
        "erasure_request.verification_started",
        system_may_act=True,
    ),
    Action.COMPLETE: TransitionRule(
        (RequestStatus.VERIFYING,),
        RequestStatus.COMPLETED,
        roles.MANAGE_REQUESTS,
        "erasure_request.completed",
        system_may_act=True,
    ),
    Action.REJECT: TransitionRule(
        OPEN_STATUSES, RequestStatus.REJECTED, roles.MANAGE_REQUESTS, "erasure_request.rejected"
    ),
    Action.WITHDRAW: TransitionRule(
        OPEN_STATUSES, RequestStatus.WITHDRAWN, roles.MANAGE_REQUESTS, "erasure_request.withdrawn"
    ),
    Action.EXTEND_DEADLINE: TransitionRule(
        OPEN_STATUSES, None, roles.MANAGE_REQUESTS, "erasure_request.deadline_extended"
    ),
    Action.ASSIGN: TransitionRule(OPEN_STATUSES, None, roles.MANAGE_REQUESTS, "erasure_request.assigned"),
    Action.SET_SCOPE: TransitionRule(
        PRE_APPROVAL_STATUSES, None, roles.MANAGE_REQUESTS, "erasure_request.scope_changed"
    ),
    Action.REVEAL_IDENTIFIERS: TransitionRule(
        tuple(RequestStatus), None, roles.REVEAL_IDENTIFIERS, "erasure_request.identifiers_revealed"
    ),
}

# Steps that act on the person's data: none may happen before their identity is verified.
REQUIRES_VERIFIED_IDENTITY = frozenset(
    {
        Action.START_LOCATING,
        Action.SUBMIT_FOR_REVIEW,
        Action.APPROVE,
        Action.START_EXECUTING,
        Action.START_VERIFYING,
        Action.COMPLETE,
    }
)


def transition_checks(action: str) -> list[Callable[[ErasureRequest], str | None]]:
    """Return the checks ``settings.LETHE_TRANSITION_CHECKS`` lists for ``action``, in order."""
    return extension_list("LETHE_TRANSITION_CHECKS", action)


def transition_refusal(*, erasure_request: ErasureRequest, action: str) -> str | None:
    """Return why ``action`` cannot happen to the request in its current state, or None."""
    refusal = transition_state_refusal(erasure_request=erasure_request, action=action)
    if refusal:
        return refusal
    for check in transition_checks(action):
        message = check(erasure_request)
        if message:
            return message
    return None


def transition_state_refusal(*, erasure_request: ErasureRequest, action: str) -> str | None:
    """Return why the request's status or unverified identity forbids ``action``, or None.

    The part of ``transition_refusal`` that needs no other stage: the decision page asks it
    before validating a plan, whose decisions the stages' own checks then look at.
    """
    rule = TRANSITIONS[action]
    if erasure_request.status not in rule.from_statuses:
        return (
            f"{erasure_request.reference} is {erasure_request.get_status_display().lower()}; "
            f"'{action.replace('_', ' ')}' is possible only when it is "
            f"{_status_list(rule.from_statuses)}."
        )
    if action in REQUIRES_VERIFIED_IDENTITY and not erasure_request.identity_verified:
        return (
            f"{erasure_request.reference}: the person's identity has not been verified; "
            "nothing can be located or executed before that (Art. 12(6))."
        )
    return None


def _status_list(statuses: Sequence[str]) -> str:
    labels = [RequestStatus(status).label.lower() for status in statuses]
    if set(statuses) == set(OPEN_STATUSES):
        return "open"
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def _lock(erasure_request: ErasureRequest) -> ErasureRequest:
    """Return the request's row locked for this transaction, so two steps cannot interleave."""
    return ErasureRequest.objects.select_for_update().get(pk=erasure_request.pk)


def _guard(*, erasure_request: ErasureRequest, action: str, actor) -> ErasureRequest:
    """Check permission, then state; return the locked row. Call inside ``transaction.atomic``."""
    rule = TRANSITIONS[action]
    if not roles.actor_may(actor, rule.permission, system=rule.system_may_act):
        who = roles.actor_name(actor)
        raise ActionNotPermitted(f"{who} may not {action.replace('_', ' ')} erasure requests.")
    locked = _lock(erasure_request)
    refusal = transition_refusal(erasure_request=locked, action=action)
    if refusal:
        raise TransitionNotAllowed(refusal)
    return locked


def _record(
    *, erasure_request: ErasureRequest, action: str, actor, previous_status: str, details: dict | None = None
) -> None:
    body = {
        "reference": erasure_request.reference,
        "from_status": previous_status,
        "to_status": erasure_request.status,
    }
    body.update(details or {})
    audit_event_record(
        actor=actor, action=TRANSITIONS[action].audit_action, target=erasure_request, details=body
    )


def _refresh(original: ErasureRequest) -> ErasureRequest:
    """Bring the caller's instance up to date with what the transition wrote, and return it."""
    original.refresh_from_db()
    return original


def _text(
    value: str | None, *, field_name: str, label: str, required: bool, max_length: int = MAX_NOTE_LENGTH
) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ErasureRequestError({field_name: [f"{label} is required."]})
    if len(text) > max_length:
        raise ErasureRequestError(
            {field_name: [f"{label} is {len(text)} characters long; at most {max_length} are accepted."]}
        )
    return text


def _not_in_future(moment: datetime, *, field_name: str, label: str, now: datetime) -> None:
    if timezone.is_naive(moment):
        raise ErasureRequestError({field_name: [f"{label} must include a time zone."]})
    if moment > now:
        raise ErasureRequestError({field_name: [f"{label} cannot be in the future."]})


def received_at_validate(received_at: datetime, *, now: datetime | None = None) -> None:
    """Raise ``ErasureRequestError`` on "received_at" if the moment is in the future or naive."""
    _not_in_future(
        received_at, field_name="received_at", label="The date of receipt", now=now or timezone.now()
    )


def subject_identifiers_validate(subject: SubjectIdentifiers):
    """Return the identifiers cleaned and normalised, or raise ``ErasureRequestError`` per list."""
    try:
        return subject_identifiers_clean(subject, phone_region=settings.LETHE_PHONE_REGION)
    except ValidationError as error:
        raise ErasureRequestError(error.message_dict) from None


def subject_identifiers_warnings(subject: SubjectIdentifiers) -> list[str]:
    """Return what the officer should know about identifiers that were accepted (no values quoted)."""
    return identifier_warnings(subject_identifiers_validate(subject))


def _choice(value: str, choices, *, field_name: str, label: str) -> str:
    if value not in choices.values:
        known = ", ".join(choices.values)
        raise ErasureRequestError({field_name: [f"Unknown {label} {value!r}; choose one of: {known}."]})
    return value


def _officer_check(officer, *, field_name: str) -> None:
    if not roles.actor_may(officer, roles.MANAGE_REQUESTS, system=True):
        raise ErasureRequestError(
            {field_name: [f"{officer.get_username()} is not an active privacy officer."]}
        )


def _scope_ids(values: Iterable | None, *, field_name: str) -> list[int]:
    ids = list(values or [])
    if len(ids) > MAX_SCOPE_IDS:
        raise ErasureRequestError({field_name: [f"At most {MAX_SCOPE_IDS} ids are accepted."]})
    cleaned = []
    for position, value in enumerate(ids, start=1):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ErasureRequestError({field_name: [f"Id {position} is not a positive whole number."]})
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


def _scope_clean(*, scope_all: bool, dataset_ids, model_version_ids) -> tuple[bool, list[int], list[int]]:
    datasets = _scope_ids(dataset_ids, field_name="scope_dataset_ids")
    model_versions = _scope_ids(model_version_ids, field_name="scope_model_version_ids")
    if scope_all:
        return True, [], []
    if not datasets and not model_versions:
        raise ErasureRequestError(
            {"scope_all": ["Name at least one data set or model version, or put everything in scope."]}
        )
    return False, datasets, model_versions


# --- creation --------------------------------------------------------------------------------


def _reference_next(*, year: int) -> str:
    """Return the next ``ER-<year>-<number>``, counted per year under a row lock."""
    ReferenceCounter.objects.bulk_create([ReferenceCounter(year=year)], ignore_conflicts=True)
    counter = ReferenceCounter.objects.select_for_update().get(year=year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return f"ER-{year}-{counter.last_number:06d}"


def _open_duplicates(hashes, *, key_id: str, exclude_pk: int | None = None) -> list[ErasureRequest]:
    """Return open requests that share a direct identifier (as a keyed hash) with ``hashes``."""
    evidence = [h for h in hashes if h.entity_type in DUPLICATE_EVIDENCE_TYPES and not h.is_variant]
    if not evidence:
        return []
    overlap = Q()
    for item in evidence:
        overlap |= Q(entity_type=item.entity_type.value, digest=item.digest)
    request_ids = SubjectIdentifierHash.objects.filter(overlap, key_id=key_id, is_variant=False).values_list(
        "erasure_request_id", flat=True
    )
    found = ErasureRequest.objects.open().filter(pk__in=request_ids)
    if exclude_pk is not None:
        found = found.exclude(pk=exclude_pk)
    return list(found.order_by("received_at", "pk"))


def erasure_request_create(
    *,
    subject: SubjectIdentifiers,
    legal_ground: str,
    actor,
    received_at: datetime | None = None,
    channel: str = Channel.EMAIL,
    assigned_officer=None,
    scope_all: bool = True,
    scope_dataset_ids: Iterable[int] = (),
    scope_model_version_ids: Iterable[int] = (),
    now: datetime | None = None,
) -> ErasureRequest:
    """Record a new request: identifiers encrypted, their keyed hashes stored, deadline set.

    A request that shares an e-mail, phone number, account id or address with an open request
    is flagged as its duplicate and linked to the oldest one; it is still recorded, because the
    person may have written twice with something new. ``assigned_officer`` defaults to the
    actor when the actor is an officer.
    """
    now = now or timezone.now()
    if not roles.actor_may(actor, roles.MANAGE_REQUESTS):
        raise ActionNotPermitted("Only privacy officers may record erasure requests.")
    received_at = received_at or now
    received_at_validate(received_at, now=now)
    _choice(legal_ground, LegalGround, field_name="legal_ground", label="legal ground")
    _choice(channel, Channel, field_name="channel", label="channel")
    if assigned_officer is None and actor.has_perm(roles.MANAGE_REQUESTS):
        assigned_officer = actor
    _officer_check(assigned_officer, field_name="assigned_officer")
    scope_all, dataset_ids, model_version_ids = _scope_clean(
        scope_all=scope_all, dataset_ids=scope_dataset_ids, model_version_ids=scope_model_version_ids
    )
    cleaned = subject_identifiers_validate(subject)
    hasher = pii_hasher()
    hashes = identifier_hashes(cleaned, hasher=hasher)
    first_due = deadlines.first_due_at(received_at)

    with transaction.atomic():
        duplicates = _open_duplicates(hashes, key_id=hasher.key_id)
        erasure_request = ErasureRequest.objects.create(
            reference=_reference_next(year=timezone.localtime(received_at).year),
            received_at=received_at,
            channel=channel,
            legal_ground=legal_ground,
            identifiers_encrypted=identifiers_encrypt(cleaned.subject),
            scope_all=scope_all,
            scope_dataset_ids=dataset_ids,
            scope_model_version_ids=model_version_ids,
            first_due_at=first_due,
            due_at=first_due,
            assigned_officer=assigned_officer,
            created_by=actor,
            duplicate_of=duplicates[0] if duplicates else None,
        )
        SubjectIdentifierHash.objects.bulk_create(
            SubjectIdentifierHash(
                erasure_request=erasure_request,
                entity_type=item.entity_type.value,
                digest=item.digest,
                key_id=hasher.key_id,
                is_variant=item.is_variant,
            )
            for item in hashes
        )
        audit_event_record(
            actor=actor,
            action="erasure_request.created",
            target=erasure_request,
            details={
                "reference": erasure_request.reference,
                "channel": channel,
                "legal_ground": legal_ground,
                "received_at": received_at.isoformat(),
                "due_at": first_due.isoformat(),
                "identifier_counts": cleaned.subject.counts(),
                "hash_key_id": hasher.key_id,
                "assigned_officer": assigned_officer.get_username() if assigned_officer else None,
                "scope_all": scope_all,
                "scope_dataset_ids": dataset_ids,
                "scope_model_version_ids": model_version_ids,
                "duplicate_of": duplicates[0].reference if duplicates else None,
                "overlapping_open_requests": [d.reference for d in duplicates],
            },
        )
    logger.info(
        "erasure_request.created",
        extra={"reference": erasure_request.reference, "duplicate": bool(duplicates)},
    )
    return erasure_request


# --- the life cycle ----------------------------------------------------------------------------


def erasure_request_verify_identity(
    *,
    erasure_request: ErasureRequest,
    actor,
    method: str,
    note: str = "",
    verified_at: datetime | None = None,
    now: datetime | None = None,
) -> ErasureRequest:
    """Record how and when the person's identity was verified (Art. 12(6)); unlocks locating.

    The note stays out of the audit event (it may describe a document); the event says that
    one was written.
    """
    now = now or timezone.now()
    _choice(method, IdentityMethod, field_name="method", label="verification method")
    note = _text(note, field_name="note", label="The note", required=method == IdentityMethod.OTHER)
    verified_at = verified_at or now
    _not_in_future(verified_at, field_name="verified_at", label="The time of verification", now=now)
    with transaction.atomic():
        locked = _guard(erasure_request=erasure_request, action=Action.VERIFY_IDENTITY, actor=actor)
        if verified_at < locked.received_at:
            raise ErasureRequestError(
                {"verified_at": ["Identity cannot have been verified before the request was received."]}
            )
        previous = locked.status
        locked.status = RequestStatus.IDENTITY_VERIFICATION
        locked.identity_method = method
        locked.identity_note = note
        locked.identity_verified_by = actor
        locked.identity_verified_at = verified_at
        locked.save()
        _record(
            erasure_request=locked,
            action=Action.VERIFY_IDENTITY,
            actor=actor,
            previous_status=previous,
            details={"method": method, "verified_at": verified_at.isoformat(), "note_given": bool(note)},
        )
    return _refresh(erasure_request)


def _simple_transition(
    *, erasure_request: ErasureRequest, action: str, actor, note: str, extra: dict | None = None
) -> ErasureRequest:
    note = _text(note, field_name="note", label="The note", required=False)
    rule = TRANSITIONS[action]
    with transaction.atomic():
        locked = _guard(erasure_request=erasure_request, action=action, actor=actor)
        previous = locked.status
        locked.status = rule.to_status
        if rule.to_status in CLOSED_STATUSES:
            locked.closed_at = timezone.now()
        locked.save()
        details = {"note": note} if note else {}
        details.update(extra or {})
        _record(erasure_request=locked, action=action, actor=actor, previous_status=previous, details=details)
        for follow_up in extension_list("LETHE_TRANSITION_FOLLOW_UPS", action):
            follow_up(erasure_request=locked)
    return _refresh(erasure_request)


def erasure_request_start_locating(
    *, erasure_request: ErasureRequest, actor, note: str = ""
) -> ErasureRequest:
    """Start searching the training data for the person's records (again, from review)."""
    return _simple_transition(
        erasure_request=erasure_request, action=Action.START_LOCATING, actor=actor, note=note
    )


def erasure_request_submit_for_review(
    *, erasure_request: ErasureRequest, actor, note: str = "", details: dict | None = None
) -> ErasureRequest:
    """Hand the located candidates to the officer's review.

    ``details`` lets the locating stage record its counts (no raw personal data) in the event.
    """
    return _simple_transition(
        erasure_request=erasure_request,
        action=Action.SUBMIT_FOR_REVIEW,
        actor=actor,
        note=note,
        extra=details,
    )


def erasure_request_approve(*, erasure_request: ErasureRequest, actor, note: str = "") -> ErasureRequest:
    """Approve the erasure as reviewed; the checks listed for "approve" (e.g. a job plan) must pass."""
    return _simple_transition(erasure_request=erasure_request, action=Action.APPROVE, actor=actor, note=note)


def erasure_request_start_executing(
    *, erasure_request: ErasureRequest, actor, note: str = "", details: dict | None = None
) -> ErasureRequest:
    """Mark the approved erasure as being carried out (jobs queued); ``actor`` None: the system."""
    return _simple_transition(
        erasure_request=erasure_request, action=Action.START_EXECUTING, actor=actor, note=note, extra=details
    )


def erasure_request_start_verifying(
    *, erasure_request: ErasureRequest, actor, note: str = "", details: dict | None = None
) -> ErasureRequest:
    """Mark execution done and verification under way; ``actor`` None: the system."""
    return _simple_transition(
        erasure_request=erasure_request, action=Action.START_VERIFYING, actor=actor, note=note, extra=details
    )


def erasure_request_complete(
    *, erasure_request: ErasureRequest, actor, note: str = "", details: dict | None = None
) -> ErasureRequest:
    """Close the request as done; the checks listed for "complete" (e.g. jobs verified) must pass."""
    return _simple_transition(
        erasure_request=erasure_request, action=Action.COMPLETE, actor=actor, note=note, extra=details
    )


def rejection_reply_render(*, erasure_request: ErasureRequest, ground: str, explanation: str) -> str:
    """Return the reply to the person: the ground, the reasons and their rights (Art. 12(4))."""
    return (
        render_to_string(
            "requests_app/rejection_reply.txt",
            {
                "reference": erasure_request.reference,
                "received_at": erasure_request.received_at,
                "ground_label": RejectionGround(ground).label,
                "explanation": explanation,
                "supervisory_authority": settings.LETHE_SUPERVISORY_AUTHORITY,
            },
        ).strip()
        + "\n"
    )


def erasure_request_reject(
    *, erasure_request: ErasureRequest, actor, ground: str, explanation: str
) -> ErasureRequest:
    """Refuse the request with an Art. 17(3) exemption or an Art. 12(5) reason, and write the reply.

    The reply tells the person why and that they may complain to a supervisory authority and
    seek a judicial remedy (Art. 12(4)); it names no identifier of theirs.
    """
    _choice(ground, RejectionGround, field_name="ground", label="rejection ground")
    explanation = _text(
        explanation,
        field_name="explanation",
        label="The explanation",
        required=True,
        max_length=MAX_EXPLANATION_LENGTH,
    )
    with transaction.atomic():
        locked = _guard(erasure_request=erasure_request, action=Action.REJECT, actor=actor)
        previous = locked.status
        locked.status = RequestStatus.REJECTED
        locked.closed_at = timezone.now()
        locked.rejection_ground = ground
        locked.rejection_explanation = explanation
        locked.rejection_reply = rejection_reply_render(
            erasure_request=locked, ground=ground, explanation=explanation
        )
        locked.save()
        _record(
            erasure_request=locked,
            action=Action.REJECT,
            actor=actor,
            previous_status=previous,
            details={"ground": ground, "explanation": explanation},
        )
    return _refresh(erasure_request)


def erasure_request_withdraw(*, erasure_request: ErasureRequest, actor, note: str = "") -> ErasureRequest:
    """Close the request because the person withdrew it."""
    note = _text(note, field_name="note", label="The note", required=False)
    with transaction.atomic():
        locked = _guard(erasure_request=erasure_request, action=Action.WITHDRAW, actor=actor)
        previous = locked.status
        locked.status = RequestStatus.WITHDRAWN
        locked.closed_at = timezone.now()
        locked.withdrawal_note = note
        locked.save()
        _record(
            erasure_request=locked,
            action=Action.WITHDRAW,
            actor=actor,
            previous_status=previous,
            details={"note_given": bool(note)},
        )
    return _refresh(erasure_request)


def erasure_request_extend_deadline(
    *,
    erasure_request: ErasureRequest,
    actor,
    until: datetime,
    reason: str,
    notified_at: datetime | None = None,
    now: datetime | None = None,
) -> ErasureRequest:
    """Extend the deadline once, by at most two further months, with the reason (Art. 12(3)).

    Only before the first month ends. ``notified_at`` is when the person was told of the
    extension and its reasons (they must be, within the first month); default: now.
    """
    now = now or timezone.now()
    reason = _text(reason, field_name="reason", label="The reason", required=True)
    if timezone.is_naive(until):
        raise ErasureRequestError({"until": ["The new deadline must include a time zone."]})
    notified_at = notified_at or now
    _not_in_future(notified_at, field_name="notified_at", label="The time the person was told", now=now)
    with transaction.atomic():
        locked = _guard(erasure_request=erasure_request, action=Action.EXTEND_DEADLINE, actor=actor)
        problems = deadlines.extension_problems(
            received_at=locked.received_at,
            first_due=locked.first_due_at,
            already_extended=locked.is_extended,
            until=until,
            now=now,
        )
        if problems:
            errors: dict[str, list[str]] = {}
            for problem in problems:
                errors.setdefault(problem.field, []).append(problem.message)
            raise ErasureRequestError(errors)
        if notified_at < locked.received_at:
            raise ErasureRequestError(
                {"notified_at": ["The person cannot have been told before the request was received."]}
            )
        previous_due = locked.due_at
        locked.extended_until = until
        locked.due_at = until
        locked.extension_reason = reason
        locked.extension_notified_at = notified_at
        locked.due_soon_notified_at = None
        locked.save()
        _record(
            erasure_request=locked,
            action=Action.EXTEND_DEADLINE,
            actor=actor,
            previous_status=locked.status,
            details={
                "previous_due_at": previous_due.isoformat(),
                "due_at": until.isoformat(),
                "reason": reason,
                "notified_at": notified_at.isoformat(),
            },
        )
    return _refresh(erasure_request)


def erasure_request_assign(*, erasure_request: ErasureRequest, actor, officer) -> ErasureRequest:
    """Give the request to ``officer`` (an active privacy officer), or to nobody with None."""
    _officer_check(officer, field_name="officer")
    with transaction.atomic():
        locked = _guard(erasure_request=erasure_request, action=Action.ASSIGN, actor=actor)
        previous_officer = locked.assigned_officer
        if previous_officer == officer:
            return _refresh(erasure_request)
        locked.assigned_officer = officer
        locked.save()
        _record(
            erasure_request=locked,
            action=Action.ASSIGN,
            actor=actor,
            previous_status=locked.status,
            details={
                "previous_officer": previous_officer.get_username() if previous_officer else None,
                "officer": officer.get_username() if officer else None,
            },
        )
    return _refresh(erasure_request)


def erasure_request_set_scope(
    *,
    erasure_request: ErasureRequest,
    actor,
    scope_all: bool,
    dataset_ids: Iterable[int] = (),
    model_version_ids: Iterable[int] = (),
) -> ErasureRequest:
    """Set which data sets and model versions the erasure covers, before it is approved."""
    scope_all, datasets, model_versions = _scope_clean(
        scope_all=scope_all, dataset_ids=dataset_ids, model_version_ids=model_version_ids
    )
    with transaction.atomic():
        locked = _guard(erasure_request=erasure_request, action=Action.SET_SCOPE, actor=actor)
        locked.scope_all = scope_all
        locked.scope_dataset_ids = datasets
        locked.scope_model_version_ids = model_versions
        locked.save()
        _record(
            erasure_request=locked,
            action=Action.SET_SCOPE,
            actor=actor,
            previous_status=locked.status,
            details={
                "scope_all": scope_all,
                "scope_dataset_ids": datasets,
                "scope_model_version_ids": model_versions,
            },
        )
    return _refresh(erasure_request)


def erasure_request_reveal_identifiers(
    *, erasure_request: ErasureRequest, actor, reason: str = ""
) -> SubjectIdentifiers:
    """Return the person's identifiers in clear, and record who saw them and why.

    The event is written before the values are returned, in the same transaction: a reveal that
    leaves no trace cannot happen.
    """
    reason = _text(reason, field_name="reason", label="The reason", required=False)
    with transaction.atomic():
        locked = _guard(erasure_request=erasure_request, action=Action.REVEAL_IDENTIFIERS, actor=actor)
        if locked.identifiers_purged_at is not None:
            raise TransitionNotAllowed(
                f"{locked.reference}: the identifiers were purged on "
                f"{timezone.localtime(locked.identifiers_purged_at):%Y-%m-%d}; only their keyed "
                "hashes remain."
            )
        subject = identifiers_decrypt(locked.identifiers_encrypted)
        _record(
            erasure_request=locked,
            action=Action.REVEAL_IDENTIFIERS,
            actor=actor,
            previous_status=locked.status,
            details={"identifier_counts": subject.counts(), "reason": reason},
        )
    return subject


# --- housekeeping (beat tasks and management commands) --------------------------------------


@dataclass
class DeadlineFlags:
    overdue: list[str] = field(default_factory=list)
    due_soon: list[str] = field(default_factory=list)


def _officer_recipients(erasure_request: ErasureRequest) -> list[str]:
    """Return whom to tell about a deadline: the assigned officer, else every officer."""
    officer = erasure_request.assigned_officer
    if officer is not None and officer.is_active and officer.email:
        return [officer.email]
    officers = get_user_model().objects.with_perm(roles.MANAGE_REQUESTS, include_superusers=False)
    return sorted({user.email for user in officers if user.email})


def _deadline_mail(erasure_request: ErasureRequest, *, kind: str) -> tuple[str, str, list[str]]:
    context = {
        "erasure_request": erasure_request,
        "kind": kind,
        "url": settings.LETHE_SITE_URL + erasure_request.get_absolute_url(),
    }
    subject = render_to_string("requests_app/deadline_notice_subject.txt", context).strip()
    body = render_to_string("requests_app/deadline_notice.txt", context)
    return subject, body, _officer_recipients(erasure_request)


def _claim_flag(erasure_request: ErasureRequest, *, flag_field: str, now: datetime) -> bool:
    """Set ``flag_field`` if still empty; False when another run already did (no double notice)."""
    return bool(
        ErasureRequest.objects.filter(pk=erasure_request.pk, **{f"{flag_field}__isnull": True}).update(
            **{flag_field: now}
        )
    )


def erasure_requests_flag_deadlines(*, now: datetime | None = None) -> DeadlineFlags:
    """Flag open requests that became overdue or due soon, once each, and tell their officer.

    Each flag is claimed with a conditional UPDATE, so two beat runs never notify twice; the
    e-mail is sent after the flag and its audit event are committed.
    """
    now = now or timezone.now()
    flags = DeadlineFlags()
    open_requests = ErasureRequest.objects.open().select_related("assigned_officer")
    overdue = open_requests.filter(due_at__lte=now, overdue_notified_at__isnull=True)
    due_soon = open_requests.filter(
        due_at__gt=now, due_at__lte=now + deadlines.due_soon_window(), due_soon_notified_at__isnull=True
    )
    for kind, queryset, flag_field, bucket in (
        ("overdue", overdue, "overdue_notified_at", flags.overdue),
        ("due_soon", due_soon, "due_soon_notified_at", flags.due_soon),
    ):
        for erasure_request in queryset.order_by("due_at"):
            with transaction.atomic():
                if not _claim_flag(erasure_request, flag_field=flag_field, now=now):
                    continue
                subject, body, recipients = _deadline_mail(erasure_request, kind=kind)
                audit_event_record(
                    actor=None,
                    action=f"erasure_request.{kind}_flagged",
                    target=erasure_request,
                    details={
                        "reference": erasure_request.reference,
                        "due_at": erasure_request.due_at.isoformat(),
                        "officers_notified": len(recipients),
                    },
                )
                if recipients:
                    transaction.on_commit(
                        lambda s=subject, b=body, r=recipients: send_mail(
                            s, b, settings.DEFAULT_FROM_EMAIL, r, fail_silently=False
                        )
                    )
            bucket.append(erasure_request.reference)
            logger.info(
                "erasure_request.deadline_flagged",
                extra={"reference": erasure_request.reference, "kind": kind},
            )
    return flags


def erasure_requests_purge_identifiers(
    *, actor=None, now: datetime | None = None, retention_days: int | None = None
) -> list[str]:
    """Erase the identifiers of requests closed more than ``LETHE_RETENTION_DAYS`` ago.

    The encrypted identifiers and the free-text notes that may describe the person go; the keyed
    hashes stay, because the audit trail and the re-ingestion guard need them. One audit event
    per request. ``actor`` None is the beat task; a user needs the officer's permission.
    """
    now = now or timezone.now()
    if not roles.actor_may(actor, roles.MANAGE_REQUESTS, system=True):
        raise ActionNotPermitted("Only privacy officers may purge identifiers.")
    retention_days = settings.LETHE_RETENTION_DAYS if retention_days is None else retention_days
    if retention_days < 0:
        raise ErasureRequestError({"retention_days": ["The retention period cannot be negative."]})
    cutoff = now - timedelta(days=retention_days)
    due = (
        ErasureRequest.objects.closed()
        .filter(closed_at__lte=cutoff, identifiers_purged_at__isnull=True)
        .order_by("closed_at")
    )
    purged = []
    for candidate in due:
        with transaction.atomic():
            locked = _lock(candidate)
            if locked.identifiers_purged_at is not None or locked.is_open:
                continue
            locked.identifiers_encrypted = ""
            locked.identity_note = ""
            locked.withdrawal_note = ""
            locked.identifiers_purged_at = now
            locked.save()
            audit_event_record(
                actor=actor,
                action="erasure_request.identifiers_purged",
                target=locked,
                details={
                    "reference": locked.reference,
                    "closed_at": locked.closed_at.isoformat(),
                    "retention_days": retention_days,
                    "hashes_kept": locked.identifier_hashes.count(),
                },
            )
        purged.append(locked.reference)
        logger.info("erasure_request.identifiers_purged", extra={"reference": locked.reference})
    return purged


def erasure_requests_rehash_identifiers(*, actor=None) -> dict:
    """Re-hash every request's identifier hashes under the current PII index key; return counts.

    Run after ``LETHE_PII_HASH_KEY`` (and its id) changed: each request whose hashes are under
    another key has them rebuilt from its encrypted identifiers, cleaned as at intake, and its
    old-key hashes deleted, one transaction per request. A request whose identifiers were purged
    cannot be re-hashed: its old-key hashes are kept and it is counted in ``purged``.
    """
    if not roles.actor_may(actor, roles.MANAGE_REQUESTS, system=True):
        raise ActionNotPermitted("Only privacy officers may re-hash identifiers.")
    hasher = pii_hasher()
    stale = (
        SubjectIdentifierHash.objects.exclude(key_id=hasher.key_id)
        .values_list("erasure_request_id", flat=True)
        .distinct()
        .order_by("erasure_request_id")
    )
    rehashed = purged = 0
    for pk in list(stale):
        with transaction.atomic():
            row = ErasureRequest.objects.select_for_update().get(pk=pk)
            if not row.identifiers_encrypted:
                purged += 1
                continue
            cleaned = subject_identifiers_clean(
                identifiers_decrypt(row.identifiers_encrypted), phone_region=settings.LETHE_PHONE_REGION
            )
            SubjectIdentifierHash.objects.filter(erasure_request=row).delete()
            SubjectIdentifierHash.objects.bulk_create(
                SubjectIdentifierHash(
                    erasure_request=row,
                    entity_type=item.entity_type.value,
                    digest=item.digest,
                    key_id=hasher.key_id,
                    is_variant=item.is_variant,
                )
                for item in identifier_hashes(cleaned, hasher=hasher)
            )
        rehashed += 1
    counts = {
        "requests_rehashed": rehashed,
        "requests_purged_not_rehashed": purged,
        "hash_key_id": hasher.key_id,
    }
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action="erasure_request.identifier_hashes_rekeyed",
            object_type="requests_app.erasurerequest",
            object_id="*",
            details=counts,
        )
    return {"rehashed": rehashed, "purged": purged, "key_id": hasher.key_id}


def erasure_requests_rotate_identifier_keys(*, actor=None) -> int:
    """Re-encrypt every request's identifiers under the first key of ``LETHE_IDENTIFIER_KEYS``.

    Run after putting a new key first; afterwards the old keys can be removed. Rows are
    re-encrypted one transaction at a time so a failure leaves every row readable.
    """
    if not roles.actor_may(actor, roles.MANAGE_REQUESTS, system=True):
        raise ActionNotPermitted("Only privacy officers may rotate identifier keys.")
    rotated = 0
    pending = (
        ErasureRequest.objects.exclude(identifiers_encrypted="").order_by("pk").values_list("pk", flat=True)
    )
    for pk in pending.iterator():
        with transaction.atomic():
            row = ErasureRequest.objects.select_for_update().get(pk=pk)
            if not row.identifiers_encrypted:
                continue
            # update(), not save(): re-encryption is not a change to the request.
            ErasureRequest.objects.filter(pk=pk).update(
                identifiers_encrypted=identifiers_reencrypt(row.identifiers_encrypted)
            )
        rotated += 1
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action="erasure_request.identifier_keys_rotated",
            object_type="requests_app.erasurerequest",
            object_id="*",
            details={"requests_reencrypted": rotated, "keys_configured": len(settings.LETHE_IDENTIFIER_KEYS)},
        )
    return rotated
