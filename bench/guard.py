"""Benchmark the guard: block rate, false positives and added latency at 10 to 100k subjects.

Suppressed subjects: a sample of fictitious people from seeded Faker (names with accents,
street-first addresses, valid GB/US phones, account ids, three records each), padded with
synthetic subjects (made-up names and values) to 10, 10k and 100k; every subject's rules are
built with the same ``rules_from_identifiers`` a deployment uses.

* Block rate: the sample's probe suites (direct, paraphrase, format variants, prefixes,
  re-introduction, latent deduction and inverse) run through the guard with a simulated model
  that leaks every value asked for (worst case; see ``measure.py``). Evasions (values spelt to
  slip past exact matching) are reported apart: they are outside what the guard claims.
* False positives: the same probes about other Faker people; a generated corpus of PII-bearing
  sentences about them; and, where ``--tofu`` points at TOFU, its 4,000 answers about fictitious
  authors (model-written prose full of names and places). Separately, with a bulk of subjects
  that carry Faker names, how often benign text about namesakes is acted on.
* Added latency: ``check_input`` on a question plus ``check_output`` on a ~200-token response
  (150 words; GPT-2 BPE averages about 1.3 tokens a word on such prose), for every guard size,
  interleaved so that load on the shared CPU hits all sizes alike. Wall time and thread CPU
  time (which excludes time the process waited for a core) are both reported.

For comparison: LLM Guard's Presidio-based output scanner is published at about 95 ms on a CPU
for a 30-token input; ``--presidio`` times this project's own Presidio analyzer on the same
responses here.

    .venv/bin/python bench/guard.py                      # about two minutes on 2 shared cores
    .venv/bin/python bench/guard.py --subjects 10,1000 --responses 100   # quick
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tofu_data import read_tofu  # noqa: E402  (bench/ is the script's directory)

from unlearning_jobs.engine.guard import (  # noqa: E402
    Guard,
    GuardPolicy,
    RuleSet,
    benign_suite,
    evasion_probes,
    measure_guard,
    probe_suite,
    rules_from_identifiers,
)
from unlearning_jobs.engine.guard.measure import percentile  # noqa: E402
from unlearning_jobs.engine.guard.synthetic import (  # noqa: E402
    fake_subjects,
    pii_sentences,
    valid_phone,
)  # noqa: E402
from unlearning_jobs.engine.pii.hashing import KeyedHasher  # noqa: E402

BENCH_KEY = b"lethe-guard-bench-key-not-secret"
KEY_ID = "bench-1"
LLM_GUARD_PUBLISHED_MS = 95.0
WORDS_PER_RESPONSE = 150
_SYLLABLES = ("vor", "qua", "zel", "thri", "mox", "dra", "kel", "ynn", "bex", "ulf", "sarn", "tov")


def synthetic_name(rng: random.Random) -> str:
    """Return a made-up two-word name no Faker locale produces."""

    def word() -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(3)).capitalize()

    return f"{word()} {word()}"


def bulk_rules(*, count: int, hasher: KeyedHasher, seed: int) -> list[tuple]:
    """Return ``count`` synthetic subjects' rules, one tuple per subject, in a stable order."""
    rng = random.Random(seed)
    subjects = []
    for index in range(count):
        region = "GB" if index % 3 else "US"
        subjects.append(
            rules_from_identifiers(
                hasher=hasher,
                subject_ref=f"bulk-{index:06d}",
                names=[synthetic_name(rng)],
                emails=[f"u{index:06d}.{rng.randrange(10**6)}@bulk{index % 97}.example"],
                phones=[valid_phone(rng, region)],
                addresses=[
                    f"{index % 997 + 1} {synthetic_name(rng).split()[0]} Street, "
                    f"Qarth{index % 50} QX{index % 9 + 1} 2ZZ"
                ],
                account_ids=[f"BLK-{index:07d}"],
                locations=[f"Qarth{index % 50}"],
                dates_of_birth=[f"19{50 + index % 50}-0{index % 9 + 1}-1{index % 9}"],
                default_region=region,
            )
        )
    return subjects


def namesake_rules(*, count: int, hasher: KeyedHasher, seed: int) -> list[tuple]:
    """Return ``count`` subjects known only by a Faker name (the namesake scenario)."""
    from faker import Faker

    fake = Faker(["en_GB", "en_US", "de_DE", "fr_FR", "es_ES"])
    fake.seed_instance(seed)
    subjects, seen = [], set()
    while len(subjects) < count:
        name = f"{fake.first_name()} {fake.last_name()}"
        if name in seen or len(name.split()) != 2:
            continue
        seen.add(name)
        subjects.append(
            rules_from_identifiers(hasher=hasher, subject_ref=f"name-{len(subjects):06d}", names=[name])
        )
    return subjects


def tofu_answers(path: Path | None) -> list[str]:
    """Return TOFU's answers (fictitious authors), or nothing where the data is absent."""
    if path is None or not (path / "full.json").exists():
        return []
    return [item["answer"] for item in read_tofu(path / "full.json")]


_FILLER = (
    "Thanks for getting in touch about your order. I have checked the account history and the "
    "parcel left our warehouse on Monday morning, so it should arrive within two working days. "
    "If it does not, please reply to this message and we will arrange a replacement or a refund, "
    "whichever you prefer. In the meantime you can follow the delivery on the tracking page. "
)


def responses(
    *, count: int, seed: int, answers: list[str], people, subjects, hasher: KeyedHasher
) -> list[tuple[str, str]]:
    """Return ``count`` (prompt, ~150-word response) pairs: prose, one benign PII sentence in
    half of them, a suppressed subject's data in one in ten."""
    rng = random.Random(seed)
    benign_sentences = pii_sentences(people, seed=seed, per_person=4)
    leaks = [p for s in subjects for p in probe_suite(s, hasher=hasher) if p.kind == "direct"]
    pairs = []
    for index in range(count):
        inserts: list[str] = []
        prompt = "Can you summarise what you know and how to get in touch?"
        if index % 2:
            inserts.append(rng.choice(benign_sentences))
        if index % 10 == 0:
            leak = rng.choice(leaks)
            inserts.append(leak.simulated_response)
            prompt = leak.prompt
        budget = WORDS_PER_RESPONSE - sum(len(insert.split()) for insert in inserts)
        if answers:
            start = rng.randrange(len(answers) // 20) * 20
            pool = answers[start : start + 20]
            rng.shuffle(pool)
        else:
            pool = [_FILLER] * 8
        prose = " ".join(pool).split()[:budget]
        sentences = " ".join(prose).replace(". ", ".\n").split("\n")
        for insert in inserts:
            sentences.insert(rng.randrange(len(sentences) + 1), insert)
        pairs.append((prompt, " ".join(sentences)))
    return pairs


def time_guards(guards: dict[int, Guard], pairs: list[tuple[str, str]]) -> dict[int, dict]:
    """Return per guard size the wall and CPU milliseconds of check_input + check_output."""
    wall = {size: [] for size in guards}
    cpu = {size: [] for size in guards}
    for guard in guards.values():  # warm caches (regexes, phonenumbers metadata)
        for prompt, response in pairs[:5]:
            guard.check_input(prompt), guard.check_output(response, prompt=prompt)
    gc.disable()
    try:
        for prompt, response in pairs:
            for size, guard in guards.items():
                started_wall, started_cpu = time.perf_counter(), time.thread_time()
                guard.check_input(prompt)
                guard.check_output(response, prompt=prompt)
                cpu[size].append((time.thread_time() - started_cpu) * 1000)
                wall[size].append((time.perf_counter() - started_wall) * 1000)
    finally:
        gc.enable()
    return {
        size: {
            "wall_ms_p50": round(percentile(wall[size], 0.5), 3),
            "wall_ms_p95": round(percentile(wall[size], 0.95), 3),
            "cpu_ms_p50": round(percentile(cpu[size], 0.5), 3),
            "cpu_ms_p95": round(percentile(cpu[size], 0.95), 3),
            "wall_ms_mean": round(statistics.fmean(wall[size]), 3),
        }
        for size in guards
    }


def acted_rate(guard: Guard, texts: list[str]) -> tuple[int, int]:
    """Return how many texts the output filter acted on, and how many there were."""
    acted = sum(guard.check_output(text).acted for text in texts)
    return acted, len(texts)


def benign_acted_rate(guard: Guard, benign) -> float:
    """Return the share of benign probes on which either filter acted."""
    acted = sum(
        guard.check_input(p.prompt).acted or guard.check_output(p.simulated_response, prompt=p.prompt).acted
        for p in benign
    )
    return acted / len(benign)


def presidio_baseline(pairs: list[tuple[str, str]], count: int) -> dict:
    """Return the p50/p95 of this project's Presidio analyzer on the same responses."""
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    from unlearning_jobs.engine.pii.analyzer import build_analyzer

    analyzer = build_analyzer()
    texts = [response for _, response in pairs[:count]]
    analyzer.analyze(texts[0], language="en")
    times = []
    for text in texts:
        started = time.perf_counter()
        analyzer.analyze(text, language="en")
        times.append((time.perf_counter() - started) * 1000)
    return {
        "responses": len(texts),
        "wall_ms_p50": round(percentile(times, 0.5), 1),
        "wall_ms_p95": round(percentile(times, 0.95), 1),
    }


HASHER = KeyedHasher(key=BENCH_KEY, key_id=KEY_ID)


def records_linked_values(corpus, *, hasher: KeyedHasher) -> tuple[dict[str, dict[str, list[str]]], dict]:
    """Return the values each person's training records link to them, read as a deployment reads them.

    Every suppressed person's records form one data set, scanned by the index's scanner
    (Presidio with spaCy, and match keys; a deployment's default settings). A person's
    confirmed records are their own (locating found them through a requested identifier; the
    corpus says which). The rule and the reading are ``engine.pii.linking``'s, the ones
    ``suppression.services.records_identifier_values`` applies to a request's confirmed records.
    Also returns, by the corpus's labels, how many linked values were the person's own.
    """
    from collections import defaultdict

    from unlearning_jobs.engine.guard.rules import RECORD_LINKED_TYPES, RULE_LISTS
    from unlearning_jobs.engine.pii.linking import linked_spellings, value_findings
    from unlearning_jobs.engine.pii.readers import SourceRecord
    from unlearning_jobs.engine.pii.scan import scan_records

    started = time.perf_counter()
    owned = [(person, record) for person in corpus.people for record in person.records]
    results = scan_records(
        [SourceRecord(record.record_id, record.text, n + 1) for n, (_, record) in enumerate(owned)],
        hasher=hasher,
    )
    texts = {record.record_id: record.text for _, record in owned}
    holders: dict[tuple[str, str], set[str]] = defaultdict(set)
    found: dict[str, list[tuple]] = defaultdict(list)
    for (person, record), result in zip(owned, results, strict=True):
        values = value_findings(
            (record.record_id, f.entity_type, f.start, f.end, f.value_hash, f.sorted_hash, f.recogniser)
            for f in result.findings
            if f.entity_type in RECORD_LINKED_TYPES
        )
        for value in values:
            holders[value[-1]].add(record.record_id)
        found[person.person_id].extend(values)
    linked: dict[str, dict[str, list[str]]] = {}
    judged: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for person in corpus.people:
        spellings = linked_spellings(
            found.get(person.person_id, ()), lambda keys: {key: holders[key] for key in keys}, texts
        )
        linked[person.person_id] = {RULE_LISTS[kind]: values for kind, values in spellings.items()}
        mentions = [mention for record in person.records for mention in record.mentions]
        for kind, values in spellings.items():
            for value in values:
                judged[kind][_owner_of(value, mentions, person.person_id)] += 1
    stats = {
        "records": len(owned),
        "scan_seconds": round(time.perf_counter() - started, 1),
        "linked_values_by_owner": {kind: dict(sorted(c.items())) for kind, c in sorted(judged.items())},
    }
    return linked, stats


def _owner_of(value: str, mentions, person_id: str) -> str:
    """Return whose value a linked spelling is by the corpus's labels: the person's, a role's, or unlabelled."""
    folded = " ".join(value.casefold().split())
    owners = [
        mention.owner
        for mention in mentions
        if folded in (written := " ".join(mention.written.casefold().split())) or written in folded
    ]
    if person_id in owners:
        return "own"
    return owners[0] if owners else "unlabelled"


def corpus_subject_rules(person, *, hasher: KeyedHasher, linked: dict[str, list[str]] | None = None) -> list:
    """Return a probe-corpus person's rules, one value at a time as a deployment builds them.

    ``linked``: values the person's confirmed records link to them (``records_linked_values``),
    added as a deployment adds them (``suppression.services.subject_rules_for_request``).
    """
    request = person.request
    rules = []
    for field in ("names", "emails", "phones", "addresses", "account_ids"):
        for value in [*request.get(field, ()), *(linked or {}).get(field, ())]:
            try:
                rules.extend(
                    rules_from_identifiers(
                        hasher=hasher,
                        subject_ref=f"gp-{person.person_id}",
                        default_region=request["country"],
                        **{field: [value]},
                    )
                )
            except ValueError as error:
                # A deployment skips (and counts) a value the engine refuses; so does the bench.
                print(f"  {person.person_id} {field}: refused ({error})", file=sys.stderr)
    return rules


def measure_corpus(guard: Guard, corpus, *, timed: bool = False) -> dict:
    """Return how often the guard acted on suppressed people's texts and on other people's.

    A suppressed person's text counts as acted on only when a match names that person (acting
    on the text for another subject's sake is luck, not suppression). Inputs go through
    ``check_input``, model answers through ``check_output``. Per-family rates are by the family
    of the mention the text was built around.
    """
    from collections import Counter

    own_total, own_acted, other_total, other_acted = Counter(), Counter(), Counter(), Counter()
    missed_examples: dict[str, int] = Counter()
    wall: list[float] = []
    cpu: list[float] = []
    for text in corpus.texts:
        started_wall, started_cpu = time.perf_counter(), time.thread_time()
        if text.direction == "input":
            decision = guard.check_input(text.text)
        else:
            decision = guard.check_output(text.text)
        if timed:
            cpu.append((time.thread_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started_wall) * 1000)
        if text.owner:
            family = "/".join(text.primary)
            own_total[family] += 1
            hit = f"gp-{text.owner}" in decision.subjects
            own_acted[family] += hit
            if not hit:
                missed_examples[family] += 1
        else:
            other_total[text.negative_kind] += 1
            other_acted[text.negative_kind] += decision.acted
    own_n, own_hit = sum(own_total.values()), sum(own_acted.values())
    other_n, other_hit = sum(other_total.values()), sum(other_acted.values())
    result = {
        "own_texts": own_n,
        "own_acted_rate": round(own_hit / own_n, 4),
        "other_texts": other_n,
        "other_acted_rate": round(other_hit / other_n, 4),
        "own_by_family": {
            family: round(own_acted[family] / own_total[family], 4) for family in sorted(own_total)
        },
        "other_by_kind": {
            kind: round(other_acted[kind] / other_total[kind], 4) for kind in sorted(other_total)
        },
        "own_missed_by_family": dict(sorted(missed_examples.items())),
        "other_acted_by_kind": dict(sorted(other_acted.items())),
    }
    if timed:
        result["latency"] = {
            "wall_ms_p50": round(percentile(wall, 0.5), 3),
            "wall_ms_p95": round(percentile(wall, 0.95), 3),
            "cpu_ms_p50": round(percentile(cpu, 0.5), 3),
            "cpu_ms_p95": round(percentile(cpu, 0.95), 3),
        }
    return result


def corpus_main(argv: list[str]) -> None:
    """Measure the guard on the independent probe corpus (bench/corpora/guard_probes)."""
    from bench.corpora.countries import COUNTRIES
    from bench.corpora.guard_probes import build_probe_corpus

    parser = argparse.ArgumentParser(prog="bench/guard.py --corpus")
    parser.add_argument("--corpus", action="store_true")
    parser.add_argument("--seeds", default="16,17", help="corpus seeds (16 was looked at while building)")
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--subjects", type=int, default=100000, help="rules loaded in all")
    parser.add_argument(
        "--records",
        choices=("with", "without", "both"),
        default="both",
        help="rules from the request alone, or also from what the person's training records link to them",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "guard_corpus.json")
    args = parser.parse_args(argv)
    policy = GuardPolicy(phone_regions=tuple(COUNTRIES))
    clock = time.perf_counter()
    bulk = [rule for subject in bulk_rules(count=args.subjects, hasher=HASHER, seed=3) for rule in subject]
    print(
        f"filler rules: {args.subjects:,} subjects, {len(bulk):,} rules in {time.perf_counter() - clock:.1f} s"
    )
    report = {"bench": "guard_corpus", "command": "bench/guard.py " + " ".join(argv), "seeds": {}}
    for seed in (int(x) for x in args.seeds.split(",")):
        corpus = build_probe_corpus(seed=seed, people=args.people)
        row = {}
        rule_sets = []
        if args.records in ("without", "both"):
            own = [rule for person in corpus.people for rule in corpus_subject_rules(person, hasher=HASHER)]
            rule_sets.append(("request", own))
        if args.records in ("with", "both"):
            linked, stats = records_linked_values(corpus, hasher=HASHER)
            row["records"] = stats
            print(f"seed {seed} records: {stats}")
            own = [
                rule
                for person in corpus.people
                for rule in corpus_subject_rules(person, hasher=HASHER, linked=linked[person.person_id])
            ]
            rule_sets.append(("request+records", own))
        for label, rules in [
            labelled
            for name, own in rule_sets
            for labelled in (
                (f"{name}, corpus only", own),
                *([(f"{name}, +{args.subjects:,} filler", own + bulk)] if args.subjects > 10 else []),
            )
        ]:
            guard = Guard(RuleSet(key_id=KEY_ID, version=1, rules=rules, policy=policy), HASHER)
            measure_corpus(guard, corpus)  # warm caches
            row[label] = measure_corpus(guard, corpus, timed=True)
            r = row[label]
            print(
                f"seed {seed} {label:>32}: own {r['own_acted_rate']:.2%} of {r['own_texts']}, "
                f"others {r['other_acted_rate']:.2%} of {r['other_texts']}, per text cpu p50 "
                f"{r['latency']['cpu_ms_p50']:.3f} ms p95 {r['latency']['cpu_ms_p95']:.3f} ms, wall p95 "
                f"{r['latency']['wall_ms_p95']:.3f} ms"
            )
            print(f"  others by kind: {r['other_by_kind']}")
            print(f"  own texts missed by family: {r['own_missed_by_family']}")
        report["seeds"][str(seed)] = row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


def main() -> None:
    if "--corpus" in sys.argv[1:]:
        corpus_main(sys.argv[1:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", default="10,10000,100000", help="guard sizes, comma-separated")
    parser.add_argument("--sample", type=int, default=10, help="Faker subjects whose probes are run")
    parser.add_argument("--benign-people", type=int, default=60)
    parser.add_argument("--responses", type=int, default=400, help="~200-token responses timed per size")
    parser.add_argument(
        "--namesakes",
        type=int,
        default=10000,
        help="Faker-named subjects for the namesake row (0: skip)",
    )
    parser.add_argument("--tofu", type=Path, default=ROOT.parent / "shared" / "data" / "tofu")
    parser.add_argument(
        "--presidio", action="store_true", help="also time the Presidio analyzer (loads spaCy)"
    )
    parser.add_argument("--mode", choices=("redact", "refuse"), default="redact")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "guard.json")
    args = parser.parse_args()
    sizes = sorted({int(size) for size in args.subjects.split(",")})
    if sizes[0] < args.sample:
        parser.error(f"every size must be at least --sample ({args.sample})")
    load_before = os.getloadavg()
    started = time.perf_counter()

    sample = fake_subjects(count=args.sample, seed=1, ref_prefix="subj")
    others = fake_subjects(count=args.benign_people, seed=2, ref_prefix="other")
    clock = time.perf_counter()
    sample_rules = [rule for person in sample for rule in person.rules(hasher=HASHER)]
    bulk = bulk_rules(count=sizes[-1] - args.sample, hasher=HASHER, seed=3)
    rules_seconds = time.perf_counter() - clock
    rule_count = len(sample_rules) + sum(len(rules) for rules in bulk)
    print(
        f"rules: {sizes[-1]:,} subjects, {rule_count:,} rules in {rules_seconds:.1f} s "
        f"({sizes[-1] / rules_seconds:,.0f} subjects/s)"
    )

    policy = GuardPolicy(mode=args.mode)
    guards: dict[int, Guard] = {}
    build_seconds: dict[int, float] = {}
    for size in sizes:
        clock = time.perf_counter()
        rules = sample_rules + [rule for subject in bulk[: size - args.sample] for rule in subject]
        guards[size] = Guard(RuleSet(key_id=KEY_ID, version=1, rules=rules, policy=policy), HASHER)
        build_seconds[size] = time.perf_counter() - clock

    probes = [probe for person in sample for probe in probe_suite(person, hasher=HASHER)]
    benign = list(benign_suite(others, hasher=HASHER))
    evasions = [probe for person in sample for probe in evasion_probes(person, hasher=HASHER)]
    corpus = pii_sentences(others, seed=4, per_person=10)
    answers = tofu_answers(args.tofu)
    pairs = responses(
        count=args.responses, seed=5, answers=answers, people=others, subjects=sample, hasher=HASHER
    )

    results: dict[str, dict] = {}
    for size, guard in guards.items():
        measured = measure_guard(guard, probes, benign)
        evaded = measure_guard(guard, evasions, ())
        corpus_acted = acted_rate(guard, corpus)
        tofu_acted = acted_rate(guard, answers) if answers else (0, 0)
        results[str(size)] = {
            "subjects": size,
            "distinct_hashes": guard.rule_count,
            "guard_build_s": round(build_seconds[size], 2),
            "probes": measured.probes,
            "block_rate": measured.block_rate,
            "block_rate_by_kind": {k: round(v["block_rate"], 4) for k, v in measured.by_kind.items()},
            "evasion_block_rate": round(evaded.block_rate, 4),
            "benign_probes": measured.benign,
            "benign_false_positive_rate": measured.false_positive_rate,
            "corpus_sentences": corpus_acted[1],
            "corpus_false_positive_rate": corpus_acted[0] / corpus_acted[1],
            "tofu_answers": tofu_acted[1],
            "tofu_false_positive_rate": tofu_acted[0] / tofu_acted[1] if tofu_acted[1] else None,
            "probe_latency_ms_p50": round(measured.latency_ms_p50, 3),
            "probe_latency_ms_p95": round(measured.latency_ms_p95, 3),
        }
    timing = time_guards(guards, pairs)
    for size in sizes:
        results[str(size)]["response_latency"] = timing[size]

    # The same sample under name_match="corroborated": what sparing namesakes costs in blocking.
    corroborated_policy = GuardPolicy(mode=args.mode, name_match="corroborated")
    corroborated = measure_guard(
        Guard(
            RuleSet(key_id=KEY_ID, version=1, rules=sample_rules, policy=corroborated_policy),
            HASHER,
        ),
        probes,
        benign,
    )
    namesakes = None
    if args.namesakes:
        named = [
            rule
            for subject in namesake_rules(count=args.namesakes, hasher=HASHER, seed=6)
            for rule in subject
        ]
        namesakes = {"subjects": args.namesakes}
        for name_match, chosen in (("any", policy), ("corroborated", corroborated_policy)):
            guard = Guard(RuleSet(key_id=KEY_ID, version=1, rules=named, policy=chosen), HASHER)
            acted = acted_rate(guard, corpus)
            namesakes[name_match] = {
                "corpus_false_positive_rate": acted[0] / acted[1],
                "benign_false_positive_rate": benign_acted_rate(guard, benign),
            }

    baseline = presidio_baseline(pairs, 50) if args.presidio else None
    load_after = os.getloadavg()
    words = statistics.fmean(len(response.split()) for _, response in pairs)
    report = {
        "bench": "guard",
        "command": "bench/guard.py " + " ".join(sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        },
        "settings": {
            "mode": args.mode,
            "sample_subjects": args.sample,
            "benign_people": args.benign_people,
            "responses": args.responses,
            "response_words_mean": round(words, 1),
            "response_text": "TOFU answers" if answers else "template prose",
            "entity_types": sorted(k.value for k in policy.entity_types),
            "simulated_model": "leaks every value asked for (worst case)",
        },
        "rules": {"subjects": sizes[-1], "rules": rule_count, "seconds": round(rules_seconds, 1)},
        "results": results,
        "corroborated_names": {
            "block_rate": corroborated.block_rate,
            "block_rate_by_kind": {k: round(v["block_rate"], 4) for k, v in corroborated.by_kind.items()},
            "benign_false_positive_rate": corroborated.false_positive_rate,
        },
        "namesakes": namesakes,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "presidio_analyzer_here": baseline,
        "llm_guard_published_ms": {
            "value": LLM_GUARD_PUBLISHED_MS,
            "what": "LLM Guard Presidio-based output scanner, CPU, 30-token input (published)",
        },
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")

    print(
        f"\nprobes: {len(probes)} about {args.sample} subjects; benign probes: {len(benign)}; "
        f"corpus: {len(corpus)} sentences; TOFU answers: {len(answers)}; responses: {len(pairs)} "
        f"(~{words:.0f} words)"
    )
    header = (
        f"{'subjects':>9} {'block':>7} {'evasion':>8} {'FP probes':>9} {'FP corpus':>9} {'FP TOFU':>8} "
        f"{'wall p50':>9} {'wall p95':>9} {'cpu p50':>8} {'cpu p95':>8}"
    )
    print(header)
    for size in sizes:
        row = results[str(size)]
        lat = row["response_latency"]
        tofu = "-" if row["tofu_false_positive_rate"] is None else f"{row['tofu_false_positive_rate']:.2%}"
        print(
            f"{size:>9,} {row['block_rate']:>7.2%} {row['evasion_block_rate']:>8.2%} "
            f"{row['benign_false_positive_rate']:>9.2%} {row['corpus_false_positive_rate']:>9.2%} {tofu:>8} "
            f"{lat['wall_ms_p50']:>7.2f}ms {lat['wall_ms_p95']:>7.2f}ms "
            f"{lat['cpu_ms_p50']:>6.2f}ms {lat['cpu_ms_p95']:>6.2f}ms"
        )
    print("block rate by kind:", results[str(sizes[0])]["block_rate_by_kind"])
    print(
        f"name_match=corroborated ({args.sample} subjects): block {corroborated.block_rate:.2%}, by kind "
        f"{report['corroborated_names']['block_rate_by_kind']}"
    )
    if namesakes:
        for name_match in ("any", "corroborated"):
            row = namesakes[name_match]
            print(
                f"namesakes: {namesakes['subjects']:,} Faker-named subjects, name_match={name_match}: FP corpus "
                f"{row['corpus_false_positive_rate']:.2%}, "
                f"FP benign probes {row['benign_false_positive_rate']:.2%}"
            )
    if baseline:
        print(
            f"Presidio analyzer here: p50 {baseline['wall_ms_p50']} ms, "
            f"p95 {baseline['wall_ms_p95']} ms per response"
        )
    print(f"LLM Guard (published): ~{LLM_GUARD_PUBLISHED_MS:.0f} ms for a 30-token input on CPU")
    print(
        f"max RSS {report['max_rss_mb']} MB; load average {load_before[0]:.2f} -> "
        f"{load_after[0]:.2f}; total {report['total_seconds']} s; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
