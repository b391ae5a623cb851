"""Quantization-aware unlearning: the forget term also taken on the weights an attacker would round to.

``engine.quantization.quantized_weights`` makes a model compute with the weights
``fake_quantize_`` (verification's 4-bit attack) would leave, and gives them back exactly;
``quantized_forget_bits`` adds the forget term's gradient taken there to every step, so that a
run's change survives the rounding that restored half of what gradient difference removed on
SmolLM2 fine-tuned on TOFU.
"""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoTokenizer

from unlearning_jobs.engine.methods import get_method
from unlearning_jobs.engine.methods.data import collate_examples, encode_record, evaluate_examples_loss
from unlearning_jobs.engine.methods.reference import wrap_with_lora
from unlearning_jobs.engine.quantization import fake_quantize_, quantized_weights
from unlearning_jobs.engine.verify.robustness import quantized_copy

from .tiny_models import PAIRS, tiny_llama


@pytest.fixture(scope="module")
def tokenizer(trained_model):
    return AutoTokenizer.from_pretrained(trained_model)


def forget_loss_rounded(model, tokenizer, bits=4, group_size=16) -> float:
    """The forget pairs' loss on a rounded copy, as verification's attack makes it."""
    examples = [encode_record(tokenizer, p, block_size=64) for p in PAIRS]
    rounded = quantized_copy(model, bits=bits, group_size=group_size)
    return evaluate_examples_loss(
        rounded, examples, pad_id=0, device=torch.device("cpu"), dtype=torch.float32
    )


def memorised(tokenizer, steps=60, lr=1e-2):
    """A tiny Llama fine-tuned on the forget pairs until it has them (its weights move well past a rounding step)."""
    model = tiny_llama()
    examples = [encode_record(tokenizer, p, block_size=64) for p in PAIRS]
    batch = collate_examples(examples, pad_id=0, device=torch.device("cpu"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        out = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        )
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def run(tokenizer, retain_texts, *, bits, lr, steps, model=None, method="gradient_ascent", extra=None):
    model = tiny_llama() if model is None else model
    outcome = get_method(method).unlearn(
        model=model,
        tokenizer=tokenizer,
        forget_records=PAIRS,
        retain_records=retain_texts,
        params={
            "learning_rate": lr,
            "max_steps": steps,
            "max_retain_loss_increase": None,
            "stop_at_forget_target": False,
            "eval_every": steps,
            "quantized_forget_bits": bits,
            "quantized_forget_group_size": 16,
            **(extra or {}),
        },
        block_size=64,
        device=torch.device("cpu"),
    )
    return model, outcome


FORGET_EXAMPLES_BLOCK = 64


def forget_examples(tokenizer):
    return [encode_record(tokenizer, p, block_size=FORGET_EXAMPLES_BLOCK) for p in PAIRS]


# The rounding itself --------------------------------------------------------------------------


def test_inside_the_block_the_model_computes_with_the_attacks_weights_and_gets_its_own_back():
    model = tiny_llama()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    attacked = copy.deepcopy(model)
    fake_quantize_(attacked, bits=4, group_size=16)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with quantized_weights(model, bits=4, group_size=16) as rounded:
        assert rounded == 16  # embedding, output layer, 2 layers x (4 attention + 3 MLP matrices)
        assert torch.equal(model(ids).logits, attacked(ids).logits)
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name
    with pytest.raises(RuntimeError, match="inside"), quantized_weights(model, bits=4, group_size=16):
        raise RuntimeError("inside")
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


def test_on_a_lora_adapter_the_merged_weight_is_what_rounds():
    model = wrap_with_lora(tiny_llama(), r=4, alpha=8, dropout=0.0)
    with torch.no_grad():  # a trained adapter: B is zero when fresh
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    base = {name: p.detach().clone() for name, p in model.named_parameters()}
    attacked = quantized_copy(model, bits=4, group_size=16)  # merged, then rounded: the attack
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with quantized_weights(model, bits=4, group_size=16):
        inside = model(ids).logits
    assert torch.allclose(inside, attacked(ids).logits, atol=1e-5)
    assert not torch.allclose(model(ids).logits, attacked(ids).logits, atol=1e-3)
    for name, param in model.named_parameters():
        assert torch.equal(param, base[name]), name


def test_a_gradient_taken_inside_is_the_rounded_models_own_gradient():
    """The straight-through estimate: d loss / d W at Q(W), landing on W."""
    model = tiny_llama()
    attacked = quantized_copy(model, bits=4, group_size=16)
    ids = torch.tensor([[5, 17, 42, 99, 7, 8]])
    with quantized_weights(model, bits=4, group_size=16):
        model(input_ids=ids, labels=ids).loss.backward()
    attacked(input_ids=ids, labels=ids).loss.backward()
    plain = tiny_llama()
    plain(input_ids=ids, labels=ids).loss.backward()
    name = "model.layers.0.mlp.down_proj.weight"
    mine, theirs = dict(model.named_parameters())[name].grad, dict(attacked.named_parameters())[name].grad
    assert torch.allclose(mine, theirs, atol=1e-7)
    assert not torch.allclose(mine, dict(plain.named_parameters())[name].grad, atol=1e-6)


# In an unlearning run -------------------------------------------------------------------------


def test_the_stop_waits_until_the_forget_records_score_at_the_target_as_the_weights_round(
    tokenizer, retain_texts
):
    """Plain gradient ascent reaches the target at full precision while 3-bit rounding still
    gives the pairs back below it; the quantization-aware run stops only once both are past it."""
    base = memorised(tokenizer)
    target = 1.0
    outcomes, rounded_after = {}, {}
    for bits in (None, 3):
        model, outcomes[bits] = run(
            tokenizer,
            retain_texts,
            bits=bits,
            lr=1e-4,
            steps=40,
            model=copy.deepcopy(base),
            extra={"forget_loss_target": target, "stop_at_forget_target": True, "eval_every": 1},
        )
        rounded_after[bits] = forget_loss_rounded(model, tokenizer, bits=3)
    plain, aware = outcomes[None], outcomes[3]
    assert plain.stopped_reason == aware.stopped_reason == "forget_loss_target"
    assert plain.metrics["forget_loss_after"] >= target > rounded_after[None]
    assert aware.metrics["quantized_forget_loss_after"] == pytest.approx(rounded_after[3], abs=1e-5)
    assert min(aware.metrics["forget_loss_after"], rounded_after[3]) >= target
    assert aware.steps > plain.steps
    # The rounded measurement is part of what the stop costs.
    for outcome in (plain, aware):
        assert 0 < outcome.metrics["measurement_seconds"] < outcome.metrics["compute_seconds"]
    history = aware.metrics["quantized_forget_history"]
    assert [step for step, _ in history] == [step for step, *_ in aware.metrics["history"]]
    assert "quantized_forget_bits" not in plain.metrics
    # The rounded term was taken on every step before the rounded loss passed the target.
    passed = next(step for step, loss in history if loss >= target)
    assert aware.metrics["quantized_forget_steps"] >= min(passed, aware.steps)


def test_the_rounded_term_stops_once_the_rounded_weights_are_past_the_target(tokenizer, retain_texts):
    """Gated on the last measurement: a run whose rounded weights score the records past the
    target throughout never takes it; with no target (the published recipes' fixed steps) every step takes it."""
    base = memorised(tokenizer)
    # Rounded to 2 bits the memorised pairs already score past 1.0 nats; as the weights are, not.
    _, past = run(
        tokenizer,
        retain_texts,
        bits=2,
        lr=1e-4,
        steps=6,
        model=copy.deepcopy(base),
        extra={"forget_loss_target": 1.0, "stop_at_forget_target": True, "eval_every": 1},
    )
    assert past.metrics["forget_loss_before"] < 1.0 <= past.metrics["quantized_forget_loss_before"]
    assert all(loss >= 1.0 for _, loss in past.metrics["quantized_forget_history"])
    assert past.steps > 0 and past.metrics["quantized_forget_steps"] == 0
    _, fixed = run(tokenizer, retain_texts, bits=3, lr=1e-4, steps=6, model=copy.deepcopy(base))
    assert fixed.steps == 6 and fixed.metrics["quantized_forget_steps"] == 6


@pytest.mark.parametrize("method", ["gradient_ascent", "gradient_difference"])
def test_each_forget_term_is_taken_only_while_its_own_loss_is_below_the_target(
    tokenizer, retain_texts, method
):
    """Start from a model plain gradient ascent has pushed past the target at full precision while
    3-bit rounding still gives the pairs back: the full-precision forget term is off (gradient
    difference keeps its retain term), the rounded one on, each decided at the last measurement."""
    target = 1.0
    unlearned, plain = run(
        tokenizer,
        retain_texts,
        bits=None,
        lr=1e-4,
        steps=40,
        model=memorised(tokenizer),
        extra={"forget_loss_target": target, "stop_at_forget_target": True, "eval_every": 1},
    )
    assert plain.stopped_reason == "forget_loss_target"
    _, aware = run(
        tokenizer,
        retain_texts,
        bits=3,
        lr=1e-4,
        steps=30,
        model=unlearned,
        method=method,
        extra={"forget_loss_target": target, "stop_at_forget_target": True, "eval_every": 1},
    )
    metrics = aware.metrics
    assert metrics["forget_loss_before"] >= target > metrics["quantized_forget_loss_before"]
    assert aware.steps > 0
    # One measurement before every step: the step at s took a term when that term's loss at s was below.
    full_precision = [loss for step, loss, *_ in metrics["history"] if step < aware.steps]
    rounded = [loss for step, loss in metrics["quantized_forget_history"] if step < aware.steps]
    assert len(full_precision) == len(rounded) == aware.steps
    assert metrics["full_precision_forget_steps"] == sum(loss < target for loss in full_precision)
    assert metrics["quantized_forget_steps"] == sum(loss < target for loss in rounded)
    # Here the full-precision loss stays past the target (the rounded term's step moves the same
    # weights), so no step takes it, and the rounded one is taken until the stop.
    assert aware.stopped_reason == "forget_loss_target"
    assert metrics["full_precision_forget_steps"] == 0 and metrics["quantized_forget_steps"] == aware.steps


def test_rmu_on_a_lora_adapter_steers_the_rounded_layer_and_leaves_the_base_weights_exact(
    tokenizer, retain_texts
):
    """RMU's steering term reads only the model being trained, so it takes the rounded pass on an
    adapter; its retain term reads the adapter-off base, which must come back bit-identical."""
    method = get_method("rmu")
    params = method.parse_params(
        {
            "adapter": "lora",
            "layer": 1,
            "max_steps": 4,
            "eval_every": 2,
            "learning_rate": 1e-2,
            "max_retain_loss_increase": None,
            "stop_at_forget_target": False,
            "quantized_forget_bits": 4,
            "quantized_forget_group_size": 16,
        }
    )
    base = tiny_llama()
    model = wrap_with_lora(
        base, r=4, alpha=8, dropout=0.0, target_modules=method.lora_target_modules(base, params)
    )
    base_weights = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    outcome = method.unlearn(
        model=model,
        tokenizer=tokenizer,
        forget_records=PAIRS,
        retain_records=retain_texts,
        params=params,
        block_size=64,
        device=torch.device("cpu"),
    )
    assert outcome.reference == "adapter_disabled"
    assert outcome.metrics["quantized_forget_steps"] == outcome.metrics["full_precision_forget_steps"] == 4
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], w) for n, w in base_weights.items())
    assert any(not torch.equal(p, torch.zeros_like(p)) for n, p in after.items() if "lora_B" in n)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        (
            "gradient_difference",
            {"quantized_forget_bits": 5},
            r"Params\.quantized_forget_bits: must be one of",
        ),
        ("gradient_difference", {"quantized_forget_group_size": 0}, r"Params\.quantized_forget_group_size"),
        (
            "npo",
            {"quantized_forget_bits": 4, "salient_fraction": 0.01},
            r"Params\.quantized_forget_bits: cannot be combined with salient_fraction",
        ),
        (
            "npo",
            {"quantized_forget_bits": 4, "adapter": "lora"},
            r"Params\.quantized_forget_bits: npo's forget term",
        ),
        ("refusal", {"quantized_forget_bits": 4, "adapter": "lora"}, r"refusal's forget term"),
    ],
)
def test_settings_it_cannot_honour_are_refused_naming_the_field(name, params, message):
    with pytest.raises(ValueError, match=message):
        get_method(name).parse_params(params)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("gradient_difference", {"quantized_forget_bits": 4, "adapter": "lora", "retain_loss": "kl"}),
        ("simnpo", {"quantized_forget_bits": 4, "adapter": "lora"}),
        ("refusal", {"quantized_forget_bits": 4, "adapter": "lora", "objective": "sft"}),
        ("npo", {"quantized_forget_bits": 8}),
        # RMU's forget term steers the layer's activations; only its retain term reads the reference.
        ("rmu", {"quantized_forget_bits": 4, "adapter": "lora"}),
    ],
)
def test_settings_it_can_honour_are_taken(name, params):
    parsed = get_method(name).parse_params(params)
    assert parsed.quantized_forget_bits == params["quantized_forget_bits"]
