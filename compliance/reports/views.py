"""Pages for audit reports: the report as HTML, its downloads, issuing, the register, verification.

Views only translate between HTTP and ``compliance.reports``; every download and every check of
an uploaded file is an audit event written by the services. Auditors read and download;
officers also issue (and complete-and-issue); nobody else sees a report.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from compliance import roles
from compliance.access import PermissionPageMixin
from compliance.reports import acceptance, selectors, services
from compliance.reports.assembly import ReportContainsIdentifier, ReportIdentifierCheckImpossible
from compliance.reports.display import report_display_context
from compliance.reports.providers import ReportProviderError
from compliance.reports.register import (
    RegisterPeriodError,
    register_csv,
    register_period_parse,
    register_rows,
)
from compliance.reports.schema import ReportSchemaError
from compliance.reports.signing import public_keys, sha256_hex
from compliance.reports.verification import MAX_REPORT_BYTES, report_file_verify
from requests_app.models import ErasureRequest

logger = logging.getLogger(__name__)

#: The completion form names each failed row's acceptance field ``accept:<job id>:<metric>``.
ACCEPT_FIELD_PREFIX = "accept:"

# Errors that mean "this report cannot be put together now", shown to the reader as they are.
ASSEMBLY_ERRORS = (
    ReportProviderError,
    ReportSchemaError,
    ReportContainsIdentifier,
    ReportIdentifierCheckImpossible,
)


class AnyPermissionPageMixin(PermissionPageMixin):
    """Require any one of ``permissions_any`` (Django's mixin requires all of a list)."""

    permissions_any: tuple[str, ...] = ()

    def has_permission(self):
        user = self.request.user
        return any(user.has_perm(permission) for permission in self.permissions_any)


class ReportReaderMixin(AnyPermissionPageMixin):
    permissions_any = (roles.DOWNLOAD_REPORTS, roles.MANAGE_REQUESTS)


def _version_param(request) -> int | None:
    """Return ``?version=N`` as an int; a value that is not a positive number reads as "newest"."""
    value = request.GET.get("version", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _erasure_request(pk: int):

    return get_object_or_404(ErasureRequest.objects.select_related("assigned_officer"), pk=pk)


def _problem(request, *, title: str, message: str, status: int):
    return render(
        request, "compliance/report_problem.html", {"title": title, "message": message}, status=status
    )


def report_download_response(report_file: selectors.ReportFile) -> HttpResponse:
    """Return the file as an attachment, with its SHA-256 (and for issued reports its signature) in headers."""
    response = HttpResponse(report_file.data, content_type=report_file.media_type)
    response["Content-Disposition"] = f'attachment; filename="{report_file.filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Lethe-Report-Status"] = "draft" if report_file.is_draft else "issued"
    response["X-Lethe-File-SHA256"] = report_file.sha256
    if report_file.report is not None:
        report = report_file.report
        response["X-Lethe-Report-Id"] = report.report_id
        response["X-Lethe-Body-SHA256"] = report.body_sha256
        response["X-Lethe-Key-Id"] = report.key_id
        response["X-Lethe-Signature-Alg"] = report.signature_alg
        if report_file.file_format == selectors.FORMAT_PDF:
            if report.pdf_signature:
                response["X-Lethe-File-Signature"] = report.pdf_signature
            else:  # issued before Ed25519
                response["X-Lethe-File-HMAC"] = report.pdf_hmac
    return response


class ReportPageView(ReportReaderMixin, View):
    """The report as a web page: the newest issued version (or ``?version=N``), else the draft."""

    def get(self, request, pk: int):
        erasure_request = _erasure_request(pk)
        try:
            report = selectors.audit_report_get(
                erasure_request=erasure_request, version=_version_param(request)
            )
            if report is None:
                body, signature = selectors.report_draft_body(erasure_request=erasure_request), None
            else:
                body, signature = selectors.report_body_of(report), selectors.report_signature_of(report)
        except selectors.ReportVersionNotFound as error:
            return _problem(request, title="No such version", message=str(error), status=404)
        except ASSEMBLY_ERRORS as error:
            logger.warning(
                "audit_report.draft_failed",
                extra={"reference": erasure_request.reference, "error": type(error).__name__},
            )
            return _problem(request, title="The draft cannot be assembled", message=str(error), status=409)
        context = report_display_context(body=body, signature=signature)
        context.update(
            {
                "erasure_request": erasure_request,
                "shown_report": report,
                "versions": selectors.audit_report_versions(erasure_request=erasure_request),
                "can_issue": request.user.has_perm(roles.MANAGE_REQUESTS),
                "can_complete": request.user.has_perm(roles.MANAGE_REQUESTS)
                and erasure_request.status == "verifying",
                "accept_field_prefix": ACCEPT_FIELD_PREFIX,
            }
        )
        if context["can_complete"]:
            context["rows_to_accept"] = [
                {"key": acceptance.row_key(row), "label": acceptance.row_label(row), "row": row}
                for row in acceptance.verification_failures_unaccepted(
                    erasure_request, rows=body["verification"]["results"]
                )
            ]
        return render(request, "compliance/report_page.html", context)


class ReportDownloadView(ReportReaderMixin, View):
    """Download the report as PDF or JSON; the download is an audit event."""

    def get(self, request, pk: int, file_format: str):
        erasure_request = _erasure_request(pk)
        try:
            report_file = selectors.report_file(
                erasure_request=erasure_request, file_format=file_format, version=_version_param(request)
            )
        except selectors.ReportVersionNotFound as error:
            return _problem(request, title="No such version", message=str(error), status=404)
        except ASSEMBLY_ERRORS as error:
            return _problem(request, title="The draft cannot be assembled", message=str(error), status=409)
        except selectors.StoredReportAltered as error:
            logger.error("audit_report.stored_file_altered", extra={"reference": erasure_request.reference})
            return _problem(request, title="Stored report altered", message=str(error), status=500)
        services.audit_report_download_record(
            actor=request.user,
            erasure_request=erasure_request,
            report=report_file.report,
            file_format=file_format,
            file_sha256=report_file.sha256,
            body_sha256=report_file.body_sha256,
            via="page",
        )
        return report_download_response(report_file)


class ReportIssueView(PermissionPageMixin, View):
    """Issue the next version of a closed request's report (officers)."""

    permission_required = roles.MANAGE_REQUESTS

    def post(self, request, pk: int):
        erasure_request = _erasure_request(pk)
        try:
            report = services.audit_report_issue(
                erasure_request=erasure_request, actor=request.user, reason=request.POST.get("reason", "")
            )
        except (services.ReportIssueRefused, *ASSEMBLY_ERRORS) as error:
            messages.error(request, f"Nothing was issued. {error}")
        else:
            messages.success(request, f"Report {report.report_id} issued.")
        return redirect("compliance:report", pk=erasure_request.pk)


class ReportCompleteView(PermissionPageMixin, View):
    """Complete the request and issue its report in one step (officers)."""

    permission_required = roles.MANAGE_REQUESTS

    def post(self, request, pk: int):
        from django.core.exceptions import ValidationError

        erasure_request = _erasure_request(pk)
        try:
            report = services.erasure_request_complete_and_issue_report(
                erasure_request=erasure_request,
                actor=request.user,
                note=request.POST.get("note", ""),
                acceptances={
                    name.removeprefix(ACCEPT_FIELD_PREFIX): text
                    for name, text in request.POST.items()
                    if name.startswith(ACCEPT_FIELD_PREFIX) and text.strip()
                },
            )
        except ValidationError as error:  # the workflow refused the transition; its message says why
            messages.error(request, "Nothing was changed. " + " ".join(error.messages))
        except (services.ReportIssueRefused, *ASSEMBLY_ERRORS) as error:
            messages.error(request, f"Nothing was changed: the report cannot be issued. {error}")
        else:
            messages.success(
                request, f"{erasure_request.reference} completed; report {report.report_id} issued."
            )
        return redirect("compliance:report", pk=erasure_request.pk)


class RegisterView(PermissionPageMixin, View):
    """The register of requests for a period: preview on the page, download as CSV."""

    permission_required = roles.DOWNLOAD_REPORTS

    def get(self, request):
        start, end = request.GET.get("from", ""), request.GET.get("to", "")
        context = {"start": start, "end": end, "columns": None, "rows": None, "error": None, "period": None}
        if "from" in request.GET or "to" in request.GET:
            try:
                period = register_period_parse(start=start, end=end)
            except RegisterPeriodError as error:
                context["error"] = str(error)
                return render(request, "compliance/register.html", context, status=400)
            context.update(period=period, rows=register_rows(period=period))
        return render(request, "compliance/register.html", context)


class RegisterDownloadView(PermissionPageMixin, View):
    """The register as CSV; a reversed or unreadable period is a 400 page, an empty one a header-only file."""

    permission_required = roles.DOWNLOAD_REPORTS

    def get(self, request):
        start, end = request.GET.get("from", ""), request.GET.get("to", "")
        try:
            period = register_period_parse(start=start, end=end)
        except RegisterPeriodError as error:
            return render(
                request,
                "compliance/register.html",
                {"start": start, "end": end, "error": str(error)},
                status=400,
            )
        rows = register_rows(period=period)
        text = register_csv(rows)
        services.register_download_record(
            actor=request.user,
            period_from=period.start and period.start.isoformat(),
            period_to=period.end and period.end.isoformat(),
            rows=len(rows),
            file_sha256=sha256_hex(text.encode("utf-8")),
            via="page",
        )
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{period.filename()}"'
        response["X-Lethe-Register-Rows"] = str(len(rows))
        return response


class ReportVerifyView(ReportReaderMixin, View):
    """Upload a report file and see every check; the check itself is an audit event."""

    template_name = "compliance/report_verify.html"

    def get(self, request):
        return render(
            request,
            self.template_name,
            {"result": None, "max_mib": MAX_REPORT_BYTES // (1024 * 1024), "public_keys": public_keys()},
        )

    def post(self, request):
        upload = request.FILES.get("file")
        context = {
            "result": None,
            "max_mib": MAX_REPORT_BYTES // (1024 * 1024),
            "error": None,
            "public_keys": public_keys(),
        }
        if upload is None:
            context["error"] = "Choose a report file (.json or .pdf) to verify."
            return render(request, self.template_name, context, status=400)
        if upload.size > MAX_REPORT_BYTES:
            context["error"] = f"The file is larger than {context['max_mib']} MiB; no report is."
            return render(request, self.template_name, context, status=400)
        data = upload.read()
        result = report_file_verify(data)
        services.report_verification_record(
            actor=request.user, result=result, file_sha256=sha256_hex(data), via="page"
        )
        context.update(result=result, filename=upload.name[:120], file_sha256=sha256_hex(data))
        return render(request, self.template_name, context)
