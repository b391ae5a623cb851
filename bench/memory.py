"""Peak training memory per method: measured on the CPU for SmolLM2-135M, estimated for 7 B and 70 B.

Methods: full-parameter AdamW fine-tune (also what gradient ascent/difference cost), LoRA, NPO
with a deep-copied reference model (the engine's approximate methods today) and NPO on a LoRA
adapter whose reference is the same weights with the adapter disabled (no second copy).

The estimate is one formula for every size (bytes; P parameters, A LoRA parameters, b batch,
s sequence, h hidden, L layers, V vocabulary; w bytes per frozen weight: 4 in fp32, 2 in bf16):

    full AdamW      16 P                       weights + gradients + two Adam moments, fp32
    LoRA            w P + 16 A                 frozen base + the adapter's own AdamW state
    NPO + copy      16 P + w P                 full AdamW plus a frozen reference copy
    NPO adapter     w P + 16 A                 the reference is the base with the adapter off
    + activations   L b s h 34 (a/4 with gradient checkpointing) + 8 b s V (logits, fp32)

The measured CPU figure is the peak resident memory of a process that loads SmolLM2 and takes
two optimiser steps, minus the same process's memory after importing torch; it is printed next
to the formula's value for the same size so the formula's error is in sight.

    .venv/bin/python bench/memory.py            # measure SmolLM2 on the CPU, estimate 7B/70B
    .venv/bin/python bench/memory.py --no-measure
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIB = 1 << 30
METHODS = ("full_adamw", "lora", "npo_reference_copy", "npo_adapter_reference")
#: Llama-shaped models: parameters, hidden, layers, kv width, MLP width, vocabulary.
SIZES = {
    "SmolLM2-135M": dict(P=134_515_008, h=576, L=30, kv=192, i=1536, V=49152),
    "7B (Llama-2-7B shape)": dict(P=6_738_415_616, h=4096, L=32, kv=4096, i=11008, V=32000),
    "70B (Llama-2-70B shape)": dict(P=68_976_648_192, h=8192, L=80, kv=1024, i=28672, V=32000),
}
GPUS = {"24 GB (L4, RTX 4090)": 24, "40 GB (A100-40)": 40, "80 GB (A100/H100-80)": 80, "141 GB (H200)": 141}


def lora_parameters(shape: dict, r: int = 8) -> int:
    """LoRA r on every linear layer of a Llama block: r * (in + out) per projection."""
    h, kv, i = shape["h"], shape["kv"], shape["i"]
    per_layer = r * ((h + h) + (h + kv) + (h + kv) + (h + h) + (h + i) + (h + i) + (i + h))
    return per_layer * shape["L"]


def estimate(
    shape: dict, method: str, *, batch: int, seq: int, weight_bytes: int, checkpointing: bool
) -> int:
    """Return the formula's peak bytes for ``method`` on a model of ``shape``."""
    P, A = shape["P"], lora_parameters(shape)
    states = {
        "full_adamw": 16 * P,
        "lora": weight_bytes * P + 16 * A,
        "npo_reference_copy": 16 * P + weight_bytes * P,
        "npo_adapter_reference": weight_bytes * P + 16 * A,
    }[method]
    act = shape["L"] * batch * seq * shape["h"] * 34 * weight_bytes // 4
    if checkpointing:
        act //= shape["L"]
    logits = 8 * batch * seq * shape["V"]
    return states + act + logits


_CHILD = r"""
import gc, json, resource, sys, torch
torch.set_num_threads(2)
sys.path.insert(0, {root!r})
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from transformers import AutoModelForCausalLM
method, model_dir, batch, seq = {method!r}, {model_dir!r}, {batch}, {seq}
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
ids = torch.randint(0, model.config.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0))
reference = None
if method in ("lora", "npo_adapter_reference"):
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
if method == "npo_reference_copy":
    import copy
    reference = copy.deepcopy(model).eval().requires_grad_(False)
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-5)
for _ in range(2):
    logp = torch.log_softmax(model(input_ids=ids).logits.float(), -1)
    loss = -logp[..., 0].mean()
    if method == "npo_reference_copy":
        with torch.no_grad():
            ref = torch.log_softmax(reference(input_ids=ids).logits.float(), -1)
        loss = loss + (logp[..., 0] - ref[..., 0]).mean()
    elif method == "npo_adapter_reference":
        with torch.no_grad(), model.disable_adapter():
            ref = torch.log_softmax(model(input_ids=ids).logits.float(), -1)
        loss = loss + (logp[..., 0] - ref[..., 0]).mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"peak_bytes": (peak - base_rss) * 1024}}))
"""


def measure(method: str, model_dir: Path, *, batch: int, seq: int) -> int:
    """Peak resident bytes above an idle torch process, for one method, in a fresh subprocess."""
    code = _CHILD.format(root=str(ROOT), method=method, model_dir=str(model_dir), batch=batch, seq=seq)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"])


def smollm2_dir() -> Path:
    """The converted SmolLM2 directory (shared with the real_model tests' cache)."""
    from unlearning_jobs.engine.checkpoints import file_sha256
    from unlearning_jobs.engine.importing import import_model, smollm2_gguf_path

    gguf = smollm2_gguf_path()
    out = ROOT / "var" / "cache" / "models" / f"smollm2-{file_sha256(gguf)[:16]}"
    if not (out / "model.safetensors").is_file():
        import_model(gguf, out, overwrite=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-measure", action="store_true", help="print the estimates only")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    report: dict = {
        "batch": args.batch,
        "seq": args.seq,
        "methods": list(METHODS),
        "sizes": {},
        "measured": {},
    }
    if not args.no_measure:
        model_dir = smollm2_dir()
        for method in METHODS:
            report["measured"][method] = measure(method, model_dir, batch=args.batch, seq=args.seq)
    for name, shape in SIZES.items():
        rows = {}
        for method in METHODS:
            fp32 = estimate(
                shape, method, batch=args.batch, seq=args.seq, weight_bytes=4, checkpointing=False
            )
            bf16 = estimate(shape, method, batch=args.batch, seq=args.seq, weight_bytes=2, checkpointing=True)
            rows[method] = {"fp32_bytes": fp32, "bf16_checkpointed_bytes": bf16}
        report["sizes"][name] = {
            "lora_parameters": lora_parameters(shape),
            "parameters": shape["P"],
            "methods": rows,
        }

    print(f"Peak training memory, batch {args.batch} x {args.seq} tokens (GiB)")
    header = f"{'model':<26}{'method':<24}{'fp32 est.':>11}{'bf16+ckpt est.':>16}{'measured CPU':>14}"
    print(header)
    print("-" * len(header))
    for name, data in report["sizes"].items():
        for method, row in data["methods"].items():
            measured = report["measured"].get(method) if name == "SmolLM2-135M" else None
            cell = f"{measured / GIB:>14.2f}" if measured is not None else f"{'':>14}"
            print(
                f"{name:<26}{method:<24}{row['fp32_bytes'] / GIB:>11.2f}{row['bf16_checkpointed_bytes'] / GIB:>16.2f}{cell}"
            )
    print()
    print("Fits (bf16 weights, gradient checkpointing; 10% headroom):")
    fits = {}
    for name, data in report["sizes"].items():
        fits[name] = {}
        for method, row in data["methods"].items():
            need = row["bf16_checkpointed_bytes"] / GIB
            smallest = next(
                (gpu for gpu, gib in GPUS.items() if need <= 0.9 * gib), "more than one 141 GB GPU"
            )
            fits[name][method] = smallest
            print(f"  {name:<26}{method:<24}{smallest}")
    report["fits"] = fits
    text = json.dumps(report, indent=1)
    print()
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
