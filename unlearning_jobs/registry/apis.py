"""REST endpoints of the model registry (docs/api.md)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.response import Response

from compliance.api import ApiPagination, DatabaseIdField, paginated_response
from unlearning_jobs.finetuning import services as finetuning
from unlearning_jobs.jobs.apis import JobDetailSerializer, JobsApiBase
from unlearning_jobs.models import DatasetVersion, ModelVersion
from unlearning_jobs.registry import services as model_registry


class LineageEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    sha256 = serializers.CharField(source="weights_sha256")


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
    architecture = serializers.CharField()
    parameter_count = serializers.IntegerField(allow_null=True)
    source_sha256 = serializers.CharField()
    lineage = serializers.SerializerMethodField()
    base_model = serializers.SerializerMethodField()
    notes = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    def _index(self):
        # One query for the whole answer, however many versions it lists.
        if "model_versions_index" not in self.context:
            self.context["model_versions_index"] = model_registry.model_versions_index()
        return self.context["model_versions_index"]

    def get_lineage(self, obj) -> list[dict]:
        """The version's ancestors, its parent first and the root (often a base) last."""
        chain = model_registry.model_version_lineage(obj, index=self._index())
        return LineageEntrySerializer(chain[1:], many=True).data

    def get_base_model(self, obj) -> int | None:
        """The pretrained base the weights start from (its pretraining data unknown to Lethe), if any."""
        base = model_registry.model_version_base(obj, index=self._index())
        return base.pk if base is not None else None


class ModelListCreateApi(JobsApiBase):
    """GET: every registered model version, newest first. POST: register a checkpoint by path, or import one.

    ``mode`` ``import`` (the default for a ``.gguf`` file) queues a job that converts the file or
    checkpoint directory into a base under ``LETHE_DATA_DIR`` and answers 202 with the job;
    ``register`` (the default for a directory) registers the directory where it lies, 201.
    """

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=model_registry.MAX_NAME_LENGTH)
        path = serializers.CharField(max_length=1024)
        mode = serializers.ChoiceField(choices=["register", "import"], required=False)
        dataset_version = DatabaseIdField(required=False, allow_null=True)
        parent = DatabaseIdField(required=False, allow_null=True)
        notes = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=model_registry.MAX_NOTES_LENGTH
        )

    OutputSerializer = ModelVersionSerializer
    pagination_class = ApiPagination

    def schema_output(self, method):
        if method == "POST":
            return {201: ModelVersionSerializer, 202: JobDetailSerializer}
        return ModelVersionSerializer(many=True)

    def get(self, request):
        return paginated_response(self, request, model_registry.model_version_list(), ModelVersionSerializer)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        mode = data.get("mode") or ("import" if str(data["path"]).lower().endswith(".gguf") else "register")
        if mode == "import":
            if data.get("dataset_version") or data.get("parent"):
                raise serializers.ValidationError(
                    {"mode": ["An imported model is a base: it has no data-set version and no parent."]}
                )
            job = finetuning.model_import_job_create(
                name=data["name"], path=data["path"], actor=request.user, notes=data["notes"]
            )
            return Response(
                JobDetailSerializer(job).data,
                status=status.HTTP_202_ACCEPTED,
                headers={"Location": f"/api/v1/jobs/{job.pk}/"},
            )
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
