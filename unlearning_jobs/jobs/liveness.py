"""Who is executing a job, whether that process still lives, and the job's own heartbeat.

A Celery prefork worker runs a job in a pool child, not in the process that writes the worker's
heartbeat: a child killed by the kernel's OOM killer leaves the parent beating on. So liveness is
kept per job, by the process that executes it (docs/jobs.md, "Liveness"):

- ``workers.processes.ProcessIdentity`` names that process beyond its pid, and
  ``process_is_gone`` proves, on the same host, that a recorded process no longer exists;
- ``JobHeartbeat`` is a thread in the executing process that stamps the job's ``heartbeat_at``
  every ``LETHE_JOB_HEARTBEAT_SECONDS`` while its attempt still owns the job.

Every module the heartbeat thread needs is imported here, at module import, so the thread never
takes the interpreter's import locks after it has started (see ``unlearning_jobs.workers.forksafe``).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from unlearning_jobs.models import JobStatus, UnlearningJob
from unlearning_jobs.workers.forksafe import fork_exclusive

logger = logging.getLogger(__name__)


class JobHeartbeat:
    """Stamp a running attempt's ``heartbeat_at`` from a thread of the process that executes it.

    The thread does one conditional UPDATE per beat (``status=running`` and this attempt): when
    no row matches, the attempt has lost the job (re-queued, killed, taken over) and ``lost`` is
    set, so the attempt stops at its next step even if it writes nothing else. Use as a context
    manager around the job's execution; it closes its own database connection when it stops.
    """

    def __init__(self, *, job_id: int, attempt: int, interval: float | None = None):
        self.job_id = job_id
        self.attempt = attempt
        self.interval = settings.LETHE_JOB_HEARTBEAT_SECONDS if interval is None else interval
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lethe-job-{job_id}-heartbeat", daemon=True)

    def __enter__(self) -> "JobHeartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=max(5.0, 2 * self.interval))

    def beat(self) -> bool:
        """Write one heartbeat; return False (and set ``lost``) when the attempt no longer owns the job.

        Lost means the row is visibly someone else's (another status or attempt). A row this
        thread cannot see at all, because the attempt runs inside a transaction not committed
        yet (an inline run in a test or a management command), says nothing: keep beating.
        """
        owned = UnlearningJob.objects.filter(
            pk=self.job_id,
            status=JobStatus.RUNNING,
            attempts=self.attempt,
        ).update(heartbeat_at=timezone.now())
        if owned:
            return True
        if (
            UnlearningJob.objects.filter(pk=self.job_id)
            .exclude(status=JobStatus.RUNNING, attempts=self.attempt)
            .exists()
        ):
            self.lost.set()
            return False
        return True

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                # A job may fork (a data loader, a tokenizer pool): never in the middle of a beat.
                with fork_exclusive():
                    if not self._beat_once():
                        return
        finally:
            with fork_exclusive():
                connection.close()

    def _beat_once(self) -> bool:
        close_old_connections()
        try:
            if not self.beat():
                logger.info(
                    "unlearning_job.heartbeat_lost", extra={"job_id": self.job_id, "attempt": self.attempt}
                )
                return False
        except Exception:  # the database may be briefly away; the next beat tries again
            logger.exception(
                "unlearning_job.heartbeat_failed", extra={"job_id": self.job_id, "attempt": self.attempt}
            )
        return True
