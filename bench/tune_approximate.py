"""Try parameter variants of the approximate methods on the demo and verify each: how the defaults were chosen.

Uses the original and exact-retrain models that ``bench/verify.py`` trained (run it first; it
leaves them under ``var/bench/verify/demo``), the same demo task, and runs each variant from the
original with the forget records of the three most frequent people; the retain texts are the
task's retain sample plus the first 800 records of the retrain set. Every produced model is then
verified against the original and the retrain, and the usual table is printed. ``--tofu`` uses a
TOFU forget set instead, with the original and retrain that ``bench/unlearning.py --tofu`` left
(``--original``/``--retrain`` point elsewhere).

    .venv/bin/python bench/verify.py          # once: trains original and retrain
    .venv/bin/python bench/tune_approximate.py \\
        'gd_5e-5=gradient_difference:{"learning_rate": 5e-5, "max_steps": 600}' \\
        'npo_5e-5=npo:{"learning_rate": 5e-5, "max_steps": 600}'
    .venv/bin/python bench/tune_approximate.py --tofu ../shared/data/tofu --tofu-forget forget10 \
        'npo_loose=npo:{"max_retain_loss_increase": 0.3}'
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from tasks import demo_task, tofu_task  # noqa: E402  (bench/ is the script's directory)
from verify import check_trained_on, verify_model_dirs  # noqa: E402

from unlearning_jobs.engine.methods import get_method  # noqa: E402

RETAIN_FROM_RETRAIN_SET = 800


def parse_variant(text: str) -> tuple[str, str, dict]:
    """Return ``(label, method, params)`` from ``label=method:{json}``."""
    try:
        label, rest = text.split("=", 1)
        method, params = rest.split(":", 1)
        return label, method, json.loads(params)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected label=method:{{json params}} ({error})"
        ) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("variants", nargs="+", type=parse_variant, help="label=method:{json params}")
    parser.add_argument(
        "--models",
        default=str(ROOT / "var" / "bench" / "verify" / "demo"),
        help="directory holding bench/verify.py's original/ and retrain/ (demo)",
    )
    parser.add_argument("--tofu", help="path to the TOFU data: tune on a TOFU forget set instead of the demo")
    parser.add_argument("--tofu-forget", default="forget10")
    parser.add_argument("--original", default=None, help="TOFU: default var/bench/unlearning/tofu/original")
    parser.add_argument(
        "--retrain", default=None, help="TOFU: default var/bench/unlearning/tofu/<forget set>/retrain"
    )
    parser.add_argument("--workdir", default=str(ROOT / "var" / "bench" / "tune"))
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    if args.tofu:
        task = tofu_task(
            root=Path(args.tofu), forget_set=args.tofu_forget, retain_sample=200, holdout_authors=20
        )
        work = ROOT / "var" / "bench" / "unlearning" / "tofu"
        dirs = {
            "original": Path(args.original or work / "original"),
            "retrain": Path(args.retrain or work / args.tofu_forget / "retrain"),
        }
    else:
        task = demo_task(
            records=1500, people=150, frequent=20, forget_people=3, holdout_people=3, retain_sample=200
        )
        dirs = {"original": Path(args.models) / "original", "retrain": Path(args.models) / "retrain"}
    problems = check_trained_on(dirs, task)
    if problems:
        parser.error("; ".join(problems) + ": run bench/verify.py (demo) or bench/unlearning.py --tofu first")
    forget_texts = [record.text for record in task.forget_records]
    retain_texts = task.retain_sample + task.retrain_texts[:RETAIN_FROM_RETRAIN_SET]
    for label, method, params in args.variants:
        output = Path(args.workdir) / label
        shutil.rmtree(output, ignore_errors=True)
        started = time.monotonic()
        result = get_method(method).run(
            source_model_dir=dirs["original"],
            output_dir=output,
            forget_texts=forget_texts,
            retain_texts=retain_texts,
            params=params,
        )
        m = result.metrics
        print(
            f"{label}: {time.monotonic() - started:.1f} s, {result.steps} steps, {m['stopped_reason']}, "
            f"forget loss {m['forget_loss_before']:.3f} -> {m['forget_loss_after']:.3f}, "
            f"retain loss {m['retain_loss_before']:.3f} -> {m['retain_loss_after']:.3f}",
            flush=True,
        )
        dirs[label] = output
    verify_model_dirs(dirs, task=task)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
