"""Celery tasks of the job runner. Thin: claim the job, hand it to the runner, record the outcome.

Names are stable because workers of different versions may share a queue: ``unlearning_jobs.gpu.*``
is routed to the ``gpu`` queue and ``unlearning_jobs.cpu.*`` to ``cpu`` (``compliance.queues``).
Arguments are JSON ids only; extra keyword arguments from newer producers are accepted.
"""

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from compliance.queues import TaskName
from unlearning_jobs.jobs.runner import job_execute
from unlearning_jobs.jobs.services import job_claim, jobs_flag_stalled, jobs_requeue_stale, jobs_resend_queued

logger = logging.getLogger(__name__)

#: Retries of a delivery whose claim found the database away: 5 s doubling to a minute, ~20 minutes.
CLAIM_RETRIES = 25


@shared_task(
    name=TaskName.JOB_RUN,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def job_run(self, job_id: int, **kwargs) -> str:
    """Run job ``job_id`` if it is still queued; a second delivery of the same message does nothing.

    When the database is away at the claim (a restart, a failover) the message is not dropped
    with the failed task: the task is retried with backoff, and runs once the database is back.
    """

    try:
        job = job_claim(job_id=job_id, worker=self.request.hostname or "", task_id=self.request.id or "")
    except (OperationalError, InterfaceError) as error:
        logger.warning(
            "unlearning_job.claim_deferred", extra={"job_id": job_id, "error_type": type(error).__name__}
        )
        raise self.retry(
            exc=error, countdown=min(60, 5 * 2**self.request.retries), max_retries=CLAIM_RETRIES
        ) from error
    if job is None:
        logger.info("unlearning_job.claim_skipped", extra={"job_id": job_id})
        return "not-queued"
    return job_execute(job=job)


@shared_task(name=TaskName.REQUEUE_STALE_JOBS, acks_late=False, ignore_result=True)
def requeue_stale_jobs(**kwargs) -> dict:
    """Queue again the running jobs whose attempt is lost, send again the queued jobs whose message
    was lost, and flag live ones without progress as stalled."""

    return {"requeued": jobs_requeue_stale(), "resent": jobs_resend_queued(), "stalled": jobs_flag_stalled()}
