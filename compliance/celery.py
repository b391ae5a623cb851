"""The Celery application: two queues (``cpu``, ``gpu``), JSON only, late acknowledgement.

Job state lives in Lethe's own tables, not in Celery's result backend; results are ignored.
"""

import os

from celery import Celery
from kombu import Queue

from compliance.queues import TaskName, WorkQueue, celery_task_routes

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance.settings")

app = Celery("lethe")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[Queue(queue.value, routing_key=queue.value) for queue in WorkQueue],
    task_default_queue=WorkQueue.CPU.value,
    task_default_routing_key=WorkQueue.CPU.value,
    task_routes=celery_task_routes(),
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    result_backend=None,
    # A long job is acknowledged only when it ends, so a worker that dies gives it back.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # Periodic housekeeping; run exactly one `celery beat` (README, "Production").
    beat_schedule={
        "requests-flag-overdue": {"task": TaskName.FLAG_OVERDUE, "schedule": 15 * 60.0},
        "requests-purge-identifiers": {"task": TaskName.PURGE_IDENTIFIERS, "schedule": 24 * 60 * 60.0},
        # Running jobs whose attempt is lost go back to their queue, queued jobs whose message the
        # broker lost are sent again, stalled jobs are flagged (docs/jobs.md).
        "jobs-requeue-stale": {"task": TaskName.REQUEUE_STALE_JOBS, "schedule": 30.0},
    },
)

# Imported by path so that the step module loads no Django model before setup.
app.steps["worker"].add("unlearning_jobs.workers.heartbeat:HeartbeatStep")
