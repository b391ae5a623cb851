"""Workers: their heartbeats and queue probes."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """The last sign of life of one Celery worker, written every few seconds by the worker.

    The queue monitor reads it; the periodic re-queue task treats a worker whose heartbeat is
    older than ``LETHE_WORKER_STALE_SECONDS`` as dead.
    """

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    pid = models.IntegerField(null=True)
    device_type = models.CharField(max_length=16, default="cpu")
    device_name = models.CharField(max_length=255, blank=True)
    device_memory_total_bytes = models.BigIntegerField(null=True, blank=True)
    device_memory_free_bytes = models.BigIntegerField(null=True, blank=True)
    current_job_id = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["hostname"]
        permissions = [("operate_jobs", "Can register models and data sets, retry and cancel jobs")]

    def __str__(self):
        return self.hostname


class QueueProbe(models.Model):
    """A diagnostic task sent to one queue, and which worker and device answered it.

    Engineers use it to check that every queue has a live consumer (e.g. that a GPU worker is
    really on CUDA); the test suite uses it to prove routing with a real worker.
    """

    queue_requested = models.CharField(max_length=16)
    queue_delivered = models.CharField(max_length=16, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    device_type = models.CharField(max_length=16, blank=True)
    device_name = models.CharField(max_length=255, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self):
        return f"probe {self.pk} → {self.queue_requested}"
