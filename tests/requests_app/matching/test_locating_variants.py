"""Locating a person whose records write their identifiers differently from the request (issue 13).

End to end: records indexed by the real scan (Presidio and match keys), the request recorded and
searched through the API, the candidates read back through the API and on the review page.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.conftest import browser_login
from tests.factories.api_world import api_token
from tests.factories.datasets import register_and_index, write_jsonl
from unlearning_jobs.models import SearchCoverage

# As the person typed them on the form.
SUBJECT = {
    "names": ["Günther Köhler"],
    "emails": ["g.koehler@example.de"],
    "phones": ["030 1234567"],
    "addresses": ["Hauptstraße 5, 10115 Berlin, Germany"],
    "account_ids": ["KD-004521"],
}
# record id → text, each mentioning him in a form the request does not use.
RECORDS = {
    "E1": "Customer wrote from g.koehler (at) example [dot] de asking for a refund.",
    "P1": "Callback requested on +49 (30) 1234567-22, mornings only.",
    "A1": "Parcel returned: KOEHLER\nHAUPTSTR. 5\n10115 BERLIN",
    "K1": "Kundennummer kd00004521 updated by the agent.",
    "N1": "KÖHLER, GÜNTHER called about the invoice.",
    "X1": "Shipment to Hauptstrasse 7, 10115 Berlin for another customer.",  # another house
    "X2": "Customer g.kohler@example.com asked about delivery times.",  # another mailbox
}
STRONG = {"E1", "P1", "A1", "K1"}

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def indexed(settings, tmp_path):
    settings.LETHE_DATA_DIR = tmp_path / "data"
    settings.LETHE_PHONE_REGIONS = ["GB"]  # the German number is valid in none: kept as given
    return register_and_index(name="support-de", path=write_jsonl(tmp_path / "data" / "de.jsonl", RECORDS))


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(user)}")
    return client


def _located_through_the_api(client: APIClient) -> tuple[int, dict[str, dict]]:
    from requests_app.matching.services import locate_run_execute

    created = client.post(
        "/api/v1/requests/", {"subject": SUBJECT, "legal_ground": "art17_1_a"}, format="json"
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert (
        client.post(
            f"/api/v1/requests/{pk}/actions/verify-identity/",
            {"method": "account_login", "note": "portal"},
            format="json",
        ).status_code
        == 200
    )
    assert client.post(f"/api/v1/requests/{pk}/actions/locate/", {}, format="json").status_code == 200
    # The cpu worker's part, run here: the search queued by the step.
    assert locate_run_execute(coverage_id=SearchCoverage.objects.get(erasure_request_id=pk).pk) == "reviewing"
    matches = client.get(f"/api/v1/requests/{pk}/matches/")
    assert matches.status_code == 200
    return pk, {match["record_id"]: match for match in matches.json()["results"]}


def test_every_kind_is_located_through_the_api_however_the_record_writes_it(indexed, officer):
    _, found = _located_through_the_api(_api(officer))

    assert {rid for rid, match in found.items() if match["tier"] == "strong"} == STRONG
    assert found["N1"]["tier"] == "name"
    assert "X1" not in found and "X2" not in found
    assert set(found["A1"]["evidence"]["direct"]) == {"ADDRESS"}
    assert set(found["K1"]["evidence"]["direct"]) == {"ACCOUNT_ID"}
    coverage = SearchCoverage.objects.get()
    assert "obfuscated (at)/[at]/' at ', (dot)/[dot]/' dot '" in coverage.identifier_counts["EMAIL"]["forms"]
    assert "no valid region needed" in coverage.identifier_counts["PHONE"]["forms"]


@pytest.mark.browser
def test_the_review_page_shows_the_variant_forms_as_strong_candidates(indexed, officer, page):
    pk, _ = _located_through_the_api(_api(officer))

    browser_login(page, "officer")
    page.goto(f"/requests/{pk}/review/")
    strong = page.locator("#tier-strong .candidate")
    assert sorted(strong.nth(i).get_attribute("data-record") for i in range(strong.count())) == sorted(STRONG)
    assert page.locator(".candidate[data-record='N1']").count() == 1
    assert page.locator(".candidate[data-record='X1']").count() == 0
    assert page.locator(".candidate[data-record='E1'] mark.match").count() >= 1
