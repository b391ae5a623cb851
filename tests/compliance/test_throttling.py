"""Sign-in attempts are throttled per username and address; the API answers 429 in its error shape."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.conftest import DEMO_TEST_PASSWORD

pytestmark = pytest.mark.django_db

THROTTLED = "Too many failed sign-ins"


def _sign_in(client, password, *, address="10.0.0.1"):
    return client.post(
        "/login/", {"username": "officer", "password": password}, REMOTE_ADDR=address, follow=False
    )


def test_the_eleventh_wrong_password_is_refused_and_a_right_one_after_the_window_works(
    client, officer, settings
):
    settings.LETHE_LOGIN_WINDOW_SECONDS = 3
    started = time.monotonic()
    for attempt in range(10):
        response = _sign_in(client, f"wrong-{attempt}")
        assert response.status_code == 200 and b"did not match" in response.content, attempt
    eleventh = _sign_in(client, "wrong-10")
    assert eleventh.status_code == 200
    assert THROTTLED in eleventh.content.decode() and "Try again in 1 minute." in eleventh.content.decode()
    # Within the window even the right password is refused: it is not checked at all.
    right_too_soon = _sign_in(client, DEMO_TEST_PASSWORD)
    assert right_too_soon.status_code == 200 and THROTTLED in right_too_soon.content.decode()
    assert "_auth_user_id" not in client.session
    assert time.monotonic() - started < 3, "the test machine was too slow to stay inside the window"

    time.sleep(3.2)
    after = _sign_in(client, DEMO_TEST_PASSWORD)
    assert after.status_code == 302 and client.session["_auth_user_id"] == str(officer.pk)


def test_another_address_is_not_locked_out_and_a_right_password_clears_the_count(client, officer):
    for attempt in range(11):
        _sign_in(client, f"wrong-{attempt}", address="10.0.0.1")
    assert THROTTLED in _sign_in(client, "wrong", address="10.0.0.1").content.decode()

    elsewhere = _sign_in(client, DEMO_TEST_PASSWORD, address="10.0.0.2")
    assert elsewhere.status_code == 302
    client.logout()
    for attempt in range(9):
        _sign_in(client, f"wrong-{attempt}", address="10.0.0.3")
    assert _sign_in(client, DEMO_TEST_PASSWORD, address="10.0.0.3").status_code == 302
    client.logout()
    # The right password took the count back to zero: ten more wrong ones are checked again.
    for attempt in range(10):
        response = _sign_in(client, f"wrong-{attempt}", address="10.0.0.3")
        assert b"did not match" in response.content, attempt
    assert THROTTLED in _sign_in(client, "wrong", address="10.0.0.3").content.decode()


def test_an_empty_password_does_not_clear_the_count(client, officer):
    for attempt in range(10):
        _sign_in(client, f"wrong-{attempt}")
    _sign_in(client, "")
    assert THROTTLED in _sign_in(client, DEMO_TEST_PASSWORD).content.decode()


def test_the_api_answers_429_in_the_one_error_shape_with_retry_after(officer, monkeypatch):
    # DRF binds the rates table when its throttles are imported; the scope's limit is lowered there.
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "identifier_search", "2/minute")
    api = APIClient()
    api.force_authenticate(officer)
    answers = [api.post("/api/v1/requests/search/", {"q": "ER-2026-000001"}, format="json") for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    body = answers[2].json()
    assert set(body) == {"detail", "code"} and body["code"] == "throttled"
    assert "throttled" in body["detail"] and 0 < int(answers[2]["Retry-After"]) <= 60
    # Other endpoints count under the user's own, wider rate.
    assert api.get("/api/v1/requests/").status_code == 200


def test_the_schema_documents_429_where_calls_are_throttled(officer):
    api = APIClient()
    api.force_authenticate(officer)
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    search = schema["paths"]["/api/v1/requests/search/"]["post"]["responses"]
    assert "429" in search and search["429"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ApiError"
    )
