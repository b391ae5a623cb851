"""Prometheus metrics read from Lethe's own tables (docs/operations.md, "Metrics and alerts").

Every value comes from PostgreSQL at scrape time, not from counters kept in a process: each web
process answers the same, so gunicorn's workers need no shared multiprocess directory, and a
restart loses nothing. Each scrape is a handful of aggregate queries on indexed columns.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from compliance import roles
from compliance.models import AuditChainHead, AuditEvent
from compliance.queues import WorkQueue
from requests_app.models import OPEN_STATUSES, ErasureRequest
from unlearning_jobs.models import IndexChunk, IndexChunkStatus, JobStatus, UnlearningJob, WorkerHeartbeat

#: Upper bounds (seconds) of the job-duration histogram: a guard activation takes seconds, a
#: 7B model's unlearning hours.
JOB_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)


def metrics_access_allowed(request) -> bool | None:
    """Return True to serve the metrics, False to refuse (403), None to ask for a credential (401).

    A scraper presents ``Authorization: Bearer <LETHE_METRICS_TOKEN>``; a person is an engineer
    logged in to the site. Without a token configured, only engineers' sessions are accepted.
    """
    header = request.headers.get("Authorization", "")
    token = settings.LETHE_METRICS_TOKEN
    if header.startswith("Bearer "):
        presented = header.removeprefix("Bearer ").strip()
        # A wrong or unconfigured token is a missing credential (401), not a refused person.
        return True if token and hmac.compare_digest(presented.encode(), token.encode()) else None
    if request.user.is_authenticated:
        return request.user.has_perm(roles.OPERATE_JOBS)
    return None


class LetheCollector(Collector):
    """Yield queue depth, running and stalled jobs, job durations, overdue requests, live workers."""

    def collect(self):

        now = timezone.now()
        queues = [queue.value for queue in WorkQueue]

        depth = GaugeMetricFamily(
            "lethe_job_queue_depth", "Jobs queued and not yet started, per queue.", labels=["queue"]
        )
        running = GaugeMetricFamily(
            "lethe_jobs_running", "Jobs running now, per queue and kind.", labels=["queue", "kind"]
        )
        counts = (
            UnlearningJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
            .values_list("status", "queue", "kind")
            .annotate(n=Count("pk"))
            .order_by()
        )
        queued_by_queue = dict.fromkeys(queues, 0)
        for status, queue, kind, n in counts:
            if status == JobStatus.QUEUED:
                queued_by_queue[queue] = queued_by_queue.get(queue, 0) + n
            else:
                running.add_metric([queue, kind], n)
        for queue, n in sorted(queued_by_queue.items()):
            depth.add_metric([queue], n)
        yield depth
        yield running
        yield from self._broker_lengths(queues)
        yield from self._stalled(UnlearningJob, JobStatus)
        yield self._durations(UnlearningJob, JobStatus)
        yield from self._requests(now)
        yield from self._workers(now, queues)
        yield from self._indexing()
        yield from self._audit()

    def _stalled(self, job_model, job_status):
        stalled = GaugeMetricFamily(
            "lethe_jobs_stalled",
            "Running jobs the watchdog marked stalled (no progress for LETHE_JOB_STALL_SECONDS).",
        )
        stalled.add_metric(
            [], job_model.objects.filter(status=job_status.RUNNING, stalled_at__isnull=False).count()
        )
        yield stalled

    def _durations(self, job_model, job_status):
        """A cumulative histogram over every finished job, so ``rate()`` over it works as usual."""
        family = HistogramMetricFamily(
            "lethe_job_duration_seconds",
            "Run time (finished_at - started_at of the last attempt) of finished jobs, per kind and outcome.",
            labels=["kind", "status"],
        )
        duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        buckets = {
            f"le_{index}": Count("pk", filter=Q(duration__lte=timedelta(seconds=bound)))
            for index, bound in enumerate(JOB_DURATION_BUCKETS)
        }
        rows = (
            job_model.objects.filter(
                status__in=[job_status.SUCCEEDED, job_status.FAILED],
                started_at__isnull=False,
                finished_at__isnull=False,
            )
            .annotate(duration=duration)
            .values("kind", "status")
            .annotate(n=Count("pk"), total=Sum("duration"), **buckets)
            .order_by("kind", "status")
        )
        for row in rows:
            cumulative = [
                (str(float(bound)), row[f"le_{index}"]) for index, bound in enumerate(JOB_DURATION_BUCKETS)
            ]
            cumulative.append(("+Inf", row["n"]))
            total = row["total"].total_seconds() if row["total"] is not None else 0.0
            family.add_metric([row["kind"], row["status"]], cumulative, total)
        return family

    def _broker_lengths(self, queues):
        """Messages waiting in the broker per queue, where the broker is Redis (else nothing)."""
        url = settings.CELERY_BROKER_URL or ""
        if not url.startswith(("redis://", "rediss://")):
            return
        import redis

        up = GaugeMetricFamily("lethe_broker_up", "1 if the broker answered this scrape, else 0.")
        lengths = GaugeMetricFamily(
            "lethe_broker_queue_length", "Messages waiting in the broker, per queue.", labels=["queue"]
        )
        try:
            client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
            values = [(queue, client.llen(queue)) for queue in queues]
        except (redis.RedisError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for queue, n in values:
            lengths.add_metric([queue], n)
        yield up
        yield lengths

    def _requests(self, now):

        counts = ErasureRequest.objects.filter(status__in=OPEN_STATUSES).aggregate(
            open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lte=now))
        )
        open_requests = GaugeMetricFamily("lethe_erasure_requests_open", "Erasure requests not yet closed.")
        open_requests.add_metric([], counts["open"])
        overdue = GaugeMetricFamily(
            "lethe_erasure_requests_overdue", "Open erasure requests past their (possibly extended) deadline."
        )
        overdue.add_metric([], counts["overdue"])
        yield open_requests
        yield overdue

    def _workers(self, now, queues):

        cutoff = now - timedelta(seconds=settings.LETHE_WORKER_STALE_SECONDS)
        alive = GaugeMetricFamily(
            "lethe_workers_alive",
            "Workers whose heartbeat is newer than LETHE_WORKER_STALE_SECONDS, per queue.",
            labels=["queue"],
        )
        per_queue = dict.fromkeys(queues, 0)
        for worker_queues in WorkerHeartbeat.objects.filter(last_seen_at__gte=cutoff).values_list(
            "queues", flat=True
        ):
            for queue in worker_queues or []:
                per_queue[queue] = per_queue.get(queue, 0) + 1
        for queue, n in sorted(per_queue.items()):
            alive.add_metric([queue], n)
        yield alive

    def _indexing(self):

        chunks = GaugeMetricFamily(
            "lethe_index_chunks", "PII-index chunks not yet done, per status.", labels=["status"]
        )
        found = dict(
            IndexChunk.objects.exclude(status=IndexChunkStatus.DONE)
            .values_list("status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for status in (IndexChunkStatus.PENDING, IndexChunkStatus.RUNNING, IndexChunkStatus.FAILED):
            chunks.add_metric([status.value], found.get(status.value, 0))
        yield chunks

    def _audit(self):

        last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
        events = CounterMetricFamily("lethe_audit_events", "Events appended to the audit log.")
        events.add_metric([], last)
        head = AuditChainHead.objects.values_list("sequence", flat=True).first() or 0
        verified = GaugeMetricFamily(
            "lethe_audit_chain_verified_sequence", "The last audit event whose hash chain was verified."
        )
        verified.add_metric([], head)
        yield events
        yield verified
