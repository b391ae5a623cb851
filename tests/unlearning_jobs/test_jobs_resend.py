"""A queued job whose message the broker lost is sent again, and only then (``jobs_resend_queued``).

The fault suite restarts a real Redis (tests/faults/test_service_faults.py); these are the rules
it relies on, quickly: a live idle worker of the job's queue is what shows the message is gone.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.models import AuditEvent
from tests.unlearning_jobs.jobs_support import data_dir, fast_jobs, tickets  # noqa: F401  (fixtures)
from tests.unlearning_jobs.jobs_support import TINY_RECIPE
from unlearning_jobs import jobs
from unlearning_jobs.models import UnlearningJob, WorkerHeartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]


def _queued(tickets, engineer, *, waited: float):
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)
    UnlearningJob.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(seconds=waited))
    return job


def _worker(hostname: str, *, queues=("gpu",), seen_ago: float = 0.0):
    now = timezone.now()
    return WorkerHeartbeat.objects.create(hostname=hostname, queues=list(queues), pid=1, started_at=now,
                                          last_seen_at=now - timedelta(seconds=seen_ago))


def test_a_job_an_idle_worker_of_its_queue_is_not_taking_is_sent_again_once(
        tickets, engineer, django_capture_on_commit_callbacks):
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
