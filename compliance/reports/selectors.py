"""Reads of audit reports for pages, the API and the register. Nothing here writes.

Drafts are rendered here on demand: a draft is a view of an open request, not a record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from compliance.models import AuditReport, report_id_for
from compliance.reports import sections
from compliance.reports.assembly import report_body_assemble
from compliance.reports.json_file import JSON_MEDIA_TYPE, report_json_render
from compliance.reports.limits import FRAMEWORK_SHORT_LABELS, FRAMEWORKS
from compliance.reports.pdf import PDF_MEDIA_TYPE, report_pdf_render
from compliance.reports.providers import ReportProviderError, report_section_prefetch
from compliance.reports.signing import sha256_hex

FORMAT_JSON = "json"
FORMAT_PDF = "pdf"
FORMATS = (FORMAT_JSON, FORMAT_PDF)


class ReportVersionNotFound(LookupError):
    """The request has no issued report of that version."""


class StoredReportAltered(RuntimeError):
    """A stored file no longer matches the SHA-256 recorded when it was issued."""


@dataclass(frozen=True)
class ReportFile:
    data: bytes
    filename: str
    media_type: str
    report: object | None  # the AuditReport, None for a draft
    body_sha256: str | None
    file_format: str

    @property
    def is_draft(self) -> bool:
        return self.report is None

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)


def audit_report_versions(*, erasure_request):
    """Return the request's issued reports, newest version first."""

    return (
        AuditReport.objects.filter(erasure_request=erasure_request)
        .select_related("issued_by", "erasure_request")
        .defer("pdf_bytes", "json_text")
        .order_by("-version")
    )


def audit_report_latest(*, erasure_request):
    """Return the request's newest issued report, or None."""

    return (
        AuditReport.objects.filter(erasure_request=erasure_request)
        .select_related("erasure_request")
        .order_by("-version")
        .first()
    )


def audit_report_get(*, erasure_request, version: int | None):
    """Return version ``version`` (None: the newest), or None when nothing is issued and none was asked for."""

    if version is None:
        return audit_report_latest(erasure_request=erasure_request)
    report = (
        AuditReport.objects.filter(erasure_request=erasure_request, version=version)
        .select_related("erasure_request")
        .first()
    )
    if report is None:
        issued = list(
            AuditReport.objects.filter(erasure_request=erasure_request)
            .order_by("version")
            .values_list("version", flat=True)
        )
        raise ReportVersionNotFound(
            f"{erasure_request.reference} has no report version {version}; issued versions: "
            f"{', '.join(map(str, issued)) or 'none'}."
        )
    return report


def report_draft_body(*, erasure_request, now: datetime | None = None) -> dict:
    """Return the body a report would have now, marked as a draft."""
    return report_body_assemble(erasure_request=erasure_request, now=now or timezone.now(), version=None)


def report_file(*, erasure_request, file_format: str, version: int | None = None) -> ReportFile:
    """Return the file to download: an issued version (default the newest) or, if none, a draft.

    A stored file is checked against its recorded SHA-256 before it leaves, so an altered row
    is refused (``StoredReportAltered``) instead of being handed out as genuine.
    """
    report = audit_report_get(erasure_request=erasure_request, version=version)
    if report is None:
        body = report_draft_body(erasure_request=erasure_request)
        draft = report_json_render(body=body, signer=None)
        filename = report_id_for(reference=erasure_request.reference, version=None)
        if file_format == FORMAT_JSON:
            return ReportFile(
                draft.text.encode("utf-8"), f"{filename}.json", JSON_MEDIA_TYPE, None, None, FORMAT_JSON
            )
        return ReportFile(
            report_pdf_render(body=body, signature=None),
            f"{filename}.pdf",
            PDF_MEDIA_TYPE,
            None,
            None,
            FORMAT_PDF,
        )
    if file_format == FORMAT_JSON:
        data, expected, media_type = report.json_text.encode("utf-8"), report.json_sha256, JSON_MEDIA_TYPE
    else:
        data, expected, media_type = bytes(report.pdf_bytes), report.pdf_sha256, PDF_MEDIA_TYPE
    if sha256_hex(data) != expected:
        raise StoredReportAltered(
            f"The stored {file_format.upper()} of {report.report_id} no longer matches the SHA-256 recorded "
            "when it was issued; it is not served. Check the database against the audit log."
        )
    return ReportFile(
        data, f"{report.report_id}.{file_format}", media_type, report, report.body_sha256, file_format
    )


def report_body_of(report) -> dict:
    """Return the body of a stored report (parsed from its JSON file)."""
    return json.loads(report.json_text)["body"]


def report_signature_of(report) -> dict:
    return json.loads(report.json_text)["signature"]


def frameworks_applied_now(*, erasure_request) -> list[str]:
    """Return the frameworks applied so far, from the jobs section's providers."""
    applied = sections.frameworks_applied(sections.report_section_jobs(erasure_request))
    return [name for name in FRAMEWORKS if name in applied]


@dataclass
class AuditorRequestRow:
    erasure_request: object
    deadline: str
    frameworks_applied: list[str] | None  # None: a provider failed
    report: object | None  # the newest issued AuditReport

    @property
    def framework_labels(self) -> list[str] | None:
        if self.frameworks_applied is None:
            return None
        return [FRAMEWORK_SHORT_LABELS.get(name, name) for name in self.frameworks_applied]


def auditor_request_rows(*, queryset, now: datetime | None = None) -> list[AuditorRequestRow]:
    """Return, for each request of ``queryset``, what the auditor's list shows.

    Frameworks come from the newest issued report when there is one (what was certified), else
    from the providers (what has been applied so far).
    """

    now = now or timezone.now()
    requests = list(queryset)
    latest: dict[int, AuditReport] = {}
    for report in (
        AuditReport.objects.filter(erasure_request__in=requests)
        .defer("pdf_bytes")
        .order_by("erasure_request_id", "version")
    ):
        latest[report.erasure_request_id] = report
    # The jobs of the requests without a report, read for all of them at once.
    report_section_prefetch(section="jobs", erasure_requests=[r for r in requests if r.pk not in latest])
    rows = []
    for erasure_request in requests:
        report = latest.get(erasure_request.pk)
        if report is not None:
            frameworks = report_body_of(report)["summary"]["frameworks_applied"]
        else:
            try:
                frameworks = frameworks_applied_now(erasure_request=erasure_request)
            except ReportProviderError:
                frameworks = None  # the page says "unavailable" rather than failing as a whole
        rows.append(
            AuditorRequestRow(
                erasure_request, sections.deadline_outcome(erasure_request, now=now), frameworks, report
            )
        )
    return rows


def audit_report_newest() -> AuditReport | None:
    """Return the report issued last, with its request: the auditor's start panel offers it."""
    return AuditReport.objects.select_related("erasure_request").order_by("-issued_at", "-pk").first()
