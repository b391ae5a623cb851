"""The REST API: token auth, role matrix, creation, bad input, every action, events, schema."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from compliance.models import AuditEvent
from requests_app.apis import ACTION_APIS
from requests_app.models import ErasureRequest, RequestStatus
from tests.factories.api_world import api_token

BODY = {
    "subject": {
        "names": ["Maria Garcia"],
        "emails": ["maria.garcia@example.net"],
        "phones": ["+34 612 345 678"],
        "addresses": [],
        "account_ids": ["CUST-99812"],
    },
    "legal_ground": "art17_1_a",
}


@pytest.fixture
def api(role_users):
    """Return a function giving an API client authenticated with the user's token."""

    def client_for(username):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(role_users[username])}")
        return client

    return client_for


def test_token_from_create_api_token_authenticates(role_users, capsys):
    call_command("create_api_token", "officer")
    key = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/requests/").status_code == 200


def test_anonymous_callers_are_refused(db):
    assert APIClient().get("/api/v1/requests/").status_code == 401
    assert APIClient().post("/api/v1/requests/", BODY, format="json").status_code == 401


@pytest.mark.parametrize(
    "username,read,write", [("officer", 200, 201), ("auditor", 200, 403), ("engineer", 403, 403)]
)
def test_role_matrix_of_the_collection(api, username, read, write):
    client = api(username)
    assert client.get("/api/v1/requests/").status_code == read
    assert client.post("/api/v1/requests/", BODY, format="json").status_code == write


@pytest.mark.parametrize("username,read", [("officer", 200), ("auditor", 200), ("engineer", 403)])
def test_role_matrix_of_one_request(api, make_request, username, read):
    erasure_request = make_request()
    client = api(username)
    assert client.get(f"/api/v1/requests/{erasure_request.pk}/").status_code == read
    assert client.get(f"/api/v1/requests/{erasure_request.pk}/events/").status_code == read


@pytest.mark.parametrize("username", ["auditor", "engineer"])
@pytest.mark.parametrize("action", list(ACTION_APIS))
def test_auditors_and_engineers_can_take_no_action(api, make_request, username, action):
    erasure_request = make_request()
    client = api(username)
    events = AuditEvent.objects.count()
    response = client.post(
        f"/api/v1/requests/{erasure_request.pk}/actions/{action}/", {"method": "email_link"}, format="json"
    )
    assert response.status_code == 403
    assert AuditEvent.objects.count() == events
    assert ErasureRequest.objects.get(pk=erasure_request.pk).status == RequestStatus.RECEIVED


def test_officer_creates_a_request_and_reads_it_back_masked(api, officer):
    client = api("officer")
    response = client.post("/api/v1/requests/", {**BODY, "channel": "form"}, format="json")
    assert response.status_code == 201, response.data
    created = response.data
    assert created["reference"].startswith("ER-") and created["status"] == "received"
    assert created["channel"] == "form" and created["assigned_officer"] == "officer"
    assert created["identifiers"]["emails"] == ["m***@example.net"]
    assert created["available_actions"] == [
        "verify-identity",
        "extend",
        "assign",
        "scope",
        "reject",
        "withdraw",
        "reveal-identifiers",
    ]
    assert set(created["available_actions"]) <= set(ACTION_APIS)
    assert "start-locating" not in created["available_actions"]
    detail = client.get(f"/api/v1/requests/{created['id']}/").data
    assert detail["due_at"] == created["due_at"] and detail["identity_verification"] is None
    assert "maria" not in str(detail).lower().replace("m***", "")
    assert detail["identified_by_name_only"] is False
    name_only = client.post(
        "/api/v1/requests/", {**BODY, "subject": {"names": ["Maria Garcia"]}}, format="json"
    ).data
    assert client.get(f"/api/v1/requests/{name_only['id']}/").data["identified_by_name_only"] is True


def test_received_at_defaults_to_now_and_channel_to_api(api):
    response = api("officer").post("/api/v1/requests/", BODY, format="json")
    assert response.data["channel"] == "api"
    received = ErasureRequest.objects.get().received_at
    assert abs((timezone.now() - received).total_seconds()) < 60


@pytest.mark.parametrize(
    "change,path,fragment",
    [
        (
            {"subject": {"emails": ["maria.garcia@"]}},
            ("subject", "emails"),
            "E-mail 1: e-mail address is malformed",
        ),
        ({"subject": {"phones": ["+34 12"]}}, ("subject", "phones"), "Phone number 1"),
        (
            {"subject": {"names": [], "emails": []}},
            ("subject", "non_field_errors"),
            "at least one identifier",
        ),
        ({"subject": {}}, ("subject", "non_field_errors"), "at least one identifier"),
        ({"subject": {"names": ["N" * 201]}}, ("subject", "names"), "no more than 200 characters"),
        ({"subject": {"names": [f"P {i}" for i in range(21)]}}, ("subject", "names"), "no more than 20"),
        ({"legal_ground": "art17_1_z"}, ("legal_ground",), "is not a valid choice"),
        ({"legal_ground": None}, ("legal_ground",), "may not be null"),
        ({"received_at": (timezone.now() + timedelta(days=1)).isoformat()}, ("received_at",), "future"),
        ({"received_at": "yesterday"}, ("received_at",), "Datetime has wrong format"),
        ({"channel": "pigeon"}, ("channel",), "is not a valid choice"),
        ({"assigned_officer": "auditor"}, ("assigned_officer",), "not an active privacy officer"),
        ({"scope": {"all": False}}, ("scope", "all"), "at least one data set"),
    ],
)
def test_bad_input_gets_400_with_field_errors_and_nothing_is_saved(api, change, path, fragment):
    body = {**BODY, **change}
    response = api("officer").post("/api/v1/requests/", body, format="json")
    assert response.status_code == 400, response.data
    errors = response.data
    for key in path:
        errors = errors[key]
    assert fragment in str(errors), response.data
    assert not ErasureRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="erasure_request.created").exists()


def test_every_bad_field_is_reported_in_one_answer(api):
    body = {
        "subject": {"emails": ["maria.garcia@"], "phones": ["12"]},
        "legal_ground": "art17_1_x",
        "received_at": (timezone.now() + timedelta(days=3)).isoformat(),
    }
    response = api("officer").post("/api/v1/requests/", body, format="json")
    assert response.status_code == 400
    assert set(response.data) == {"subject", "legal_ground", "received_at", "detail", "code"}
    assert response.data["code"] == "invalid" and "subject.emails" in response.data["detail"]
    assert set(response.data["subject"]) == {"emails", "phones"}


def test_the_whole_life_cycle_through_the_api(api):
    client = api("officer")
    pk = client.post("/api/v1/requests/", BODY, format="json").data["id"]

    def act(action, body=None):
        return client.post(f"/api/v1/requests/{pk}/actions/{action}/", body or {}, format="json")

    assert act("start-locating").status_code == 409  # identity first
    verified = act("verify-identity", {"method": "account_login", "note": "Logged in to the portal"})
    assert verified.status_code == 200 and verified.data["status"] == "identity_verification"
    assert verified.data["identity_verification"]["verified_by"] == "officer"
    for action, status in [
        ("start-locating", "locating"),
        ("submit-for-review", "review"),
        ("approve", "approved"),
        ("start-executing", "executing"),
        ("start-verifying", "verifying"),
        ("complete", "completed"),
    ]:
        response = act(action, {"note": f"{action} by the test"})
        assert (response.status_code, response.data["status"]) == (200, status), response.data
    assert act("withdraw").status_code == 409
    events = client.get(f"/api/v1/requests/{pk}/events/").data
    assert [e["action"] for e in events] == [
        "erasure_request.created",
        "erasure_request.identity_verified",
        "erasure_request.locating_started",
        "erasure_request.submitted_for_review",
        "erasure_request.approved",
        "erasure_request.execution_started",
        "erasure_request.verification_started",
        "erasure_request.completed",
    ]
    assert all(e["actor"] == "officer" for e in events)
    assert events[1]["previous_hash"] == events[0]["entry_hash"]
    # Completing issued the signed report in the same step.
    from compliance.models import AuditReport

    report = AuditReport.objects.get(erasure_request_id=pk)
    assert report.version == 1


def test_illegal_action_is_409_with_the_reason_and_changes_nothing(api, make_request):
    erasure_request = make_request()
    response = api("officer").post(
        f"/api/v1/requests/{erasure_request.pk}/actions/complete/", {}, format="json"
    )
    assert response.status_code == 409
    assert response.data["code"] == "transition_not_allowed" and "verifying" in response.data["detail"]
    assert ErasureRequest.objects.get(pk=erasure_request.pk).status == RequestStatus.RECEIVED


def test_extend_reject_assign_scope_and_withdraw_through_the_api(api, make_request):
    client = api("officer")
    erasure_request = make_request(received_at=timezone.now() - timedelta(days=3))
    base = f"/api/v1/requests/{erasure_request.pk}/actions"
    too_far = (erasure_request.received_at + timedelta(days=100)).isoformat()
    refused = client.post(f"{base}/extend/", {"until": too_far, "reason": "Complex"}, format="json")
    assert refused.status_code == 400 and "two further months" in str(refused.data["until"])
    no_reason = client.post(f"{base}/extend/", {"until": too_far}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.data
    until = (erasure_request.received_at + timedelta(days=60)).isoformat()
    extended = client.post(f"{base}/extend/", {"until": until, "reason": "Complex"}, format="json")
    assert extended.status_code == 200 and extended.data["extension"]["reason"] == "Complex"
    assert (
        client.post(f"{base}/extend/", {"until": until, "reason": "Again"}, format="json").status_code == 400
    )

    scoped = client.post(f"{base}/scope/", {"all": False, "dataset_ids": [4, 2]}, format="json")
    assert scoped.data["scope"] == {"all": False, "dataset_ids": [4, 2], "model_version_ids": []}
    assert client.post(f"{base}/assign/", {"officer": "ghost"}, format="json").status_code == 400
    assert client.post(f"{base}/assign/", {"officer": None}, format="json").data["assigned_officer"] is None

    bad_ground = client.post(f"{base}/reject/", {"ground": "art17_3_z", "explanation": "x"}, format="json")
    assert bad_ground.status_code == 400 and "ground" in bad_ground.data
    rejected = client.post(
        f"{base}/reject/",
        {"ground": "art12_5_excessive", "explanation": "Fourth identical request this month."},
        format="json",
    )
    assert rejected.data["status"] == "rejected"
    assert "supervisory authority" in rejected.data["rejection"]["reply"]
    assert client.post(f"{base}/withdraw/", {}, format="json").status_code == 409


def test_reveal_through_the_api_is_audited(api, make_request):
    erasure_request = make_request()
    response = api("officer").post(
        f"/api/v1/requests/{erasure_request.pk}/actions/reveal-identifiers/",
        {"reason": "Reply"},
        format="json",
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert response.data["identifiers"]["emails"] == ["John.Smith@Example.com"]
    assert AuditEvent.objects.filter(action="erasure_request.identifiers_revealed").count() == 1


def test_list_filters_search_and_pagination(api, make_request, request_in):
    from requests_app.identifiers import SubjectIdentifiers

    overdue = make_request(received_at=timezone.now() - timedelta(days=40))
    closed = request_in(
        RequestStatus.WITHDRAWN,
        subject=SubjectIdentifiers(names=("Ada Lovelace",), emails=("ada@example.org",)),
    )
    client = api("auditor")
    everything = client.get("/api/v1/requests/").data
    assert everything["count"] == 2 and [r["reference"] for r in everything["results"]] == [
        overdue.reference,
        closed.reference,
    ]
    assert everything["results"][0]["urgency"] == "overdue"
    assert "identifiers" not in everything["results"][0]

    def refs(**params):
        return [r["reference"] for r in client.get("/api/v1/requests/", params).data["results"]]

    assert refs(status="open") == [overdue.reference]
    assert refs(status="closed") == [closed.reference]
    assert refs(overdue="true") == [overdue.reference]
    assert refs(q="ada@EXAMPLE.org") == [closed.reference]
    assert refs(limit=1, offset=1) == [closed.reference]
    assert client.get("/api/v1/requests/", {"status": "sleeping"}).status_code == 400


@pytest.mark.parametrize("username,expected", [("officer", 200), ("auditor", 200), ("engineer", 403)])
def test_search_by_identifier_in_the_body(api, make_request, username, expected):
    wanted = make_request()
    response = api(username).post("/api/v1/requests/search/", {"q": "+44 20 7946 0456"}, format="json")
    assert response.status_code == expected
    if expected == 200:
        assert [r["reference"] for r in response.data] == [wanted.reference]
    assert api("officer").post("/api/v1/requests/search/", {}, format="json").status_code == 400


def test_unknown_request_is_404_for_readers(api):
    assert api("officer").get("/api/v1/requests/999999/").status_code == 404
    assert (
        api("officer").post("/api/v1/requests/999999/actions/withdraw/", {}, format="json").status_code == 404
    )


def test_openapi_schema_describes_every_endpoint(api):
    response = api("auditor").get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json() if hasattr(response, "json") else response.data
    paths = schema["paths"]
    assert {"/api/v1/requests/", "/api/v1/requests/{id}/", "/api/v1/requests/{id}/events/"} <= set(paths)
    for action in ACTION_APIS:
        assert f"/api/v1/requests/{{id}}/actions/{action}/" in paths
    create = paths["/api/v1/requests/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create["$ref"].endswith("ErasureRequestListCreateApiInput")
