"""Chromium: the officer searches the training data for a person, reviews the candidates and approves."""

from __future__ import annotations

import pytest

from requests_app import services
from requests_app.matching.services import locate_run_execute
from requests_app.models import IdentityMethod, LegalGround
from tests.conftest import REPO_ROOT, browser_login
from tests.factories.datasets import (
    WILLIAM,
    WILLIAM_RECORDS,
    register_and_index,
    write_jsonl,
)
from unlearning_jobs.models import MatchCandidate, SearchCoverage

pytestmark = [pytest.mark.browser]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _status(erasure_request) -> dict[str, str]:
    return dict(
        MatchCandidate.objects.filter(erasure_request=erasure_request).values_list(
            "record__record_id", "status"
        )
    )


def test_officer_reviews_located_records_and_approves_the_forget_set(page, role_users, settings, tmp_path):
    settings.LETHE_DATA_DIR = tmp_path / "data"
    register_and_index(name="support", path=write_jsonl(tmp_path / "data" / "w.jsonl", WILLIAM_RECORDS))
    officer = role_users["officer"]
    erasure_request = services.erasure_request_create(
        subject=WILLIAM, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer
    )
    erasure_request = services.erasure_request_verify_identity(
        erasure_request=erasure_request, actor=officer, method=IdentityMethod.DOCUMENT_SEEN
    )

    browser_login(page, "officer")
    page.goto(f"/requests/{erasure_request.pk}/review/")
    assert "has not been searched" in page.locator("#coverage").inner_text()
    page.click("#run-search")
    page.wait_for_load_state("networkidle")
    assert "the search is queued" in page.locator(".messages").inner_text()
    # The cpu worker's part, run here: search the index and hand the candidates to review.
    assert (
        locate_run_execute(coverage_id=SearchCoverage.objects.get(erasure_request=erasure_request).pk)
        == "reviewing"
    )

    page.click("nav a[href='/requests/review/']")
    page.click(f"text={erasure_request.reference}")
    page.wait_for_load_state("networkidle")
    assert "support" in page.locator("#coverage-versions").inner_text()
    strong = page.locator("#tier-strong .candidate")
    assert strong.count() == 3 and page.locator("#tier-name .candidate").count() == 3
    assert page.locator("#tier-quasi .candidate").count() == 2
    s1 = page.locator(".candidate[data-record='S1']")
    assert s1.locator("mark.match").first.inner_text().startswith("William Turner")
    assert "e-mail address is in the record, with their name" in s1.inner_text()
    assert page.locator("#approve").count() == 0
    assert "strong candidate record(s) are still pending" in page.locator("#approval-refusal").inner_text()

    page.locator(".candidate[data-record='N3'] button[value=reject]").click()
    page.wait_for_load_state("networkidle")
    page.locator(".candidate[data-record='S1'] button[value=confirm]").click()
    page.wait_for_load_state("networkidle")
    assert "Confirmed" in page.locator(".candidate[data-record='S1'] [data-field=status]").inner_text()
    page.fill("#id_score", "0.8")
    page.click("#confirm-above button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "2 candidate(s) confirmed." in page.locator(".messages").inner_text()
    status = _status(erasure_request)
    assert {k for k, v in status.items() if v == "confirmed"} == {"S1", "S2", "S3"} and status[
        "N3"
    ] == "rejected"
    page.screenshot(path=str(REPO_ROOT / "test-artifacts" / "review.png"), full_page=True)

    page.click("#approve button[type=submit]")
    page.wait_for_url(f"**/requests/{erasure_request.pk}/")
    erasure_request.refresh_from_db()
    assert erasure_request.status == "approved"
    timeline = page.locator("#timeline").inner_text()
    assert "erasure_request.candidate_confirmed" in timeline and "erasure_request.approved" in timeline
