"""The guard probe corpus's training records (bench/corpora/guard_probes/records.py) are correct.

These tests check the records themselves, not Lethe's extraction: labels that are not in their
record, a record that locating could not have found, or records that changed the rest of the
corpus would make any figure measured on them meaningless. No Django: run with ``-p no:django``.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest

from bench.corpora.countries import COUNTRIES
from bench.corpora.guard_probes import build_probe_corpus
from bench.corpora.guard_probes.generate import main
from bench.corpora.guard_probes.records import (
    COMPANIES,
    KINDS,
    OWNER_ROLES,
    TrainingRecord,
    records_for,
    records_seed,
)

SEED = 16
PEOPLE = 200


@pytest.fixture(scope="module")
def corpus():
    return build_probe_corpus(seed=SEED, people=PEOPLE)


@pytest.fixture(scope="module")
def bare():
    return build_probe_corpus(seed=SEED, people=PEOPLE, with_records=False)


def _records(corpus):
    for person in corpus.people:
        for record in person.records:
            yield person, record


def _fold(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ß", "ss")


def _norm(value: str) -> str:
    """Case, diacritics, line breaks and spacing aside: "12 MILL ROAD\\nCAMBRIDGE" ~ "12 Mill Road, Cambridge"."""
    value = re.sub(r"\s*\n\s*", ", ", value.strip())
    return re.sub(r"\s+", " ", _fold(value).casefold())


def _nsn(written: str, country) -> str:
    """The national significant number of a phone however it is written (+44 (0)20 …, 020 …, 0044 …)."""
    digits = re.sub(r"\D", "", written)
    stripped = written.strip()
    if stripped.startswith(("+", "00")):
        if stripped.startswith("00"):
            digits = digits[2:]
        assert digits.startswith(country.calling_code), written
        digits = digits[len(country.calling_code) :]
        if "(0)" in stripped:
            digits = digits[1:]
    elif country.trunk_prefix and digits.startswith(country.trunk_prefix):
        digits = digits[len(country.trunk_prefix) :]
    return digits


def _is_requested(mention, person) -> bool:
    """The mention writes one of the request's identifiers, in a form locating matches."""
    request, country = person.request, COUNTRIES[person.country]
    if mention.kind == "name":
        forms = set(request["names"])
        if forms:
            forms |= {f"{person.given} {person.family}", f"{person.given} {person.middle} {person.family}"}
        return _norm(mention.written) in {_norm(f) for f in forms}
    if mention.kind == "email":
        return mention.written.casefold() in {e.casefold() for e in request["emails"]}
    if mention.kind == "phone":
        return _nsn(mention.written, country) in {_nsn(p, country) for p in request["phones"]}
    return _norm(mention.written) in {_norm(a) for a in request["addresses"]}


def _fingerprint(corpus) -> str:
    people = []
    for person in corpus.people:
        row = asdict(person)
        row.pop("records")
        people.append(row)
    return json.dumps(
        {"texts": [asdict(t) for t in corpus.texts], "people": people, "others": corpus.others},
        ensure_ascii=False,
        sort_keys=True,
    )


def test_the_same_seed_gives_the_same_records_and_another_seed_others(corpus):
    again = build_probe_corpus(seed=SEED, people=PEOPLE)
    assert [asdict(p)["records"] for p in again.people] == [asdict(p)["records"] for p in corpus.people]
    other = build_probe_corpus(seed=SEED + 1, people=20)
    ours = [[r.text for r in p.records] for p in corpus.people[:20]]
    assert [[r.text for r in p.records] for p in other.people] != ours


def test_records_do_not_depend_on_the_string_hash_seed():
    """Another process, another PYTHONHASHSEED: the same records (no draw follows a set's order)."""
    script = (
        "import hashlib, json; from dataclasses import asdict;"
        "from bench.corpora.guard_probes import build_probe_corpus;"
        f"c = build_probe_corpus(seed={SEED}, people=27);"
        "print(hashlib.sha256(json.dumps([asdict(p)['records'] for p in c.people]).encode()).hexdigest())"
    )
    root = Path(__file__).resolve().parents[2]
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        digests.add(done.stdout.strip())
    assert len(digests) == 1


def test_records_change_nothing_else_in_the_corpus(corpus, bare):
    """Texts, requests, people and other people of a seed are byte-identical with and without records."""
    assert all(not p.records for p in bare.people)
    assert _fingerprint(corpus) == _fingerprint(bare)
    assert [t.text for t in corpus.texts] == [t.text for t in bare.texts]
    assert [p.request for p in corpus.people] == [p.request for p in bare.people]


def test_records_come_from_their_own_stream_per_seed_and_person(corpus):
    """``records_for`` with the person's own seed gives the records the corpus holds.

    ``taken`` here is the suppressed people's phones and e-mails, a subset of what the corpus
    passes (it adds the other people's): the draw is the same where no drawn value clashed.
    """
    person = corpus.people[7]
    taken = frozenset({p.phone_nsn for p in corpus.people} | {p.email.casefold() for p in corpus.people})
    again = records_for(
        person, COUNTRIES[person.country], random.Random(records_seed(SEED, person.person_id)), taken=taken
    )
    assert [r.text for r in again] == [r.text for r in person.records]


def test_every_person_has_three_to_eight_records_with_unique_ids(corpus):
    ids = []
    for person in corpus.people:
        assert 3 <= len(person.records) <= 8, person.person_id
        assert all(isinstance(r, TrainingRecord) for r in person.records)
        ids += [r.record_id for r in person.records]
    assert len(ids) == len(set(ids))


def test_every_label_is_in_its_record_and_has_a_known_owner(corpus):
    for person, record in _records(corpus):
        assert record.mentions, record.record_id
        for mention in record.mentions:
            assert mention.kind in KINDS
            assert mention.owner == person.person_id or mention.owner in OWNER_ROLES, mention
            assert mention.written and mention.written in record.text, (record.record_id, mention)


def test_each_record_holds_an_identifier_the_request_gave(corpus):
    """That is how locating found it; for a name-only request, the full name."""
    for person, record in _records(corpus):
        own = [m for m in record.mentions if m.owner == person.person_id]
        assert any(_is_requested(m, person) for m in own), (record.record_id, person.request, record.text)


def test_other_peoples_identifiers_are_not_the_persons(corpus):
    for person, record in _records(corpus):
        country = COUNTRIES[person.country]
        for mention in record.mentions:
            if mention.owner == person.person_id:
                continue
            if mention.kind == "name":
                assert _norm(mention.written) != _norm(person.full_name), (record.record_id, mention)
            elif mention.kind == "email":
                assert mention.written.casefold() != person.email.casefold(), (record.record_id, mention)
            elif mention.kind == "phone":
                assert _nsn(mention.written, country) != person.phone_nsn, (record.record_id, mention)
            else:
                assert _norm(mention.written) != _norm(
                    person.request["addresses"][0] if person.request["addresses"] else ""
                )


def test_the_noise_is_there(corpus):
    owners = Counter(
        (m.owner if m.owner in OWNER_ROLES else "person", m.kind)
        for _, r in _records(corpus)
        for m in r.mentions
    )
    for role, kind in [
        ("agent", "name"),
        ("agent", "email"),
        ("company", "phone"),
        ("company", "email"),
        ("company", "address"),
        ("courier", "name"),
        ("courier", "phone"),
        ("other_customer", "name"),
        ("other_customer", "email"),
        ("other_customer", "phone"),
        ("other_customer", "address"),
        ("neighbour", "name"),
        ("neighbour", "address"),
    ]:
        assert owners[(role, kind)] >= 20, (role, kind, owners)
    records = [r for _, r in _records(corpus)]
    with_company = sum(any(m.owner == "company" for m in r.mentions) for r in records)
    assert with_company / len(records) > 0.4
    with_other = sum(any(m.owner in ("other_customer", "neighbour") for m in r.mentions) for r in records)
    assert 0.05 < with_other / len(records) < 0.4


def test_the_company_is_one_constant_per_country(corpus):
    phones: dict[str, set[str]] = {}
    for person, record in _records(corpus):
        country = COUNTRIES[person.country]
        for mention in record.mentions:
            if mention.owner != "company":
                continue
            if mention.kind == "phone":
                phones.setdefault(person.country, set()).add(_nsn(mention.written, country))
            elif mention.kind == "email":
                assert mention.written.endswith("@" + COMPANIES[person.country].domain)
            else:
                assert mention.written == COMPANIES[person.country].postal_address
    assert set(phones) == set(COUNTRIES)
    assert all(len(numbers) == 1 for numbers in phones.values()), phones


def test_each_identifier_shows_in_about_seventy_percent_of_people(corpus):
    """Among people whose request lacks it, 60-80 % have the identifier in some record (so
    extraction has something to find, and sometimes nothing)."""
    for kind in KINDS:
        key = "addresses" if kind == "address" else f"{kind}s"
        lacking = [p for p in corpus.people if not p.request[key]]
        shown = [
            p
            for p in lacking
            if any(m.kind == kind and m.owner == p.person_id for r in p.records for m in r.mentions)
        ]
        assert 0.55 <= len(shown) / len(lacking) <= 0.85, (kind, len(shown), len(lacking))


def test_records_are_written_in_the_forms_records_use(corpus):
    written = [
        (p, m.kind, m.written) for p, r in _records(corpus) for m in r.mentions if m.owner == p.person_id
    ]
    names = [w for p, k, w in written if k == "name"]
    phones = [(p, w) for p, k, w in written if k == "phone"]
    addresses = [w for p, k, w in written if k == "address"]
    assert sum("," in n for n in names) >= 20  # family name first (CRM)
    assert sum(n.isupper() for n in names) >= 20  # shipping labels
    assert sum("\n" in a for a in addresses) >= 50  # addresses on lines
    assert sum(w.startswith("+") for _, w in phones) >= 50
    assert sum(not w.startswith(("+", "00")) for _, w in phones) >= 50
    languages = Counter(r.language for _, r in _records(corpus))
    assert {"de", "fr", "es", "it", "nl"} <= set(languages)
    types = Counter(r.record_type for _, r in _records(corpus))
    assert len(types) == 8 and min(types.values()) >= 20, types


def test_gb_phones_are_in_ofcom_drama_ranges(corpus):
    drama = re.compile(r"^(2079460\d{3}|(11[3-8]|1[2-6]1)4960\d{3}|7700900\d{3}|8081570\d{3})$")
    gb = COUNTRIES["GB"]
    seen = 0
    for person, record in _records(corpus):
        if person.country != "GB":
            continue
        for mention in record.mentions:
            if mention.kind == "phone":
                seen += 1
                assert drama.match(_nsn(mention.written, gb)), (record.record_id, mention)
    assert seen > 50


def test_emails_are_at_example_domains_or_the_corpus_providers(corpus):
    providers = {d for c in COUNTRIES.values() for d in c.mail_domains}
    for person, record in _records(corpus):
        for mention in record.mentions:
            if mention.kind == "email" and mention.owner != person.person_id:
                domain = mention.written.rsplit("@", 1)[1]
                assert domain.endswith(".example") or domain in providers, mention


def test_the_cli_writes_the_records(tmp_path):
    assert main(["--out", str(tmp_path), "--people", "9", "--seed", str(SEED)]) == 0
    rows = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    labelled = {r["record_id"]: r["text"] for p in truth["people"] for r in p["records"]}
    assert rows and {row["id"]: row["text"] for row in rows} == labelled
