"""Issuing audit reports and recording who downloaded or checked them.

A report is issued only for a closed request, inside one transaction that locks the request,
assembles and signs the body, renders the PDF, stores both files and appends the audit event;
if any step fails nothing is stored. A later issue is a new version that supersedes the last.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from compliance import roles
from compliance.audit import audit_event_record
from compliance.models import AuditReport, report_id_for
from compliance.reports.acceptance import verification_failures_accept
from compliance.reports.assembly import Superseded, report_body_assemble
from compliance.reports.json_file import report_json_render
from compliance.reports.pdf import report_pdf_render
from compliance.reports.schema import SCHEMA_VERSION
from compliance.reports.signing import SIGNATURE_ALGORITHM, report_signer_current, sha256_hex
from requests_app.models import ErasureRequest
from requests_app.services import erasure_request_complete

logger = logging.getLogger(__name__)

MAX_REASON_LENGTH = 2000


class ReportIssueRefused(Exception):
    """The report cannot be issued now; the message says why and what to do."""


class ReportActionNotPermitted(PermissionDenied):
    """The actor's role does not allow this."""


def _may_issue(actor) -> bool:
    return roles.actor_may(actor, roles.MANAGE_REQUESTS, system=True)


def audit_report_issue(*, erasure_request, actor, reason: str = "", now: datetime | None = None):
    """Issue the next version of the request's report and return the stored ``AuditReport``.

    Only for a closed request (completed, rejected or withdrawn): an open request has a draft.
    A second or later version needs ``reason`` (what it corrects), which the report prints.
    ``actor`` None is the system (a worker that completed the request).
    """

    if not _may_issue(actor):
        raise ReportActionNotPermitted(
            f"{roles.actor_name(actor)} may not issue audit reports; privacy officers do."
        )
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise ReportIssueRefused(
            f"The reason is {len(reason)} characters long; at most {MAX_REASON_LENGTH} are accepted."
        )
    now = now or timezone.now()
    with transaction.atomic():
        locked = ErasureRequest.objects.select_for_update().get(pk=erasure_request.pk)
        if locked.is_open:
            raise ReportIssueRefused(
                f"{locked.reference} is {locked.get_status_display().lower()}: a report is issued when the "
                "request is closed; until then its draft can be read."
            )
        previous = AuditReport.objects.filter(erasure_request=locked).order_by("-version").first()
        if previous is not None and not reason:
            raise ReportIssueRefused(
                f"{locked.reference} already has report version {previous.version}; say why a new version "
                "is issued (the reason is printed in it)."
            )
        version = previous.version + 1 if previous else 1
        supersedes = None
        if previous is not None:
            supersedes = Superseded(
                report_id=report_id_for(reference=locked.reference, version=previous.version),
                version=previous.version,
                body_sha256=previous.body_sha256,
            )
        body = report_body_assemble(
            erasure_request=locked,
            now=now,
            version=version,
            issued_by=actor,
            supersedes=supersedes,
            reason=reason,
        )
        signer = report_signer_current()
        signed = report_json_render(body=body, signer=signer)
        pdf = report_pdf_render(body=body, signature=signed.signature)
        report = AuditReport.objects.create(
            erasure_request=locked,
            version=version,
            supersedes=previous,
            reason=reason,
            schema_version=SCHEMA_VERSION,
            request_status=locked.status,
            json_text=signed.text,
            json_sha256=sha256_hex(signed.text.encode("utf-8")),
            body_sha256=signed.signature["sha256"],
            signature_alg=SIGNATURE_ALGORITHM,
            body_signature=signed.signature["signature"],
            key_id=signer.key_id,
            pdf_bytes=pdf,
            pdf_sha256=sha256_hex(pdf),
            pdf_signature=signer.sign(pdf),
            issued_at=now,
            issued_by=actor,
        )
        audit_event_record(
            actor=actor,
            action="audit_report.issued",
            target=report,
            details={
                "reference": locked.reference,
                "report_id": report.report_id,
                "version": version,
                "supersedes": supersedes.report_id if supersedes else None,
                "body_sha256": report.body_sha256,
                "json_sha256": report.json_sha256,
                "pdf_sha256": report.pdf_sha256,
                "key_id": signer.key_id,
                "frameworks_applied": body["summary"]["frameworks_applied"],
                "limits": body["summary"]["limits"],
            },
        )
    logger.info("audit_report.issued", extra={"reference": locked.reference, "version": version})
    return report


def erasure_request_complete_and_issue_report(
    *, erasure_request, actor, note: str = "", acceptances: Mapping[str, str] | None = None
):
    """Complete the request and issue its report in one transaction; return the report.

    ``acceptances`` (row key ``"<job id>:<metric>"`` → the officer's words) are recorded first
    (``acceptance.verification_failures_accept``): completing over a failed or unmeasured
    verification row needs one per row. Then the request workflow's own checks run
    (``erasure_request_complete``: role, status, identity, and the preconditions other apps
    register for "complete", such as every job finished and verified, every failed row accepted).
    If the report then cannot be assembled — a section fails, or a raw identifier would be
    printed — the completion and the acceptances are rolled back with it: a completed request
    always has its report.
    """

    with transaction.atomic():
        accepted = verification_failures_accept(
            erasure_request=erasure_request, actor=actor, acceptances=acceptances or {}
        )
        completed = erasure_request_complete(
            erasure_request=erasure_request,
            actor=actor,
            note=note,
            details={"failed_rows_accepted": accepted} if accepted else None,
        )
        return audit_report_issue(erasure_request=completed, actor=actor)


def erasure_request_complete_with_report(
    *, erasure_request, actor, note: str = "", acceptances: Mapping[str, str] | None = None
):
    """Complete the request and issue its signed report (``erasure_request_complete_and_issue_report``);
    return the request as it is now. Pages and the API complete through this function."""
    erasure_request_complete_and_issue_report(
        erasure_request=erasure_request, actor=actor, note=note, acceptances=acceptances
    )
    erasure_request.refresh_from_db()
    return erasure_request


def audit_report_download_record(
    *, actor, erasure_request, report, file_format: str, file_sha256: str, body_sha256: str | None, via: str
) -> None:
    """Append the audit event of one download (issued version or draft) by ``actor``."""
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action="audit_report.downloaded",
            target=report if report is not None else erasure_request,
            details={
                "reference": erasure_request.reference,
                "report_id": report.report_id
                if report is not None
                else report_id_for(reference=erasure_request.reference, version=None),
                "draft": report is None,
                "format": file_format,
                "file_sha256": file_sha256,
                "body_sha256": body_sha256,
                "via": via,
            },
        )


def register_download_record(
    *, actor, period_from: str | None, period_to: str | None, rows: int, file_sha256: str, via: str
) -> None:
    """Append the audit event of one download of the register of requests."""
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action="register.downloaded",
            object_type="compliance.register",
            object_id="csv",
            details={
                "from": period_from,
                "to": period_to,
                "rows": rows,
                "file_sha256": file_sha256,
                "via": via,
            },
        )


def report_verification_record(*, actor, result, file_sha256: str, via: str) -> None:
    """Append the audit event of one check of an uploaded report file, passed or failed."""
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action="audit_report.verified",
            object_type="compliance.auditreport",
            object_id=str(result.stored_pk or ""),
            details={
                "ok": result.ok,
                "kind": result.kind,
                "report_id": result.report_id,
                "file_sha256": file_sha256,
                "failed": [c.name for c in result.checks if not c.ok],
                "via": via,
            },
        )
