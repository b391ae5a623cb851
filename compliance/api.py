"""The one base of Lethe's REST API: error bodies, the OpenAPI schema, pagination, JSON 404 and 500.

Every error the API answers is a JSON object with ``detail`` (one sentence for a person) and
``code`` (a stable word for a program); a 400 also carries the field errors, nested like the
request body (docs/api.md). The exception handler below is the only place that turns
exceptions into those bodies: views raise, they do not build error responses.

Domain errors with a status of their own are listed in ``API_ERRORS`` by dotted path and
resolved with ``import_string`` on first use, so this module (low in the layers) imports nothing
above it.
"""

from __future__ import annotations

from functools import lru_cache

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.utils.module_loading import import_string
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import SAFE_METHODS, AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from compliance import roles

#: The largest id PostgreSQL's bigint holds; a larger number in a filter or a body is a 400.
MAX_DATABASE_ID = 2**63 - 1

#: Domain errors that the API answers with a status of their own: (dotted path of the exception
#: class, HTTP status, code, the field whose presence in a ValidationError's ``message_dict``
#: makes it one of these, or ``None``). The first entry that matches wins; a Django
#: ``ValidationError`` that matches none is a 400 with its field errors.
API_ERRORS: tuple[tuple[str, int, str, str | None], ...] = (
    ("requests_app.services.TransitionNotAllowed", 409, "transition_not_allowed", None),
    ("unlearning_jobs.jobs.services.JobError", 409, "job_state", "status"),
    ("compliance.reports.selectors.ReportVersionNotFound", 404, "version_not_found", None),
    ("compliance.reports.services.ReportIssueRefused", 409, "report_not_issuable", None),
    ("compliance.reports.providers.ReportProviderError", 409, "report_not_assemblable", None),
    ("compliance.reports.schema.ReportSchemaError", 409, "report_not_assemblable", None),
    ("compliance.reports.assembly.ReportContainsIdentifier", 409, "report_not_assemblable", None),
    ("compliance.reports.assembly.ReportIdentifierCheckImpossible", 409, "report_not_assemblable", None),
    ("compliance.reports.selectors.StoredReportAltered", 500, "stored_report_altered", None),
    ("compliance.reports.register.RegisterPeriodError", 400, "invalid_period", None),
    ("unlearning_jobs.registry.services.ModelWeightsChanged", 409, "model_weights_changed", None),
)

INVALID_INPUT_DETAIL = "The input is not valid; each field's errors are listed under its name."


@lru_cache(maxsize=1)
def _api_error_classes() -> tuple[tuple[type, int, str, str | None], ...]:
    return tuple(
        (import_string(path), http_status, code, field) for path, http_status, code, field in API_ERRORS
    )


def _first_message(errors, where: str = "") -> str:
    """Return the first message in nested field errors, prefixed with where it is ("subject.emails: …")."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            inner = where if key == "non_field_errors" else f"{where}.{key}" if where else str(key)
            if message := _first_message(value, inner):
                return message
    elif isinstance(errors, list):
        for index, value in enumerate(errors):
            inner = f"{where}[{index}]" if isinstance(value, (dict, list)) else where
            if message := _first_message(value, inner):
                return message
    elif errors:
        return f"{where}: {errors}" if where else str(errors)
    return ""


def error_body(*, detail: str, code: str, field_errors: dict | None = None) -> dict:
    """Return the API's one error shape: ``detail`` and ``code``, and the field errors of a 400."""
    return {**(field_errors or {}), "detail": detail, "code": code}


def validation_error_body(errors) -> dict:
    """Return a 400 body from field errors (a dict nested like the body, or a list of messages)."""
    if isinstance(errors, list):
        errors = {"non_field_errors": errors}
    elif not isinstance(errors, dict):
        errors = {"non_field_errors": [str(errors)]}
    if isinstance(errors.get("detail"), str):  # a message about no field in particular
        errors = {**errors, "non_field_errors": [errors["detail"], *errors.get("non_field_errors", [])]}
    errors = {key: value for key, value in errors.items() if key not in ("detail", "code")}
    first = _first_message(errors)
    detail = f"{INVALID_INPUT_DETAIL} First: {first}" if first else INVALID_INPUT_DETAIL
    return error_body(detail=detail, code="invalid", field_errors=errors)


def _django_validation_errors(error: DjangoValidationError, view) -> dict | list:
    """Return a service's ``ValidationError`` as field errors, letting the view nest them like its body."""
    if hasattr(error, "as_api_errors"):
        return error.as_api_errors()
    nest = getattr(view, "service_errors", None)
    if nest is not None:
        return nest(error)
    if hasattr(error, "error_dict"):
        return error.message_dict
    return {"non_field_errors": error.messages}


def _domain_error(exc) -> tuple[int, str] | None:
    for error_class, http_status, code, field in _api_error_classes():
        if not isinstance(exc, error_class):
            continue
        if field is not None and field not in (exc.message_dict if hasattr(exc, "error_dict") else {}):
            continue
        return http_status, code
    return None


#: What a code's ``detail`` starts with, where the exception's own message needs the context.
DETAIL_PREFIXES = {"report_not_assemblable": "The report cannot be assembled: "}


def _domain_error_detail(exc, code: str) -> str:
    return DETAIL_PREFIXES.get(code, "") + _exception_message(exc)


def _exception_message(exc) -> str:
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return " ".join(message for messages in exc.message_dict.values() for message in messages)
        return " ".join(exc.messages)
    return str(exc)


def api_exception_handler(exc, context):
    """Answer every API error in one shape (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``).

    Domain errors of ``API_ERRORS`` get their status and code; any other Django
    ``ValidationError`` from a service is a 400 with its field errors; DRF's own exceptions
    (401, 403, 404, 405, 406, 415, 429) keep their status and gain a ``code``. Anything else is
    not handled here: it is a bug, logged and answered by ``server_error`` as a JSON 500.
    """
    view = context.get("view")
    mapped = _domain_error(exc)
    if mapped is not None:
        http_status, code = mapped
        return Response(error_body(detail=_domain_error_detail(exc, code), code=code), status=http_status)
    if isinstance(exc, DjangoValidationError):
        return Response(
            validation_error_body(_django_validation_errors(exc, view)), status=status.HTTP_400_BAD_REQUEST
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_error_body(response.data)
    else:
        data = response.data if isinstance(response.data, dict) else {"detail": response.data}
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        code = (
            code
            if isinstance(code, str)
            else data.get("code") or _STATUS_CODES.get(response.status_code, "error")
        )
        response.data = {**data, "detail": str(data.get("detail", "")), "code": code}
    return response


_STATUS_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    415: "unsupported_media_type",
    429: "throttled",
}


def server_error(request, *args, **kwargs):
    """``handler500``: a JSON body under /api/, Django's page everywhere else."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body(detail="A server error occurred; it has been logged.", code="server_error"),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    from django.views.defaults import server_error as page_server_error

    return page_server_error(request, *args, **kwargs)


def bad_request(request, exception=None, *args, **kwargs):
    """``handler400``: a JSON body under /api/, Django's page everywhere else.

    Django answers some bad requests before any view runs (too many fields, a suspicious
    header); an API client must still get the one error shape.
    """
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body(
                detail="The request could not be read (too large, too many fields or malformed).",
                code="bad_request",
            ),
            status=status.HTTP_400_BAD_REQUEST,
        )
    from django.views.defaults import bad_request as page_bad_request

    return page_bad_request(request, exception, *args, **kwargs)


class ApiNotFoundView(APIView):
    """Answer any path under /api/ that no endpoint matches with a JSON 404, whatever the method.

    Without it Django's HTML "Not Found" page would answer, which no API client can read.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    schema = None

    def not_found(self, request, *args, **kwargs):
        hint = "" if request.path.endswith("/") else f" Did you mean {request.path}/ ?"
        raise exceptions.NotFound(f"No API endpoint at {request.path}.{hint}")

    get = post = put = patch = delete = head = options = not_found


# --- ids and pages -------------------------------------------------------------------------------


class DatabaseIdField(serializers.IntegerField):
    """An id of a row: a whole number from 1 to PostgreSQL's bigint maximum (a larger one is a 400)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_DATABASE_ID)
        super().__init__(**kwargs)


class ApiPagination(LimitOffsetPagination):
    """``limit`` (default 100, at most 500) and ``offset``; the schema documents the page object."""

    default_limit = 100
    max_limit = 500


def paginated_response(view, request, queryset, serializer_class, **serializer_kwargs) -> Response:
    """Answer one page of ``queryset`` with the view's ``pagination_class`` (``ApiPagination``)."""
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, **serializer_kwargs).data)


# --- the OpenAPI schema --------------------------------------------------------------------------

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error: a sentence for a person and a code for a program.",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail", "code"],
}
VALIDATION_ERROR_SCHEMA = {
    **ERROR_SCHEMA,
    "description": 'A 400: ``detail`` and ``code`` ("invalid" or more specific), and each bad field\'s '
    "messages under its name, nested like the request body; ``non_field_errors`` for the rest.",
    "additionalProperties": True,
}
ERROR_DESCRIPTIONS = {
    400: "Bad input; nothing was saved.",
    401: "No or bad credentials.",
    403: "The caller's role does not allow this.",
    404: "No such object.",
    409: "The object's state does not allow this now; nothing changed.",
    415: "The body is not in a media type this operation reads (JSON, or the forms listed).",
    429: "Too many calls: wait the seconds the Retry-After header gives.",
}


class RolePermission(BasePermission):
    """Allow the call when the user holds any one of the permissions the view names for its method."""

    def has_permission(self, request, view):
        return roles.actor_may(request.user, *view.required_permissions(request.method))


class ApiBase(APIView):
    """The base of every authenticated endpoint: who may call it is two tuples of permissions.

    ``read_permissions`` apply to GET, HEAD and OPTIONS, ``write_permissions`` to the rest; any
    one permission of the tuple suffices, an empty tuple refuses everyone. The operation's
    serializers document it (``ApiSchema``): ``InputSerializer`` for a POST body,
    ``OutputSerializer`` for the answer.
    """

    permission_classes = [IsAuthenticated, RolePermission]
    read_permissions: tuple[str, ...] = ()
    write_permissions: tuple[str, ...] = ()

    def required_permissions(self, method: str) -> tuple[str, ...]:
        return self.read_permissions if method in SAFE_METHODS else self.write_permissions

    def schema_input(self, method):
        return getattr(self, "InputSerializer", None) if method == "POST" else None

    def schema_output(self, method):
        return getattr(self, "OutputSerializer", None)


class ApiSchema(AutoSchema):
    """The schema of every endpoint (``DEFAULT_SCHEMA_CLASS``).

    An operation class names its own serializers: ``InputSerializer`` (the POST body),
    ``OutputSerializer`` or ``schema_output(method)``, ``FilterSerializer`` or
    ``schema_parameters(method)`` for query parameters, ``schema_operation_ids``. Every
    operation also documents the errors it can answer, in the one error shape.
    """

    def get_request_serializer(self):
        if hasattr(self.view, "schema_input"):
            return self.view.schema_input(self.method)
        if self.method == "POST" and hasattr(self.view, "InputSerializer"):
            return self.view.InputSerializer
        return super().get_request_serializer()

    def get_response_serializers(self):
        if hasattr(self.view, "schema_output"):
            return self.view.schema_output(self.method)
        if hasattr(self.view, "OutputSerializer"):
            return self.view.OutputSerializer
        return super().get_response_serializers()

    def get_override_parameters(self):
        if hasattr(self.view, "schema_parameters"):
            return self.view.schema_parameters(self.method)
        if self.method == "GET" and hasattr(self.view, "FilterSerializer"):
            return [self.view.FilterSerializer]
        return super().get_override_parameters()

    def get_operation_id(self):
        return getattr(self.view, "schema_operation_ids", {}).get(self.method) or super().get_operation_id()

    def get_serializer_name(self, serializer, direction):
        # Nested operation serializers (ErasureRequestListCreateApi.InputSerializer) stay distinct.
        return type(serializer).__qualname__.replace(".", "")

    def error_status_codes(self) -> list[int]:
        """Return the error statuses this operation can answer."""
        codes = []
        requires_auth = any(permission is not AllowAny for permission in self.view.permission_classes)
        takes_input = self.method in ("POST", "PUT", "PATCH") or any(
            parameter.get("in") == "query" for parameter in self._get_parameters()
        )
        if takes_input:
            codes.append(400)
        if requires_auth:
            codes += [401, 403]
        if "{" in self.path:
            codes.append(404)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes.append(409)
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append(415)
        if self.view.get_throttles():
            codes.append(429)
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self.error_status_codes():
            responses.setdefault(str(code), self._error_response(code))
        return responses

    def _error_response(self, code: int) -> dict:
        name, schema = (
            ("ApiValidationError", VALIDATION_ERROR_SCHEMA) if code == 400 else ("ApiError", ERROR_SCHEMA)
        )
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name)
        self.registry.register_on_missing(component)
        return {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": component.ref}},
        }
