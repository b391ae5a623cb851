"""Locating on a corpus Lethe was not tuned for: recall and precision per identifier kind and variant family.

Run through ``bench/match_quality.py --variants DIR`` (or this file directly). ``DIR`` holds
``records.jsonl`` and ``ground_truth.json`` written by ``python -m bench.corpora.variants`` (a
generator written independently of Lethe's matcher, see ``bench/corpora/README.md``). The
records are registered and indexed through the real ingest path (Presidio scan and match keys),
each person's erasure request is recorded through the real service, and located by keyed-hash
lookup. Two kinds of request per person:

* **all identifiers** (what an officer records): strong-tier recall over the person's records
  that carry a direct identifier, strong-tier precision over every strong candidate, name-only
  recall (records naming the person and nothing else, any tier), namesakes that reached the
  strong tier (target: none);
* **one kind at a time** (the person gives only their e-mail, say): for every written occurrence
  of that kind, whether its record was found (direct kinds in the strong tier, names in any
  tier), per variant family. This is the per-family table.

``--without-match-keys`` indexes a second copy with match keys off (Presidio alone) for the
before/after comparison. Prints the tables and writes ``bench/results/variant_quality.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "variant_quality.json"
KIND_TO_LIST = {
    "name": "names",
    "email": "emails",
    "phone": "phones",
    "address": "addresses",
    "account_id": "account_ids",
}
DIRECT_KINDS = ("email", "phone", "address", "account_id")
TARGETS = {"strong_recall": 0.97, "strong_precision": 0.97, "name_only_recall": 0.9, "namesakes_in_strong": 0}


def _record_ids(items) -> list[str]:
    return [item["record_id"] if isinstance(item, dict) else item for item in items or ()]


def _located(erasure_request) -> dict[str, str]:
    from requests_app.matching.services import locate_compute
    from unlearning_jobs.models import DatasetRecord

    result = locate_compute(erasure_request=erasure_request)
    ids = dict(
        DatasetRecord.objects.filter(pk__in=[c.record_pk for c in result.candidates]).values_list(
            "pk", "record_id"
        )
    )
    return {ids[c.record_pk]: c.tier for c in result.candidates}


def _request(officer, lists: dict):
    from requests_app import services
    from requests_app.identifiers import SubjectIdentifiers

    return services.erasure_request_create(
        subject=SubjectIdentifiers.from_lists(**lists), legal_ground="art17_1_b", actor=officer
    )


def measure(*, truth: dict, officer, scope_name: str) -> dict:
    """Return the figures for one indexed copy of the corpus (the data set named ``scope_name``)."""
    from match_quality import clear_requests

    from unlearning_jobs.models import Dataset

    dataset = Dataset.objects.get(name=scope_name)
    clear_requests()
    strong_truth = strong_found = strong_offered = strong_right = 0
    name_only_truth = name_only_found = namesakes_strong = 0
    family = defaultdict(lambda: Counter())
    name_plus_one = defaultdict(Counter)
    latencies = []
    for person in truth["people"]:
        request = {KIND_TO_LIST[k]: list(person["request"].get(KIND_TO_LIST[k], [])) for k in KIND_TO_LIST}
        theirs = {item["record_id"]: item for item in person["records"]}
        name_only = set(_record_ids(person.get("name_only_records")))
        namesakes = set(_record_ids(person.get("namesake_records")))

        erasure_request = _request(officer, {**request})
        erasure_request.scope_all, erasure_request.scope_dataset_ids = False, [dataset.pk]
        erasure_request.save(update_fields=["scope_all", "scope_dataset_ids"])
        started = time.perf_counter()
        found = _located(erasure_request)
        latencies.append((time.perf_counter() - started) * 1000)
        direct_records = {
            rid for rid, item in theirs.items() if any(o["kind"] in DIRECT_KINDS for o in item["occurrences"])
        }
        strong_truth += len(direct_records)
        strong_found += sum(1 for rid in direct_records if found.get(rid) == "strong")
        for rid, tier in found.items():
            if tier == "strong":
                strong_offered += 1
                strong_right += rid in theirs or rid in name_only
                namesakes_strong += rid in namesakes
        name_only_truth += len(name_only)
        name_only_found += sum(1 for rid in name_only if rid in found)
        clear_requests()

        # The name and one direct kind, as people often ask: how many of their records holding any
        # direct identifier of theirs reach the strong tier (through links for the other kinds)?
        for kind in DIRECT_KINDS:
            list_name = KIND_TO_LIST[kind]
            if not request[list_name] or not request["names"]:
                continue
            pair = _request(officer, {"names": request["names"], list_name: request[list_name]})
            pair.scope_all, pair.scope_dataset_ids = False, [dataset.pk]
            pair.save(update_fields=["scope_all", "scope_dataset_ids"])
            located = _located(pair)
            clear_requests()
            counts = name_plus_one[kind]
            counts["truth"] += len(direct_records)
            counts["strong"] += sum(1 for rid in direct_records if located.get(rid) == "strong")
            counts["any_tier"] += sum(1 for rid in direct_records if rid in located)
            offered = [rid for rid, tier in located.items() if tier == "strong"]
            counts["offered"] += len(offered)
            counts["right"] += sum(1 for rid in offered if rid in theirs or rid in name_only)
            counts["namesakes"] += sum(1 for rid in offered if rid in namesakes)

        for kind, list_name in KIND_TO_LIST.items():
            if not request[list_name]:
                continue
            single = _request(officer, {list_name: request[list_name]})
            single.scope_all, single.scope_dataset_ids = False, [dataset.pk]
            single.save(update_fields=["scope_all", "scope_dataset_ids"])
            located = _located(single)
            clear_requests()
            for rid, item in theirs.items():
                for occurrence in item["occurrences"]:
                    if occurrence["kind"] != kind:
                        continue
                    hit = located.get(rid) == "strong" if kind in DIRECT_KINDS else rid in located
                    family[(kind, occurrence["family"])]["occurrences"] += 1
                    family[(kind, occurrence["family"])]["found"] += int(hit)
            if kind == "name":
                for rid in name_only:
                    family[("name", "name_only_record")]["occurrences"] += 1
                    family[("name", "name_only_record")]["found"] += int(rid in located)

    def ratio(a, b):
        return round(a / b, 4) if b else None

    per_kind = defaultdict(Counter)
    for (kind, _), counts in family.items():
        per_kind[kind].update(counts)
    latencies.sort()
    return {
        "strong": {
            "recall": ratio(strong_found, strong_truth),
            "found": strong_found,
            "truth": strong_truth,
            "precision": ratio(strong_right, strong_offered),
            "offered": strong_offered,
        },
        "name_only": {
            "recall": ratio(name_only_found, name_only_truth),
            "found": name_only_found,
            "truth": name_only_truth,
        },
        "namesakes_in_strong": namesakes_strong,
        "one_kind_requests": {
            kind: {
                "occurrences": c["occurrences"],
                "found": c["found"],
                "recall": ratio(c["found"], c["occurrences"]),
            }
            for kind, c in sorted(per_kind.items())
        },
        "name_plus_one_kind_requests": {
            kind: {
                "records_with_a_direct_identifier": c["truth"],
                "strong": c["strong"],
                "strong_recall": ratio(c["strong"], c["truth"]),
                "any_tier_recall": ratio(c["any_tier"], c["truth"]),
                "strong_precision": ratio(c["right"], c["offered"]),
                "namesakes_in_strong": c["namesakes"],
            }
            for kind, c in sorted(name_plus_one.items())
        },
        "families": {
            f"{kind}/{name}": {
                "occurrences": c["occurrences"],
                "found": c["found"],
                "recall": ratio(c["found"], c["occurrences"]),
            }
            for (kind, name), c in sorted(family.items())
        },
        "locate_ms": {
            "p50": round(latencies[len(latencies) // 2], 2),
            "p95": round(latencies[int(len(latencies) * 0.95)], 2),
        }
        if latencies
        else {},
    }


def print_figures(label: str, figures: dict) -> None:
    strong, name_only = figures["strong"], figures["name_only"]
    print(f"\n== {label}")
    print(
        f"all identifiers: strong recall {strong['recall']} ({strong['found']}/{strong['truth']}), "
        f"strong precision {strong['precision']} (of {strong['offered']}), name-only recall "
        f"{name_only['recall']} ({name_only['found']}/{name_only['truth']}), namesakes in strong "
        f"{figures['namesakes_in_strong']}   targets ≥ 0.97 / ≥ 0.97 / ≥ 0.9 / 0"
    )
    print("one kind at a time:")
    for kind, item in figures["one_kind_requests"].items():
        print(f"  {kind:<11} {item['found']:>5}/{item['occurrences']:<5} recall {item['recall']}")
    print("the name and one direct kind (records with any direct identifier of theirs):")
    for kind, item in figures["name_plus_one_kind_requests"].items():
        print(
            f"  name+{kind:<11} strong {item['strong']:>5}/{item['records_with_a_direct_identifier']:<5} "
            f"recall {item['strong_recall']} (any tier {item['any_tier_recall']}), strong precision "
            f"{item['strong_precision']}, namesakes in strong {item['namesakes_in_strong']}"
        )
    print(f"{'family':<40} {'found':>11}  recall")
    for name, item in figures["families"].items():
        flag = "" if (item["recall"] or 0) >= 0.95 else "   <"
        print(f"  {name:<38} {item['found']:>5}/{item['occurrences']:<5} {item['recall']}{flag}")
    if figures["locate_ms"]:
        print(f"locate p50 {figures['locate_ms']['p50']} ms, p95 {figures['locate_ms']['p95']} ms")


def run(*, corpus_dir: Path, processes: int, fresh: bool, without_match_keys: bool) -> dict:
    """Index the corpus (and, if asked, a copy without match keys), measure both, print and save."""
    from django.conf import settings
    from django.test.utils import override_settings
    from match_quality import ingest, officer_user

    truth = json.loads((corpus_dir / "ground_truth.json").read_text(encoding="utf-8"))
    # Data sets are registered from under LETHE_DATA_DIR (or an import root): work on a copy there.
    work = Path(settings.LETHE_DATA_DIR) / "bench-variants" / corpus_dir.name
    work.mkdir(parents=True, exist_ok=True)
    records = work / "records.jsonl"
    records.write_bytes((corpus_dir / "records.jsonl").read_bytes())
    officer = officer_user()
    results = {"corpus": str(corpus_dir), "people": len(truth["people"]), "targets": TARGETS}
    name = f"variants-{corpus_dir.name}"
    _, results["indexing"] = ingest(
        name=name, path=records, text_field="text", id_field="id", processes=processes, fresh=fresh
    )
    results["with_match_keys"] = measure(truth=truth, officer=officer, scope_name=name)
    print_figures(f"Lethe (Presidio and match keys), {results['people']} people", results["with_match_keys"])
    if without_match_keys:
        with override_settings(LETHE_PII_MATCH_KEYS=False):
            copy = work / "records-presidio-only.jsonl"
            copy.write_bytes(records.read_bytes())
            _, results["indexing_presidio_only"] = ingest(
                name=f"{name}-presidio-only",
                path=copy,
                text_field="text",
                id_field="id",
                processes=processes,
                fresh=fresh,
            )
            results["presidio_only"] = measure(
                truth=truth, officer=officer, scope_name=f"{name}-presidio-only"
            )
        print_figures("Presidio alone (match keys off)", results["presidio_only"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="folder with records.jsonl and ground_truth.json")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--without-match-keys", action="store_true")
    parser.add_argument(
        "--without-links", action="store_true", help="locate without linked identifiers (the before figure)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "LETHE_BENCH_QUALITY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lethe_bench_variants"
        ),
    )
    args = parser.parse_args()
    if args.without_links:
        os.environ["LETHE_LOCATE_LINKED_IDENTIFIERS"] = "0"  # read by the settings setup_django loads
    sys.path.insert(0, str(ROOT / "bench"))
    from match_quality import setup_django

    setup_django(args.database_url)
    run(
        corpus_dir=args.corpus.resolve(),
        processes=args.processes,
        fresh=args.fresh,
        without_match_keys=args.without_match_keys,
    )


if __name__ == "__main__":
    main()
