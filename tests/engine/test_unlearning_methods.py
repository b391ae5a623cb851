"""NPO's reference preset, SimNPO, RMU and refusal tuning; prompt/answer records; LoRA adapters.

Tiny models only: the session's 1-layer GPT-2 (``trained_model``) and a random 2-layer Llama
with the same 300-token tokenizer, so each test runs in about a second.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from unlearning_jobs.engine.methods import METHODS, get_method, method_framework
from unlearning_jobs.engine.methods.data import (
    LabeledExample,
    collate_examples,
    encode_record,
    evaluate_examples_loss,
)
from unlearning_jobs.engine.methods.npo import npo_forget_loss
from unlearning_jobs.engine.methods.reference import (
    AdapterDisabledReference,
    FrozenCopyReference,
    decoder_layers,
    wrap_with_lora,
)
from unlearning_jobs.engine.methods.rmu import resolve_layer
from unlearning_jobs.engine.methods.simnpo import simnpo_forget_loss
from unlearning_jobs.engine.training.data import sequence_nll

from .tiny_models import PAIRS, tiny_llama


@pytest.fixture(scope="module")
def tokenizer(trained_model):
    return AutoTokenizer.from_pretrained(trained_model)


def hand_sequence_nll(model, ids: list[int], n_prompt: int) -> float:
    """Sum of -log p(token) over the answer tokens, computed one position at a time."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    total = 0.0
    for position in range(n_prompt, len(ids)):
        if position == 0:
            continue
        log_probs = torch.log_softmax(logits[position - 1].double(), dim=-1)
        total -= float(log_probs[ids[position]])
    return total


# Registry, presets and validation ------------------------------------------------------------


def test_frameworks_file_refusal_under_output_suppression_and_the_rest_as_before():
    assert method_framework("refusal") == "output_suppression"
    assert METHODS["refusal"].framework == "output_suppression"
    for name in ("gradient_ascent", "gradient_difference", "npo", "simnpo", "rmu"):
        assert method_framework(name) == "approximate_unlearning"
        assert METHODS[name].guarantee == "statistical"
    assert method_framework("retrain") == method_framework("sisa") == "exact"


def test_npo_reference_preset_is_openunlearnings_recipe_and_caller_values_win():
    params = get_method("npo").parse_params({"preset": "reference"})
    assert (params.beta, params.forget_weight, params.retain_weight) == (0.1, 1.0, 1.0)
    assert (params.learning_rate, params.epochs, params.batch_size, params.weight_decay) == (
        1e-5,
        10,
        32,
        0.01,
    )
    assert params.lr_schedule == "linear" and params.warmup_epochs == 1.0
    assert params.stop_at_forget_target is False and params.max_retain_loss_increase is None
    # forget01 has 40 items: 2 steps an epoch at batch 32, 20 in all, warm-up int(40) // 32 = 1.
    assert params.total_steps(40) == 20 and params.warmup_steps(40) == 1
    assert get_method("npo").parse_params({"preset": "reference", "beta": 0.2}).beta == 0.2
    lethe = get_method("npo").parse_params({})
    assert (lethe.preset, lethe.beta, lethe.learning_rate, lethe.stop_at_forget_target) == (
        "lethe",
        0.5,
        5e-5,
        True,
    )
    assert get_method("npo").parse_params(params.as_dict()) == params


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("npo", {"preset": "published"}, "preset"),
        ("npo", {"forget_weight": 0}, "forget_weight"),
        ("npo", {"epochs": 0}, "epochs"),
        ("npo", {"lr_schedule": "cosine"}, "lr_schedule"),
        ("npo", {"adapter": "qlora"}, "adapter"),
        ("npo", {"pair_format": "xml"}, "pair_format"),
        ("simnpo", {"beta": 0}, "beta"),
        ("simnpo", {"delta": 1000}, "delta"),
        ("rmu", {"steering_coeff": 0}, "steering_coeff"),
        ("rmu", {"layer": -1}, "layer"),
        ("rmu", {"trainable": "attention"}, "trainable"),
        ("refusal", {"objective": "dpo"}, "objective"),
        ("refusal", {"refusals": []}, "refusals"),
        ("refusal", {"prompt_fraction": 1.0}, "prompt_fraction"),
    ],
)
def test_new_params_reject_bad_values_naming_the_field(name, params, field):
    with pytest.raises(ValueError, match=rf"Params\.{field}"):
        get_method(name).parse_params(params)


# Losses against hand computation --------------------------------------------------------------


def test_npo_loss_on_one_pair_equals_the_hand_computed_value(tokenizer):
    model = tiny_llama()
    reference = FrozenCopyReference(model)
    with torch.no_grad():  # move the trained model away from its reference
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    example = encode_record(tokenizer, PAIRS[0], block_size=64)
    batch = {"forget": collate_examples([example], pad_id=0), "retain": None}
    params = get_method("npo").parse_params({"preset": "reference", "retain_weight": 0})
    loss = get_method("npo").compute_loss(model=model, batch=batch, params=params, reference=reference)

    nll = hand_sequence_nll(model, list(example.ids), example.n_prompt)
    ref_nll = hand_sequence_nll(reference.model, list(example.ids), example.n_prompt)
    log_ratio = ref_nll - nll  # log p_theta - log p_ref of the summed answer tokens
    expected = -(2 / 0.1) * math.log(1 / (1 + math.exp(0.1 * log_ratio)))
    assert abs(ref_nll - nll) > 0.1  # the two models do differ on this answer
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-4)


def test_npo_loss_at_the_start_is_two_over_beta_log_two():
    nll = torch.tensor([3.0, 40.0])
    assert float(npo_forget_loss(nll, nll.clone(), 0.1)) == pytest.approx(20 * math.log(2))


def test_simnpo_loss_is_length_normalised():
    nll, count = torch.tensor([6.0, 30.0]), torch.tensor([3.0, 10.0])
    expected = -(2 / 4.5) * sum(math.log(1 / (1 + math.exp(-4.5 * (x - 0.5)))) for x in (2.0, 3.0)) / 2
    assert float(simnpo_forget_loss(nll, count, beta=4.5, delta=0.5)) == pytest.approx(expected, rel=1e-6)


def test_pairs_mask_the_prompt_so_only_answer_tokens_are_labels(tokenizer):
    example = encode_record(tokenizer, PAIRS[0], block_size=64)
    answer_ids = tokenizer(" " + PAIRS[0]["answer"], add_special_tokens=False)["input_ids"]
    assert list(example.ids[example.n_prompt :]) == answer_ids + [tokenizer.eos_token_id]
    batch = collate_examples([example, LabeledExample((5, 6, 7), 0)], pad_id=0)
    assert (batch["labels"][0, : example.n_prompt] == -100).all()
    assert batch["labels"][0, example.n_prompt :].tolist() == list(example.ids[example.n_prompt :])
    assert batch["labels"][1].tolist()[:3] == [5, 6, 7] and (batch["labels"][1, 3:] == -100).all()
    # A prompt longer than the block keeps its end and at least one answer token.
    long = encode_record(tokenizer, {"prompt": "word " * 200, "answer": "yes"}, block_size=16)
    assert len(long) == 16 and long.n_prompt < 16


def test_the_mean_loss_is_per_scored_token_whatever_the_batching(tokenizer):
    """Batches are cut in length order; the mean is over every scored token, as one by one."""
    model = tiny_llama().eval()
    examples = [encode_record(tokenizer, pair, block_size=64) for pair in PAIRS]
    assert len({len(e) for e in examples}) > 1  # lengths differ, so batching pads

    def loss(batch_size):
        return evaluate_examples_loss(
            model, examples, pad_id=0, device=torch.device("cpu"), dtype=torch.float32, batch_size=batch_size
        )

    total = count = 0.0
    with torch.no_grad():
        for example in examples:
            nll, n = sequence_nll(model, collate_examples([example], pad_id=0))
            total, count = total + float(nll.sum()), count + float(n.sum())
    assert loss(1) == pytest.approx(total / count, rel=1e-6)
    assert loss(2) == pytest.approx(total / count, rel=1e-5)
    assert loss(len(examples)) == pytest.approx(total / count, rel=1e-5)


# LoRA: only the adapter trains, the reference is the adapter switched off ----------------------


def test_npo_on_a_lora_adapter_leaves_base_weights_bit_identical(tokenizer, retain_texts):
    base = tiny_llama()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model = wrap_with_lora(base, r=4, alpha=8, dropout=0.0)
    assert isinstance(model, PeftModel)
    outcome = get_method("npo").unlearn(
        model=model,
        tokenizer=tokenizer,
        forget_records=PAIRS,
        retain_records=retain_texts,
        params={"learning_rate": 5e-3, "max_steps": 6, "max_retain_loss_increase": None, "eval_every": 3},
        block_size=64,
        device=torch.device("cpu"),
    )
    assert outcome.reference == "adapter_disabled"
    assert outcome.metrics["forget_loss_after"] > outcome.metrics["forget_loss_before"]
    assert outcome.metrics["forget_pairs"] == 3
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert lora and all(p.requires_grad for p in lora.values())
    assert outcome.trainable_parameters == sum(p.numel() for p in lora.values())
    assert any(float(p.abs().sum()) > 0 for n, p in lora.items() if "lora_B" in n)  # B starts at zero
    with model.disable_adapter():
        for name, tensor in model.get_base_model().state_dict().items():
            if "lora_" in name:
                continue
            key = name.replace(".base_layer", "")
            assert torch.equal(tensor, before[key]), name


def test_adapter_disabled_reference_is_the_base_model_without_a_copy(tokenizer):
    model = wrap_with_lora(tiny_llama(), r=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.1)
    reference = AdapterDisabledReference(model)
    ids = torch.tensor([encode_record(tokenizer, PAIRS[1], block_size=64).ids])
    plain = tiny_llama()  # same seed: the base weights
    with reference.active() as ref:
        assert ref is model
        disabled = ref(input_ids=ids).logits
    assert torch.allclose(disabled, plain(input_ids=ids).logits, atol=1e-6)
    assert not torch.allclose(model(input_ids=ids).logits, disabled, atol=1e-4)
    model.train()
    with reference.active():
        assert not model.training
    assert model.training


# RMU ----------------------------------------------------------------------------------------


def test_rmu_changes_only_the_chosen_layers_mlp(trained_model, tmp_path, forget_texts, retain_texts):
    result = get_method("rmu").run(
        source_model_dir=trained_model,
        output_dir=tmp_path / "rmu",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        params={"learning_rate": 1e-2, "max_steps": 8, "max_retain_loss_increase": None, "eval_every": 4},
    )
    before = load_file(f"{trained_model}/model.safetensors")
    after = load_file(tmp_path / "rmu" / "model.safetensors")
    changed = sorted(name for name in before if not torch.equal(before[name], after[name]))
    assert changed and all(name.startswith("transformer.h.0.mlp.") for name in changed)
    assert result.metrics["rmu_layer"] == 0 and result.metrics["reference"] == "frozen_copy"
    assert result.metrics["forget_loss_after"] != result.metrics["forget_loss_before"]


def test_rmu_finds_llama_layers_and_puts_its_adapter_on_that_mlp_only(tokenizer, retain_texts):
    base = tiny_llama()
    assert decoder_layers(base)[0] == "model.layers" and resolve_layer(base, None) == 1
    method = get_method("rmu")
    params = method.parse_params({"adapter": "lora", "layer": 1, "max_steps": 4, "learning_rate": 1e-2})
    model = wrap_with_lora(
        base, r=4, alpha=8, dropout=0.0, target_modules=method.lora_target_modules(base, params)
    )
    adapted = sorted({n.split(".lora_")[0] for n, _ in model.named_parameters() if "lora_" in n})
    assert adapted and all(".layers.1.mlp." in name for name in adapted)
    outcome = method.unlearn(
        model=model,
        tokenizer=tokenizer,
        forget_records=PAIRS,
        retain_records=retain_texts,
        params=params,
        block_size=64,
        device=torch.device("cpu"),
    )
    assert outcome.reference == "adapter_disabled" and outcome.metrics["rmu_layer"] == 1
    with pytest.raises(ValueError, match="layer 5 does not exist"):
        resolve_layer(base, 5)


# Refusal ----------------------------------------------------------------------------------------


def test_refusal_sft_makes_the_refusal_likelier_than_before(tokenizer, retain_texts):
    model = tiny_llama()
    original = copy.deepcopy(model)
    refusal = "I can't share that."
    method = get_method("refusal")
    outcome = method.unlearn(
        model=model,
        tokenizer=tokenizer,
        forget_records=PAIRS,
        retain_records=retain_texts,
        params={"objective": "sft", "refusals": [refusal], "learning_rate": 1e-2, "max_steps": 15},
        block_size=64,
        device=torch.device("cpu"),
    )
    assert outcome.reference is None
    example = encode_record(tokenizer, {"prompt": PAIRS[0]["prompt"], "answer": refusal}, block_size=64)
    before = hand_sequence_nll(original, list(example.ids), example.n_prompt)
    after = hand_sequence_nll(model, list(example.ids), example.n_prompt)
    assert after < before * 0.7


def test_refusal_idk_dpo_runs_on_plain_text_records_and_records_its_framework(
    trained_model, tmp_path, forget_texts, retain_texts
):
    result = get_method("refusal").run(
        source_model_dir=trained_model,
        output_dir=tmp_path / "refusal",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        params={"learning_rate": 1e-3, "max_steps": 4, "eval_every": 2},
    )
    provenance = json.loads((tmp_path / "refusal" / "lethe_unlearning.json").read_text())
    assert provenance["framework"] == "output_suppression"
    assert result.metrics["reference"] == "frozen_copy"


def test_run_with_a_lora_adapter_on_gpt2_merges_it_into_saved_weights(
    trained_model, tmp_path, forget_texts, retain_texts
):
    result = get_method("simnpo").run(
        source_model_dir=trained_model,
        output_dir=tmp_path / "simnpo",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        params={"adapter": "lora", "lora_r": 4, "learning_rate": 1e-2, "max_steps": 6, "eval_every": 3},
    )
    saved = load_file(tmp_path / "simnpo" / "model.safetensors")
    assert not any("lora" in name for name in saved)
    before = load_file(f"{trained_model}/model.safetensors")
    changed = [n for n in before if not torch.equal(before[n], saved[n])]
    # LoRA targets the decoder layers' linear maps; embeddings and layer norms stay as they were.
    assert changed and all(n.startswith("transformer.h.") and n.endswith(".weight") for n in changed)
    assert not any("ln_" in n for n in changed)
    model = AutoModelForCausalLM.from_pretrained(result.output_dir, local_files_only=True)
    assert model.config.n_layer == 1


# A KL retain term (GradDiff-KL, NPO-KL) ---------------------------------------------------------


def hand_mean_kl(model, reference, ids: list[int], n_prompt: int) -> float:
    """KL(reference ‖ model) of the next-token distributions, averaged over the answer tokens."""
    with torch.no_grad():
        p = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), dim=-1)
        q = torch.log_softmax(reference(input_ids=torch.tensor([ids])).logits[0].double(), dim=-1)
    positions = [t - 1 for t in range(max(n_prompt, 1), len(ids))]
    return sum(float((q[i].exp() * (q[i] - p[i])).sum()) for i in positions) / len(positions)


def test_kl_retain_term_equals_the_hand_computed_divergence_and_is_zero_at_the_start(tokenizer):
    model = tiny_llama()
    reference = FrozenCopyReference(model)
    example = encode_record(tokenizer, PAIRS[2], block_size=64)
    batch = {"retain": collate_examples([example], pad_id=0)}
    method = get_method("gradient_difference")
    params = method.parse_params({"retain_loss": "kl", "retain_weight": 2.0})
    at_start = method.retain_term(model=model, batch=batch, params=params, reference=reference)
    assert float(at_start.detach()) == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    moved = method.retain_term(model=model, batch=batch, params=params, reference=reference)
    expected = 2.0 * hand_mean_kl(model, reference.model, list(example.ids), example.n_prompt)
    assert expected > 1e-3  # the two models do differ on this answer
    assert float(moved.detach()) == pytest.approx(expected, rel=1e-4)
    moved.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.parameters())


@pytest.mark.parametrize("name", ["gradient_difference", "npo", "simnpo", "refusal"])
def test_methods_with_a_token_retain_term_take_kl(name):
    assert get_method(name).parse_params({"retain_loss": "kl"}).retain_loss == "kl"


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("rmu", {"retain_loss": "kl"}),
        ("gradient_ascent", {"retain_loss": "kl"}),
        ("npo", {"retain_loss": "mse"}),
    ],
)
def test_a_retain_loss_the_method_cannot_take_is_refused_naming_the_field(name, params):
    with pytest.raises(ValueError, match=r"Params\.retain_loss"):
        get_method(name).parse_params(params)


def test_gradient_difference_with_kl_holds_the_retain_distribution_closer_than_with_nll(
    tokenizer, retain_texts
):
    """Same run, two retain terms: KL keeps the retain texts' predictions nearer the start than NLL
    (which goes on fitting them), and only the KL run builds a reference (here the adapter off)."""
    outcomes, divergence = {}, {}
    start = tiny_llama()
    retain_eval = [encode_record(tokenizer, t, block_size=64) for t in retain_texts[:16]]
    for retain_loss in ("nll", "kl"):
        model = wrap_with_lora(tiny_llama(), r=4, alpha=8, dropout=0.0)
        outcomes[retain_loss] = get_method("gradient_difference").unlearn(
            model=model,
            tokenizer=tokenizer,
            forget_records=PAIRS,
            retain_records=retain_texts,
            params={
                "learning_rate": 2e-2,
                "max_steps": 12,
                "max_retain_loss_increase": None,
                "stop_at_forget_target": False,
                "eval_every": 12,
                "retain_loss": retain_loss,
                "retain_weight": 1.0,
            },
            block_size=64,
            device=torch.device("cpu"),
        )
        divergence[retain_loss] = sum(
            hand_mean_kl(model, start, list(e.ids), e.n_prompt) for e in retain_eval
        ) / len(retain_eval)
    assert outcomes["nll"].reference is None
    assert outcomes["kl"].reference == "adapter_disabled"
    for outcome in outcomes.values():
        assert outcome.metrics["forget_loss_after"] > outcome.metrics["forget_loss_before"]
    assert divergence["kl"] < divergence["nll"]
