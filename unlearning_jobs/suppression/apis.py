"""REST endpoints of suppression: the guarded generate endpoint, the rules export, derived-data stores.

``POST /api/v1/models/{id}/generate`` answers a prompt with the model's newest deployment behind
its guard; engineers and officers may call it, auditors may not (403). ``GET
/api/v1/deployments/{id}/rules.json`` returns the active rules in the engine's export format for
another serving stack; engineers, officers and auditors may read it.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from compliance import roles
from compliance.api import ApiBase, DatabaseIdField
from unlearning_jobs.models import Dataset, Deployment, DerivedDataKind, ModelVersion
from unlearning_jobs.suppression import guard as guard_runtime
from unlearning_jobs.suppression import latent
from unlearning_jobs.suppression import services as suppression


class ModelGenerateApi(ApiBase):
    """Generate text with a registered model behind its deployment's guard."""

    read_permissions = write_permissions = suppression.GENERATE_PERMISSIONS
    throttle_scope = "generate"

    class InputSerializer(serializers.Serializer):
        prompt = serializers.CharField(max_length=guard_runtime.MAX_PROMPT_CHARS, trim_whitespace=False)
        max_new_tokens = serializers.IntegerField(
            min_value=1, max_value=guard_runtime.MAX_NEW_TOKENS, default=64
        )
        deployment = DatabaseIdField(required=False)

    @extend_schema(
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The generated text, and what the guard did (docs/suppression.md)",
            )
        }
    )
    def post(self, request, pk: int):
        model_version = get_object_or_404(ModelVersion, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "deployment" in data.validated_data:
            deployment = get_object_or_404(
                Deployment, pk=data.validated_data["deployment"], model_version=model_version
            )
        else:
            deployment = suppression.deployment_for_model(model_version)
        if deployment is None:
            return Response(
                {
                    "detail": "No deployment guards this model version: create one first.",
                    "code": "no_deployment",
                },
                status=status.HTTP_409_CONFLICT,
            )
        # A prompt the guard refuses is a ValidationError, answered 400 by ``compliance.api``.
        body = guard_runtime.guarded_generate(
            deployment=deployment,
            prompt=data.validated_data["prompt"],
            max_new_tokens=data.validated_data["max_new_tokens"],
            actor=request.user,
        )
        return Response(body)


class ModelGenerateSlashApi(ModelGenerateApi):
    """The same endpoint with a trailing slash, for clients that add one; documented once, as the other."""

    @extend_schema(exclude=True)
    def post(self, request, pk: int):
        return super().post(request, pk)


class DeploymentRulesExportApi(ApiBase):
    """Return the deployment's active rules as ``lethe-guard-rules`` JSON (hashes, types, key id)."""

    read_permissions = suppression.READ_DEPLOYMENT_PERMISSIONS

    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="lethe-guard-rules JSON")}
    )
    def get(self, request, pk: int):
        deployment = get_object_or_404(Deployment.objects.select_related("active_rule_set"), pk=pk)
        return Response(suppression.deployment_rules_export(deployment))


class DerivedStoreSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    location = serializers.CharField()
    owner = serializers.CharField()
    dataset = serializers.IntegerField(source="dataset_id", allow_null=True)
    record_keys = serializers.IntegerField(
        source="record_entries", help_text="How many training records the store holds entries of"
    )
    entries = serializers.IntegerField(source="entries_total")
    created_at = serializers.DateTimeField()


class DerivedStoreListCreateApi(ApiBase):
    """``GET``: the derived-data stores latent suppression reaches. ``POST`` (engineers): register one.

    Body: ``{"name", "kind", "location", "owner", "dataset": ID, "record_keys": ["<record id>", ...]}``.
    ``record_keys`` are the ids of the records of ``dataset`` the store holds something built
    from (embeddings, cached answers, feature rows, index entries); each must be a record id of
    that data set, or nothing is registered (400). Only counts come back: Lethe stores keyed
    hashes of the ids, never the ids.
    """

    read_permissions = suppression.READ_DEPLOYMENT_PERMISSIONS
    write_permissions = (roles.OPERATE_JOBS,)
    schema_operation_ids = {"GET": "derived_stores_list", "POST": "derived_stores_register"}

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        kind = serializers.ChoiceField(choices=DerivedDataKind.choices)
        location = serializers.CharField(max_length=1024)
        owner = serializers.CharField(max_length=200)
        dataset = DatabaseIdField(required=False, allow_null=True, default=None)
        record_keys = serializers.ListField(
            child=serializers.CharField(max_length=255), required=False, default=list, max_length=100_000
        )

    def schema_output(self, method):
        return {201: DerivedStoreSerializer} if method == "POST" else DerivedStoreSerializer(many=True)

    def get(self, request):
        return Response(DerivedStoreSerializer(latent.derived_stores_list(), many=True).data)

    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        dataset = None
        if values["dataset"] is not None:
            # a data set named in the body that does not exist is bad input (400), not a missing page
            dataset = Dataset.objects.filter(pk=values["dataset"]).first()
            if dataset is None:
                raise serializers.ValidationError({"dataset": [f"No data set has id {values['dataset']}."]})
        store = latent.derived_store_register(
            name=values["name"],
            kind=values["kind"],
            location=values["location"],
            owner=values["owner"],
            dataset=dataset,
            record_keys=values["record_keys"],
            actor=request.user,
        )
        stored = latent.derived_stores_list().get(pk=store.pk)
        return Response(DerivedStoreSerializer(stored).data, status=status.HTTP_201_CREATED)
