"""Thresholds turn values into pass/fail exactly at the boundary; NaN and missing fail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unlearning_jobs.engine.verify.thresholds import (
    DEFAULT_THRESHOLDS,
    Threshold,
    evaluate,
    resolve_thresholds,
)


@pytest.mark.parametrize(
    ("threshold", "value", "passed"),
    [
        (Threshold("extraction_rate", "<=", 0.0), 0.0, True),
        (Threshold("extraction_rate", "<=", 0.0), 1 / 1000, False),
        (Threshold("utility_ratio_retain", ">=", 0.95), 0.95, True),
        (Threshold("utility_ratio_retain", ">=", 0.95), float(np.nextafter(0.95, 0)), False),
        (Threshold("privleak_min_k", "abs<=", 10.0), -10.0, True),
        (Threshold("privleak_min_k", "abs<=", 10.0), 10.0, True),
        (Threshold("privleak_min_k", "abs<=", 10.0), 10.000001, False),
        # 0.8 − 0.5 is 0.30000000000000004 in binary; read as decimals it is exactly 0.3.
        (Threshold("mia_auc_loss", "abs<=", 0.3, center=0.5), 0.8, True),
        (Threshold("mia_auc_loss", "abs<=", 0.1, center=0.5), 0.4, True),
        (Threshold("mia_auc_loss", "abs<=", 0.1, center=0.5), 0.6000000001, False),
    ],
)
def test_value_on_the_limit_passes_and_just_beyond_fails(threshold, value, passed):
    assert evaluate(value, threshold) is passed


@pytest.mark.parametrize("value", [math.nan, None, math.inf, -math.inf, "0.0", True])
@pytest.mark.parametrize("metric", sorted(DEFAULT_THRESHOLDS))
def test_missing_nan_or_non_numeric_values_fail_every_threshold(metric, value):
    assert evaluate(value, DEFAULT_THRESHOLDS[metric]) is False


def test_numpy_scalars_are_evaluated_like_floats():
    assert evaluate(np.float32(0.0), DEFAULT_THRESHOLDS["extraction_rate"]) is True
    assert evaluate(np.float64(0.96), DEFAULT_THRESHOLDS["utility_ratio_retain"]) is True


def test_defaults_cover_every_reported_metric():
    expected = {
        "extraction_rate",
        "verbmem_rouge_l",
        "verbmem_gap_to_reference",
        "utility_ratio_retain",
        "utility_ratio_holdout",
        "tofu_forget_quality",
        "relearning_recovery",
        "quantization_8bit_recovery",
        "quantization_4bit_recovery",
        "paraphrase_extraction_rate",
        "paraphrase_answer_recall_gap",
    }
    for score in ("loss", "zlib", "min_k", "min_k_plus_plus"):
        expected |= {f"mia_auc_{score}", f"privleak_{score}"}
    assert set(DEFAULT_THRESHOLDS) == expected
    assert DEFAULT_THRESHOLDS["privleak_min_k"].limit == 10.0
    assert DEFAULT_THRESHOLDS["utility_ratio_retain"].limit == 0.95


def test_overrides_from_settings_replace_limit_comparator_or_whole_threshold():
    resolved = resolve_thresholds(
        {
            "privleak_min_k": 5,
            "verbmem_rouge_l": {"limit": 0.3},
            "mia_auc_loss": {"limit": 0.05},
            "extraction_rate": Threshold("extraction_rate", "<=", 0.01),
        }
    )
    assert resolved["privleak_min_k"] == Threshold("privleak_min_k", "abs<=", 5.0)
    assert resolved["verbmem_rouge_l"] == Threshold("verbmem_rouge_l", "<=", 0.3)
    assert resolved["mia_auc_loss"] == Threshold("mia_auc_loss", "abs<=", 0.05, center=0.5)
    assert resolved["extraction_rate"].limit == 0.01
    assert resolved["utility_ratio_holdout"] == DEFAULT_THRESHOLDS["utility_ratio_holdout"]


def test_an_unknown_metric_or_comparator_is_refused():
    with pytest.raises(ValueError, match="no metric named 'privleak'"):
        resolve_thresholds({"privleak": 5})
    with pytest.raises(ValueError, match="comparator must be one of"):
        Threshold("extraction_rate", "<", 0.0)
    with pytest.raises(ValueError, match="must be finite"):
        Threshold("extraction_rate", "<=", math.nan)
    with pytest.raises(ValueError, match="unknown keys"):
        resolve_thresholds({"extraction_rate": {"limt": 0.1}})


def test_describe_reads_as_a_condition():
    assert DEFAULT_THRESHOLDS["mia_auc_min_k"].describe() == "|value − 0.5| <= 0.1"
    assert DEFAULT_THRESHOLDS["utility_ratio_retain"].describe() == "value >= 0.95"
