"""One function per section of an audit report, each returning plain JSON values.

Sections held by this project's own tables (the request, its timeline, identity verification,
the audit chain) are read here; sections owned by other apps come through
``compliance.reports.providers``. No function returns a raw identifier of the person: the
identity section holds keyed hashes, free-text notes are reported as given or not, and record
ids arrive from the providers already hashed.
"""

from __future__ import annotations

from datetime import datetime

from compliance.audit import audit_chain_verify, audit_chain_verify_incremental
from compliance.models import AuditEvent
from compliance.reports import acceptance, limits
from compliance.reports.providers import report_section_provided, timestamp

DEADLINE_MET = "met"
DEADLINE_MISSED = "missed"
DEADLINE_OPEN = "open"
DEADLINE_OVERDUE = "overdue"
JOB_SUCCEEDED = "succeeded"


def deadline_outcome(erasure_request, *, now: datetime) -> str:
    """Return "met" or "missed" for a closed request, "open" or "overdue" for an open one."""
    if erasure_request.closed_at is not None and not erasure_request.is_open:
        return DEADLINE_MET if erasure_request.closed_at <= erasure_request.due_at else DEADLINE_MISSED
    return DEADLINE_OVERDUE if now > erasure_request.due_at else DEADLINE_OPEN


def report_section_request(erasure_request) -> dict:
    """Return what was asked, on what ground, over what scope, and how it ended."""
    rejection = None
    if erasure_request.rejection_ground:
        rejection = {
            "ground": erasure_request.rejection_ground,
            "ground_label": erasure_request.get_rejection_ground_display(),
            "explanation": erasure_request.rejection_explanation,
        }
    return {
        "reference": erasure_request.reference,
        "status": erasure_request.status,
        "status_label": erasure_request.get_status_display(),
        "channel": erasure_request.channel,
        "channel_label": erasure_request.get_channel_display(),
        "legal_ground": erasure_request.legal_ground,
        "legal_ground_label": erasure_request.get_legal_ground_display(),
        "received_at": timestamp(erasure_request.received_at),
        "closed_at": timestamp(erasure_request.closed_at),
        "scope": {
            "all": erasure_request.scope_all,
            "dataset_ids": list(erasure_request.scope_dataset_ids or []),
            "model_version_ids": list(erasure_request.scope_model_version_ids or []),
        },
        "assigned_officer": erasure_request.assigned_officer.get_username()
        if erasure_request.assigned_officer
        else None,
        "duplicate_of": erasure_request.duplicate_of.reference if erasure_request.duplicate_of else None,
        "rejection": rejection,
        "withdrawn": erasure_request.status == "withdrawn",
        "identifiers_purged_at": timestamp(erasure_request.identifiers_purged_at),
    }


def _request_events(erasure_request):

    return AuditEvent.objects.filter(
        object_type=erasure_request._meta.label_lower, object_id=str(erasure_request.pk)
    ).order_by("sequence")


def report_section_timeline(erasure_request, *, now: datetime) -> dict:
    """Return the deadlines, whether they were met, and every audit event of the request.

    Events are listed by action, time, actor and status change, with their chain hash; their
    free-text notes stay in the audit log, because a note may describe the person.
    """
    extension = None
    if erasure_request.extended_until:
        extension = {
            "until": timestamp(erasure_request.extended_until),
            "reason": erasure_request.extension_reason,
            "notified_at": timestamp(erasure_request.extension_notified_at),
        }
    end = erasure_request.closed_at if erasure_request.closed_at else now
    events = [
        {
            "sequence": event.sequence,
            "occurred_at": timestamp(event.occurred_at),
            "actor": event.actor_label,
            "action": event.action,
            "from_status": event.details.get("from_status") if isinstance(event.details, dict) else None,
            "to_status": event.details.get("to_status") if isinstance(event.details, dict) else None,
            "entry_hash": event.entry_hash,
        }
        for event in _request_events(erasure_request)
    ]
    return {
        "received_at": timestamp(erasure_request.received_at),
        "first_due_at": timestamp(erasure_request.first_due_at),
        "due_at": timestamp(erasure_request.due_at),
        "extension": extension,
        "closed_at": timestamp(erasure_request.closed_at),
        "deadline": deadline_outcome(erasure_request, now=now),
        "days_taken": round((end - erasure_request.received_at).total_seconds() / 86400, 2),
        "events": events,
    }


def report_section_identity(erasure_request) -> dict:
    """Return how the person's identity was verified (Art. 12(6)) and their identifiers as keyed hashes.

    Only the hashes of identifiers as given are listed; the variants matching added (initials,
    nicknames) are counted. The officer's note is reported as present or not, never quoted.
    """
    hashes = list(
        erasure_request.identifier_hashes.order_by("entity_type", "digest").values(
            "entity_type", "digest", "key_id", "is_variant"
        )
    )
    counts: dict[str, int] = {}
    for item in hashes:
        if not item["is_variant"]:
            counts[item["entity_type"]] = counts.get(item["entity_type"], 0) + 1
    return {
        "verified": erasure_request.identity_verified,
        "method": erasure_request.identity_method or None,
        "method_label": erasure_request.get_identity_method_display()
        if erasure_request.identity_method
        else None,
        "verified_at": timestamp(erasure_request.identity_verified_at),
        "verified_by": erasure_request.identity_verified_by.get_username()
        if erasure_request.identity_verified_by
        else None,
        "note_recorded": bool(erasure_request.identity_note),
        "identifier_counts": counts,
        "identifier_hashes": [
            {"entity_type": item["entity_type"], "digest": item["digest"], "key_id": item["key_id"]}
            for item in hashes
            if not item["is_variant"]
        ],
        "variant_hashes": sum(1 for item in hashes if item["is_variant"]),
    }


def report_section_records(erasure_request) -> dict:
    """Return the search coverage, the candidates found and confirmed, and the records removed."""
    return report_section_provided(section="records", erasure_request=erasure_request)


def report_section_decisions(erasure_request) -> dict:
    """Return the officer's decisions per model version: frameworks, methods, legal rationale."""
    return report_section_provided(section="decisions", erasure_request=erasure_request)


def report_section_jobs(erasure_request) -> dict:
    """Return every job run for the request, with the frameworks and methods it applied."""
    return report_section_provided(section="jobs", erasure_request=erasure_request)


def report_section_verification(erasure_request) -> dict:
    """Return the measured results, each with its threshold and pass or fail as decided.

    A failed or unmeasured row that the officer accepted in writing before completing carries
    the acceptance (``acceptance``: text, by whom, when, its audit event); its ``passed`` stays
    false: an acceptance is a decision to complete over a fail, never a pass.
    """
    section = report_section_provided(section="verification", erasure_request=erasure_request)
    section["results"] = acceptance.verification_rows_annotate(section["results"], erasure_request)
    return section


def report_section_recipients(erasure_request) -> dict:
    """Return the recipients told of the erasure (Art. 19): deployments and data-set copies."""
    return report_section_provided(section="recipients", erasure_request=erasure_request)


def frameworks_applied(jobs_section: dict) -> dict[str, set[str]]:
    """Return framework → methods, over the jobs that succeeded (what was actually applied)."""
    applied: dict[str, set[str]] = {}
    for job in jobs_section.get("jobs", []):
        if job.get("status") == JOB_SUCCEEDED and job.get("framework") in limits.FRAMEWORKS:
            methods = applied.setdefault(job["framework"], set())
            if job.get("method"):
                methods.add(job["method"])
    return applied


def frameworks_decided(decisions_section: dict) -> list[str]:
    decided = {
        framework
        for decision in decisions_section.get("decisions", [])
        for framework in decision.get("frameworks", [])
        if framework in limits.FRAMEWORKS
    }
    return [name for name in limits.FRAMEWORKS if name in decided]


def report_section_limits(*, jobs_section: dict) -> list[dict]:
    """Return the statements of limits that the frameworks applied call for."""
    return limits.limits_statements(
        applied=frameworks_applied(jobs_section), jobs=jobs_section.get("jobs", [])
    )


ROBUSTNESS_SECTION = "robustness"
VERIFICATION_SOURCE = "Lethe verification: robustness attacks (docs/verification.md, issue 16)"
ROBUSTNESS_TITLES = {
    "relearning_recovery": "A relearning attack was tried, not every one",
    "quantization_8bit_recovery": "8-bit quantization was tried with one scheme",
    "quantization_4bit_recovery": "4-bit quantization was tried with one scheme",
    "paraphrase_extraction_rate": "Paraphrased and compliant prompts were tried from a finite list",
    "paraphrase_answer_recall_gap": "Paraphrased questions were measured on TOFU questions only",
}
REFUSAL_TUNING = {
    "code": "refusal_tuning_changes_answers_not_weights",
    "title": "Refusal tuning changes what the model answers, not what its weights hold",
    "text": "The model was fine-tuned to refuse questions about the person ({methods}). This is output "
    "suppression: the weights may still hold what the model learnt, and fine-tuning a few steps, "
    "quantizing the weights or asking in other words can bring the answers back. The robustness "
    "rows of the verification results show what was tried and what came back.",
    "mismatch": 1,
    "source": "Seed 001 §IV; Zhang et al., Catastrophic Failure of LLM Unlearning via Quantization (ICLR 2025)",
}
REFUSAL_METHODS = frozenset({"refusal"})
SYNTHETIC_NONMEMBERS = {
    "code": "membership_nonmembers_synthetic",
    "title": "Membership tests compared the person's records with synthetic text",
    "text": "The membership-inference rows (AUC, PrivLeak, TPR at low FPR) compare the model's scores "
    "on the person's records with its scores on records it was never trained on. The data set held "
    "too few of those (a model trained on every record leaves none), so up to {synthetic} of the "
    "non-member texts (each row gives its count) were synthetic records from Lethe's demo generator: "
    "people no model saw, but not written as the data set's records are. Unless the data set was made by that "
    "generator, an AUC can differ from 0.5 because the texts differ rather than because of "
    "membership, in either direction, so a pass of an AUC row is weak evidence; PrivLeak, which "
    "compares with the retrained model on the same texts, is the better of these rows. Records "
    "held out of training (a training job's holdout fraction) give the tests non-members of the "
    "data set's own kind.",
    "mismatch": None,
    "source": "Lethe verification: non-member samples (docs/verification.md)",
}


def _synthetic_nonmembers(verification_section: dict | None) -> int:
    """Return the most synthetic non-members any membership row was measured with (0: none).

    Only the count given is named: a row's ``n_nonmembers`` counts the texts it could score, which
    may be fewer than were given, so the two are not set side by side.
    """
    return max(
        (
            membership.get("n_nonmembers_synthetic") or 0
            for row in (verification_section or {}).get("results", [])
            if isinstance(membership := row.get("membership"), dict)
        ),
        default=0,
    )


def _verification_limits(*, jobs_section: dict, verification_section: dict | None) -> list[dict]:
    """Return the statements of refusal tuning, synthetic non-members and each robustness row measured."""
    statements = []
    refusals = frameworks_applied(jobs_section).get(limits.OUTPUT_SUPPRESSION, set()) & REFUSAL_METHODS
    if refusals:
        statements.append(
            {
                **REFUSAL_TUNING,
                "text": REFUSAL_TUNING["text"].format(methods=", ".join(sorted(refusals))),
                "applies_because": "output suppression by refusal tuning",
            }
        )
    synthetic = _synthetic_nonmembers(verification_section)
    if synthetic:
        statements.append(
            {
                **SYNTHETIC_NONMEMBERS,
                "text": SYNTHETIC_NONMEMBERS["text"].format(synthetic=synthetic),
                "applies_because": "membership rows measured with synthetic non-members",
            }
        )
    seen: dict[str, str] = {}
    for row in (verification_section or {}).get("results", []):
        if row.get("section") == ROBUSTNESS_SECTION and row.get("limits") and row.get("metric") not in seen:
            seen[row["metric"]] = row["limits"]
    for metric, text in seen.items():
        statements.append(
            {
                "code": f"robustness_{metric}",
                "title": ROBUSTNESS_TITLES.get(metric, f"What the {metric.replace('_', ' ')} row shows"),
                "text": text,
                "mismatch": None,
                "applies_because": f"the verification measured {metric.replace('_', ' ')}",
                "source": VERIFICATION_SOURCE,
            }
        )
    return statements


def report_section_limits_with_verification(
    statements: list[dict], *, jobs_section: dict, verification_section: dict | None
) -> list[dict]:
    """Return the framework's limit statements with those the verification calls for.

    Refusal tuning (output suppression by fine-tuning), membership rows measured with synthetic
    non-members, and each robustness row measured add a statement: for a robustness row, the
    engine's own sentence on what a pass of that row does and does not show, carried by the row
    (``limits``), whatever the row's result. They go before the last statement (how outputs are
    used), which every report ends with.
    """
    extra = _verification_limits(jobs_section=jobs_section, verification_section=verification_section)
    if not extra:
        return statements
    return statements[:-1] + extra + statements[-1:]


def report_section_audit_chain(erasure_request, *, full: bool = True) -> dict:
    """Return the head of the audit log's hash chain now, and whether the whole chain verifies.

    The head sealed into a report is the last event before the report's own "issued" event, so
    anyone holding the log can check that the report was issued after everything it lists.
    An issued report walks the whole chain (``full``); a draft, rendered on every view, checks
    the events after the verified head as the auditor's request page does (docs/reports.md).
    """

    result = audit_chain_verify() if full else audit_chain_verify_incremental()
    head = AuditEvent.objects.order_by("-sequence").only("sequence", "entry_hash").first()
    own = list(_request_events(erasure_request).only("sequence", "entry_hash"))
    return {
        "head_sequence": head.sequence if head else 0,
        "head_hash": head.entry_hash if head else "0" * 64,
        "verified": result.ok,
        "events_checked": result.events_checked,
        "first_bad_sequence": result.first_bad_sequence,
        "problem": result.reason or None,
        "request_events": len(own),
        "request_last_hash": own[-1].entry_hash if own else None,
    }
