"""REST endpoints of verification: ``GET /api/v1/jobs/{id}/verification/`` and ``…/requests/{id}/verification/``.

Read-only; the same roles as the pages. Rows carry value, threshold, comparator, condition,
pass or fail (as decided by the engine on the unrounded value), sample size and details with
masked examples only.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.response import Response

from requests_app.models import ErasureRequest
from unlearning_jobs.jobs.apis import JobsApiBase
from unlearning_jobs.models import VerificationRun
from unlearning_jobs.verification.services import (
    run_as_dict,
    verification_for_job,
    verification_runs_current,
    verify_jobs_of_request,
)
from unlearning_jobs.verification.views import verification_job_or_404


class VerificationOutputSerializer(serializers.Serializer):
    runs = serializers.ListField(child=serializers.DictField())
    jobs = serializers.ListField(child=serializers.DictField())


def _jobs(verify_jobs) -> list[dict]:
    return [
        {
            "id": job.pk,
            "role": job.params.get("role"),
            "status": job.status,
            "model_version_id": job.source_model_id,
        }
        for job in verify_jobs
    ]


def _runs(runs) -> list[dict]:
    """Every run, oldest first; ``current`` is false for one a later measurement of its model superseded."""
    runs = list(runs.select_related("model_version", "job").prefetch_related("results").order_by("pk"))
    current = {run.pk for run in verification_runs_current(runs)}
    return [{**run_as_dict(run), "current": run.pk in current} for run in runs]


class JobVerificationApi(JobsApiBase):
    """The verification of a job: its own run (verify job) or its produced model's, and the request's runs."""

    OutputSerializer = VerificationOutputSerializer

    def get(self, request, pk: int):
        job = verification_job_or_404(request.user, pk)
        selected = verification_for_job(job)
        request_id = selected["erasure_request_id"]
        runs = (
            VerificationRun.objects.filter(erasure_request_id=request_id)
            if request_id
            else VerificationRun.objects.filter(job=job)
        )
        return Response(
            {
                "run": run_as_dict(selected["run"]) if selected["run"] else None,
                "runs": _runs(runs),
                "jobs": _jobs(selected["jobs"]),
            }
        )


class RequestVerificationApi(JobsApiBase):
    """Every verification run of a request, with its rows (``current``: not superseded)."""

    OutputSerializer = VerificationOutputSerializer

    def get(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        return Response(
            {
                "erasure_request_id": erasure_request.pk,
                "runs": _runs(VerificationRun.objects.filter(erasure_request=erasure_request)),
                "jobs": _jobs(verify_jobs_of_request(erasure_request.pk)),
            }
        )
