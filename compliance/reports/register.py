"""The register of erasure requests (Art. 5(2) accountability, Art. 30 records) as CSV.

One row per request received in the period, with what a supervisory authority asks for: when
and how it came in, on what ground, what happened to it and when, whether the deadline was
met, which frameworks were applied, and the report that certifies it. No identifier of the
person is in the register; the reference leads to the request.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from compliance.models import AuditReport
from compliance.reports import sections
from compliance.reports.providers import ReportProviderError, report_section_prefetch, timestamp
from requests_app.models import ErasureRequest

REGISTER_COLUMNS = (
    "reference",
    "received_at",
    "channel",
    "legal_ground",
    "status",
    "due_at",
    "extended_until",
    "extension_reason",
    "closed_at",
    "deadline_met",
    "rejection_ground",
    "frameworks_applied",
    "report_version",
    "report_issued_at",
    "report_json_sha256",
    "report_pdf_sha256",
)
#: The request fields a register row reads (``deadline_outcome`` needs ``due_at`` and ``status``).
REGISTER_REQUEST_FIELDS = (
    "reference",
    "received_at",
    "channel",
    "legal_ground",
    "status",
    "first_due_at",
    "due_at",
    "extended_until",
    "extension_reason",
    "closed_at",
    "rejection_ground",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
DEADLINE_MET_WORDS = {
    sections.DEADLINE_MET: "yes",
    sections.DEADLINE_MISSED: "no",
    sections.DEADLINE_OPEN: "open",
    sections.DEADLINE_OVERDUE: "overdue (open)",
}


class RegisterPeriodError(ValueError):
    """The period asked for cannot be read or is reversed; the message says how to fix it."""


@dataclass(frozen=True)
class RegisterPeriod:
    start: date | None
    end: date | None

    @property
    def label(self) -> str:
        return f"{self.start.isoformat() if self.start else 'the beginning'} to {self.end.isoformat() if self.end else 'today'}"

    def filename(self) -> str:
        return f"lethe-register_{self.start or 'start'}_{self.end or 'now'}.csv"


def _date(value: str | None, *, name: str) -> date | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RegisterPeriodError(
            f"'{name}' must be a date written YYYY-MM-DD; {text[:20]!r} is not."
        ) from None


def register_period_parse(*, start: str | None, end: str | None) -> RegisterPeriod:
    """Return the period from the ``from`` and ``to`` texts; either may be empty (open-ended)."""
    period = RegisterPeriod(_date(start, name="from"), _date(end, name="to"))
    if period.start and period.end and period.start > period.end:
        raise RegisterPeriodError(
            f"The period ends ({period.end}) before it starts ({period.start}): swap 'from' and 'to'."
        )
    return period


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def register_rows(*, period: RegisterPeriod, now: datetime | None = None) -> list[dict]:
    """Return the register's rows for requests received in ``period`` (whole days, local time)."""

    now = now or timezone.now()
    queryset = ErasureRequest.objects.all()
    zone = timezone.get_current_timezone()
    if period.start:
        queryset = queryset.filter(received_at__gte=datetime.combine(period.start, time.min, tzinfo=zone))
    if period.end:
        queryset = queryset.filter(
            received_at__lt=datetime.combine(period.end + timedelta(days=1), time.min, tzinfo=zone)
        )
    # Only the columns a row shows: a month of a busy controller is hundreds of rows, and the
    # encrypted identifiers and the other timestamps would be read and parsed for nothing.
    requests = list(queryset.order_by("received_at", "pk").only(*REGISTER_REQUEST_FIELDS))
    latest = {}
    for report in (
        AuditReport.objects.filter(erasure_request_id__in=[r.pk for r in requests])
        .defer("pdf_bytes")
        .order_by("erasure_request_id", "version")
    ):
        latest[report.erasure_request_id] = report
    # The jobs of the requests without a report, read for all of them at once (not one query
    # per row: a month of a busy controller is hundreds of rows).
    report_section_prefetch(section="jobs", erasure_requests=[r for r in requests if r.pk not in latest])
    rows = []
    for erasure_request in requests:
        report = latest.get(erasure_request.pk)
        if report is not None:
            frameworks = json.loads(report.json_text)["body"]["summary"]["frameworks_applied"]
        else:
            try:
                frameworks = [
                    name
                    for name in sections.frameworks_applied(sections.report_section_jobs(erasure_request))
                ]
            except ReportProviderError:
                frameworks = ["unavailable"]
        rows.append(
            {
                "reference": erasure_request.reference,
                "received_at": timestamp(erasure_request.received_at),
                "channel": erasure_request.channel,
                "legal_ground": erasure_request.legal_ground,
                "status": erasure_request.status,
                "due_at": timestamp(erasure_request.first_due_at),
                "extended_until": timestamp(erasure_request.extended_until),
                "extension_reason": erasure_request.extension_reason,
                "closed_at": timestamp(erasure_request.closed_at),
                "deadline_met": DEADLINE_MET_WORDS[sections.deadline_outcome(erasure_request, now=now)],
                "rejection_ground": erasure_request.rejection_ground,
                "frameworks_applied": ";".join(sorted(frameworks)),
                "report_version": report.version if report else "",
                "report_issued_at": timestamp(report.issued_at) if report else "",
                "report_json_sha256": report.json_sha256 if report else "",
                "report_pdf_sha256": report.pdf_sha256 if report else "",
            }
        )
    return rows


def register_csv(rows: list[dict]) -> str:
    """Return ``rows`` as CSV text with a header, every cell safe to open in a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(REGISTER_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[column]) for column in REGISTER_COLUMNS])
    return buffer.getvalue()
