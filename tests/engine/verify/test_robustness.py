"""Robustness: quantization and relearning copies, recovery, paraphrase probes, TPR at low FPR."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unlearning_jobs.engine.verify.membership import bootstrap_intervals, tpr_at_fpr
from unlearning_jobs.engine.verify.records import TofuItem
from unlearning_jobs.engine.verify.report import VerificationResult
from unlearning_jobs.engine.verify.robustness import (
    LIMITS,
    RobustnessSettings,
    assess_robustness,
    fake_quantize_,
    measure_robustness,
    quantized_copy,
    recovery,
    relearned_copy,
    split_forget_records,
)
from unlearning_jobs.engine.verify.suite import VerificationSettings, assess_measurements

from .test_suite import TOFU, erasure

# TPR at low FPR --------------------------------------------------------------------------------

NEGATIVES = [i / 100 for i in range(100)]  # 0.00 … 0.99
POSITIVES = [1.5, 1.2, 0.985, 0.98]


def test_tpr_at_one_percent_fpr_allows_exactly_one_false_positive():
    # One non-member (0.99) may score above the threshold, so the threshold is the second
    # highest (0.98): 1.5, 1.2 and 0.985 are above it, 0.98 ties with it and does not count.
    assert tpr_at_fpr(positive=POSITIVES, negative=NEGATIVES, fpr=0.01) == 0.75


def test_tpr_at_a_tenth_of_a_percent_allows_no_false_positive_with_100_non_members():
    assert tpr_at_fpr(positive=POSITIVES, negative=NEGATIVES, fpr=0.001) == 0.5


def test_tpr_refuses_empty_or_non_finite_scores():
    with pytest.raises(ValueError):
        tpr_at_fpr(positive=[], negative=[0.1], fpr=0.01)
    with pytest.raises(ValueError):
        tpr_at_fpr(positive=[math.nan], negative=[0.1], fpr=0.01)


def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate():
    rng = np.random.default_rng(3)
    members, nonmembers = rng.normal(1.0, 1.0, 40), rng.normal(0.0, 1.0, 60)
    first = bootstrap_intervals(positive=members, negative=nonmembers, n_bootstrap=300, seed=1)
    again = bootstrap_intervals(positive=members, negative=nonmembers, n_bootstrap=300, seed=1)
    assert first == again
    low, high = first["auc"]
    assert low < 0.76 < high and high - low < 0.3  # true AUC of N(1,1) vs N(0,1) is 0.76
    assert set(first) == {"auc", "tpr@0.01", "tpr@0.001"}


# Attacks on copies ---------------------------------------------------------------------------


def test_4bit_quantization_changes_every_weight_matrix_and_leaves_the_model_alone(tiny_world):
    model = tiny_world.original
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = quantized_copy(model, bits=4, group_size=16)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    attn = quantized.transformer.h[0].attn.c_attn.weight  # a Conv1D, stored [in, out]
    assert not torch.equal(attn, model.transformer.h[0].attn.c_attn.weight)
    column = attn[:16, 0]  # one group of one output channel: at most 15 levels
    assert len(torch.unique(column)) <= 15
    assert quantized.lm_head.weight is quantized.transformer.wte.weight  # tie kept, quantized once
    ids = tiny_world.tokenizer("Customer note:", return_tensors="pt")["input_ids"]
    assert not torch.allclose(quantized(ids).logits, model(ids).logits)


def test_8bit_quantization_error_is_within_half_a_step_per_channel():
    layer = torch.nn.Linear(64, 8)
    original = layer.weight.detach().clone()
    assert fake_quantize_(layer, bits=8) == 1
    step = original.abs().amax(dim=1, keepdim=True) / 127
    assert ((layer.weight - original).abs() <= step / 2 + 1e-7).all()
    assert not torch.equal(layer.weight, original)


def test_relearning_fine_tunes_a_copy_on_the_attack_records(tiny_world):
    texts = [item["text"] for item in tiny_world.cohort[:4]]
    before = {k: v.clone() for k, v in tiny_world.retrain.state_dict().items()}
    ids = tiny_world.tokenizer(texts[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss_before = float(tiny_world.retrain(ids, labels=ids).loss)
    attacked, _ = relearned_copy(
        tiny_world.retrain,
        tiny_world.tokenizer,
        texts=texts,
        steps=5,
        learning_rate=3e-3,
        batch_size=4,
        device="cpu",
    )
    with torch.no_grad():
        assert float(attacked(ids, labels=ids).loss) < loss_before - 0.1
    for name, tensor in tiny_world.retrain.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_split_is_seeded_and_disjoint(tiny_world):
    records, _ = erasure(tiny_world.cohort)
    from unlearning_jobs.engine.verify.records import coerce_forget_records

    records = coerce_forget_records(records)
    attack, evaluation = split_forget_records(records, fraction=0.25, seed=0, max_eval=100)
    again = split_forget_records(records, fraction=0.25, seed=0, max_eval=100)
    assert (attack, evaluation) == again
    assert len(attack) == round(0.25 * len(records))
    assert not {r.record_id for r in attack} & {r.record_id for r in evaluation}
    assert len(attack) + len(evaluation) == len(records)


def test_recovery_is_the_share_of_the_gap_and_undefined_without_one():
    assert recovery(attacked=0.6, attacked_reference=0.2, original=1.0, reference=0.2) == pytest.approx(0.5)
    assert math.isnan(recovery(attacked=0.6, attacked_reference=0.2, original=0.2, reference=0.2))


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="attack_fraction"):
        RobustnessSettings(attack_fraction=1.0)
    with pytest.raises(ValueError, match="quantization_bits"):
        RobustnessSettings(quantization_bits=(16,))
    with pytest.raises(ValueError, match="attacks"):
        RobustnessSettings(attacks=("jailbreak",))


# The section end to end on the tiny original and retrain --------------------------------------

SETTINGS = RobustnessSettings(
    relearn_steps=4, relearn_learning_rate=3e-3, quantization_bits=(8, 4), group_size=16, max_eval_records=12
)


@pytest.fixture(scope="module")
def measured(tiny_world):
    records, subjects = erasure(tiny_world.cohort)
    items = [
        TofuItem.from_mapping({**row, "paraphrased_question": "Who wrote " + row["question"]}) for row in TOFU
    ]
    common = dict(
        tokenizer=tiny_world.tokenizer,
        device="cpu",
        forget_records=records,
        subject_pii=subjects,
        tofu_items=items,
        settings=SETTINGS,
        verify_settings=VerificationSettings(batch_size=16),
    )
    return {
        "original": measure_robustness(model=tiny_world.original, **common),
        "retrain": measure_robustness(model=tiny_world.retrain, **common),
    }


@pytest.mark.slow
def test_the_original_is_found_to_recover_and_the_retrain_is_not(measured):
    original, retrain = measured["original"], measured["retrain"]
    assert original["split"] == retrain["split"]
    assert original["base"]["verbmem"] > retrain["base"]["verbmem"] + 0.1
    as_original = assess_robustness(measurements=original, original=original, reference=retrain)
    as_retrain = assess_robustness(measurements=retrain, original=original, reference=retrain)
    metrics = [row.metric for row in as_original.rows]
    assert metrics[:3] == ["relearning_recovery", "quantization_8bit_recovery", "quantization_4bit_recovery"]
    assert "paraphrase_extraction_rate" in metrics and "paraphrase_answer_recall_gap" in metrics
    # The retrain attacked is its own baseline: exactly zero recovery. The original keeps most of
    # its lead through 8-bit quantization: far above the 10 % a good unlearning may show.
    assert as_retrain.rows[1].value == 0.0 and as_retrain.rows[1].passed
    assert as_original.rows[1].value > 0.5 and not as_original.rows[1].passed
    assert set(as_original.limits) == set(metrics)
    for row in as_original.rows:
        assert LIMITS[row.metric] == as_original.limits[row.metric]


@pytest.mark.slow
def test_without_the_comparison_runs_recovery_is_skipped_not_passed(measured):
    result = assess_robustness(measurements=measured["original"])
    assert [row.metric for row in result.rows] == ["paraphrase_extraction_rate"]
    assert {item["metric"] for item in result.skipped} >= {
        "relearning_recovery",
        "quantization_4bit_recovery",
    }
    assert not result.to_dict()["complete"]


@pytest.mark.slow
def test_the_suite_adds_a_robustness_section_and_keeps_its_keys(measured):
    stub = {
        "extraction": {"rate": 0.0, "n_probes": 1},
        "verbmem": {"mean_f1": 0.1, "n_records": 1, "mean_recall": 0.1, "max_f1": 0.1, "n_skipped": 0},
        "membership": {
            "n_members": 1,
            "n_nonmembers": 1,
            "auc": {},
            "n_skipped_members": 0,
            "n_skipped_nonmembers": 0,
            "k": 0.4,
        },
        "perplexity": {
            "retain": {"value": 1.0, "n_tokens": 1, "n_texts": 1},
            "holdout": {"value": 1.0, "n_tokens": 1, "n_texts": 1},
        },
    }
    reference = VerificationResult(rows=(), measurements={**stub, "robustness": measured["retrain"]})
    original = VerificationResult(rows=(), measurements={**stub, "robustness": measured["original"]})
    result = assess_measurements(
        measurements={**stub, "robustness": measured["original"]},
        reference_results=reference.to_dict(),
        original_results=original,
    )
    data = result.to_dict()
    assert {"passed", "complete", "rows", "skipped", "measurements", "robustness"} <= set(data)
    assert not any(row["metric"].endswith("_recovery") for row in data["rows"])
    assert data["robustness"]["rows"][0]["metric"] == "relearning_recovery"
    assert result.robustness_passed is False
    assert VerificationResult.from_dict(data).robustness == data["robustness"]
    plain = assess_measurements(measurements=stub)
    assert "robustness" not in plain.to_dict() and plain.robustness_passed is None


def test_membership_reports_tpr_at_low_fpr_with_intervals_and_resolution(tiny_world):
    from unlearning_jobs.engine.verify.membership import measure_membership

    result = measure_membership(
        model=tiny_world.original,
        tokenizer=tiny_world.tokenizer,
        device="cpu",
        member_texts=[item["text"] for item in tiny_world.cohort],
        nonmember_texts=tiny_world.holdout,
        batch_size=16,
        n_bootstrap=200,
    )
    assert result.fpr_resolution == pytest.approx(1 / result.n_nonmembers)
    for score, tprs in result.tpr_at_fpr.items():
        assert set(tprs) == {"0.01", "0.001"}
        low, high = result.confidence_intervals[score]["auc"]
        assert low <= result.auc[score] <= high
        assert tprs["0.01"] == tpr_at_fpr(
            positive=result.member_scores[score], negative=result.nonmember_scores[score], fpr=0.01
        )


def test_8bit_rounding_matches_torchao_on_a_linear_layer():
    torchao = pytest.importorskip("torchao.quantization")
    from torchao.quantization.granularity import PerAxis

    layer = torch.nn.Linear(32, 6, bias=False)
    ours = torch.nn.Linear(32, 6, bias=False)
    ours.load_state_dict(layer.state_dict())
    fake_quantize_(ours, bits=8)
    torchao.quantize_(layer, torchao.IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0)))
    x = torch.randn(4, 32)
    # torchao's symmetric int8 uses [-128, 127] with scale absmax / 127.5; ours [-127, 127] with
    # absmax / 127: the outputs agree to within a step of either.
    assert torch.allclose(ours(x), layer(x), atol=0.05)
