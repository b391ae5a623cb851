"""Pages of verification: one job's (the model it made or measured) and one request's, side by side.

Engineers and officers read every job; auditors read what was run for requests, verify jobs
included (they carry their request in their parameters). Views only select and render.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.generic import TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from requests_app.models import ErasureRequest
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import UnlearningJob
from unlearning_jobs.verification.services import (
    verification_comparison,
    verification_for_job,
    verify_jobs_of_request,
)


def user_may_view_verification_of(user, job: UnlearningJob) -> bool:
    """Return whether ``user`` may read the job's verification: jobs readers all, auditors requests' only."""
    if user.has_perm(roles.VIEW_JOBS):
        return True
    return bool(
        user.has_perm(roles.VIEW_REQUESTS)
        and (job.erasure_request_id or job.params.get("erasure_request_id"))
    )


def verification_job_or_404(user, pk: int) -> UnlearningJob:
    """Return the job when ``user`` may read its verification; 404 otherwise, as for any unknown job."""
    job = get_object_or_404(UnlearningJob.objects.select_related("source_model", "produced_model"), pk=pk)
    if not user_may_view_verification_of(user, job):
        raise Http404("No such job.")
    return job


class VerificationReadMixin(PermissionPageMixin):
    def has_permission(self):
        return jobs.user_may_view_jobs(self.request.user)


class JobVerificationView(VerificationReadMixin, TemplateView):
    """The comparison of the job's request and the membership plot of the job's model."""

    template_name = "unlearning_jobs/verification_job.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = verification_job_or_404(self.request.user, self.kwargs["pk"])
        context.update(job=job, **verification_for_job(job))
        return context


class RequestVerificationView(VerificationReadMixin, TemplateView):
    """Every model of a request measured on the same texts: original, reference, produced."""

    template_name = "unlearning_jobs/verification_request.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        erasure_request = get_object_or_404(ErasureRequest, pk=self.kwargs["pk"])
        context.update(
            erasure_request=erasure_request,
            comparison=verification_comparison(erasure_request_id=erasure_request.pk),
            jobs=list(verify_jobs_of_request(erasure_request.pk)),
        )
        return context
