"""Benchmark the unlearning methods on the demo data set or on TOFU, and write the figures as JSON.

Demo mode (default) generates the seeded synthetic customer-support records, trains the demo-scale
GPT-2 model from scratch, forgets every record of a few frequently-mentioned people, and runs
every method; SISA is trained as ``--shards`` x ``--slices`` and unlearned the same way. TOFU mode
trains on ``full.json`` question+answer pairs and forgets ``forget01`` and ``forget10``.

For each method it prints wall time and its ratio to ``retrain``, forget and retain loss before
and after (nats per token), and how many of the forgotten people's e-mails (demo) or answers
(TOFU) the model still completes greedily, next to a control group it should still know.

    .venv/bin/python bench/unlearning.py                          # demo, a few minutes on 2 CPUs
    .venv/bin/python bench/unlearning.py --tofu ../shared/data/tofu
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from unlearning_jobs.engine.device import describe_device  # noqa: E402
from unlearning_jobs.engine.methods import get_method  # noqa: E402
from unlearning_jobs.engine.models import load_causal_lm  # noqa: E402
from unlearning_jobs.engine.training import TrainingRecipe, train_causal_lm  # noqa: E402
from unlearning_jobs.engine.training.sisa import train_sisa  # noqa: E402

APPROXIMATE = ("gradient_ascent", "gradient_difference", "npo")


def demo_task(args) -> dict:
    """Return the demo records, the forget ids and the extraction probes (forgotten and control)."""
    from unlearning_jobs.engine.demo_data import generate_demo_dataset

    data = generate_demo_dataset(records=args.records, people=args.people, frequent_people=args.frequent)
    records = [(r["id"], r["text"]) for r in data.records]
    frequent = sorted(data.people, key=lambda p: -len(p.record_ids))[: args.frequent]
    forgotten = frequent[: args.forget_people]
    control = frequent[args.forget_people : args.forget_people + 10]
    forget_ids = sorted({rid for person in forgotten for rid in person.record_ids})
    # A typical erasure request: one person named in a single record. Only SISA's cost depends
    # on how many shards the records touch, so only SISA runs on it.
    single = next(p for p in data.people if len(p.record_ids) == 1)

    def probes(people):
        return [(f"Contact {p.full_name} at", p.email.lower()) for p in people]

    many = f"{args.forget_people}_people"
    groups = {rid: found[0][0] for rid, found in data.mentions.items() if len(found) == 1}
    return {
        "groups": groups,
        "name": "demo",
        "records": records,
        "forget_sets": {many: forget_ids, "1_person_1_record": list(single.record_ids)},
        "only": {"1_person_1_record": ["sisa"]},
        "probes": {many: {"forget": probes(forgotten), "control": probes(control)},
                   "1_person_1_record": {"forget": probes([single]), "control": probes(control)}},
        "info": {"people": args.people, "frequent_people": args.frequent, "forget_people": args.forget_people},
    }


def tofu_task(args) -> dict:
    """Return TOFU's QA pairs as records, forget01/forget10 ids, and answer-completion probes."""
    root = Path(args.tofu)

    def read(name):
        with open(root / f"{name}.json", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    full = read("full")
    text_of = lambda qa: f"Question: {qa['question']}\nAnswer: {qa['answer']}"  # noqa: E731
    records = [(f"Q{i:05d}", text_of(qa)) for i, qa in enumerate(full)]
    index = {(qa["question"], qa["answer"]): f"Q{i:05d}" for i, qa in enumerate(full)}
    forget_sets, probes = {}, {}
    for name in args.tofu_forget.split(","):
        subset = read(name)
        ids = [index[(qa["question"], qa["answer"])] for qa in subset]
        forget_sets[name] = ids
        chosen = set(ids)
        control = [qa for i, qa in enumerate(full) if f"Q{i:05d}" not in chosen][:: max(1, len(full) // 40)][:40]

        def qa_probes(pairs):
            return [(f"Question: {qa['question']}\nAnswer:", " ".join(qa["answer"].split()[:4]).lower())
                    for qa in pairs[:40]]

        probes[name] = {"forget": qa_probes(subset), "control": qa_probes(control)}
    return {"name": "tofu", "records": records, "forget_sets": forget_sets, "probes": probes,
            "info": {"source": str(root), "records": len(full)}}


def extraction_rate(model_dir: str, probes, *, max_new_tokens: int = 24) -> float:
    """Return the share of probes whose greedy completion contains the expected string."""
    if not probes:
        return float("nan")
    model, tokenizer = load_causal_lm(model_dir)
    device = next(model.parameters()).device
    hits = 0
    with torch.no_grad():
        for prompt, expected in probes:
            ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids.to(device)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
            completion = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).lower()
            hits += expected in completion
    return hits / len(probes)


def run_method(name, *, source, work, forget_ids, records, params, probes, sisa=False) -> dict:
    """Run one method and return its figures."""
    chosen = set(forget_ids)
    forget_texts = [t for rid, t in records if rid in chosen]
    retain_texts = [t for rid, t in records if rid not in chosen]
    output = work / f"{name}{'-sisa' if sisa else ''}"
    shutil.rmtree(output, ignore_errors=True)
    started = time.monotonic()
    result = get_method(name).run(
        source_model_dir=source, output_dir=output, forget_texts=forget_texts, retain_texts=retain_texts,
        full_texts=records, forget_ids=forget_ids, params=params,
    )
    seconds = time.monotonic() - started
    m = result.metrics
    row = {
        "seconds": round(seconds, 2),
        "steps": result.steps,
        "forget_loss_before": round(m["forget_loss_before"], 4),
        "forget_loss_after": round(m["forget_loss_after"], 4),
        "retain_loss_before": round(m["retain_loss_before"], 4),
        "retain_loss_after": round(m["retain_loss_after"], 4),
        "stopped_reason": m["stopped_reason"],
        "extraction_forget_after": extraction_rate(str(output), probes["forget"]),
        "extraction_control_after": extraction_rate(str(output), probes["control"]),
        "weights_sha256": result.weights_sha256,
    }
    for key in ("shards_retrained", "steps_ratio", "retrained_steps", "full_training_steps", "training_seconds"):
        if key in m:
            row[key] = m[key]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tofu", help="path to the TOFU data (full.json, forget01.json, …): TOFU mode")
    parser.add_argument("--tofu-forget", default="forget01,forget10")
    parser.add_argument("--records", type=int, default=1500)
    parser.add_argument("--people", type=int, default=150)
    parser.add_argument("--frequent", type=int, default=20)
    parser.add_argument("--forget-people", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default 8 (demo), 3 (TOFU)")
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--sisa-group-by-person", action="store_true",
                        help="demo: keep each person's records in one SISA shard (ground truth)")
    parser.add_argument("--methods", default=None,
                        help="default: all five (demo); retrain and the approximate ones (TOFU)")
    parser.add_argument("--params", default="{}", help='JSON {"method": {params}} overriding defaults')
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 avoids oversubscription on a shared 2-core machine")
    parser.add_argument("--workdir", default=str(ROOT / "var" / "bench" / "unlearning"))
    parser.add_argument("--out", default=None, help="default bench/results/unlearning[_tofu].json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    task = tofu_task(args) if args.tofu else demo_task(args)
    epochs = args.epochs or (3 if args.tofu else 8)
    recipe = TrainingRecipe(n_layer=args.n_layer, n_embd=args.n_embd, n_head=4, vocab_size=args.vocab_size,
                            block_size=128, epochs=epochs, batch_size=8, learning_rate=3e-3)
    methods = [m for m in (args.methods or (
        "retrain,gradient_ascent,gradient_difference,npo" if args.tofu else
        "retrain,gradient_ascent,gradient_difference,npo,sisa")).split(",") if m]
    overrides = json.loads(args.params)
    work = Path(args.workdir) / task["name"]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    records = task["records"]
    report = {
        "mode": task["name"], "task": task["info"], "records": len(records), "recipe": recipe.as_dict(),
        "device": describe_device().as_dict(), "threads": args.threads, "python": platform.python_version(),
        "torch": torch.__version__, "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "forget_sets": {},
    }

    started = time.monotonic()
    trained = train_causal_lm(texts=[t for _, t in records], recipe=recipe, output_dir=work / "original")
    report["train"] = {"seconds": round(time.monotonic() - started, 2), "steps": trained.total_steps,
                       "tokens": trained.tokens, "final_loss": round(trained.final_loss, 4),
                       "tokens_per_second": round(trained.tokens / max(trained.seconds, 1e-9))}
    print(f"trained original: {report['train']}", flush=True)
    sisa_dir = None
    if "sisa" in methods:
        started = time.monotonic()
        groups = task.get("groups") if args.sisa_group_by_person else None
        sisa = train_sisa(records=records, recipe=recipe, output_dir=work / "sisa-original",
                          shards=args.shards, slices=args.slices, groups=groups)
        sisa_dir = work / "sisa-original"
        report["sisa_train"] = {"seconds": round(time.monotonic() - started, 2), "steps": sisa.steps,
                                "shards": args.shards, "slices": args.slices,
                                "epochs_per_slice": sisa.epochs_per_slice, "grouped_by_person": groups is not None}
        print(f"trained SISA: {report['sisa_train']}", flush=True)

    retrain_seconds = retrain_training_seconds = None
    for set_name, forget_ids in task["forget_sets"].items():
        probes = task["probes"][set_name]
        rows = {"forget_records": len(forget_ids),
                "extraction_forget_before": extraction_rate(str(work / "original"), probes["forget"]),
                "extraction_control_before": extraction_rate(str(work / "original"), probes["control"]),
                "methods": {}}
        set_work = work / set_name
        only = task.get("only", {}).get(set_name)
        for name in methods:
            if name == "sisa" or (only is not None and name not in only):
                continue
            row = run_method(name, source=work / "original", work=set_work, forget_ids=forget_ids,
                             records=records, params=overrides.get(name), probes=probes)
            rows["methods"][name] = row
            print(f"[{set_name}] {name}: {row}", flush=True)
        if sisa_dir is not None and (only is None or "sisa" in only):
            row = run_method("sisa", source=sisa_dir, work=set_work, forget_ids=forget_ids, records=records,
                             params=overrides.get("sisa"), probes=probes, sisa=True)
            row["extraction_forget_before"] = extraction_rate(str(sisa_dir), probes["forget"])
            row["extraction_control_before"] = extraction_rate(str(sisa_dir), probes["control"])
            row["seconds_ratio_to_sisa_full_training"] = round(row["seconds"] / report["sisa_train"]["seconds"], 4)
            row["training_seconds_ratio_to_sisa_full_training"] = round(
                row["training_seconds"] / report["sisa_train"]["seconds"], 4)
            rows["methods"]["sisa"] = row
            print(f"[{set_name}] sisa: {row}", flush=True)
        base = rows["methods"].get("retrain", {}).get("seconds") or retrain_seconds
        retrain_seconds = retrain_seconds or base
        base_training = rows["methods"].get("retrain", {}).get("training_seconds") or retrain_training_seconds
        retrain_training_seconds = retrain_training_seconds or base_training
        for row in rows["methods"].values():
            row["seconds_ratio_to_retrain"] = round(row["seconds"] / base, 4) if base else None
            if "training_seconds" in row and base_training:
                row["training_seconds_ratio_to_retrain"] = round(row["training_seconds"] / base_training, 4)
        if base and not rows["methods"].get("retrain"):
            rows["retrain_seconds_from"] = "the first forget set's retrain"
        report["forget_sets"][set_name] = rows

    print()
    print(f"{'set':<12} {'method':<20} {'seconds':>8} {'x retrain':>9} {'forget before→after':>22} "
          f"{'retain before→after':>22} {'extract forget':>15} {'control':>8}")
    for set_name, rows in report["forget_sets"].items():
        for name, row in rows["methods"].items():
            before = row.get("extraction_forget_before", rows["extraction_forget_before"])
            print(f"{set_name:<12} {name:<20} {row['seconds']:>8.1f} {row['seconds_ratio_to_retrain'] or 0:>9.3f} "
                  f"{row['forget_loss_before']:>10.3f} → {row['forget_loss_after']:<9.3f} "
                  f"{row['retain_loss_before']:>10.3f} → {row['retain_loss_after']:<9.3f} "
                  f"{before:>6.2f} → {row['extraction_forget_after']:<5.2f} {row['extraction_control_after']:>8.2f}")
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / (
        "unlearning_tofu.json" if args.tofu else "unlearning.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for set_name, rows in report["forget_sets"].items():
        sisa_row = rows["methods"].get("sisa")
        if sisa_row:
            print(f"SISA {args.shards}x{args.slices} on {set_name}: shards retrained {sisa_row['shards_retrained']}, "
                  f"training {sisa_row['training_seconds']:.1f} s = "
                  f"{sisa_row.get('training_seconds_ratio_to_retrain') or float('nan'):.3f} x retrain's training, "
                  f"{sisa_row['training_seconds_ratio_to_sisa_full_training']:.3f} x SISA's full training "
                  f"(steps ratio {sisa_row['steps_ratio']:.3f})")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
