"""Property tests of the officer's forms, through the real pages: arbitrary input never gives a 500.

Hypothesis fills the "new request" form and each action form of a request with anything:
control characters, NUL bytes, huge text, unicode digits in id lists, dates that are not dates,
choices that do not exist. Every answer is the page with form errors (400, or 409 when the
state forbids the step) and nothing saved, or a success with exactly what the service writes.
Each call runs in a savepoint that is rolled back, so the examples are independent.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.models import AuditEvent
from requests_app.models import ErasureRequest
from requests_app.views import PAGE_ACTIONS

pytestmark = [pytest.mark.django_db]

FORM_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "\x1b[31m",
            "\u202e",
            "<script>alert(1)</script>",
            "' OR 1=1 --",
            "²",
            "١٢",
            "99999999999999999999999",
            "-1",
            "1, 2, ²",
            "0",
            "2026-13-45T25:61",
            "2026-01-01T10:00",
            "x" * 5000,
        ]
    ),
)
TEXT_OR_NOTHING = st.one_of(st.none(), HOSTILE_TEXT)


def _form_data(fields: dict) -> dict:
    return {name: value for name, value in fields.items() if value is not None}


def _post_in_savepoint(client: Client, path: str, data: dict):
    """POST ``data`` and return ``(status, requests created, audit events written)``, then roll back."""
    with transaction.atomic():
        requests_before, events_before = ErasureRequest.objects.count(), AuditEvent.objects.count()
        response = client.post(path, data)
        created = ErasureRequest.objects.count() - requests_before
        events = AuditEvent.objects.count() - events_before
        transaction.set_rollback(True)
    return response.status_code, created, events


@pytest.fixture
def officer_client(officer):
    client = Client()
    client.force_login(officer)
    return client


@FORM_SETTINGS
@given(
    fields=st.fixed_dictionaries(
        {
            "received_at": TEXT_OR_NOTHING,
            "channel": st.one_of(st.just("email"), TEXT_OR_NOTHING),
            "legal_ground": st.one_of(st.just("art17_1_b"), TEXT_OR_NOTHING),
            "names": TEXT_OR_NOTHING,
            "emails": TEXT_OR_NOTHING,
            "phones": TEXT_OR_NOTHING,
            "addresses": TEXT_OR_NOTHING,
            "account_ids": TEXT_OR_NOTHING,
            "assigned_officer": TEXT_OR_NOTHING,
            "scope_all": TEXT_OR_NOTHING,
            "scope_dataset_ids": TEXT_OR_NOTHING,
            "scope_model_version_ids": TEXT_OR_NOTHING,
        }
    )
)
def test_the_new_request_form_answers_any_input_with_errors_or_one_request(officer_client, fields):
    status, created, events = _post_in_savepoint(officer_client, "/requests/new/", _form_data(fields))
    if status == 302:
        assert created == 1 and events >= 1
    else:
        assert status == 400 and created == 0 and events == 0


@pytest.fixture
def received_request(officer):
    from requests_app import services
    from requests_app.identifiers import SubjectIdentifiers
    from requests_app.models import LegalGround

    return services.erasure_request_create(
        subject=SubjectIdentifiers(names=("Ada Quill",), emails=("ada.quill@example.org",)),
        legal_ground=LegalGround.CONSENT_WITHDRAWN,
        actor=officer,
    )


ACTION_FIELDS = (
    "note",
    "method",
    "verified_at",
    "until",
    "reason",
    "notified_at",
    "ground",
    "explanation",
    "officer",
    "scope_all",
    "scope_dataset_ids",
    "scope_model_version_ids",
)


@FORM_SETTINGS
@given(
    action=st.sampled_from(sorted(PAGE_ACTIONS)),
    fields=st.fixed_dictionaries({name: TEXT_OR_NOTHING for name in ACTION_FIELDS}),
)
def test_an_action_form_answers_any_input_with_errors_or_the_step(
    officer_client, received_request, action, fields
):
    data = {f"{action}-{name}": value for name, value in _form_data(fields).items()}
    with transaction.atomic():
        before = ErasureRequest.objects.values_list("status", "updated_at").get(pk=received_request.pk)
        events_before = AuditEvent.objects.count()
        response = officer_client.post(f"/requests/{received_request.pk}/actions/{action}/", data)
        after = ErasureRequest.objects.values_list("status", "updated_at").get(pk=received_request.pk)
        events = AuditEvent.objects.count() - events_before
        transaction.set_rollback(True)
    if response.status_code in (400, 409):
        assert after == before and events == 0, "a refused step wrote something"
    else:
        assert response.status_code in (200, 302) and events >= 1
