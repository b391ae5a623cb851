"""Services for workers: heartbeats and queue probes."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compliance.celery import app as celery_app
from compliance.queues import TaskName, WorkQueue
from unlearning_jobs.models import QueueProbe, WorkerHeartbeat


def _device_fields(device: dict) -> dict:
    return {
        "device_type": device.get("type", "cpu"),
        "device_name": device.get("name", ""),
        "device_memory_total_bytes": device.get("memory_total_bytes"),
        "device_memory_free_bytes": device.get("memory_free_bytes"),
    }


def cpu_device() -> dict:
    """Return the device of a worker without model work: this machine's CPU, described without torch."""
    from unlearning_jobs.engine.device import cpu_device_info

    return cpu_device_info().as_dict()


def worker_heartbeat_record(
    *, hostname: str, queues: list[str], pid: int | None, device: dict | None, started_at=None
) -> WorkerHeartbeat:
    """Create or refresh the heartbeat row of ``hostname`` with its queues (and device, when given).

    ``device`` None leaves the device as the worker's model work last described it
    (``worker_device_record``): the heartbeat thread of such a worker never touches torch.
    """
    now = timezone.now()
    defaults = {
        "queues": sorted(queues),
        "pid": pid,
        # Each worker process reports its own start, so a restart under the same name shows.
        "started_at": started_at or now,
        "last_seen_at": now,
    }
    if device is not None:
        defaults.update(_device_fields(device))
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(hostname=hostname, defaults=defaults)
    return heartbeat


def worker_device_record(*, hostname: str, device: dict) -> None:
    """Store the device a worker's model work runs on, as described by the process doing that work."""
    WorkerHeartbeat.objects.filter(hostname=hostname).update(**_device_fields(device))


def worker_is_alive(heartbeat: WorkerHeartbeat, *, now=None) -> bool:
    """Return whether the worker's last heartbeat is recent enough to trust it is running."""
    now = now or timezone.now()
    return now - heartbeat.last_seen_at <= timedelta(seconds=settings.LETHE_WORKER_STALE_SECONDS)


def queue_probe_send(*, queue: WorkQueue) -> QueueProbe:
    """Send a probe task to ``queue``; the worker that takes it fills in who and what it is."""
    task_name = {WorkQueue.CPU: TaskName.PROBE_CPU, WorkQueue.GPU: TaskName.PROBE_GPU}[queue]
    with transaction.atomic():
        probe = QueueProbe.objects.create(queue_requested=queue.value)
        transaction.on_commit(lambda: celery_app.send_task(task_name.value, args=(probe.pk,)))
    return probe


def queue_probe_answer(*, probe_id: int, queue_delivered: str, hostname: str, device: dict) -> None:
    """Record which worker, from which queue, on which device, answered a probe."""
    QueueProbe.objects.filter(pk=probe_id, answered_at__isnull=True).update(
        queue_delivered=queue_delivered,
        hostname=hostname,
        device_type=device.get("type", ""),
        device_name=device.get("name", ""),
        answered_at=timezone.now(),
    )
