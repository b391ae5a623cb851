"""bench/guard.py's corpus mode: what a person's training records add to their rules, read as a deployment reads them."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import guard as guard_bench  # noqa: E402
from bench.corpora.guard_probes import build_probe_corpus  # noqa: E402


def test_the_records_link_mostly_the_persons_own_values_and_add_them_to_the_rules():
    # Ten people a country: the company's switchboard and agents are in many people's records, as
    # in a real data set (with three a country, one person's two records are half of them).
    corpus = build_probe_corpus(seed=5, people=90)
    linked, stats = guard_bench.records_linked_values(corpus, hasher=guard_bench.HASHER)

    by_owner = stats["linked_values_by_owner"]
    own = sum(counts.get("own", 0) for counts in by_owner.values())
    total = sum(sum(counts.values()) for counts in by_owner.values())
    staff = sum(counts.get(role, 0) for counts in by_owner.values() for role in ("company", "agent"))
    assert total and own / total >= 0.9 and staff / total <= 0.05
    assert stats["records"] == sum(len(person.records) for person in corpus.people)
    # A person whose request lacks a kind their records show gains rules of that kind.
    gained = [
        person
        for person in corpus.people
        if any(values and not person.request.get(field) for field, values in linked[person.person_id].items())
    ]
    assert gained
    person = gained[0]
    without = guard_bench.corpus_subject_rules(person, hasher=guard_bench.HASHER)
    with_records = guard_bench.corpus_subject_rules(
        person, hasher=guard_bench.HASHER, linked=linked[person.person_id]
    )
    assert set(without) < set(with_records)
