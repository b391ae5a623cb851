"""The beat's job sweep, every second, in a process of its own: ``python -m tests.faults.sweeper SECONDS``.

Runs ``jobs_requeue_stale`` and ``jobs_resend_queued(queued_seconds=SECONDS)`` with the broker
and database of its environment, as the beat's task does every 30 s on a worker. A test whose
broker is not the test process's own (a restarted Redis on another port) runs it beside its
worker so that the messages the sweep sends reach that broker.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import django

logger = logging.getLogger("tests.faults.sweeper")


def main(queued_seconds: float) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance.settings")
    django.setup()
    from django.db import DatabaseError, close_old_connections
    from kombu.exceptions import OperationalError as BrokerError

    from unlearning_jobs.jobs import services as jobs

    while True:
        close_old_connections()
        try:
            requeued = jobs.jobs_requeue_stale()
            resent = jobs.jobs_resend_queued(queued_seconds=queued_seconds)
            if requeued or resent:
                print(f"sweep: requeued {requeued}, resent {resent}", flush=True)
        except (DatabaseError, BrokerError, ConnectionError) as error:  # a service is away: sweep again
            print(f"sweep failed: {error!r}", flush=True)
        time.sleep(1.0)


if __name__ == "__main__":
    main(float(sys.argv[1]))
