"""Records' own ids are shown to officers only; every other role sees their keyed hash."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import DEMO_TEST_PASSWORD
from tests.factories.jobs import *  # noqa: F401,F403  (fixtures)
from tests.factories.jobs import request_reviewed
from unlearning_jobs.datasets.storage import record_id_hash
from unlearning_jobs.models import MatchCandidate, ReingestionHit

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed(officer, tickets):
    return request_reviewed(officer=officer)


def _matches(user, erasure_request) -> dict:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"/api/v1/requests/{erasure_request.pk}/matches/")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_matches_api_gives_record_ids_to_officers_and_keyed_hashes_to_auditors(
    reviewed, officer, auditor
):
    raw_ids = set(
        MatchCandidate.objects.filter(erasure_request=reviewed).values_list("record__record_id", flat=True)
    )
    assert raw_ids

    for_officer = _matches(officer, reviewed)["results"]
    assert {row["record_id"] for row in for_officer} == raw_ids
    assert all(row["key"].endswith(":" + row["record_id"]) for row in for_officer)

    answer = _matches(auditor, reviewed)
    rows = answer["results"]
    assert {row["record_id"] for row in rows} == {None}
    assert {row["record_id_hash"] for row in rows} == {record_id_hash(rid) for rid in raw_ids}
    assert all(row["key"].endswith(":" + row["record_id_hash"]) for row in rows)
    text = json.dumps(answer)
    assert not [rid for rid in raw_ids if rid in text]


def _page(user, path: str) -> str:
    client = Client()
    assert client.login(username=user.username, password=DEMO_TEST_PASSWORD)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_the_data_set_page_shows_engineers_the_keyed_hash_and_officers_the_id(
    reviewed, tickets, officer, engineer
):
    record = tickets.records.order_by("ordinal").first()
    ReingestionHit.objects.create(
        version=tickets, record=record, erasure_request=reviewed, entity_types=["EMAIL"]
    )
    path = f"/datasets/{tickets.dataset_id}/"

    for_engineer = _page(engineer, path)
    assert f"<code>#{record_id_hash(record.record_id)[:16]}</code>" in for_engineer
    assert record.record_id not in for_engineer
    assert f"<code>{record.record_id}</code>" in _page(officer, path)
