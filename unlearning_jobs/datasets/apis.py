"""REST API for data sets under ``/api/v1/datasets/`` (docs/api.md, docs/datasets.md).

One class per operation with nested serializers; the classes translate JSON to the registry's
services and back. Reading needs the job queue's read permission (engineers, officers);
registering and resuming need ``operate_jobs`` (engineers). Registration is a job on the cpu
queue (202 with the job); a request refused before the file is read (name, fields, a path outside
the allowed folders) answers 400 with the reason and queues nothing.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.response import Response

from compliance import roles
from requests_app.apis import ErasureRequestApiBase
from unlearning_jobs.dataset_jobs import services as dataset_jobs
from unlearning_jobs.datasets import indexing
from unlearning_jobs.datasets import services as datasets
from unlearning_jobs.engine.pii.readers import DatasetFormat
from unlearning_jobs.jobs.apis import JobDetailSerializer
from unlearning_jobs.models import DatasetVersion


class DatasetApiBase(ErasureRequestApiBase):
    """Role checks shared with the request API; errors are answered by ``compliance.api``."""

    read_permissions = (roles.VIEW_JOBS,)
    write_permissions = (roles.OPERATE_JOBS,)


class ProgressSerializer(serializers.Serializer):
    chunks_total = serializers.IntegerField()
    chunks_done = serializers.IntegerField()
    chunks_running = serializers.IntegerField()
    chunks_pending = serializers.IntegerField()
    chunks_failed = serializers.IntegerField()
    records_total = serializers.IntegerField()
    records_done = serializers.IntegerField()
    percent = serializers.FloatField()
    records_per_second = serializers.FloatField(allow_null=True)
    eta_seconds = serializers.IntegerField(allow_null=True)
    findings = serializers.IntegerField()
    findings_by_type = serializers.DictField(child=serializers.IntegerField())
    dropped = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)


class DatasetVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    status = serializers.CharField()
    parent = serializers.IntegerField(source="parent_id", allow_null=True)
    source_name = serializers.CharField()
    format = serializers.CharField()
    text_fields = serializers.ListField(child=serializers.CharField())
    id_field = serializers.CharField(allow_blank=True)
    record_count = serializers.IntegerField()
    file_sha256 = serializers.CharField(allow_blank=True)
    manifest_sha256 = serializers.CharField()
    hash_key_id = serializers.CharField()
    chunk_size = serializers.IntegerField()
    registered_at = serializers.DateTimeField()
    registered_by = serializers.CharField(source="registered_by.username", default=None)
    indexed_at = serializers.DateTimeField(allow_null=True)
    index_configuration = serializers.JSONField()
    removed_manifest = serializers.JSONField()
    progress = serializers.SerializerMethodField()
    reingestion_hits = serializers.SerializerMethodField(help_text="Records flagged and not let back in")

    def get_progress(self, obj) -> dict:
        # A list reads every version's progress at once and passes it in the context.
        progress = self.context.get("progress", {}).get(obj.pk)
        return ProgressSerializer(
            progress if progress is not None else indexing.dataset_version_progress(obj)
        ).data

    def get_reingestion_hits(self, obj) -> int:
        blocked = getattr(obj, "reingestion_blocked", None)  # annotated by ``datasets.dataset_list``
        return (
            blocked
            if blocked is not None
            else obj.reingestion_hits.filter(overridden_at__isnull=True).count()
        )


class DatasetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    versions = serializers.SerializerMethodField()

    def get_versions(self, obj) -> list[dict]:
        # ``datasets.dataset_list`` prefetched them, newest first, with who registered each.
        return DatasetVersionSerializer(obj.versions.all(), many=True, context=self.context).data


def datasets_data(queryset) -> list[dict]:
    """Serialise data sets from ``datasets.dataset_list()``, reading every version's progress in one query."""
    listed = list(queryset)
    progress = indexing.dataset_versions_progress(
        version for dataset in listed for version in dataset.versions.all()
    )
    return DatasetSerializer(listed, many=True, context={"progress": progress}).data


class DatasetListCreateApi(DatasetApiBase):
    """GET: every data set with its versions. POST: queue the registration of a file by path."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=datasets.MAX_NAME_LENGTH)
        path = serializers.CharField(
            max_length=4096, help_text="Under LETHE_DATA_DIR or one of LETHE_IMPORT_ROOTS"
        )
        format = serializers.ChoiceField(
            choices=[f.value for f in DatasetFormat], required=False, allow_null=True, default=None
        )
        text_field = serializers.ListField(
            child=serializers.CharField(max_length=200),
            min_length=1,
            default=["text"],
            help_text="Fields joined by new lines",
        )
        id_field = serializers.CharField(
            max_length=200, required=False, allow_blank=True, allow_null=True, default=None
        )
        description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
        chunk_size = serializers.IntegerField(min_value=1, max_value=100_000, required=False, default=None)

        def to_internal_value(self, data):
            if isinstance(data, dict) and isinstance(data.get("text_field"), str):
                data = {**data, "text_field": [part.strip() for part in data["text_field"].split(",")]}
            return super().to_internal_value(data)

    OutputSerializer = JobDetailSerializer
    schema_operation_ids = {"GET": "datasets_list", "POST": "datasets_register"}

    def schema_output(self, method):
        return {202: JobDetailSerializer} if method == "POST" else DatasetSerializer(many=True)

    def get(self, request):
        return Response(datasets_data(datasets.dataset_list()))

    def post(self, request):
        """Check the request and queue a ``register_dataset`` job on the cpu queue; answer 202 with it.

        The file's records are read by the job (``unlearning_jobs.dataset_jobs``): its
        ``produced_dataset_version`` is the new version once it has succeeded, and its ``error``
        says why the registry refused the file when it fails.
        """
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = dataset_jobs.dataset_register_job_create(
            name=data["name"],
            path=data["path"],
            actor=request.user,
            format=data["format"],
            text_field=data["text_field"],
            id_field=data["id_field"],
            description=data["description"],
            chunk_size=data["chunk_size"],
        )
        return Response(JobDetailSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class DatasetDetailApi(DatasetApiBase):
    """One data set with its versions, each with its indexing progress."""

    OutputSerializer = DatasetSerializer

    def get(self, request, pk: int):
        found = datasets_data(datasets.dataset_list().filter(pk=pk))
        if not found:
            raise Http404("No data set has this id.")
        return Response(found[0])


class DatasetVersionResumeApi(DatasetApiBase):
    """Queue a version's unfinished chunks again; chunks done are kept."""

    class InputSerializer(serializers.Serializer):
        pass

    class OutputSerializer(serializers.Serializer):
        version = DatasetVersionSerializer()
        chunks_queued = serializers.IntegerField()

    def post(self, request, pk: int):
        version = get_object_or_404(DatasetVersion, pk=pk)
        queued = indexing.dataset_version_index_resume(version=version, actor=request.user)
        version.refresh_from_db()
        return Response({"version": DatasetVersionSerializer(version).data, "chunks_queued": len(queued)})
