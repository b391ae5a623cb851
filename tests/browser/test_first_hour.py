"""Chromium: a newcomer's first hour. The demo story is told, each role follows its start panel's
link, and the pages a newcomer sees first are photographed.

The screenshots go to ``test-artifacts/screenshots/``; ``make screenshots`` writes them to
``docs/screenshots/`` instead (``LETHE_SCREENSHOTS_DIR``), where the README shows them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from compliance.demo import DEMO_DATASET_NAME
from compliance.demo_story import PART_NAMES, demo_story_advance, demo_story_requests
from requests_app.models import RequestStatus
from tests.conftest import DEMO_TEST_PASSWORD, REPO_ROOT, WorkerProcess, browser_login, wait_for
from tests.factories.jobs import worker_env_for
from unlearning_jobs.jobs.runner import job_run_inline
from unlearning_jobs.jobs.services import job_cancel, train_job_create
from unlearning_jobs.models import DatasetVersion, JobKind, JobStatus, UnlearningJob

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: A training long enough to be photographed while it runs (cancelled afterwards).
RUNNING_RECIPE = {"epochs": 50}
VIEWPORT = {"width": 1280, "height": 860}


def _shots_dir() -> Path:
    folder = Path(os.environ.get("LETHE_SCREENSHOTS_DIR") or REPO_ROOT / "test-artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _tell_story_inline(max_rounds: int = 40) -> dict:
    """Seed the demo and tell its story in this process: each queued job runs here, like a worker."""
    call_command("seed_demo")
    for _ in range(max_rounds):
        demo_story_advance()
        queued = list(UnlearningJob.objects.filter(status=JobStatus.QUEUED).order_by("pk"))
        if not queued:
            story = demo_story_requests()
            if story.get("completed") and story["completed"].status == RequestStatus.COMPLETED:
                return story
            continue
        for job in queued:
            job_run_inline(job=job)
    pytest.fail(f"the story did not finish: { {p: r.status for p, r in demo_story_requests().items()} }")


@pytest.fixture
def demo_world(settings, tmp_path, role_users):
    settings.LETHE_DATA_DIR = tmp_path / "data"
    settings.LETHE_DEMO_TRAIN_EPOCHS = 1
    settings.LETHE_JOB_DEVICE = "cpu"
    return _tell_story_inline()


def _shot(page, name: str, *, full_page: bool = False) -> Path:
    path = _shots_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def test_each_role_follows_its_start_panel_and_the_first_pages_are_photographed(
    browser, live_server, demo_world, worker_env, tmp_path_factory, settings, role_users
):
    story = demo_world
    assert set(story) == set(PART_NAMES)
    completed = story["completed"]
    unlearn = UnlearningJob.objects.get(erasure_request=completed, kind=JobKind.UNLEARN)

    def session(username: str):
        context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(20_000)
        browser_login(page, username, DEMO_TEST_PASSWORD)
        return context, page

    # The officer: the list with its deadline lines, the start panel's review, a request's page.
    context, page = session("officer")
    panel = page.locator("#start-panel")
    assert "You are the privacy officer" in panel.inner_text()
    assert page.locator(".deadline-line svg").count() >= 4
    _shot(page, "officer-requests")
    page.click("#start-next")
    page.wait_for_url(f"**/requests/{story['review'].pk}/review/")
    _shot(page, "officer-review")
    page.goto(f"/requests/{story['extension'].pk}/")
    assert page.locator('#workflow-steps li[aria-current="step"]').inner_text().strip().endswith("Review")
    _shot(page, "officer-request-deadline")
    # Dismissed, the panel stays away for the rest of the session.
    page.goto("/requests/")
    page.click("#start-dismiss")
    page.wait_for_load_state("networkidle")
    assert page.locator("#start-panel").count() == 0
    page.goto("/requests/")
    assert page.locator("#start-panel").count() == 0
    context.close()

    # The auditor: the start panel opens the completed request's report; its PDF's first page.
    context, page = session("auditor")
    assert "You are the auditor" in page.locator("#start-panel").inner_text()
    _shot(page, "auditor-home")
    page.click("#start-next")
    page.wait_for_url(f"**/audit/requests/{completed.pk}/report/")
    assert completed.reference in page.content()
    _shot(page, "auditor-report")
    context.close()

    # The engineer: the start panel opens the unlearning job; the verification page and its plot.
    context, page = session("engineer")
    assert "You are the ML engineer" in page.locator("#start-panel").inner_text()
    page.click("#start-next")
    page.wait_for_url(f"**/jobs/{unlearn.pk}/")
    assert page.locator("#job-status").inner_text() == "Succeeded"
    verify_job = UnlearningJob.objects.filter(
        kind=JobKind.VERIFY, erasure_request=completed, params__role="produced"
    ).first()
    assert verify_job is not None and verify_job.params["for_job_id"] == unlearn.pk
    page.goto(f"/jobs/{verify_job.pk}/")
    _shot(page, "engineer-verification", full_page=True)

    # The queue with a job running on a real worker: it shows which request each verify job serves.
    worker = WorkerProcess(
        env=worker_env_for(worker_env, data_dir=settings.LETHE_DATA_DIR, LETHE_DEMO_STORY=0),
        hostname=f"first-hour-{os.getpid()}@localhost",
        log_path=tmp_path_factory.mktemp("worker") / "worker.log",
    ).start()
    try:
        version = DatasetVersion.objects.filter(dataset__name=DEMO_DATASET_NAME).order_by("number").first()
        running = train_job_create(
            dataset_version=version, actor=None, name="support-gpt2-next", recipe=RUNNING_RECIPE
        )
        wait_for(
            lambda: UnlearningJob.objects.get(pk=running.pk).progress_done > 0,
            timeout=240,
            what=f"the job to run; log:\n{worker.log_tail()}",
        )
        page.goto("/jobs/")
        assert "Running" in page.locator(f'tr[data-job-id="{running.pk}"]').inner_text()
        _shot(page, "engineer-queue")
    finally:
        job_cancel(job=running, actor=role_users["engineer"])
        worker.stop()
    context.close()

    # The first page of the signed report, as a picture.
    if shutil.which("pdftoppm"):
        report = completed.audit_reports.order_by("-version").first()
        pdf = tmp_path_factory.mktemp("report") / "report.pdf"
        pdf.write_bytes(report.pdf_bytes)
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                "70",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(pdf),
                str(_shots_dir() / "report-page-1"),
            ],
            check=True,
        )
        assert (_shots_dir() / "report-page-1.png").stat().st_size > 10_000
