"""Legal deadlines of an erasure request (Art. 12(3)).

One calendar month from receipt, which a month-end receipt clips to the shorter month's last day
(31 January → 28 or 29 February); one extension of up to two further months, decided before
the first month ends. Arithmetic is in the project's time zone, so that "one month" means the
same wall-clock time on the calendar day an officer would count to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.utils import timezone

FIRST_PERIOD_MONTHS = 1
EXTENSION_MAX_MONTHS = 2

URGENCY_OVERDUE = "overdue"
URGENCY_DUE_SOON = "due-soon"


def add_calendar_months(moment: datetime, months: int) -> datetime:
    """Return ``moment`` plus ``months`` calendar months, clipped to the last day of a short month.

    Aware datetimes are moved in the current time zone and converted back, so a deadline keeps
    its local time of day across a daylight-saving change.
    """
    if timezone.is_aware(moment):
        # Python adds to an aware datetime on the wall clock of its own zone.
        return timezone.localtime(moment) + relativedelta(months=months)
    return moment + relativedelta(months=months)


def first_due_at(received_at: datetime) -> datetime:
    """Return the deadline without extension: one calendar month after receipt."""
    return add_calendar_months(received_at, FIRST_PERIOD_MONTHS)


def latest_extended_due_at(received_at: datetime) -> datetime:
    """Return the furthest a deadline may be extended to: three calendar months after receipt.

    Counted from receipt rather than from the first deadline, so a receipt on 31 January may be
    extended to 30 April, not only to 28 April.
    """
    return add_calendar_months(received_at, FIRST_PERIOD_MONTHS + EXTENSION_MAX_MONTHS)


@dataclass(frozen=True)
class ExtensionProblem:
    field: str
    message: str


def extension_problems(
    *, received_at: datetime, first_due: datetime, already_extended: bool, until: datetime, now: datetime
) -> list[ExtensionProblem]:
    """Return why an extension to ``until`` decided at ``now`` is not allowed (empty: allowed)."""
    problems = []
    if already_extended:
        problems.append(
            ExtensionProblem(
                "until", "The deadline has already been extended once; Art. 12(3) allows one extension."
            )
        )
    if now >= first_due:
        problems.append(
            ExtensionProblem(
                "until",
                f"An extension must be decided before the first month ends "
                f"({timezone.localtime(first_due):%Y-%m-%d %H:%M}); that moment has passed.",
            )
        )
    latest = latest_extended_due_at(received_at)
    if until <= first_due:
        problems.append(
            ExtensionProblem(
                "until",
                f"The new deadline must be after the current one "
                f"({timezone.localtime(first_due):%Y-%m-%d %H:%M}).",
            )
        )
    elif until > latest:
        problems.append(
            ExtensionProblem(
                "until",
                f"An extension may add at most two further months: the latest possible deadline is "
                f"{timezone.localtime(latest):%Y-%m-%d %H:%M}.",
            )
        )
    return problems


def due_soon_window() -> timedelta:
    """Return how far ahead a deadline counts as due soon (``LETHE_DUE_SOON_DAYS``, default 7)."""
    return timedelta(days=settings.LETHE_DUE_SOON_DAYS)


def urgency(*, due_at: datetime, is_open: bool, now: datetime) -> str:
    """Return ``"overdue"``, ``"due-soon"`` or ``""``: also the CSS class of the request's row."""
    if not is_open:
        return ""
    if due_at <= now:
        return URGENCY_OVERDUE
    if due_at <= now + due_soon_window():
        return URGENCY_DUE_SOON
    return ""


@dataclass(frozen=True)
class DeadlineLine:
    """Where a request stands on its deadline, as shares (0-100) of the line drawn on the officer's list.

    The line runs from receipt to the later of the deadline in force and now (or the closing).
    """

    first_due: float
    extended_until: float | None
    now: float
    overdue: bool
    label: str

    @property
    def extension_width(self) -> float:
        return round((self.extended_until or self.first_due) - self.first_due, 1)

    @property
    def due(self) -> float:
        """Where the deadline in force is."""
        return self.extended_until if self.extended_until is not None else self.first_due

    @property
    def late_width(self) -> float:
        return round(max(self.now - self.due, 0.0), 1) if self.overdue else 0.0


def deadline_line(
    *,
    received_at: datetime,
    first_due: datetime,
    extended_until: datetime | None,
    closed_at: datetime | None,
    now: datetime,
) -> DeadlineLine:
    """Return the positions of the first deadline, the extension and now (or the closing) on a line."""
    until = extended_until or first_due
    moment = closed_at or now
    end = max(until, moment)
    span = max((end - received_at).total_seconds(), 1.0)

    def share(when: datetime) -> float:
        return round(min(max((when - received_at).total_seconds() / span, 0.0), 1.0) * 100, 1)

    days = max(int((moment - received_at).total_seconds() // 86400), 0)
    total_days = max(int((until - received_at).total_seconds() // 86400), 1)
    overdue = moment > until
    label = (
        f"day {days} of {total_days}"
        + (" (extended)" if extended_until else "")
        + (f", {days - total_days} days late" if overdue else "")
        + (", closed" if closed_at else "")
    )
    return DeadlineLine(
        first_due=share(first_due),
        extended_until=share(extended_until) if extended_until else None,
        now=share(moment),
        overdue=overdue,
        label=label,
    )
