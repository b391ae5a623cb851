"""Scanning records: the right spans and hashes, and never a raw value in the output."""

from __future__ import annotations

import json

import pytest

from unlearning_jobs.engine.pii.entities import EntityType
from unlearning_jobs.engine.pii.match_keys import RECOGNISER as MATCH_KEY_RECOGNISER
from unlearning_jobs.engine.pii.normalise import (
    name_token_sorted,
    normalise_email,
    normalise_name,
    normalise_phone,
)
from unlearning_jobs.engine.pii.readers import SourceRecord
from unlearning_jobs.engine.pii.scan import (
    ScanSettings,
    count_findings,
    findings_from_results,
    scan_chunk_parallel,
    scan_configuration,
    scan_records,
)

EMAIL = "Jane.Doe@Example.com"
PHONE = "+44 20 7946 0958"
NAME = "Jane Doe"
RECORDS = [
    SourceRecord("r1", f"Hello, this is {NAME}. Reach me at {EMAIL} or on {PHONE}.", 1),
    SourceRecord("r2", "Order 12345 was delivered on time, thank you.", 2),
    SourceRecord("r3", "Account ACC-123456 belongs to Bill Turner of 12 Baker Street, Leeds.", 3),
    SourceRecord("r4", "Call (415) 555-2671 about the refund; DOB 12/03/1985.", 4),
]


@pytest.fixture(scope="module")
def scanned(scan_engine, hasher):
    return scan_records(RECORDS, hasher=hasher, engine=scan_engine)


def _detected(record_findings):
    """The findings Presidio detected (match keys, tested in test_match_keys.py, left out)."""
    return [f for f in record_findings.findings if f.recogniser != MATCH_KEY_RECOGNISER]


def _by_type(record_findings, entity_type):
    return [f for f in _detected(record_findings) if f.entity_type == entity_type]


def test_email_phone_and_name_are_found_with_spans_and_hashes(scanned, hasher):
    text = RECORDS[0].text
    first = scanned[0]
    assert first.record_id == "r1" and first.line_no == 1
    (email,) = _by_type(first, EntityType.EMAIL)
    assert text[email.start : email.end] == EMAIL
    assert email.value_hash == hasher.hash(EntityType.EMAIL, normalise_email(EMAIL))
    assert email.recogniser == "EmailRecognizer"
    (phone,) = _by_type(first, EntityType.PHONE)
    assert text[phone.start : phone.end] == PHONE
    assert phone.value_hash == hasher.hash(EntityType.PHONE, normalise_phone(PHONE))
    (person,) = _by_type(first, EntityType.PERSON)
    assert text[person.start : person.end] == NAME
    assert person.value_hash == hasher.hash(EntityType.PERSON, normalise_name(NAME))
    assert person.sorted_hash == hasher.hash(EntityType.PERSON, name_token_sorted(NAME))
    assert 0 < person.score <= 1


def test_record_without_pii_has_no_findings(scanned):
    assert _detected(scanned[1]) == []
    # Match keys are detection-free: pairs of words are kept as possible names, and "Order 12345"
    # as a possible account of prefix ORDER (found only by a request whose id has that prefix).
    assert {f.entity_type for f in scanned[1].findings} <= {"PERSON", "ACCOUNT_ID"}


def test_every_record_also_gets_its_match_keys_as_hashed_findings(scanned, hasher):
    from unlearning_jobs.engine.pii.match_keys import record_match_keys

    for record, found in zip(RECORDS, scanned, strict=True):
        keys = {(f.entity_type, f.value_hash) for f in found.findings if f.recogniser == MATCH_KEY_RECOGNISER}
        expected = {
            (k.entity_type.value, hasher.hash(k.entity_type, k.hashed_text()))
            for k in record_match_keys(record.text)
        }
        assert keys == expected
    first_keys = {f.entity_type for f in scanned[0].findings if f.recogniser == MATCH_KEY_RECOGNISER}
    assert {"EMAIL", "PHONE", "PERSON"} <= first_keys


def test_account_address_and_dob_are_found(scanned, hasher):
    third, fourth = scanned[2], scanned[3]
    types = {f.entity_type for f in third.findings}
    assert {"ACCOUNT_ID", "PERSON", "ADDRESS"} <= types
    assert not any(
        f.entity_type == "LOCATION" and f.start == RECORDS[2].text.index("ACC") for f in third.findings
    )
    (dob,) = _by_type(fourth, EntityType.DATE_OF_BIRTH)
    assert dob.value_hash == hasher.hash(EntityType.DATE_OF_BIRTH, "1985-03-12")
    (phone,) = _by_type(fourth, EntityType.PHONE)
    assert phone.value_hash == hasher.hash(EntityType.PHONE, "+14155552671")


def test_no_raw_value_appears_in_serialised_findings(scanned):
    serialised = json.dumps([record.as_dict() for record in scanned]).lower()
    for raw in (EMAIL, PHONE, NAME, "jane", "doe", "7946", "acc-123456", "baker", "turner", "1985"):
        assert raw.lower() not in serialised


def test_unnormalisable_values_are_dropped_and_counted(hasher):
    class Result:
        def __init__(self, entity_type, start, end):
            self.entity_type, self.start, self.end = entity_type, start, end
            self.score, self.recognition_metadata = 0.9, {"recognizer_name": "test"}

    text = "phone 12345 and mail x@y.example and name !!"
    results = [
        Result("PHONE_NUMBER", 6, 11),
        Result("EMAIL_ADDRESS", 21, 32),
        Result("PERSON", 42, 44),
        Result("NRP", 0, 5),
    ]
    findings, dropped = findings_from_results(text, results, hasher=hasher)
    assert [f.entity_type for f in findings] == ["EMAIL"]
    assert dropped == 2


def test_parallel_scan_equals_single_process_scan(scanned, hasher):
    parallel = scan_chunk_parallel(RECORDS, hasher=hasher, settings=ScanSettings(), processes=2, chunk_size=1)
    assert parallel == scanned


def test_count_and_configuration(scanned):
    detected = [
        type(record)(record.record_id, record.line_no, tuple(_detected(record)), record.dropped)
        for record in scanned
    ]
    counts = count_findings(detected)
    assert counts["EMAIL"] == 1 and counts["PHONE"] == 2
    configuration = scan_configuration()
    assert configuration["scan"]["context_enhancement"] is False
    assert configuration["scan"]["match_keys"]["version"] == "k1"
    assert configuration["spacy_model"]["version"] == "3.8.0"


def test_direct_recognisers_match_analyzer_analyze_on_the_same_artifacts(scan_engine):
    texts = [record.text for record in RECORDS]
    nlp_engine = scan_engine.analyzer.nlp_engine
    for text, direct in zip(texts, scan_engine.analyze_batch(texts), strict=True):
        artifacts = nlp_engine.process_text(text, "en")
        via_analyze = scan_engine.analyzer.analyze(text, language="en", nlp_artifacts=artifacts)
        assert sorted((r.entity_type, r.start, r.end) for r in direct) == sorted(
            (r.entity_type, r.start, r.end) for r in via_analyze
        )


def test_repeated_texts_get_the_same_findings_under_their_own_ids(scan_engine, hasher):
    records = [SourceRecord("a", RECORDS[0].text, 1), SourceRecord("b", RECORDS[0].text, 2)]
    first, second = scan_records(records, hasher=hasher, engine=scan_engine)
    assert (first.record_id, second.record_id) == ("a", "b")
    assert first.findings == second.findings and first.findings


def test_record_longer_than_the_limit_is_refused_by_id():
    from unlearning_jobs.engine.pii.scan import ScanInputError, check_record_lengths

    check_record_lengths([SourceRecord("short", "x" * 20, 1)], max_chars=20)
    with pytest.raises(ScanInputError, match="record 'long' \\(line 9\\) has 40 characters"):
        check_record_lengths([SourceRecord("long", "x" * 40, 9)], max_chars=20)
