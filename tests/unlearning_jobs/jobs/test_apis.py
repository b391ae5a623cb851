"""The jobs API and the decision endpoint: fields, roles, errors."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from requests_app.models import RequestStatus
from tests.factories.jobs import (  # noqa: F401  (fixtures)
    TINY_APPROX,
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
def api(role_users):
    def client_for(name):
        client = APIClient()
        if name == "nobody":
            client.force_authenticate(
                get_user_model().objects.create_user("nobody", password="x-9-long-enough")
            )
        elif name != "anonymous":
            client.force_authenticate(role_users[name])
        return client

    return client_for


@pytest.fixture
def scene(tickets, engineer, officer):
    """A trained model, a reviewed request, and a queued training job without a request."""
    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    erasure_request = request_reviewed(officer=officer)
    train = jobs.train_job_create(dataset_version=tickets, actor=engineer, recipe=TINY_RECIPE, enqueue=False)
    return {"source": source, "request": erasure_request, "train": train}


def _plan(source, **params):
    return [
        {
            "model_version": source.pk,
            "framework": "deletion",
            "method": "gradient_difference",
            "params": {**TINY_APPROX, **params},
        }
    ]


def test_a_bad_plan_is_400_per_item_and_saves_nothing(api, scene):
    url = f"/api/v1/requests/{scene['request'].pk}/actions/approve/"
    body = {
        "rationale": "Art. 17(1)(b)",
        "plan": [
            *_plan(scene["source"], learning_rate=7),
            {"model_version": scene["source"].pk, "framework": "deletion", "method": "retrain"},
            {"model_version": "one", "framework": "deletion", "method": "retrain"},
        ],
    }

    response = api("officer").post(url, body, format="json")

    assert response.status_code == 400
    assert "learning_rate" in response.data["plan"][0]["params"][0]
    assert response.data["plan"][1] == {}
    assert "model_version" in response.data["plan"][2]
    scene["request"].refresh_from_db()
    assert scene["request"].status == RequestStatus.REVIEW and not ErasureDecision.objects.exists()


def test_the_decision_approves_creates_the_jobs_and_is_read_back(api, scene):
    url = f"/api/v1/requests/{scene['request'].pk}/actions/approve/"
    assert (
        api("auditor")
        .post(url, {"rationale": "x", "plan": _plan(scene["source"])}, format="json")
        .status_code
        == 403
    )
    assert (
        api("engineer")
        .post(url, {"rationale": "x", "plan": _plan(scene["source"])}, format="json")
        .status_code
        == 403
    )

    response = api("officer").post(
        url, {"rationale": "Consent withdrawn.", "plan": _plan(scene["source"])}, format="json"
    )

    assert response.status_code == 200, response.data
    assert response.data["status"] == "executing"
    assert response.data["decisions"][0]["method"] == "gradient_difference"
    job = response.data["jobs"][0]
    assert (
        job["status"] == "queued" and job["request"] == scene["request"].pk and job["framework"] == "deletion"
    )
    again = api("officer").post(url, {"rationale": "x", "plan": _plan(scene["source"])}, format="json")
    assert again.status_code == 409
    for reader in ("officer", "auditor"):
        listed = api(reader).get(f"/api/v1/requests/{scene['request'].pk}/decisions/")
        assert listed.status_code == 200 and listed.data["decisions"][0]["jobs"] == [job["id"]]
    assert api("engineer").get(f"/api/v1/requests/{scene['request'].pk}/decisions/").status_code == 403


def test_approval_without_a_plan_is_refused_while_a_model_is_in_scope(api, scene):
    response = api("officer").post(
        f"/api/v1/requests/{scene['request'].pk}/actions/approve/",
        {"note": "Nothing in any model."},
        format="json",
    )
    assert response.status_code == 409
    assert "decision page" in str(response.data)
    scene["request"].refresh_from_db()
    assert scene["request"].status == "review"
    assert not ErasureDecision.objects.filter(erasure_request=scene["request"]).exists()


def test_job_list_and_detail_per_role(api, scene, officer):
    from unlearning_jobs.decisions.services import erasure_decision_approve

    erasure_decision_approve(
        erasure_request=scene["request"], actor=officer, rationale="r", plan=_plan(scene["source"])
    )
    request_job = UnlearningJob.objects.get(erasure_request=scene["request"])

    seen = {
        name: {item["id"] for item in api(name).get("/api/v1/jobs/").data["results"]}
        for name in ("engineer", "officer", "auditor")
    }
    assert scene["train"].pk in seen["engineer"] and scene["train"].pk in seen["officer"]
    assert seen["auditor"] == {request_job.pk}
    assert api("nobody").get("/api/v1/jobs/").status_code == 403
    assert api("anonymous").get("/api/v1/jobs/").status_code in (401, 403)
    filtered = api("engineer").get(f"/api/v1/jobs/?request={scene['request'].pk}&status=queued").data
    assert [item["id"] for item in filtered["results"]] == [request_job.pk]

    detail = api("auditor").get(f"/api/v1/jobs/{request_job.pk}/")
    assert detail.status_code == 200
    assert {
        "id",
        "request",
        "framework",
        "method",
        "status",
        "progress",
        "device",
        "metrics",
        "produced_model",
        "log_tail",
    } <= set(detail.data)
    assert detail.data["progress"] == {"done": 0, "total": 0, "fraction": None}
    assert api("auditor").get(f"/api/v1/jobs/{scene['train'].pk}/").status_code == 404


def test_retry_and_cancel_are_for_engineers_and_say_when_the_state_forbids(api, scene):
    train = scene["train"]
    url = f"/api/v1/jobs/{train.pk}/actions/cancel/"
    assert api("officer").post(url).status_code == 403
    assert api("auditor").post(url).status_code == 403
    assert api("engineer").post(f"/api/v1/jobs/{train.pk}/actions/explode/").status_code == 404

    cancelled = api("engineer").post(url)
    assert cancelled.status_code == 200 and cancelled.data["status"] == "cancelled"
    assert api("engineer").post(url).status_code == 409
    retried = api("engineer").post(f"/api/v1/jobs/{train.pk}/actions/retry/")
    assert retried.status_code == 200 and retried.data["status"] == "queued"
    assert UnlearningJob.objects.get(pk=train.pk).status == JobStatus.QUEUED


def test_parameters_of_a_queued_job_change_through_the_api(api, scene):
    url = f"/api/v1/jobs/{scene['train'].pk}/params/"
    params = {**scene["train"].params, "recipe": {**scene["train"].params["recipe"], "epochs": 3}}
    assert api("officer").post(url, {"params": params}, format="json").status_code == 403
    bad = api("engineer").post(url, {"params": {"recipe": {"epochs": -1}}}, format="json")
    assert bad.status_code == 400 and "epochs" in bad.data["params"][0]
    good = api("engineer").post(url, {"params": params}, format="json")
    assert good.status_code == 200 and good.data["params"]["recipe"]["epochs"] == 3


def test_the_openapi_schema_lists_the_job_endpoints(api):
    response = api("engineer").get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.data["paths"] if hasattr(response, "data") and isinstance(response.data, dict) else {}
    text = response.content.decode()
    for path in (
        "/api/v1/jobs/",
        "/api/v1/jobs/{id}/",
        "/api/v1/models/",
        "/api/v1/requests/{id}/actions/approve/",
    ):
        assert path in text or path in paths
