"""REST API for jobs, model versions and the erasure decision under ``/api/v1/`` (docs/jobs.md).

One class per operation with nested serializers; the classes translate between JSON and the
services. Roles: engineers operate jobs and register models; officers read jobs and models and
decide requests; auditors read the jobs of requests; anyone else gets 403. Errors
(``compliance.api``): 400 with messages per field (per plan item for a decision), 409 when the
state does not allow the step; nothing is written in either case.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import roles
from compliance.api import ApiPagination, DatabaseIdField, paginated_response
from requests_app.models import ErasureRequest
from unlearning_jobs.decisions import services as decisions
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.jobs.views import LOG_TAIL_CHARS
from unlearning_jobs.models import DatasetVersion, JobStatus, ModelVersion, UnlearningJob
from unlearning_jobs.registry import services as model_registry

READ = "read"


class JobsPermission(BasePermission):
    """Allow the call when the user may do what the view asks for the HTTP method."""

    def has_permission(self, request, view):
        required = view.required_permission(request.method)
        if required == READ:
            return jobs.user_may_view_jobs(request.user)
        return bool(required and request.user.has_perm(required))


class JobsApiBase(APIView):
    permission_classes = [IsAuthenticated, JobsPermission]
    write_permission = roles.OPERATE_JOBS

    def required_permission(self, method: str) -> str:
        return READ if method in ("GET", "HEAD", "OPTIONS") else self.write_permission

    def schema_input(self, method):
        return getattr(self, "InputSerializer", None) if method == "POST" else None

    def schema_output(self, method):
        return getattr(self, "OutputSerializer", None)


# --- output --------------------------------------------------------------------------------------


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(source="progress_done")
    total = serializers.IntegerField(source="progress_total")
    fraction = serializers.FloatField(source="progress_fraction", allow_null=True)


class JobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    request = serializers.IntegerField(source="erasure_request_id", allow_null=True)
    request_reference = serializers.CharField(
        source="erasure_request.reference", default=None, allow_null=True
    )
    kind = serializers.CharField()
    framework = serializers.CharField()
    method = serializers.CharField()
    params = serializers.JSONField()
    status = serializers.CharField()
    progress = ProgressSerializer(source="*")
    device = serializers.CharField()
    worker = serializers.CharField()
    attempts = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    phase = serializers.CharField()
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    stalled_at = serializers.DateTimeField(allow_null=True)
    metrics = serializers.JSONField()
    compute_seconds = serializers.FloatField()
    source_model = serializers.IntegerField(source="source_model_id", allow_null=True)
    produced_model = serializers.IntegerField(source="produced_model_id", allow_null=True)
    dataset_version = serializers.IntegerField(source="dataset_version_id", allow_null=True)
    produced_dataset_version = serializers.IntegerField(source="produced_dataset_version_id", allow_null=True)
    decision = serializers.IntegerField(source="decision_id", allow_null=True)
    created_at = serializers.DateTimeField()
    queued_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()


class JobDetailSerializer(JobSerializer):
    log_tail = serializers.SerializerMethodField()

    def get_log_tail(self, obj) -> str:
        return obj.log[-LOG_TAIL_CHARS:]


class ModelVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    path = serializers.CharField()
    kind = serializers.CharField()
    sha256 = serializers.CharField(source="weights_sha256")
    parent = serializers.IntegerField(source="parent_id", allow_null=True)
    dataset_version = serializers.IntegerField(source="dataset_version_id", allow_null=True)
    produced_by_job = serializers.IntegerField(source="produced_by_job_id", allow_null=True)
    recipe = serializers.JSONField()
    notes = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)


class DecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    request = serializers.IntegerField(source="erasure_request_id")
    model_version = serializers.IntegerField(source="model_version_id")
    framework = serializers.CharField()
    method = serializers.CharField()
    params = serializers.JSONField()
    rationale = serializers.CharField()
    decided_by = serializers.CharField(source="decided_by.username")
    decided_at = serializers.DateTimeField()
    jobs = serializers.SerializerMethodField()
    job_note = serializers.CharField()

    def get_jobs(self, obj) -> list[int]:
        return [job.pk for job in obj.jobs.all()]


# --- jobs ----------------------------------------------------------------------------------------


class JobListApi(JobsApiBase):
    """The jobs the caller may read, newest first (paginated), filtered by status, request or kind."""

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=JobStatus.choices, required=False)
        request = DatabaseIdField(required=False)
        kind = serializers.CharField(required=False, max_length=32)

    OutputSerializer = JobSerializer
    pagination_class = ApiPagination

    def schema_output(self, method):
        return JobSerializer(many=True)

    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = jobs.job_list_for(user=request.user)
        data = filters.validated_data
        if "status" in data:
            queryset = queryset.filter(status=data["status"])
        if "request" in data:
            queryset = queryset.filter(erasure_request_id=data["request"])
        if "kind" in data:
            queryset = queryset.filter(kind=data["kind"])
        return paginated_response(self, request, queryset, JobSerializer)


class JobDetailApi(JobsApiBase):
    """One job: state, progress, device, metrics, the model it produced, the tail of its log."""

    OutputSerializer = JobDetailSerializer

    def get(self, request, pk: int):
        job = get_object_or_404(jobs.job_list_for(user=request.user), pk=pk)
        return Response(JobDetailSerializer(job).data)


class JobActionApi(JobsApiBase):
    """``POST /jobs/{id}/actions/retry/`` queues a failed or cancelled job again;
    ``…/cancel/`` stops a queued job now, a running one at its next step, or gives up a failed one;
    ``…/kill/`` kills the process of a running (e.g. stalled) job and queues it again."""

    OutputSerializer = JobDetailSerializer
    services = {"retry": jobs.job_retry, "cancel": jobs.job_cancel, "kill": jobs.job_kill}

    def post(self, request, pk: int, action: str):
        service = self.services.get(action)
        if service is None:
            raise exceptions.NotFound(f"Unknown action {action!r}; use retry, cancel or kill.")
        job = get_object_or_404(UnlearningJob, pk=pk)
        job = service(job=job, actor=request.user)
        return Response(JobDetailSerializer(job).data)


class JobParamsApi(JobsApiBase):
    """Change the method parameters of a queued job; they are validated by the method first."""

    class InputSerializer(serializers.Serializer):
        params = serializers.DictField()

    OutputSerializer = JobDetailSerializer

    def post(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = get_object_or_404(UnlearningJob, pk=pk)
        job = jobs.job_params_update(job=job, actor=request.user, params=serializer.validated_data["params"])
        return Response(JobDetailSerializer(job).data)


# --- model versions ------------------------------------------------------------------------------


class ModelListCreateApi(JobsApiBase):
    """GET: every registered model version, newest first. POST: register a checkpoint by path."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=model_registry.MAX_NAME_LENGTH)
        path = serializers.CharField(max_length=1024)
        dataset_version = DatabaseIdField(required=False, allow_null=True)
        parent = DatabaseIdField(required=False, allow_null=True)
        notes = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=model_registry.MAX_NOTES_LENGTH
        )

    OutputSerializer = ModelVersionSerializer
    pagination_class = ApiPagination

    def schema_output(self, method):
        return {201: ModelVersionSerializer} if method == "POST" else ModelVersionSerializer(many=True)

    def get(self, request):
        return paginated_response(self, request, model_registry.model_version_list(), ModelVersionSerializer)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        errors = {}
        dataset_version = parent = None
        if data.get("dataset_version"):
            dataset_version = DatasetVersion.objects.filter(pk=data["dataset_version"]).first()
            if dataset_version is None:
                errors["dataset_version"] = ["No data-set version has this id."]
        if data.get("parent"):
            parent = ModelVersion.objects.filter(pk=data["parent"]).first()
            if parent is None:
                errors["parent"] = ["No model version has this id."]
        if errors:
            raise serializers.ValidationError(errors)
        version = model_registry.model_version_register(
            name=data["name"],
            path=data["path"],
            actor=request.user,
            dataset_version=dataset_version,
            parent=parent,
            notes=data["notes"],
        )
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class ModelDetailApi(JobsApiBase):
    OutputSerializer = ModelVersionSerializer

    def get(self, request, pk: int):
        return Response(
            ModelVersionSerializer(get_object_or_404(model_registry.model_version_list(), pk=pk)).data
        )


# --- the decision --------------------------------------------------------------------------------


class ErasureDecisionApproveApi(JobsApiBase):
    """Approve a reviewed request with its plan; creates the decisions and queues their jobs.

    Body: ``{"rationale": "...", "plan": [{"model_version": ID, "framework": "deletion",
    "method": "gradient_difference", "params": {...}}]}``. A bad plan is answered 400 with the
    errors of each item in ``plan`` (a list aligned with the items) and nothing saved. Without a
    ``plan`` the request is approved with nothing to run, as the workflow's plain approval
    (``note`` is accepted there as the rationale).
    """

    write_permission = roles.MANAGE_REQUESTS

    class InputSerializer(serializers.Serializer):
        class PlanItemSerializer(serializers.Serializer):
            model_version = serializers.JSONField()
            framework = serializers.JSONField()
            method = serializers.JSONField()
            params = serializers.JSONField(required=False, default=dict)

        rationale = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=decisions.MAX_RATIONALE_LENGTH
        )
        note = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=decisions.MAX_RATIONALE_LENGTH
        )
        plan = serializers.ListField(
            child=serializers.DictField(), required=False, default=list, max_length=decisions.MAX_PLAN_ITEMS
        )

    class OutputSerializer(serializers.Serializer):
        request = serializers.IntegerField()
        status = serializers.CharField()
        decisions = DecisionSerializer(many=True)
        jobs = JobSerializer(many=True)

    def required_permission(self, method):
        return READ if method in ("GET", "HEAD", "OPTIONS") else roles.MANAGE_REQUESTS

    def post(self, request, pk: int):
        from requests_app.services import erasure_request_approve

        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rationale = data["rationale"] or data["note"]
        if data["plan"]:
            decisions.erasure_decision_approve(
                erasure_request=erasure_request, actor=request.user, rationale=rationale, plan=data["plan"]
            )
        else:
            erasure_request_approve(erasure_request=erasure_request, actor=request.user, note=rationale)
        return Response(_decision_body(erasure_request))


class ErasureDecisionListApi(JobsApiBase):
    """The request's decisions (per model version: framework, method, parameters, rationale) and jobs."""

    OutputSerializer = ErasureDecisionApproveApi.OutputSerializer

    def required_permission(self, method):
        return roles.VIEW_REQUESTS

    def get(self, request, pk: int):
        return Response(_decision_body(get_object_or_404(ErasureRequest, pk=pk)))


def _decision_body(erasure_request) -> dict:
    erasure_request.refresh_from_db()
    return {
        "request": erasure_request.pk,
        "status": erasure_request.status,
        "decisions": DecisionSerializer(
            decisions.request_decisions(erasure_request=erasure_request), many=True
        ).data,
        "jobs": JobSerializer(jobs.request_jobs(erasure_request=erasure_request), many=True).data,
    }
