"""The re-ingestion guard: erased people's records are flagged and kept out of training data."""

from __future__ import annotations

import pytest
from django.urls import reverse

from compliance.models import AuditEvent
from requests_app import services
from requests_app.matching import review
from tests.factories.datasets import (
    WILLIAM_RECORDS,
    register_and_index,
    request_in_review,
    write_jsonl,
)
from unlearning_jobs.datasets import reingestion
from unlearning_jobs.models import ReingestionHit

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.LETHE_DATA_DIR = tmp_path / "data"
    return settings.LETHE_DATA_DIR


def _approved_william(data_dir, officer):
    version = register_and_index(name="support", path=write_jsonl(data_dir / "v1.jsonl", WILLIAM_RECORDS))
    erasure_request = request_in_review(officer)
    review.match_candidates_confirm_above(erasure_request=erasure_request, actor=officer, score=0.8)
    return version, services.erasure_request_approve(erasure_request=erasure_request, actor=officer)


def _ids(queryset) -> set[str]:
    return set(queryset.values_list("record_id", flat=True))


def test_approval_flags_the_persons_records_in_versions_already_indexed(data_dir, officer):
    version, erasure_request = _approved_william(data_dir, officer)

    hits = {hit.record.record_id: hit.entity_types for hit in ReingestionHit.objects.filter(version=version)}
    assert hits == {"S1": ["EMAIL"], "S2": ["ACCOUNT_ID", "PHONE"], "S3": ["ACCOUNT_ID"]}
    training = _ids(reingestion.dataset_version_training_records(version))
    assert training == set(WILLIAM_RECORDS) - {"S1", "S2", "S3"}  # names alone never block a record
    event = AuditEvent.objects.get(action="dataset_version.reingestion_hits")
    assert event.details["hits_by_request"] == {erasure_request.reference: 3}
    assert "S1" not in str(event.details["record_id_hashes"])


def test_a_new_version_holding_an_erased_persons_identifiers_is_flagged_when_indexed(data_dir, officer):
    _approved_william(data_dir, officer)
    new_data = {
        "n1": "Returning customer william.turner@EXAMPLE.com asked for the catalogue again.",
        "n2": "Mary Jones (mary.jones@example.org) asked for a refund.",
        "n3": "Call back 07911 123456 tomorrow.",
    }
    version = register_and_index(name="support", path=write_jsonl(data_dir / "v2.jsonl", new_data))

    flagged = {hit.record.record_id for hit in version.reingestion_hits.select_related("record")}
    assert version.number == 2 and flagged == {"n1", "n3"}
    assert _ids(reingestion.dataset_version_training_records(version)) == {"n2"}
    assert (
        AuditEvent.objects.get(action="dataset_version.indexed", object_id=str(version.pk)).details[
            "reingestion_hits"
        ]
        == 2
    )


def test_an_officer_lets_a_flagged_record_back_in_with_a_reason(client, data_dir, officer, engineer):
    version, _ = _approved_william(data_dir, officer)
    hit = ReingestionHit.objects.get(version=version, record__record_id="S2")

    with pytest.raises(reingestion.ReingestionOverrideError, match="Only a privacy officer"):
        reingestion.reingestion_hit_override(hit=hit, actor=engineer, reason="needed")
    client.force_login(officer)
    page = client.get(version.dataset.get_absolute_url()).content.decode()
    assert "3 records of erased people" in page and "excluded from training" in page
    refused = client.post(reverse("datasets:override", args=[hit.pk]), {f"hit{hit.pk}-reason": ""})
    assert refused.status_code == 400
    done = client.post(
        reverse("datasets:override", args=[hit.pk]),
        {f"hit{hit.pk}-reason": "The account number belongs to a shared test account."},
    )
    assert done.status_code == 302

    hit.refresh_from_db()
    assert hit.overridden_by == officer and hit.override_reason.startswith("The account number")
    assert "S2" in {r.record_id for r in reingestion.dataset_version_training_records(version)}
    event = AuditEvent.objects.get(action="dataset_version.reingestion_override")
    assert event.details["reason"].startswith("The account number") and "record_id_hash" in event.details
    with pytest.raises(reingestion.ReingestionOverrideError, match="already"):
        reingestion.reingestion_hit_override(hit=hit, actor=officer, reason="again")
    # The records still held back are listed before the one let back in, on every database.
    listed = reingestion.dataset_versions_reingestion_hits([version])[version.pk]
    assert [h.record.record_id for h in listed] == ["S1", "S3", "S2"]
    client.force_login(engineer)
    assert (
        client.post(reverse("datasets:override", args=[hit.pk]), {f"hit{hit.pk}-reason": "x"}).status_code
        == 403
    )
