"""Celery tasks that answer queue probes. Thin: load state, call a service, record the outcome."""

from celery import shared_task

from compliance.queues import TaskName
from unlearning_jobs.workers.services import queue_probe_answer, worker_device_record


def _delivered_queue(task) -> str:
    info = task.request.delivery_info or {}
    return info.get("routing_key") or info.get("exchange") or ""


@shared_task(name=TaskName.PROBE_GPU, bind=True, acks_late=False)
def probe_gpu(self, probe_id: int, **kwargs) -> None:
    """Answer a probe from the ``gpu`` queue with the device a model job would use here."""
    from unlearning_jobs.engine.device import describe_device

    device = describe_device().as_dict()  # here, in the process that runs model work
    hostname = self.request.hostname or ""
    worker_device_record(hostname=hostname, device=device)
    queue_probe_answer(
        probe_id=probe_id, queue_delivered=_delivered_queue(self), hostname=hostname, device=device
    )


@shared_task(name=TaskName.PROBE_CPU, bind=True, acks_late=False)
def probe_cpu(self, probe_id: int, **kwargs) -> None:
    """Answer a probe from the ``cpu`` queue."""
    queue_probe_answer(
        probe_id=probe_id,
        queue_delivered=_delivered_queue(self),
        hostname=self.request.hostname or "",
        device={"type": "cpu", "name": "cpu"},
    )
