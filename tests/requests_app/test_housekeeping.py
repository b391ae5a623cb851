"""Beat tasks: deadline flags with e-mail to the officer, and the purge of old identifiers."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from compliance.models import AuditEvent
from requests_app import services, tasks
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import ErasureRequest, RequestStatus
from requests_app.services import ActionNotPermitted, TransitionNotAllowed
from tests.conftest import wait_for


def _received_days_ago(days):
    return timezone.now() - timedelta(days=days)


def test_overdue_request_is_flagged_after_one_month_and_its_officer_is_emailed_once(
    make_request, officer, mailoutbox, django_capture_on_commit_callbacks
):
    overdue = make_request(received_at=_received_days_ago(40))
    on_time = make_request(
        subject=SubjectIdentifiers(names=("Ada Lovelace",)), received_at=_received_days_ago(2)
    )
    with django_capture_on_commit_callbacks(execute=True):
        flags = services.erasure_requests_flag_deadlines()
    assert flags.overdue == [overdue.reference] and flags.due_soon == []
    assert ErasureRequest.objects.get(pk=overdue.pk).overdue_notified_at is not None
    assert ErasureRequest.objects.get(pk=on_time.pk).overdue_notified_at is None
    [mail] = mailoutbox
    assert mail.to == [officer.email]
    assert overdue.reference in mail.subject and "overdue" in mail.subject
    assert f"/requests/{overdue.pk}/" in mail.body
    assert "John" not in mail.body and "example.com" not in mail.body
    event = AuditEvent.objects.get(action="erasure_request.overdue_flagged")
    assert (event.actor, event.object_id) == (None, str(overdue.pk))

    with django_capture_on_commit_callbacks(execute=True):
        again = services.erasure_requests_flag_deadlines()
    assert again.overdue == [] and len(mailoutbox) == 1


def test_due_soon_is_flagged_once_and_closed_requests_never(
    make_request, request_in, mailoutbox, django_capture_on_commit_callbacks
):
    soon = make_request(received_at=_received_days_ago(26))
    closed = request_in(
        RequestStatus.WITHDRAWN,
        received_at=_received_days_ago(45),
        subject=SubjectIdentifiers(names=("Ada Lovelace",)),
    )
    with django_capture_on_commit_callbacks(execute=True):
        flags = services.erasure_requests_flag_deadlines()
    assert flags.due_soon == [soon.reference] and closed.reference not in flags.overdue
    assert "due soon" in mailoutbox[0].subject


def test_unassigned_overdue_request_is_sent_to_every_officer(
    make_request, officer, mailoutbox, django_capture_on_commit_callbacks
):
    erasure_request = make_request(received_at=_received_days_ago(35))
    services.erasure_request_assign(erasure_request=erasure_request, actor=officer, officer=None)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.flag_overdue()
    assert mailoutbox[0].to == [officer.email]


def test_flagged_overdue_rows_are_highlighted_on_the_list(client, officer, make_request):
    overdue = make_request(received_at=_received_days_ago(40))
    soon = make_request(
        subject=SubjectIdentifiers(names=("Ada Lovelace",)), received_at=_received_days_ago(27)
    )
    later = make_request(
        subject=SubjectIdentifiers(names=("Alan Turing",)), received_at=_received_days_ago(1)
    )
    client.force_login(officer)
    html = client.get("/requests/").content.decode()
    assert f'<tr class="overdue" data-reference="{overdue.reference}">' in html
    assert f'<tr class="due-soon" data-reference="{soon.reference}">' in html
    assert f'<tr class="" data-reference="{later.reference}">' in html
    assert html.index(overdue.reference) < html.index(soon.reference) < html.index(later.reference)


def _closed_long_ago(request_in, officer, days, **kwargs):
    erasure_request = request_in(RequestStatus.COMPLETED, **kwargs)
    ErasureRequest.objects.filter(pk=erasure_request.pk).update(
        closed_at=timezone.now() - timedelta(days=days)
    )
    return erasure_request


def test_purge_erases_identifiers_of_requests_closed_past_retention_and_keeps_hashes(
    request_in, make_request, officer, settings
):
    settings.LETHE_RETENTION_DAYS = 365
    old = _closed_long_ago(request_in, officer, 400)
    recent = _closed_long_ago(request_in, officer, 30, subject=SubjectIdentifiers(names=("Ada Lovelace",)))
    still_open = make_request(
        subject=SubjectIdentifiers(names=("Alan Turing",)), received_at=_received_days_ago(500)
    )
    hashes_before = old.identifier_hashes.count()

    purged = services.erasure_requests_purge_identifiers()

    assert purged == [old.reference]
    old = ErasureRequest.objects.get(pk=old.pk)
    assert old.identifiers_encrypted == "" and old.identifiers_purged_at is not None
    assert old.identity_note == ""
    assert old.identifier_hashes.count() == hashes_before > 0
    assert ErasureRequest.objects.get(pk=recent.pk).identifiers_encrypted
    assert ErasureRequest.objects.get(pk=still_open.pk).identifiers_encrypted
    event = AuditEvent.objects.get(action="erasure_request.identifiers_purged")
    assert event.details["hashes_kept"] == hashes_before and event.object_id == str(old.pk)
    with pytest.raises(TransitionNotAllowed, match="purged"):
        services.erasure_request_reveal_identifiers(erasure_request=old, actor=officer)
    assert services.erasure_requests_purge_identifiers() == []


def test_purge_command_and_task_use_the_retention_setting(request_in, officer, settings, capsys):
    settings.LETHE_RETENTION_DAYS = 10
    erasure_request = _closed_long_ago(request_in, officer, 11)
    call_command("purge_identifiers", "--retention-days", "30")
    assert "No closed request" in capsys.readouterr().out
    assert tasks.purge_identifiers() == {"purged": 1}
    assert ErasureRequest.objects.get(pk=erasure_request.pk).identifiers_purged_at is not None


def test_purge_by_hand_needs_an_officer(auditor):
    with pytest.raises(ActionNotPermitted):
        services.erasure_requests_purge_identifiers(actor=auditor)


def test_purged_request_page_says_what_remains(client, request_in, officer):
    erasure_request = _closed_long_ago(request_in, officer, 400)
    services.erasure_requests_purge_identifiers()
    client.force_login(officer)
    html = client.get(f"/requests/{erasure_request.pk}/").content.decode()
    assert "Purged on" in html and "keyed hashes remain" in html
    assert "Reveal identifiers" not in html


def test_beat_runs_both_tasks_on_the_cpu_queue():
    from compliance.celery import app

    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"requests_app.flag_overdue", "requests_app.purge_identifiers"} <= scheduled
    for name in ("requests_app.flag_overdue", "requests_app.purge_identifiers"):
        assert app.amqp.router.route({}, name)["queue"].name == "cpu"


@pytest.mark.worker
def test_real_worker_flags_an_overdue_request(celery_worker, officer, settings):
    from requests_app.services import erasure_request_create

    erasure_request = erasure_request_create(
        subject=SubjectIdentifiers(names=("Grace Hopper",)),
        legal_ground="art17_1_b",
        actor=officer,
        received_at=_received_days_ago(45),
    )
    tasks.flag_overdue.delay()
    wait_for(
        lambda: ErasureRequest.objects.filter(
            pk=erasure_request.pk, overdue_notified_at__isnull=False
        ).exists(),
        timeout=60,
        what=f"the overdue flag; worker log:\n{celery_worker.log_tail()}",
    )
    assert AuditEvent.objects.filter(
        action="erasure_request.overdue_flagged", object_id=str(erasure_request.pk)
    ).exists()
