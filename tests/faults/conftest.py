"""Fixtures of the fault suites: real workers whose process groups the tests may kill."""
from __future__ import annotations

import os

import pytest

from tests.faults.support import FAST_LIVENESS, GroupWorker
from tests.unlearning_jobs.jobs_support import worker_env_for


@pytest.fixture
def group_workers(worker_env, data_dir, tmp_path_factory):
    """Start prefork workers in their own process groups on the test's database and data folder.

    ``start(**settings)`` returns a started ``GroupWorker``; every worker started is stopped (its
    whole group killed if it does not stop warm) when the test ends, whatever the test did.
    """
    started: list[GroupWorker] = []

    def start(*, hostname: str | None = None, queues: str = "gpu", pool: str = "prefork",
              **extra) -> GroupWorker:
        env = worker_env_for(worker_env, data_dir=data_dir, **{**FAST_LIVENESS, **extra})
        log_path = tmp_path_factory.mktemp("worker") / "worker.log"
        worker = GroupWorker(env=env, hostname=hostname or f"fault-{os.getpid()}-{len(started)}@localhost",
                             log_path=log_path, queues=queues, pool=pool).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
