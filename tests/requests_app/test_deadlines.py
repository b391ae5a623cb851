"""Deadline arithmetic (Art. 12(3)) across month ends, leap years and time zones; extensions."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from requests_app import deadlines, services
from requests_app.models import ErasureRequest, RequestStatus
from requests_app.services import ErasureRequestError, TransitionNotAllowed

UTC = ZoneInfo("UTC")


def at(year, month, day, hour=9, minute=30, tz=UTC):
    return datetime(year, month, day, hour, minute, tzinfo=tz)


@pytest.mark.parametrize(
    "received,due",
    [
        (at(2026, 1, 31), at(2026, 2, 28)),  # 31 January → end of a common February
        (at(2028, 1, 31), at(2028, 2, 29)),  # … of a leap February
        (at(2024, 1, 30), at(2024, 2, 29)),
        (at(2100, 1, 29), at(2100, 2, 28)),  # 2100 is not a leap year
        (at(2026, 3, 31), at(2026, 4, 30)),
        (at(2026, 8, 31), at(2026, 9, 30)),
        (at(2026, 12, 15), at(2027, 1, 15)),  # across the year end
        (at(2026, 12, 31), at(2027, 1, 31)),
        (at(2028, 2, 29), at(2028, 3, 29)),  # from a leap day
        (at(2026, 2, 28), at(2026, 3, 28)),
        (at(2026, 6, 15, 23, 59), at(2026, 7, 15, 23, 59)),
    ],
)
def test_deadline_is_one_calendar_month_after_receipt(settings, received, due):
    settings.TIME_ZONE = "UTC"
    assert deadlines.first_due_at(received) == due


def test_a_month_keeps_the_local_time_across_a_daylight_saving_change(settings):
    settings.TIME_ZONE = "Europe/London"
    london = ZoneInfo("Europe/London")
    received = datetime(2026, 3, 10, 9, 0, tzinfo=london)  # GMT; due after clocks go forward
    due = deadlines.first_due_at(received)
    assert due.astimezone(london).replace(tzinfo=None) == datetime(2026, 4, 10, 9, 0)
    assert due.astimezone(UTC) - received.astimezone(UTC) == timedelta(days=31) - timedelta(hours=1)


def test_month_is_counted_in_the_local_calendar(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    # 31 January 23:30 UTC is already 1 February in Berlin: due 1 March there, not 28 February.
    due = deadlines.first_due_at(at(2026, 1, 31, 23, 30))
    assert due.astimezone(ZoneInfo("Europe/Berlin")).date().isoformat() == "2026-03-01"


@pytest.mark.parametrize(
    "received,latest",
    [
        (at(2026, 1, 31), at(2026, 4, 30)),
        (at(2027, 11, 30), at(2028, 2, 29)),
        (at(2026, 11, 30), at(2027, 2, 28)),
        (at(2026, 5, 10), at(2026, 8, 10)),
    ],
)
def test_an_extension_reaches_at_most_three_months_after_receipt(settings, received, latest):
    settings.TIME_ZONE = "UTC"
    assert deadlines.latest_extended_due_at(received) == latest


def test_extension_rules_name_every_problem():
    received = at(2026, 1, 31)
    first_due = deadlines.first_due_at(received)
    ok = deadlines.extension_problems(
        received_at=received,
        first_due=first_due,
        already_extended=False,
        until=at(2026, 4, 30),
        now=at(2026, 2, 10),
    )
    assert ok == []
    too_far = deadlines.extension_problems(
        received_at=received,
        first_due=first_due,
        already_extended=False,
        until=at(2026, 4, 30, 9, 31),
        now=at(2026, 2, 10),
    )
    assert [p.message for p in too_far] == [
        "An extension may add at most two further months: the latest possible deadline is 2026-04-30 09:30."
    ]
    late_and_twice = deadlines.extension_problems(
        received_at=received, first_due=first_due, already_extended=True, until=at(2026, 3, 30), now=first_due
    )
    assert len(late_and_twice) == 2
    backwards = deadlines.extension_problems(
        received_at=received, first_due=first_due, already_extended=False, until=first_due, now=at(2026, 2, 1)
    )
    assert "after the current one" in backwards[0].message


def test_urgency_marks_overdue_and_due_within_seven_days_of_open_requests_only():
    now = at(2026, 5, 1)
    assert deadlines.urgency(due_at=now - timedelta(minutes=1), is_open=True, now=now) == "overdue"
    assert deadlines.urgency(due_at=now + timedelta(days=7), is_open=True, now=now) == "due-soon"
    assert deadlines.urgency(due_at=now + timedelta(days=7, seconds=1), is_open=True, now=now) == ""
    assert deadlines.urgency(due_at=now - timedelta(days=3), is_open=False, now=now) == ""


# --- the extension step on a request --------------------------------------------------------


def test_officer_extends_once_with_a_reason_before_the_first_month_ends(make_request, officer):
    received = timezone.now() - timedelta(days=10)
    erasure_request = make_request(received_at=received)
    until = deadlines.latest_extended_due_at(received)
    extended = services.erasure_request_extend_deadline(
        erasure_request=erasure_request,
        actor=officer,
        until=until,
        reason="Records spread over 14 data sets; complex request.",
    )
    assert extended.due_at == extended.extended_until == until
    assert extended.first_due_at == deadlines.first_due_at(received)
    assert extended.extension_reason.startswith("Records spread")
    assert extended.extension_notified_at is not None
    assert extended.status == RequestStatus.RECEIVED
    with pytest.raises(ErasureRequestError, match="already been extended"):
        services.erasure_request_extend_deadline(
            erasure_request=extended, actor=officer, until=until - timedelta(days=1), reason="Again"
        )


@pytest.mark.parametrize(
    "days_ago,until_shift,reason,field",
    [
        (40, timedelta(days=10), "Complex", "until"),  # after the first month
        (10, timedelta(days=1), "Complex", "until"),  # beyond two further months
        (10, -timedelta(days=100), "Complex", "until"),  # before the current deadline
        (10, timedelta(0), "   ", "reason"),  # no reason
        (10, timedelta(0), "x" * 2001, "reason"),  # oversized reason
    ],
)
def test_bad_extension_is_refused_on_its_field_and_changes_nothing(
    make_request, officer, days_ago, until_shift, reason, field
):
    received = timezone.now() - timedelta(days=days_ago)
    erasure_request = make_request(received_at=received)
    until = deadlines.latest_extended_due_at(received) + until_shift
    with pytest.raises(ErasureRequestError) as refused:
        services.erasure_request_extend_deadline(
            erasure_request=erasure_request, actor=officer, until=until, reason=reason
        )
    assert field in refused.value.message_dict
    fresh = ErasureRequest.objects.get(pk=erasure_request.pk)
    assert fresh.extended_until is None and fresh.due_at == fresh.first_due_at


def test_a_closed_request_cannot_be_extended(request_in, officer):
    withdrawn = request_in(RequestStatus.WITHDRAWN)
    with pytest.raises(TransitionNotAllowed):
        services.erasure_request_extend_deadline(
            erasure_request=withdrawn,
            actor=officer,
            until=withdrawn.first_due_at + timedelta(days=5),
            reason="Too late",
        )


def test_received_at_in_the_future_is_refused(make_request):
    with pytest.raises(ErasureRequestError) as refused:
        make_request(received_at=timezone.now() + timedelta(hours=1))
    assert "received_at" in refused.value.message_dict
    assert not ErasureRequest.objects.exists()
