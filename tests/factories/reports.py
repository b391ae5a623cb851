"""Fixtures and builders shared by the audit-report tests (this module holds no tests).

Requests are built through the request workflow's services, as in real use; the sections that
other apps will provide (records, decisions, jobs, verification, recipients) are fed by small
fake providers listed in the real table (``settings.LETHE_REPORT_SECTION_PROVIDERS``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest

from requests_app import services
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import IdentityMethod, LegalGround

MARIA = SubjectIdentifiers(
    names=("Maria Garcia",),
    emails=("Maria.Garcia@Example.net",),
    phones=("+34 612 345 678",),
    addresses=("Calle Mayor 12, 28013 Madrid",),
    account_ids=("CUST-99812",),
)
# Every form in which the person's identifiers could leak into a report.
MARIA_RAW_FORMS = (
    "Maria Garcia",
    "maria.garcia@example.net",
    "+34 612 345 678",
    "+34612345678",
    "612345678",
    "612 345 678",
    "Calle Mayor 12",
    "CUST-99812",
)

STEPS_TO_VERIFYING = ("start_locating", "submit_for_review", "approve", "start_executing", "start_verifying")


def request_verifying(officer, *, subject: SubjectIdentifiers = MARIA, received_at: datetime | None = None):
    """Record a request and walk it to "verifying" through the workflow's services."""
    erasure_request = services.erasure_request_create(
        subject=subject, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer, received_at=received_at
    )
    erasure_request = services.erasure_request_verify_identity(
        erasure_request=erasure_request,
        actor=officer,
        method=IdentityMethod.DOCUMENT_SEEN,
        note="Passport seen; number not kept.",
    )
    for step in STEPS_TO_VERIFYING:
        erasure_request = getattr(services, f"erasure_request_{step}")(
            erasure_request=erasure_request, actor=officer
        )
    return erasure_request


def record_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _when(minutes: int) -> datetime:
    return datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc) + timedelta(minutes=minutes)


def fake_sections(*, jobs: list[tuple[str, str, str]]) -> dict:
    """Return what the other apps' providers would give for jobs ``(framework, method, status)``."""
    job_items = [
        {
            "job_id": str(index + 1),
            "framework": framework,
            "method": method,
            "status": status,
            "parameters": {"learning_rate": 1e-5, "epochs": 2}
            if framework == "deletion"
            else {"mode": "redact"},
            "model_version_in": "support-gpt v3",
            "model_version_out": f"support-gpt v3.{index + 1}",
            "weights_sha256_in": record_hash("weights v3"),
            "weights_sha256_out": record_hash(f"weights {index}"),
            "device": "cuda:0 (NVIDIA H100)",
            "worker": "gpu-worker-1",
            "compute_seconds": 412.5 + index,
            "attempts": 1,
            "started_at": _when(index * 10),
            "finished_at": _when(index * 10 + 7),
        }
        for index, (framework, method, status) in enumerate(jobs)
    ]
    return {
        "records": {
            "search_coverage": [
                {
                    "dataset": "support-tickets",
                    "dataset_version": "v2",
                    "records_total": 5000,
                    "records_indexed": 5000,
                    "index_key_id": "hmac-sha256:abc",
                    "searched_at": _when(0),
                }
            ],
            "candidates": [
                {
                    "dataset": "support-tickets",
                    "dataset_version": "v2",
                    "found": 4,
                    "confirmed": 3,
                    "rejected": 1,
                }
            ],
            "confirmed_records": [
                {
                    "dataset": "support-tickets",
                    "dataset_version": "v2",
                    "record_id_hash": record_hash(f"record {n}"),
                }
                for n in range(3)
            ],
            "removals": [
                {
                    "dataset": "support-tickets",
                    "from_version": "v2",
                    "to_version": "v3",
                    "records_removed": 3,
                    "manifest_sha256": record_hash("manifest"),
                }
            ],
        },
        "decisions": {
            "decisions": [
                {
                    "target": "support-gpt v3",
                    "frameworks": sorted({framework for framework, _m, _s in jobs}),
                    "methods": [method for _f, method, _s in jobs],
                    "rationale": "Consent withdrawn (Art. 17(1)(b)); retraining cost disproportionate for one subject.",
                    "decided_by": "officer",
                    "decided_at": _when(-5),
                }
            ]
        },
        "jobs": {"jobs": job_items},
        "verification": {
            "results": [
                {
                    "subject": "support-gpt v3.1",
                    "job_id": "1",
                    "metric": "extraction_rate",
                    "value": 0.0,
                    "threshold": 0.0,
                    "comparator": "<=",
                    "passed": True,
                    "n_samples": 3,
                },
                {
                    "subject": "support-gpt v3.1",
                    "job_id": "1",
                    "metric": "mia_auc_min_k",
                    "value": 0.5600001,
                    "threshold": 0.56,
                    "comparator": "<=",
                    "passed": False,
                    "n_samples": 200,
                },
                {
                    "subject": "support-gpt v3.1",
                    "job_id": "1",
                    "metric": "retain_perplexity_ratio",
                    "value": 1.04,
                    "threshold": 1.1,
                    "comparator": "<=",
                    "passed": True,
                    "n_samples": 500,
                },
            ],
            "figures": [],
        },
        "recipients": {
            "recipients": [
                {
                    "kind": "model_deployment",
                    "name": "support-assistant (prod)",
                    "notified_at": _when(30),
                    "method": "webhook",
                },
                {
                    "kind": "dataset_copy",
                    "name": "analytics warehouse copy",
                    "notified_at": _when(31),
                    "method": "ticket",
                },
            ]
        },
    }


# The fake verification section's failing row, and the officer's written acceptance of it:
# completing over a failed row needs one (compliance.reports.acceptance).
FAKE_FAILED_ROW_KEY = "1:mia_auc_min_k"
FAKE_ACCEPTANCES = {
    FAKE_FAILED_ROW_KEY: "Accepted: 1e-7 above its bound on 200 records; a re-run would not change the decision."
}

# What the fake providers return, section by section, while the ``providers`` fixture is active.
FAKE_SECTIONS: dict[str, dict] = {}


def fake_records_provider(erasure_request):
    return FAKE_SECTIONS.get("records")


def fake_decisions_provider(erasure_request):
    return FAKE_SECTIONS.get("decisions")


def fake_jobs_provider(erasure_request):
    return FAKE_SECTIONS.get("jobs")


def fake_verification_provider(erasure_request):
    return FAKE_SECTIONS.get("verification")


def fake_recipients_provider(erasure_request):
    return FAKE_SECTIONS.get("recipients")


@pytest.fixture
def providers(settings):
    """Return a function that lists fake providers for the given jobs; the table is restored after."""

    def install(
        jobs=(("deletion", "npo", "succeeded"), ("output_suppression", "output_filter", "succeeded")),
        extra: dict | None = None,
    ):
        data = fake_sections(jobs=list(jobs))
        for section, lists in (extra or {}).items():
            for list_name, items in lists.items():
                data[section][list_name] = data[section].get(list_name, []) + items
        FAKE_SECTIONS.clear()
        FAKE_SECTIONS.update(data)
        table = {section: list(paths) for section, paths in settings.LETHE_REPORT_SECTION_PROVIDERS.items()}
        for section in data:
            table.setdefault(section, []).append(f"{__name__}.fake_{section}_provider")
        settings.LETHE_REPORT_SECTION_PROVIDERS = table
        return data

    yield install
    FAKE_SECTIONS.clear()
