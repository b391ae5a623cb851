"""What a job depends on fails under it: the broker restarts, the database restarts, the disk fills.

Each ends with nothing lost and a clear status: a job interrupted by a restart finishes exactly
once; a job that cannot write its checkpoint fails saying why, keeps its log and its previous
checkpoint, and a retry once space is free resumes from that checkpoint. The broker and the
database restarted here are the suite's own (a ``redis-server`` on another port, the suite's
PostgreSQL cluster), so other test runs on the shared services are not disturbed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.db import InterfaceError, OperationalError, connection

from compliance.audit import audit_chain_verify
from compliance.models import AuditEvent
from tests.conftest import REPO_ROOT, wait_for
from tests.factories.jobs import data_dir, tickets  # noqa: F401  (fixtures)
from tests.faults.support import (
    CHECKPOINT_EVERY,
    FAULT_RECIPE,
    KILL_AFTER_STEP,
    ThrowawayRedis,
    assert_finished_once_from_checkpoint,
    job_row,
    monotonic,
    wait_for_step,
)
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import JobStatus, ModelVersion

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.slow]

ENDED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


def _train(tickets, engineer, name: str, *, enqueue: bool = True, recipe: dict | None = None):
    return jobs.train_job_create(
        dataset_version=tickets, actor=engineer, name=name, recipe=recipe or FAULT_RECIPE, enqueue=enqueue
    )


def _ended(job_id: int) -> bool:
    return job_row(job_id).status in ENDED


# --- the broker ------------------------------------------------------------------------------


@pytest.fixture
def own_redis():
    """A redis-server of this test's own (6390 when free), stopped and removed afterwards."""
    port = (
        6390
        if subprocess.run(
            ["redis-cli", "-p", "6390", "ping"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        != "PONG"
        else None
    )
    server = ThrowawayRedis(port=port).start()
    yield server
    server.cleanup()


def _send(job, broker_url: str) -> None:
    """Send the job's task to its queue on ``broker_url`` (the test's own broker)."""
    from compliance.celery import app
    from unlearning_jobs.jobs.tasks import job_run

    with app.connection_for_write(broker_url) as broker:
        job_run.apply_async(args=(job.pk,), queue=job.queue, connection=broker)


def test_a_broker_restart_loses_no_job_queued_or_running(
    group_workers, own_redis, tickets, engineer, capsys, tmp_path
):
    """Redis restarts (without persistence, like the suite's own) while one job runs and one waits
    in the queue: the running job finishes exactly once, and the waiting job, whose message died
    with the broker, is sent again by the sweep (run as the beat would, on the same broker) once
    the worker is idle, and finishes too."""
    worker = group_workers(CELERY_BROKER_URL=own_redis.url)
    running = _train(tickets, engineer, "broker-running", enqueue=False)
    waiting = _train(tickets, engineer, "broker-waiting", enqueue=False)
    _send(running, own_redis.url)
    _send(waiting, own_redis.url)
    wait_for_step(running.pk, KILL_AFTER_STEP, worker=worker)
    assert job_row(waiting.pk).status == JobStatus.QUEUED
    own_redis.restart()
    restarted = monotonic()
    sweeper_log = tmp_path / "sweeper.log"
    with sweeper_log.open("wb") as out:
        sweeper = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.sweeper", "5"],
            cwd=REPO_ROOT,
            env=worker.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: _ended(running.pk) and _ended(waiting.pk),
            timeout=300,
            interval=0.5,
            what=f"both jobs to end after the broker restart; worker log:\n{worker.log_tail(60)}\n"
            f"sweeper:\n{sweeper_log.read_text()[-3000:]}",
        )
    finally:
        sweeper.terminate()
        sweeper.wait(timeout=30)
    ended = monotonic() - restarted
    for job in (running, waiting):
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, f"{job.pk}: {job.error}\n{job.log[-2000:]}"
        assert ModelVersion.objects.filter(produced_by_job=job).count() == 1
        actions = list(
            AuditEvent.objects.filter(
                object_id=str(job.pk), action__startswith="unlearning_job."
            ).values_list("action", flat=True)
        )
        assert actions.count("unlearning_job.succeeded") == 1, actions
    assert "its message was presumed lost and sent again" in waiting.log, waiting.log
    chain = audit_chain_verify()
    assert chain.ok, chain.reason
    with capsys.disabled():
        print(
            f"\nbroker restart: both jobs ended {ended:.1f} s after the restart (the running one in "
            f"{running.attempts} attempt(s))"
        )


# --- the database ----------------------------------------------------------------------------


def _answering(predicate):
    """Call ``predicate``; while the database is away, close the broken connection and say False."""

    def check():
        try:
            return predicate()
        except (OperationalError, InterfaceError):
            connection.close()
            return False

    return check


def test_a_database_restart_mid_job_ends_with_the_job_finished_once(
    group_workers, throwaway_postgres, tickets, engineer, capsys
):
    """PostgreSQL restarts while a job trains (every session is cut): the attempt gives the job
    back to its queue as soon as the database answers again, and the next attempt resumes from
    its checkpoint and finishes exactly once. The sweep runs as the beat would run it."""
    if throwaway_postgres is None:
        pytest.skip("the suite's own PostgreSQL cluster could not be made here (no initdb)")
    worker = group_workers()
    job = _train(tickets, engineer, "database-restart")
    wait_for_step(job.pk, KILL_AFTER_STEP, worker=worker)
    restarted_at = monotonic()
    throwaway_postgres.restart()
    connection.close()

    def sweep_and_check():
        jobs.jobs_requeue_stale()
        return _ended(job.pk)

    wait_for(
        _answering(sweep_and_check),
        timeout=240,
        interval=1.0,
        what=f"the job to end after the database restart; worker log:\n{worker.log_tail(60)}",
    )
    ended = monotonic() - restarted_at
    metrics = assert_finished_once_from_checkpoint(job.pk)
    # The attempt itself gave the job back once the database answered, without waiting for its
    # heartbeat to go stale and the sweep to notice.
    requeues = list(
        AuditEvent.objects.filter(object_id=str(job.pk), action="unlearning_job.requeued").values_list(
            "details__reason", flat=True
        )
    )
    assert requeues == ["transient_error"], requeues
    with capsys.disabled():
        print(
            f"\ndatabase restart: job ended {ended:.1f} s after the restart, resumed from step "
            f"{metrics['resumed_from_step']}"
        )


def test_a_job_delivered_while_the_database_is_down_runs_once_it_is_back(
    group_workers, throwaway_postgres, tickets, engineer, capsys
):
    """The database is down when the worker receives a job's message: the claim cannot be made,
    and the message must not be dropped with the failed task (the job would wait, queued, for
    a sweep). The task retries with backoff and the job runs once the database is back."""
    from unlearning_jobs.jobs.tasks import job_run

    if throwaway_postgres is None:
        pytest.skip("the suite's own PostgreSQL cluster could not be made here (no initdb)")
    worker = group_workers()
    wait_for(
        lambda: " ready." in worker.log_tail(200), timeout=60, what=f"the worker; log:\n{worker.log_tail()}"
    )
    job = _train(tickets, engineer, "database-down", enqueue=False)
    connection.close()
    throwaway_postgres.pause()
    try:
        job_run.apply_async(args=(job.pk,), queue=job.queue)
        wait_for(
            lambda: "job_run" in worker.log_tail(200) and "Retry in" in worker.log_tail(200),
            timeout=60,
            what=f"the worker to retry the task; log:\n{worker.log_tail(60)}",
        )
    finally:
        throwaway_postgres.resume()
    back = monotonic()
    wait_for(
        _answering(lambda: _ended(job.pk)),
        timeout=240,
        interval=0.5,
        what=f"the job to end once the database is back; worker log:\n{worker.log_tail(60)}",
    )
    ended = monotonic() - back
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 1, f"{job.error}\n{job.log[-2000:]}"
    assert ModelVersion.objects.filter(produced_by_job=job).count() == 1
    assert audit_chain_verify().ok
    with capsys.disabled():
        print(f"\ndatabase down at delivery: the job ended {ended:.1f} s after the database came back")


# --- the disk ----------------------------------------------------------------------------------


def test_a_full_disk_while_a_checkpoint_is_written_fails_the_job_clearly_and_a_retry_resumes(
    group_workers, small_disk, tickets, engineer, capsys
):
    """The checkpoint folder has room for one checkpoint, not two: the second write fails. The job
    fails saying the disk is full, keeps its log and the first checkpoint (whole, no temporary
    left behind); once space is freed a retry resumes from that checkpoint and succeeds once."""
    from unlearning_jobs.engine.checkpoints import list_checkpoints

    worker = group_workers()
    job = _train(tickets, engineer, "full-disk", enqueue=False)
    checkpoints = small_disk(jobs.job_checkpoint_dir(job.pk), size="8m")
    from django.db import transaction

    with transaction.atomic():
        jobs.job_enqueue(job=job)
    wait_for(
        lambda: _ended(job.pk),
        timeout=240,
        interval=0.2,
        what=f"the job to end on a full disk; worker log:\n{worker.log_tail(60)}",
    )
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED, job.log[-2000:]
    assert "No space left on device" in job.error, job.error
    assert "failed: " in job.log and "training 'full-disk'" in job.log, job.log
    kept = list_checkpoints(checkpoints)
    assert [step for step, _ in kept] == [CHECKPOINT_EVERY], kept
    assert not [p.name for p in checkpoints.iterdir() if p.name.startswith(".tmp-")]
    assert not ModelVersion.objects.filter(produced_by_job=job).exists()

    subprocess.run(["mount", "-o", "remount,size=64m", str(checkpoints)], check=True, timeout=30)
    jobs.job_retry(job=job, actor=engineer)
    wait_for(
        lambda: _ended(job.pk),
        timeout=240,
        interval=0.2,
        what=f"the retried job to end; worker log:\n{worker.log_tail(60)}",
    )
    metrics = assert_finished_once_from_checkpoint(job.pk)
    assert metrics["resumed_from_step"] == CHECKPOINT_EVERY
    with capsys.disabled():
        print(
            f"\nfull disk: failed with {job.error.splitlines()[0]!r}; retry resumed from step "
            f"{metrics['resumed_from_step']}"
        )
