"""The API base (compliance/api.py): one error shape, JSON for every status under /api/, errors in the schema.

Each case here is one that schemathesis found answered wrongly before the API base existed:
a 500 for an id beyond 64 bits, Django's HTML page for a 404, a bare field dict for one 400 and
``{"detail": …}`` for another, paginated lists documented as arrays, and 400/404/409 answers that
the schema did not list.
"""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from compliance.api import MAX_DATABASE_ID, server_error, validation_error_body
from tests.factories.api_world import api_token

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def api(role_users):
    """Return a function giving an API client that sends the role's token."""

    def client_for(role: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(role_users[role])}")
        return client

    return client_for


def _request(officer):
    from requests_app import services
    from requests_app.identifiers import SubjectIdentifiers
    from requests_app.models import LegalGround

    return services.erasure_request_create(
        subject=SubjectIdentifiers(emails=("shape@example.org",)),
        legal_ground=LegalGround.CONSENT_WITHDRAWN,
        actor=officer,
    )


def _is_error_body(body, *, code: str) -> bool:
    return (
        isinstance(body, dict)
        and body.get("code") == code
        and isinstance(body.get("detail"), str)
        and body["detail"] != ""
    )


def test_an_integer_filter_beyond_bigint_is_a_400_naming_the_filter_not_a_500(api):
    too_big = MAX_DATABASE_ID + 1
    response = api("officer").get(f"/api/v1/jobs/?status=succeeded&request={too_big}")
    assert response.status_code == 400
    body = response.json()
    assert _is_error_body(body, code="invalid") and "request" in body and "request" in body["detail"]
    assert api("officer").get(f"/api/v1/jobs/?request={MAX_DATABASE_ID}").status_code == 200


def test_an_id_in_the_path_beyond_bigint_is_a_json_404(api):
    response = api("officer").get(f"/api/v1/requests/{MAX_DATABASE_ID * 10}/")
    assert response.status_code == 404 and _is_error_body(response.json(), code="not_found")


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("get", "/api/v1/no-such-endpoint/", 404, "not_found"),
        ("post", "/api/v1/requests/1/actions/no-such-action/", 404, "not_found"),
        ("get", "/api/v2/requests/", 404, "not_found"),
        ("delete", "/api/v1/requests/", 405, "method_not_allowed"),
    ],
)
def test_every_refusal_under_api_is_json_in_the_one_shape(api, method, path, status, code):
    response = getattr(api("officer"), method)(path)
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert _is_error_body(response.json(), code=code)


def test_a_path_missing_its_slash_is_a_404_that_says_which_path_exists(api):
    response = api("officer").get("/api/v1/requests")
    assert response.status_code == 404 and "/api/v1/requests/" in response.json()["detail"]


def test_no_credentials_is_a_401_and_the_wrong_role_a_403_in_the_one_shape(api):
    anonymous = APIClient().get("/api/v1/requests/")
    assert anonymous.status_code == 401 and _is_error_body(anonymous.json(), code="not_authenticated")
    engineer = api("engineer").get("/api/v1/requests/")
    assert engineer.status_code == 403 and _is_error_body(engineer.json(), code="permission_denied")


def test_a_400_carries_detail_code_and_the_field_errors_nested_like_the_body(api):
    response = api("officer").post(
        "/api/v1/requests/",
        {"subject": {"emails": ["not-an-address"]}, "legal_ground": "art17_1_b"},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert _is_error_body(body, code="invalid") and body["detail"].endswith(body["subject"]["emails"][0])
    assert "subject.emails" in body["detail"]


def test_a_service_refusal_without_a_field_is_a_400_with_non_field_errors(api, officer):
    erasure_request = _request(officer)
    response = api("auditor").get(f"/api/v1/requests/{erasure_request.pk}/report.json?version=abc")
    assert response.status_code == 400
    body = response.json()
    assert _is_error_body(body, code="invalid") and body["non_field_errors"] == [
        "'version' must be a positive whole number."
    ]


def test_a_step_the_state_does_not_allow_is_a_409_in_the_one_shape(api, officer):
    erasure_request = _request(officer)
    response = api("officer").post(
        f"/api/v1/requests/{erasure_request.pk}/actions/complete/", {}, format="json"
    )
    assert response.status_code == 409 and _is_error_body(response.json(), code="transition_not_allowed")


def test_a_server_error_under_api_is_json_and_elsewhere_the_page():
    factory = RequestFactory()
    api_response = server_error(factory.get("/api/v1/requests/"))
    assert api_response.status_code == 500 and api_response["Content-Type"] == "application/json"
    page = server_error(factory.get("/requests/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


def test_the_schema_documents_the_errors_and_the_pages_of_each_operation(api):
    schema = api("officer").get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    jobs_list = schema["paths"]["/api/v1/jobs/"]["get"]["responses"]
    assert {"200", "400", "401", "403"} <= set(jobs_list)
    page = schema["components"]["schemas"][
        jobs_list["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    ]
    assert page["type"] == "object" and {"count", "next", "previous", "results"} <= set(page["properties"])
    complete = schema["paths"]["/api/v1/requests/{id}/actions/complete/"]["post"]["responses"]
    assert {"200", "400", "401", "403", "404", "409"} <= set(complete)
    assert complete["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApiError")
    create = schema["paths"]["/api/v1/requests/"]["post"]["responses"]
    assert "201" in create and "200" not in create
    job = schema["components"]["schemas"]["JobSerializer".removesuffix("Serializer")]["properties"]
    assert job["request_reference"].get("nullable") is True


def test_a_message_of_no_field_joins_the_non_field_errors_instead_of_replacing_them():
    body = validation_error_body({"detail": "The plan is empty.", "non_field_errors": ["Give a rationale."]})
    assert body["non_field_errors"] == ["The plan is empty.", "Give a rationale."]
    assert body["code"] == "invalid" and body["detail"].endswith("First: The plan is empty.")
