"""Benchmark verification: measure what an original model and its exact retrain reveal.

Generates the seeded demo data set (``unlearning_jobs.engine.demo_data``), picks the most
frequently mentioned people as the erased subjects (each in 20–60 records: the ones a small model
memorises) and the next most frequent as held-out people (all their records kept out of every
model: the non-members for membership inference). Trains, from scratch and seeded, the original
model on everything but the held-out people and the exact retrain on that minus the erased
subjects, then runs ``run_verification`` on each and prints the table of metrics (extraction
rate, VerbMem, membership AUCs, PrivLeak, utility ratios) with thresholds and pass/fail.

    .venv/bin/python bench/verify.py                       # trains both, about 3 minutes on 2 CPUs
    .venv/bin/python bench/verify.py --models original=DIR,retrain=DIR,npo=DIR
    .venv/bin/python bench/verify.py --tofu ../shared/data/tofu --tofu-forget forget01

TOFU mode trains on ``full.json`` question+answer pairs ("Question: …\nAnswer: …"), keeps as
many other authors out of training as the forget set has (the holdout), forgets ``forget01`` or
``forget10``, and adds TOFU's forget quality (KS test of truth ratios on the ``*_perturbed``
questions). The forgotten authors' names, taken from their questions, are the PII that
extraction looks for.

``verify_model_dirs`` takes any mapping of names to model directories, so the unlearning bench
can pass the models its methods produced; ``original`` and ``retrain`` name the baseline and the
reference. Results go to ``bench/results/verify.json`` and the membership plot beside it.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from tasks import BenchTask, demo_task, tofu_task  # noqa: E402  (bench/ is the script's directory)

from unlearning_jobs.engine.device import describe_device, resolve_device  # noqa: E402
from unlearning_jobs.engine.models import load_causal_lm  # noqa: E402
from unlearning_jobs.engine.training import TrainingRecipe, train_causal_lm  # noqa: E402
from unlearning_jobs.engine.training.data import texts_fingerprint  # noqa: E402
from unlearning_jobs.engine.verify.plot import plot_membership_distributions  # noqa: E402
from unlearning_jobs.engine.verify.report import VerificationResult, rows_table  # noqa: E402
from unlearning_jobs.engine.verify.suite import VerificationSettings, run_verification  # noqa: E402

#: The rows the printed table shows, in order (every row is in the JSON). Every model is judged
#: against the retrain reference, so the reference-free proxies (absolute VerbMem, AUC around 0.5)
#: give way to the VerbMem gap and PrivLeak; the raw values are in the measurements table.
TABLE_METRICS = (
    "extraction_rate",
    "verbmem_gap_to_reference",
    "privleak_loss",
    "privleak_zlib",
    "privleak_min_k",
    "privleak_min_k_plus_plus",
    "utility_ratio_retain",
    "utility_ratio_holdout",
    "tofu_forget_quality",
)

#: The raw measurements printed under the table: (label, path into ``measurements``).
MEASUREMENTS = (
    ("VerbMem ROUGE-L F1", ("verbmem", "mean_f1")),
    ("AUC loss", ("membership", "auc", "loss")),
    ("AUC zlib", ("membership", "auc", "zlib")),
    ("AUC Min-K%", ("membership", "auc", "min_k")),
    ("AUC Min-K%++", ("membership", "auc", "min_k_plus_plus")),
    ("perplexity retain", ("perplexity", "retain", "value")),
    ("perplexity holdout", ("perplexity", "holdout", "value")),
    ("mean truth ratio (TOFU)", ("tofu", "mean")),
)


def measurements_table(results: Mapping[str, VerificationResult]) -> str:
    """Return a plain-text table of raw measurements (rows) by model (columns), 4 decimals."""
    lines = [["measurement", *results]]
    for label, path in MEASUREMENTS:
        cells = []
        for result in results.values():
            node = result.measurements
            for key in path:
                node = node.get(key) if isinstance(node, Mapping) else None
            cells.append("—" if node is None else f"{node:.4f}")
        if any(cell != "—" for cell in cells):
            lines.append([label, *cells])
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines
    )


def train_models(task: BenchTask, *, recipe: TrainingRecipe, workdir: Path) -> tuple[dict[str, Path], dict]:
    """Train the original and the exact retrain (same recipe and seed); return their directories."""
    dirs, timings = {}, {}
    for name, texts in (("original", task.original_texts), ("retrain", task.retrain_texts)):
        output = workdir / name
        shutil.rmtree(output, ignore_errors=True)
        started = time.monotonic()
        result = train_causal_lm(texts=texts, recipe=recipe, output_dir=output)
        timings[name] = {
            "seconds": round(time.monotonic() - started, 2),
            "steps": result.total_steps,
            "tokens": result.tokens,
            "final_loss": round(result.final_loss, 4),
        }
        print(f"trained {name}: {timings[name]}", flush=True)
        dirs[name] = output
    return dirs, timings


def verify_model_dirs(
    model_dirs: Mapping[str, str | Path],
    *,
    task: BenchTask,
    original: str = "original",
    reference: str = "retrain",
    thresholds: Mapping | None = None,
    settings: VerificationSettings | None = None,
) -> tuple[dict[str, VerificationResult], dict[str, float]]:
    """Verify every model directory; return results and wall seconds by name, and print the table.

    The ``original`` model is verified first (its perplexities are the utility baseline), then
    the ``reference`` (exact retrain; its AUCs are PrivLeak's reference), then every other model
    against both. The original and the reference are also judged against each other, so the
    table shows PrivLeak and utility ratios for them too.
    """
    from unlearning_jobs.engine.verify.suite import assess_measurements

    if original not in model_dirs:
        raise ValueError(f"model_dirs has no {original!r} entry: the utility baseline is needed")
    settings = settings or VerificationSettings(batch_size=32)
    order = [original] + [name for name in model_dirs if name != original]
    if reference in model_dirs:
        order.remove(reference)
        order.insert(1, reference)
    device, _dtype = resolve_device(None)
    results: dict[str, VerificationResult] = {}
    seconds: dict[str, float] = {}
    for name in order:
        model, tokenizer = load_causal_lm(model_dirs[name], device=device)
        started = time.monotonic()
        results[name] = run_verification(
            model=model,
            tokenizer=tokenizer,
            device=device,
            forget_records=task.forget_records,
            holdout_texts=task.holdout_texts,
            retain_texts=task.retain_sample,
            subject_pii=task.subjects,
            reference_results=results.get(reference),
            original_results=results.get(original),
            thresholds=thresholds,
            settings=settings,
            tofu_items=task.tofu_items or None,
        )
        seconds[name] = round(time.monotonic() - started, 2)
        print(f"verified {name} in {seconds[name]} s", flush=True)
    # The first runs had nothing to compare with; judge them again now that everything exists.
    for name in (original, reference):
        if name in results:
            results[name] = assess_measurements(
                measurements=results[name].measurements,
                reference_results=results.get(reference),
                original_results=results[original],
                thresholds=thresholds,
            )
    ordered = {name: results[name] for name in model_dirs}
    print()
    print(rows_table(ordered, TABLE_METRICS))
    print()
    print(measurements_table(ordered))
    print()
    for name, result in ordered.items():
        extraction = result.measurements["extraction"]
        print(
            f"{name}: {extraction['n_leaking']} of {extraction['n_probes']} probes leaked "
            f"({extraction['n_prefix_probes']} prefix, {extraction['n_question_probes']} question); "
            f"subjects leaking {extraction['n_subjects_leaking']} of {extraction['n_subjects']}; "
            f"by kind {extraction['leaks_by_kind']}; overall {'PASS' if result.passed else 'FAIL'}"
        )
    return ordered, seconds


def check_trained_on(model_dirs: Mapping[str, str | Path], task: BenchTask) -> list[str]:
    """Return a message for each of original/retrain that was trained on other data than the task.

    The demo generator may change between runs; verifying a model against records it was not
    trained on would print meaningless figures.
    """
    expected = {"original": task.original_texts, "retrain": task.retrain_texts}
    problems = []
    for name, texts in expected.items():
        provenance = Path(model_dirs.get(name, "")) / "lethe_training.json"
        if name in model_dirs and provenance.is_file():
            stored = json.loads(provenance.read_text(encoding="utf-8")).get("data_fingerprint")
            if stored != texts_fingerprint(texts):
                problems.append(f"{name} ({model_dirs[name]}) was trained on other data than this task")
    return problems


def _lookup(data: Mapping, path: tuple[str, ...]):
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tofu", help="path to the TOFU data (full.json, forget01.json, …): TOFU mode")
    parser.add_argument("--tofu-forget", default="forget01", choices=("forget01", "forget05", "forget10"))
    parser.add_argument("--records", type=int, default=1500)
    parser.add_argument("--people", type=int, default=150)
    parser.add_argument("--frequent", type=int, default=20)
    parser.add_argument("--forget-people", type=int, default=3)
    parser.add_argument("--holdout-people", type=int, default=3)
    parser.add_argument("--retain-sample", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=None, help="default 8 (demo), 5 (TOFU)")
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=None, help="default 2048 (demo), 4096 (TOFU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--models",
        default=None,
        help="name=DIR,... to verify existing models instead of training original and retrain",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; 1 avoids oversubscription on a shared 2-core machine",
    )
    parser.add_argument("--workdir", default=str(ROOT / "var" / "bench" / "verify"))
    parser.add_argument(
        "--out", default=None, help="default bench/results/verify.json (demo), verify_tofu_<set>.json (TOFU)"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.tofu:
        task = tofu_task(
            root=Path(args.tofu),
            forget_set=args.tofu_forget,
            retain_sample=args.retain_sample,
            seed=args.seed,
        )
        mode = f"tofu_{args.tofu_forget}"
    else:
        task = demo_task(
            records=args.records,
            people=args.people,
            frequent=args.frequent,
            forget_people=args.forget_people,
            holdout_people=args.holdout_people,
            retain_sample=args.retain_sample,
            seed=args.seed,
        )
        mode = "demo"
    print(f"task: {task.info}", flush=True)
    recipe = TrainingRecipe(
        n_layer=args.n_layer,
        n_embd=args.n_embd,
        n_head=4,
        vocab_size=args.vocab_size or (4096 if args.tofu else 2048),
        block_size=128,
        epochs=args.epochs or (5 if args.tofu else 8),
        batch_size=8,
        learning_rate=3e-3,
        seed=args.seed,
    )
    training = {}
    if args.models:
        model_dirs = dict(item.split("=", 1) for item in args.models.split(","))
        problems = check_trained_on(model_dirs, task)
        if problems:
            parser.error("; ".join(problems) + ": retrain them (run without --models)")
    else:
        model_dirs, training = train_models(task, recipe=recipe, workdir=Path(args.workdir) / mode)
    results, seconds = verify_model_dirs(model_dirs, task=task)

    default_name = "verify.json" if mode == "demo" else f"verify_{mode}.json"
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / default_name
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_paths = plot_membership_distributions(
        results=results, path=out.with_name(out.stem + "_membership"), score="min_k_plus_plus"
    )
    report = {
        "command": " ".join(["bench/verify.py", *sys.argv[1:]]),
        "mode": mode,
        "task": task.info,
        "data_fingerprint": texts_fingerprint(task.original_texts),
        "recipe": recipe.as_dict(),
        "training": training,
        "verification_seconds": seconds,
        "device": describe_device().as_dict(),
        "threads": args.threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "models": {name: str(path) for name, path in model_dirs.items()},
        "measurements_table": {
            name: {label: _lookup(result.measurements, path) for label, path in MEASUREMENTS}
            for name, result in results.items()
        },
        "table": {
            name: {
                row.metric: {"value": row.value, "passed": row.passed, "n": row.n_samples}
                for row in result.rows
            }
            for name, result in results.items()
        },
        "results": {name: result.to_dict() for name, result in results.items()},
        "plots": [str(path) for path in plot_paths],
    }
    out.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print(f"\nwrote {out} and {', '.join(str(path) for path in plot_paths)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
