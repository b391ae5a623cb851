"""Audit reports over HTTP: roles, downloads as audit events, the register, verification, bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from compliance.models import AuditEvent, AuditReport
from compliance.reports.register import REGISTER_COLUMNS
from compliance.reports.services import erasure_request_complete_and_issue_report
from requests_app import services as request_services
from requests_app.models import RequestStatus
from tests.conftest import DEMO_TEST_PASSWORD
from tests.factories.api_world import api_token
from tests.factories.reports import (  # noqa: F401  (fixtures)
    FAKE_ACCEPTANCES,
    FAKE_FAILED_ROW_KEY,
    MARIA_RAW_FORMS,
    providers,
    request_verifying,
)


@pytest.fixture
def api(role_users):
    def client_for(username):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(role_users[username])}")
        return client

    return client_for


@pytest.fixture
def browser_client(role_users):
    def client_for(username):
        client = Client()
        assert client.login(username=username, password=DEMO_TEST_PASSWORD)
        return client

    return client_for


@pytest.fixture
def issued(officer, providers):
    providers()
    return erasure_request_complete_and_issue_report(
        erasure_request=request_verifying(officer), actor=officer, acceptances=FAKE_ACCEPTANCES
    )


# --- downloads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("username,expected", [("auditor", 200), ("officer", 200), ("engineer", 403)])
def test_report_downloads_by_role(api, issued, username, expected):
    for file_format in ("json", "pdf"):
        response = api(username).get(f"/api/v1/requests/{issued.erasure_request_id}/report.{file_format}")
        assert response.status_code == expected, (file_format, response.content[:200])


def test_anonymous_callers_get_no_report(issued):
    assert APIClient().get(f"/api/v1/requests/{issued.erasure_request_id}/report.pdf").status_code == 401


def test_a_download_is_the_issued_file_with_its_hashes_and_an_audit_event(api, issued, auditor):
    response = api("auditor").get(
        f"/api/v1/requests/{issued.erasure_request_id}/report.pdf", HTTP_ACCEPT="application/pdf"
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content == bytes(issued.pdf_bytes)
    assert response["X-Lethe-File-SHA256"] == issued.pdf_sha256
    assert (
        response["X-Lethe-File-Signature"] == issued.pdf_signature
        and response["X-Lethe-Signature-Alg"] == "Ed25519"
    )
    assert f'filename="{issued.report_id}.pdf"' in response["Content-Disposition"]
    event = AuditEvent.objects.filter(action="audit_report.downloaded").latest("sequence")
    assert event.actor == auditor
    expected = {
        "format": "pdf",
        "draft": False,
        "via": "api",
        "file_sha256": issued.pdf_sha256,
        "report_id": issued.report_id,
    }
    assert {key: event.details[key] for key in expected} == expected
    json_response = api("auditor").get(f"/api/v1/requests/{issued.erasure_request_id}/report.json")
    assert json_response.content.decode() == issued.json_text


def test_a_refusal_of_a_file_endpoint_is_json_whatever_was_accepted(api, issued):
    response = api("engineer").get(
        f"/api/v1/requests/{issued.erasure_request_id}/report.pdf", HTTP_ACCEPT="application/pdf"
    )
    assert response.status_code == 403 and response["Content-Type"] == "application/json"
    assert "detail" in response.json()


def test_an_open_request_downloads_as_a_draft(api, officer):
    erasure_request = request_verifying(officer)
    response = api("auditor").get(f"/api/v1/requests/{erasure_request.pk}/report.json")
    assert response.status_code == 200 and response["X-Lethe-Report-Status"] == "draft"
    assert json.loads(response.content)["signature"] is None
    assert (
        AuditEvent.objects.filter(action="audit_report.downloaded").latest("sequence").details["draft"]
        is True
    )


def test_versions_are_listed_and_an_old_one_can_be_downloaded(api, issued, officer):
    response = api("officer").post(
        f"/api/v1/requests/{issued.erasure_request_id}/report/issue/",
        {"reason": "Corrected recipient list."},
        format="json",
    )
    assert response.status_code == 201 and response.json()["version"] == 2
    listing = api("auditor").get(f"/api/v1/requests/{issued.erasure_request_id}/reports/").json()
    assert [v["version"] for v in listing] == [2, 1] and listing[0]["supersedes"] == 1
    old = api("auditor").get(f"/api/v1/requests/{issued.erasure_request_id}/report.json", {"version": 1})
    assert old.content.decode() == issued.json_text
    missing = api("auditor").get(f"/api/v1/requests/{issued.erasure_request_id}/report.json", {"version": 7})
    assert missing.status_code == 404 and "issued versions: 1, 2" in missing.json()["detail"]
    bad = api("auditor").get(f"/api/v1/requests/{issued.erasure_request_id}/report.json", {"version": "two"})
    assert bad.status_code == 400


def test_unknown_request_is_404(api, role_users):
    assert api("auditor").get("/api/v1/requests/999999/report.pdf").status_code == 404


# --- issuing and completing ----------------------------------------------------------------------


def test_an_officer_completes_and_issues_through_the_api(api, officer, providers):
    providers()
    erasure_request = request_verifying(officer)
    refused = api("officer").post(
        f"/api/v1/requests/{erasure_request.pk}/report/complete/", {}, format="json"
    )
    assert refused.status_code == 409 and "no written acceptance" in refused.json()["detail"]
    assert FAKE_FAILED_ROW_KEY.split(":")[1] in refused.json()["detail"]
    response = api("officer").post(
        f"/api/v1/requests/{erasure_request.pk}/report/complete/",
        {"acceptances": FAKE_ACCEPTANCES},
        format="json",
    )
    assert response.status_code == 201, response.content
    erasure_request.refresh_from_db()
    assert erasure_request.status == RequestStatus.COMPLETED
    assert response.json()["report_id"] == f"{erasure_request.reference}-v1"
    again = api("officer").post(f"/api/v1/requests/{erasure_request.pk}/report/complete/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "transition_not_allowed"


def two_jobs_unfinished(erasure_request):
    """A check on "complete" (listed by the test below) that finds two jobs still running."""
    return "2 jobs have not finished; completion waits for them and their verification."


def test_completion_is_refused_with_the_reason_while_jobs_are_unfinished(api, officer, settings):
    settings.LETHE_TRANSITION_CHECKS = {
        **settings.LETHE_TRANSITION_CHECKS,
        "complete": [f"{__name__}.two_jobs_unfinished"],
    }
    erasure_request = request_verifying(officer)
    response = api("officer").post(
        f"/api/v1/requests/{erasure_request.pk}/report/complete/", {}, format="json"
    )
    assert response.status_code == 409 and "2 jobs have not finished" in response.json()["detail"]
    assert not AuditReport.objects.exists()


@pytest.mark.parametrize("username", ["auditor", "engineer"])
def test_only_officers_issue_or_complete(api, officer, username):
    erasure_request = request_verifying(officer)
    for action in ("complete", "issue"):
        response = api(username).post(
            f"/api/v1/requests/{erasure_request.pk}/report/{action}/", {}, format="json"
        )
        assert response.status_code == 403
    erasure_request.refresh_from_db()
    assert erasure_request.status == RequestStatus.VERIFYING


def test_issuing_for_an_open_request_is_a_clear_409(api, officer):
    erasure_request = request_verifying(officer)
    response = api("officer").post(f"/api/v1/requests/{erasure_request.pk}/report/issue/", {}, format="json")
    assert response.status_code == 409 and "is issued when the request is closed" in response.json()["detail"]


# --- the register --------------------------------------------------------------------------------


def test_the_register_has_a_regulators_columns_and_no_identifier(api, issued, officer):
    request_verifying(officer)  # an open one too
    response = api("auditor").get("/api/v1/register.csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = response.content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0].keys()) == REGISTER_COLUMNS and len(rows) == 2
    done = next(row for row in rows if row["reference"] == issued.erasure_request.reference)
    assert done["deadline_met"] == "yes" and done["report_version"] == "1"
    assert done["report_pdf_sha256"] == issued.pdf_sha256
    assert done["frameworks_applied"] == "deletion;output_suppression"
    for raw in MARIA_RAW_FORMS:
        assert raw.casefold() not in text.casefold()
    event = AuditEvent.objects.get(action="register.downloaded")
    assert event.details["rows"] == 2


@pytest.mark.parametrize(
    "query,message",
    [
        ({"from": "2026-03-31", "to": "2026-03-01"}, "ends (2026-03-01) before it starts"),
        ({"from": "last tuesday"}, "must be a date written YYYY-MM-DD"),
    ],
)
def test_a_reversed_or_unreadable_period_is_a_clear_400(api, role_users, query, message):
    response = api("auditor").get("/api/v1/register.csv", query, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400 and message in response.json()["detail"]
    assert not AuditEvent.objects.filter(action="register.downloaded").exists()


def test_an_empty_period_gives_the_header_only(api, issued):
    response = api("auditor").get("/api/v1/register.csv", {"from": "2001-01-01", "to": "2001-12-31"})
    assert response.status_code == 200 and response["X-Lethe-Register-Rows"] == "0"
    assert response.content.decode().strip() == ",".join(REGISTER_COLUMNS)


def test_register_cells_cannot_run_as_spreadsheet_formulas(api, officer):
    erasure_request = request_verifying(officer)
    request_services.erasure_request_extend_deadline(
        erasure_request=erasure_request,
        actor=officer,
        until=erasure_request.first_due_at + timedelta(days=20),
        reason='=HYPERLINK("http://evil")',
    )
    text = api("auditor").get("/api/v1/register.csv").content.decode()
    assert "'=HYPERLINK" in text


@pytest.mark.parametrize("username", ["officer", "engineer"])
def test_only_auditors_download_the_register(api, role_users, username):
    assert api(username).get("/api/v1/register.csv").status_code == 403


# --- verification upload ---------------------------------------------------------------------


def test_an_uploaded_report_is_verified_and_the_check_is_an_audit_event(api, issued):
    ok = api("auditor").post(
        "/api/v1/reports/verify/",
        {"file": SimpleUploadedFile("r.pdf", bytes(issued.pdf_bytes))},
        format="multipart",
    )
    assert ok.status_code == 200 and ok.json()["ok"] is True and ok.json()["report_id"] == issued.report_id
    tampered = bytearray(issued.json_text.encode())
    tampered[len(tampered) // 2] ^= 0x01
    bad = api("auditor").post(
        "/api/v1/reports/verify/", {"file": SimpleUploadedFile("r.json", bytes(tampered))}, format="multipart"
    )
    assert bad.status_code == 200 and bad.json()["ok"] is False and bad.json()["problem"]
    events = AuditEvent.objects.filter(action="audit_report.verified").order_by("sequence")
    assert [e.details["ok"] for e in events] == [True, False]
    missing = api("auditor").post("/api/v1/reports/verify/", {}, format="multipart")
    assert missing.status_code == 400


def test_the_openapi_schema_lists_the_report_endpoints(api, role_users):
    response = api("auditor").get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = json.loads(response.content)["paths"]
    assert {
        "/api/v1/requests/{id}/report.json",
        "/api/v1/requests/{id}/report.pdf",
        "/api/v1/requests/{id}/report/complete/",
        "/api/v1/requests/{id}/report/issue/",
        "/api/v1/requests/{id}/reports/",
        "/api/v1/reports/verify/",
        "/api/v1/register.csv",
    } <= set(paths)


# --- pages ---------------------------------------------------------------------------------------


def test_the_auditor_sees_every_request_with_deadline_and_frameworks(browser_client, issued, officer):
    open_one = request_verifying(officer)
    page = browser_client("auditor").get("/audit/").content.decode()
    assert issued.erasure_request.reference in page and open_one.reference in page
    assert "Deletion" in page and "Output suppression" in page and ">met<" in page
    detail = browser_client("auditor").get(f"/audit/requests/{issued.erasure_request_id}/").content.decode()
    assert "chain verified" in detail and "erasure_request.completed" in detail and "v1" in detail


def test_the_auditor_pages_are_read_only(browser_client, issued):
    client = browser_client("auditor")
    page = client.get(f"/audit/requests/{issued.erasure_request_id}/report/").content.decode()
    assert "Download PDF" in page and 'id="issue-report"' not in page and "complete-and-issue" not in page
    response = client.post(f"/audit/requests/{issued.erasure_request_id}/report/issue/", {"reason": "x"})
    assert response.status_code == 403
    assert AuditReport.objects.count() == 1


def test_an_officer_completes_and_issues_from_the_report_page(browser_client, officer, providers):
    providers()
    erasure_request = request_verifying(officer)
    client = browser_client("officer")
    page = client.get(f"/audit/requests/{erasure_request.pk}/report/").content.decode()
    assert "Draft — not issued" in page and 'id="complete-and-issue"' in page
    # The failed row is named on the page with a field for the officer's written acceptance.
    assert f'data-row-key="{FAKE_FAILED_ROW_KEY}"' in page and f'name="accept:{FAKE_FAILED_ROW_KEY}"' in page
    refused = client.post(f"/audit/requests/{erasure_request.pk}/report/complete/", {"note": ""}, follow=True)
    assert "no written acceptance" in refused.content.decode()
    response = client.post(
        f"/audit/requests/{erasure_request.pk}/report/complete/",
        {"note": "", f"accept:{FAKE_FAILED_ROW_KEY}": FAKE_ACCEPTANCES[FAKE_FAILED_ROW_KEY]},
        follow=True,
    )
    assert f"report {erasure_request.reference}-v1 issued" in response.content.decode()
    assert "accepted in writing" in response.content.decode()


@pytest.mark.parametrize("url", ["/audit/", "/audit/register/", "/audit/verify/"])
def test_an_engineer_gets_no_audit_page(browser_client, role_users, url):
    assert browser_client("engineer").get(url).status_code == 403


def test_an_engineer_cannot_download_from_the_pages(browser_client, issued):
    client = browser_client("engineer")
    for file_format in ("pdf", "json"):
        assert (
            client.get(f"/audit/requests/{issued.erasure_request_id}/report.{file_format}").status_code == 403
        )
    assert not AuditEvent.objects.filter(action="audit_report.downloaded").exists()


def test_the_register_page_explains_a_reversed_and_an_empty_period(browser_client, issued):
    client = browser_client("auditor")
    reversed_page = client.get("/audit/register/", {"from": "2026-05-01", "to": "2026-04-01"})
    assert reversed_page.status_code == 400 and "before it starts" in reversed_page.content.decode()
    empty = client.get("/audit/register/", {"from": "2001-01-01", "to": "2001-01-31"}).content.decode()
    assert "No request was received in this period" in empty
    download = client.get("/audit/register.csv", {"from": "2026-05-01", "to": "2026-04-01"})
    assert download.status_code == 400


def test_the_verify_page_shows_each_check(browser_client, issued):
    client = browser_client("auditor")
    good = client.post("/audit/verify/", {"file": SimpleUploadedFile("r.json", issued.json_text.encode())})
    assert "verified" in good.content.decode() and issued.report_id in good.content.decode()
    cut = client.post("/audit/verify/", {"file": SimpleUploadedFile("r.pdf", bytes(issued.pdf_bytes)[:5000])})
    assert "not verified" in cut.content.decode() and "truncated" in cut.content.decode()
    none = client.post("/audit/verify/", {})
    assert none.status_code == 400
