"""Chromium: the engineer watches a running job's progress move on its page without reloading it."""

import os

import pytest

from tests.conftest import WorkerProcess, browser_login, wait_for
from tests.factories.jobs import TINY_RECIPE, data_dir, fast_jobs, tickets, worker_env_for  # noqa: F401  (fixtures)
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import UnlearningJob

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]

SLOW_RECIPE = {**TINY_RECIPE, "n_layer": 2, "n_embd": 128, "n_head": 4, "batch_size": 4, "epochs": 40}


@pytest.fixture
def job_worker(worker_env, data_dir, tmp_path_factory):
    worker = WorkerProcess(
        env=worker_env_for(worker_env, data_dir=data_dir),
        hostname=f"browser-jobs-{os.getpid()}@localhost",
        log_path=tmp_path_factory.mktemp("worker") / "worker.log",
    ).start()
    yield worker
    worker.stop()


def _progress(page) -> int:
    return int(page.locator("#job-progress-done").inner_text())


def test_the_job_page_shows_a_running_jobs_progress_increase_without_reload(
    page, job_worker, tickets, engineer
):
    job = jobs.train_job_create(dataset_version=tickets, actor=engineer, name="watched", recipe=SLOW_RECIPE)
    wait_for(
        lambda: UnlearningJob.objects.get(pk=job.pk).progress_done > 0,
        timeout=180,
        what=f"the job to start; worker log:\n{job_worker.log_tail()}",
    )

    browser_login(page, "engineer")
    page.goto("/jobs/")
    row = page.locator(f'tr[data-job-id="{job.pk}"]')
    assert "Running" in row.inner_text() and job_worker.hostname in row.inner_text()
    row.locator("a").click()
    page.wait_for_url(f"**/jobs/{job.pk}/")
    page.evaluate("window.__lethe_marker = 'same page'")
    first = _progress(page)
    assert page.locator("#job-status").inner_text() == "Running"

    # Polled from Python: Playwright's wait_for_function evaluates a string, which the CSP forbids.
    wait_for(lambda: _progress(page) > first, timeout=30, what="the page's progress to increase")
    assert _progress(page) > first
    assert page.evaluate("window.__lethe_marker") == "same page"  # updated in place, not reloaded
    assert (
        int(page.locator("#job-progress-total").inner_text())
        == UnlearningJob.objects.get(pk=job.pk).progress_total
    )
    assert "training 'watched'" in page.locator("#job-log").inner_text()

    with page.expect_navigation():
        page.click("#job-cancel")  # the engineer stops it; the page says so
    wait_for(
        lambda: page.locator("#job-status").inner_text() == "Cancelled",
        timeout=60,
        what="the page to say Cancelled",
    )
    assert UnlearningJob.objects.get(pk=job.pk).status == "cancelled"
