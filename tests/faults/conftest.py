"""Fixtures of the fault suites: their own PostgreSQL cluster, and real workers whose process
groups the tests may kill."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import quote

import pytest

from tests.factories.jobs import worker_env_for
from tests.faults.support import FAST_LIVENESS, GroupWorker, ThrowawayPostgres


@pytest.fixture(scope="session")
def throwaway_postgres():
    """The suite's own PostgreSQL cluster, or None where ``initdb`` is not installed here.

    The faults suite restarts PostgreSQL mid-job, and other engineers' runs share the cluster on
    5432; so the whole suite runs on a cluster of its own, which is dropped at the end.
    """
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        yield None
        return
    try:
        cluster = ThrowawayPostgres()
    except FileNotFoundError:  # PostgreSQL runs elsewhere: the suite uses DATABASE_URL as given
        yield None
        return
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, throwaway_postgres):
    """Point the test database (pytest-django creates it there) at the suite's own cluster."""
    from django.conf import settings

    if throwaway_postgres is not None:
        settings.DATABASES["default"].update(
            HOST="127.0.0.1", PORT=str(throwaway_postgres.port), USER="postgres", PASSWORD=""
        )


@pytest.fixture
def worker_env(worker_env):
    """The suite's worker environment, with a DATABASE_URL naming the test database's own server."""
    from django.db import connection

    db = connection.settings_dict
    worker_env["DATABASE_URL"] = (
        f"postgres://{quote(db['USER'])}@{db['HOST']}:{db['PORT']}/{quote(db['NAME'])}"
    )
    return worker_env


@pytest.fixture
def group_workers(worker_env, data_dir, tmp_path_factory):
    """Start prefork workers in their own process groups on the test's database and data folder.

    ``start(**settings)`` returns a started ``GroupWorker``; every worker started is stopped (its
    whole group killed if it does not stop warm) when the test ends, whatever the test did.
    """
    started: list[GroupWorker] = []

    def start(
        *, hostname: str | None = None, queues: str = "gpu", pool: str = "prefork", **extra
    ) -> GroupWorker:
        env = worker_env_for(worker_env, data_dir=data_dir, **{**FAST_LIVENESS, **extra})
        log_path = tmp_path_factory.mktemp("worker") / "worker.log"
        worker = GroupWorker(
            env=env,
            hostname=hostname or f"fault-{os.getpid()}-{len(started)}@localhost",
            log_path=log_path,
            queues=queues,
            pool=pool,
        ).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def small_disk():
    """Mount a tmpfs of a given size at a folder; unmount it afterwards. Needs root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = []

    def mount(path, *, size: str):
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "lethe-faults", str(path)], check=True, timeout=30
        )
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=True, timeout=30)
