"""The sweep's rules for lost work, quickly; the fault suites (tests/faults) show them end to end.

- A queued job whose message the broker lost is sent again, and only then
  (``jobs_resend_queued``): a live idle worker of the job's queue is what shows it is gone.
- A running job whose attempt went silent is queued again and the attempt's still existing
  process is killed, unless that process now runs another job (``jobs_requeue_stale``).
"""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.models import AuditEvent
from tests.factories.jobs import TINY_RECIPE, data_dir, fast_jobs, tickets  # noqa: F401  (fixtures)
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import UnlearningJob, WorkerHeartbeat
from unlearning_jobs.workers.processes import ProcessIdentity

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]


def _queued(tickets, engineer, *, waited: float):
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)
    UnlearningJob.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(seconds=waited))
    return job


def _worker(hostname: str, *, queues=("gpu",), seen_ago: float = 0.0):
    now = timezone.now()
    return WorkerHeartbeat.objects.create(
        hostname=hostname,
        queues=list(queues),
        pid=1,
        started_at=now,
        last_seen_at=now - timedelta(seconds=seen_ago),
    )


def test_a_job_an_idle_worker_of_its_queue_is_not_taking_is_sent_again_once(
    tickets, engineer, django_capture_on_commit_callbacks
):
    lost = _queued(tickets, engineer, waited=jobs.QUEUED_MESSAGE_LOST_SECONDS + 60)
    _queued(tickets, engineer, waited=60)  # within a retry's countdown: its message may be held
    _worker("idle@h")

    with django_capture_on_commit_callbacks() as callbacks:
        assert jobs.jobs_resend_queued() == [lost.pk]
    assert len(callbacks) == 1
    lost.refresh_from_db()
    assert "its message was presumed lost and sent again" in lost.log
    event = AuditEvent.objects.get(action="unlearning_job.resent")
    assert event.object_id == str(lost.pk) and event.details["reason"] == "message_presumed_lost"
    # Not again until another full wait has passed.
    assert jobs.jobs_resend_queued() == []


def test_no_job_is_sent_again_while_its_queue_has_no_idle_live_worker(tickets, engineer):
    waiting = _queued(tickets, engineer, waited=jobs.QUEUED_MESSAGE_LOST_SECONDS + 60)
    assert jobs.jobs_resend_queued() == []  # no worker at all: the message waits in the broker
    _worker("cpu-only@h", queues=("cpu",))
    _worker("silent@h", seen_ago=3600)
    assert jobs.jobs_resend_queued() == []
    busy = _worker("busy@h")
    running = _queued(tickets, engineer, waited=0)
    jobs.job_claim(job_id=running.pk, worker=busy.hostname)
    assert jobs.jobs_resend_queued() == []  # the busy worker takes the waiting job when it is done
    assert UnlearningJob.objects.get(pk=waiting.pk).status == "queued"


@pytest.fixture
def silent_process():
    """A real process standing in for a frozen attempt's runner; killed afterwards if still there."""
    process = subprocess.Popen(["sleep", "120"])
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def _claimed_by(tickets, engineer, process, *, stale: bool):
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)
    jobs.job_claim(job_id=job.pk, worker="w@h", process=ProcessIdentity.of(process.pid))
    if stale:
        UnlearningJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    return job


def test_the_sweep_kills_the_still_existing_process_of_a_silent_attempt(tickets, engineer, silent_process):
    job = _claimed_by(tickets, engineer, silent_process, stale=True)
    assert jobs.jobs_requeue_stale() == [job.pk]
    assert silent_process.wait(timeout=10) == -9
    job.refresh_from_db()
    assert job.status == "queued" and "process of lost attempt 1 was stopped (signal)" in job.log


def test_the_sweep_spares_a_silent_attempts_process_that_runs_another_job(tickets, engineer, silent_process):
    lost = _claimed_by(tickets, engineer, silent_process, stale=True)
    _claimed_by(tickets, engineer, silent_process, stale=False)  # the same pool child, on its next job
    assert jobs.jobs_requeue_stale() == [lost.pk]
    assert silent_process.poll() is None
    assert "was stopped" not in UnlearningJob.objects.get(pk=lost.pk).log
