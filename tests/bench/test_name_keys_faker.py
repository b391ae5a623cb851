"""bench/name_keys_faker.py: names from Faker's lists (written by others) locating can key."""

from __future__ import annotations

import json

import name_keys_faker


def test_the_bench_counts_names_without_keys_and_writes_its_figures(tmp_path):
    out = tmp_path / "figures.json"
    figures = name_keys_faker.main(["--names", "300", "--out", str(out)])
    assert json.loads(out.read_text(encoding="utf-8")) == figures
    assert set(figures) == set(name_keys_faker.LOCALES)
    # Faker's Vietnamese family names include Lê, which a particle list once swallowed.
    for form in ("given_family", "as_written"):
        row = figures["vi_VN"][form]
        assert row["names"] == 300
        assert row["no_exact_key"] == 0 and row["guard_refused"] == 0, row
    assert figures["vi_VN"]["given_family"]["not_found_in_a_record"] == 0
    # Left: "An" first is read as the article (docs/performance.md, "Particles that are names").
    assert all(name.startswith("An ") for name in figures["vi_VN"]["as_written"]["examples"])


def test_a_name_that_is_one_word_without_its_particles_is_counted():
    figures = name_keys_faker.lost_names(["Jacobus van", "Hoa Le"])
    assert figures["no_exact_key"] == 1 and figures["guard_refused"] == 1
    assert figures["not_found_in_a_record"] == 1
    assert figures["examples"] == ["Jacobus van"]
