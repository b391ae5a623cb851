"""Rows keep full precision and their decided pass/fail through JSON; NaN is stored as missing."""

from __future__ import annotations

import json
import math

from unlearning_jobs.engine.verify.report import (
    VerificationResult,
    format_value,
    make_row,
    rows_table,
)
from unlearning_jobs.engine.verify.thresholds import DEFAULT_THRESHOLDS


def test_a_nan_value_is_stored_as_not_measured_and_fails():
    row = make_row(value=math.nan, threshold=DEFAULT_THRESHOLDS["extraction_rate"], n_samples=0)
    assert row.value is None and row.passed is False
    assert format_value(row.value, row.threshold) == "not measured"


def test_result_round_trips_through_strict_json():
    rows = (
        make_row(
            value=0.0,
            threshold=DEFAULT_THRESHOLDS["extraction_rate"],
            n_samples=7,
            details={"n_leaking": 0, "ratio": math.inf},
        ),
        make_row(value=0.9500001, threshold=DEFAULT_THRESHOLDS["utility_ratio_retain"], n_samples=3),
        make_row(value=0.7, threshold=DEFAULT_THRESHOLDS["mia_auc_loss"], n_samples=40),
    )
    result = VerificationResult(
        rows=rows,
        skipped=({"metric": "privleak_*", "reason": "x"},),
        measurements={"membership": {"auc": {"loss": math.nan}}},
    )
    text = result.to_json()
    restored = VerificationResult.from_dict(json.loads(text))
    assert [row.passed for row in restored.rows] == [True, True, False]
    assert restored.row("utility_ratio_retain").value == 0.9500001
    assert restored.rows[0].details["ratio"] is None
    assert restored.measurements["membership"]["auc"]["loss"] is None
    assert restored.passed is False and restored.complete is False
    assert restored.failed_metrics() == ["mia_auc_loss"]


def test_a_result_without_rows_does_not_pass():
    assert VerificationResult(rows=()).passed is False


def test_format_value_never_prints_a_failing_value_as_its_limit():
    assert format_value(0.0500001, 0.05) == "0.0500001"
    assert format_value(0.94999999, 0.95) == "0.94999999"
    assert format_value(0.95, 0.95) == "0.95"
    assert format_value(0.123456, 0.95) == "0.123"


def test_rows_table_shows_condition_value_and_verdict_per_model():
    ok = VerificationResult(
        rows=(make_row(value=0.0, threshold=DEFAULT_THRESHOLDS["extraction_rate"], n_samples=4),)
    )
    bad = VerificationResult(
        rows=(make_row(value=0.25, threshold=DEFAULT_THRESHOLDS["extraction_rate"], n_samples=4),)
    )
    table = rows_table({"retrain": ok, "original": bad})
    assert "value <= 0" in table
    assert "0 pass (n=4)" in table and "0.25 FAIL (n=4)" in table
