"""Chromium logs in as the officer and lands on the officer's home page."""

import pytest

from tests.conftest import browser_login

pytestmark = [pytest.mark.browser]


def test_officer_logs_in_and_sees_open_requests(page, role_users):
    browser_login(page, "officer")
    assert page.url.endswith("/requests/")
    assert page.locator("h1").inner_text() == "Open erasure requests"
    nav = page.locator("nav").inner_text()
    assert "Requests" in nav and "Job queue" not in nav and "Audit" not in nav


def test_wrong_password_is_refused_with_a_message(page, role_users):
    browser_login(page, "officer", password="not-the-password")
    assert "/login/" in page.url
    assert "did not match" in page.locator("[role=alert]").inner_text()
