"""The deadline line on the officer's list and the status bar of the request page."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from requests_app.deadlines import deadline_line, first_due_at, latest_extended_due_at
from requests_app.models import ErasureRequest, RequestStatus
from requests_app.selectors import erasure_request_workflow_steps

RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)


def test_an_open_request_on_day_ten_stands_a_third_of_the_way_to_its_deadline():
    line = deadline_line(
        received_at=RECEIVED,
        first_due=first_due_at(RECEIVED),
        extended_until=None,
        closed_at=None,
        now=RECEIVED + timedelta(days=10),
    )
    assert line.first_due == 100.0 and line.extended_until is None
    assert 30 < line.now < 35 and not line.overdue and line.late_width == 0.0
    assert line.label == "day 10 of 31"


def test_an_overdue_request_draws_its_late_days_past_the_deadline():
    line = deadline_line(
        received_at=RECEIVED,
        first_due=first_due_at(RECEIVED),
        extended_until=None,
        closed_at=None,
        now=RECEIVED + timedelta(days=40),
    )
    assert line.overdue and line.now == 100.0 and 75 < line.first_due < 80
    assert line.late_width == round(100.0 - line.first_due, 1)
    assert line.label == "day 40 of 31, 9 days late"


def test_an_extension_continues_the_line_past_the_first_deadline():
    line = deadline_line(
        received_at=RECEIVED,
        first_due=first_due_at(RECEIVED),
        extended_until=latest_extended_due_at(RECEIVED),
        closed_at=None,
        now=RECEIVED + timedelta(days=20),
    )
    assert line.extended_until == 100.0 and 30 < line.first_due < 36
    assert line.extension_width == round(100.0 - line.first_due, 1) and not line.overdue
    assert line.label.endswith("(extended)")


def test_the_status_bar_marks_the_current_step_and_what_is_done():
    steps = erasure_request_workflow_steps(erasure_request=ErasureRequest(status=RequestStatus.REVIEW))
    states = {step["status"]: step["state"] for step in steps}
    assert states["received"] == states["locating"] == "done"
    assert states["review"] == "current" and states["completed"] == "todo"
    assert [step["state"] for step in steps].count("current") == 1


def test_a_rejected_request_ends_its_bar_at_the_rejection():
    steps = erasure_request_workflow_steps(erasure_request=ErasureRequest(status=RequestStatus.REJECTED))
    assert steps[-1] == {"status": "rejected", "label": "Rejected", "state": "current"}
    assert {step["state"] for step in steps[:-1]} == {"skipped"}
