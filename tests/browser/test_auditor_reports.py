"""Chromium: the auditor finds a completed request, downloads its PDF report, and verifies it.

The first page of the downloaded PDF is rendered to PNG with pdftoppm and kept under
test-artifacts/ so a person can look at the layout a regulator would see.
"""

import shutil
import subprocess

import pytest
from django.core.management import call_command

from compliance.models import AuditEvent
from compliance.reports.services import erasure_request_complete_and_issue_report
from tests.conftest import REPO_ROOT, browser_login
from tests.factories.reports import (  # noqa: F401  (fixtures)
    FAKE_ACCEPTANCES,
    providers,
    request_verifying,
)

pytestmark = [pytest.mark.browser]
ARTIFACTS = REPO_ROOT / "test-artifacts"


def test_auditor_downloads_the_pdf_report_and_verifies_it(page, role_users, providers, tmp_path):
    providers()
    officer = role_users["officer"]
    report = erasure_request_complete_and_issue_report(
        erasure_request=request_verifying(officer), actor=officer, acceptances=FAKE_ACCEPTANCES
    )
    reference = report.erasure_request.reference

    browser_login(page, "auditor")
    assert page.url.endswith("/audit/")
    row = page.locator("#requests tr", has_text=reference)
    assert "met" in row.inner_text() and "Deletion" in row.inner_text()
    row.locator(f"text={reference}").click()
    page.wait_for_url("**/audit/requests/*/")
    assert "chain verified" in page.locator("#chain").inner_text()

    page.click("#reports a:has-text('view')")
    page.wait_for_url("**/report/**")
    assert "What this erasure does not guarantee" in page.locator("#summary").inner_text()
    assert page.locator("#officer-actions").count() == 0  # read-only for the auditor
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "auditor_report_html.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("#download-pdf")
    download = download_info.value
    assert download.suggested_filename == f"{report.report_id}.pdf"
    pdf_path = ARTIFACTS / "auditor_report.pdf"
    download.save_as(pdf_path)
    assert pdf_path.read_bytes() == bytes(report.pdf_bytes)
    assert AuditEvent.objects.filter(action="audit_report.downloaded", actor=role_users["auditor"]).exists()
    call_command("verify_report", str(pdf_path))

    if shutil.which("pdftoppm") is None:
        pytest.fail("pdftoppm (poppler-utils) is missing: `make test` installs it.")
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(pdf_path),
            str(ARTIFACTS / "auditor_report_page1"),
        ],
        check=True,
    )
    assert (ARTIFACTS / "auditor_report_page1.png").stat().st_size > 10_000

    # The same file, uploaded on the verify page, verifies; a truncated copy does not.
    page.click("nav a:has-text('Verify a report')")
    page.set_input_files("input[type=file]", str(pdf_path))
    page.click("#verify-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "verified" in page.locator("#verify-result h2").inner_text()
    truncated = tmp_path / "cut.pdf"
    truncated.write_bytes(pdf_path.read_bytes()[:4000])
    page.set_input_files("input[type=file]", str(truncated))
    page.click("#verify-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "truncated" in page.locator("#verify-result").inner_text()
