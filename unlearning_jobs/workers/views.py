"""Pages for ML engineers: the queue monitor (jobs per queue, workers, probes).

Job, model and decision pages are in ``unlearning_jobs.jobs.views``.
"""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from compliance.queues import WorkQueue
from compliance.start_panel import start_panel_for
from unlearning_jobs.jobs.services import job_queue_overview, jobs_running_by_worker, unlearning_job_to_watch
from unlearning_jobs.models import QueueProbe, WorkerHeartbeat
from unlearning_jobs.workers.services import queue_probe_send, worker_is_alive


class EngineerHomeView(PermissionPageMixin, TemplateView):
    """The queue monitor: per queue the queued, running and failed jobs, oldest first, with their
    age (a stalled job with its last log line and a kill button); the workers with their devices,
    heartbeats and the jobs running on them (read from the jobs); recent queue probes."""

    permission_required = roles.OPERATE_JOBS
    template_name = "unlearning_jobs/engineer_home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        running = jobs_running_by_worker()
        context["workers"] = [
            {"heartbeat": hb, "alive": worker_is_alive(hb, now=now), "jobs": running.get(hb.hostname, [])}
            for hb in WorkerHeartbeat.objects.all()
        ]
        context["job_queues"] = job_queue_overview(now=now)
        context["now"] = now
        context["probes"] = QueueProbe.objects.all()[:10]
        context["queues"] = [queue.value for queue in WorkQueue]
        job = unlearning_job_to_watch()
        if job is not None:
            next_text = f"Watch the unlearning job of {job.erasure_request.reference} (#{job.pk})"
            next_url = job.get_absolute_url()
        else:
            next_text, next_url = "Train a model", reverse("unlearning_jobs:train")
        context["start_panel"] = start_panel_for(
            self.request.session, "engineer", next_text=next_text, next_url=next_url
        )
        return context


class QueueProbeSendView(PermissionPageMixin, View):
    """Send one probe to each queue, to see which worker and device answer."""

    permission_required = roles.OPERATE_JOBS

    def post(self, request):
        for queue in WorkQueue:
            queue_probe_send(queue=queue)
        messages.info(request, "A probe was sent to each queue; answers appear below.")
        return redirect("unlearning_jobs:home")
