"""Audit reports: schema, signatures, verify_report, versions, limits statements, no raw identifiers."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import timedelta

import jsonschema
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from pypdf import PdfReader

from compliance.models import AuditEvent, AuditReport
from compliance.reports import limits
from compliance.reports.assembly import ReportContainsIdentifier
from compliance.reports.providers import (
    ReportProviderError,
)
from compliance.reports.schema import report_schema
from compliance.reports.selectors import report_file
from compliance.reports.services import (
    ReportActionNotPermitted,
    ReportIssueRefused,
    audit_report_issue,
    erasure_request_complete_and_issue_report,
)
from compliance.reports.verification import report_file_verify
from requests_app import services as request_services
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import ErasureRequest, RequestStatus
from requests_app.services import TransitionNotAllowed
from tests.factories.reports import (  # noqa: F401  (fixtures)
    FAKE_ACCEPTANCES,
    FAKE_FAILED_ROW_KEY,
    MARIA,
    MARIA_RAW_FORMS,
    providers,
    request_verifying,
)


def _issued(officer, providers, **install):
    providers(**install)
    return erasure_request_complete_and_issue_report(
        erasure_request=request_verifying(officer), actor=officer, acceptances=FAKE_ACCEPTANCES
    )


def _body(report) -> dict:
    return json.loads(report.json_text)["body"]


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


# --- issuing and the schema -------------------------------------------------------------------


def test_completing_a_request_issues_a_report_that_validates_against_its_schema(officer, providers):
    report = _issued(officer, providers)
    envelope = json.loads(report.json_text)
    jsonschema.Draft202012Validator(report_schema()).validate(envelope["body"])
    body = envelope["body"]
    assert ErasureRequest.objects.get(pk=report.erasure_request_id).status == RequestStatus.COMPLETED
    assert body["report"] == {
        **body["report"],
        "id": report.report_id,
        "version": 1,
        "status": "issued",
        "issued_by": "officer",
        "supersedes": None,
        "raw_identifier_check": "passed",
    }
    assert body["summary"]["frameworks_applied"] == ["deletion", "output_suppression"]
    assert body["summary"]["deadline"] == "met"
    assert (body["summary"]["verification_passed"], body["summary"]["verification_failed"]) == (2, 1)
    assert body["summary"]["records_confirmed"] == 3 and body["summary"]["recipients_notified"] == 2
    assert [e["action"] for e in body["timeline"]["events"]][-1] == "erasure_request.completed"
    # The file is canonical JSON, its signature names the key and matches the stored row.
    assert report.json_text == json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert envelope["signature"]["key_id"] == report.key_id
    assert envelope["signature"]["sha256"] == report.body_sha256
    issued = AuditEvent.objects.get(action="audit_report.issued")
    assert issued.details["pdf_sha256"] == report.pdf_sha256 and issued.actor == officer


def test_the_report_seals_the_audit_chain_head_from_just_before_its_issue(officer, providers):
    report = _issued(officer, providers)
    issued_event = AuditEvent.objects.get(action="audit_report.issued")
    chain = _body(report)["audit_chain"]
    before = AuditEvent.objects.get(sequence=issued_event.sequence - 1)
    assert (chain["head_sequence"], chain["head_hash"], chain["verified"]) == (
        before.sequence,
        before.entry_hash,
        True,
    )


def test_a_failed_value_is_never_shown_as_its_threshold(officer, providers):
    report = _issued(officer, providers)
    text = _pdf_text(bytes(report.pdf_bytes))
    assert "0.5600001" in text  # not "0.56", which would read as sitting on the boundary


def test_sections_nobody_provides_read_none_recorded(officer):
    report = erasure_request_complete_and_issue_report(
        erasure_request=request_verifying(officer), actor=officer
    )
    body = _body(report)
    assert body["jobs"] == {"jobs": []} and body["records"]["confirmed_records"] == []
    assert body["summary"]["limits"] == ["no_framework_applied", "downstream_use_outside_the_model"]
    assert "None recorded." in _pdf_text(bytes(report.pdf_bytes))


# --- limits ----------------------------------------------------------------------------------------


LIMIT_CASES = [
    ([], {"no_framework_applied", "downstream_use_outside_the_model"}),
    (
        [("deletion", "retrain", "succeeded")],
        {
            "deletion_covers_located_records",
            "removal_does_not_guarantee_suppression",
            "downstream_use_outside_the_model",
        },
    ),
    (
        [("deletion", "sisa", "succeeded")],
        {
            "deletion_covers_located_records",
            "removal_does_not_guarantee_suppression",
            "downstream_use_outside_the_model",
        },
    ),
    (
        [("deletion", "gradient_ascent", "succeeded")],
        {
            "approximate_unlearning_statistical",
            "deletion_covers_located_records",
            "removal_does_not_guarantee_suppression",
            "downstream_use_outside_the_model",
        },
    ),
    (
        [("deletion", "some_new_method", "succeeded")],
        {
            "approximate_unlearning_statistical",
            "deletion_covers_located_records",
            "removal_does_not_guarantee_suppression",
            "downstream_use_outside_the_model",
        },
    ),
    (
        [("output_suppression", "output_filter", "succeeded")],
        {
            "suppression_is_not_removal",
            "prompts_can_reintroduce_information",
            "downstream_use_outside_the_model",
        },
    ),
    (
        [("latent_suppression", "deduction_probe", "succeeded")],
        {
            "suppression_is_not_removal",
            "prompts_can_reintroduce_information",
            "latent_probes_are_finite",
            "downstream_use_outside_the_model",
        },
    ),
    (
        [("deletion", "npo", "failed"), ("output_suppression", "input_filter", "cancelled")],
        {"no_framework_applied", "downstream_use_outside_the_model"},
    ),
]


@pytest.mark.parametrize(
    "jobs,codes",
    LIMIT_CASES,
    ids=[
        "nothing",
        "retrain",
        "sisa",
        "gradient-ascent",
        "unknown-deletion-method",
        "output-suppression",
        "latent-suppression",
        "failed-jobs-apply-nothing",
    ],
)
def test_limits_statements_match_the_frameworks_applied(jobs, codes):
    applied: dict[str, set[str]] = {}
    for framework, method, status in jobs:
        if status == "succeeded":
            applied.setdefault(framework, set()).add(method)
    statements = limits.limits_statements(applied=applied)
    assert {s["code"] for s in statements} == codes
    assert statements[-1]["code"] == "downstream_use_outside_the_model"
    mismatches = {s["code"]: s["mismatch"] for s in statements}
    assert mismatches["downstream_use_outside_the_model"] == 4
    assert mismatches.get("removal_does_not_guarantee_suppression", 2) == 2
    assert mismatches.get("suppression_is_not_removal", 1) == 1
    assert mismatches.get("prompts_can_reintroduce_information", 3) == 3


def test_an_issued_report_states_the_limits_of_what_its_jobs_applied(officer, providers):
    report = _issued(
        officer,
        providers,
        jobs=[("deletion", "npo", "succeeded"), ("output_suppression", "output_filter", "succeeded")],
    )
    body = _body(report)
    assert body["summary"]["limits"] == [
        "approximate_unlearning_statistical",
        "deletion_covers_located_records",
        "removal_does_not_guarantee_suppression",
        "suppression_is_not_removal",
        "prompts_can_reintroduce_information",
        "downstream_use_outside_the_model",
    ]
    approximate = body["limits"][0]
    assert "npo" in approximate["text"] and "statistical" in approximate["title"]
    text = " ".join(_pdf_text(bytes(report.pdf_bytes)).split())
    assert "the model's parameters still hold whatever it learnt" in text
    assert "How outputs are used is outside the model" in text


# --- no raw identifier ----------------------------------------------------------------------------


def _pdftotext(data: bytes, tmp_path) -> str:
    path = _write(tmp_path, "report.pdf", data)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_no_raw_identifier_appears_in_the_json_or_the_pdf(officer, providers, tmp_path):
    report = _issued(officer, providers)
    draft = report_file(erasure_request=request_verifying(officer), file_format="pdf")
    texts = {
        "json": report.json_text,
        "pdf (pypdf)": _pdf_text(bytes(report.pdf_bytes)),
        "pdf (pdftotext)": _pdftotext(bytes(report.pdf_bytes), tmp_path),
        "draft pdf": _pdf_text(draft.data),
    }
    assert "Passport" not in report.json_text  # the identity note stays out
    for where, text in texts.items():
        folded = " ".join(text.split()).casefold()
        for raw in MARIA_RAW_FORMS:
            assert raw.casefold() not in folded, f"{raw!r} found in the {where}"
    # What the report does hold instead: keyed hashes of the identifiers.
    hashes = _body(report)["identity"]["identifier_hashes"]
    assert {h["entity_type"] for h in hashes} == {"PERSON", "EMAIL", "PHONE", "ADDRESS", "ACCOUNT_ID"}


@pytest.mark.parametrize(
    "leak,kind",
    [
        ("told maria.garcia@example.net by mail", "emails"),  # normalised (case-folded) form
        ("called +34612345678", "phones"),  # E.164 form of "+34 612 345 678"
        ("account CUST-99812 closed", "account_ids"),
        ("MARIA GARCIA's copy", "names"),
    ],
)
def test_a_provider_that_leaks_a_raw_identifier_stops_the_report_and_the_completion(
    officer, providers, leak, kind
):
    providers(extra={"recipients": {"recipients": [{"kind": "other", "name": leak, "notified_at": None}]}})
    erasure_request = request_verifying(officer)
    with pytest.raises(ReportContainsIdentifier) as refused:
        erasure_request_complete_and_issue_report(
            erasure_request=erasure_request, actor=officer, acceptances=FAKE_ACCEPTANCES
        )
    message = str(refused.value)
    assert "recipients" in message and kind.replace("_", " ") in message and leak not in message
    erasure_request.refresh_from_db()
    assert erasure_request.status == RequestStatus.VERIFYING
    assert not AuditReport.objects.exists()


def broken(erasure_request):
    """A jobs provider whose database is away (listed by the test below)."""
    raise RuntimeError("database of jobs unreachable")


def test_a_failing_provider_is_a_clear_refusal(officer, settings):
    settings.LETHE_REPORT_SECTION_PROVIDERS = {
        **settings.LETHE_REPORT_SECTION_PROVIDERS,
        "jobs": [*settings.LETHE_REPORT_SECTION_PROVIDERS["jobs"], f"{__name__}.broken"],
    }
    with pytest.raises(ReportProviderError, match="jobs section cannot be assembled: .*broken failed"):
        erasure_request_complete_and_issue_report(erasure_request=request_verifying(officer), actor=officer)
    assert not AuditReport.objects.exists()


def test_a_provider_item_that_breaks_the_schema_is_refused(officer, providers):
    providers(
        extra={
            "jobs": {
                "jobs": [
                    {"job_id": "9", "framework": "wishful_thinking", "method": "x", "status": "succeeded"}
                ]
            }
        }
    )
    with pytest.raises(Exception, match="jobs/jobs/2/framework: fails enum"):
        erasure_request_complete_and_issue_report(
            erasure_request=request_verifying(officer), actor=officer, acceptances=FAKE_ACCEPTANCES
        )


# --- verify_report ---------------------------------------------------------------------------------


def test_verify_report_accepts_both_issued_files(officer, providers, tmp_path, capsys):
    report = _issued(officer, providers)
    for name, data in (("r.json", report.json_text.encode()), ("r.pdf", bytes(report.pdf_bytes))):
        call_command("verify_report", str(_write(tmp_path, name, data)))
        out = capsys.readouterr().out
        assert f"verifies: {report.report_id}" in out and "FAIL" not in out


@pytest.mark.parametrize("position", [0.1, 0.5, 0.9, -1])
def test_tampering_one_byte_of_the_json_fails_verify_report(officer, providers, tmp_path, position):
    report = _issued(officer, providers)
    data = bytearray(report.json_text.encode())
    index = len(data) - 1 if position == -1 else int(len(data) * position)
    # Change a character into another of the same kind, so the JSON stays well-formed where it can.
    original = data[index]
    data[index] = {ord("0"): ord("1")}.get(original, ord("0") if chr(original).isdigit() else original ^ 0x01)
    assert bytes(data) != report.json_text.encode()
    with pytest.raises(CommandError, match="does NOT verify"):
        call_command("verify_report", str(_write(tmp_path, "r.json", bytes(data))))


def test_changing_a_value_and_reformatting_the_json_are_both_caught(officer, providers, tmp_path):
    report = _issued(officer, providers)
    envelope = json.loads(report.json_text)
    pretty = json.dumps(envelope, indent=2).encode()
    result = report_file_verify(pretty)
    assert not result.ok and [c.name for c in result.checks if not c.ok] == ["canonical", "file_sha256"]
    envelope["body"]["summary"]["deadline"] = (
        "met" if envelope["body"]["summary"]["deadline"] != "met" else "missed"
    )
    altered = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    result = report_file_verify(altered)
    assert {"body_sha256", "signature", "file_sha256"} <= {c.name for c in result.checks if not c.ok}


@pytest.mark.parametrize("position", [0.3, 0.6, 0.95])
def test_tampering_one_byte_of_the_pdf_fails_verify_report(officer, providers, tmp_path, position):
    report = _issued(officer, providers)
    data = bytearray(bytes(report.pdf_bytes))
    data[int(len(data) * position)] ^= 0x20
    with pytest.raises(CommandError, match="does NOT verify"):
        call_command("verify_report", str(_write(tmp_path, "r.pdf", bytes(data))))


@pytest.mark.parametrize("name", ["r.json", "r.pdf"])
def test_a_truncated_report_fails_with_a_clear_message(officer, providers, tmp_path, name):
    report = _issued(officer, providers)
    data = report.json_text.encode() if name.endswith("json") else bytes(report.pdf_bytes)
    with pytest.raises(CommandError, match="truncated"):
        call_command("verify_report", str(_write(tmp_path, name, data[: len(data) * 2 // 3])))


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"hello, regulator", "neither"),
        (b'{"body": 1}', "not a Lethe report"),
        (b"%PDF-1.7\n%%EOF\n", "damaged"),
    ],
)
def test_files_that_are_not_reports_are_refused_with_a_reason(db, tmp_path, content, message):
    with pytest.raises(CommandError, match=message):
        call_command("verify_report", str(_write(tmp_path, "x.bin", content)))


def test_verify_report_names_a_missing_file(db):
    with pytest.raises(CommandError, match="is not a file"):
        call_command("verify_report", "/nonexistent/report.json")


def test_a_report_signed_under_a_retired_key_still_verifies_and_an_unknown_key_does_not(
    officer, providers, settings
):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from compliance.reports.signing import public_keys

    report = _issued(officer, providers)
    (old_public,) = public_keys()
    settings.LETHE_REPORT_SIGNING_PRIVATE_KEY_PEM = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    settings.LETHE_REPORT_RETIRED_PUBLIC_KEYS = {}
    unknown = report_file_verify(report.json_text.encode())
    assert not unknown.ok and "does not hold" in unknown.first_problem
    # Rotated: the old key's public half is all it takes to verify what it signed.
    settings.LETHE_REPORT_RETIRED_PUBLIC_KEYS = {old_public.key_id: old_public.pem().encode()}
    assert report_file_verify(report.json_text.encode()).ok
    assert report_file_verify(bytes(report.pdf_bytes)).ok


def test_a_report_verifies_outside_lethe_with_the_public_key_alone_and_a_forgery_does_not(
    officer, providers, client, auditor
):
    """What docs/reports.md tells an outside auditor to run: ten lines of `cryptography`, no Lethe."""
    import base64
    import json

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    report = _issued(officer, providers)
    client.force_login(auditor)
    keys = client.get("/api/v1/reports/keys/").json()["keys"]
    (current,) = [key for key in keys if key["status"] == "current"]
    assert current["jwk"]["kty"] == "OKP" and current["jwk"]["crv"] == "Ed25519"

    def verify(file_text: str) -> bool:
        envelope = json.loads(file_text)
        body = json.dumps(
            envelope["body"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        public_key = load_pem_public_key(current["pem"].encode())
        try:
            public_key.verify(base64.b64decode(envelope["signature"]["signature"]), body)
        except InvalidSignature:
            return False
        return True

    assert json.loads(report.json_text)["signature"]["alg"] == "Ed25519"
    assert verify(report.json_text)
    forged = json.loads(report.json_text)
    forged["body"]["summary"]["frameworks_applied"] = ["deletion"]
    assert not verify(json.dumps(forged))
    assert not report_file_verify(
        json.dumps(forged, sort_keys=True, separators=(",", ":")).encode(), check_stored=False
    ).ok


def test_a_report_issued_before_ed25519_still_verifies_with_its_hmac(officer, providers):
    """Reports signed with HMAC-SHA256 before stay verifiable: the HMAC key still checks them."""
    import json

    from compliance.reports.signing import (
        CANONICALISATION,
        canonical_json_bytes,
        canonical_json_text,
        hmac_hex,
        sha256_hex,
        signing_key_current,
    )

    report = _issued(officer, providers)
    body = json.loads(report.json_text)["body"]
    key = signing_key_current()
    body_bytes = canonical_json_bytes(body)
    legacy = canonical_json_text(
        {
            "body": body,
            "signature": {
                "alg": "HMAC-SHA256",
                "canonicalization": CANONICALISATION,
                "key_id": key.key_id,
                "sha256": sha256_hex(body_bytes),
                "hmac": hmac_hex(key=key.key, data=body_bytes),
            },
        }
    )
    assert report_file_verify(legacy.encode(), check_stored=False).ok
    tampered = legacy.replace('"hmac":"', '"hmac":"0')
    assert not report_file_verify(tampered.encode(), check_stored=False).ok


def test_a_json_signature_verifies_without_the_database_with_signature_only(
    officer, providers, tmp_path, capsys
):
    report = _issued(officer, providers)
    call_command(
        "verify_report", "--signature-only", str(_write(tmp_path, "r.json", report.json_text.encode()))
    )
    assert "stored_record" not in capsys.readouterr().out


# --- versions and immutability ------------------------------------------------------------------


def test_a_new_version_supersedes_the_old_one_and_keeps_it_as_issued(officer, providers, tmp_path):
    first = _issued(officer, providers)
    before = (first.json_text, bytes(first.pdf_bytes), first.json_sha256, first.pdf_sha256)
    with pytest.raises(ReportIssueRefused, match="say why a new version"):
        audit_report_issue(erasure_request=first.erasure_request, actor=officer)
    second = audit_report_issue(
        erasure_request=first.erasure_request,
        actor=officer,
        reason="Recipient list corrected: the analytics copy was notified.",
    )
    first.refresh_from_db()
    assert (first.json_text, bytes(first.pdf_bytes), first.json_sha256, first.pdf_sha256) == before
    assert second.version == 2 and second.supersedes == first and first.superseded_by == second
    assert _body(second)["report"]["supersedes"] == {
        "id": first.report_id,
        "version": 1,
        "body_sha256": first.body_sha256,
    }
    assert "Recipient list corrected" in _pdf_text(bytes(second.pdf_bytes))
    old = report_file_verify(first.json_text.encode())
    assert old.ok and old.superseded_by == second.report_id
    assert AuditReport.objects.filter(erasure_request=first.erasure_request).count() == 2


def test_an_issued_report_cannot_be_changed_or_deleted(officer, providers):
    report = _issued(officer, providers)
    report.reason = "rewritten"
    with pytest.raises(PermissionError):
        report.save()
    with pytest.raises(PermissionError):
        report.delete()
    with pytest.raises(PermissionError):
        AuditReport.objects.filter(pk=report.pk).update(reason="rewritten")
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("UPDATE compliance_auditreport SET reason = 'x' WHERE id = %s", [report.pk])


# --- drafts, refusals, deadlines ------------------------------------------------------------------


def test_an_open_request_has_an_unsigned_draft_marked_as_such(officer, providers, tmp_path):
    providers()
    erasure_request = request_verifying(officer)
    draft_json = report_file(erasure_request=erasure_request, file_format="json")
    envelope = json.loads(draft_json.data)
    assert envelope["signature"] is None and envelope["body"]["report"]["status"] == "draft"
    assert envelope["body"]["report"]["id"] == f"{erasure_request.reference}-draft"
    draft_pdf = report_file(erasure_request=erasure_request, file_format="pdf")
    assert draft_pdf.is_draft and draft_pdf.filename.endswith("-draft.pdf")
    assert "DRAFT" in _pdf_text(draft_pdf.data)
    for data in (draft_json.data, draft_pdf.data):
        result = report_file_verify(data)
        assert not result.ok and "draft" in result.first_problem
    assert not AuditReport.objects.exists()


def test_a_report_is_not_issued_for_an_open_request(officer):
    erasure_request = request_verifying(officer)
    with pytest.raises(
        ReportIssueRefused, match="is verifying: a report is issued when the request is closed"
    ):
        audit_report_issue(erasure_request=erasure_request, actor=officer)


def test_an_auditor_or_engineer_cannot_issue(officer, auditor, engineer):
    erasure_request = request_verifying(officer)
    for user in (auditor, engineer):
        with pytest.raises(ReportActionNotPermitted):
            audit_report_issue(erasure_request=erasure_request, actor=user)


def job_17_unfinished(erasure_request):
    """A check on "complete" (listed by the test below) that finds a job still running."""
    return (
        f"{erasure_request.reference}: job 17 is still running; completion waits for it and its verification."
    )


def test_completion_waits_for_a_listed_check_and_issues_nothing(officer, settings):
    settings.LETHE_TRANSITION_CHECKS = {
        **settings.LETHE_TRANSITION_CHECKS,
        "complete": [f"{__name__}.job_17_unfinished"],
    }
    erasure_request = request_verifying(officer)
    with pytest.raises(TransitionNotAllowed, match="job 17 is still running"):
        erasure_request_complete_and_issue_report(erasure_request=erasure_request, actor=officer)
    erasure_request.refresh_from_db()
    assert erasure_request.status == RequestStatus.VERIFYING and not AuditReport.objects.exists()


def _rejected(officer, subject=MARIA):
    """Record a request for ``subject`` and reject it (the shortest way to an issued report)."""
    erasure_request = request_services.erasure_request_create(
        subject=subject, legal_ground="art17_1_b", actor=officer
    )
    return request_services.erasure_request_reject(
        erasure_request=erasure_request,
        actor=officer,
        ground="art17_3_e",
        explanation="The records are needed to defend a pending claim.",
    )


def test_a_rejected_request_gets_a_report_of_its_rejection(officer):
    erasure_request = _rejected(officer)
    body = _body(audit_report_issue(erasure_request=erasure_request, actor=officer))
    assert body["request"]["rejection"]["ground"] == "art17_3_e"
    assert body["summary"]["limits"] == ["no_framework_applied", "downstream_use_outside_the_model"]


def test_a_request_closed_after_its_deadline_is_reported_as_missed(officer):
    received = timezone.now() - timedelta(days=45)
    erasure_request = request_verifying(officer, received_at=received)
    body = _body(erasure_request_complete_and_issue_report(erasure_request=erasure_request, actor=officer))
    assert body["summary"]["deadline"] == "missed" and body["timeline"]["days_taken"] >= 45


# --- completing over failed checks -----------------------------------------------------------------


def test_completing_over_a_failed_row_needs_a_written_acceptance_printed_beside_the_row(officer, providers):
    providers()
    erasure_request = request_verifying(officer)
    with pytest.raises(TransitionNotAllowed, match="mia_auc_min_k of job #1 \\(0.5600001;") as refused:
        erasure_request_complete_and_issue_report(erasure_request=erasure_request, actor=officer)
    assert "no written acceptance" in str(refused.value)
    erasure_request.refresh_from_db()
    assert erasure_request.status == RequestStatus.VERIFYING and not AuditReport.objects.exists()

    # A key that names no failed row, or an empty text, is refused and records nothing.
    from compliance.reports.acceptance import ACCEPTANCE_ACTION, AcceptanceInvalid

    for bad in ({"1:extraction_rate": "This one passed, nothing to accept."}, {FAKE_FAILED_ROW_KEY: " ok "}):
        with pytest.raises(AcceptanceInvalid):
            erasure_request_complete_and_issue_report(
                erasure_request=erasure_request, actor=officer, acceptances=bad
            )
    assert not AuditEvent.objects.filter(action=ACCEPTANCE_ACTION).exists()

    report = erasure_request_complete_and_issue_report(
        erasure_request=erasure_request, actor=officer, acceptances=FAKE_ACCEPTANCES
    )
    event = AuditEvent.objects.get(action=ACCEPTANCE_ACTION)
    assert event.details["row_key"] == FAKE_FAILED_ROW_KEY and event.details["value"] == 0.5600001
    assert event.details["acceptance"] == FAKE_ACCEPTANCES[FAKE_FAILED_ROW_KEY]
    completed = AuditEvent.objects.get(action="erasure_request.completed")
    assert completed.details["failed_rows_accepted"] == [FAKE_FAILED_ROW_KEY]
    body = _body(report)
    rows = {row["metric"]: row for row in body["verification"]["results"]}
    # The acceptance never turns the fail into a pass.
    assert (
        rows["mia_auc_min_k"]["passed"] is False
        and rows["mia_auc_min_k"]["acceptance"]["accepted_by"] == "officer"
    )
    assert "acceptance" not in rows["extraction_rate"]
    assert body["summary"]["verification_failed"] == 1
    text = _pdf_text(bytes(report.pdf_bytes))
    assert "of which 1 accepted in writing" in text and "a re-run would not change" in text


def test_an_acceptance_covers_the_value_it_saw_not_a_later_one(officer, providers):
    from compliance.reports.acceptance import verification_failures_accept, verification_failures_unaccepted

    sections = providers()
    erasure_request = request_verifying(officer)
    verification_failures_accept(erasure_request=erasure_request, actor=officer, acceptances=FAKE_ACCEPTANCES)
    assert verification_failures_unaccepted(erasure_request) == []
    # Verified again to another failing value: the old acceptance no longer covers it.
    row = next(r for r in sections["verification"]["results"] if r["metric"] == "mia_auc_min_k")
    row["value"] = 0.61
    assert [r["metric"] for r in verification_failures_unaccepted(erasure_request)] == ["mia_auc_min_k"]


def test_rows_of_the_original_model_are_a_baseline_and_need_no_acceptance(officer, providers):
    from compliance.reports.acceptance import verification_failures_unaccepted

    sections = providers()
    for row in sections["verification"]["results"]:
        row["role"] = "original"
    assert verification_failures_unaccepted(request_verifying(officer)) == []


def test_robustness_rows_bring_their_limits_statements_and_refusal_tuning_its_own(officer, providers):
    robustness_row = {
        "subject": "support-gpt v3.1",
        "job_id": "1",
        "role": "produced",
        "section": "robustness",
        "metric": "quantization_4bit_recovery",
        "value": None,
        "threshold": 0.1,
        "comparator": "<=",
        "passed": False,
        "n_samples": 0,
        "not_measured_because": "needs the original's and the exact retrain's robustness measurements",
        "limits": "A pass shows that round-to-nearest 4-bit weight quantization did not restore more than the "
        "threshold's share of the forgotten content.",
    }
    providers(
        jobs=(("deletion", "npo", "succeeded"), ("output_suppression", "refusal", "succeeded")),
        extra={"verification": {"results": [robustness_row]}},
    )
    report = erasure_request_complete_and_issue_report(
        erasure_request=request_verifying(officer),
        actor=officer,
        acceptances={
            **FAKE_ACCEPTANCES,
            "1:quantization_4bit_recovery": "No retrain exists; accepted for now.",
        },
    )
    body = _body(report)
    codes = body["summary"]["limits"]
    assert "robustness_quantization_4bit_recovery" in codes
    assert "refusal_tuning_changes_answers_not_weights" in codes
    assert codes[-1] == "downstream_use_outside_the_model"
    statement = next(s for s in body["limits"] if s["code"] == "robustness_quantization_4bit_recovery")
    assert statement["text"] == robustness_row["limits"]
    row = next(r for r in body["verification"]["results"] if r["metric"] == "quantization_4bit_recovery")
    assert row["value"] is None and row["passed"] is False
    text = _pdf_text(bytes(report.pdf_bytes))
    assert "not measured" in text and "(robustness)" in text


def _privleak_row(*, synthetic: int, nonmembers: int = 20) -> dict:
    return {
        "subject": "support-gpt v3.1",
        "job_id": "1",
        "role": "produced",
        "metric": "privleak_loss",
        "value": 4.2,
        "threshold": 10.0,
        "comparator": "abs<=",
        "passed": True,
        "n_samples": 24 + nonmembers,
        "membership": {"n_members": 24, "n_nonmembers": nonmembers, "n_nonmembers_synthetic": synthetic},
    }


def test_membership_rows_on_synthetic_non_members_bring_a_statement_that_says_what_a_pass_is_worth(
    officer, providers
):
    providers(extra={"verification": {"results": [_privleak_row(synthetic=12), _privleak_row(synthetic=20)]}})
    report = erasure_request_complete_and_issue_report(
        erasure_request=request_verifying(officer), actor=officer, acceptances=FAKE_ACCEPTANCES
    )
    body = _body(report)
    codes = body["summary"]["limits"]
    assert "membership_nonmembers_synthetic" in codes and codes[-1] == "downstream_use_outside_the_model"
    statement = next(s for s in body["limits"] if s["code"] == "membership_nonmembers_synthetic")
    # The row with most synthetic non-members is the one named.
    assert "up to 20 of the non-member texts (each row gives its count) were synthetic" in statement["text"]
    text = " ".join(_pdf_text(bytes(report.pdf_bytes)).split())
    assert "Membership tests compared the person's records with synthetic text" in text


def test_membership_rows_on_the_data_sets_own_non_members_bring_no_such_statement(officer, providers):
    report = _issued(officer, providers, extra={"verification": {"results": [_privleak_row(synthetic=0)]}})
    assert "membership_nonmembers_synthetic" not in _body(report)["summary"]["limits"]


def test_a_request_identified_by_name_alone_carries_that_limit_in_its_report(officer):
    def rejected_report_text(subject):
        erasure_request = _rejected(officer, subject)
        audit_report_issue(erasure_request=erasure_request, actor=officer)
        return _pdf_text(report_file(erasure_request=erasure_request, file_format="pdf").data)

    assert "identified by name alone" in rejected_report_text(SubjectIdentifiers(names=("Maria Garcia",)))
    assert "identified by name alone" not in rejected_report_text(MARIA)
