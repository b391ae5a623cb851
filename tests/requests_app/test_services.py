"""The state machine: every step from every status, roles, audit events, atomicity."""

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.models import AuditEvent
from requests_app import services
from requests_app.models import (
    CLOSED_STATUSES,
    ErasureRequest,
    IdentityMethod,
    RejectionGround,
    RequestStatus,
)
from requests_app.services import ActionNotPermitted, ErasureRequestError, TransitionNotAllowed
from tests.requests_app.conftest import PATH_TO, take_step

# Each status-changing step: the statuses it may start from, and where it leads.
OPEN = {s for s in RequestStatus if s not in CLOSED_STATUSES}
EXPECTED = {
    "verify_identity": ({RequestStatus.RECEIVED}, RequestStatus.IDENTITY_VERIFICATION),
    "start_locating": ({RequestStatus.IDENTITY_VERIFICATION, RequestStatus.REVIEW}, RequestStatus.LOCATING),
    "submit_for_review": ({RequestStatus.LOCATING}, RequestStatus.REVIEW),
    "approve": ({RequestStatus.REVIEW}, RequestStatus.APPROVED),
    "start_executing": ({RequestStatus.APPROVED}, RequestStatus.EXECUTING),
    "start_verifying": ({RequestStatus.EXECUTING}, RequestStatus.VERIFYING),
    "complete": ({RequestStatus.VERIFYING}, RequestStatus.COMPLETED),
    "reject": (OPEN, RequestStatus.REJECTED),
    "withdraw": (OPEN, RequestStatus.WITHDRAWN),
}
CASES = [(step, status) for step in EXPECTED for status in RequestStatus]


def _events(erasure_request):
    return list(
        AuditEvent.objects.filter(
            object_type="requests_app.erasurerequest", object_id=str(erasure_request.pk)
        ).order_by("sequence")
    )


@pytest.mark.parametrize("step,status", CASES, ids=[f"{s}-from-{t.value}" for s, t in CASES])
def test_every_step_from_every_status_is_allowed_or_refused_as_the_life_cycle_says(
    request_in, officer, step, status
):
    erasure_request = request_in(status)
    allowed_from, to_status = EXPECTED[step]
    events_before = len(_events(erasure_request))
    if status in allowed_from:
        updated = take_step(step, erasure_request, officer)
        assert updated.status == to_status
        assert ErasureRequest.objects.get(pk=erasure_request.pk).status == to_status
        last = _events(erasure_request)[-1]
        assert len(_events(erasure_request)) == events_before + 1
        assert (last.details["from_status"], last.details["to_status"]) == (status, to_status)
        assert last.actor == officer
        if to_status in CLOSED_STATUSES:
            assert updated.closed_at is not None
    else:
        before = ErasureRequest.objects.get(pk=erasure_request.pk)
        with pytest.raises(TransitionNotAllowed) as refused:
            take_step(step, erasure_request, officer)
        assert erasure_request.reference in str(refused.value)
        after = ErasureRequest.objects.get(pk=erasure_request.pk)
        assert (after.status, after.updated_at) == (before.status, before.updated_at)
        assert len(_events(erasure_request)) == events_before


def test_a_new_request_is_received_with_a_reference_a_deadline_and_an_audit_event(make_request, officer):
    received = timezone.now() - timedelta(days=3)
    erasure_request = make_request(received_at=received)
    assert erasure_request.status == RequestStatus.RECEIVED
    assert erasure_request.reference == f"ER-{timezone.localtime(received).year}-000001"
    assert erasure_request.due_at == erasure_request.first_due_at > received
    assert erasure_request.assigned_officer == officer
    [created] = _events(erasure_request)
    assert created.action == "erasure_request.created"
    assert created.details["identifier_counts"] == {
        "names": 2,
        "emails": 1,
        "phones": 1,
        "addresses": 1,
        "account_ids": 1,
    }


def test_references_count_up_within_a_year_and_restart_in_the_next(make_request):
    first = make_request(received_at=timezone.make_aware(timezone.datetime(2025, 12, 30, 10)))
    second = make_request(received_at=timezone.make_aware(timezone.datetime(2025, 12, 31, 10)))
    third = make_request(received_at=timezone.now())
    assert (first.reference, second.reference) == ("ER-2025-000001", "ER-2025-000002")
    assert third.reference == f"ER-{timezone.localtime().year}-000001"


def test_nothing_downstream_can_start_before_identity_is_verified(make_request, officer):
    erasure_request = make_request()
    for step in (
        "start_locating",
        "submit_for_review",
        "approve",
        "start_executing",
        "start_verifying",
        "complete",
    ):
        with pytest.raises(TransitionNotAllowed):
            take_step(step, erasure_request, officer)
    assert ErasureRequest.objects.get(pk=erasure_request.pk).status == RequestStatus.RECEIVED


def test_identity_gate_holds_even_if_a_row_reaches_a_later_status_unverified(make_request, officer):
    erasure_request = make_request()
    ErasureRequest.objects.filter(pk=erasure_request.pk).update(status=RequestStatus.REVIEW)
    with pytest.raises(TransitionNotAllowed, match="identity has not been verified"):
        services.erasure_request_approve(erasure_request=erasure_request, actor=officer)


def test_identity_verification_records_method_who_when_and_keeps_the_note_out_of_the_log(
    make_request, officer
):
    erasure_request = make_request(received_at=timezone.now() - timedelta(days=2))
    when = timezone.now() - timedelta(minutes=5)
    verified = services.erasure_request_verify_identity(
        erasure_request=erasure_request,
        actor=officer,
        method=IdentityMethod.DOCUMENT_SEEN,
        note="Passport seen at the front desk",
        verified_at=when,
    )
    assert (verified.identity_method, verified.identity_verified_by, verified.identity_verified_at) == (
        IdentityMethod.DOCUMENT_SEEN,
        officer,
        when,
    )
    event = _events(verified)[-1]
    assert event.details["note_given"] is True
    assert "Passport" not in str(event.details)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"method": "carrier_pigeon"}, "method"),
        ({"method": IdentityMethod.OTHER, "note": ""}, "note"),
        (
            {"method": IdentityMethod.EMAIL_LINK, "verified_at": timezone.now() + timedelta(days=1)},
            "verified_at",
        ),
        ({"method": IdentityMethod.EMAIL_LINK, "note": "x" * 2001}, "note"),
    ],
)
def test_bad_identity_verification_is_refused_on_its_field(make_request, officer, kwargs, field):
    erasure_request = make_request()
    with pytest.raises(ErasureRequestError) as refused:
        services.erasure_request_verify_identity(erasure_request=erasure_request, actor=officer, **kwargs)
    assert field in refused.value.message_dict
    assert ErasureRequest.objects.get(pk=erasure_request.pk).status == RequestStatus.RECEIVED


def test_verification_cannot_predate_receipt(make_request, officer):
    erasure_request = make_request(received_at=timezone.now() - timedelta(days=1))
    with pytest.raises(ErasureRequestError) as refused:
        services.erasure_request_verify_identity(
            erasure_request=erasure_request,
            actor=officer,
            method=IdentityMethod.EMAIL_LINK,
            verified_at=timezone.now() - timedelta(days=2),
        )
    assert "verified_at" in refused.value.message_dict


@pytest.mark.parametrize("username", ["auditor", "engineer"])
@pytest.mark.parametrize("step", list(EXPECTED))
def test_only_officers_may_take_a_step(request_in, role_users, username, step):
    allowed_from, _ = EXPECTED[step]
    status = sorted(allowed_from)[0]
    erasure_request = request_in(status)
    events_before = len(_events(erasure_request))
    with pytest.raises(ActionNotPermitted):
        take_step(step, erasure_request, role_users[username])
    assert ErasureRequest.objects.get(pk=erasure_request.pk).status == status
    assert len(_events(erasure_request)) == events_before


@pytest.mark.parametrize("username", ["auditor", "engineer"])
def test_only_officers_may_record_a_request(role_users, make_request, username):
    with pytest.raises(ActionNotPermitted):
        make_request(actor=role_users[username])
    assert not ErasureRequest.objects.exists()


def test_the_system_may_move_jobs_along_but_never_decide(request_in):
    approved = request_in(RequestStatus.APPROVED)
    executing = services.erasure_request_start_executing(erasure_request=approved, actor=None)
    verifying = services.erasure_request_start_verifying(erasure_request=executing, actor=None)
    completed = services.erasure_request_complete(erasure_request=verifying, actor=None)
    assert completed.status == RequestStatus.COMPLETED
    assert _events(completed)[-1].actor_label == "system"
    reviewed = request_in(RequestStatus.REVIEW)
    with pytest.raises(ActionNotPermitted):
        services.erasure_request_approve(erasure_request=reviewed, actor=None)
    with pytest.raises(ActionNotPermitted):
        services.erasure_request_reject(
            erasure_request=reviewed, actor=None, ground=RejectionGround.EXCESSIVE, explanation="x"
        )


def test_a_failing_audit_write_leaves_the_request_unchanged(make_request, officer, monkeypatch):
    erasure_request = make_request()

    def broken_audit(**kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(services, "audit_event_record", broken_audit)
    with pytest.raises(RuntimeError):
        services.erasure_request_verify_identity(
            erasure_request=erasure_request, actor=officer, method=IdentityMethod.EMAIL_LINK
        )
    fresh = ErasureRequest.objects.get(pk=erasure_request.pk)
    assert fresh.status == RequestStatus.RECEIVED and fresh.identity_verified_at is None


PLAN_READY = {"value": False}


def job_plan_exists(erasure_request):
    """A check on "approve" (listed by the test below) that waits for a plan."""
    return None if PLAN_READY["value"] else "Decide the frameworks for every model version first."


def test_listed_checks_hold_a_transition_until_they_are_met(request_in, officer, settings):
    settings.LETHE_TRANSITION_CHECKS = {"approve": [f"{__name__}.job_plan_exists"]}
    reviewed = request_in(RequestStatus.REVIEW)
    PLAN_READY["value"] = False
    with pytest.raises(TransitionNotAllowed, match="Decide the frameworks"):
        services.erasure_request_approve(erasure_request=reviewed, actor=officer)
    PLAN_READY["value"] = True
    assert services.erasure_request_approve(erasure_request=reviewed, actor=officer).status == "approved"


def test_a_check_that_cannot_be_imported_is_a_configuration_error(request_in, officer, settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.LETHE_TRANSITION_CHECKS = {"approve": ["requests_app.nowhere.fly_to_the_moon"]}
    with pytest.raises(ImproperlyConfigured, match="fly_to_the_moon"):
        services.erasure_request_approve(erasure_request=request_in(RequestStatus.REVIEW), actor=officer)


def test_rejection_records_the_ground_and_writes_a_reply_with_the_right_to_complain(make_request, officer):
    erasure_request = make_request()
    rejected = services.erasure_request_reject(
        erasure_request=erasure_request,
        actor=officer,
        ground=RejectionGround.ARCHIVING_RESEARCH,
        explanation="The records are held in a public-interest archive.",
    )
    reply = rejected.rejection_reply
    assert rejected.status == RequestStatus.REJECTED
    assert "Art. 17(3)(d)" in reply and "public-interest archive" in reply
    assert "complaint with a supervisory authority" in reply and "judicial remedy" in reply
    assert rejected.reference in reply
    assert "John" not in reply and "example.com" not in reply
    assert _events(rejected)[-1].details["ground"] == RejectionGround.ARCHIVING_RESEARCH


def test_rejection_reply_names_the_configured_authority(make_request, officer, settings):
    settings.LETHE_SUPERVISORY_AUTHORITY = "the Information Commissioner's Office (ico.org.uk)"
    rejected = services.erasure_request_reject(
        erasure_request=make_request(),
        actor=officer,
        ground=RejectionGround.MANIFESTLY_UNFOUNDED,
        explanation="The same request was answered last week.",
    )
    assert "Information Commissioner's Office" in rejected.rejection_reply
    assert "Art. 12(5)" in rejected.rejection_reply


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"ground": "art17_3_z", "explanation": "x"}, "ground"),
        ({"ground": RejectionGround.LEGAL_CLAIMS, "explanation": "   "}, "explanation"),
        ({"ground": RejectionGround.LEGAL_CLAIMS, "explanation": "x" * 4001}, "explanation"),
    ],
)
def test_bad_rejection_is_refused_on_its_field(make_request, officer, kwargs, field):
    erasure_request = make_request()
    with pytest.raises(ErasureRequestError) as refused:
        services.erasure_request_reject(erasure_request=erasure_request, actor=officer, **kwargs)
    assert field in refused.value.message_dict
    assert ErasureRequest.objects.get(pk=erasure_request.pk).status == RequestStatus.RECEIVED


def test_withdrawal_closes_the_request_from_any_open_status(request_in, officer):
    executing = request_in(RequestStatus.EXECUTING)
    withdrawn = services.erasure_request_withdraw(
        erasure_request=executing, actor=officer, note="The person wrote to withdraw."
    )
    assert withdrawn.status == RequestStatus.WITHDRAWN and withdrawn.closed_at
    assert not withdrawn.is_open


def test_assignment_goes_to_officers_only(make_request, officer, auditor, django_user_model):
    from django.contrib.auth.models import Group

    erasure_request = make_request()
    colleague = django_user_model.objects.create_user("colleague", password="pw-123456789")
    colleague.groups.add(Group.objects.get(name="privacy_officer"))
    assigned = services.erasure_request_assign(
        erasure_request=erasure_request, actor=officer, officer=colleague
    )
    assert assigned.assigned_officer == colleague
    assert _events(assigned)[-1].details == {
        "reference": assigned.reference,
        "from_status": "received",
        "to_status": "received",
        "previous_officer": "officer",
        "officer": "colleague",
    }
    with pytest.raises(ErasureRequestError) as refused:
        services.erasure_request_assign(erasure_request=erasure_request, actor=officer, officer=auditor)
    assert "officer" in refused.value.message_dict
    assert ErasureRequest.objects.get(pk=erasure_request.pk).assigned_officer == colleague
    unassigned = services.erasure_request_assign(erasure_request=erasure_request, actor=officer, officer=None)
    assert unassigned.assigned_officer is None


def test_scope_can_name_data_sets_and_models_until_approval(request_in, officer):
    reviewed = request_in(RequestStatus.REVIEW)
    scoped = services.erasure_request_set_scope(
        erasure_request=reviewed, actor=officer, scope_all=False, dataset_ids=[3, 1, 3], model_version_ids=[7]
    )
    assert (scoped.scope_all, scoped.scope_dataset_ids, scoped.scope_model_version_ids) == (
        False,
        [3, 1],
        [7],
    )
    with pytest.raises(ErasureRequestError):
        services.erasure_request_set_scope(erasure_request=reviewed, actor=officer, scope_all=False)
    with pytest.raises(ErasureRequestError):
        services.erasure_request_set_scope(
            erasure_request=reviewed, actor=officer, scope_all=False, dataset_ids=[0]
        )
    approved = services.erasure_request_approve(erasure_request=scoped, actor=officer)
    with pytest.raises(TransitionNotAllowed):
        services.erasure_request_set_scope(erasure_request=approved, actor=officer, scope_all=True)


def test_a_stale_instance_cannot_skip_the_state_check(make_request, officer):
    erasure_request = make_request()
    stale = ErasureRequest.objects.get(pk=erasure_request.pk)
    services.erasure_request_withdraw(erasure_request=erasure_request, actor=officer)
    with pytest.raises(TransitionNotAllowed):
        services.erasure_request_verify_identity(
            erasure_request=stale, actor=officer, method=IdentityMethod.EMAIL_LINK
        )
    assert ErasureRequest.objects.get(pk=erasure_request.pk).status == RequestStatus.WITHDRAWN


def test_every_life_cycle_path_in_the_fixture_matches_the_rules():
    for status, steps in PATH_TO.items():
        current = RequestStatus.RECEIVED
        for step in steps:
            allowed_from, to_status = EXPECTED[step]
            assert current in allowed_from
            current = to_status
        assert current == status


def _side_step(step, erasure_request, officer):
    if step == "extend_deadline":
        return services.erasure_request_extend_deadline(
            erasure_request=erasure_request,
            actor=officer,
            until=erasure_request.first_due_at + timedelta(days=10),
            reason="Complex request",
        )
    if step == "assign":
        return services.erasure_request_assign(erasure_request=erasure_request, actor=officer, officer=None)
    if step == "set_scope":
        return services.erasure_request_set_scope(
            erasure_request=erasure_request, actor=officer, scope_all=False, dataset_ids=[1]
        )
    return services.erasure_request_reveal_identifiers(erasure_request=erasure_request, actor=officer)


SIDE_STEPS = {
    "extend_deadline": OPEN,
    "assign": OPEN,
    "set_scope": {
        RequestStatus.RECEIVED,
        RequestStatus.IDENTITY_VERIFICATION,
        RequestStatus.LOCATING,
        RequestStatus.REVIEW,
    },
    "reveal_identifiers": set(RequestStatus),
}
SIDE_CASES = [(step, status) for step in SIDE_STEPS for status in RequestStatus]


@pytest.mark.parametrize("step,status", SIDE_CASES, ids=[f"{s}-in-{t.value}" for s, t in SIDE_CASES])
def test_steps_that_keep_the_status_are_allowed_only_where_the_rules_say(request_in, officer, step, status):
    erasure_request = request_in(status)
    events_before = len(_events(erasure_request))
    if status in SIDE_STEPS[step]:
        _side_step(step, erasure_request, officer)
        assert ErasureRequest.objects.get(pk=erasure_request.pk).status == status
        assert len(_events(erasure_request)) == events_before + 1
    else:
        before = ErasureRequest.objects.get(pk=erasure_request.pk)
        with pytest.raises(TransitionNotAllowed):
            _side_step(step, erasure_request, officer)
        after = ErasureRequest.objects.get(pk=erasure_request.pk)
        assert (after.due_at, after.assigned_officer_id, after.scope_all) == (
            before.due_at,
            before.assigned_officer_id,
            before.scope_all,
        )
        assert len(_events(erasure_request)) == events_before
