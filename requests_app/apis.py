"""REST API for erasure requests under ``/api/v1/`` (docs/api.md).

One class per operation, each with its nested input and output serializers; the classes only
translate between JSON and the services. Roles as on the pages: officers read and write,
auditors read, everyone else gets 403. Errors (``compliance.api``): 400 with messages per field
for bad input, 409 when the request's state does not allow the step now; nothing is written in
either case.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.response import Response

from compliance import roles
from compliance.api import ApiBase, ApiPagination, paginated_response
from compliance.reports import services as report_services
from requests_app import selectors, services
from requests_app.identifiers import (
    IDENTIFIER_ENTITY_TYPES,
    IDENTIFIER_MAX_LENGTHS,
    MAX_IDENTIFIERS_PER_LIST,
    SubjectIdentifiers,
)
from requests_app.models import (
    Channel,
    ErasureRequest,
    IdentityMethod,
    LegalGround,
    RejectionGround,
)
from requests_app.services import MAX_EXPLANATION_LENGTH, MAX_NOTE_LENGTH, MAX_SCOPE_IDS

# Service error keys that belong inside the request body's nested objects.
SUBJECT_ERROR_KEYS = set(IDENTIFIER_ENTITY_TYPES) | {"subject"}
SCOPE_ERROR_KEYS = {
    "scope_all": "all",
    "scope_dataset_ids": "dataset_ids",
    "scope_model_version_ids": "model_version_ids",
}


def api_errors_from_service(error: DjangoValidationError) -> dict:
    """Return a service's ``ValidationError`` as DRF field errors, nested like the request body."""
    if not hasattr(error, "error_dict"):
        return {"detail": " ".join(error.messages)}
    body: dict = {}
    for key, messages in error.message_dict.items():
        if key in SUBJECT_ERROR_KEYS:
            subject = body.setdefault("subject", {})
            if key == "subject":
                subject.setdefault("non_field_errors", []).extend(messages)
            else:
                subject[key] = messages
        elif key in SCOPE_ERROR_KEYS:
            body.setdefault("scope", {})[SCOPE_ERROR_KEYS[key]] = messages
        else:
            body[key] = messages
    return body


class ErasureRequestApiBase(ApiBase):
    read_permissions = (roles.VIEW_REQUESTS,)
    write_permissions = (roles.MANAGE_REQUESTS,)
    schema_operation_ids: dict[str, str] = {}

    def schema_parameters(self, method):
        return []

    def service_errors(self, error: DjangoValidationError) -> dict:
        """Nest a service's field errors like the request body (``compliance.api`` answers them)."""
        return api_errors_from_service(error)


# --- output --------------------------------------------------------------------------------------


class ScopeSerializer(serializers.Serializer):
    all = serializers.BooleanField(default=True)
    dataset_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), default=list, max_length=MAX_SCOPE_IDS
    )
    model_version_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), default=list, max_length=MAX_SCOPE_IDS
    )


class ErasureRequestSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    status = serializers.CharField()
    status_display = serializers.CharField(source="get_status_display")
    channel = serializers.CharField()
    legal_ground = serializers.CharField()
    received_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    first_due_at = serializers.DateTimeField()
    urgency = serializers.CharField(help_text='"overdue", "due-soon" or empty')
    assigned_officer = serializers.CharField(
        source="assigned_officer.username", default=None, allow_null=True
    )
    identity_verified = serializers.BooleanField()
    duplicate_of = serializers.CharField(source="duplicate_of.reference", default=None, allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)


class ErasureRequestDetailSerializer(ErasureRequestSummarySerializer):
    scope = serializers.SerializerMethodField()
    identifiers = serializers.SerializerMethodField(
        help_text="Masked; null once purged. Clear values only through reveal-identifiers."
    )
    identifiers_purged_at = serializers.DateTimeField(allow_null=True)
    identified_by_name_only = serializers.SerializerMethodField(
        help_text="True when names are the only identifiers: namesakes cannot be told apart; ask for one more."
    )
    extension = serializers.SerializerMethodField()
    identity_verification = serializers.SerializerMethodField()
    rejection = serializers.SerializerMethodField()
    withdrawal_note = serializers.CharField()
    overdue_notified_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    created_at = serializers.DateTimeField()
    available_actions = serializers.SerializerMethodField()

    def get_scope(self, obj) -> dict:
        return {
            "all": obj.scope_all,
            "dataset_ids": obj.scope_dataset_ids,
            "model_version_ids": obj.scope_model_version_ids,
        }

    def get_identifiers(self, obj) -> dict | None:
        return selectors.erasure_request_identifiers_masked(erasure_request=obj)

    def get_identified_by_name_only(self, obj) -> bool:
        return selectors.erasure_request_identified_by_name_only(erasure_request=obj)

    def get_extension(self, obj) -> dict | None:
        if not obj.is_extended:
            return None
        return {
            "until": obj.extended_until,
            "reason": obj.extension_reason,
            "notified_at": obj.extension_notified_at,
        }

    def get_identity_verification(self, obj) -> dict | None:
        if not obj.identity_verified:
            return None
        return {
            "method": obj.identity_method,
            "verified_by": obj.identity_verified_by.username,
            "verified_at": obj.identity_verified_at,
            "note": obj.identity_note,
        }

    def get_rejection(self, obj) -> dict | None:
        if not obj.rejection_ground:
            return None
        return {
            "ground": obj.rejection_ground,
            "explanation": obj.rejection_explanation,
            "reply": obj.rejection_reply,
        }

    def get_available_actions(self, obj) -> list[str]:
        user = self.context["request"].user
        return [
            selectors.ACTION_SLUGS[action]
            for action in selectors.erasure_request_available_actions(erasure_request=obj, user=user)
        ]


def _detail(request, erasure_request) -> dict:
    fresh = ErasureRequest.objects.select_related(
        "assigned_officer", "identity_verified_by", "duplicate_of", "created_by"
    ).get(pk=erasure_request.pk)
    return ErasureRequestDetailSerializer(fresh, context={"request": request}).data


# --- collection ----------------------------------------------------------------------------------


class ErasureRequestListCreateApi(ErasureRequestApiBase):
    """GET: the requests, filtered, nearest deadline first (paginated). POST: record a request.

    One URL, two operations; each has its own serializers and permission below.
    """

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=selectors.status_filter_choices(), required=False)
        assignee = serializers.CharField(
            required=False, max_length=150, help_text='"me", "none" or a username'
        )
        overdue = serializers.BooleanField(required=False, default=False)
        due_soon = serializers.BooleanField(required=False, default=False)
        q = serializers.CharField(
            required=False, max_length=254, help_text="A reference, or an identifier (matched by keyed hash)"
        )

    class OutputSerializer(ErasureRequestSummarySerializer):
        pass

    class InputSerializer(serializers.Serializer):
        class SubjectSerializer(serializers.Serializer):
            names = serializers.ListField(
                child=serializers.CharField(max_length=IDENTIFIER_MAX_LENGTHS["names"]),
                default=list,
                max_length=MAX_IDENTIFIERS_PER_LIST,
            )
            emails = serializers.ListField(
                child=serializers.CharField(max_length=IDENTIFIER_MAX_LENGTHS["emails"]),
                default=list,
                max_length=MAX_IDENTIFIERS_PER_LIST,
            )
            phones = serializers.ListField(
                child=serializers.CharField(max_length=IDENTIFIER_MAX_LENGTHS["phones"]),
                default=list,
                max_length=MAX_IDENTIFIERS_PER_LIST,
            )
            addresses = serializers.ListField(
                child=serializers.CharField(max_length=IDENTIFIER_MAX_LENGTHS["addresses"]),
                default=list,
                max_length=MAX_IDENTIFIERS_PER_LIST,
            )
            account_ids = serializers.ListField(
                child=serializers.CharField(max_length=IDENTIFIER_MAX_LENGTHS["account_ids"]),
                default=list,
                max_length=MAX_IDENTIFIERS_PER_LIST,
            )

        subject = SubjectSerializer()
        legal_ground = serializers.ChoiceField(choices=LegalGround.choices)
        received_at = serializers.DateTimeField(required=False)
        channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.API)
        assigned_officer = serializers.CharField(
            required=False, max_length=150, help_text="Username; default: you"
        )
        scope = ScopeSerializer(required=False)

        # The service checks all of this again; checking here too reports every bad field in
        # one answer instead of the service's findings only after the shapes are right.
        def validate_subject(self, value):
            try:
                services.subject_identifiers_validate(SubjectIdentifiers.from_lists(**value))
            except DjangoValidationError as error:
                raise serializers.ValidationError(api_errors_from_service(error).get("subject", {})) from None
            return value

        def validate_received_at(self, value):
            try:
                services.received_at_validate(value)
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.message_dict["received_at"]) from None
            return value

    schema_operation_ids = {"GET": "requests_list", "POST": "requests_create"}
    pagination_class = ApiPagination

    def schema_output(self, method):
        return {201: ErasureRequestDetailSerializer} if method == "POST" else self.OutputSerializer(many=True)

    def schema_parameters(self, method):
        return [self.FilterSerializer] if method == "GET" else []

    def get(self, request):
        filters_in = self.FilterSerializer(data=request.query_params)
        filters_in.is_valid(raise_exception=True)
        data = filters_in.validated_data
        filters = selectors.ErasureRequestFilters(
            status=data.get("status", ""),
            assignee=data.get("assignee", ""),
            overdue=data["overdue"],
            due_soon=data["due_soon"],
            search=data.get("q", ""),
        )
        queryset = selectors.erasure_request_list(filters=filters, user=request.user)
        return paginated_response(self, request, queryset, self.OutputSerializer)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        officer = None
        if data.get("assigned_officer"):
            officer = get_user_model().objects.filter(username=data["assigned_officer"]).first()
            if officer is None:
                raise serializers.ValidationError({"assigned_officer": ["No user has this username."]})
        scope = data.get("scope") or {"all": True, "dataset_ids": [], "model_version_ids": []}
        erasure_request = services.erasure_request_create(
            subject=SubjectIdentifiers.from_lists(**data["subject"]),
            legal_ground=data["legal_ground"],
            actor=request.user,
            received_at=data.get("received_at"),
            channel=data["channel"],
            assigned_officer=officer,
            scope_all=scope["all"],
            scope_dataset_ids=scope["dataset_ids"],
            scope_model_version_ids=scope["model_version_ids"],
        )
        return Response(_detail(request, erasure_request), status=status.HTTP_201_CREATED)


class ErasureRequestSearchApi(ErasureRequestApiBase):
    """Find requests by reference or by an identifier, sent in the body to keep it out of URLs.

    The identifier is normalised and hashed like the stored ones and looked up; no request is
    decrypted. A read: auditors may search too.
    """

    class InputSerializer(serializers.Serializer):
        q = serializers.CharField(max_length=254, help_text="A reference or an identifier")

    OutputSerializer = ErasureRequestSummarySerializer
    schema_operation_ids = {"POST": "requests_search"}
    write_permissions = ErasureRequestApiBase.read_permissions  # a POST that only reads
    throttle_scope = "identifier_search"  # tells whether a person asked: not for enumeration

    def schema_output(self, method):
        return self.OutputSerializer(many=True)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        found = selectors.erasure_request_list(
            filters=selectors.ErasureRequestFilters(search=serializer.validated_data["q"]), user=request.user
        )
        return Response(self.OutputSerializer(found, many=True).data)


class ErasureRequestDetailApi(ErasureRequestApiBase):
    """One request, with its identifiers masked and the steps the caller may take now."""

    OutputSerializer = ErasureRequestDetailSerializer

    def get(self, request, pk: int):
        return Response(_detail(request, get_object_or_404(ErasureRequest, pk=pk)))


class ErasureRequestEventsApi(ErasureRequestApiBase):
    """The request's audit events, oldest first: its timeline, as the auditor checks it."""

    class OutputSerializer(serializers.Serializer):
        sequence = serializers.IntegerField()
        occurred_at = serializers.DateTimeField()
        actor = serializers.CharField(source="actor_label")
        action = serializers.CharField()
        details = serializers.JSONField()
        previous_hash = serializers.CharField()
        entry_hash = serializers.CharField()

    def schema_output(self, method):
        return self.OutputSerializer(many=True)

    def get(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        events = selectors.erasure_request_timeline(erasure_request=erasure_request)
        return Response(self.OutputSerializer(events, many=True).data)


# --- actions -------------------------------------------------------------------------------------


class ErasureRequestActionApi(ErasureRequestApiBase):
    """Base of ``POST /requests/{id}/actions/<action>/``: validate, call one service, answer the request."""

    OutputSerializer = ErasureRequestDetailSerializer

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_NOTE_LENGTH)

    def post(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = self.perform(
            erasure_request=erasure_request, actor=request.user, data=serializer.validated_data
        )
        return Response(_detail(request, result))

    def perform(self, *, erasure_request, actor, data):
        """Call the class's service with the validated body as its keyword arguments."""
        return self.service(erasure_request=erasure_request, actor=actor, **data)


class ErasureRequestVerifyIdentityApi(ErasureRequestActionApi):
    class InputSerializer(serializers.Serializer):
        method = serializers.ChoiceField(choices=IdentityMethod.choices)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_NOTE_LENGTH)
        verified_at = serializers.DateTimeField(required=False, default=None)

    service = staticmethod(services.erasure_request_verify_identity)


class ErasureRequestStartLocatingApi(ErasureRequestActionApi):
    service = staticmethod(services.erasure_request_start_locating)


class ErasureRequestSubmitForReviewApi(ErasureRequestActionApi):
    service = staticmethod(services.erasure_request_submit_for_review)


class ErasureRequestStartExecutingApi(ErasureRequestActionApi):
    service = staticmethod(services.erasure_request_start_executing)


class ErasureRequestStartVerifyingApi(ErasureRequestActionApi):
    service = staticmethod(services.erasure_request_start_verifying)


class ErasureRequestCompleteApi(ErasureRequestActionApi):
    """Complete the request and issue its report. ``acceptances`` maps each failed or unmeasured
    verification row (``"<job id>:<metric>"``, as a refusal names them) to the officer's written
    acceptance; without one per such row the completion is refused (409) naming the rows."""

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_NOTE_LENGTH)
        acceptances = serializers.DictField(
            child=serializers.CharField(max_length=2000), required=False, default=dict
        )

    service = staticmethod(report_services.erasure_request_complete_with_report)


class ErasureRequestWithdrawApi(ErasureRequestActionApi):
    service = staticmethod(services.erasure_request_withdraw)


class ErasureRequestRejectApi(ErasureRequestActionApi):
    class InputSerializer(serializers.Serializer):
        ground = serializers.ChoiceField(choices=RejectionGround.choices)
        explanation = serializers.CharField(max_length=MAX_EXPLANATION_LENGTH)

    service = staticmethod(services.erasure_request_reject)


class ErasureRequestExtendApi(ErasureRequestActionApi):
    class InputSerializer(serializers.Serializer):
        until = serializers.DateTimeField()
        reason = serializers.CharField(max_length=MAX_NOTE_LENGTH)
        notified_at = serializers.DateTimeField(required=False, default=None)

    service = staticmethod(services.erasure_request_extend_deadline)


class ErasureRequestAssignApi(ErasureRequestActionApi):
    class InputSerializer(serializers.Serializer):
        officer = serializers.CharField(
            allow_null=True, max_length=150, help_text="Username of a privacy officer; null: nobody"
        )

    def perform(self, *, erasure_request, actor, data):
        officer = None
        if data["officer"]:
            officer = get_user_model().objects.filter(username=data["officer"]).first()
            if officer is None:
                raise services.ErasureRequestError({"officer": ["No user has this username."]})
        return services.erasure_request_assign(erasure_request=erasure_request, actor=actor, officer=officer)


class ErasureRequestScopeApi(ErasureRequestActionApi):
    InputSerializer = ScopeSerializer

    def perform(self, *, erasure_request, actor, data):
        return services.erasure_request_set_scope(
            erasure_request=erasure_request,
            actor=actor,
            scope_all=data["all"],
            dataset_ids=data["dataset_ids"],
            model_version_ids=data["model_version_ids"],
        )


class ErasureRequestRevealIdentifiersApi(ErasureRequestActionApi):
    """Answer the identifiers in clear; the reveal is an audit event with the caller's name."""

    write_permissions = (roles.REVEAL_IDENTIFIERS,)
    throttle_scope = "identifier_search"

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=MAX_NOTE_LENGTH
        )

    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()
        identifiers = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

    def post(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subject = services.erasure_request_reveal_identifiers(
            erasure_request=erasure_request, actor=request.user, reason=serializer.validated_data["reason"]
        )
        response = Response({"reference": erasure_request.reference, "identifiers": subject.as_lists()})
        response["Cache-Control"] = "no-store"
        return response


# action as in the URL → its API class, in life-cycle order
# "approve" is the officer's decision (unlearning_jobs/decisions/apis.py): approving is where the
# frameworks and methods are chosen, so its one route takes the plan.
ACTION_APIS: dict[str, type[ErasureRequestActionApi]] = {
    "verify-identity": ErasureRequestVerifyIdentityApi,
    "start-locating": ErasureRequestStartLocatingApi,
    "submit-for-review": ErasureRequestSubmitForReviewApi,
    "start-executing": ErasureRequestStartExecutingApi,
    "start-verifying": ErasureRequestStartVerifyingApi,
    "complete": ErasureRequestCompleteApi,
    "extend": ErasureRequestExtendApi,
    "assign": ErasureRequestAssignApi,
    "scope": ErasureRequestScopeApi,
    "reject": ErasureRequestRejectApi,
    "withdraw": ErasureRequestWithdrawApi,
    "reveal-identifiers": ErasureRequestRevealIdentifiersApi,
}
