"""Pages for jobs, model versions and the officer's decision.

Engineers operate (retry, cancel, change a queued job's parameters, register models, train);
officers read job state and decide requests; auditors read the jobs of requests and change
nothing. Views only translate between HTTP and the services.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views import View
from django.views.generic import TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import (
    JobStatus,
    UnlearningJob,
)

LOG_TAIL_CHARS = 6000
JOB_ACTIONS = {"retry": jobs.job_retry, "cancel": jobs.job_cancel, "kill": jobs.job_kill}


class JobReadMixin(PermissionPageMixin):
    """Let in whoever may read job state: engineers and officers, and auditors for requests' jobs."""

    def has_permission(self):
        return jobs.user_may_view_jobs(self.request.user)


def _job_or_404(user, pk: int) -> UnlearningJob:
    return get_object_or_404(jobs.job_list_for(user=user), pk=pk)


def job_state(job: UnlearningJob) -> dict:
    """Return what the job page shows and refreshes: status, progress, log tail, metrics, result."""
    produced = job.produced_model
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": job.get_status_display(),
        # whether the page goes on refreshing itself (htmx, every 2 s)
        "live": job.status not in jobs.FINISHED_STATUSES,
        "progress": {
            "done": job.progress_done,
            "total": job.progress_total,
            "fraction": job.progress_fraction,
        },
        "device": job.device,
        "worker": job.worker,
        "attempts": job.attempts,
        "cancel_requested": job.cancel_requested,
        "compute_seconds": round(job.compute_seconds, 1),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "progress_at": job.progress_at.isoformat() if job.progress_at else None,
        "phase": job.phase,
        "phase_display": job.get_phase_display() if job.phase else "",
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "stalled_at": job.stalled_at.isoformat() if job.stalled_at else None,
        "last_log_line": jobs.job_last_log_line(job),
        "error": job.error,
        "log_tail": job.log[-LOG_TAIL_CHARS:],
        "metrics": job.metrics,
        "produced_model": (
            {
                "id": produced.pk,
                "name": produced.name,
                "url": produced.get_absolute_url(),
                "weights_sha256": produced.weights_sha256,
            }
            if produced
            else None
        ),
    }


# --- the queue --------------------------------------------------------------------------------------


class JobListView(JobReadMixin, TemplateView):
    """Every job the user may read, newest first, filtered by status."""

    template_name = "unlearning_jobs/job_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        status = self.request.GET.get("status", "")
        queryset = jobs.job_list_for(user=self.request.user)
        if status in JobStatus.values:
            queryset = queryset.filter(status=status)
        page = Paginator(queryset, 50).get_page(self.request.GET.get("page"))
        context.update(
            page=page,
            jobs=page.object_list,
            status=status,
            statuses=JobStatus.choices,
            can_operate=self.request.user.has_perm(roles.OPERATE_JOBS),
        )
        return context


class JobDetailView(JobReadMixin, TemplateView):
    """One job with live progress, its log tail, metrics, result and the engineer's buttons."""

    template_name = "unlearning_jobs/job_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = _job_or_404(self.request.user, self.kwargs["pk"])
        user = self.request.user
        can_operate = user.has_perm(roles.OPERATE_JOBS)
        context.update(
            job=job,
            state=job_state(job),
            can_operate=can_operate,
            can_retry=can_operate and job.status in jobs.RETRYABLE_STATUSES,
            can_cancel=can_operate and job.status in jobs.CANCELLABLE_STATUSES and not job.cancel_requested,
            can_kill=can_operate and job.status == JobStatus.RUNNING,
            can_edit_params=can_operate and job.status == JobStatus.QUEUED,
            params_text=json.dumps(job.params, indent=2, sort_keys=True),
            metrics_text=json.dumps(job.metrics, indent=2, sort_keys=True),
            params_errors=kwargs.get("params_errors", []),
            forget_count=len(job.forget_record_pks),
            can_see_request=bool(job.erasure_request_id and user.has_perm(roles.VIEW_REQUESTS)),
        )
        if "params_text" in kwargs:
            context["params_text"] = kwargs["params_text"]
        return context


class JobStateJsonView(JobReadMixin, View):
    """The job's state as JSON, polled by the job page every second or two."""

    def get(self, request, pk: int):
        response = JsonResponse(job_state(_job_or_404(request.user, pk)))
        response["Cache-Control"] = "no-store"
        return response


class JobActionView(PermissionPageMixin, View):
    """Retry or cancel a job from its page (POST only)."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]

    def post(self, request, pk: int, action: str):
        service = JOB_ACTIONS.get(action)
        if service is None:
            raise Http404("No such action.")
        job = get_object_or_404(UnlearningJob, pk=pk)
        try:
            job = service(job=job, actor=request.user)
        except jobs.JobError as error:
            messages.error(request, " ".join(error.messages))
        else:
            done = {
                "retry": "queued again",
                "cancel": (
                    "asked to stop at its next step" if job.status == JobStatus.RUNNING else "cancelled"
                ),
                "kill": "killed and queued again; it resumes from its last checkpoint",
            }[action]
            messages.success(request, f"Job #{job.pk} {done}.")
        return redirect(job)


class JobParamsView(PermissionPageMixin, View):
    """Change the method parameters of a queued job (POST only)."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]

    def post(self, request, pk: int):
        job = get_object_or_404(UnlearningJob, pk=pk)
        text = request.POST.get("params", "")
        try:
            params = json.loads(text or "{}")
            if not isinstance(params, dict):
                raise ValueError("the parameters must be a JSON object")
        except ValueError as error:
            return self._again(request, pk, text, [f"Not valid JSON: {error}"])
        try:
            jobs.job_params_update(job=job, actor=request.user, params=params)
        except jobs.JobError as error:
            return self._again(request, pk, text, error.messages)
        messages.success(request, f"Job #{job.pk}: parameters changed.")
        return redirect(job)

    def _again(self, request, pk, text, errors):
        view = JobDetailView()
        view.setup(request, pk=pk)
        context = view.get_context_data(params_errors=errors, params_text=text)
        return view.render_to_response(context, status=400)


# --- model versions ------------------------------------------------------------------------------------


# --- the officer's decision ------------------------------------------------------------------------------
