"""Turn a report body into what the HTML page and the PDF show: labels, formatted numbers, the plot.

Nothing here adds a fact: every value shown comes from the body (and, for issued reports, from
its signature), so the page, the PDF and the JSON say the same thing.
"""

from __future__ import annotations

import base64
from datetime import datetime

from compliance.reports.chart import number_text, verification_chart_svg
from compliance.reports.limits import FRAMEWORK_LABELS
from requests_app.identifiers import identified_by_names_only

DEADLINE_LABELS = {
    "met": "Met",
    "missed": "Missed",
    "open": "Open, not yet due",
    "overdue": "Open and overdue",
}
DEADLINE_BADGES = {"met": "good", "missed": "bad", "open": "", "overdue": "bad"}
NONE_RECORDED = "None recorded."


def _when(value: str | None) -> str:
    """Return ``2026-03-01 09:30 UTC`` for a body timestamp; an em dash for none."""
    if not value:
        return "—"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _framework_labels(names) -> list[str]:
    return [FRAMEWORK_LABELS.get(name, name) for name in names]


def _job_rows(jobs: list[dict]) -> list[dict]:
    rows = []
    for job in jobs:
        parameters = job.get("parameters") or {}
        rows.append(
            {
                **job,
                "framework_label": FRAMEWORK_LABELS.get(job.get("framework"), job.get("framework")),
                "parameters_text": ", ".join(f"{key}={value}" for key, value in sorted(parameters.items()))
                or "—",
                "compute_text": "—"
                if job.get("compute_seconds") is None
                else f"{job['compute_seconds']:.1f} s",
                "started_text": _when(job.get("started_at")),
                "finished_text": _when(job.get("finished_at")),
            }
        )
    return rows


ROLE_LABELS = {"original": "baseline", "reference": "exact retrain", "produced": "produced model"}


def _verdict_text(row: dict) -> str:
    """Return "pass", "FAIL" or "not measured": never better than the stored ``passed``."""
    if row.get("passed") is True:
        return "pass"
    return "not measured" if row.get("value") is None else "FAIL"


def _verification_rows(results: list[dict]) -> list[dict]:
    return [
        {
            **row,
            "value_text": number_text(row.get("value"), row.get("threshold")),
            "threshold_text": number_text(row.get("threshold")),
            "verdict": "pass" if row.get("passed") is True else "fail",
            "verdict_text": _verdict_text(row),
            "section_label": "robustness" if row.get("section") == "robustness" else "",
            "role_label": ROLE_LABELS.get(row.get("role"), ""),
            "accepted_text": _when((row.get("acceptance") or {}).get("accepted_at")),
        }
        for row in results
    ]


def _accepted_rows(rows: list[dict]) -> list[dict]:
    """Return the failed rows the officer accepted in writing, for the summary beside the counts."""
    return [row for row in rows if row.get("acceptance")]


def _figures(figures: list[dict]) -> list[dict]:
    shown = []
    for figure in figures:
        encoded = figure.get("png_base64", "")
        try:
            base64.b64decode(encoded, validate=True)
        except ValueError:
            continue  # a figure that is not base64 is listed by title in the JSON, not drawn
        shown.append(
            {
                "title": figure.get("title", ""),
                "caption": figure.get("caption", ""),
                "src": "data:image/png;base64," + encoded,
            }
        )
    return shown


def report_display_context(*, body: dict, signature: dict | None, with_chart: bool = True) -> dict:
    """Return the template context of a report: the body plus what a reader needs it formatted as."""
    summary, timeline, report = body["summary"], body["timeline"], body["report"]
    chart = verification_chart_svg(body["verification"]["results"]) if with_chart else None
    verification_rows = _verification_rows(body["verification"]["results"])
    return {
        "body": body,
        "report": report,
        "summary": summary,
        "signature": signature,
        "is_draft": report["status"] != "issued",
        "frameworks_applied": _framework_labels(summary["frameworks_applied"]),
        "frameworks_decided": _framework_labels(summary["frameworks_decided"]),
        "deadline_label": DEADLINE_LABELS.get(summary["deadline"], summary["deadline"]),
        "deadline_badge": DEADLINE_BADGES.get(summary["deadline"], ""),
        "generated_text": _when(report["generated_at"]),
        "received_text": _when(timeline["received_at"]),
        "first_due_text": _when(timeline["first_due_at"]),
        "due_text": _when(timeline["due_at"]),
        "closed_text": _when(timeline["closed_at"]),
        "extension_until_text": _when((timeline["extension"] or {}).get("until")),
        "extension_notified_text": _when((timeline["extension"] or {}).get("notified_at")),
        "identity_verified_text": _when(body["identity"]["verified_at"]),
        "identified_by_names_only": identified_by_names_only(body["identity"]["identifier_counts"]),
        "events": [{**event, "when": _when(event["occurred_at"])} for event in timeline["events"]],
        "decisions": [
            {
                **decision,
                "frameworks_text": ", ".join(_framework_labels(decision.get("frameworks", []))),
                "methods_text": ", ".join(decision.get("methods", [])) or "—",
                "when": _when(decision.get("decided_at")),
            }
            for decision in body["decisions"]["decisions"]
        ],
        "jobs": _job_rows(body["jobs"]["jobs"]),
        "verification_rows": verification_rows,
        "accepted_rows": _accepted_rows(verification_rows),
        "robustness_rows": [row for row in verification_rows if row["section_label"]],
        "verification_chart": (
            "data:image/svg+xml;base64," + base64.b64encode(chart.encode("utf-8")).decode("ascii")
        )
        if chart
        else None,
        "figures": _figures(body["verification"]["figures"]),
        "search_coverage": [
            {**row, "searched_text": _when(row.get("searched_at"))}
            for row in body["records"]["search_coverage"]
        ],
        "recipients": [
            {**item, "notified_text": _when(item.get("notified_at"))}
            for item in body["recipients"]["recipients"]
        ],
        "none_recorded": NONE_RECORDED,
    }
