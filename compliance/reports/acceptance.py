"""Completing over failed checks is a decision: the officer's written acceptance of each failed row.

A request whose verification has a failed or unmeasured row (any row of the report's
verification section whose ``passed`` is not true, except the rows of the original model, which
is the baseline and makes no claim) completes only when each such row has been accepted in
writing, or verified again until it passes. An acceptance is an audit event
(``verification.failure_accepted``) on the request: the row it covers (``row_key``: the job that
measured it and the metric), the value and threshold it saw, and the officer's words. It covers
the row only while the row's value is the one accepted: a verification run again to a different
value must be accepted again (or pass).

``verification_failures_unaccepted_refusal`` is listed in ``LETHE_TRANSITION_CHECKS["complete"]``;
``verification_failures_accept`` is called by the completion service, inside its transaction, with
what the completion form or API was given, so a refused completion leaves no acceptance behind.
The report prints each acceptance beside its row and in its summary.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from compliance import roles
from compliance.audit import audit_event_record
from compliance.models import AuditEvent
from compliance.reports.chart import number_text
from compliance.reports.providers import report_section_provided, timestamp
from compliance.text import control_character_found
from requests_app.services import ErasureRequestError

ACCEPTANCE_ACTION = "verification.failure_accepted"
#: The role of the rows that are a baseline, not a claim (the model before the erasure).
BASELINE_ROLE = "original"
MIN_ACCEPTANCE_LENGTH = 10
MAX_ACCEPTANCE_LENGTH = 2000


class AcceptanceInvalid(ErasureRequestError):
    """An acceptance names no failed row, or its text is missing or too long; nothing was recorded."""


def row_key(row: Mapping) -> str:
    """Return the key that names one verification row: the job that measured it and the metric."""
    return f"{row.get('job_id')}:{row.get('metric')}"


def row_needs_acceptance(row: Mapping) -> bool:
    """Return whether completing over ``row`` needs a written acceptance: failed or not measured."""
    return row.get("passed") is not True and row.get("role") != BASELINE_ROLE


def _same_value(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return float(a) == float(b)


def verification_acceptances(erasure_request) -> dict[str, dict]:
    """Return the newest acceptance recorded for each row key of the request, with who and when."""
    events = AuditEvent.objects.filter(
        action=ACCEPTANCE_ACTION,
        object_type=erasure_request._meta.label_lower,
        object_id=str(erasure_request.pk),
    ).order_by("sequence")
    found: dict[str, dict] = {}
    for event in events:
        details = event.details if isinstance(event.details, dict) else {}
        key = details.get("row_key")
        if key:
            found[key] = {
                "text": details.get("acceptance", ""),
                "value": details.get("value"),
                "accepted_by": event.actor_label,
                "accepted_at": timestamp(event.occurred_at),
                "audit_sequence": event.sequence,
            }
    return found


def acceptance_for(row: Mapping, acceptances: Mapping[str, dict]) -> dict | None:
    """Return the acceptance that covers ``row`` as it is now, or None (none, or the value changed)."""
    accepted = acceptances.get(row_key(row))
    if accepted is None or not _same_value(accepted.get("value"), row.get("value")):
        return None
    return accepted


def verification_rows(erasure_request) -> list[dict]:
    """Return the rows of the request's report verification section, as its providers give them."""
    return report_section_provided(section="verification", erasure_request=erasure_request)["results"]


def verification_failures_unaccepted(erasure_request, *, rows: list[dict] | None = None) -> list[dict]:
    """Return the failed or unmeasured rows that no written acceptance covers, in report order."""
    rows = verification_rows(erasure_request) if rows is None else rows
    acceptances = verification_acceptances(erasure_request)
    return [row for row in rows if row_needs_acceptance(row) and acceptance_for(row, acceptances) is None]


def row_label(row: Mapping) -> str:
    """Return how a row is named to the officer: metric, job, value and what it needed."""
    value = row.get("value")
    # Printed with enough digits that a fail never reads as its limit (0.5600001 is not "0.56").
    shown = "not measured" if value is None else number_text(value, row.get("threshold"))
    return f"{row.get('metric')} of job #{row.get('job_id')} ({shown}; needs {row.get('condition') or row.get('comparator', '')})"


def verification_failures_unaccepted_refusal(erasure_request) -> str | None:
    """Return why the request cannot complete while a failed verification row is not accepted, or None.

    Listed in ``LETHE_TRANSITION_CHECKS["complete"]``.
    """
    open_rows = verification_failures_unaccepted(erasure_request)
    if not open_rows:
        return None
    named = "; ".join(row_label(row) for row in open_rows[:6])
    more = f"; and {len(open_rows) - 6} more" if len(open_rows) > 6 else ""
    return (
        f"{erasure_request.reference}: {len(open_rows)} verification row(s) failed or were not measured "
        f"and have no written acceptance: {named}{more}. Verify again, or accept each row in writing "
        'when completing (the acceptance fields of the completion form; "acceptances" in the API, '
        "keyed by job:metric)."
    )


def _clean_text(key: str, text) -> str:
    if not isinstance(text, str):
        raise AcceptanceInvalid({"acceptances": [f"{key}: the acceptance must be text."]})
    text = text.strip()
    if len(text) < MIN_ACCEPTANCE_LENGTH:
        raise AcceptanceInvalid(
            {
                "acceptances": [
                    f"{key}: write why completing over this row is acceptable "
                    f"(at least {MIN_ACCEPTANCE_LENGTH} characters)."
                ]
            }
        )
    if len(text) > MAX_ACCEPTANCE_LENGTH:
        raise AcceptanceInvalid(
            {
                "acceptances": [
                    f"{key}: the acceptance is {len(text)} characters long; at most "
                    f"{MAX_ACCEPTANCE_LENGTH} are accepted."
                ]
            }
        )
    if control_character_found(text, allow="\n\r\t"):
        raise AcceptanceInvalid({"acceptances": [f"{key}: the acceptance holds control characters."]})
    return text


def verification_failures_accept(*, erasure_request, actor, acceptances: Mapping[str, str]) -> list[str]:
    """Record the officer's written acceptance of failed rows; return the row keys accepted.

    ``acceptances`` maps row keys (``"<job id>:<metric>"``, as the refusal and the completion page
    name them) to the officer's words. Every key must name a row that needs an acceptance now;
    an unknown key, an empty text or a text of more than 2000 characters is refused and nothing
    is recorded. One audit event per row, in the caller's transaction.
    """
    if not acceptances:
        return []
    if not roles.actor_may(actor, roles.MANAGE_REQUESTS):
        raise AcceptanceInvalid({"acceptances": [f"{roles.actor_name(actor)} may not accept failed checks."]})
    rows = {row_key(row): row for row in verification_rows(erasure_request) if row_needs_acceptance(row)}
    unknown = sorted(key for key in acceptances if key not in rows)
    if unknown:
        raise AcceptanceInvalid(
            {
                "acceptances": [
                    f"No failed or unmeasured verification row is named {', '.join(unknown[:5])}; "
                    f"the rows to accept are: {', '.join(sorted(rows)) or 'none'}."
                ]
            }
        )
    cleaned = {key: _clean_text(key, text) for key, text in acceptances.items()}
    with transaction.atomic():
        for key, text in sorted(cleaned.items()):
            row = rows[key]
            audit_event_record(
                actor=actor,
                action=ACCEPTANCE_ACTION,
                target=erasure_request,
                details={
                    "reference": erasure_request.reference,
                    "row_key": key,
                    "job_id": row.get("job_id"),
                    "metric": row.get("metric"),
                    "subject": row.get("subject"),
                    "value": row.get("value"),
                    "threshold": row.get("threshold"),
                    "condition": row.get("condition"),
                    "acceptance": text,
                },
            )
    return sorted(cleaned)


def verification_rows_annotate(rows: list[dict], erasure_request) -> list[dict]:
    """Return the rows with the acceptance that covers each failed one (``acceptance``), for the report."""
    acceptances = verification_acceptances(erasure_request)
    annotated = []
    for row in rows:
        accepted = acceptance_for(row, acceptances) if row_needs_acceptance(row) else None
        if accepted is not None:
            row = {
                **row,
                "acceptance": {
                    "text": accepted["text"],
                    "accepted_by": accepted["accepted_by"],
                    "accepted_at": accepted["accepted_at"],
                    "audit_sequence": accepted["audit_sequence"],
                },
            }
        annotated.append(row)
    return annotated
