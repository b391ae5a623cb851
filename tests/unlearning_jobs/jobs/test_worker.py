"""Jobs on a real Celery worker on Redis: end to end, and a worker killed in the middle of a job."""

from __future__ import annotations

import os
import signal

import pytest

from requests_app.models import RequestStatus
from tests.conftest import WorkerProcess, wait_for
from tests.factories.jobs import (  # noqa: F401  (fixtures)
    TINY_APPROX,
    TINY_RECIPE,
    data_dir,
    fast_jobs,
    request_reviewed,
    tickets,
    worker_env_for,
)
from unlearning_jobs.decisions.services import erasure_decision_approve
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import JobStatus, ModelVersion, UnlearningJob

pytestmark = [pytest.mark.worker, pytest.mark.slow]

#: Slow enough on two shared cores to be caught in the middle: a few hundred steps of a 2 x 128 model.
SLOW_RECIPE = {**TINY_RECIPE, "n_layer": 2, "n_embd": 128, "n_head": 4, "batch_size": 4, "epochs": 60}


@pytest.fixture
def worker_factory(worker_env, data_dir, tmp_path_factory):
    started: list[WorkerProcess] = []

    def start(*, hostname: str | None = None, **extra) -> WorkerProcess:
        env = worker_env_for(worker_env, data_dir=data_dir, **extra)
        log_path = tmp_path_factory.mktemp("worker") / "worker.log"
        worker = WorkerProcess(
            env=env,
            hostname=hostname or f"jobs-{os.getpid()}-{len(started)}@localhost",
            log_path=log_path,
            queues="cpu,gpu",
        ).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _status(job_id: int) -> str:
    return UnlearningJob.objects.get(pk=job_id).status


def test_a_real_worker_trains_then_unlearns_and_the_request_moves_to_verifying(
    worker_factory, tickets, engineer, officer
):
    worker = worker_factory()
    train = jobs.train_job_create(
        dataset_version=tickets, actor=engineer, name="on the worker", recipe=TINY_RECIPE
    )
    wait_for(
        lambda: _status(train.pk) in {"succeeded", "failed"},
        timeout=180,
        what=f"the training job; worker log:\n{worker.log_tail()}",
    )
    train.refresh_from_db()
    assert train.status == JobStatus.SUCCEEDED, train.error
    assert train.worker == worker.hostname and train.device.startswith("cpu")

    erasure_request = request_reviewed(officer=officer)
    erasure_decision_approve(
        erasure_request=erasure_request,
        actor=officer,
        rationale="Art. 17(1)(b)",
        plan=[
            {
                "model_version": train.produced_model.pk,
                "framework": "deletion",
                "method": "gradient_difference",
                "params": TINY_APPROX,
            }
        ],
    )
    unlearn = UnlearningJob.objects.get(erasure_request=erasure_request)
    wait_for(
        lambda: _status(unlearn.pk) in {"succeeded", "failed"},
        timeout=180,
        what=f"the unlearning job; worker log:\n{worker.log_tail()}",
    )
    unlearn.refresh_from_db()
    assert unlearn.status == JobStatus.SUCCEEDED, unlearn.error
    assert unlearn.produced_model.parent == train.produced_model
    assert unlearn.produced_dataset_version.record_count == tickets.record_count - 12
    erasure_request.refresh_from_db()
    assert erasure_request.status == RequestStatus.VERIFYING


def test_a_job_whose_worker_is_killed_finishes_once_from_its_checkpoint(worker_factory, tickets, engineer):
    hostname = f"doomed-{os.getpid()}@localhost"
    settings_for_worker = {"LETHE_JOB_CHECKPOINT_EVERY": 20}
    first = worker_factory(hostname=hostname, **settings_for_worker)
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, name="survivor", recipe=SLOW_RECIPE)

    wait_for(
        lambda: UnlearningJob.objects.get(pk=job.pk).progress_done >= 45,
        timeout=240,
        interval=0.1,
        what=f"the job to pass two checkpoints; worker log:\n{first.log_tail()}",
    )
    first.kill(signal.SIGKILL)
    killed_at = UnlearningJob.objects.get(pk=job.pk)
    assert killed_at.status == JobStatus.RUNNING and killed_at.progress_done < killed_at.progress_total

    # A new worker under the same name; the sweep sees the old process gone and queues the job again.
    second = WorkerProcess(
        env=first.env, hostname=hostname, log_path=first.log_path, queues="cpu,gpu"
    ).start()
    try:
        wait_for(
            lambda: jobs.jobs_requeue_stale(stale_seconds=3) or _status(job.pk) != JobStatus.RUNNING,
            timeout=60,
            what="the stale job to be queued again",
        )
        wait_for(
            lambda: _status(job.pk) in {"succeeded", "failed"},
            timeout=300,
            what=f"the job to finish on the new worker; log:\n{second.log_tail()}",
        )
    finally:
        second.stop()

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2
    assert ModelVersion.objects.filter(produced_by_job=job).count() == 1 == ModelVersion.objects.count()
    resumed = job.metrics["resumed_from_step"]
    assert resumed and resumed >= 40 and resumed % 20 == 0
    assert f"resuming from checkpoint step {resumed}" in job.log and "presumed gone" in job.log
    assert job.progress_done == job.progress_total
