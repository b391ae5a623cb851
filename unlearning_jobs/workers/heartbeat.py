"""A worker bootstep that writes the worker's heartbeat row every few seconds.

A thread, not the event-loop timer, so the heartbeat keeps beating under every pool (prefork,
solo, threads) and while the main thread is busy running a long job in the solo pool.

The thread is safe in a worker that forks its pool children (docs/jobs.md, "Safe forking"):

- it never touches torch or CUDA. A CUDA context cannot cross ``fork()``, and importing torch
  takes seconds, long enough for the pool to fork a child in the middle of it: that child
  inherited a held import lock and hung forever. The device of a worker that takes model work
  is described by the process that does the work, at its first job or queue probe;
- each beat runs inside ``forksafe.fork_exclusive()``, so a fork never cuts a beat (or its first
  database connection, or a log line) in half.
"""

from __future__ import annotations

import logging
import os
import threading

from celery import bootsteps

logger = logging.getLogger(__name__)

#: The queue whose tasks load models; a worker consuming it gets its device from its jobs.
MODEL_QUEUE = "gpu"


class HeartbeatStep(bootsteps.StartStopStep):
    """Start the heartbeat thread with the worker; stop it when the worker stops."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker):
        # Imported here, in the main thread, because the step module is imported before Django
        # is set up; the thread itself imports nothing.
        from django.utils import timezone

        from unlearning_jobs.workers import forksafe
        from unlearning_jobs.workers import services as workers

        queues = sorted(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
        beat = _Beat(
            hostname=worker.hostname,
            queues=queues,
            started_at=timezone.now(),
            workers=workers,
            fork_exclusive=forksafe.fork_exclusive,
        )
        beat.once()  # the first beat, with any lazy import it needs, before the thread exists
        self._thread = threading.Thread(
            target=beat.loop, args=(self._stop,), name="lethe-heartbeat", daemon=True
        )
        self._thread.start()

    def stop(self, worker):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class _Beat:
    """One worker's heartbeat: what it writes, and the loop the thread runs."""

    def __init__(self, *, hostname, queues, started_at, workers, fork_exclusive):
        from django.conf import settings
        from django.db import close_old_connections, connection

        self._settings, self._connection, self._close_old = settings, connection, close_old_connections
        self.hostname = hostname
        self.queues = queues
        self.started_at = started_at
        self.workers = workers
        self.fork_exclusive = fork_exclusive
        # A worker without model work computes on the CPU; one with it is described by its jobs.
        self.device = None if MODEL_QUEUE in queues else workers.cpu_device()

    def once(self) -> None:
        with self.fork_exclusive():
            self._close_old()
            try:
                self.workers.worker_heartbeat_record(
                    hostname=self.hostname,
                    queues=self.queues,
                    pid=os.getpid(),
                    device=self.device,
                    started_at=self.started_at,
                )
            except Exception:  # the database may be briefly away; the next beat retries
                logger.exception("worker.heartbeat_failed", extra={"hostname": self.hostname})
            finally:
                self._connection.close()

    def loop(self, stop: threading.Event) -> None:
        while not stop.wait(self._settings.LETHE_HEARTBEAT_SECONDS):
            self.once()
