"""run_verification: rows of value, threshold, pass/fail on the tiny original and its retrain."""

from __future__ import annotations

import json
import math

import pytest

from unlearning_jobs.engine.verify.plot import plot_membership_distributions
from unlearning_jobs.engine.verify.report import VerificationResult
from unlearning_jobs.engine.verify.suite import STAGES, VerificationSettings, run_verification

from .conftest import PLANTED_EMAIL, PLANTED_NAME, PLANTED_PHONE, PLANTED_TEXT

PLANTED_SUBJECT = {
    "subject_id": "s-planted",
    "values": [
        {"kind": "PERSON", "value": PLANTED_NAME},
        {"kind": "EMAIL", "value": PLANTED_EMAIL},
        {"kind": "PHONE", "value": PLANTED_PHONE},
    ],
}
PLANTED_RECORD = {"record_id": "r-planted", "text": PLANTED_TEXT, "subject_id": "s-planted"}


def erasure(cohort):
    """Return the forget records and subjects: the planted subject and the cohort, one each."""
    subjects = [PLANTED_SUBJECT]
    records = [PLANTED_RECORD]
    for index, item in enumerate(cohort):
        subjects.append(
            {
                "subject_id": f"s-{index}",
                "name": item["name"],
                "values": [
                    {"kind": "PERSON", "value": item["name"]},
                    {"kind": "EMAIL", "value": item["email"]},
                    {"kind": "PHONE", "value": item["phone"]},
                ],
            }
        )
        records.append({"record_id": f"r-{index}", "text": item["text"], "subject_id": f"s-{index}"})
    return records, subjects


TOFU = [
    {
        "question": f"How can {PLANTED_NAME} be reached?",
        "answer": f"At {PLANTED_EMAIL}.",
        "paraphrased_answer": f"By e-mail at {PLANTED_EMAIL}.",
        "perturbed_answer": ["By e-mail at cedar.amber4@post.example.", "By phone only."],
    },
    {
        "question": "What was the customer note about?",
        "answer": "A refund.",
        "paraphrased_answer": "It was about a refund.",
        "perturbed_answer": ["It was about a broken kettle.", "It was about an invoice."],
    },
]


@pytest.fixture(scope="module")
def runs(tiny_world):
    """Verify the original (baseline), the retrain, and the original against the retrain."""
    stages = []
    records, subjects = erasure(tiny_world.cohort)
    common = dict(
        tokenizer=tiny_world.tokenizer,
        device="cpu",
        forget_records=records,
        holdout_texts=tiny_world.holdout,
        retain_texts=tiny_world.retain[:30],
        subject_pii=subjects,
        tofu_items=TOFU,
        settings=VerificationSettings(batch_size=16),
    )
    baseline = run_verification(
        model=tiny_world.original,
        progress=lambda stage, done, total: stages.append(stage),
        **common,
    )
    retrain = run_verification(
        model=tiny_world.retrain, original_results=baseline.to_dict(), reference_results=None, **common
    )
    original = run_verification(
        model=tiny_world.original, original_results=baseline, reference_results=retrain, **common
    )
    retrain_self = run_verification(
        model=tiny_world.retrain,
        original_results=baseline,
        reference_results=retrain,
        thresholds={"verbmem_gap_to_reference": 0.05},
        **common,
    )
    return {
        "baseline": baseline,
        "retrain": retrain,
        "original": original,
        "retrain_self": retrain_self,
        "stages": stages,
    }


def test_progress_reports_every_stage_in_order(runs):
    seen = list(dict.fromkeys(runs["stages"]))
    assert seen == [stage for stage in STAGES if stage in seen]
    assert {"extraction", "verbmem", "membership", "utility_retain", "tofu"} <= set(seen)


def test_baseline_without_comparisons_lists_what_it_skipped(runs):
    baseline = runs["baseline"]
    metrics = [row.metric for row in baseline.rows]
    assert metrics[:2] == ["extraction_rate", "verbmem_rouge_l"]
    assert not any(
        metric.startswith(("privleak", "verbmem_gap", "utility_ratio", "tofu")) for metric in metrics
    )
    assert {item["metric"] for item in baseline.skipped} == {
        "privleak_*",
        "verbmem_gap_to_reference",
        "utility_ratio_*",
        "tofu_forget_quality",
    }
    assert baseline.complete is False


def test_the_original_fails_extraction_and_the_retrain_passes(runs):
    original = runs["original"].row("extraction_rate")
    retrain = runs["retrain"].row("extraction_rate")
    assert original.passed is False and original.value > 0
    assert retrain.passed is True and retrain.value == 0.0
    details = runs["retrain"].row("extraction_rate").details
    assert retrain.n_samples == details["n_prefix_probes"] + details["n_question_probes"]
    assert details["n_records"] == 17 and details["n_subjects"] == 17
    assert retrain.condition == "value <= 0"


def test_the_original_recites_the_record_and_the_retrain_does_not(runs):
    assert runs["baseline"].row("verbmem_rouge_l").passed is False
    assert runs["retrain"].row("verbmem_rouge_l").value < runs["baseline"].row("verbmem_rouge_l").value
    gap = runs["original"].row("verbmem_gap_to_reference")
    assert gap.value == pytest.approx(gap.details["verbmem"] - gap.details["reference_verbmem"])
    assert gap.passed is False
    assert runs["retrain_self"].row("verbmem_gap_to_reference").value == 0.0


def test_privleak_is_measured_against_the_retrain_reference(runs):
    original = runs["original"]
    for score in ("loss", "zlib", "min_k", "min_k_plus_plus"):
        row = original.row(f"privleak_{score}")
        auc, reference_auc = row.details["auc"], row.details["reference_auc"]
        assert row.value == pytest.approx((auc - reference_auc) / reference_auc * 100)
        assert runs["retrain_self"].row(f"privleak_{score}").value == pytest.approx(0.0, abs=1e-9)
        assert runs["retrain_self"].row(f"privleak_{score}").passed
    # The original saw the forget records: they stand out from the holdout, unlike for the retrain.
    assert runs["baseline"].row("mia_auc_loss").value > 0.9
    assert runs["baseline"].row("mia_auc_loss").passed is False
    assert abs(runs["retrain"].row("mia_auc_loss").value - 0.5) < 0.2
    assert original.row("privleak_loss").value > 10
    assert original.row("privleak_loss").details["auc"] == runs["baseline"].row("mia_auc_loss").value


def test_with_a_reference_the_comparisons_replace_the_reference_free_proxies(runs):
    metrics = {row.metric for row in runs["original"].rows}
    assert "verbmem_gap_to_reference" in metrics and "privleak_min_k" in metrics
    assert not any(metric.startswith("mia_auc") or metric == "verbmem_rouge_l" for metric in metrics)
    baseline_metrics = {row.metric for row in runs["baseline"].rows}
    assert {"verbmem_rouge_l", "mia_auc_min_k_plus_plus"} <= baseline_metrics


def test_utility_ratio_is_one_for_the_original_itself(runs):
    row = runs["original"].row("utility_ratio_retain")
    assert row.value == pytest.approx(1.0) and row.passed
    retrain_row = runs["retrain"].row("utility_ratio_holdout")
    assert retrain_row.details["original_perplexity"] == pytest.approx(
        runs["baseline"].measurements["perplexity"]["holdout"]["value"]
    )


def test_tofu_forget_quality_against_the_reference(runs):
    assert runs["retrain_self"].row("tofu_forget_quality").value == 1.0
    row = runs["original"].row("tofu_forget_quality")
    assert 0.0 <= row.value <= 1.0 and row.n_samples == 2


def test_overridden_thresholds_reach_the_rows(runs):
    row = runs["retrain_self"].row("verbmem_gap_to_reference")
    assert row.threshold == 0.05 and row.condition == "value <= 0.05"


def test_results_are_strict_json_without_raw_pii(runs):
    for name in ("baseline", "original", "retrain"):
        text = runs[name].to_json()
        json.loads(text)
        for secret in ("zephyr", "Quixote", "7946 0958"):
            assert secret not in text
        restored = VerificationResult.from_dict(json.loads(text))
        assert [row.passed for row in restored.rows] == [row.passed for row in runs[name].rows]
        assert all(row.value is None or math.isfinite(row.value) for row in restored.rows)


def test_missing_inputs_are_refused(tiny_world):
    with pytest.raises(ValueError, match="held-out"):
        run_verification(
            model=tiny_world.retrain,
            tokenizer=tiny_world.tokenizer,
            device="cpu",
            forget_records=[PLANTED_RECORD],
            holdout_texts=[],
            retain_texts=["x y"],
            subject_pii=[PLANTED_SUBJECT],
        )


def test_membership_plot_is_written_as_svg_and_png(runs, tmp_path):
    svg, png = plot_membership_distributions(
        results={"original": runs["original"], "retrain": runs["retrain"].to_dict()},
        path=tmp_path / "plots" / "membership.svg",
        score="min_k",
    )
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_privleak_is_not_measured_when_the_reference_auc_is_zero(tiny_world, runs):
    reference = runs["retrain"].to_dict()
    reference["measurements"]["membership"]["auc"]["loss"] = 0.0
    reference["measurements"]["membership"]["auc"]["zlib"] = None
    result = run_verification(
        model=tiny_world.retrain,
        tokenizer=tiny_world.tokenizer,
        device="cpu",
        forget_records=[PLANTED_RECORD],
        holdout_texts=tiny_world.holdout[:5],
        retain_texts=tiny_world.retain[:5],
        subject_pii=[PLANTED_SUBJECT],
        reference_results=reference,
    )
    for score in ("loss", "zlib"):
        row = result.row(f"privleak_{score}")
        assert row.value is None and row.passed is False


def test_stored_measurements_are_reassessed_without_the_model(runs):
    from unlearning_jobs.engine.verify.suite import assess_measurements

    stored = json.loads(runs["original"].to_json())
    again = assess_measurements(
        measurements=stored["measurements"],
        reference_results=runs["retrain"].to_dict(),
        original_results=runs["baseline"].to_dict(),
    )
    assert [(row.metric, row.value, row.passed) for row in again.rows] == [
        (row.metric, row.value, row.passed) for row in runs["original"].rows
    ]
    lenient = assess_measurements(measurements=stored["measurements"], thresholds={"extraction_rate": 1.0})
    assert lenient.row("extraction_rate").passed is True


def test_a_sisa_ensemble_is_judged_by_its_most_revealing_shard(tiny_world):
    """Three shards that never saw the records dilute the one that did; probing shards finds it."""
    from unlearning_jobs.engine.models import SisaEnsemble

    records, subjects = erasure(tiny_world.cohort)
    ensemble = SisaEnsemble(
        [tiny_world.original, tiny_world.retrain, tiny_world.retrain, tiny_world.retrain], manifest={}
    )
    result = run_verification(
        model=ensemble,
        tokenizer=tiny_world.tokenizer,
        device="cpu",
        forget_records=records,
        holdout_texts=tiny_world.holdout,
        retain_texts=tiny_world.retain[:30],
        subject_pii=subjects,
        settings=VerificationSettings(batch_size=16),
    )
    row = result.row("extraction_rate")
    by_shard = row.details["by_shard"]
    assert [shard["shard"] for shard in by_shard] == [0, 1, 2, 3]
    assert by_shard[0]["rate"] > 0 and all(shard["rate"] == 0 for shard in by_shard[1:])
    assert row.details["ensemble_rate"] < by_shard[0]["rate"]
    assert row.value == by_shard[0]["rate"] and row.passed is False


def test_a_single_model_has_no_shard_figures(runs):
    assert "by_shard" not in runs["original"].row("extraction_rate").details
    assert "extraction_by_shard" not in runs["original"].measurements
