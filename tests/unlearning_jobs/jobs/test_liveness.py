"""Liveness per job: who runs it, takeover of a lost attempt, the job's heartbeat, the watchdog, kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.models import AuditEvent
from tests.factories.api_world import api_token
from tests.factories.jobs import TINY_RECIPE, data_dir, fast_jobs, tickets  # noqa: F401  (fixtures)
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.jobs.liveness import JobHeartbeat
from unlearning_jobs.jobs.runner import JobContext
from unlearning_jobs.models import JobPhase, JobStatus, UnlearningJob, WorkerHeartbeat
from unlearning_jobs.workers.processes import ProcessIdentity, process_is_gone

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]


def _actions(job) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="unlearning_jobs.unlearningjob", object_id=str(job.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )


def _queued(tickets, engineer) -> UnlearningJob:
    return jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)


@pytest.fixture
def sleeper():
    """A real process that stands for a pool child running a job; killed at the end if still there."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def _identity_of(process: subprocess.Popen) -> ProcessIdentity:
    from unlearning_jobs.workers.processes import _process_start_token

    return ProcessIdentity(
        host=socket.gethostname(), pid=process.pid, started=_process_start_token(process.pid)
    )


def test_a_process_is_gone_only_when_that_is_certain(sleeper):
    identity = _identity_of(sleeper)
    assert identity.started, "Linux gives every process a start token"
    assert not process_is_gone(host=identity.host, pid=identity.pid, started=identity.started)
    # Another host's pid proves nothing; a pid now held by a later process is not the recorded one.
    assert not process_is_gone(host="elsewhere", pid=identity.pid, started=identity.started)
    boot, ticks = identity.started.rsplit(":", 1)
    assert process_is_gone(host=identity.host, pid=identity.pid, started=f"{boot}:{int(ticks) - 1}")
    sleeper.kill()
    sleeper.wait()
    assert process_is_gone(host=identity.host, pid=identity.pid, started=identity.started)


def test_a_redelivered_task_takes_over_a_job_whose_process_died(tickets, engineer, sleeper):
    job = _queued(tickets, engineer)
    first = jobs.job_claim(job_id=job.pk, worker="gpu@h", task_id="t1", process=_identity_of(sleeper))
    assert first.worker_pid == sleeper.pid

    # While that process lives (its heartbeat fresh), a second delivery leaves the job alone.
    assert jobs.job_claim(job_id=job.pk, worker="gpu@h", task_id="t1") is None

    sleeper.kill()  # the OOM killer takes the pool child
    sleeper.wait()
    second = jobs.job_claim(job_id=job.pk, worker="gpu@h", task_id="t1")

    assert second is not None and second.attempts == 2 and second.worker_pid == os.getpid()
    event = AuditEvent.objects.get(action="unlearning_job.taken_over", object_id=str(job.pk))
    assert event.details["reason"] == "runner_gone" and event.details["previous_attempt"] == 1
    assert _actions(job)[-2:] == ["unlearning_job.taken_over", "unlearning_job.started"]
    assert "attempt 1 on gpu@h lost (runner_gone); taken over" in UnlearningJob.objects.get(pk=job.pk).log
    with pytest.raises(jobs.JobLost):  # the old attempt, were it to wake up, is fenced off
        jobs.job_progress_record(job_id=job.pk, attempt=1, done=1, total=10)


def test_a_job_on_another_host_is_taken_over_only_once_its_own_heartbeat_is_stale(tickets, engineer):
    job = _queued(tickets, engineer)
    elsewhere = ProcessIdentity(host="gpu-node-7", pid=4242, started="x:1")
    jobs.job_claim(job_id=job.pk, worker="gpu@node7", process=elsewhere)
    assert jobs.job_claim(job_id=job.pk, worker="gpu@node8") is None

    UnlearningJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    taken = jobs.job_claim(job_id=job.pk, worker="gpu@node8")

    assert taken is not None and taken.worker == "gpu@node8" and taken.attempts == 2
    assert (
        AuditEvent.objects.get(action="unlearning_job.taken_over").details["reason"] == "job_heartbeat_stale"
    )


def test_a_job_an_engineer_is_stopping_is_not_taken_over(tickets, engineer):
    job = _queued(tickets, engineer)
    jobs.job_claim(job_id=job.pk, worker="w@h", process=ProcessIdentity(host="other", pid=1, started=""))
    jobs.job_cancel(job=job, actor=engineer)
    UnlearningJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs.job_claim(job_id=job.pk, worker="w2@h") is None


@pytest.mark.django_db(transaction=True)  # the thread has its own connection: it must see committed rows
def test_the_job_heartbeat_beats_from_its_thread_and_notices_when_the_job_was_taken_away(tickets, engineer):
    job = _queued(tickets, engineer)
    claimed = jobs.job_claim(job_id=job.pk, worker="w@h")
    UnlearningJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=1))

    with JobHeartbeat(job_id=job.pk, attempt=claimed.attempts, interval=0.05) as heartbeat:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            beat = UnlearningJob.objects.get(pk=job.pk).heartbeat_at
            if timezone.now() - beat < timedelta(seconds=5):
                break
            time.sleep(0.05)
        assert timezone.now() - UnlearningJob.objects.get(pk=job.pk).heartbeat_at < timedelta(seconds=5)
        assert not heartbeat.lost.is_set()

        jobs.jobs_requeue_stale(now=timezone.now() + timedelta(hours=1))  # the sweep gave the job away
        assert heartbeat.lost.wait(10), "the heartbeat thread noticed the attempt lost the job"
        context = JobContext(
            job=claimed,
            attempt=claimed.attempts,
            checkpoint_dir=None,
            staging_dir=None,
            checkpoint_every=10,
            device=None,
            heartbeat=heartbeat,
        )
        with pytest.raises(jobs.JobLost):
            context.should_stop()


def test_the_watchdog_flags_a_live_job_without_progress_and_clears_the_flag_when_it_moves(
    tickets, engineer, settings
):
    settings.LETHE_JOB_STALL_SECONDS = 60
    settings.LETHE_JOB_LOAD_STALL_SECONDS = 600
    job = _queued(tickets, engineer)
    loading = _queued(tickets, engineer)
    claimed = jobs.job_claim(job_id=job.pk, worker="w@h")
    jobs.job_claim(job_id=loading.pk, worker="w@h")
    jobs.job_log_append(job_id=job.pk, text="waiting for the all-reduce of step 17")
    jobs.job_phase_record(job_id=loading.pk, attempt=1, phase=JobPhase.LOADING_MODEL)
    later = timezone.now() + timedelta(seconds=120)
    UnlearningJob.objects.filter(pk__in=[job.pk, loading.pk]).update(
        heartbeat_at=later
    )  # both processes alive

    assert jobs.jobs_flag_stalled(now=later) == [job.pk]  # the model load is allowed ten minutes
    assert jobs.jobs_flag_stalled(now=later) == []  # flagged once
    assert jobs.jobs_requeue_stale(now=later) == []  # alive: stalled is not lost
    stalled = UnlearningJob.objects.get(pk=job.pk)
    assert stalled.status == JobStatus.RUNNING and stalled.stalled_at == later
    assert "watchdog: no progress for 120 s" in stalled.log
    event = AuditEvent.objects.get(action="unlearning_job.stalled")
    assert event.details["seconds_without_progress"] == 120 and event.object_id == str(job.pk)
    assert jobs.job_last_log_line(stalled).startswith("watchdog: no progress")

    UnlearningJob.objects.filter(pk=job.pk).update(progress_at=later + timedelta(seconds=1))
    jobs.jobs_flag_stalled(now=later + timedelta(seconds=2))
    assert UnlearningJob.objects.get(pk=job.pk).stalled_at is None
    assert _actions(claimed)[-1] == "unlearning_job.stall_ended"


def test_kill_requeues_the_job_fences_its_attempt_and_kills_its_process(
    tickets, engineer, sleeper, django_capture_on_commit_callbacks
):
    job = _queued(tickets, engineer)
    jobs.job_claim(job_id=job.pk, worker="gpu@h", task_id="t-hung", process=_identity_of(sleeper))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        killed = jobs.job_kill(job=job, actor=engineer)

    assert killed.status == JobStatus.QUEUED and killed.worker == "" and killed.attempts == 1
    assert len(callbacks) == 1  # the new message
    assert sleeper.wait(timeout=10) == -signal.SIGKILL
    event = AuditEvent.objects.get(action="unlearning_job.killed")
    assert (
        event.actor == engineer
        and event.details["pid"] == sleeper.pid
        and event.details["previous_attempt"] == 1
    )
    assert f"attempt 1 killed by {engineer.get_username()}" in killed.log
    with pytest.raises(jobs.JobLost):
        jobs.job_progress_record(job_id=job.pk, attempt=1, done=1, total=2)
    with pytest.raises(jobs.JobError):
        jobs.job_kill(job=killed, actor=engineer)  # only a running job can be killed


def test_the_queue_page_shows_a_stalled_job_with_its_last_log_line_and_the_worker_its_jobs(
    client, tickets, engineer, officer, settings
):
    settings.LETHE_JOB_STALL_SECONDS = 60
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="gpu@h", pid=1, started_at=now, last_seen_at=now)
    job = _queued(tickets, engineer)
    jobs.job_claim(job_id=job.pk, worker="gpu@h", process=ProcessIdentity(host="other", pid=5, started=""))
    jobs.job_log_append(job_id=job.pk, text="loading shard 3 of 8")
    later = now + timedelta(minutes=5)
    UnlearningJob.objects.filter(pk=job.pk).update(heartbeat_at=later)
    jobs.jobs_flag_stalled(now=later)

    client.force_login(engineer)
    page = client.get(reverse("unlearning_jobs:home")).content.decode()

    assert "job-stalled" in page and "watchdog: no progress" in page
    assert reverse("unlearning_jobs:job-action", args=[job.pk, "kill"]) in page
    workers = page[page.index('id="workers"') :]
    assert f"#{job.pk} train" in workers and "idle" not in workers

    client.force_login(officer)  # officers read jobs but may not kill them
    response = client.post(reverse("unlearning_jobs:job-action", args=[job.pk, "kill"]))
    assert response.status_code == 403
    assert UnlearningJob.objects.get(pk=job.pk).status == JobStatus.RUNNING


def test_kill_through_the_api(client, tickets, engineer):
    job = _queued(tickets, engineer)
    jobs.job_claim(job_id=job.pk, worker="gpu@h", process=ProcessIdentity(host="other", pid=5, started=""))
    token = api_token(engineer)

    response = client.post(f"/api/v1/jobs/{job.pk}/actions/kill/", HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "queued" and body["stalled_at"] is None and body["heartbeat_at"] is None
    again = client.post(f"/api/v1/jobs/{job.pk}/actions/kill/", HTTP_AUTHORIZATION=f"Token {token}")
    assert again.status_code == 409


def test_a_job_loading_its_model_says_so_on_the_queue_with_how_long(client, tickets, engineer):
    job = _queued(tickets, engineer)
    jobs.job_claim(job_id=job.pk, worker="gpu@h")
    jobs.job_phase_record(job_id=job.pk, attempt=1, phase=JobPhase.LOADING_MODEL)
    UnlearningJob.objects.filter(pk=job.pk).update(progress_at=timezone.now() - timedelta(seconds=130))

    client.force_login(engineer)
    page = client.get(reverse("unlearning_jobs:home")).content.decode()

    row = page[page.index(f'data-job-id="{job.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "loading model" in row and "for 2\xa0minutes" in row
