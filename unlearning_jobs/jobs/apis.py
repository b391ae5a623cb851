"""REST API for jobs, model versions and the erasure decision under ``/api/v1/`` (docs/jobs.md).

One class per operation with nested serializers; the classes translate between JSON and the
services. Roles: engineers operate jobs and register models; officers read jobs and models and
decide requests; auditors read the jobs of requests; anyone else gets 403. Errors
(``compliance.api``): 400 with messages per field (per plan item for a decision), 409 when the
state does not allow the step; nothing is written in either case.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from compliance import roles
from compliance.api import ApiBase, ApiPagination, DatabaseIdField, paginated_response
from unlearning_jobs.finetuning import services as finetuning
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.jobs.views import LOG_TAIL_CHARS
from unlearning_jobs.models import DatasetVersion, JobKind, JobStatus, ModelVersion, UnlearningJob


class JobsApiBase(ApiBase):
    """Job state is read by engineers and officers (``jobs.user_may_view_jobs``), changed by engineers."""

    read_permissions = (roles.VIEW_JOBS, roles.VIEW_REQUESTS)
    write_permissions = (roles.OPERATE_JOBS,)


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
    queue = serializers.CharField(help_text="cpu or gpu: the Celery queue whose workers run it")
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


# --- jobs ----------------------------------------------------------------------------------------


#: What ``POST /jobs/`` of kind ``train`` takes in ``params`` (``jobs.train_job_create``).
TRAIN_PARAM_KEYS = ("name", "recipe", "sisa_shards", "sisa_slices", "holdout_fraction")


class JobListApi(JobsApiBase):
    """GET: the jobs the caller may read, newest first (paginated), filtered by status, request or kind.

    POST: queue a job that makes a model: ``{"kind": "finetune", "base_model": id,
    "dataset_version": id, "params": {...}}`` fine-tunes a base (``FinetuneParams`` fields, plus
    ``name``, ``sisa_shards``/``sisa_slices`` for SISA over LoRA adapters and
    ``holdout_fraction``, the share of records never trained on);
    ``{"kind": "train", "dataset_version": id, "params": {"name", "recipe", "sisa_shards",
    "sisa_slices", "holdout_fraction"}}`` trains a GPT-2 from scratch (the demo's models). Answers
    201 with the job.
    """

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=[JobKind.FINETUNE.value, JobKind.TRAIN.value])
        base_model = DatabaseIdField(required=False, allow_null=True)
        dataset_version = DatabaseIdField()
        params = serializers.DictField(required=False, default=dict)

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=JobStatus.choices, required=False)
        request = DatabaseIdField(required=False)
        kind = serializers.CharField(required=False, max_length=32)

    OutputSerializer = JobSerializer
    pagination_class = ApiPagination

    def schema_output(self, method):
        return {201: JobDetailSerializer} if method == "POST" else JobSerializer(many=True)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        errors: dict[str, list[str]] = {}
        dataset_version = DatasetVersion.objects.filter(pk=data["dataset_version"]).first()
        if dataset_version is None:
            errors["dataset_version"] = ["No data-set version has this id."]
        params = dict(data["params"])
        if data["kind"] == JobKind.FINETUNE:
            base = ModelVersion.objects.filter(pk=data.get("base_model") or 0).first()
            if base is None:
                errors["base_model"] = ["Give the id of the model version to fine-tune."]
            if errors:
                raise serializers.ValidationError(errors)
            job = finetuning.finetune_job_create(
                base_model=base, dataset_version=dataset_version, params=params, actor=request.user
            )
        else:
            unknown = sorted(set(params) - set(TRAIN_PARAM_KEYS))
            if unknown:
                errors["params"] = [f"Unknown field(s) for a training job: {', '.join(unknown)}."]
            if not isinstance(params.get("recipe", {}), dict):
                errors["params"] = ["recipe: give an object of recipe fields."]
            if data.get("base_model"):
                errors["base_model"] = ["A training job starts from scratch; fine-tune a base instead."]
            if errors:
                raise serializers.ValidationError(errors)
            job = jobs.train_job_create(dataset_version=dataset_version, actor=request.user, **params)
        return Response(
            JobDetailSerializer(job).data, status=201, headers={"Location": f"/api/v1/jobs/{job.pk}/"}
        )

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


# --- the decision --------------------------------------------------------------------------------
