"""REST endpoints of the officer's decision: approve with a plan, read the decisions (docs/api.md)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.response import Response

from compliance import roles
from requests_app.models import ErasureRequest
from requests_app.services import erasure_request_approve
from unlearning_jobs.decisions import services as decisions
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.jobs.apis import JobsApiBase, JobSerializer


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


class ErasureDecisionApproveApi(JobsApiBase):
    """Approve a reviewed request with its plan; creates the decisions and queues their jobs.

    Body: ``{"rationale": "...", "plan": [{"model_version": ID, "framework": "deletion",
    "method": "gradient_difference", "params": {...}}]}``. A bad plan is answered 400 with the
    errors of each item in ``plan`` (a list aligned with the items) and nothing saved. Without a
    ``plan`` the request is approved with nothing to run, as the workflow's plain approval
    (``note`` is accepted there as the rationale).
    """

    write_permissions = (roles.MANAGE_REQUESTS,)

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

    write_permissions = (roles.MANAGE_REQUESTS,)

    def post(self, request, pk: int):

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

    read_permissions = (roles.VIEW_REQUESTS,)

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
