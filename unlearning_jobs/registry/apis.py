"""REST endpoints of the model registry (docs/api.md)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.response import Response

from compliance.api import ApiPagination, DatabaseIdField, paginated_response
from unlearning_jobs.jobs.apis import JobsApiBase
from unlearning_jobs.models import DatasetVersion, ModelVersion
from unlearning_jobs.registry import services as model_registry


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
