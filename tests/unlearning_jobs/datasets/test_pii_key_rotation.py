"""``rotate_pii_index_key``: requests re-hashed from their encrypted identifiers, versions re-indexed (issue 17)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from compliance.models import AuditEvent
from requests_app import services as request_services
from requests_app.matching.services import locate_run_execute, subject_digests
from requests_app.models import IdentityMethod, LegalGround, SubjectIdentifierHash
from tests.factories.jobs import ADA, data_dir, tickets, tiny_records  # noqa: F401  (fixtures)
from unlearning_jobs.datasets.indexing import dataset_version_index_inline
from unlearning_jobs.models import (
    DatasetVersionStatus,
    IndexChunkStatus,
    MatchCandidate,
    PiiFinding,
    SearchCoverage,
)

pytestmark = [pytest.mark.django_db]


def test_after_rotating_the_index_key_locating_still_finds_the_person(tickets, officer, settings):
    old_key_id = tickets.hash_key_id
    erasure_request = request_services.erasure_request_create(
        subject=ADA, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer
    )
    old_digests = set(SubjectIdentifierHash.objects.values_list("digest", flat=True))
    old_findings = set(PiiFinding.objects.filter(version=tickets).values_list("value_hash", flat=True))
    assert old_digests & old_findings, "under the old key the request's hashes are in the index"

    settings.LETHE_PII_HASH_KEY = b"a new index key, 32 bytes long!!"
    settings.LETHE_PII_HASH_KEY_ID = "rotated-2"
    stale = subject_digests(erasure_request)
    assert not stale.by_digest and stale.other_key > 0, "before the command nothing is under the new key"

    out = StringIO()
    call_command("rotate_pii_index_key", stdout=out)

    assert "Re-hashed the identifiers of 1 request(s) under key rotated-2" in out.getvalue()
    new_digests = set(SubjectIdentifierHash.objects.values_list("digest", flat=True))
    assert set(SubjectIdentifierHash.objects.values_list("key_id", flat=True)) == {"rotated-2"}
    assert new_digests and not new_digests & old_digests
    tickets.refresh_from_db()
    # Queued again like a resumed index: no finding under the old key left, every chunk pending.
    assert tickets.hash_key_id == "rotated-2" and tickets.status == DatasetVersionStatus.REGISTERED
    assert not PiiFinding.objects.filter(version=tickets).exists()
    assert set(tickets.chunks.values_list("status", flat=True)) == {IndexChunkStatus.PENDING}
    event = AuditEvent.objects.get(action="dataset_version.rekeyed", object_id=str(tickets.pk))
    assert event.details["from_hash_key_id"] == old_key_id and event.details["hash_key_id"] == "rotated-2"
    assert AuditEvent.objects.filter(action="erasure_request.identifier_hashes_rekeyed").exists()

    dataset_version_index_inline(version=tickets)  # what the cpu workers do with the queued chunks
    tickets.refresh_from_db()
    assert tickets.status == DatasetVersionStatus.INDEXED
    assert (
        not set(PiiFinding.objects.filter(version=tickets).values_list("value_hash", flat=True))
        & old_findings
    )

    erasure_request = request_services.erasure_request_verify_identity(
        erasure_request=erasure_request, actor=officer, method=IdentityMethod.DOCUMENT_SEEN
    )
    request_services.erasure_request_start_locating(erasure_request=erasure_request, actor=officer)
    coverage = SearchCoverage.objects.get(erasure_request=erasure_request)
    assert locate_run_execute(coverage_id=coverage.pk) == "reviewing"
    found = set(
        MatchCandidate.objects.filter(erasure_request=erasure_request).values_list(
            "record__record_id", flat=True
        )
    )
    adas = {record["id"] for record in tiny_records() if "Ada Quill" in record["text"]}
    assert adas and adas <= found


def test_a_second_run_has_nothing_to_do(tickets, settings):
    settings.LETHE_PII_HASH_KEY = b"a new index key, 32 bytes long!!"
    settings.LETHE_PII_HASH_KEY_ID = "rotated-2"
    call_command("rotate_pii_index_key", stdout=StringIO())
    out = StringIO()

    call_command("rotate_pii_index_key", stdout=out)

    assert "Queued 0 data-set version(s)" in out.getvalue()
    assert AuditEvent.objects.filter(action="dataset_version.rekeyed").count() == 1
