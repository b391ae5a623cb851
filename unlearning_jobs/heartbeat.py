"""A worker bootstep that writes the worker's heartbeat row every few seconds.

A thread, not the event-loop timer, so the heartbeat keeps beating under every pool (prefork,
solo, threads) and while the main thread is busy running a long job in the solo pool.
"""
from __future__ import annotations

import logging
import os
import threading

from celery import bootsteps

logger = logging.getLogger(__name__)


class HeartbeatStep(bootsteps.StartStopStep):
    """Start the heartbeat thread with the worker; stop it when the worker stops."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker):
        self._thread = threading.Thread(
            target=self._beat, args=(worker,), name="lethe-heartbeat", daemon=True
        )
        self._thread.start()

    def stop(self, worker):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _beat(self, worker) -> None:
        from django.conf import settings
        from django.db import close_old_connections, connection
        from django.utils import timezone

        from unlearning_jobs.engine.device import describe_device
        from unlearning_jobs.workers import worker_heartbeat_record

        started_at = timezone.now()
        queues = sorted(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
        while not self._stop.is_set():
            close_old_connections()
            try:
                worker_heartbeat_record(
                    hostname=worker.hostname, queues=queues, pid=os.getpid(),
                    device=describe_device().as_dict(), started_at=started_at,
                )
            except Exception:  # the database may be briefly away; the next beat retries
                logger.exception("worker.heartbeat_failed", extra={"hostname": worker.hostname})
            finally:
                connection.close()
            self._stop.wait(settings.LETHE_HEARTBEAT_SECONDS)
