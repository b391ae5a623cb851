"""The Celery queues, named in one place, and which task goes to which.

Model work goes to ``gpu`` (a worker uses CUDA when it has it, the CPU otherwise); indexing,
reports and housekeeping go to ``cpu``. Routing is by task name so that a producer never needs to
import the task's module.
"""

from enum import StrEnum


class WorkQueue(StrEnum):
    CPU = "cpu"
    GPU = "gpu"


# Exact task names; anything not listed goes to the default queue (cpu).
TASK_ROUTES: dict[str, WorkQueue] = {
    "unlearning_jobs.probe_gpu": WorkQueue.GPU,
    "unlearning_jobs.probe_cpu": WorkQueue.CPU,
    "requests_app.flag_overdue": WorkQueue.CPU,
    "requests_app.purge_identifiers": WorkQueue.CPU,
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
