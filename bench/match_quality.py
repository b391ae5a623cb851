"""Measure how well locating finds each demo person's records: recall and precision per tier.

Ingests the demo data set (``compliance.demo``: seeded synthetic support tickets and a ground
truth of which record mentions whom, and how: "direct", "name" or "quasi") into a dedicated
database (``lethe_bench_quality``), indexing it with the real Presidio scan. Then records one
erasure request per person through the real service, with the identifiers a person would give
(by default name, e-mail, phone and account id), locates each by keyed-hash lookup, and compares
the candidates with the ground truth:

* strong tier: recall over the records that mention the person directly, precision over
  everything it offers (a strong candidate that is the person's record in any way is right);
* all tiers: recall over every record of the person, precision over every candidate.

Misses are explained by what the index holds for the missed record (which entity types were
found in it), never by its text. Prints the figures and writes ``bench/results/match_quality.json``.

    python bench/match_quality.py --identifiers names emails phones account_ids
    python bench/match_quality.py --variants var/corpus/main --without-match-keys   # issue 13's table
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
RESULTS = ROOT / "bench" / "results" / "match_quality.json"


def setup_django(database_url: str) -> None:
    """Point Django at the bench database (created if missing), migrate it, keep data under var/bench."""
    import psycopg

    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance.settings")
    os.environ.setdefault("LETHE_VAR_DIR", str(ROOT / "var" / "bench"))
    os.environ.setdefault("LETHE_DATA_DIR", str(ROOT / "var" / "bench" / "data"))
    os.environ.setdefault("LETHE_LOG_LEVEL", "WARNING")
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def dataset_drop(name: str) -> None:
    """Delete a bench data set, its versions, index and stored copies (and the requests that used them)."""
    import shutil

    from unlearning_jobs.datasets.storage import dataset_version_folder
    from unlearning_jobs.models import Dataset

    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        return
    clear_requests()
    for version in dataset.versions.order_by("-number"):
        shutil.rmtree(dataset_version_folder(version), ignore_errors=True)
        version.delete()
    dataset.delete()


def ingest(*, name: str, path: Path, text_field, id_field: str | None, processes: int, fresh: bool = False):
    """Register and index ``path`` as data set ``name``, or reuse the version already holding it.

    ``fresh`` deletes the data set first, so the index is built again with the current code.
    """
    if fresh:
        dataset_drop(name)
    from unlearning_jobs.datasets.indexing import dataset_version_index_inline
    from unlearning_jobs.datasets.services import DatasetRegistrationError, dataset_version_register
    from unlearning_jobs.engine.pii.readers import DatasetFormatError, read_records
    from unlearning_jobs.models import DatasetVersion

    started = time.perf_counter()
    reused = False
    try:
        version = dataset_version_register(
            name=name, path=path, actor=None, text_field=text_field, id_field=id_field, enqueue=False
        )
    except DatasetRegistrationError as error:
        if "exactly those of" not in " ".join(error.messages):
            raise
        version = DatasetVersion.objects.filter(dataset__name=name).order_by("-number").first()
        reused = version.status == "indexed"
    try:
        count = sum(1 for _ in read_records(path, text_field=text_field, id_field=id_field))
    except DatasetFormatError as error:
        raise SystemExit(f"cannot read {path}: {error}") from None
    progress = dataset_version_index_inline(version=version, processes=processes)
    return version, {
        "records": count,
        "seconds": progress["duration_s"] if reused else round(time.perf_counter() - started, 1),
        "reused": reused,
        "findings_by_type": progress["findings_by_type"],
        "records_per_second": progress["records_per_second"],
    }


def officer_user():
    from django.contrib.auth import get_user_model

    from compliance.demo import demo_users_seed

    demo_users_seed(password="bench-password-not-used")
    return get_user_model().objects.get(username="officer")


def clear_requests() -> None:
    """Remove earlier runs' requests, so each person has exactly one."""
    from requests_app.models import ErasureRequest

    ErasureRequest.objects.update(duplicate_of=None)
    ErasureRequest.objects.all().delete()


def candidates_by_record(result) -> dict[str, tuple[str, float]]:
    from unlearning_jobs.models import DatasetRecord

    ids = dict(
        DatasetRecord.objects.filter(pk__in=[c.record_pk for c in result.candidates]).values_list(
            "pk", "record_id"
        )
    )
    return {ids[c.record_pk]: (c.tier, c.score) for c in result.candidates}


def found_types(version, record_ids) -> dict[str, list[str]]:
    """Return the entity types the index holds for each record (to explain a miss without its text)."""
    from unlearning_jobs.models import PiiFinding

    types: dict[str, set[str]] = defaultdict(set)
    for record_id, kind in PiiFinding.objects.filter(
        version=version, record__record_id__in=list(record_ids)
    ).values_list("record__record_id", "entity_type"):
        types[record_id].add(kind)
    return {record_id: sorted(types.get(record_id, ())) for record_id in record_ids}


def ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--identifiers",
        nargs="+",
        default=["names", "emails", "phones", "account_ids"],
        choices=["names", "emails", "phones", "addresses", "account_ids"],
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="Index the data set again from scratch")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "LETHE_BENCH_QUALITY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lethe_bench_quality"
        ),
    )
    parser.add_argument(
        "--variants",
        type=Path,
        metavar="DIR",
        help="measure on an independent corpus instead (bench/variant_quality.py)",
    )
    parser.add_argument(
        "--without-match-keys",
        action="store_true",
        help="with --variants: also index a copy with Presidio alone, for comparison",
    )
    args = parser.parse_args()
    setup_django(args.database_url)
    if args.variants:
        from variant_quality import run

        run(
            corpus_dir=args.variants.resolve(),
            processes=args.processes,
            fresh=args.fresh,
            without_match_keys=args.without_match_keys,
        )
        return

    from django.conf import settings

    from compliance.demo import demo_dataset_seed
    from requests_app import services
    from requests_app.identifiers import SubjectIdentifiers
    from requests_app.matching.services import locate_compute

    records_path, truth_path, _, _ = demo_dataset_seed(data_dir=Path(settings.LETHE_DATA_DIR))
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    version, indexing = ingest(
        name="demo-support-tickets",
        path=records_path,
        text_field="text",
        id_field="id",
        processes=args.processes,
        fresh=args.fresh,
    )
    print(
        f"{'reused the index of' if indexing['reused'] else 'indexed'} {indexing['records']} demo records "
        f"(scan {indexing['seconds']}s, "
        f"{indexing['records_per_second']} records/s): {indexing['findings_by_type']}"
    )

    officer = officer_user()
    clear_requests()
    field_of = {
        "names": "full_name",
        "emails": "email",
        "phones": "phone",
        "addresses": "address",
        "account_ids": "account_id",
    }
    mentions: dict[str, dict[str, str]] = defaultdict(dict)  # person → record → how
    for record_id, found in truth["records"].items():
        for item in found:
            mentions[item["person_id"]][record_id] = item["how"]

    counts = Counter()
    per_tier_right = Counter()
    per_tier_offered = Counter()
    missed: dict[str, list[str]] = defaultdict(list)
    wrong: list[tuple[str, str, str]] = []
    latencies = []
    for person in truth["people"]:
        values = dict(person, full_name=f"{person['first_name']} {person['last_name']}")
        subject = SubjectIdentifiers.from_lists(
            **{name: [values[field_of[name]]] for name in args.identifiers}
        )
        erasure_request = services.erasure_request_create(
            subject=subject, legal_ground="art17_1_b", actor=officer
        )
        started = time.perf_counter()
        found = candidates_by_record(locate_compute(erasure_request=erasure_request))
        latencies.append((time.perf_counter() - started) * 1000)
        theirs = mentions[person["person_id"]]
        for record_id, how in theirs.items():
            counts[f"truth_{how}"] += 1
            if record_id in found:
                counts[f"found_{how}"] += 1
                if found[record_id][0] == "strong":
                    counts[f"found_{how}_as_strong"] += 1
            else:
                missed[how].append(record_id)
        for record_id, (tier, _) in found.items():
            per_tier_offered[tier] += 1
            if record_id in theirs:
                per_tier_right[tier] += 1
            else:
                wrong.append((person["person_id"], record_id, tier))

    direct_total = counts["truth_direct"]
    all_total = sum(counts[f"truth_{how}"] for how in ("direct", "name", "quasi"))
    found_all = sum(counts[f"found_{how}"] for how in ("direct", "name", "quasi"))
    offered_all = sum(per_tier_offered.values())
    right_all = sum(per_tier_right.values())
    figures = {
        "strong": {
            "recall": ratio(counts["found_direct_as_strong"], direct_total),
            "precision": ratio(per_tier_right["strong"], per_tier_offered["strong"]),
            "found": counts["found_direct_as_strong"],
            "truth": direct_total,
            "offered": per_tier_offered["strong"],
        },
        "all_tiers": {
            "recall": ratio(found_all, all_total),
            "precision": ratio(right_all, offered_all),
            "found": found_all,
            "truth": all_total,
            "offered": offered_all,
        },
        "by_ground_truth_kind": {
            how: {
                "truth": counts[f"truth_{how}"],
                "found": counts[f"found_{how}"],
                "recall": ratio(counts[f"found_{how}"], counts[f"truth_{how}"]),
            }
            for how in ("direct", "name", "quasi")
        },
        "by_tier_precision": {
            tier: {
                "offered": per_tier_offered[tier],
                "right": per_tier_right[tier],
                "precision": ratio(per_tier_right[tier], per_tier_offered[tier]),
            }
            for tier in ("strong", "name", "quasi")
        },
    }
    explanations = {}
    for how, record_ids in missed.items():
        types = found_types(version, record_ids)
        explanations[how] = {
            "missed": len(record_ids),
            "entity_types_found_in_missed_records": dict(
                Counter(", ".join(t) or "(nothing)" for t in types.values()).most_common()
            ),
            "examples": sorted(record_ids)[:8],
        }
    latencies.sort()
    result = {
        "identifiers": args.identifiers,
        "people": len(truth["people"]),
        "indexing": indexing,
        **figures,
        "misses": explanations,
        "wrong_examples": [{"person": p, "record": r, "tier": t} for p, r, t in wrong[:10]],
        "locate_ms": {
            "p50": round(latencies[len(latencies) // 2], 2),
            "p95": round(latencies[int(len(latencies) * 0.95)], 2),
        },
        "targets": {"strong_recall": 0.99, "strong_precision": 0.98},
    }
    print(f"{len(truth['people'])} people, identifiers {', '.join(args.identifiers)}")
    print(
        f"strong tier: recall {figures['strong']['recall']} ({figures['strong']['found']}/{direct_total} direct "
        f"mentions), precision {figures['strong']['precision']} ({per_tier_right['strong']}/"
        f"{per_tier_offered['strong']})   targets ≥ 0.99 / ≥ 0.98"
    )
    print(
        f"all tiers:   recall {figures['all_tiers']['recall']} ({found_all}/{all_total}), "
        f"precision {figures['all_tiers']['precision']} ({right_all}/{offered_all})"
    )
    for how, item in figures["by_ground_truth_kind"].items():
        print(f"  ground truth '{how}': {item['found']}/{item['truth']} found (recall {item['recall']})")
    for tier, item in figures["by_tier_precision"].items():
        print(
            f"  tier {tier:<6}: {item['right']}/{item['offered']} offered are the person's (precision {item['precision']})"
        )
    for how, item in explanations.items():
        print(
            f"  missed '{how}' records: {item['missed']}; entity types the index found in them: "
            f"{item['entity_types_found_in_missed_records']}"
        )
    print(f"locate (search only) p50 {result['locate_ms']['p50']} ms, p95 {result['locate_ms']['p95']} ms")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
