"""How well each model predicts each group of TOFU authors: answer-token loss, nats per token.

The eighth unlearning run (docs/performance.md) stopped NPO where the forgotten author's records
scored like other authors' records that no model trained on, and still ended 4 to 18 points of
PrivLeak off the re-fine-tune. This prints why: under each model directory given, the mean loss
(the engine's ``evaluate_examples_loss``, on the answers only, in the chat template, as the
unlearning methods measure it) of the forgotten author, verification's holdout author, and the
bench task's non-member authors, each of them alone. A model that never saw the forgotten author
(the re-fine-tune) scores it like an unseen person only if unseen people all score alike.

    .venv/bin/python bench/tofu_author_losses.py \\
        --model original=var/bench/nm/tofu_finetuned/original \\
        --model retrain=var/bench/nm/tofu_finetuned/forget10/retrain
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tasks import TOFU_AUTHOR_SIZE, tofu_task  # noqa: E402  (bench/ is the script's directory)

from unlearning_jobs.engine.methods.data import encode_records, evaluate_examples_loss  # noqa: E402
from unlearning_jobs.engine.models import load_causal_lm  # noqa: E402


def author_groups(task) -> dict[str, list[dict]]:
    """Return ``{group: prompt/answer records}``: the forgotten, the holdout and each non-member author."""

    def pairs(texts) -> list[dict]:
        return [{"prompt": task.pairs[t][0], "answer": task.pairs[t][1]} for t in texts]

    groups = {
        "forgotten": pairs([record.text for record in task.forget_records]),
        "verification holdout": pairs(task.holdout_texts),
    }
    non_members = pairs(task.non_member_records)
    for n in range(0, len(non_members), TOFU_AUTHOR_SIZE):
        groups[f"non-member author {n // TOFU_AUTHOR_SIZE + 1}"] = non_members[n : n + TOFU_AUTHOR_SIZE]
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tofu", type=Path, default=ROOT.parent / "shared" / "data" / "tofu")
    parser.add_argument("--forget", default="forget10")
    parser.add_argument("--authors", type=int, default=6)
    parser.add_argument("--model", action="append", required=True, help="NAME=DIR, repeated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tofu_author_losses.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    task = tofu_task(root=args.tofu, forget_set=args.forget, retain_sample=40, authors=args.authors)
    if not task.non_member_records:
        parser.error("the task has no non-member authors: pass --authors")
    groups = author_groups(task)
    results: dict[str, dict[str, float]] = {}
    for spec in args.model:
        name, _, directory = spec.partition("=")
        if not directory:
            parser.error(f"--model takes NAME=DIR, got {spec!r}")
        model, tokenizer = load_causal_lm(Path(directory), device="cpu")
        model.eval()
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        results[name] = {
            group: round(
                evaluate_examples_loss(
                    model,
                    encode_records(tokenizer, records, block_size=512, pair_format="auto"),
                    pad_id=pad,
                    device=torch.device("cpu"),
                    dtype=torch.float32,
                ),
                3,
            )
            for group, records in groups.items()
        }
        print(name, json.dumps(results[name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"task": task.info, "losses": results}, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
