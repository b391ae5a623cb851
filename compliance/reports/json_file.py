"""The report's JSON file: the body beside its signature, written as canonical JSON.

The file is ``{"body": {…}, "signature": {…}}`` in canonical form (keys sorted, no whitespace),
so the body's signed bytes are exactly the bytes between the file's leading ``{"body":`` and its
last ``,"signature":`` — a verifier in any language can check the signature without re-serialising.
Drafts carry ``"signature": null``: they are not issued and prove nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from compliance.reports.signing import (
    ReportSigner,
    canonical_json_bytes,
    canonical_json_text,
    signature_block,
)

JSON_MEDIA_TYPE = "application/json"


@dataclass(frozen=True)
class SignedJson:
    text: str
    body_bytes: bytes
    signature: dict | None


def report_json_render(*, body: dict, signer: ReportSigner | None) -> SignedJson:
    """Return the JSON file of ``body``, signed by ``signer`` (None: an unsigned draft)."""
    body_bytes = canonical_json_bytes(body)
    signature = signature_block(body_bytes=body_bytes, signer=signer) if signer is not None else None
    text = canonical_json_text({"body": body, "signature": signature})
    return SignedJson(text=text, body_bytes=body_bytes, signature=signature)


class ReportFileUnreadable(ValueError):
    """The file is not a report file at all, or is cut short; the message says which."""


@dataclass(frozen=True)
class ParsedReportJson:
    body: dict
    signature: dict | None
    canonical: bool  # the file's bytes are exactly the canonical form of what it holds
    body_bytes: bytes


def _ends_inside_a_value(text: str) -> bool:
    """Return True when ``text`` ends inside a string or with brackets left open: a cut-off file."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return in_string or depth > 0


def report_json_parse(data: bytes) -> ParsedReportJson:
    """Read a report JSON file; raise ``ReportFileUnreadable`` with a clear reason when it is not one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ReportFileUnreadable(f"The file is not UTF-8 text (byte {error.start} is invalid).") from None
    try:
        envelope = json.loads(text)
    except json.JSONDecodeError as error:
        if _ends_inside_a_value(text):
            raise ReportFileUnreadable(
                f"The JSON stops inside an unfinished value after {len(data)} bytes: the file is truncated "
                "(an interrupted download?)."
            ) from None
        raise ReportFileUnreadable(
            f"The file is not valid JSON ({error.msg} at character {error.pos})."
        ) from None
    if not isinstance(envelope, dict) or "body" not in envelope or "signature" not in envelope:
        raise ReportFileUnreadable(
            'The JSON is not a Lethe report: it needs "body" and "signature" at the top.'
        )
    body, signature = envelope["body"], envelope["signature"]
    if not isinstance(body, dict) or not (signature is None or isinstance(signature, dict)):
        raise ReportFileUnreadable(
            'The JSON is not a Lethe report: "body" must be an object, "signature" an object or null.'
        )
    try:
        canonical = canonical_json_text(envelope) == text
        body_bytes = canonical_json_bytes(body)
    except ValueError:
        raise ReportFileUnreadable("The JSON holds NaN or infinity, which no Lethe report does.") from None
    return ParsedReportJson(body=body, signature=signature, canonical=canonical, body_bytes=body_bytes)
