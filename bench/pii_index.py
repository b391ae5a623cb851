"""Benchmark Lethe's PII scan against a plain loop of Presidio's ``AnalyzerEngine.analyze``.

Both sides use the same spaCy model and the same recognisers (``build_analyzer``) on the same
synthetic customer-support records, in one process, interleaved slice by slice so that both
see the same machine load; both sides' engines (and the pool's workers) are loaded before
timing starts, as they are in a long-running worker. Recall is Lethe's findings against the plain loop's, compared
as (record id, entity type, keyed hash of the normalised value), so a speed-up that lost a value
would show. Prints records per second and the ratio, and writes ``bench/results/pii_index.json``.

    python bench/pii_index.py --records 1000 --processes 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unlearning_jobs.engine.pii.analyzer import AnalyzerSettings, build_analyzer  # noqa: E402
from unlearning_jobs.engine.pii.hashing import KeyedHasher  # noqa: E402
from unlearning_jobs.engine.pii.readers import SourceRecord  # noqa: E402
from unlearning_jobs.engine.pii.scan import (  # noqa: E402
    RecordFindings,
    ScanPool,
    ScanSettings,
    findings_from_results,
    get_scan_engine,
    scan_configuration,
)

RESULTS = Path(__file__).resolve().parent / "results" / "pii_index.json"

_TEMPLATES = (
    "Hi, my name is {name} and I can't log in. My email is {email} and you can call me on "
    "{phone}. Account {acc}.",
    "Customer {name} ({email}) reported a late delivery to {addr}, {city}. Phone {phone}. "
    "Please refund order {order}.",
    "Ticket #{order}: {name} says the invoice sent to {email} is wrong. Billing address {addr}, {city}.",
    "Call back {name} at {phone} about the cancelled subscription; DOB {dob} verified, account {acc}.",
    "Thanks for your help yesterday! The parcel arrived in {city} but the box was damaged. Order {order}.",
    "{name} wants to change the delivery address from {addr} to a new flat in {city}; contact {email}.",
    "Agent note: spoke with {name}, born on {dob}, who lives in {city}. Mobile {phone}. Escalated to tier 2.",
    "Refund request for order {order}. No contact details given, the customer asked not to be called again.",
)
_FILLERS = (
    " I have been a customer for years and this is the first time something went wrong.",
    " Please look into this as soon as possible, it is quite urgent for me.",
    " The website kept showing an error page when I tried to update my details.",
    " I already tried resetting my password twice without any luck.",
    "",
)
_SUFFIXES = ("Street", "Road", "Lane", "Avenue", "St", "Rd", "Close", "Drive")


def make_records(count: int, *, seed: int = 1234) -> list[SourceRecord]:
    """Return ``count`` seeded synthetic support records (about 190 characters each)."""
    from faker import Faker

    fake_gb, fake_us = Faker("en_GB"), Faker("en_US")
    fake_gb.seed_instance(seed)
    fake_us.seed_instance(seed + 1)
    rng = random.Random(seed)
    records = []
    for index in range(count):
        fake = fake_gb if rng.random() < 0.6 else fake_us
        first, last = fake.first_name(), fake.last_name()
        date_format = rng.choice(("%d/%m/%Y", "%d %B %Y", "%Y-%m-%d"))
        text = rng.choice(_TEMPLATES).format(
            name=f"{first} {last}",
            email=f"{first}.{last}{rng.randint(1, 99)}@{fake.free_email_domain()}".lower(),
            phone=fake.phone_number(),
            acc=f"ACC-{rng.randint(100000, 999999)}",
            addr=f"{rng.randint(1, 250)} {fake.last_name()} {rng.choice(_SUFFIXES)}",
            city=fake.city(),
            order=rng.randint(10000, 99999),
            dob=fake.date_of_birth().strftime(date_format),
        ) + rng.choice(_FILLERS)
        records.append(SourceRecord(record_id=f"r{index:06d}", text=text, line_no=index + 1))
    return records


def _keys(results: list[RecordFindings]) -> set[tuple[str, str, str]]:
    return {
        (record.record_id, finding.entity_type, finding.value_hash)
        for record in results
        for finding in record.findings
    }


def _spans(results: list[RecordFindings]) -> set[tuple[str, str, int, int]]:
    return {
        (record.record_id, finding.entity_type, finding.start, finding.end)
        for record in results
        for finding in record.findings
    }


def run(
    records: int,
    processes: int,
    seed: int,
    rounds: int = 5,
    data: list[SourceRecord] | None = None,
    match_keys: bool = True,
) -> dict:
    """Run the sides interleaved in ``rounds`` slices and return the figures.

    Interleaving gives each side the same share of whatever else the machine is doing: on a
    shared 2-core machine the load changes from minute to minute.
    """
    load_before = os.getloadavg()[0]
    data = data if data is not None else make_records(records, seed=seed)
    records = len(data)
    hasher = KeyedHasher(key=b"lethe-benchmark-key-not-secret!!", key_id="bench")
    # Match keys (docs/pii.md) are Lethe's own addition to what Presidio finds: on by default, as
    # indexing runs; --without-match-keys measures the scan alone.
    settings = ScanSettings(analyzer=AnalyzerSettings(), match_keys=match_keys)

    plain_analyzer = build_analyzer(settings.analyzer)
    plain_analyzer.analyze(data[0].text, language="en")
    engine = get_scan_engine(settings)
    engine.scan(data[:8], hasher=hasher)

    def plain_scan(batch: list[SourceRecord]) -> list[RecordFindings]:
        out = []
        for record in batch:
            results = plain_analyzer.analyze(record.text, language="en")
            findings, dropped = findings_from_results(
                record.text,
                results,
                hasher=hasher,
                default_region=settings.default_region,
                phone_regions=settings.analyzer.phone_regions,
            )
            out.append(RecordFindings(record.record_id, record.line_no, findings, dropped))
        return out

    size = -(-records // rounds)
    slices = [data[i : i + size] for i in range(0, records, size)]
    plain_results: list[RecordFindings] = []
    single_results: list[RecordFindings] = []
    parallel_results: list[RecordFindings] = []
    plain_seconds = single_seconds = parallel_seconds = 0.0
    plain_cpu = single_cpu = 0.0
    pool_start = time.perf_counter()
    with ScanPool(hasher=hasher, settings=settings, processes=processes) as pool:
        pool.wait_ready()
        pool_ready_seconds = time.perf_counter() - pool_start
        chunk_size = max(1, -(-size // processes))
        for batch in slices:
            start, cpu = time.perf_counter(), time.process_time()
            plain_results += plain_scan(batch)
            plain_seconds += time.perf_counter() - start
            plain_cpu += time.process_time() - cpu
            start, cpu = time.perf_counter(), time.process_time()
            single_results += engine.scan(batch, hasher=hasher)
            single_seconds += time.perf_counter() - start
            single_cpu += time.process_time() - cpu
            start = time.perf_counter()
            parallel_results += pool.scan(batch, chunk_size=chunk_size)
            parallel_seconds += time.perf_counter() - start
        parallel_cpu = pool.cpu_seconds

    plain_keys = _keys(plain_results)
    plain_rate = records / plain_seconds

    plain_cpu_rate = records / plain_cpu

    def side(results: list[RecordFindings], seconds: float, cpu_seconds: float) -> dict:
        keys = _keys(results)
        found = len(plain_keys & keys)
        return {
            "seconds": round(seconds, 3),
            "records_per_s": round(records / seconds, 1),
            "ratio_vs_plain": round(records / seconds / plain_rate, 2),
            "cpu_seconds": round(cpu_seconds, 3),
            "records_per_cpu_s": round(records / cpu_seconds, 1),
            "cpu_ratio_vs_plain": round(records / cpu_seconds / plain_cpu_rate, 2),
            "recall_vs_plain": round(found / len(plain_keys), 4) if plain_keys else 1.0,
            "missed": len(plain_keys - keys),
            "extra": len(keys - plain_keys),
            "spans_identical": _spans(results) == _spans(plain_results),
            "findings": sum(len(r.findings) for r in results),
            "dropped": sum(r.dropped for r in results),
        }

    by_type: dict[str, int] = {}
    for entity_type in (key[1] for key in plain_keys):
        by_type[entity_type] = by_type.get(entity_type, 0) + 1
    return {
        "records": records,
        "processes": processes,
        "seed": seed,
        "rounds": rounds,
        "match_keys": match_keys,
        "mean_chars": round(sum(len(r.text) for r in data) / records, 1),
        "cpu_count": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "plain_loop": {
            "seconds": round(plain_seconds, 3),
            "records_per_s": round(plain_rate, 1),
            "cpu_seconds": round(plain_cpu, 3),
            "records_per_cpu_s": round(plain_cpu_rate, 1),
            "findings": len(plain_keys),
            "findings_by_type": by_type,
        },
        "lethe_single_process": side(single_results, single_seconds, single_cpu),
        "lethe_parallel": side(parallel_results, parallel_seconds, parallel_cpu)
        | {"pool_start_seconds": round(pool_ready_seconds, 2)},
        "configuration": scan_configuration(settings),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices per side")
    parser.add_argument(
        "--without-match-keys",
        action="store_true",
        help="scan without match keys (Presidio's findings only), as before issue 13",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--input", type=Path, help="scan the first --records of this data set instead")
    parser.add_argument("--text-field", default="text", help="comma-separated for several")
    parser.add_argument("--id-field")
    args = parser.parse_args(argv)
    if args.records < 1 or args.processes < 1 or args.rounds < 1:
        parser.error("--records, --processes and --rounds must be at least 1")
    data = None
    if args.input:
        from itertools import islice

        from unlearning_jobs.engine.pii.readers import read_records

        data = list(
            islice(
                read_records(
                    args.input, text_field=tuple(args.text_field.split(",")), id_field=args.id_field
                ),
                args.records,
            )
        )
    figures = run(
        args.records,
        args.processes,
        args.seed,
        min(args.rounds, args.records),
        data,
        match_keys=not args.without_match_keys,
    )
    if args.input:
        figures["input"] = str(args.input)
    plain = figures["plain_loop"]
    print(
        f"records: {figures['records']} (mean {figures['mean_chars']} chars), "
        f"cpus: {figures['cpu_count']}, load average before/after: "
        f"{figures['load_average_1m_before']}/{figures['load_average_1m_after']}"
    )
    print(
        f"plain AnalyzerEngine.analyze loop: {plain['records_per_s']:8.1f} records/s  "
        f"({plain['records_per_cpu_s']:.1f} per CPU-second; {plain['findings']} findings)"
    )
    for label, key in (
        ("Lethe scan, 1 process", "lethe_single_process"),
        (f"Lethe scan, {args.processes} processes", "lethe_parallel"),
    ):
        side = figures[key]
        print(
            f"{label:34s} {side['records_per_s']:8.1f} records/s  x{side['ratio_vs_plain']:.2f}  "
            f"({side['records_per_cpu_s']:.1f} per CPU-second, x{side['cpu_ratio_vs_plain']:.2f})  "
            f"recall {side['recall_vs_plain']:.4f} "
            f"(missed {side['missed']}, extra {side['extra']}, "
            f"spans identical: {side['spans_identical']})"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
