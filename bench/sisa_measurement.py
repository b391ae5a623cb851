"""SISA unlearning's before/after loss measurement: the whole ensemble twice, or each shard once.

On the H200 (docs/performance.md, "On a GPU") SISA over four SmolLM2 adapters spent 9.6 s of its
24.0 s measuring the ensemble's forget and retain loss before and after unlearning. The method now
scores each shard's own token log-probabilities (``engine.methods.sisa_losses``) and, after
unlearning, runs only the retrained shards again. This bench trains SISA adapters on a TOFU
subset, unlearns two authors, and times both ways of measuring the same two models on the same
texts, checking that they give the same losses:

- ``ensemble``: ``measure_model_dir`` on the source and on the unlearned model (every shard, the
  averaged distribution over the whole vocabulary), as SISA measured before;
- ``per shard``: ``score_sisa_dir`` on the source, then on the unlearned model for the retrained
  shards only.

    .venv/bin/python bench/sisa_measurement.py                       # SmolLM2, CPU
    .venv/bin/python bench/sisa_measurement.py --base DIR --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from finetune_unlearn import select  # noqa: E402  (bench/ is the script's directory)
from memory import smollm2_dir  # noqa: E402


def _timed(call):
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.monotonic()
    value = call()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    return value, time.monotonic() - started, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="smollm2", help="'smollm2' or a Hugging Face checkpoint directory")
    parser.add_argument("--authors", type=int, default=8, help="TOFU authors fine-tuned on (2 are forgotten)")
    parser.add_argument("--per-author", type=int, default=5, help="items per author")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--retain-eval-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=2, help="timings per way (the best is kept)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from unlearning_jobs.engine.methods import get_method
    from unlearning_jobs.engine.methods.base import measure_model_dir, retain_eval_sample
    from unlearning_jobs.engine.methods.sisa_losses import score_sisa_dir
    from unlearning_jobs.engine.training.sisa_adapters import train_sisa_adapters

    base = smollm2_dir() if args.base == "smollm2" else Path(args.base)
    preset = dict(authors=args.authors, per_author=args.per_author, heldout=0)
    records, groups, forget_ids, _heldout, _perturbed = select(preset)
    drop = set(forget_ids)
    text = lambda r: f"{r['question']} {r['answer']}"  # noqa: E731
    forget_texts = [text(r) for rid, r in records if rid in drop]
    retain_texts = retain_eval_sample(
        [text(r) for rid, r in records if rid not in drop], size=args.retain_eval_size
    )
    params = {
        "format": "prompt_answer",
        "epochs": 1,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "max_length": 256,
    }
    work = Path(tempfile.mkdtemp(prefix="lethe-bench-sisa-measure-"))
    try:
        train_sisa_adapters(
            base_model_dir=base,
            records=records,
            params=params,
            output_dir=work / "sisa",
            shards=args.shards,
            groups=groups,
            device=args.device,
        )
        unlearned = get_method("sisa").run(
            source_model_dir=work / "sisa",
            output_dir=work / "unlearned",
            forget_texts=forget_texts,
            retain_texts=retain_texts,
            full_texts=records,
            forget_ids=forget_ids,
            device=args.device,
            params={"retain_eval_size": args.retain_eval_size},
        )
        retrained = unlearned.metrics["shards_retrained"]
        common = dict(forget_texts=forget_texts, retain_texts=retain_texts, device=args.device, dtype=None)

        def ensemble():
            return measure_model_dir(work / "sisa", **common), measure_model_dir(work / "unlearned", **common)

        def per_shard():
            before = score_sisa_dir(work / "sisa", **common)
            after = score_sisa_dir(
                work / "unlearned", only_shards=retrained, unchanged=before.by_shard, **common
            )
            return before.losses(), after.losses()

        rows = {}
        for name, call in (("ensemble", ensemble), ("per shard", per_shard)):
            runs = [_timed(call) for _ in range(args.repeat)]
            losses, seconds, peak = min(runs, key=lambda run: run[1])
            rows[name] = {
                "seconds": seconds,
                "peak_cuda_bytes": peak,
                "before": losses[0],
                "after": losses[1],
            }
        agree = all(
            abs(rows["ensemble"][when][name] - rows["per shard"][when][name])
            <= 1e-4 * abs(rows["ensemble"][when][name])
            for when in ("before", "after")
            for name in ("forget", "retain")
        )
        print(
            f"SISA over {args.shards} adapters of {base.name}, {len(forget_texts)} forget texts, "
            f"{len(retain_texts)} retain texts, device {args.device}; shards retrained: {retrained}"
        )
        print(
            f"{'measurement':<12} {'seconds':>8} {'peak CUDA GiB':>14} {'forget before':>14} {'forget after':>13}"
        )
        for name, row in rows.items():
            peak = f"{row['peak_cuda_bytes'] / 2**30:.2f}" if row["peak_cuda_bytes"] is not None else "-"
            print(
                f"{name:<12} {row['seconds']:>8.2f} {peak:>14} "
                f"{row['before']['forget']:>14.4f} {row['after']['forget']:>13.4f}"
            )
        speedup = rows["ensemble"]["seconds"] / rows["per shard"]["seconds"]
        print(f"per shard is {speedup:.2f}x faster; losses agree to 1e-4: {agree}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(
                json.dumps(
                    {"shards_retrained": retrained, "rows": rows, "speedup": speedup, "agree": agree},
                    indent=2,
                )
                + "\n"
            )
        return 0 if agree else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
