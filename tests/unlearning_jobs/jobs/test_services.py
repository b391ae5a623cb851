"""Jobs through their services: training, claims, progress, failure, cancel, retry, stale re-queue."""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from compliance import demo
from compliance.models import AuditEvent
from tests.factories.jobs import TINY_RECIPE, data_dir, fast_jobs, model_train, tickets  # noqa: F401  (fixtures)
from unlearning_jobs.engine.checkpoints import weights_sha256
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.jobs.runner import job_run_inline
from unlearning_jobs.jobs.tasks import job_run
from unlearning_jobs.models import JobStatus, ModelVersion, UnlearningJob, WorkerHeartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]


def _events(job) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="unlearning_jobs.unlearningjob", object_id=str(job.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )


def test_training_job_registers_its_model_with_checksum_recipe_and_data(tickets, engineer, data_dir):
    job = model_train(dataset_version=tickets, engineer=engineer, name="Tiny support")

    model = job.produced_model
    assert model is not None and model.produced_by_job == job
    assert (
        Path(model.path).parent == data_dir / "models"
        and Path(model.path).name == f"tiny-support-job{job.pk}"
    )
    assert model.weights_sha256 == weights_sha256(model.path)
    assert model.dataset_version == tickets and model.kind == "hf"
    assert model.recipe["n_embd"] == TINY_RECIPE["n_embd"] and model.recipe["seed"] == 0
    trained_ids = (Path(model.path) / "lethe_training_records.txt").read_text().split()
    assert trained_ids == list(tickets.records.order_by("ordinal").values_list("record_id", flat=True))
    assert job.progress_done == job.progress_total > 0
    assert job.metrics["records"] == tickets.record_count and job.compute_seconds > 0
    assert job.device.startswith("cpu") and job.attempts == 1
    assert _events(job) == ["unlearning_job.created", "unlearning_job.started", "unlearning_job.succeeded"]
    assert AuditEvent.objects.filter(action="model_version.registered", object_id=str(model.pk)).exists()
    assert not Path(job.checkpoint_dir).exists(), "checkpoints of a finished job are removed"


def test_a_task_delivered_twice_runs_the_job_once(tickets, engineer):
    job = jobs.train_job_create(
        dataset_version=tickets, actor=engineer, name="twice", recipe=TINY_RECIPE, enqueue=False
    )

    first = job_run.apply(args=(job.pk,)).get()
    second = job_run.apply(args=(job.pk,)).get()

    assert (first, second) == ("succeeded", "not-queued")
    job.refresh_from_db()
    assert job.attempts == 1 and job.status == JobStatus.SUCCEEDED
    assert ModelVersion.objects.filter(produced_by_job=job).count() == 1
    assert _events(job).count("unlearning_job.started") == 1


def test_a_claim_marks_the_workers_heartbeat_and_the_end_clears_it(tickets, engineer):
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="w1@host", pid=4321, started_at=now, last_seen_at=now)
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)

    claimed = jobs.job_claim(job_id=job.pk, worker="w1@host", task_id="task-1")

    # The job names the process that executes it (a pool child), not the worker's parent (4321).
    assert claimed.status == JobStatus.RUNNING and claimed.worker_pid == os.getpid() != 4321
    assert claimed.runner_host == socket.gethostname() and claimed.runner_started
    assert claimed.task_id == "task-1" and claimed.heartbeat_at is not None
    assert WorkerHeartbeat.objects.get(hostname="w1@host").current_job_id == job.pk
    assert jobs.job_claim(job_id=job.pk, worker="w2@host") is None
    jobs.job_fail(job_id=job.pk, attempt=claimed.attempts, error="boom", error_type="RuntimeError")
    assert WorkerHeartbeat.objects.get(hostname="w1@host").current_job_id is None


def test_a_failed_job_keeps_its_log_and_error_and_registers_no_model(tickets, engineer, data_dir):
    # A deterministic failure: the source of an unlearning job is gone from disk.
    job = jobs.job_create(
        kind="unlearn",
        actor=engineer,
        framework="deletion",
        method="gradient_ascent",
        params={},
        source_model=ModelVersion.objects.create(
            name="vanished", path=str(data_dir / "nowhere"), weights_sha256="0" * 64
        ),
        dataset_version=tickets,
        forget_record_pks=[tickets.records.first().pk],
        enqueue=False,
    )

    assert job_run_inline(job=job) == "failed"

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert "Error" in job.error and "at " in job.error  # the exception and the innermost frames
    assert "attempt 1 started" in job.log and "failed:" in job.log
    assert job.produced_model is None and not ModelVersion.objects.filter(produced_by_job=job).exists()
    assert not (data_dir / "models").exists() or not any((data_dir / "models").iterdir())
    assert _events(job)[-1] == "unlearning_job.failed"


def test_retry_queues_a_failed_job_again_and_keeps_its_attempts(tickets, engineer):
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)
    claimed = jobs.job_claim(job_id=job.pk, worker="w@host")
    jobs.job_fail(
        job_id=job.pk, attempt=claimed.attempts, error="CUDA out of memory", error_type="OutOfMemoryError"
    )

    retried = jobs.job_retry(job=job, actor=engineer)

    assert (
        retried.status == JobStatus.QUEUED and retried.attempts == 1 and retried.error == "CUDA out of memory"
    )
    assert job_run_inline(job=retried) == "succeeded"
    retried.refresh_from_db()
    assert retried.attempts == 2 and retried.error == "" and retried.produced_model is not None
    assert "unlearning_job.retried" in _events(job)
    with pytest.raises(jobs.JobError):
        jobs.job_retry(job=retried, actor=engineer)


def test_cancel_stops_a_queued_job_at_once_and_a_running_one_at_its_next_step(tickets, engineer):
    queued = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)
    assert jobs.job_cancel(job=queued, actor=engineer).status == JobStatus.CANCELLED
    assert jobs.job_claim(job_id=queued.pk, worker="w@host") is None

    running = jobs.train_job_create(
        dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False
    )
    claimed = jobs.job_claim(job_id=running.pk, worker="w@host")
    assert jobs.job_cancel(job=running, actor=engineer).status == JobStatus.RUNNING
    assert UnlearningJob.objects.get(pk=running.pk).cancel_requested

    from unlearning_jobs.jobs.runner import job_execute

    assert job_execute(job=claimed) == "cancelled"
    running.refresh_from_db()
    assert running.status == JobStatus.CANCELLED and running.progress_done == 0
    assert "cancelled at step 0" in running.log and running.produced_model is None
    assert _events(running)[-2:] == ["unlearning_job.cancel_requested", "unlearning_job.cancelled"]


def test_a_cancelled_job_resumes_from_its_checkpoint_when_retried(tickets, engineer, settings, monkeypatch):
    settings.LETHE_JOB_CHECKPOINT_EVERY = 3
    job = jobs.train_job_create(
        dataset_version=tickets, actor=engineer, recipe={**TINY_RECIPE, "epochs": 4}, enqueue=False
    )
    claimed = jobs.job_claim(job_id=job.pk, worker="w@host")
    calls = {"n": 0}

    def stop_after_some_steps(*, job_id, attempt):
        calls["n"] += 1
        if calls["n"] > 7:
            UnlearningJob.objects.filter(pk=job_id).update(cancel_requested=True)
        return original(job_id=job_id, attempt=attempt)

    original = jobs.job_stop_requested
    monkeypatch.setattr(jobs, "job_stop_requested", stop_after_some_steps)
    from unlearning_jobs.jobs.runner import job_execute

    assert job_execute(job=claimed) == "cancelled"
    monkeypatch.undo()
    job.refresh_from_db()
    stopped_at = job.progress_done
    assert job.status == JobStatus.CANCELLED and stopped_at >= 6

    jobs.job_retry(job=job, actor=engineer)
    assert job_run_inline(job=job) == "succeeded"
    job.refresh_from_db()
    assert 0 < job.metrics["resumed_from_step"] <= stopped_at
    assert f"resuming from checkpoint step {job.metrics['resumed_from_step']}" in job.log


def test_parameters_of_a_queued_job_can_change_and_are_validated(tickets, engineer):
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)

    with pytest.raises(jobs.JobError) as error:
        jobs.job_params_update(job=job, actor=engineer, params={**job.params, "recipe": {"epochs": 0}})
    assert "epochs" in str(error.value.message_dict["params"])
    changed = jobs.job_params_update(job=job, actor=engineer, params={**job.params, "name": "renamed"})
    assert changed.params["name"] == "renamed"
    event = AuditEvent.objects.filter(action="unlearning_job.params_changed", object_id=str(job.pk)).get()
    assert event.actor == engineer and event.details["params"]["name"] == "renamed"

    jobs.job_claim(job_id=job.pk, worker="w@host")
    with pytest.raises(jobs.JobError):
        jobs.job_params_update(job=job, actor=engineer, params=job.params)


def test_running_jobs_whose_own_heartbeat_is_stale_are_queued_again_whatever_the_worker_says(
    tickets, engineer, django_capture_on_commit_callbacks
):
    now = timezone.now()
    # A prefork parent keeps beating after its pool child died: the worker's heartbeat is fresh.
    WorkerHeartbeat.objects.create(hostname="parent@h", pid=1, started_at=now, last_seen_at=now)
    made = {}
    for name in ("beating", "silent", "dead_worker_but_beating"):
        made[name] = jobs.train_job_create(
            dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False
        )
        jobs.job_claim(
            job_id=made[name].pk, worker="parent@h" if name != "dead_worker_but_beating" else "gone@h"
        )
    UnlearningJob.objects.filter(pk__in=[j.pk for j in made.values()]).update(runner_host="another-host")
    UnlearningJob.objects.filter(pk=made["silent"].pk).update(heartbeat_at=now - timedelta(minutes=2))
    stopping = made["silent"]

    with django_capture_on_commit_callbacks() as callbacks:
        requeued = jobs.jobs_requeue_stale(now=now)

    assert requeued == [made["silent"].pk]
    assert len(callbacks) == 1  # one message, sent after commit
    for name in ("beating", "dead_worker_but_beating"):
        assert UnlearningJob.objects.get(pk=made[name].pk).status == JobStatus.RUNNING
    job = UnlearningJob.objects.get(pk=made["silent"].pk)
    assert (
        job.status == JobStatus.QUEUED and job.worker == "" and job.attempts == 1 and job.heartbeat_at is None
    )
    assert "presumed gone (job_heartbeat_stale)" in job.log
    event = AuditEvent.objects.get(action="unlearning_job.requeued")
    assert event.details["reason"] == "job_heartbeat_stale" and event.details["previous_attempt"] == 1
    assert jobs.jobs_requeue_stale(now=now) == []
    # A job an engineer asked to stop is cancelled, not queued again, when its process is lost.
    jobs.job_claim(job_id=stopping.pk, worker="parent@h")
    jobs.job_cancel(job=stopping, actor=engineer)
    UnlearningJob.objects.filter(pk=stopping.pk).update(
        runner_host="another-host", heartbeat_at=now - timedelta(minutes=2)
    )
    jobs.jobs_requeue_stale(now=now)
    assert UnlearningJob.objects.get(pk=stopping.pk).status == JobStatus.CANCELLED


def test_a_job_that_keeps_losing_its_worker_fails_after_the_attempt_limit(tickets, engineer, settings):
    settings.LETHE_JOB_MAX_ATTEMPTS = 2
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)
    later = timezone.now() + timedelta(hours=1)  # each attempt's heartbeat is an hour old by then
    jobs.job_claim(job_id=job.pk, worker="oom@h")
    assert jobs.jobs_requeue_stale(now=later) == [job.pk]
    jobs.job_claim(job_id=job.pk, worker="oom@h")

    assert jobs.jobs_requeue_stale(now=later) == []
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "gave up after 2 attempts" in job.error


def test_an_attempt_that_lost_its_job_writes_nothing_more(tickets, engineer):
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)
    first = jobs.job_claim(job_id=job.pk, worker="old@h")
    UnlearningJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)  # the sweep gave it away
    second = jobs.job_claim(job_id=job.pk, worker="new@h")
    assert second.attempts == first.attempts + 1

    with pytest.raises(jobs.JobLost):
        jobs.job_progress_record(job_id=job.pk, attempt=first.attempts, done=5, total=10)
    with pytest.raises(jobs.JobLost):
        jobs.job_succeed(job_id=job.pk, attempt=first.attempts, metrics={}, produced=None)
    assert jobs.job_fail(job_id=job.pk, attempt=first.attempts, error="x", error_type="X") is None
    assert UnlearningJob.objects.get(pk=job.pk).worker == "new@h"


def test_the_log_keeps_its_newest_part_within_the_bound(tickets, engineer, settings):
    settings.LETHE_JOB_LOG_MAX_CHARS = 200
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)
    for n in range(30):
        jobs.job_log_append(job_id=job.pk, text=f"line {n:02d}")
    log = UnlearningJob.objects.get(pk=job.pk).log
    assert len(log) == 200 and log.endswith("line 29\n") and "line 00" not in log


def test_an_output_a_killed_attempt_finished_is_adopted_not_trained_again(
    tickets, engineer, data_dir, monkeypatch
):
    from unlearning_jobs.jobs import runner as job_runner

    job = jobs.train_job_create(
        dataset_version=tickets, actor=engineer, name="adopt", recipe=TINY_RECIPE, enqueue=False
    )
    claimed = jobs.job_claim(job_id=job.pk, worker="w@h")

    def die_before_commit(**kwargs):
        raise SystemExit("killed between the rename and the commit")

    monkeypatch.setattr(jobs, "job_succeed", die_before_commit)
    with pytest.raises(SystemExit):
        job_runner.job_execute(job=claimed)
    monkeypatch.undo()
    published = data_dir / "models" / f"adopt-job{job.pk}"
    stamp = json.loads((published / "lethe_job.json").read_text())
    assert stamp["job_id"] == job.pk and not ModelVersion.objects.exists()

    UnlearningJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    assert job_run_inline(job=job) == "succeeded"
    job.refresh_from_db()
    assert "adopting the output an earlier attempt finished" in job.log
    assert (
        job.produced_model.path == str(published)
        and job.produced_model.weights_sha256 == stamp["weights_sha256"]
    )
    assert ModelVersion.objects.count() == 1


def test_the_demo_model_trains_once_as_a_job_in_either_layout(tickets, settings):
    settings.LETHE_DEMO_TRAIN_EPOCHS = 1  # the demo's architecture, one pass: seconds, not minutes
    job = demo.demo_model_train(dataset_version=tickets)

    assert job.status == JobStatus.SUCCEEDED and job.kind == "train" and job.created_by is None
    model = job.produced_model
    assert model.name == demo.DEMO_MODEL_NAME and model.kind == "hf" and model.dataset_version == tickets
    assert (model.recipe["n_layer"], model.recipe["n_embd"], model.recipe["vocab_size"]) == (2, 128, 4096)
    assert model.recipe["epochs"] == 1
    assert demo.demo_model_train(dataset_version=tickets) == job  # seed_demo may run again

    sharded = demo.demo_model_train(dataset_version=tickets, sisa_shards=2)
    assert sharded != job and sharded.produced_model.kind == "sisa"
    assert sharded.produced_model.recipe["sisa"]["shards"] == 2
    assert ModelVersion.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_claim_the_job_exactly_once(tickets, engineer):
    import threading

    from django.db import connection

    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)
    barrier = threading.Barrier(8)
    claims = []

    def deliver(n):
        try:
            barrier.wait()
            claims.append(jobs.job_claim(job_id=job.pk, worker=f"w{n}@host"))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    won = [claim for claim in claims if claim is not None]
    assert len(claims) == 8 and len(won) == 1
    assert UnlearningJob.objects.get(pk=job.pk).attempts == 1
    assert AuditEvent.objects.filter(action="unlearning_job.started", object_id=str(job.pk)).count() == 1


def test_a_running_job_shows_the_device_it_computes_on_before_it_ends(tickets, engineer, tmp_path):
    from django.db.models import F

    from unlearning_jobs.jobs.runner import JobContext

    job = jobs.train_job_create(
        dataset_version=tickets, actor=engineer, name="device", recipe=TINY_RECIPE, enqueue=False
    )
    claimed = jobs.job_claim(job_id=job.pk, worker="w-device")
    context = JobContext(
        job=claimed,
        attempt=claimed.attempts,
        checkpoint_dir=tmp_path / "checkpoints",
        staging_dir=tmp_path / "staging",
        checkpoint_every=10,
        device="cpu",
    )
    label = context.device_record()
    claimed.refresh_from_db()
    assert claimed.status == JobStatus.RUNNING and claimed.device == label and label.startswith("cpu")
    UnlearningJob.objects.filter(pk=job.pk).update(attempts=F("attempts") + 1)  # another attempt took it
    with pytest.raises(jobs.JobLost):
        context.device_record()
