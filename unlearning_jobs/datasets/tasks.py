"""The Celery task that indexes one chunk of a data-set version. Thin: the services do the work.

It is named ``unlearning_jobs.cpu.*`` so ``compliance.queues`` routes them to the ``cpu``
queue; arguments are ids and ``**kwargs`` is accepted so old and new workers can share a queue.
"""

from __future__ import annotations

from celery import shared_task

from compliance.queues import TaskName
from unlearning_jobs.datasets.indexing import IndexingError, index_chunk_run
from unlearning_jobs.engine.pii.readers import DatasetFormatError
from unlearning_jobs.models import IndexChunk, IndexChunkStatus

# Deterministic failures: retrying cannot help, the chunk is failed with its error kept.
_PERMANENT = (IndexingError, DatasetFormatError)
# How often a task looks again at a chunk another worker holds before leaving it to a resume.
BUSY_CHECKS = 30


@shared_task(name=TaskName.INDEX_CHUNK, bind=True, acks_late=True, max_retries=5)
def index_chunk(self, chunk_id: int, **kwargs) -> str:
    """Index one chunk of a data-set version; a chunk already done is skipped.

    A chunk another worker holds is looked at again after the heartbeat limit: if that worker
    died (the broker redelivers its task at once), the chunk is taken over then.
    """
    from django.conf import settings

    try:
        outcome = index_chunk_run(chunk_id=chunk_id, worker=self.request.hostname or "worker")
    except _PERMANENT:
        return "failed"
    except Exception as error:
        if IndexChunk.objects.filter(pk=chunk_id, status=IndexChunkStatus.PENDING).exists():
            raise self.retry(exc=error, countdown=min(2**self.request.retries * 5, 300)) from error
        raise
    if outcome == "busy":
        busy_checks = kwargs.get("busy_checks", 0)
        if busy_checks < BUSY_CHECKS:
            raise self.retry(
                countdown=settings.LETHE_WORKER_STALE_SECONDS + 5,
                max_retries=None,
                kwargs={**kwargs, "busy_checks": busy_checks + 1},
            )
    return outcome
