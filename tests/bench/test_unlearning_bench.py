"""bench/unlearning.py on a fine-tuned base: each model verified as made, an original reused only
when its recipe says it is the one the command would train (a tiny random Llama, the small
TOFU-shaped set of conftest.py; real training, a few seconds a model)."""

from __future__ import annotations

import json

import pytest
import unlearning  # bench/unlearning.py (conftest puts bench/ on the path)

from tests.engine.pretrained import make_base


def test_a_labelled_run_is_another_run_of_its_method_judged_as_that_method():
    assert unlearning.method_of("npo@lora") == ("npo", {})
    assert unlearning.method_of("npo_reference") == ("npo", {"preset": "reference"})
    assert unlearning.method_of("rmu") == ("rmu", {})
    assert unlearning.is_approximate_run("gradient_difference@lora")
    assert unlearning.is_approximate_run("npo_reference")
    assert not unlearning.is_approximate_run("retrain") and not unlearning.is_approximate_run("sisa@s8")


def _run(tofu_dir, tmp_path, base, out_name, *extra) -> dict:
    out = tmp_path / f"{out_name}.json"
    argv = [
        "--tofu",
        str(tofu_dir),
        "--tofu-forget",
        "forget10",
        "--tofu-authors",
        "7",
        "--finetune-base",
        str(base),
        "--methods",
        "retrain,gradient_difference@lora",
        "--params",
        json.dumps({"gradient_difference@lora": {"adapter": "lora", "max_steps": 2, "eval_every": 1}}),
        "--epochs",
        "1",
        "--retain-sample",
        "10",
        "--no-robustness",
        "--workdir",
        str(tmp_path / "work"),
        "--out",
        str(out),
        *extra,
    ]
    assert unlearning.main(argv) == 0
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_models_are_verified_as_made_and_only_the_same_fine_tune_is_reused(tofu_dir, tmp_path):
    base = make_base(tmp_path / "base")
    first = _run(tofu_dir, tmp_path, base, "first")
    results = first["forget_sets"]["forget10"]["results"]
    assert list(results) == ["original", "retrain", "gradient_difference@lora"]
    labelled = first["forget_sets"]["forget10"]["runs"]["gradient_difference@lora"]
    assert labelled["method"] == "gradient_difference" and labelled["params"]["adapter"] == "lora"
    assert "reused" not in first["train"] and first["train"]["steps"] > 0

    again = _run(tofu_dir, tmp_path, base, "again", "--reuse-original")
    original = tmp_path / "work" / "tofu_finetuned" / "original"
    assert again["train"]["reused"] == str(original)
    assert again["train"]["steps"] == first["train"]["steps"]
    # The same weights measured again give the same measurements; the rest was made again.
    assert (
        again["forget_sets"]["forget10"]["results"]["original"]["measurements"]
        == results["original"]["measurements"]
    )
    assert (
        again["forget_sets"]["forget10"]["runs"]["retrain"]["weights_sha256"]
        == first["forget_sets"]["forget10"]["runs"]["retrain"]["weights_sha256"]
    )

    # Another learning rate is another original: trained again, not reused.
    other = _run(
        tofu_dir, tmp_path, base, "other", "--reuse-original", "--finetune-params", '{"learning_rate": 5e-4}'
    )
    assert "reused" not in other["train"]
    assert json.loads((original / "lethe_finetune.json").read_text())["params"]["learning_rate"] == 5e-4


def _row(**values) -> dict:
    row = {
        "extraction_rate": 0.0,
        "privleak_loss": -64.3,
        "forget_quality": 0.766,
        "utility_ratio_retain": 0.93,
        "utility_ratio_holdout": 0.91,
        "relearning_recovery": 0.14,
        "quantization_4bit_recovery": 0.27,
        "time_ratio": 0.395,
    }
    return {**row, **values}


def test_a_tofu_row_is_judged_against_issue_16s_own_five_targets_as_well():
    row = _row()
    # 91 % utility meets the issue's TOFU target (90 %), not the verification issue's 95 %.
    assert not unlearning.target_check(row)["utility >= 95 %"]
    own = unlearning.issue16_tofu_check(row)
    assert own == {
        "forget quality >= 0.1": True,
        "utility >= 90 %": True,
        "relearning <= 25 %": True,
        "4-bit <= 10 %": False,
        "<= 10 % of retrain time": False,
    }
    # The lower of the two utility ratios decides, and an unmeasured attack is never met.
    assert not unlearning.issue16_tofu_check(_row(utility_ratio_holdout=0.596))["utility >= 90 %"]
    assert not unlearning.issue16_tofu_check(_row(relearning_recovery=None))["relearning <= 25 %"]
    # Off TOFU there is no forget quality and so no such table.
    assert unlearning.issue16_tofu_check(_row(forget_quality=None)) is None
    lines = unlearning.format_checks(
        {"gd": row, "rmu": _row(forget_quality=0.003)}, ["gd", "rmu"], unlearning.issue16_tofu_check
    )
    assert lines[1].split() == ["gd", "met", "met", "met", "NOT", "NOT", "(3", "of", "5)"]
    assert lines[2].split()[:2] == ["rmu", "NOT"]
