"""Locate one TOFU author by name and say, for each of their 20 records, how it was found or why not.

TOFU (``../shared/data/tofu/full.json``, MIT licence) holds 200 fictitious authors with 20
question-answer pairs each, in order. The file is ingested as a data set (text = question and
answer joined, ids from the text) into ``lethe_bench_quality``, an erasure request is recorded
with the author's name only, and the request is located. The author's records are the 20-line
block where their name occurs most. Because the people are fictitious, the report shows the name
forms the index found in each missed record; it never does that for real data.

    python bench/tofu_locate.py --author "Jaime Vasquez"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tofu_data import read_tofu  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "tofu_locate.json"
TOFU = (ROOT / ".." / "shared" / "data" / "tofu" / "full.json").resolve()
BLOCK = 20


def author_block(lines: list[dict], author: str) -> int:
    """Return the index of the 20-record block that mentions ``author`` most."""
    needles = [part.lower() for part in author.split()]
    scores = Counter()
    for index, row in enumerate(lines):
        text = f"{row['question']}\n{row['answer']}".lower()
        scores[index // BLOCK] += sum(text.count(needle) for needle in needles)
    return scores.most_common(1)[0][0]


def why_missed(text: str, findings: list[tuple[str, int, int]], author: str) -> str:
    """Say what the index holds for a record the search did not offer."""
    people = [text[start:end] for kind, start, end in findings if kind == "PERSON"]
    first, last = author.split()[0], author.split()[-1]
    mentions = text.count(first) + text.count(last)
    if not mentions:
        return "the record does not name the author (it says 'the author', 'he', 'she', or a title)"
    if not people:
        return "the author is named but spaCy found no PERSON in the record"
    partial = [p for p in people if (first in p) != (last in p)]
    if partial:
        return (
            f"only part of the name was found as a person ({', '.join(sorted(set(partial)))}); "
            "a single given or family name is not matched: too many people share one"
        )
    return f"persons found do not match the author's name ({', '.join(sorted(set(people)))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--author", default="Jaime Vasquez")
    parser.add_argument("--path", default=str(TOFU))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="Index the file again from scratch")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "LETHE_BENCH_QUALITY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lethe_bench_quality"
        ),
    )
    args = parser.parse_args()
    path = Path(args.path).resolve()
    os.environ.setdefault("LETHE_IMPORT_ROOTS", str(path.parent))

    from match_quality import clear_requests, ingest, officer_user, setup_django

    setup_django(args.database_url)
    from requests_app import services
    from requests_app.identifiers import SubjectIdentifiers
    from requests_app.matching.services import locate_compute
    from unlearning_jobs.engine.pii.readers import content_record_id
    from unlearning_jobs.models import DatasetRecord, PiiFinding

    lines = read_tofu(path)
    version, indexing = ingest(
        name="tofu-full",
        path=path,
        text_field=["question", "answer"],
        id_field=None,
        processes=args.processes,
        fresh=args.fresh,
    )
    print(
        f"{'reused the index of' if indexing['reused'] else 'indexed'} {indexing['records']} TOFU records "
        f"(scan {indexing['seconds']}s, {indexing['records_per_second']} records/s): {indexing['findings_by_type']}"
    )

    block = author_block(lines, args.author)
    texts = {}
    for row in lines[block * BLOCK : (block + 1) * BLOCK]:
        text = f"{row['question']}\n{row['answer']}"
        texts[content_record_id(text)] = text
    officer_user()
    clear_requests()
    erasure_request = services.erasure_request_create(
        subject=SubjectIdentifiers(names=(args.author,)), legal_ground="art17_1_b", actor=officer_user()
    )
    result = locate_compute(erasure_request=erasure_request)
    ids = dict(
        DatasetRecord.objects.filter(pk__in=[c.record_pk for c in result.candidates]).values_list(
            "pk", "record_id"
        )
    )
    found = {ids[c.record_pk]: c for c in result.candidates}

    tiers = Counter(found[record_id].tier for record_id in texts if record_id in found)
    findings: dict[str, list] = {record_id: [] for record_id in texts}
    for record_id, kind, start, end in PiiFinding.objects.filter(
        version=version, record__record_id__in=list(texts)
    ).values_list("record__record_id", "entity_type", "start", "end"):
        findings[record_id].append((kind, start, end))
    missed = {
        record_id: why_missed(texts[record_id], findings[record_id], args.author)
        for record_id in texts
        if record_id not in found
    }
    others = [record_id for record_id in found if record_id not in texts]
    reasons = Counter(reason.split(" (")[0] for reason in missed.values())

    print(f"author {args.author!r}: records {block * BLOCK + 1}-{(block + 1) * BLOCK} of full.json")
    print(
        f"found {len(texts) - len(missed)}/{len(texts)}: "
        + ", ".join(f"{tier} {tiers.get(tier, 0)}" for tier in ("strong", "name", "quasi"))
        + f"; other authors' records offered: {len(others)}"
    )
    evidence = Counter(f"{found[r].tier} tier, {found[r].evidence['name']} name" for r in texts if r in found)
    print(
        "evidence of those found: " + ", ".join(f"{count} × {kind}" for kind, count in evidence.most_common())
    )
    print(f"not found: {len(missed)}")
    for reason, count in reasons.most_common():
        print(f"  {count:>2} × {reason}")
    line_of = {
        content_record_id(f"{row['question']}\n{row['answer']}"): number
        for number, row in enumerate(lines, start=1)
    }
    for record_id, reason in missed.items():
        print(f"     line {line_of[record_id]}: {reason}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "author": args.author,
                "block": block,
                "records": len(texts),
                "indexing": indexing,
                "found": {tier: tiers.get(tier, 0) for tier in ("strong", "name", "quasi")},
                "found_evidence": dict(evidence),
                "not_found": len(missed),
                "reasons": dict(reasons),
                "missed": list(missed.values()),
                "other_records_offered": len(others),
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
