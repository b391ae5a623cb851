"""The independent variant corpus (bench/corpora/variants.py) is itself correct.

These tests check the corpus, not Lethe's matching: a corpus whose labels are wrong would make any
recall or precision figure measured on it meaningless.
"""

from __future__ import annotations

import json
import re

import pytest

from bench.corpora.variants import (
    FAMILIES,
    KINDS,
    STRONG_KINDS,
    STRONG_TEMPLATES,
    build_corpus,
    main,
    strip_accents,
)

PEOPLE = 60
# Every family must be measurable: at least this many labelled occurrences in a 60-person corpus.
MIN_OCCURRENCES_PER_FAMILY = 5
REQUIRED_COUNTRIES = {"GB", "US", "DE", "FR", "ES", "IT", "NL", "IE", "AU"}


@pytest.fixture(scope="module")
def corpora():
    return {split: build_corpus(13, PEOPLE, split) for split in ("main", "heldout")}


@pytest.fixture(scope="module")
def truths(corpora):
    return {split: corpus.ground_truth() for split, corpus in corpora.items()}


def _texts(corpus) -> dict[str, str]:
    return {row["id"]: row["text"] for row in corpus.jsonl_rows()}


def _digit_runs(text: str) -> list[str]:
    """Digit sequences with the separators people put inside numbers removed: (020) 7946-0958 -> 02079460958."""
    return re.findall(r"\d+", re.sub(r"(?<=\d)[ \-./()]+(?=\d)", "", text))


def _person_identifiers(corpus):
    """(person_id, e-mails case-folded, phone numbers' national digits, account numbers) per person."""
    for person in corpus.people:
        yield (
            person.identity_id,
            [e.casefold() for e in person.emails],
            [p.number.digits for p in person.phones],
            str(person.account.value),
        )


def test_the_same_seed_builds_the_same_corpus_and_another_seed_does_not():
    first, second = build_corpus(5, 15), build_corpus(5, 15)
    assert first.jsonl_rows() == second.jsonl_rows()
    assert first.ground_truth() == second.ground_truth()
    assert build_corpus(6, 15).jsonl_rows() != first.jsonl_rows()


@pytest.mark.parametrize("split", ["main", "heldout"])
def test_size_and_countries(corpora, split):
    summary = corpora[split].summary()
    assert summary["people"] == PEOPLE
    assert 1500 <= summary["records"] <= 3000
    assert REQUIRED_COUNTRIES <= set(summary["countries"])
    assert all(
        summary["records_by_tier"][tier] > 0 for tier in ("strong", "name_only", "namesake", "distractor")
    )


@pytest.mark.parametrize("split", ["main", "heldout"])
def test_every_labelled_occurrence_is_written_in_its_record(corpora, truths, split):
    texts = _texts(corpora[split])
    checked = 0
    for person in truths[split]["people"]:
        for group in ("records", "name_only_records", "namesake_records"):
            for record in person[group]:
                for occurrence in record["occurrences"]:
                    assert occurrence["kind"] in KINDS
                    assert occurrence["family"] in FAMILIES[occurrence["kind"]]
                    written = occurrence["text_as_written"]
                    assert written in texts[record["record_id"]], (record, occurrence)
                    assert written == written.strip() and "  " not in written, occurrence
                    checked += 1
    assert checked > 3000


@pytest.mark.parametrize("split", ["main", "heldout"])
def test_every_family_of_every_kind_occurs_often_enough(corpora, split):
    counts = corpora[split].summary()["occurrences_by_kind_and_family"]
    too_few = {
        (kind, family): counts[kind][family]
        for kind in KINDS
        for family in FAMILIES[kind]
        if counts[kind][family] < MIN_OCCURRENCES_PER_FAMILY
    }
    assert not too_few


def test_variants_differ_from_the_request_except_exact(truths):
    for person in truths["main"]["people"]:
        request = person["request"]
        typed = {
            "name": request["names"],
            "email": request["emails"],
            "phone": request["phones"],
            "address": request["addresses"],
            "account_id": request["account_ids"],
        }
        for record in person["records"] + person["name_only_records"]:
            for occurrence in record["occurrences"]:
                if occurrence["family"] != "exact":
                    assert occurrence["text_as_written"] not in typed[occurrence["kind"]], occurrence
                else:
                    assert occurrence["text_as_written"] in typed[occurrence["kind"]], occurrence


def test_gmail_addresses_are_ones_gmail_accepts(corpora):
    """Letters, digits and dots only: the dots family relies on Google's documented rule."""
    gmail = [e for p in corpora["main"].people for e in p.emails if e.endswith("@gmail.com")]
    assert gmail and all(re.fullmatch(r"[a-z0-9.]+@gmail\.com", e) for e in gmail)


def test_requests_are_what_a_person_types_on_the_form(truths):
    for person in truths["main"]["people"]:
        request = person["request"]
        assert request["country"] == person["country"]
        for key in ("names", "emails", "phones", "addresses", "account_ids"):
            assert request[key] and all(isinstance(v, str) and v.strip() for v in request[key])
        assert all("@" in e for e in request["emails"])
        assert all("\n" not in a for a in request["addresses"])


def test_phone_requests_come_in_both_national_and_international_forms(corpora):
    forms = {p.request_form for person in corpora["main"].people for p in person.phones}
    assert forms == {"national", "international"}
    reverse = corpora["main"].summary()["phone_forms_by_family"]["reverse_form"]
    assert reverse.get("national", 0) >= MIN_OCCURRENCES_PER_FAMILY
    assert reverse.get("international", 0) >= MIN_OCCURRENCES_PER_FAMILY


@pytest.mark.parametrize("split", ["main", "heldout"])
def test_strong_records_carry_a_strong_identifier_and_name_only_records_only_a_name(corpora, truths, split):
    texts = _texts(corpora[split])
    identifiers = {
        pid: (emails, phones, account) for pid, emails, phones, account in _person_identifiers(corpora[split])
    }
    for person in truths[split]["people"]:
        for record in person["records"]:
            assert any(o["kind"] in STRONG_KINDS for o in record["occurrences"])
        emails, phones, account = identifiers[person["person_id"]]
        for record in person["name_only_records"]:
            assert {o["kind"] for o in record["occurrences"]} == {"name"}
            text = texts[record["record_id"]]
            runs = _digit_runs(text)
            assert not any(e in text.casefold() for e in emails)
            assert not any(p in run for p in phones for run in runs)
            assert account not in [run.lstrip("0") for run in runs]


@pytest.mark.parametrize("split", ["main", "heldout"])
def test_namesakes_share_the_name_but_none_of_the_identifiers(corpora, truths, split):
    corpus = corpora[split]
    texts = _texts(corpus)
    identifiers = {
        pid: (emails, phones, account) for pid, emails, phones, account in _person_identifiers(corpus)
    }
    kinds_seen = set()
    for person in truths[split]["people"]:
        own = {r["record_id"] for r in person["records"] + person["name_only_records"]}
        namesake_ids = {r["record_id"] for r in person["namesake_records"]}
        assert not own & namesake_ids
        emails, phones, account = identifiers[person["person_id"]]
        for record in person["namesake_records"]:
            kinds_seen.add(record["namesake_kind"])
            assert record["occurrences"] and all(o["kind"] == "name" for o in record["occurrences"])
            text = texts[record["record_id"]]
            runs = _digit_runs(text)
            assert not any(e in text.casefold() for e in emails)
            assert not any(p in run for p in phones for run in runs)
            assert account not in [run.lstrip("0") for run in runs]
    assert kinds_seen == {"exact_name", "other_middle_name"}
    for person_id, namesakes in corpus.namesakes.items():
        person = next(p for p in corpus.people if p.identity_id == person_id)
        for namesake, kind in namesakes:
            assert (namesake.name.given, namesake.name.family) == (person.name.given, person.name.family)
            assert (namesake.name == person.name) == (kind == "exact_name")
            assert not set(namesake.emails) & set(person.emails)


@pytest.mark.parametrize("split", ["main", "heldout"])
def test_distractors_mention_no_requested_identifier_and_near_misses_point_at_people(corpora, truths, split):
    corpus = corpora[split]
    texts = _texts(corpus)
    people = list(_person_identifiers(corpus))
    distractors = truths[split]["distractor_records"]
    for record in distractors:
        text = texts[record["record_id"]]
        folded, runs = text.casefold(), _digit_runs(text)
        stripped_runs = {run.lstrip("0") for run in runs}
        for _, emails, phones, account in people:
            assert not any(e in folded for e in emails), record
            assert not any(p in run for p in phones for run in runs), record
            assert account not in stripped_runs, record
    names = [strip_accents(p.name.request_text()).casefold() for p in corpus.people]
    for record in distractors:
        folded = strip_accents(texts[record["record_id"]]).casefold()
        assert not any(name in folded for name in names), record
    near = [r["near_miss"] for r in distractors if r["near_miss"]]
    assert {n["kind"] for n in near} == set(STRONG_KINDS)
    person_ids = {p.identity_id for p in corpus.people}
    assert all(n["of_person"] in person_ids for n in near)


def test_every_record_is_accounted_for_exactly_once(corpora, truths):
    for split in ("main", "heldout"):
        ids = [row["id"] for row in corpora[split].jsonl_rows()]
        assert len(ids) == len(set(ids))
        truth = truths[split]
        labelled = [
            r["record_id"]
            for p in truth["people"]
            for group in ("records", "name_only_records", "namesake_records")
            for r in p[group]
        ]
        labelled += [r["record_id"] for r in truth["distractor_records"]]
        assert sorted(labelled) == sorted(ids)


def test_heldout_differs_from_main(corpora, truths):
    main_texts = set(_texts(corpora["main"]).values())
    heldout_texts = set(_texts(corpora["heldout"]).values())
    assert len(main_texts & heldout_texts) == 0
    main_requests = [p["request"] for p in truths["main"]["people"]]
    heldout_requests = [p["request"] for p in truths["heldout"]["people"]]
    assert not [r for r in heldout_requests if r in main_requests]
    heldout_only = {t.record_type for t in STRONG_TEMPLATES if t.splits == ("heldout",)}
    types = {split: {r.record_type for r in corpora[split].records} for split in ("main", "heldout")}
    assert heldout_only and heldout_only <= types["heldout"]
    assert not heldout_only & types["main"]


def test_cli_writes_records_without_labels_and_a_ground_truth(tmp_path):
    assert main(["--out", str(tmp_path), "--people", "9", "--seed", "3", "--split", "heldout"]) == 0
    rows = [
        json.loads(line) for line in (tmp_path / "records.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert rows and all(set(row) == {"id", "text"} for row in rows)
    truth = json.loads((tmp_path / "ground_truth.json").read_text(encoding="utf-8"))
    assert truth["split"] == "heldout" and truth["seed"] == 3
    assert len(truth["people"]) == 9
    assert set(truth["summary"]["occurrences_by_kind_and_family"]) == set(KINDS)
    person = truth["people"][0]
    assert set(person) == {
        "person_id",
        "country",
        "request",
        "records",
        "name_only_records",
        "namesake_records",
    }
    assert set(person["request"]) == {"names", "emails", "phones", "addresses", "account_ids", "country"}
    assert rows == build_corpus(3, 9, "heldout").jsonl_rows()
