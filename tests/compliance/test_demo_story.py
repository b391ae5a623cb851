"""The demo story on a real worker: from an empty data folder, seed_demo and one worker bring every
role's home page to life, and the completed request's signed report verifies."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command
from django.test import Client

from compliance.demo_story import PART_NAMES, demo_story_advance, demo_story_requests
from compliance.models import AuditEvent, AuditReport
from requests_app.models import ErasureRequest, RequestStatus
from tests.conftest import DEMO_TEST_PASSWORD, WorkerProcess, wait_for
from tests.factories.jobs import worker_env_for
from unlearning_jobs.models import JobKind, JobStatus, UnlearningJob

pytestmark = [pytest.mark.worker, pytest.mark.slow]

EXPECTED_STATUSES = {
    "completed": RequestStatus.COMPLETED,
    "review": RequestStatus.REVIEW,
    "identity": RequestStatus.RECEIVED,
    "overdue": RequestStatus.IDENTITY_VERIFICATION,
    "rejected": RequestStatus.REJECTED,
    "extension": RequestStatus.REVIEW,
}


@pytest.fixture
def empty_data_dir(settings, tmp_path):
    settings.LETHE_DATA_DIR = tmp_path / "data"
    settings.LETHE_DEMO_PASSWORD = DEMO_TEST_PASSWORD
    settings.LETHE_DEMO_TRAIN_EPOCHS = 2
    assert not settings.LETHE_DATA_DIR.exists()
    return settings.LETHE_DATA_DIR


@pytest.fixture
def story_worker(worker_env, empty_data_dir, tmp_path_factory):
    env = worker_env_for(worker_env, data_dir=empty_data_dir, LETHE_DEMO_TRAIN_EPOCHS=2)
    env["LETHE_DEMO_PASSWORD"] = DEMO_TEST_PASSWORD
    worker = WorkerProcess(
        env=env,
        hostname=f"story-{os.getpid()}@localhost",
        log_path=tmp_path_factory.mktemp("worker") / "worker.log",
        queues="cpu,gpu",
    )
    yield worker
    worker.stop()


def _logged_in(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=DEMO_TEST_PASSWORD)
    return client


def test_seed_demo_and_a_worker_tell_the_whole_story(story_worker, empty_data_dir, tmp_path, capsys):
    call_command("seed_demo", "--queue-model")
    assert "Demo story: starts on the cpu worker once the demo model has trained." in capsys.readouterr().out
    assert not ErasureRequest.objects.exists(), "nothing of the story happens before the model exists"
    story_worker.start()

    def story_done():
        report = AuditReport.objects.filter(erasure_request__status=RequestStatus.COMPLETED).first()
        return report if report and len(demo_story_requests()) == len(PART_NAMES) else None

    report = wait_for(
        story_done, timeout=1500, interval=2, what=f"the story; log:\n{story_worker.log_tail(60)}"
    )
    story = demo_story_requests()
    assert {part: r.status for part, r in story.items()} == EXPECTED_STATUSES
    completed = story["completed"]
    assert report.erasure_request_id == completed.pk

    # Every step of the completed request is in the audit log, by the officer or the system.
    actions = list(
        AuditEvent.objects.filter(object_type="requests_app.erasurerequest", object_id=str(completed.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    for action in (
        "erasure_request.created",
        "erasure_request.identity_verified",
        "erasure_request.locating_started",
        "erasure_request.submitted_for_review",
        "erasure_request.approved",
        "erasure_request.execution_started",
        "erasure_request.verification_started",
        "erasure_request.completed",
    ):
        assert action in actions
    jobs = UnlearningJob.objects.filter(erasure_request=completed)
    unlearn = jobs.get(kind=JobKind.UNLEARN)
    assert unlearn.method == "gradient_difference" and unlearn.status == JobStatus.SUCCEEDED
    assert jobs.filter(kind=JobKind.GUARD, status=JobStatus.SUCCEEDED).exists()
    # The verify jobs are the request's jobs too, and say which job they verify.
    verify_jobs = list(jobs.filter(kind=JobKind.VERIFY))
    assert len(verify_jobs) == 2 and all(j.status == JobStatus.SUCCEEDED for j in verify_jobs)
    assert {j.params["for_job_id"] for j in verify_jobs} == {unlearn.pk}
    assert story["extension"].extended_until is not None
    assert story["overdue"].urgency == "overdue" and story["rejected"].rejection_ground == "art17_3_e"

    # The signed report verifies, both files.
    for file_format in ("json", "pdf"):
        response = _logged_in("auditor").get(f"/audit/requests/{completed.pk}/report.{file_format}")
        assert response.status_code == 200
        path = tmp_path / f"report.{file_format}"
        path.write_bytes(b"".join(response.streaming_content) if response.streaming else response.content)
        call_command("verify_report", str(path))
        assert f"report.{file_format} verifies: {report.report_id}" in capsys.readouterr().out

    # Each role's home lists the story and offers its next step.
    officer_home = _logged_in("officer").get("/requests/").content.decode()
    for part in ("review", "identity", "overdue", "extension"):
        assert story[part].reference in officer_home
    assert f"Review the candidates of {story['review'].reference}" in officer_home
    auditor_home = _logged_in("auditor").get("/audit/").content.decode()
    for part in PART_NAMES:
        assert story[part].reference in auditor_home
    assert f"Open the report of {completed.reference} and verify it" in auditor_home
    engineer_home = _logged_in("engineer").get("/jobs/").content.decode()
    assert f"Watch the unlearning job of {completed.reference} (#{unlearn.pk})" in engineer_home

    # Telling the story again changes nothing: seed_demo, and the story's own step.
    requests_before = list(ErasureRequest.objects.order_by("pk").values_list("pk", "status"))
    events_before = AuditEvent.objects.count()
    call_command("seed_demo", "--queue-model")
    assert "Demo story: completed " in capsys.readouterr().out
    demo_story_advance()
    assert list(ErasureRequest.objects.order_by("pk").values_list("pk", "status")) == requests_before
    assert AuditEvent.objects.count() == events_before
