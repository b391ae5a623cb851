"""Builders shared by the data-set, indexing, matching and review tests (this module holds no tests).

Data sets are registered and indexed through the same services the product uses; the one real
Presidio engine of the process is reused by every test that scans (``get_scan_engine`` caches it).
"""

from __future__ import annotations

import json
from pathlib import Path

from requests_app import services
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import IdentityMethod, LegalGround

# The hand-made subject of the matching tests, and records that mention them in every way.
WILLIAM = SubjectIdentifiers(
    names=("William Turner",),
    emails=("William.Turner@Example.com",),
    phones=("07911 123456",),
    account_ids=("ACC-482913",),
)

# record id → text. Comments say how each one mentions William Turner (spaCy's small model finds
# the names as written here; it splits "Turner, William", which the hash-level tests cover).
WILLIAM_RECORDS: dict[str, str] = {
    "S1": "Ticket from William Turner <william.turner@example.com>: my parcel never arrived.",  # e-mail + name
    "S2": "Please call 07911 123456 about account ACC-482913, the caller asked for a refund.",  # phone + account
    "S3": "Identity check for W. Turner, account ACC-482913: date of birth 14/02/1979 confirmed, "
    "lives in Leeds.",  # account + initial; gives the quasi-identifiers
    "N1": "Note: Bill Turner prefers to be contacted in the afternoon.",  # nickname only
    "N2": "Agent summary: spoke with W. Turner, issue resolved with a voucher.",  # initial only
    "N3": "Letter signed by William Turner about the closed account.",  # full name only
    "Q1": "A customer born on 14/02/1979 who lives in Leeds asked whether we keep their order history.",
    "Q2": "Complaint from a customer (date of birth 14/02/1979) about a missing loyalty bonus.",
    "X1": "Contact Mary Jones at mary.jones@example.org about the refund.",  # someone else
    "X2": "How do I reset my password? The link in the e-mail has expired.",  # nobody
}


def write_jsonl(path: Path, records: dict[str, str] | list[dict]) -> Path:
    """Write ``{"id", "text"}`` lines (from a mapping of id → text, or a list of dicts)."""
    rows = (
        [{"id": key, "text": text} for key, text in records.items()] if isinstance(records, dict) else records
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def register_and_index(*, name: str, path: Path, actor=None, chunk_size: int = 4, **kwargs):
    """Register ``path`` and index it in this process (no worker); return the version, indexed."""
    from unlearning_jobs.datasets.indexing import dataset_version_index_inline
    from unlearning_jobs.datasets.services import dataset_version_register

    version = dataset_version_register(
        name=name, path=path, actor=actor, id_field="id", chunk_size=chunk_size, enqueue=False, **kwargs
    )
    dataset_version_index_inline(version=version)
    version.refresh_from_db()
    return version


def request_in_review(officer, subject: SubjectIdentifiers = WILLIAM, **overrides):
    """Record a request, verify identity, and locate synchronously; return it in review."""
    from requests_app.matching.services import locate_run_ensure, locate_run_execute

    erasure_request = services.erasure_request_create(
        subject=subject, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer, **overrides
    )
    erasure_request = services.erasure_request_verify_identity(
        erasure_request=erasure_request, actor=officer, method=IdentityMethod.DOCUMENT_SEEN
    )
    erasure_request = services.erasure_request_start_locating(erasure_request=erasure_request, actor=officer)
    coverage = locate_run_ensure(erasure_request=erasure_request, actor=officer)
    assert locate_run_execute(coverage_id=coverage.pk) == "reviewing"
    erasure_request.refresh_from_db()
    return erasure_request
