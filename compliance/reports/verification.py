"""Check a downloaded report file (JSON or PDF) against its signature and the stored record.

Every check is listed with its outcome, so the answer says what was checked, not only that
something failed. A file passes only if every check passes: one changed byte fails the file
hash against the stored record, and in a JSON file the canonical form or the body's signature
too. Ed25519 signatures are checked with the public key alone; reports issued before Ed25519
carry an HMAC, checked with the HMAC key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from compliance.models import AuditEvent, AuditReport
from compliance.reports.json_file import ReportFileUnreadable, report_json_parse
from compliance.reports.pdf import (
    METADATA_BODY_HMAC,
    METADATA_BODY_SHA256,
    METADATA_BODY_SIGNATURE,
    METADATA_KEY_ID,
    METADATA_REPORT_ID,
    METADATA_STATUS,
    report_pdf_metadata,
)
from compliance.reports.schema import SCHEMA_VERSION, report_schema_problems
from compliance.reports.signing import (
    LEGACY_SIGNATURE_ALGORITHM,
    SIGNATURE_ALGORITHM,
    UnknownSigningKey,
    ed25519_verifies,
    hmac_matches,
    public_key_for,
    sha256_hex,
    signing_key_for,
)


def _signature_verifies(*, alg: str, key_id: str, data: bytes, signature: str) -> tuple[bool, str]:
    """Return whether ``signature`` of ``data`` verifies under ``key_id``, and what was checked.

    ``Ed25519`` with the public key (no secret needed); ``HMAC-SHA256`` (reports issued before)
    with the HMAC key. Raises ``UnknownSigningKey`` when this Lethe holds no such key.
    """
    if alg == SIGNATURE_ALGORITHM:
        return ed25519_verifies(
            key=public_key_for(key_id), data=data, signature_b64=signature
        ), f"the Ed25519 signature verifies with public key {key_id}"
    if alg == LEGACY_SIGNATURE_ALGORITHM:
        return hmac_matches(
            key=signing_key_for(key_id), data=data, expected=signature
        ), f"the HMAC verifies under key {key_id}"
    raise UnknownSigningKey(f"Unknown signature algorithm {alg!r}; Lethe signs with {SIGNATURE_ALGORITHM}.")


def _stored_body_signature(report) -> str:
    return report.body_signature if report.signature_alg == SIGNATURE_ALGORITHM else report.body_hmac


REPORT_ID_PATTERN = re.compile(r"^(ER-\d{4}-\d{1,9})-(v(\d{1,6})|draft)$")
# A PDF ends with %%EOF, possibly followed by a newline or a little padding.
PDF_EOF_WINDOW = 1024
MAX_REPORT_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class ReportVerification:
    kind: str  # "json", "pdf" or "unknown"
    checks: list[Check] = field(default_factory=list)
    report_id: str | None = None
    stored_pk: int | None = None
    superseded_by: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def first_problem(self) -> str:
        for check in self.checks:
            if not check.ok:
                return check.detail
        return ""

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok


def _safe_report_id(value) -> str | None:
    """Return ``value`` if it has the form of a report id; anything else from a file is not echoed."""
    return value if isinstance(value, str) and REPORT_ID_PATTERN.match(value) else None


def _stored_report(report_id: str):

    match = REPORT_ID_PATTERN.match(report_id)
    if not match or not match.group(3):
        return None
    return (
        AuditReport.objects.filter(erasure_request__reference=match.group(1), version=int(match.group(3)))
        .select_related("erasure_request")
        .first()
    )


def _successor(report) -> str | None:

    newer = AuditReport.objects.filter(supersedes=report).select_related("erasure_request").first()
    return newer.report_id if newer else None


def _check_chain_head(result: ReportVerification, body: dict) -> None:
    """Check that the audit-log event the report sealed is still in the log with the same hash."""

    chain = body.get("audit_chain") or {}
    sequence, head = chain.get("head_sequence"), chain.get("head_hash")
    if not sequence:
        result.add("audit_chain_head", True, "The report was issued before any audit event.")
        return
    event = AuditEvent.objects.filter(sequence=sequence).only("entry_hash").first()
    if event is None:
        result.add(
            "audit_chain_head",
            False,
            f"Audit event #{sequence}, sealed in the report, is missing from the log.",
        )
    elif event.entry_hash != head:
        result.add(
            "audit_chain_head",
            False,
            f"Audit event #{sequence} in the log no longer has the hash the report sealed.",
        )
    else:
        result.add("audit_chain_head", True, f"Audit event #{sequence} still has the hash the report sealed.")


def _check_stored_body(result: ReportVerification, report) -> dict | None:
    """Check the stored row's own JSON against its recorded hashes and HMAC; return its body."""
    try:
        parsed = report_json_parse(report.json_text.encode("utf-8"))
    except ReportFileUnreadable as error:
        result.add("stored_record", False, f"The stored JSON of {report.report_id} cannot be read: {error}")
        return None
    try:
        signed, _ = _signature_verifies(
            alg=report.signature_alg,
            key_id=report.key_id,
            data=parsed.body_bytes,
            signature=_stored_body_signature(report),
        )
    except UnknownSigningKey as error:
        result.add("stored_record", False, str(error))
        return None
    body_ok = sha256_hex(parsed.body_bytes) == report.body_sha256 and signed
    result.add(
        "stored_record",
        body_ok,
        f"The stored record of {report.report_id} is intact."
        if body_ok
        else f"The stored record of {report.report_id} does not match its own signature: the database was altered.",
    )
    return parsed.body if body_ok else None


def _verify_json(data: bytes, result: ReportVerification, *, check_stored: bool) -> None:
    try:
        parsed = report_json_parse(data)
    except ReportFileUnreadable as error:
        result.add("readable", False, str(error))
        return
    result.add("readable", True, "The file is a Lethe report in JSON.")
    report_meta = parsed.body.get("report") if isinstance(parsed.body.get("report"), dict) else {}
    result.report_id = _safe_report_id(report_meta.get("id"))
    if parsed.signature is None:
        result.add(
            "issued",
            False,
            "This is a draft: drafts are not signed and prove nothing. Download the issued report.",
        )
        return
    # A failure here does not stop the checks: the signature says whether the content changed too.
    result.add(
        "canonical",
        parsed.canonical,
        "The file is byte for byte in canonical form."
        if parsed.canonical
        else "The file is not in the canonical form it was issued in: it was reformatted or altered.",
    )
    signature = parsed.signature
    alg = str(signature.get("alg", ""))
    value = str(signature.get("signature" if alg == SIGNATURE_ALGORITHM else "hmac", ""))
    try:
        signed, what = _signature_verifies(
            alg=alg, key_id=str(signature.get("key_id", "")), data=parsed.body_bytes, signature=value
        )
    except UnknownSigningKey as error:
        result.add("signature", False, str(error))
        return
    digest_ok = sha256_hex(parsed.body_bytes) == signature.get("sha256")
    result.add(
        "body_sha256",
        digest_ok,
        "The body's SHA-256 matches the signature."
        if digest_ok
        else "The body's SHA-256 does not match the signature: the content was changed.",
    )
    result.add(
        "signature",
        signed,
        f"{what[0].upper()}{what[1:]}."
        if signed
        else f"The {alg} signature does not verify: the body or its signature was changed, or it was "
        "not signed by this Lethe.",
    )
    if parsed.body.get("schema_version") == SCHEMA_VERSION:
        problems = report_schema_problems(parsed.body)
        result.add(
            "schema",
            not problems,
            f"The body fits schema {SCHEMA_VERSION}."
            if not problems
            else f"The body does not fit schema {SCHEMA_VERSION}: {problems[0]}",
        )
    else:
        result.add("schema", False, "The body names a schema version this Lethe does not know.")
    if not check_stored:
        return
    report = _stored_report(result.report_id) if result.report_id else None
    if report is None:
        result.add("stored_record", False, "No issued report with this id is stored in this Lethe.")
        return
    result.stored_pk = report.pk
    same_file = sha256_hex(data) == report.json_sha256
    result.add(
        "file_sha256",
        same_file,
        "The file's SHA-256 is the one recorded at issue."
        if same_file
        else f"The file's SHA-256 differs from the one recorded when {report.report_id} was issued.",
    )
    stored_body = _check_stored_body(result, report)
    if stored_body is not None:
        _check_chain_head(result, stored_body)
    result.superseded_by = _successor(report)


def _verify_pdf(data: bytes, result: ReportVerification) -> None:

    if b"%%EOF" not in data[-PDF_EOF_WINDOW:]:
        result.add(
            "readable",
            False,
            "The PDF has no end-of-file marker: the file is truncated (an incomplete download?).",
        )
        return
    try:
        metadata = report_pdf_metadata(data)
    except ValueError as error:
        result.add("readable", False, f"The PDF is damaged: {error}.")
        return
    result.add("readable", True, "The file is a readable PDF.")
    if metadata.get(METADATA_STATUS) == "draft":
        result.report_id = _safe_report_id(metadata.get(METADATA_REPORT_ID))
        result.add(
            "issued",
            False,
            "This is a draft: drafts are not signed and prove nothing. Download the issued report.",
        )
        return
    digest = sha256_hex(data)
    report_id = _safe_report_id(metadata.get(METADATA_REPORT_ID))
    report = _stored_report(report_id) if report_id else None
    if report is None:
        report = AuditReport.objects.filter(pdf_sha256=digest).select_related("erasure_request").first()
    if report is None:
        result.report_id = report_id
        result.add(
            "stored_record",
            False,
            "No issued report of this Lethe has this PDF's id or SHA-256: it was altered or not issued here.",
        )
        return
    result.report_id, result.stored_pk = report.report_id, report.pk
    same_file = digest == report.pdf_sha256
    result.add(
        "file_sha256",
        same_file,
        "The PDF's SHA-256 is the one recorded at issue."
        if same_file
        else f"The PDF's SHA-256 differs from the one recorded when {report.report_id} was issued: it was changed.",
    )
    ed25519 = report.signature_alg == SIGNATURE_ALGORITHM
    try:
        signed, what = _signature_verifies(
            alg=report.signature_alg,
            key_id=report.key_id,
            data=data,
            signature=report.pdf_signature if ed25519 else report.pdf_hmac,
        )
    except UnknownSigningKey as error:
        result.add("signature", False, str(error))
        return
    result.add(
        "signature",
        signed,
        f"For the PDF file, {what}."
        if signed
        else "The PDF's signature does not verify against the stored record.",
    )
    embedded = metadata.get(METADATA_BODY_SIGNATURE if ed25519 else METADATA_BODY_HMAC)
    embedded_ok = (
        metadata.get(METADATA_BODY_SHA256) == report.body_sha256
        and embedded == _stored_body_signature(report)
        and metadata.get(METADATA_KEY_ID) == report.key_id
    )
    result.add(
        "embedded_signature",
        embedded_ok,
        "The body SHA-256 and signature printed in the PDF are those of the stored report."
        if embedded_ok
        else "The body SHA-256 or signature in the PDF's metadata differ from the stored report's.",
    )
    stored_body = _check_stored_body(result, report)
    if stored_body is not None:
        _check_chain_head(result, stored_body)
    result.superseded_by = _successor(report)


def report_file_verify(data: bytes, *, check_stored: bool = True) -> ReportVerification:
    """Return every check of ``data`` (a report file) and whether all passed.

    ``check_stored`` False checks a JSON file against its signature only, for a verifier who
    holds the public key but not the database; a PDF is always checked against the stored record,
    because its signature is kept there.
    """
    if not data:
        result = ReportVerification(kind="unknown")
        result.add("readable", False, "The file is empty.")
        return result
    if len(data) > MAX_REPORT_BYTES:
        result = ReportVerification(kind="unknown")
        result.add(
            "readable",
            False,
            f"The file is larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB; no report is.",
        )
        return result
    if data.startswith(b"%PDF-"):
        result = ReportVerification(kind="pdf")
        _verify_pdf(data, result)
        return result
    if data.lstrip()[:1] == b"{":
        result = ReportVerification(kind="json")
        _verify_json(data, result, check_stored=check_stored)
        return result
    result = ReportVerification(kind="unknown")
    result.add("readable", False, "The file is neither a Lethe report in JSON nor a PDF.")
    return result
