"""Names from Faker's locale lists that locating cannot key or the guard refuses.

Faker's name lists were written by others for other purposes, so they show which real-world name
shapes the shared name rules lose: a name that gets no exact match key is located only through
variant keys or Presidio's exact spelling; one that shares no key (exact or variant) with a
record writing it ("Ticket 4411: {name} asked for a copy of the invoice.") is not found there by
the match keys (Presidio's NER may still find the same spelling); and one the guard refuses as
"one word" cannot be suppressed by name. Seeded, per locale 2,000 "given family" names and 2,000
names as the locale writes them (``Faker.name()``: titles, middle names, family name first where
the locale puts it); no index, no database.

    .venv/bin/python bench/name_keys_faker.py

Prints one line per locale and writes ``bench/results/name_keys_faker.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "name_keys_faker.json"
LOCALES = ("vi_VN", "es_ES", "nl_NL", "de_DE", "fr_FR", "it_IT", "pt_BR", "en_IE", "en_US", "fil_PH")

from faker import Faker  # noqa: E402  (after the path set-up above)

from unlearning_jobs.engine.guard.rules import name_forms  # noqa: E402
from unlearning_jobs.engine.pii.entities import EntityType  # noqa: E402
from unlearning_jobs.engine.pii.match_keys import identifier_match_keys, record_match_keys  # noqa: E402

RECORD = "Ticket 4411: {name} asked for a copy of the invoice."


def _exact_keys(name: str) -> set[str]:
    return {key.key for key in identifier_match_keys(EntityType.PERSON, name) if not key.variant}


def _keys(name: str) -> set[str]:
    return {key.key for key in identifier_match_keys(EntityType.PERSON, name)}


def _record_keys(text: str) -> set[str]:
    return {key.key for key in record_match_keys(text) if key.entity_type is EntityType.PERSON}


def lost_names(names: list[str]) -> dict:
    """Return how many of ``names`` get no exact name key, how many share no key with a record
    writing them, and how many the guard refuses."""
    no_key = [name for name in names if not _exact_keys(name)]
    not_in_record = [name for name in names if not _keys(name) & _record_keys(RECORD.format(name=name))]
    refused = []
    for name in names:
        try:
            name_forms(name)
        except ValueError:
            refused.append(name)
    return {
        "names": len(names),
        "no_exact_key": len(no_key),
        "not_found_in_a_record": len(not_in_record),
        "guard_refused": len(refused),
        # Faker's people are fictitious: showing a few is safe here and never done for real data.
        "examples": sorted(set(no_key + not_in_record + refused))[:5],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=2000, help="names per locale")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    figures = {}
    for locale in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(args.seed)
        given_family = [f"{fake.first_name()} {fake.last_name()}" for _ in range(args.names)]
        as_written = [fake.name() for _ in range(args.names)]
        figures[locale] = {"given_family": lost_names(given_family), "as_written": lost_names(as_written)}
        for form, row in figures[locale].items():
            print(
                f"{locale:7} {form:12} {row['names']} names: no exact key {row['no_exact_key']}, "
                f"not found in a record {row['not_found_in_a_record']}, "
                f"refused by the guard {row['guard_refused']}  {row['examples']}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    print(f"wrote {args.out}")
    return figures


if __name__ == "__main__":
    main()
