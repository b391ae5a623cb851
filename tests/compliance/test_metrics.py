"""/metrics: who may read it, and that each metric counts what the tables hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from requests_app import services as request_services
from requests_app.identifiers import SubjectIdentifiers
from tests.factories.jobs import (
    TINY_RECIPE,
    data_dir,  # noqa: F401  (fixture)
    dataset_version_make,
)
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import UnlearningJob, WorkerHeartbeat

pytestmark = [pytest.mark.django_db]

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture(autouse=True)
def _metrics_settings(settings):
    settings.LETHE_METRICS_TOKEN = TOKEN
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _samples(response) -> dict[tuple, float]:
    """Return ``{(sample name, sorted labels): value}`` from a Prometheus text response."""
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _scrape(client):
    return client.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


@pytest.mark.parametrize(
    "who, header, status",
    [
        ("anonymous", "", 401),
        ("anonymous", "Bearer wrong-token", 401),
        ("anonymous", f"Bearer {TOKEN}", 200),
        ("officer", "", 403),
        ("auditor", "", 403),
        ("engineer", "", 200),
    ],
)
def test_metrics_need_the_bearer_token_or_an_engineers_login(client, role_users, who, header, status):
    if who != "anonymous":
        client.force_login(role_users[who])
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get(reverse("metrics"), **extra)
    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    if status == 200:
        assert b"lethe_job_queue_depth" in response.content


def test_without_a_configured_token_no_bearer_token_is_accepted(client, settings):
    settings.LETHE_METRICS_TOKEN = ""
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer x").status_code == 401


def test_metrics_count_queued_running_stalled_and_finished_jobs(client, settings, data_dir, engineer):  # noqa: F811
    version = dataset_version_make(engineer=engineer, index=False)

    def train():
        return jobs.train_job_create(
            dataset_version=version, actor=engineer, recipe=TINY_RECIPE, enqueue=False
        )

    queued = [train() for _ in range(3)]
    running = jobs.job_claim(job_id=queued[0].pk, worker="gpu1@host")
    finished = jobs.job_claim(job_id=queued[1].pk, worker="gpu1@host")
    jobs.job_fail(job_id=finished.pk, attempt=finished.attempts, error="boom", error_type="RuntimeError")
    # Backdate the finished job's start so that its run time falls in a known bucket (90 s).
    job = UnlearningJob.objects.get(pk=finished.pk)
    UnlearningJob.objects.filter(pk=job.pk).update(started_at=job.finished_at - timedelta(seconds=90))

    before = _samples(_scrape(client))
    assert before[("lethe_job_queue_depth", (("queue", "gpu"),))] == 1
    assert before[("lethe_job_queue_depth", (("queue", "cpu"),))] == 0
    assert before[("lethe_jobs_running", (("kind", "train"), ("queue", "gpu")))] == 1
    assert before[("lethe_jobs_stalled", ())] == 0
    labels = (("kind", "train"), ("status", "failed"))
    assert before[("lethe_job_duration_seconds_count", labels)] == 1
    assert before[("lethe_job_duration_seconds_sum", labels)] == pytest.approx(90, abs=1)
    assert before[("lethe_job_duration_seconds_bucket", (*labels[:1], ("le", "60.0"), labels[1]))] == 0
    assert before[("lethe_job_duration_seconds_bucket", (*labels[:1], ("le", "120.0"), labels[1]))] == 1

    settings.LETHE_JOB_STALL_SECONDS = 60
    assert jobs.jobs_flag_stalled(now=timezone.now() + timedelta(minutes=5)) == [running.pk]
    after = _samples(_scrape(client))
    assert after[("lethe_jobs_stalled", ())] == 1


def test_metrics_count_overdue_requests_and_live_workers(client, officer):
    now = timezone.now()
    subject = SubjectIdentifiers(names=("Grace Hopper",))
    request_services.erasure_request_create(subject=subject, legal_ground="art17_1_b", actor=officer)
    request_services.erasure_request_create(
        subject=subject, legal_ground="art17_1_b", actor=officer, received_at=now - timedelta(days=40)
    )
    WorkerHeartbeat.objects.create(hostname="cpu1@host", queues=["cpu"], started_at=now, last_seen_at=now)
    WorkerHeartbeat.objects.create(hostname="gpu1@host", queues=["gpu"], started_at=now, last_seen_at=now)
    WorkerHeartbeat.objects.create(
        hostname="gpu2@gone",
        queues=["gpu"],
        started_at=now - timedelta(hours=2),
        last_seen_at=now - timedelta(hours=1),
    )

    samples = _samples(_scrape(client))
    assert samples[("lethe_erasure_requests_open", ())] == 2
    assert samples[("lethe_erasure_requests_overdue", ())] == 1
    assert samples[("lethe_workers_alive", (("queue", "cpu"),))] == 1
    assert samples[("lethe_workers_alive", (("queue", "gpu"),))] == 1
    assert samples[("lethe_audit_events_total", ())] >= 2
