"""A job survives the death of the process running it: its pool child, or its whole worker.

On a GPU worker a pool child killed by the kernel's OOM killer is an everyday event, and so is a
machine that loses its worker. Each kill here lands mid-training, after checkpoints were written;
each time the job must end exactly once (one ``succeeded``, one model version), resumed from its
checkpoint, with every step an audit event and the chain intact. Repetition is the point: a
recovery that depends on timing fails one round in a few.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import wait_for
from tests.factories.jobs import data_dir, tickets  # noqa: F401  (fixtures)
from tests.faults.support import (
    FAST_LIVENESS,
    FAULT_RECIPE,
    KILL_AFTER_STEP,
    Timings,
    assert_finished_once_from_checkpoint,
    job_row,
    monotonic,
    parent_of,
    wait_for_step,
)
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import JobStatus

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.slow]

ROUNDS = int(os.environ.get("LETHE_FAULTS_KILL_ROUNDS", "5"))


def _train(tickets, engineer, name: str):
    return jobs.train_job_create(dataset_version=tickets, actor=engineer, name=name, recipe=FAULT_RECIPE)


def _finished(job_id: int) -> bool:
    return job_row(job_id).status in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


def test_a_job_whose_pool_child_is_killed_is_taken_over_and_finishes_once(
    group_workers, tickets, engineer, capsys
):
    """SIGKILL of the pool child, the parent left alive: Celery redelivers the task (acks late) to
    the next child, which takes the job over because the recorded process is provably gone. No
    sweep is run here: the redelivery alone must recover the job."""
    worker = group_workers()
    table = Timings(
        title=f"SIGKILL of the pool child running a job, {ROUNDS} rounds (seconds)",
        columns=["round", "killed at step", "kill to takeover", "kill to succeeded"],
    )
    for round_no in range(1, ROUNDS + 1):
        job = _train(tickets, engineer, f"child-kill-{round_no}")
        running = wait_for_step(job.pk, KILL_AFTER_STEP, worker=worker)
        child = running.worker_pid
        assert parent_of(child) == worker.pid, "the job runs in a pool child of the worker"
        os.kill(child, signal.SIGKILL)
        killed = monotonic()
        wait_for(
            lambda job=job: job_row(job.pk).attempts == 2 or _finished(job.pk),
            timeout=90,
            interval=0.1,
            what=f"a new attempt to take job {job.pk} over; worker log:\n{worker.log_tail()}",
        )
        taken_over = monotonic()
        wait_for(
            lambda job=job: _finished(job.pk),
            timeout=240,
            interval=0.2,
            what=f"job {job.pk} to finish; worker log:\n{worker.log_tail()}",
        )
        done = monotonic()
        assert_finished_once_from_checkpoint(job.pk)
        log = job_row(job.pk).log
        assert "(runner_gone); taken over" in log, log[-2000:]
        assert worker.process.poll() is None, "the worker's parent survives its child"
        table.add(round_no, running.progress_done, taken_over - killed, done - killed)
    table.publish("faults-pool-child-kills", capsys)


def test_a_job_whose_whole_worker_is_killed_is_requeued_and_finishes_once_on_a_new_worker(
    group_workers, tickets, engineer, capsys
):
    """SIGKILL of the worker's whole process group (parent and children), then a new worker: the
    stale-job sweep finds the recorded process gone and queues the job again; the new worker
    resumes it. The broker keeps the dead worker's unacknowledged message for its visibility
    timeout, so the sweep's new message is what brings the job back."""
    worker = group_workers()
    table = Timings(
        title=f"SIGKILL of the whole worker (process group), {ROUNDS} rounds (seconds)",
        columns=["round", "killed at step", "kill to requeued", "kill to succeeded"],
    )
    for round_no in range(1, ROUNDS + 1):
        job = _train(tickets, engineer, f"worker-kill-{round_no}")
        running = wait_for_step(job.pk, KILL_AFTER_STEP, worker=worker)
        worker.kill_group()
        killed = monotonic()
        assert job_row(job.pk).status == JobStatus.RUNNING
        worker = group_workers()
        wait_for(
            lambda job=job: (
                job.pk in jobs.jobs_requeue_stale() or job_row(job.pk).status != JobStatus.RUNNING
            ),
            timeout=60,
            interval=0.5,
            what=f"the sweep to queue job {job.pk} again",
        )
        requeued = monotonic()
        wait_for(
            lambda job=job: _finished(job.pk),
            timeout=240,
            interval=0.2,
            what=f"job {job.pk} to finish on the new worker; log:\n{worker.log_tail()}",
        )
        done = monotonic()
        assert_finished_once_from_checkpoint(job.pk)
        assert "(runner_gone); queued again" in job_row(job.pk).log
        table.add(round_no, running.progress_done, requeued - killed, done - killed)
    table.publish("faults-worker-kills", capsys)


def test_a_job_whose_pool_child_freezes_is_requeued_and_its_process_killed_so_the_worker_takes_it_again(
    group_workers, tickets, engineer, capsys
):
    """SIGSTOP of the pool child: the process lives but does nothing, its job heartbeat included
    (a process wedged in the kernel or in a C extension holding the GIL). The sweep finds the
    heartbeat stale and queues the job again; it must also kill the frozen process, or the only
    pool slot of the worker stays taken by it and nothing ever runs the job again."""
    worker = group_workers()
    job = _train(tickets, engineer, "frozen-child")
    running = wait_for_step(job.pk, KILL_AFTER_STEP, worker=worker)
    child = running.worker_pid
    os.kill(child, signal.SIGSTOP)
    frozen = monotonic()
    try:
        stale = FAST_LIVENESS["LETHE_JOB_HEARTBEAT_STALE_SECONDS"]
        wait_for(
            lambda: (
                job.pk in jobs.jobs_requeue_stale(stale_seconds=stale)
                or job_row(job.pk).status != JobStatus.RUNNING
            ),
            timeout=60,
            interval=0.5,
            what=f"the sweep to queue job {job.pk} again",
        )
        requeued = monotonic()
        wait_for(
            lambda job=job: _finished(job.pk),
            timeout=120,
            interval=0.2,
            what=f"job {job.pk} to finish after its frozen attempt; worker log:\n{worker.log_tail()}",
        )
    finally:
        if parent_of(child) is not None:
            os.kill(child, signal.SIGKILL)  # the test's own clean-up if the product left it frozen
    done = monotonic()
    assert_finished_once_from_checkpoint(job.pk)
    log = job_row(job.pk).log
    assert (
        "(job_heartbeat_stale); queued again" in log
        and "process of lost attempt 1 was stopped (signal)" in log
    )
    with capsys.disabled():
        print(
            f"\nfrozen pool child: queued again {requeued - frozen:.1f} s after SIGSTOP, "
            f"succeeded {done - frozen:.1f} s after it"
        )
