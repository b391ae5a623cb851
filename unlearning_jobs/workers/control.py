"""Stop the process that runs a job, wherever it runs: SIGKILL here, Celery's revoke elsewhere.

Used by ``jobs.job_kill`` after the job has been re-queued and its attempt fenced, so whatever
the killed process still manages to do is refused by the database. A hung process cannot be
asked to stop; it has to be killed, and the pool's parent replaces a killed child.
"""

from __future__ import annotations

import logging
import os
import signal

from compliance.celery import app
from unlearning_jobs.workers.processes import ProcessIdentity, process_is_gone

logger = logging.getLogger(__name__)


def runner_kill(*, host: str, pid: int | None, started: str, task_id: str) -> str:
    """Kill the process that ran a job attempt; return how: ``signal``, ``revoke`` or ``none``.

    On this host the pid is signalled only when it is provably the recorded process (same start
    time), never a later process that reused the pid. For any other host the task is revoked
    with ``terminate=True``: the prefork parent that holds it kills its child.
    """
    here = ProcessIdentity.current()
    if pid and host == here.host and started and pid != here.pid:
        if not process_is_gone(host=host, pid=pid, started=started):
            try:
                os.kill(pid, signal.SIGKILL)
                logger.warning("unlearning_job.runner_killed", extra={"pid": pid, "how": "signal"})
                return "signal"
            except ProcessLookupError:
                return "none"  # it ended between the check and the signal
    if not task_id:
        return "none"

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            app.control.revoke(task_id, terminate=True, signal="SIGKILL", connection=connection)
    except Exception as error:  # the job is already re-queued and fenced; the page says so
        logger.warning("unlearning_job.revoke_failed", extra={"task_id": task_id, "error": repr(error)})
        return "none"
    logger.warning("unlearning_job.runner_killed", extra={"task_id": task_id, "how": "revoke"})
    return "revoke"
