"""REST endpoints for audit reports and the register under ``/api/v1/`` (docs/reports.md).

One class per operation; they only translate between HTTP and ``compliance.reports``. Roles as
on the pages: auditors (and officers) download and verify, officers issue, nobody else gets in.
Refusals are JSON ``{"detail": …, "code": …}`` (``compliance.api``): 400 bad input, 403 role,
404 unknown request or version, 409 when the request's state or its data does not allow the
step now.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FileUploadParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import roles
from compliance.api import ApiBase
from compliance.reports import selectors, services
from compliance.reports.register import register_csv, register_period_parse, register_rows
from compliance.reports.signing import SIGNATURE_ALGORITHM, public_keys, sha256_hex
from compliance.reports.verification import MAX_REPORT_BYTES, report_file_verify
from compliance.reports.views import report_download_response
from requests_app.models import ErasureRequest


def _error(detail: str, code: str, http_status: int) -> Response:
    return Response({"detail": detail, "code": code}, status=http_status)


class ReportApiBase(ApiBase):
    """Reports are read by auditors and officers, whatever the method (issuing one is an officer's)."""

    permissions_any: tuple[str, ...] = (roles.DOWNLOAD_REPORTS, roles.MANAGE_REQUESTS)

    def required_permissions(self, method: str) -> tuple[str, ...]:
        return self.permissions_any


class FileApiBase(ReportApiBase):
    """Endpoints that answer a file: any ``Accept`` is served, and refusals are plain JSON."""

    def perform_content_negotiation(self, request, force=False):
        # A client asking for application/pdf or text/csv must get the file, not a 406.
        return super().perform_content_negotiation(request, force=True)

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response) and response.status_code >= 400:
            data = response.data if isinstance(response.data, dict) else {"detail": str(response.data)}
            plain = JsonResponse(data, status=response.status_code)
            for header in ("WWW-Authenticate", "Allow"):
                if header in response:
                    plain[header] = response[header]
            return super().finalize_response(request, plain, *args, **kwargs)
        return super().finalize_response(request, response, *args, **kwargs)


VERSION_PARAMETER = OpenApiParameter(
    "version",
    int,
    required=False,
    description="An issued version; default the newest. Without an issued report: a draft.",
)


def _version(request) -> int | None:
    value = request.query_params.get("version", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise DjangoValidationError("'version' must be a positive whole number.")
    return int(value)


class ReportFileApi(FileApiBase):
    """GET the request's report as JSON or PDF: the issued version, or a draft while none is issued."""

    file_format = selectors.FORMAT_JSON

    def download(self, request, pk: int):

        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        report_file = selectors.report_file(
            erasure_request=erasure_request, file_format=self.file_format, version=_version(request)
        )
        services.audit_report_download_record(
            actor=request.user,
            erasure_request=erasure_request,
            report=report_file.report,
            file_format=self.file_format,
            file_sha256=report_file.sha256,
            body_sha256=report_file.body_sha256,
            via="api",
        )
        return report_download_response(report_file)


class ReportJsonApi(ReportFileApi):
    file_format = selectors.FORMAT_JSON

    @extend_schema(
        operation_id="report_json",
        parameters=[VERSION_PARAMETER],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='{"body": …, "signature": …} in canonical JSON (docs/reports.md)',
            )
        },
    )
    def get(self, request, pk: int):
        return self.download(request, pk)


class ReportPdfApi(ReportFileApi):
    file_format = selectors.FORMAT_PDF

    @extend_schema(
        operation_id="report_pdf",
        parameters=[VERSION_PARAMETER],
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    def get(self, request, pk: int):
        return self.download(request, pk)


class ReportVersionSerializer(serializers.Serializer):
    report_id = serializers.CharField()
    version = serializers.IntegerField()
    issued_at = serializers.DateTimeField()
    issued_by = serializers.CharField(source="issued_by.username", default=None)
    reason = serializers.CharField()
    request_status = serializers.CharField()
    body_sha256 = serializers.CharField()
    json_sha256 = serializers.CharField()
    pdf_sha256 = serializers.CharField()
    signature_alg = serializers.CharField()
    body_signature = serializers.CharField(
        help_text="Ed25519, base64; empty for reports signed with HMAC before"
    )
    pdf_signature = serializers.CharField(help_text="Ed25519 of the PDF file, base64; empty before Ed25519")
    pdf_hmac = serializers.CharField(help_text="HMAC-SHA256 of reports issued before Ed25519; empty after")
    key_id = serializers.CharField()
    supersedes = serializers.IntegerField(source="supersedes.version", default=None)


class ReportIssueInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=services.MAX_REASON_LENGTH,
        help_text="Why this version is issued; required after the first",
    )


class ReportCompleteInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    acceptances = serializers.DictField(
        child=serializers.CharField(max_length=2000),
        required=False,
        default=dict,
        help_text="The officer's written acceptance of each failed or unmeasured verification row, keyed "
        '"<job id>:<metric>"; completing over such a row needs one.',
    )


class ReportVersionsApi(ReportApiBase):
    """The request's issued report versions, newest first, with their hashes and signatures."""

    @extend_schema(operation_id="report_versions", responses=ReportVersionSerializer(many=True))
    def get(self, request, pk: int):

        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        # Of the superseded version only its number is shown: not its files.
        versions = (
            selectors.audit_report_versions(erasure_request=erasure_request)
            .select_related("supersedes")
            .defer("supersedes__pdf_bytes", "supersedes__json_text")
        )
        return Response(ReportVersionSerializer(versions, many=True).data)


class ReportIssueApi(ReportApiBase):
    """Issue the next report version of a closed request (officers); a reissue needs a reason."""

    permissions_any = (roles.MANAGE_REQUESTS,)
    InputSerializer = ReportIssueInputSerializer

    @extend_schema(
        operation_id="report_issue",
        request=ReportIssueInputSerializer,
        responses={201: ReportVersionSerializer},
    )
    def post(self, request, pk: int):

        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = services.audit_report_issue(
            erasure_request=erasure_request, actor=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(ReportVersionSerializer(report).data, status=status.HTTP_201_CREATED)


class ReportCompleteApi(ReportApiBase):
    """Complete the request and issue its report in one transaction (officers).

    Refused (409, nothing changed) while the workflow does not allow completion — for instance
    until every job has finished and its verification is recorded, or while a failed or
    unmeasured verification row has no written acceptance (give them in ``acceptances``) — or if
    the report cannot be assembled.
    """

    permissions_any = (roles.MANAGE_REQUESTS,)
    InputSerializer = ReportCompleteInputSerializer

    @extend_schema(
        operation_id="report_complete",
        request=ReportCompleteInputSerializer,
        responses={201: ReportVersionSerializer},
    )
    def post(self, request, pk: int):

        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = services.erasure_request_complete_and_issue_report(
            erasure_request=erasure_request,
            actor=request.user,
            note=serializer.validated_data["note"],
            acceptances=serializer.validated_data["acceptances"],
        )
        return Response(ReportVersionSerializer(report).data, status=status.HTTP_201_CREATED)


class ReportCheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class ReportVerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="True only when every check passed")
    kind = serializers.CharField(help_text='"json", "pdf" or "unknown"')
    report_id = serializers.CharField(allow_null=True)
    superseded_by = serializers.CharField(allow_null=True)
    file_sha256 = serializers.CharField()
    problem = serializers.CharField(help_text="The first failed check's explanation; empty when ok")
    checks = ReportCheckSerializer(many=True)


class ReportVerifyApi(ReportApiBase):
    """Check a report file: multipart field ``file``, or the raw file as the body with a Content-Disposition filename."""

    parser_classes = [MultiPartParser, FileUploadParser]

    @extend_schema(
        operation_id="report_verify",
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        responses={200: ReportVerificationSerializer},
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            return _error(
                "Send the report file as the multipart field 'file'.",
                "file_missing",
                status.HTTP_400_BAD_REQUEST,
            )
        if upload.size > MAX_REPORT_BYTES:
            return _error(
                f"The file is larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB; no report is.",
                "file_too_large",
                status.HTTP_400_BAD_REQUEST,
            )
        data = upload.read()
        result = report_file_verify(data)
        digest = sha256_hex(data)
        services.report_verification_record(actor=request.user, result=result, file_sha256=digest, via="api")
        body = {
            "ok": result.ok,
            "kind": result.kind,
            "report_id": result.report_id,
            "superseded_by": result.superseded_by,
            "file_sha256": digest,
            "problem": result.first_problem,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in result.checks],
        }
        return Response(body)


class RegisterCsvApi(FileApiBase):
    """GET the register of requests received in a period as CSV (Art. 5(2), Art. 30)."""

    permissions_any = (roles.DOWNLOAD_REPORTS,)

    @extend_schema(
        operation_id="register_csv",
        parameters=[
            OpenApiParameter(
                "from",
                OpenApiTypes.DATE,
                required=False,
                description="First day of receipt (YYYY-MM-DD), inclusive",
            ),
            OpenApiParameter(
                "to",
                OpenApiTypes.DATE,
                required=False,
                description="Last day of receipt (YYYY-MM-DD), inclusive",
            ),
        ],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
    )
    def get(self, request):
        period = register_period_parse(
            start=request.query_params.get("from"), end=request.query_params.get("to")
        )
        rows = register_rows(period=period)
        text = register_csv(rows)
        services.register_download_record(
            actor=request.user,
            period_from=period.start and period.start.isoformat(),
            period_to=period.end and period.end.isoformat(),
            rows=len(rows),
            file_sha256=sha256_hex(text.encode("utf-8")),
            via="api",
        )
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{period.filename()}"'
        response["X-Lethe-Register-Rows"] = str(len(rows))
        return response


class PublicKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    alg = serializers.CharField()
    status = serializers.ChoiceField(choices=["current", "retired"])
    pem = serializers.CharField(help_text="SubjectPublicKeyInfo PEM")
    jwk = serializers.JSONField(help_text="JSON Web Key (RFC 8037: OKP, Ed25519)")


class ReportPublicKeysApi(APIView):
    """The public keys that verify issued reports (Ed25519): the current one and the retired ones.

    Public on purpose: a report is meant to be verified by anyone who receives it, with nothing
    but this key (docs/reports.md, "Signatures"); it cannot sign.
    """

    permission_classes = []
    authentication_classes = []

    class OutputSerializer(serializers.Serializer):
        keys = PublicKeySerializer(many=True)

    @extend_schema(operation_id="report_public_keys", responses={200: OutputSerializer})
    def get(self, request):
        return Response({"keys": report_public_keys_document()})


def report_public_keys_document() -> list[dict]:
    """Return every public key as the keys endpoint and the auditor's pages show it."""
    return [
        {
            "key_id": key.key_id,
            "alg": SIGNATURE_ALGORITHM,
            "status": "current" if key.current else "retired",
            "pem": key.pem(),
            "jwk": key.jwk(),
        }
        for key in public_keys()
    ]
