"""Chromium: the officer records a request, verifies identity, and finds it on the list with its due date."""

import pytest
from django.utils import timezone

from requests_app.models import ErasureRequest, RequestStatus
from tests.conftest import browser_login

pytestmark = [pytest.mark.browser]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_officer_records_verifies_and_sees_the_request_on_the_list(page, role_users):
    browser_login(page, "officer")
    page.click("#new-request")
    assert page.locator("h1").inner_text() == "New erasure request"

    # A malformed e-mail is refused on its field and nothing is saved.
    page.fill("#id_names", "Maria Garcia")
    page.fill("#id_emails", "maria.garcia@")
    page.select_option("#id_legal_ground", "art17_1_b")
    page.click("#create-request")
    assert "E-mail 1: e-mail address is malformed" in page.locator("#field-emails").inner_text()
    assert not ErasureRequest.objects.exists()

    page.fill("#id_emails", "maria.garcia@example.net")
    page.fill("#id_phones", "+34 612 345 678")
    page.click("#create-request")
    page.wait_for_url("**/requests/*/")
    erasure_request = ErasureRequest.objects.get()
    assert page.locator("h1").inner_text().startswith(erasure_request.reference)
    identifiers = page.locator("#identifiers").inner_text()
    assert "m***@example.net" in identifiers and "maria.garcia@example.net" not in identifiers
    assert "not verified" in page.locator("#identity").inner_text()

    page.click("#action-verify-identity summary")
    page.select_option("#id_verify-identity-method", "document_seen")
    page.click("#action-verify-identity button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#status").inner_text() == "Identity verified"
    assert "Identity document seen" in page.locator("#identity").inner_text()
    assert "erasure_request.identity_verified" in page.locator("#timeline").inner_text()
    erasure_request.refresh_from_db()
    assert erasure_request.status == RequestStatus.IDENTITY_VERIFICATION

    page.click("nav a[href='/requests/']")
    row = page.locator(f"tr[data-reference='{erasure_request.reference}']")
    due = timezone.localtime(erasure_request.due_at).strftime("%Y-%m-%d")
    assert due in row.locator("td.due").inner_text()
    assert "Identity verified" in row.inner_text()
