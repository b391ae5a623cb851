"""The Celery queues, named in one place, and which task goes to which.

Model work goes to ``gpu`` (a worker uses CUDA when it has it, the CPU otherwise); indexing,
reports and housekeeping go to ``cpu``. Routing is by task name so that a producer never needs to
import the task's module.
"""

from enum import StrEnum


class WorkQueue(StrEnum):
    CPU = "cpu"
    GPU = "gpu"


class TaskName(StrEnum):
    """Every task's stable name. A service sends a task by its name (``app.send_task``), so it
    never imports the module that defines it, and old and new workers can share a queue."""

    INDEX_CHUNK = "unlearning_jobs.cpu.index_chunk"
    LOCATE_REQUEST = "unlearning_jobs.cpu.locate_request"
    REQUEUE_STALE_JOBS = "unlearning_jobs.cpu.requeue_stale_jobs"
    JOB_RUN = "unlearning_jobs.gpu.job_run"
    PROBE_CPU = "unlearning_jobs.probe_cpu"
    PROBE_GPU = "unlearning_jobs.probe_gpu"
    FLAG_OVERDUE = "requests_app.flag_overdue"
    PURGE_IDENTIFIERS = "requests_app.purge_identifiers"
    DEMO_STORY = "compliance.demo_story"


# Exact task names; anything not listed goes to the default queue (cpu).
TASK_ROUTES: dict[str, WorkQueue] = {
    TaskName.PROBE_GPU: WorkQueue.GPU,
    TaskName.PROBE_CPU: WorkQueue.CPU,
    TaskName.FLAG_OVERDUE: WorkQueue.CPU,
    TaskName.PURGE_IDENTIFIERS: WorkQueue.CPU,
    TaskName.DEMO_STORY: WorkQueue.CPU,
}

# Name patterns, for families of tasks: every task of the GPU job runner is model work.
TASK_ROUTE_PATTERNS: dict[str, WorkQueue] = {
    "unlearning_jobs.gpu.*": WorkQueue.GPU,
    "unlearning_jobs.cpu.*": WorkQueue.CPU,
}


def celery_task_routes() -> dict[str, dict[str, str]]:
    """Return Celery's ``task_routes`` mapping built from the tables above."""
    routes = {name: {"queue": queue.value} for name, queue in TASK_ROUTE_PATTERNS.items()}
    routes.update({name: {"queue": queue.value} for name, queue in TASK_ROUTES.items()})
    return routes
