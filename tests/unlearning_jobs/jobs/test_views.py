"""The engineers' pages and the officer's decision page: what each role sees and may do."""

from __future__ import annotations

import pytest
from django.urls import reverse

from requests_app.models import RequestStatus
from tests.factories.jobs import (  # noqa: F401  (fixtures)
    TINY_RECIPE,
    data_dir,
    fast_jobs,
    model_train,
    request_reviewed,
    tickets,
)
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import ErasureDecision, JobStatus, UnlearningJob

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]


@pytest.fixture
def scene(tickets, engineer, officer):
    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    queued = jobs.train_job_create(
        dataset_version=tickets, actor=engineer, name="waiting", recipe=TINY_RECIPE, enqueue=False
    )
    failed = jobs.train_job_create(
        dataset_version=tickets, actor=engineer, name="broken", recipe=TINY_RECIPE, enqueue=False
    )
    claimed = jobs.job_claim(job_id=failed.pk, worker="gpu-1@host")
    jobs.job_fail(
        job_id=failed.pk,
        attempt=claimed.attempts,
        error="RuntimeError: CUDA error",
        error_type="RuntimeError",
    )
    return {
        "source": source,
        "queued": queued,
        "failed": failed,
        "request": request_reviewed(officer=officer),
    }


def _get(client, user, url):
    client.force_login(user)
    return client.get(url)


def test_the_queue_monitor_shows_queued_running_and_failed_jobs_per_queue(client, engineer, officer, scene):
    response = _get(client, engineer, reverse("unlearning_jobs:home"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="queue-gpu"' in html and f'data-job-id="{scene["queued"].pk}"' in html
    assert f'data-job-id="{scene["failed"].pk}"' in html and "waiting" in html
    assert (
        f'data-job-id="{scene["source"].produced_by_job_id}"' not in html
    )  # finished jobs are not in the queue
    assert _get(client, officer, reverse("unlearning_jobs:home")).status_code == 403


def test_the_job_page_shows_state_and_buttons_by_role(client, engineer, officer, auditor, scene):
    failed = scene["failed"]
    url = reverse("unlearning_jobs:job-detail", args=[failed.pk])
    html = _get(client, engineer, url).content.decode()
    assert "CUDA error" in html and 'id="job-retry-form"' in html and 'id="job-retry-form" hidden' not in html
    officer_view = _get(client, officer, url)
    assert officer_view.status_code == 200 and 'id="job-retry-form"' not in officer_view.content.decode()
    assert _get(client, auditor, url).status_code == 404  # a training job belongs to no request

    state = _get(client, engineer, reverse("unlearning_jobs:job-state", args=[failed.pk])).json()
    assert state["status"] == "failed" and state["attempts"] == 1 and "progress" in state


def test_engineers_retry_and_cancel_from_the_page_and_others_cannot(client, engineer, officer, scene):
    queued = scene["queued"]
    cancel = reverse("unlearning_jobs:job-action", args=[queued.pk, "cancel"])
    client.force_login(officer)
    assert client.post(cancel).status_code == 403
    client.force_login(engineer)
    assert client.post(cancel).status_code == 302
    assert UnlearningJob.objects.get(pk=queued.pk).status == JobStatus.CANCELLED
    client.post(reverse("unlearning_jobs:job-action", args=[queued.pk, "retry"]))
    assert UnlearningJob.objects.get(pk=queued.pk).status == JobStatus.QUEUED


def test_the_parameters_of_a_queued_job_are_edited_on_its_page(client, engineer, scene):
    queued = scene["queued"]
    url = reverse("unlearning_jobs:job-params", args=[queued.pk])
    client.force_login(engineer)
    bad = client.post(url, {"params": "{not json"})
    assert bad.status_code == 400 and "Not valid JSON" in bad.content.decode()
    invalid = client.post(url, {"params": '{"sisa_shards": 0}'})
    assert invalid.status_code == 400 and "sisa_shards" in invalid.content.decode()
    assert client.post(url, {"params": '{"name": "renamed", "recipe": {"epochs": 1}}'}).status_code == 302
    assert UnlearningJob.objects.get(pk=queued.pk).params["recipe"]["epochs"] == 1


def test_model_pages_are_read_by_all_roles_and_the_forms_only_shown_to_engineers(
    client, engineer, officer, auditor, scene
):
    for user in (engineer, officer, auditor):
        html = _get(client, user, reverse("unlearning_jobs:model-list")).content.decode()
        assert scene["source"].name in html
        assert ('id="register-model"' in html) == (user == engineer)
    detail = _get(client, officer, reverse("unlearning_jobs:model-detail", args=[scene["source"].pk]))
    assert scene["source"].weights_sha256 in detail.content.decode()
    client.force_login(officer)
    assert (
        client.post(reverse("unlearning_jobs:model-register"), {"name": "x", "path": "/"}).status_code == 403
    )
    client.force_login(engineer)
    refused = client.post(reverse("unlearning_jobs:model-register"), {"name": "x", "path": "/etc"})
    assert refused.status_code == 400 and "Not an allowed location" in refused.content.decode()
    train = client.post(
        reverse("unlearning_jobs:train"),
        {"dataset_version": scene["source"].dataset_version_id, "name": "from page", "epochs": "1"},
    )
    assert train.status_code == 302
    assert UnlearningJob.objects.filter(params__name="from page", status=JobStatus.QUEUED).exists()


@pytest.fixture
def method_without_runner(monkeypatch):
    """A suppression method whose stage has no runner yet: its decisions are recorded without a job."""
    from unlearning_jobs.decisions import methods

    future = methods.PlanMethod(
        framework="output_suppression",
        method="future_filter",
        validate=lambda params: dict(params or {}),
        job_kind=None,
        summary="a filter the suppression stage has not built yet",
    )
    offered = methods._all_methods()
    monkeypatch.setattr(methods, "_all_methods", lambda: (*offered, future))
    yield "future_filter"


def test_the_officer_decides_on_the_decision_page(
    client, officer, auditor, engineer, scene, method_without_runner
):
    erasure_request = scene["request"]
    url = reverse("erasure-decision", args=[erasure_request.pk])
    key = f"m{scene['source'].pk}-deletion"
    html = _get(client, officer, url).content.decode()
    assert 'id="decision-form"' in html and f'name="{key}-method"' in html
    assert 'id="decision-form"' not in _get(client, auditor, url).content.decode()
    assert _get(client, engineer, url).status_code == 403
    client.force_login(auditor)
    assert client.post(url, {f"{key}-method": "retrain", "rationale": "x"}).status_code == 403

    client.force_login(officer)
    bad = client.post(url, {f"{key}-method": "npo", f"{key}-params": '{"beta": -1}', "rationale": ""})
    page = bad.content.decode()
    assert bad.status_code == 400 and "Nothing was saved" in page and "NpoParams.beta" in page
    assert not ErasureDecision.objects.exists()

    good = client.post(
        url,
        {
            f"{key}-method": "gradient_ascent",
            f"{key}-params": '{"max_steps": 3}',
            f"m{scene['source'].pk}-output_suppression-method": method_without_runner,
            "rationale": "Consent withdrawn (Art. 17(1)(b)).",
        },
    )
    assert good.status_code == 302
    erasure_request.refresh_from_db()
    assert erasure_request.status == RequestStatus.EXECUTING
    html = client.get(url).content.decode()
    assert (
        "Consent withdrawn" in html and "gradient_ascent" in html and "No job runs output suppression" in html
    )
    assert 'id="decision-form"' not in html
