"""Fine-tuning pretrained causal LMs: records, LoRA and full, determinism, cancel/resume, loading."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from unlearning_jobs.engine.checkpoints import latest_checkpoint, weights_sha256
from unlearning_jobs.engine.models import load_causal_lm
from unlearning_jobs.engine.training import CheckpointMismatch, TrainingCancelled
from unlearning_jobs.engine.training.finetune import (
    FINETUNE_FILE,
    IGNORE,
    FinetuneParams,
    collate_examples,
    encode_record,
    finetune,
    read_finetune_recipe,
)

from .pretrained import make_base, make_tokenizer, qa_records

PARAMS = {"format": "prompt_answer", "epochs": 2, "batch_size": 4, "learning_rate": 1e-2, "max_length": 64}


@pytest.fixture(scope="module")
def llama_base(tmp_path_factory):
    return make_base(tmp_path_factory.mktemp("base") / "llama", arch="llama")


@pytest.fixture(scope="module")
def records():
    return qa_records()


def answer_loss(model, tokenizer, records) -> float:
    """Mean next-token loss on the answer tokens, as the fine-tune optimises it."""
    examples = [encode_record(tokenizer, rid, r, fmt="prompt_answer", max_length=64) for rid, r in records]
    batch = collate_examples(examples, pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return float(
        torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)),
            batch["labels"][:, 1:].reshape(-1),
            ignore_index=IGNORE,
        )
    )


def test_prompt_answer_labels_only_the_answer_and_use_the_chat_template():
    tokenizer = make_tokenizer(chat_template=True)
    record = {"prompt": "Where was Ada born?", "answer": "In Oslo."}
    example = encode_record(tokenizer, "r1", record, fmt="prompt_answer", max_length=128)
    text = tokenizer.decode(list(example.input_ids))
    assert text.startswith("<|pad|>user\nWhere was Ada born?")
    labelled = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE]
    assert tokenizer.decode(labelled).startswith("In Oslo.")
    prompt_part = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label == IGNORE]
    assert "Oslo" not in tokenizer.decode(prompt_part)
    batch = collate_examples(
        [
            example,
            encode_record(
                tokenizer, "r2", {"prompt": "Hi", "answer": "Yo"}, fmt="prompt_answer", max_length=128
            ),
        ],
        pad_id=tokenizer.pad_token_id,
    )
    short = batch["attention_mask"][1] == 0
    assert bool(short.any()) and bool((batch["labels"][1][short] == IGNORE).all())


def test_without_a_chat_template_the_answer_follows_the_prompt():
    tokenizer = make_tokenizer(chat_template=False)
    example = encode_record(
        tokenizer, "r", {"question": "Q?", "answer": "A."}, fmt="prompt_answer", max_length=64
    )
    labelled = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE]
    assert tokenizer.decode(labelled) == " A." + tokenizer.eos_token


def test_params_are_validated_by_name():
    with pytest.raises(ValueError, match="unknown field.*lora_rank"):
        FinetuneParams.from_dict({"lora_rank": 4})
    with pytest.raises(ValueError, match="adapter: must be one of"):
        FinetuneParams(adapter="qlora")
    with pytest.raises(ValueError, match="format: must be one of"):
        FinetuneParams(format="chat")
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        FinetuneParams(gradient_accumulation_steps=0)
    assert FinetuneParams.from_dict({"target_modules": ["q_proj"]}).target_modules == ("q_proj",)


def test_bf16_is_refused_on_the_cpu(llama_base, records, tmp_path):
    with pytest.raises(ValueError, match="bf16 is for CUDA"):
        finetune(
            base_model_dir=llama_base,
            records=records,
            params={**PARAMS, "bf16": True},
            output_dir=tmp_path / "o",
            device="cpu",
        )


def test_lora_fine_tune_is_deterministic_and_its_recipe_names_everything(llama_base, records, tmp_path):
    first = finetune(
        base_model_dir=llama_base,
        records=records,
        params=PARAMS,
        output_dir=tmp_path / "a",
        data_identity={"dataset_version": 7},
        device="cpu",
    )
    second = finetune(
        base_model_dir=llama_base,
        records=records,
        params=PARAMS,
        output_dir=tmp_path / "b",
        data_identity={"dataset_version": 7},
        device="cpu",
    )
    other_seed = finetune(
        base_model_dir=llama_base,
        records=records,
        params={**PARAMS, "seed": 1},
        output_dir=tmp_path / "c",
        device="cpu",
    )
    assert first.weights_sha256 == second.weights_sha256
    assert other_seed.weights_sha256 != first.weights_sha256
    assert first.output_kind == "adapter"
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "a" / "model.safetensors").exists()
    recipe = read_finetune_recipe(tmp_path / "a")
    assert recipe == json.loads(json.dumps(first.recipe))
    assert recipe["base"]["weights_sha256"] == weights_sha256(llama_base)
    assert recipe["data"] == {"dataset_version": 7}
    assert recipe["record_format"] == "prompt_answer" and recipe["seed"] == 0
    assert recipe["adapter_config"]["r"] == 8 and recipe["adapter_config"]["target_modules"] == "all-linear"
    assert recipe["params"]["learning_rate"] == PARAMS["learning_rate"]
    assert first.epoch_losses[-1] < first.epoch_losses[0]
    assert first.steps == first.total_steps == 2 * 6  # 24 records / batch 4, two epochs


def test_adapter_dir_loads_as_base_plus_adapter_merged_or_not(llama_base, records, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    finetune(
        base_model_dir=llama_base, records=records, params=PARAMS, output_dir=tmp_path / "ft", device="cpu"
    )
    merged, tokenizer = load_causal_lm(tmp_path / "ft", device="cpu")
    peft_model, _ = load_causal_lm(tmp_path / "ft", device="cpu", merge_adapter=False)
    base = AutoModelForCausalLM.from_pretrained(llama_base).eval()
    assert isinstance(peft_model, PeftModel) and not isinstance(merged, PeftModel)
    ids = tokenizer("What does one know", return_tensors="pt").input_ids
    with torch.no_grad():
        a, b, c = merged(ids).logits, peft_model(ids).logits, base(ids).logits
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)
    assert answer_loss(merged, tokenizer, records) < answer_loss(base, tokenizer, records) - 0.1
    with peft_model.disable_adapter(), torch.no_grad():
        assert torch.allclose(peft_model(ids).logits, c, atol=1e-5)


def test_an_adapter_whose_base_is_gone_says_so(llama_base, records, tmp_path):
    import shutil

    base = shutil.copytree(llama_base, tmp_path / "base")
    finetune(
        base_model_dir=base,
        records=records[:4],
        params={**PARAMS, "epochs": 1},
        output_dir=tmp_path / "ft",
        device="cpu",
    )
    shutil.rmtree(base)
    with pytest.raises(FileNotFoundError, match="base model"):
        load_causal_lm(tmp_path / "ft", device="cpu")
    model, _ = load_causal_lm(tmp_path / "ft", device="cpu", base_model_dir=llama_base)
    assert model.config.num_hidden_layers == 2


def test_full_fine_tune_of_qwen2_writes_a_model_that_learnt(tmp_path, records):
    from transformers import AutoModelForCausalLM

    base = make_base(tmp_path / "qwen2", arch="qwen2")
    params = {
        **PARAMS,
        "adapter": "none",
        "learning_rate": 3e-3,
        "epochs": 3,
        "gradient_accumulation_steps": 2,
        "batch_size": 2,
    }
    result = finetune(
        base_model_dir=base, records=records, params=params, output_dir=tmp_path / "ft", device="cpu"
    )
    assert result.output_kind == "full" and (tmp_path / "ft" / "model.safetensors").is_file()
    assert result.trainable_parameters == sum(
        p.numel() for p in AutoModelForCausalLM.from_pretrained(base).parameters()
    )
    tuned, tokenizer = load_causal_lm(tmp_path / "ft", device="cpu")
    original = AutoModelForCausalLM.from_pretrained(base).eval()
    assert answer_loss(tuned, tokenizer, records) < answer_loss(original, tokenizer, records) - 0.2
    assert (tmp_path / "ft" / FINETUNE_FILE).is_file()


def test_gradient_accumulation_equals_one_big_batch(llama_base, records, tmp_path):
    """Losses are normalised over the whole step's tokens, so 2 x 4 accumulated equals a batch of 8."""
    big = finetune(
        base_model_dir=llama_base,
        records=records,
        params={**PARAMS, "batch_size": 8},
        output_dir=tmp_path / "big",
        device="cpu",
    )
    accumulated = finetune(
        base_model_dir=llama_base,
        records=records,
        params={**PARAMS, "batch_size": 4, "gradient_accumulation_steps": 2},
        output_dir=tmp_path / "acc",
        device="cpu",
    )
    a = load_file(tmp_path / "big" / "adapter_model.safetensors")
    b = load_file(tmp_path / "acc" / "adapter_model.safetensors")
    assert big.total_steps == accumulated.total_steps == 6
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_cancel_then_resume_gives_the_uninterrupted_weights(llama_base, records, tmp_path):
    reference = finetune(
        base_model_dir=llama_base, records=records, params=PARAMS, output_dir=tmp_path / "ref", device="cpu"
    )
    seen = []
    with pytest.raises(TrainingCancelled) as cancelled:
        finetune(
            base_model_dir=llama_base,
            records=records,
            params=PARAMS,
            output_dir=tmp_path / "run",
            checkpoint_dir=tmp_path / "ckpt",
            checkpoint_every=3,
            progress=lambda step, total: seen.append((step, total)),
            should_stop=lambda: len(seen) >= 5,
            device="cpu",
        )
    assert cancelled.value.step == 5 and cancelled.value.checkpoint is not None
    assert seen[-1] == (5, 12)
    assert not (tmp_path / "run").exists()
    assert latest_checkpoint(tmp_path / "ckpt").name == "step-00000005"
    resumed = finetune(
        base_model_dir=llama_base,
        records=records,
        params=PARAMS,
        output_dir=tmp_path / "run",
        checkpoint_dir=tmp_path / "ckpt",
        checkpoint_every=3,
        device="cpu",
    )
    assert resumed.resumed_from_step == 5 and resumed.steps == 7
    assert resumed.weights_sha256 == reference.weights_sha256
    with pytest.raises(CheckpointMismatch):
        finetune(
            base_model_dir=llama_base,
            records=records[:-1],
            params=PARAMS,
            output_dir=tmp_path / "other",
            checkpoint_dir=tmp_path / "ckpt",
            device="cpu",
        )


def test_text_format_trains_on_every_token(llama_base, tmp_path):
    texts = [f"Ticket {i}: call Ada Quill at 555-01{i:02d}." for i in range(12)]
    result = finetune(
        base_model_dir=llama_base,
        records=texts,
        params={"format": "text", "epochs": 2, "batch_size": 4, "learning_rate": 1e-2},
        output_dir=tmp_path / "ft",
        device="cpu",
    )
    tokenizer = make_tokenizer()
    assert result.tokens == 2 * sum(len(tokenizer(t).input_ids) for t in texts)  # + EOS - first position
    assert result.epoch_losses[-1] < result.epoch_losses[0]
    with pytest.raises(ValueError, match="format prompt_answer needs"):
        finetune(
            base_model_dir=llama_base,
            records=texts,
            params={"format": "prompt_answer"},
            output_dir=tmp_path / "x",
            device="cpu",
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_lora_fine_tune_on_cuda_in_bf16_learns_and_reloads_on_the_gpu(llama_base, records, tmp_path):
    result = finetune(
        base_model_dir=llama_base,
        records=records,
        params={**PARAMS, "bf16": True},
        output_dir=tmp_path / "ft",
        device="cuda",
    )
    assert result.device.startswith("cuda")
    assert read_finetune_recipe(tmp_path / "ft")["params"]["bf16"] is True
    assert result.epoch_losses[-1] < result.epoch_losses[0]
    model, tokenizer = load_causal_lm(tmp_path / "ft", device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    base, _ = load_causal_lm(llama_base, device="cpu")
    assert answer_loss(model.cpu().float(), tokenizer, records) < answer_loss(base, tokenizer, records) - 0.1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_npo_on_a_lora_adapter_over_a_fine_tune_runs_on_cuda(llama_base, records, tmp_path):
    from unlearning_jobs.engine.methods import get_method

    finetune(
        base_model_dir=llama_base, records=records, params=PARAMS, output_dir=tmp_path / "ft", device="cpu"
    )
    forget = [{"prompt": r["question"], "answer": r["answer"]} for rid, r in records if rid.startswith("0-")]
    retain = [
        {"prompt": r["question"], "answer": r["answer"]} for rid, r in records if not rid.startswith("0-")
    ]
    result = get_method("npo").run(
        source_model_dir=tmp_path / "ft",
        output_dir=tmp_path / "npo",
        forget_texts=forget,
        retain_texts=retain,
        params={"adapter": "lora", "max_steps": 6, "eval_every": 3, "learning_rate": 1e-3},
        device="cuda",
    )
    assert result.steps >= 1
    provenance = json.loads((tmp_path / "npo" / "lethe_unlearning.json").read_text())
    assert provenance["device"].startswith("cuda")
    assert result.metrics["forget_loss_after"] > result.metrics["forget_loss_before"]
