"""Saliency-masked unlearning (``salient_fraction``): which rows move, and only those.

Tiny random Llama models with the session's 300-token tokenizer, as in
``test_unlearning_methods.py``; each test runs in about a second.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import pytest
import torch
from transformers import AutoTokenizer

from unlearning_jobs.engine.checkpoints import latest_checkpoint, load_state
from unlearning_jobs.engine.methods import approximate, get_method
from unlearning_jobs.engine.methods.data import collate_examples, encode_records
from unlearning_jobs.engine.methods.saliency import (
    SalientRows,
    TrainedParameters,
    row_gradient_norms,
    salient_rows,
    salient_rows_only,
)
from unlearning_jobs.engine.training import TrainingCancelled
from unlearning_jobs.engine.training.data import sequence_nll

from .tiny_models import PAIRS, tiny_llama


@pytest.fixture(scope="module")
def tokenizer(trained_model):
    return AutoTokenizer.from_pretrained(trained_model)


class _OneTable(torch.nn.Module):
    """A model that is one lookup table, for the sliced lookup's own tests."""

    def __init__(self, table: torch.nn.Embedding):
        super().__init__()
        self.table = table


def _masked_npo(model, tokenizer, retain_texts, *, fraction: float, device="cpu", dtype=None, **params):
    """Six NPO steps at 1e-2 on the salient ``fraction`` of rows, no retain bound (``params``: others)."""
    return get_method("npo").unlearn(
        model=model,
        tokenizer=tokenizer,
        forget_records=PAIRS,
        retain_records=retain_texts,
        params={
            "learning_rate": 1e-2,
            "max_steps": 6,
            "eval_every": 3,
            "max_retain_loss_increase": None,
            "salient_fraction": fraction,
            **params,
        },
        block_size=64,
        device=torch.device(device),
        dtype=dtype,
    )


def test_the_mask_holds_the_rows_with_the_largest_forget_gradient(tokenizer):
    model = tiny_llama()
    examples = encode_records(tokenizer, PAIRS, block_size=64, pair_format="plain")
    salient = salient_rows(model, examples, fraction=0.05, pad_id=0, device="cpu", batch_size=2)
    assert all(p.grad is None for p in model.parameters())  # left clean for the loop

    # The same gradient by hand, in one batch: the ranking cannot depend on the batching.
    nll, _ = sequence_nll(model, collate_examples(examples, pad_id=0, device="cpu"))
    nll.sum().backward()
    norms = {name: row_gradient_norms(p.grad) for name, p in model.named_parameters()}
    total_rows = sum(n.numel() for n in norms.values())
    k = math.ceil(0.05 * total_rows)
    threshold = torch.cat(list(norms.values())).topk(k).values[-1]

    assert salient.total_rows == total_rows and salient.rows == k
    assert set(salient.masks) == {name for name, n in norms.items() if bool((n >= threshold).any())}
    for name, mask in salient.masks.items():
        assert torch.equal(mask, norms[name] >= threshold), name
    assert 0 < salient.weights < salient.total_weights


def test_the_optimiser_steps_only_the_salient_rows_and_they_reach_the_weights(tokenizer):
    model = tiny_llama()
    examples = encode_records(tokenizer, PAIRS, block_size=64, pair_format="plain")
    salient = salient_rows(model, examples, fraction=0.05, pad_id=0, device="cpu", batch_size=2)
    batch = collate_examples(examples, pad_id=0, device="cpu")
    nll, _ = sequence_nll(model, batch)
    nll.sum().backward()
    whole = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    with salient_rows_only(model, salient) as trained:
        assert trained.count() == salient.weights
        sliced = [
            m
            for m in model.modules()
            if isinstance(m, torch.nn.Linear | torch.nn.Embedding) and m.weight.requires_grad
        ]
        assert trained.row_sliced_layers == len(sliced) > 0  # every salient linear and embedding layer
        sliced_nll, _ = sequence_nll(model, batch)
        assert torch.equal(sliced_nll, nll)  # the forward is the layer's own
        sliced_nll.sum().backward()
        # The salient rows' gradients reached the compact leaves; no whole gradient is left.
        assert all(p.grad is None for p in model.parameters())
        by_name = dict(zip(sorted(salient.masks), trained.parameters, strict=True))
        for name, rows in by_name.items():
            expected = whole[name][salient.masks[name]]
            assert torch.allclose(rows.grad, expected, rtol=1e-5, atol=1e-7), name
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        # What a checkpoint and the retain bound's last good copy hold: the salient rows, by name.
        good = trained.state()
        assert set(good) == set(salient.masks)
        assert all(good[name].shape[0] == int(salient.masks[name].sum()) for name in good)
        with torch.no_grad():
            for rows in trained.parameters:
                rows.sub_(1.0)
        trained.write_back()
        for name, param in model.named_parameters():
            changed = (param.detach() != before[name]).reshape(param.shape[0], -1).any(dim=1)
            assert torch.equal(changed, salient.masks.get(name, torch.zeros_like(changed))), name
        trained.load_state(good)  # back to the good copy, weights and rows alike
        assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
        with pytest.raises(ValueError, match="shapes differ"):
            trained.load_state({name: before[name] for name in good})  # whole parameters do not fit
    assert not any("forward" in vars(m) for m in model.modules())  # the layers' own forward back
    nll, _ = sequence_nll(model, batch)
    nll.sum().backward()  # outside the block the gradients are the model's own again
    assert all(p.grad is not None for p in model.parameters())


def test_npo_with_a_saliency_mask_changes_only_the_salient_rows(tokenizer, retain_texts):
    model = tiny_llama()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    outcome = _masked_npo(model, tokenizer, retain_texts, fraction=0.02)
    metrics = outcome.metrics
    assert metrics["forget_loss_after"] > metrics["forget_loss_before"]
    assert metrics["salient_fraction"] == 0.02 and 0 < metrics["salient_rows"] < metrics["salient_rows_of"]

    # The rows the mask selected, recomputed from an identical fresh model, are the only ones moved.
    examples = encode_records(tokenizer, PAIRS, block_size=64, pair_format="auto")
    expected = salient_rows(tiny_llama(), examples, fraction=0.02, pad_id=0, device="cpu", batch_size=8)
    assert expected.rows == metrics["salient_rows"]
    moved_rows = 0
    for name, param in model.named_parameters():
        changed = (param.detach() != before[name]).reshape(param.shape[0], -1).any(dim=1)
        allowed = expected.masks.get(name, torch.zeros_like(changed))
        assert not bool((changed & ~allowed).any()), f"{name}: a row outside the mask moved"
        moved_rows += int(changed.sum())
    assert moved_rows > expected.rows // 2  # the mask is not just permission: those rows trained

    # The optimiser held the salient rows alone (a parameter without one was frozen for the run);
    # the caller gets every parameter back trainable, as configured.
    assert len(expected.masks) < len(before)
    assert outcome.trainable_parameters == expected.weights == metrics["salient_weights"]
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("padding_idx", [None, 3])
def test_a_lookup_gives_only_the_salient_tokens_their_gradient(padding_idx):
    """Repeated tokens add up; the padding token, which a lookup never trains, gets nothing."""
    torch.manual_seed(0)
    table = torch.nn.Embedding(10, 4, padding_idx=padding_idx)
    ids = torch.tensor([[1, 3, 3, 7, 1], [3, 5, 1, 0, 3]])
    upstream = torch.randn(2, 5, 4)
    (table(ids) * upstream).sum().backward()
    whole = table.weight.grad.clone()
    table.zero_grad(set_to_none=True)

    mask = torch.zeros(10, dtype=torch.bool)
    mask[[1, 3, 9]] = True
    salient = SalientRows(
        masks={"table.weight": mask}, fraction=0.3, rows=3, total_rows=10, weights=12, total_weights=40
    )
    with salient_rows_only(_OneTable(table), salient) as trained:
        assert trained.row_sliced_layers == 1
        (table(ids) * upstream).sum().backward()
        (rows,) = trained.parameters
        assert table.weight.grad is None  # no whole gradient left behind
        assert torch.allclose(rows.grad, whole[mask], rtol=1e-6, atol=1e-7)
    if padding_idx is not None:
        assert rows.grad[1].abs().sum() == 0  # token 3 is the padding


def test_a_bf16_lookup_sums_its_tokens_gradients_in_float32():
    """bf16 weights: the rows' gradient is the float32 sum, rounded once (not summed in bf16)."""
    torch.manual_seed(0)
    table = torch.nn.Embedding(10, 4).to(torch.bfloat16)
    ids = torch.randint(0, 10, (8, 64))
    upstream = torch.randn(8, 64, 4)
    # The lookup's output is bf16, so the gradient reaching it is the upstream one in bf16.
    arriving = upstream.to(torch.bfloat16).float().reshape(-1, 4)
    exact = torch.zeros(10, 4).index_add_(0, ids.reshape(-1), arriving)

    mask = torch.zeros(10, dtype=torch.bool)
    mask[[1, 3]] = True
    salient = SalientRows(
        masks={"table.weight": mask}, fraction=0.2, rows=2, total_rows=10, weights=8, total_weights=40
    )
    with salient_rows_only(_OneTable(table), salient) as trained:
        (table(ids).float() * upstream).sum().backward()
        (rows,) = trained.parameters
        assert rows.grad.dtype == torch.bfloat16
        assert torch.equal(rows.grad, exact[mask].to(torch.bfloat16))


def test_the_row_sliced_layers_give_the_rows_their_gradient_under_bf16_autocast(tokenizer):
    """The CUDA path's dtypes, on the CPU: bf16 products, float32 leaves."""
    model = tiny_llama(tied=True)
    examples = encode_records(tokenizer, PAIRS, block_size=64, pair_format="plain")
    salient = salient_rows(model, examples, fraction=0.05, pad_id=0, device="cpu", batch_size=2)
    batch = collate_examples(examples, pad_id=0, device="cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nll, _ = sequence_nll(model, batch)
    nll.float().sum().backward()
    whole = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    with salient_rows_only(model, salient) as trained:
        assert trained.row_sliced_layers > 0
        with torch.autocast("cpu", dtype=torch.bfloat16):
            sliced_nll, _ = sequence_nll(model, batch)
        sliced_nll.float().sum().backward()
        for name, rows in zip(sorted(salient.masks), trained.parameters, strict=True):
            assert rows.grad.dtype == torch.float32
            expected = whole[name][salient.masks[name]]
            scale = float(expected.abs().max())
            assert float((rows.grad - expected).abs().max()) <= 0.02 * scale, name


def test_parameters_without_a_salient_row_are_frozen_only_inside_the_block(tokenizer):
    model = tiny_llama()
    examples = encode_records(tokenizer, PAIRS, block_size=64, pair_format="plain")
    salient = salient_rows(model, examples, fraction=0.05, pad_id=0, device="cpu", batch_size=2)
    assert "lm_head.weight" in salient.masks
    model.lm_head.weight.requires_grad_(False)  # the caller's own choice is kept, not undone
    with pytest.raises(RuntimeError, match="inside"):
        with salient_rows_only(model, salient) as trained:
            trainable = {name for name, p in model.named_parameters() if p.requires_grad}
            assert trainable == set(salient.masks) - {"lm_head.weight"}
            head_rows = int(salient.masks["lm_head.weight"].sum())
            assert trained.count() == salient.weights - head_rows * model.lm_head.weight.shape[1]
            raise RuntimeError("a failure inside the block")
    assert {name for name, p in model.named_parameters() if not p.requires_grad} == {"lm_head.weight"}


def test_a_resumed_saliency_run_trains_the_same_rows_to_the_same_weights(tokenizer, retain_texts, tmp_path):
    params = {
        "learning_rate": 1e-2,
        "max_steps": 8,
        "eval_every": 2,
        "max_retain_loss_increase": None,
        "salient_fraction": 0.05,
    }
    common = dict(
        tokenizer=tokenizer,
        forget_records=PAIRS,
        retain_records=retain_texts,
        params=params,
        block_size=64,
        device=torch.device("cpu"),
    )
    straight = tiny_llama()
    get_method("npo").unlearn(model=straight, **common)

    calls = {"n": 0}

    def stop_after_four_steps() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    with pytest.raises(TrainingCancelled):
        get_method("npo").unlearn(
            model=tiny_llama(),
            checkpoint_dir=tmp_path,
            checkpoint_every=2,
            should_stop=stop_after_four_steps,
            **common,
        )
    # The checkpoint holds the parameters that can move, no others.
    expected = salient_rows(
        tiny_llama(),
        encode_records(tokenizer, PAIRS, block_size=64, pair_format="auto"),
        fraction=0.05,
        pad_id=0,
        device="cpu",
        batch_size=8,
    )
    saved = load_state(latest_checkpoint(tmp_path))["model"]
    assert set(saved) == set(expected.masks)
    assert {name: value.shape[0] for name, value in saved.items()} == {
        name: int(mask.sum()) for name, mask in expected.masks.items()
    }  # the salient rows alone
    resumed_model = tiny_llama()
    resumed = get_method("npo").unlearn(
        model=resumed_model, checkpoint_dir=tmp_path, checkpoint_every=2, **common
    )
    assert resumed.metrics["resumed_from_step"] == 4
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed_model.named_parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


@pytest.mark.parametrize(
    "params",
    [{"salient_fraction": 0}, {"salient_fraction": 1.0}, {"salient_fraction": 0.01, "weight_decay": 0.01}],
)
def test_bad_saliency_settings_are_refused_naming_the_field(params):
    with pytest.raises(ValueError, match=r"NpoParams\.salient_fraction"):
        get_method("npo").parse_params(params)


def test_the_reference_preset_with_a_mask_asks_for_weight_decay_zero():
    with pytest.raises(ValueError, match="weight_decay 0"):
        get_method("npo").parse_params({"preset": "reference", "salient_fraction": 0.01})
    params = get_method("npo").parse_params(
        {"preset": "reference", "salient_fraction": 0.01, "weight_decay": 0}
    )
    assert params.salient_fraction == 0.01


@contextmanager
def every_parameter_with_a_masked_gradient(model, salient):
    """What a mask means, written the long way: every trainable parameter steps whole, with the
    gradient of each row outside the mask zeroed (and none at all for a parameter without one)."""

    def keep_rows(mask):
        def hook(param):
            if mask is None:
                param.grad = None
            else:
                param.grad.mul_(mask.view((-1,) + (1,) * (param.grad.dim() - 1)).to(param.grad.dtype))

        return hook

    hooks = [
        param.register_post_accumulate_grad_hook(keep_rows(salient.masks.get(name)))
        for name, param in model.named_parameters()
        if param.requires_grad
    ]
    try:
        yield TrainedParameters([(name, p) for name, p in model.named_parameters() if p.requires_grad])
    finally:
        for hook in hooks:
            hook.remove()


@pytest.mark.parametrize(
    ("max_grad_norm", "tied"),
    [(1e9, False), (0.1, False), (1e9, True)],
    ids=["unclipped", "clipped", "tied-embeddings"],
)
def test_stepping_the_salient_rows_alone_ends_where_masking_whole_gradients_does(
    tokenizer, retain_texts, monkeypatch, max_grad_norm, tied
):
    """Freezing and gathering only save memory and work: the long way ends on the same weights."""
    compact_model = tiny_llama(tied=tied)
    compact = _masked_npo(compact_model, tokenizer, retain_texts, fraction=0.05, max_grad_norm=max_grad_norm)
    if tied:  # one matrix read twice, its salient rows' gradient the sum of both uses
        assert compact_model.lm_head.weight is compact_model.model.embed_tokens.weight
        examples = encode_records(tokenizer, PAIRS, block_size=64, pair_format="auto")
        mask = salient_rows(
            tiny_llama(tied=True), examples, fraction=0.05, pad_id=0, device="cpu", batch_size=8
        )
        assert "model.embed_tokens.weight" in mask.masks
    monkeypatch.setattr(approximate, "salient_rows_only", every_parameter_with_a_masked_gradient)
    whole_model = tiny_llama(tied=tied)
    whole = _masked_npo(whole_model, tokenizer, retain_texts, fraction=0.05, max_grad_norm=max_grad_norm)
    assert compact.trainable_parameters < whole.trainable_parameters  # the patch did take effect
    for (name, a), (_, b) in zip(
        compact_model.named_parameters(), whole_model.named_parameters(), strict=True
    ):
        # To rounding: clipped, the norm sums the same squares in another order; a tied matrix's
        # sliced product (the output layer) sums in another order than the whole one; and the
        # embedding's backward may accumulate its rows in another order (bit for bit on the
        # machines this was written on, 1.5e-8 apart on an AMD EPYC's kernels).
        assert torch.allclose(a, b, rtol=0, atol=1e-6), (name, float((a - b).abs().max()))
    for (step, *losses), (same_step, *same_losses) in zip(
        compact.metrics["history"], whole.metrics["history"], strict=True
    ):
        # The retain loss is None where the run did not measure it (no retain bound).
        assert step == same_step and [loss is None for loss in losses] == [
            loss is None for loss in same_losses
        ]
        measured = [(a, b) for a, b in zip(losses, same_losses, strict=True) if a is not None]
        assert [a for a, _ in measured] == pytest.approx([b for _, b in measured], rel=1e-6)
    assert compact.metrics["forget_loss_after"] > compact.metrics["forget_loss_before"]  # it did train


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_masked_run_in_bf16_on_cuda_moves_only_the_salient_rows(tokenizer, retain_texts):
    """The row-sliced products and the gathering hook under accelerate's bf16 autocast on a GPU."""
    model = tiny_llama(tied=True)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    outcome = _masked_npo(model, tokenizer, retain_texts, fraction=0.05, device="cuda", dtype=torch.bfloat16)
    assert outcome.metrics["forget_loss_after"] > outcome.metrics["forget_loss_before"]
    assert outcome.trainable_parameters == outcome.metrics["salient_weights"]
    assert {(p.device.type, p.dtype) for p in model.parameters()} == {("cuda", torch.float32)}
    assert not any("forward" in vars(m) for m in model.modules() if isinstance(m, torch.nn.Linear))
    # Only the run's own salient rows can have moved (its mask, taken on the GPU, is not
    # recomputed here: a bf16 forward may rank a row differently from an fp32 one).
    moved = sum(
        int((param.detach().cpu() != before[name]).reshape(param.shape[0], -1).any(dim=1).sum())
        for name, param in model.named_parameters()
    )
    assert 0 < moved <= outcome.metrics["salient_rows"]
