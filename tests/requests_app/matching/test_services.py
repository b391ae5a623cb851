"""Locating a person by keyed-hash lookup: tiers and evidence on a hand-made set, coverage, re-locating."""

from __future__ import annotations

import pytest

from requests_app import services
from requests_app.identifiers import SubjectIdentifiers, pii_hasher
from requests_app.matching import services as matching
from requests_app.models import IdentityMethod, LegalGround
from tests.factories.datasets import (
    WILLIAM,
    WILLIAM_RECORDS,
    register_and_index,
    request_in_review,
    write_jsonl,
)
from unlearning_jobs.engine.pii.normalise import name_token_sorted, normalise_email, normalise_name
from unlearning_jobs.engine.pii.scan import Finding, RecordFindings
from unlearning_jobs.models import MatchCandidate, SearchCoverage

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.LETHE_DATA_DIR = tmp_path / "data"
    return settings.LETHE_DATA_DIR


@pytest.fixture
def william_version(data_dir):
    return register_and_index(name="support", path=write_jsonl(data_dir / "william.jsonl", WILLIAM_RECORDS))


def _verified(officer, subject=WILLIAM, **kwargs):
    erasure_request = services.erasure_request_create(
        subject=subject, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer, **kwargs
    )
    return services.erasure_request_verify_identity(
        erasure_request=erasure_request, actor=officer, method=IdentityMethod.DOCUMENT_SEEN
    )


def _by_record(result) -> dict[str, matching.Candidate]:
    from unlearning_jobs.models import DatasetRecord

    ids = dict(
        DatasetRecord.objects.filter(pk__in=[c.record_pk for c in result.candidates]).values_list(
            "pk", "record_id"
        )
    )
    return {ids[c.record_pk]: c for c in result.candidates}


def _person_finding(value: str) -> Finding:
    """A PERSON finding as the index writes it: the name's keyed hash and its token-sorted hash."""
    hasher = pii_hasher()
    return Finding(
        "PERSON",
        0,
        len(value),
        0.85,
        "t",
        hasher.hash("PERSON", normalise_name(value)),
        hasher.hash("PERSON", name_token_sorted(value)),
    )


def _index_planted(data_dir, name: str, planted: dict[str, list[Finding]]):
    """Register one record per key and index it with exactly the planted findings."""
    from unlearning_jobs.datasets import services as datasets
    from unlearning_jobs.datasets.indexing import dataset_version_index_inline

    def scan(records):
        return [RecordFindings(r.record_id, r.line_no, tuple(planted[r.record_id])) for r in records]

    source = write_jsonl(data_dir / f"{name}.jsonl", {key: f"record {key}" for key in planted})
    version = datasets.dataset_version_register(
        name=name, path=source, actor=None, id_field="id", chunk_size=20, enqueue=False
    )
    dataset_version_index_inline(version=version, scan=scan)
    return version


def test_records_are_found_in_tiers_ranked_by_evidence(william_version, officer):
    result = matching.locate_compute(erasure_request=_verified(officer))
    found = _by_record(result)

    assert {k for k, c in found.items() if c.tier == "strong"} == {"S1", "S2", "S3"}
    assert {k for k, c in found.items() if c.tier == "name"} == {"N1", "N2", "N3"}
    assert {k for k, c in found.items() if c.tier == "quasi"} == {"Q1", "Q2"}
    assert "X1" not in found and "X2" not in found
    # Every strong candidate outranks every name candidate, which outranks every quasi one.
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert (
        min(c.score for c in found.values() if c.tier == "strong")
        > max(c.score for c in found.values() if c.tier == "name")
        > max(c.score for c in found.values() if c.tier == "quasi")
    )

    s1, s2, s3 = found["S1"].evidence, found["S2"].evidence, found["S3"].evidence
    assert (s1["direct"], s1["name"]) == (["EMAIL"], "exact")
    assert (s2["direct"], s2["name"]) == (["ACCOUNT_ID", "PHONE"], None)
    assert (s3["direct"], s3["name"]) == (["ACCOUNT_ID"], "variant")
    assert found["S1"].score > found["S2"].score == found["S3"].score  # a name raises the score
    assert found["N3"].evidence["name"] == "exact" and found["N1"].evidence["name"] == "variant"
    assert found["N3"].score > found["N1"].score == found["N2"].score  # the full name outranks variants
    assert found["Q1"].evidence["quasi"]["entity_types"] == ["DATE_OF_BIRTH", "LOCATION"]
    assert found["Q1"].evidence["quasi"]["shared_with"] == ["S3"]
    assert found["Q2"].evidence["quasi"]["entity_types"] == ["DATE_OF_BIRTH"]
    assert found["Q1"].score > found["Q2"].score
    assert "date of birth and a place" in found["Q1"].evidence["reason"]
    email_span = next(m["span"] for m in s1["matched"] if m["entity_type"] == "EMAIL")
    assert WILLIAM_RECORDS["S1"][slice(*email_span)] == "william.turner@example.com"
    for candidate in result.candidates:  # evidence holds kinds and spans, never a value
        assert "turner" not in str(candidate.evidence).lower() and "482913" not in str(candidate.evidence)


def test_name_forms_and_other_peoples_identifiers_are_tiered_by_their_hashes(data_dir, officer):
    """Hash-level cases spaCy's small model does not produce reliably ("Turner, William")."""
    hasher = pii_hasher()
    person = _person_finding

    planted = {
        "comma": [person("Turner, William")],
        "sorted": [person("Turner William")],
        "middle": [person("William A. Turner")],
        "nick": [person("Bill Turner")],
        "namesake": [
            person("William Turner"),
            Finding("EMAIL", 20, 40, 1.0, "t", hasher.hash("EMAIL", normalise_email("w.t@other.org"))),
        ],
        "other": [person("Willa Turner")],
        "strong": [
            Finding("EMAIL", 0, 26, 1.0, "t", hasher.hash("EMAIL", "william.turner@example.com")),
            Finding("LOCATION", 30, 35, 0.85, "t", hasher.hash("LOCATION", "leeds")),
        ],
        "nick_leeds": [
            person("Bill Turner"),
            Finding("LOCATION", 30, 35, 0.85, "t", hasher.hash("LOCATION", "leeds")),
        ],
    }

    _index_planted(data_dir, "names", planted)

    found = _by_record(matching.locate_compute(erasure_request=_verified(officer)))
    assert {key: (c.tier, c.evidence["name"]) for key, c in found.items()} == {
        "comma": ("name", "exact"),
        "sorted": ("name", "variant"),
        "nick": ("name", "variant"),
        "namesake": ("name", "exact"),
        "strong": ("strong", None),
        "nick_leeds": ("name", "variant"),
    }
    # A place from the person's strong record raises a name-only record, with the reason.
    assert found["nick_leeds"].score == pytest.approx(found["nick"].score + matching.NAME_WITH_QUASI)
    assert found["nick_leeds"].evidence["quasi"]["shared_with"] == ["strong"]
    assert "also occur in the person's strong records" in found["nick_leeds"].evidence["reason"]
    # A middle name the request does not give cannot be dropped from a keyed hash of the record's
    # name: "William A. Turner" is not found for "William Turner" (docs/datasets.md, limits).
    assert "middle" not in found

    with_middle = _verified(officer, subject=SubjectIdentifiers(names=("William Andrew Turner",)))
    found = _by_record(matching.locate_compute(erasure_request=with_middle))
    assert {key: c.evidence["name"] for key, c in found.items()} == {
        "middle": "variant",
        "namesake": "variant",
        "comma": "variant",
        "sorted": "variant",
        "nick": "variant",
        "nick_leeds": "variant",
    }


def test_a_stored_search_lists_versions_configuration_and_what_was_left_out(
    data_dir, william_version, officer
):
    from unlearning_jobs.datasets import services as datasets

    newer = write_jsonl(data_dir / "newer.jsonl", dict(WILLIAM_RECORDS, extra="another record"))
    datasets.dataset_version_register(name="support", path=newer, actor=None, id_field="id", enqueue=False)
    other = register_and_index(
        name="unrelated", path=write_jsonl(data_dir / "u.jsonl", {"1": "nothing here"})
    )
    erasure_request = _verified(officer, scope_all=False, scope_dataset_ids=[william_version.dataset_id, 999])

    coverage = matching.locate_request(erasure_request=erasure_request, actor=officer)

    assert [v["version_id"] for v in coverage.versions] == [william_version.pk]
    searched = coverage.versions[0]
    assert searched["records_total"] == 10 and searched["manifest_sha256"] == william_version.manifest_sha256
    assert (
        searched["index_configuration"]["spacy_model"]
        and len(searched["index_configuration"]["sha256"]) == 64
    )
    reasons = {(s["dataset"], s["version"]): s["reason"] for s in coverage.skipped}
    assert "Not searchable yet: registered" in reasons[("support", 2)]
    assert "No data set has this id" in reasons[(None, None)]
    assert other.dataset.name not in str(coverage.versions)
    assert coverage.candidate_counts == {"strong": 3, "name": 3, "quasi": 2, "kept_decided": 0}
    assert coverage.identifier_counts["EMAIL"]["given"] == 1
    assert coverage.identifier_counts["EMAIL"]["variants"] == 1  # its match key
    assert "obfuscated (at)/[at]/' at ', (dot)/[dot]/' dot '" in coverage.identifier_counts["EMAIL"]["forms"]
    assert coverage.identifier_counts["PERSON"]["variants"] > 5


def test_a_version_indexed_with_earlier_match_key_rules_is_named_by_the_search_and_the_report(
    william_version, officer
):
    from requests_app.matching import review
    from unlearning_jobs.engine.pii.match_keys import MATCH_KEY_DERIVATION

    erasure_request = _verified(officer)
    current = matching.locate_request(erasure_request=erasure_request, actor=officer)
    summary = current.versions[0]["index_configuration"]
    assert summary["match_keys_derivation"] == MATCH_KEY_DERIVATION
    assert summary["match_keys_outdated"] is False

    # An index built before the generation was recorded: its configuration has no "derivation".
    configuration = william_version.index_configuration
    del configuration["scan"]["match_keys"]["derivation"]
    type(william_version).objects.filter(pk=william_version.pk).update(index_configuration=configuration)
    older = matching.locate_request(erasure_request=erasure_request, actor=officer)
    summary = older.versions[0]["index_configuration"]
    assert summary["match_keys_derivation"] == 1 and summary["match_keys_outdated"] is True
    assert older.candidate_counts["strong"] == current.candidate_counts["strong"]  # same keys found
    coverage_rows = review.report_records_section(erasure_request)["search_coverage"]
    assert [row["match_keys_outdated"] for row in coverage_rows] == [True]


def test_searching_again_replaces_pending_candidates_and_keeps_decisions(william_version, officer):
    from requests_app.matching import review

    erasure_request = request_in_review(officer)
    review.match_candidates_decide(
        erasure_request=erasure_request, actor=officer, confirm=["S1"], reject=["N3"]
    )
    pending_before = set(
        MatchCandidate.objects.filter(erasure_request=erasure_request, status="pending").values_list(
            "pk", flat=True
        )
    )

    erasure_request = matching.erasure_request_locate(erasure_request=erasure_request, actor=officer)
    coverage = SearchCoverage.objects.filter(erasure_request=erasure_request).first()
    assert erasure_request.status == "locating" and coverage.status == "queued"
    assert matching.locate_run_execute(coverage_id=coverage.pk) == "reviewing"
    assert matching.locate_run_execute(coverage_id=coverage.pk) == "skipped"  # delivered twice

    candidates = {
        c.record.record_id: c for c in MatchCandidate.objects.filter(erasure_request=erasure_request)
    }
    assert candidates["S1"].status == "confirmed" and candidates["N3"].status == "rejected"
    assert len(candidates) == 8
    assert not pending_before & {c.pk for c in candidates.values() if c.status == "pending"}
    assert coverage.__class__.objects.get(pk=coverage.pk).candidate_counts["kept_decided"] == 2


def test_entering_locating_queues_a_search_only_when_there_is_data_to_search(
    data_dir, officer, django_capture_on_commit_callbacks
):
    erasure_request = _verified(officer)
    services.erasure_request_start_locating(erasure_request=erasure_request, actor=officer)
    assert not SearchCoverage.objects.exists()  # nothing indexed: the workflow goes on as before

    register_and_index(name="support", path=write_jsonl(data_dir / "w.jsonl", WILLIAM_RECORDS))
    second = _verified(officer, subject=SubjectIdentifiers(names=("Ann Other",), emails=("ann@other.org",)))
    with django_capture_on_commit_callbacks() as callbacks:
        services.erasure_request_start_locating(erasure_request=second, actor=officer)
    assert SearchCoverage.objects.get(erasure_request=second).status == "queued"
    assert len(callbacks) == 1


def test_a_request_with_no_match_is_submitted_for_review_with_an_empty_search(william_version, officer):
    nobody = SubjectIdentifiers(names=("Zed Nobody",), emails=("zed@nowhere.org",))
    erasure_request = request_in_review(officer, subject=nobody)
    coverage = SearchCoverage.objects.get(erasure_request=erasure_request)
    assert erasure_request.status == "review"
    assert coverage.candidate_counts == {"strong": 0, "name": 0, "quasi": 0, "kept_decided": 0}


def test_many_candidates_are_stored_the_same_way_as_few(data_dir, officer):
    """From ``COPY_FROM`` candidates on, PostgreSQL gets them by COPY; what is stored must not differ."""
    from unlearning_jobs.datasets import services as datasets
    from unlearning_jobs.datasets.indexing import dataset_version_index_inline

    hasher = pii_hasher()
    email = Finding(
        "EMAIL", 0, 26, 1.0, "t", hasher.hash("EMAIL", normalise_email("william.turner@example.com"))
    )

    def scan(records):
        return [RecordFindings(r.record_id, r.line_no, (email,)) for r in records]

    count = matching.COPY_FROM + 5
    source = write_jsonl(data_dir / "many.jsonl", {f"m{i:03d}": f"record {i}" for i in range(count)})
    version = datasets.dataset_version_register(
        name="many", path=source, actor=None, id_field="id", chunk_size=100, enqueue=False
    )
    dataset_version_index_inline(version=version, scan=scan)

    coverage = matching.locate_request(erasure_request=_verified(officer), actor=officer)

    stored = list(MatchCandidate.objects.filter(coverage=coverage))
    assert len(stored) == count and coverage.candidate_counts["strong"] == count
    first = stored[0]
    assert (first.status, first.tier, first.version_id, first.score) == ("pending", "strong", version.pk, 0.8)
    assert first.evidence["direct"] == ["EMAIL"] and first.evidence["matched"][0]["span"] == [0, 26]


def test_a_name_beside_an_identifier_of_the_persons_own_strong_records_is_strong_evidence(data_dir, officer):
    """The request gives an e-mail and an old phone; the person's records also hold a newer phone.

    A name beside that newer phone is linked to them through their strong records; a name beside
    a number the strong records share with many other people (a switchboard), or that only one
    strong record holds, or that belongs to someone else, stays a name-only candidate.
    """
    hasher = pii_hasher()
    person = _person_finding

    def phone(digits):
        return Finding("PHONE", 40, 52, 1.0, "t", hasher.hash("PHONE", f"+44{digits}"))

    email = Finding("EMAIL", 0, 26, 1.0, "t", hasher.hash("EMAIL", "william.turner@example.com"))
    account = Finding("ACCOUNT_ID", 60, 70, 1.0, "t", hasher.hash("ACCOUNT_ID", "acc-990001"))
    new_phone, switchboard, other = "7700900111", "3000000000", "7700900999"
    planted = {
        "s1": [email, phone(new_phone), account],
        "s2": [email, phone(new_phone), phone(switchboard)],
        "s3": [email, phone(switchboard)],
        "linked": [person("William Turner"), phone(new_phone)],
        "linked_nick": [person("Bill Turner"), phone(new_phone)],
        "one_record": [person("William Turner"), account],
        "switchboard": [person("William Turner"), phone(switchboard)],
        "namesake": [person("William Turner"), phone(other)],
        **{f"caller{i}": [person(f"Caller Number{i}"), phone(switchboard)] for i in range(6)},
    }

    _index_planted(data_dir, "linked", planted)

    found = _by_record(matching.locate_compute(erasure_request=_verified(officer)))
    tiers = {key: c.tier for key, c in found.items()}
    assert tiers == {
        "s1": "strong",
        "s2": "strong",
        "s3": "strong",
        "linked": "strong",
        "linked_nick": "strong",
        "one_record": "name",
        "switchboard": "name",
        "namesake": "name",
    }
    linked = found["linked"].evidence
    assert linked["direct"] == [] and linked["linked"]["entity_types"] == ["PHONE"]
    assert linked["linked"]["shared_with"] == ["s1", "s2"]
    assert (
        "phone number the request does not give, which 2 of the person's strong records hold"
        in linked["reason"]
    )
    assert found["linked"].score == matching.LINKED_SCORE["exact"]
    assert found["linked_nick"].score == matching.LINKED_SCORE["variant"]
    # Below every directly matched record, above every name-only one.
    assert max(found[k].score for k in ("linked", "linked_nick")) <= min(
        found[k].score for k in ("s1", "s2", "s3")
    )
    assert min(found[k].score for k in ("linked", "linked_nick")) > max(
        found[k].score for k in ("one_record", "switchboard", "namesake")
    )
