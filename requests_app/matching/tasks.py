"""The Celery task that searches the PII index for one request's person. Thin: the service does it.

Named ``unlearning_jobs.cpu.locate_request`` (its name since it was first sent, so old and new
workers share the queue), routed to ``cpu`` by ``compliance.queues``.
"""

from __future__ import annotations

from celery import shared_task

from compliance.queues import TaskName
from requests_app.matching.services import locate_run_execute


@shared_task(name=TaskName.LOCATE_REQUEST, bind=True, acks_late=True)
def locate_request(self, coverage_id: int, **kwargs) -> str:
    """Search the PII index for one request's person and hand the candidates to review."""
    return locate_run_execute(coverage_id=coverage_id)
