"""A real Celery worker on Redis takes tasks from both queues and sends heartbeats."""

import pytest

from compliance.queues import WorkQueue
from tests.conftest import wait_for
from unlearning_jobs.models import QueueProbe, WorkerHeartbeat
from unlearning_jobs.workers.services import queue_probe_send

pytestmark = [pytest.mark.worker]


def test_real_worker_runs_gpu_and_cpu_routed_tasks_and_records_heartbeat(celery_worker):
    gpu_probe = queue_probe_send(queue=WorkQueue.GPU)
    cpu_probe = queue_probe_send(queue=WorkQueue.CPU)

    def answered():
        return (
            QueueProbe.objects.filter(pk__in=[gpu_probe.pk, cpu_probe.pk], answered_at__isnull=False).count()
            == 2
        )

    wait_for(answered, timeout=60, what=f"probe answers; worker log:\n{celery_worker.log_tail()}")
    gpu_probe.refresh_from_db()
    cpu_probe.refresh_from_db()
    assert gpu_probe.queue_delivered == "gpu"
    assert cpu_probe.queue_delivered == "cpu"
    assert gpu_probe.hostname == celery_worker.hostname
    assert gpu_probe.device_type in {"cpu", "cuda"}

    heartbeat = wait_for(
        lambda: WorkerHeartbeat.objects.filter(hostname=celery_worker.hostname).first(),
        timeout=30,
        what="a heartbeat row",
    )
    assert heartbeat.queues == ["cpu", "gpu"]
    assert heartbeat.pid == celery_worker.process.pid
    first_seen = heartbeat.last_seen_at
    wait_for(
        lambda: WorkerHeartbeat.objects.get(pk=heartbeat.pk).last_seen_at > first_seen,
        timeout=15,
        what="the heartbeat to be refreshed",
    )


def test_routing_table_sends_model_work_to_gpu_and_the_rest_to_cpu():
    from compliance.celery import app

    router = app.amqp.router
    assert router.route({}, "unlearning_jobs.probe_gpu")["queue"].name == "gpu"
    assert router.route({}, "unlearning_jobs.probe_cpu")["queue"].name == "cpu"
    assert router.route({}, "unlearning_jobs.gpu.anything")["queue"].name == "gpu"
