"""Put a report body together from its sections, check it against the schema and for raw identifiers.

``report_body_assemble`` is the one place that decides what a report says; the JSON file, the
PDF and the HTML page are renderings of the body it returns, so the three can never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from compliance.models import report_id_for
from compliance.reports import sections
from compliance.reports.limits import FRAMEWORKS
from compliance.reports.providers import timestamp
from compliance.reports.schema import SCHEMA_VERSION, report_body_validate
from compliance.reports.signing import canonical_json_text
from requests_app.identifiers import (
    IDENTIFIER_ENTITY_TYPES,
    IdentifierDecryptionError,
    identifiers_decrypt,
    subject_identifiers_clean,
)

GENERATOR = "Lethe"
STATUS_ISSUED = "issued"
STATUS_DRAFT = "draft"
IDENTIFIER_CHECK_PASSED = "passed"
IDENTIFIER_CHECK_PURGED = "not possible: identifiers purged"
# Shorter values (a two-letter name) would match ordinary words of the report.
MIN_CHECKED_IDENTIFIER_LENGTH = 3


class ReportContainsIdentifier(ValueError):
    """A raw identifier of the person appears in the report; the message names its kind, not its value."""


class ReportIdentifierCheckImpossible(ValueError):
    """The person's identifiers cannot be decrypted, so the report cannot be checked for them."""


@dataclass(frozen=True)
class Superseded:
    report_id: str
    version: int
    body_sha256: str


def report_body_assemble(
    *,
    erasure_request,
    now: datetime,
    version: int | None,
    issued_by=None,
    supersedes: Superseded | None = None,
    reason: str = "",
) -> dict:
    """Return the report body of ``erasure_request`` as of ``now``, checked and ready to sign.

    ``version`` None makes a draft. Raise ``ReportSchemaError`` when a section does not fit the
    schema, ``ReportProviderError`` when another app's section fails, and
    ``ReportContainsIdentifier`` when a raw identifier of the person turns up anywhere.
    """
    jobs = sections.report_section_jobs(erasure_request)
    decisions = sections.report_section_decisions(erasure_request)
    records = sections.report_section_records(erasure_request)
    verification = sections.report_section_verification(erasure_request)
    recipients = sections.report_section_recipients(erasure_request)
    timeline = sections.report_section_timeline(erasure_request, now=now)
    limits = sections.report_section_limits(jobs_section=jobs)
    limits = sections.report_section_limits_with_verification(
        limits, jobs_section=jobs, verification_section=verification
    )
    applied = sections.frameworks_applied(jobs)
    body = {
        "schema_version": SCHEMA_VERSION,
        "report": {
            "id": report_id_for(reference=erasure_request.reference, version=version),
            "version": version,
            "status": STATUS_ISSUED if version else STATUS_DRAFT,
            "generated_at": timestamp(now),
            "issued_by": issued_by.get_username() if issued_by is not None else None,
            "supersedes": None
            if supersedes is None
            else {
                "id": supersedes.report_id,
                "version": supersedes.version,
                "body_sha256": supersedes.body_sha256,
            },
            "reason": reason,
            "generator": GENERATOR,
            "raw_identifier_check": IDENTIFIER_CHECK_PASSED,
        },
        "summary": {
            "reference": erasure_request.reference,
            "status": erasure_request.status,
            "deadline": timeline["deadline"],
            "frameworks_applied": [name for name in FRAMEWORKS if name in applied],
            "frameworks_decided": sections.frameworks_decided(decisions),
            "records_confirmed": len(records["confirmed_records"])
            or sum(
                row.get("confirmed", 0)
                for row in records["candidates"]
                if isinstance(row.get("confirmed"), int)
            ),
            "jobs_total": len(jobs["jobs"]),
            "jobs_succeeded": sum(1 for job in jobs["jobs"] if job.get("status") == sections.JOB_SUCCEEDED),
            "verification_passed": sum(1 for row in verification["results"] if row.get("passed") is True),
            "verification_failed": sum(1 for row in verification["results"] if row.get("passed") is not True),
            "recipients_notified": sum(1 for row in recipients["recipients"] if row.get("notified_at")),
            "limits": [statement["code"] for statement in limits],
        },
        "request": sections.report_section_request(erasure_request),
        "timeline": timeline,
        "identity": sections.report_section_identity(erasure_request),
        "records": records,
        "decisions": decisions,
        "jobs": jobs,
        "verification": verification,
        "limits": limits,
        "recipients": recipients,
        "audit_chain": sections.report_section_audit_chain(erasure_request, full=version is not None),
    }
    report_body_validate(body)
    if not report_identifier_check(body=body, erasure_request=erasure_request):
        body["report"]["raw_identifier_check"] = IDENTIFIER_CHECK_PURGED
    return body


def _identifier_patterns(erasure_request) -> list[tuple[str, re.Pattern]] | None:
    """Return (kind, pattern) for every raw and normalised identifier; None once they are purged."""
    from django.core.exceptions import ValidationError

    if not erasure_request.identifiers_encrypted:
        return None
    try:
        subject = identifiers_decrypt(erasure_request.identifiers_encrypted)
    except IdentifierDecryptionError as error:
        raise ReportIdentifierCheckImpossible(
            f"{erasure_request.reference}: the report cannot be checked for the person's identifiers: {error}"
        ) from None
    try:
        normalised = subject_identifiers_clean(subject, phone_region=settings.LETHE_PHONE_REGION).normalised
    except ValidationError:
        normalised = {}  # stored values that today's rules refuse are still searched as written
    patterns = []
    for list_name in IDENTIFIER_ENTITY_TYPES:
        values = set(getattr(subject, list_name)) | set(normalised.get(list_name, []))
        for value in values:
            value = value.strip()
            if len(value) < MIN_CHECKED_IDENTIFIER_LENGTH:
                continue
            # Word boundaries only where the value starts or ends with a word character, so
            # "+44…" and "…@example.com" still match inside punctuation.
            start = r"(?<!\w)" if value[0].isalnum() else ""
            end = r"(?!\w)" if value[-1].isalnum() else ""
            patterns.append((list_name, re.compile(start + re.escape(value) + end, re.IGNORECASE)))
    return patterns


def report_identifier_check(*, body: dict, erasure_request) -> bool:
    """Raise ``ReportContainsIdentifier`` if a raw identifier of the person is anywhere in ``body``.

    Return False when the check cannot be made because the identifiers were purged (the body
    then says so), True when it passed. The values are decrypted in memory only; the error
    names the kind of identifier and the section, never the value.
    """
    patterns = _identifier_patterns(erasure_request)
    if patterns is None:
        return False
    for section_name, section in body.items():
        text = canonical_json_text(section)
        for kind, pattern in patterns:
            if pattern.search(text):
                raise ReportContainsIdentifier(
                    f"The report's {section_name} section contains one of the person's {kind.replace('_', ' ')} "
                    "in clear; it cannot be issued until the part that wrote it stores a keyed hash instead."
                )
    return True
