"""Unlearning methods on a tiny model: the registry, parameter validation, and what each achieves."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from unlearning_jobs.engine.checkpoints import weights_sha256
from unlearning_jobs.engine.methods import METHODS, RetainBoundBeforeFirstStep, get_method
from unlearning_jobs.engine.methods.approximate import next_measurement
from unlearning_jobs.engine.training import (
    CheckpointMismatch,
    TrainingCancelled,
    TrainingRecipe,
    train_causal_lm,
)
from unlearning_jobs.engine.training.data import texts_fingerprint

APPROXIMATE = ["gradient_ascent", "gradient_difference", "npo"]


def run(
    name,
    *,
    trained_model,
    tmp_path,
    forget_texts,
    retain_texts,
    records=None,
    forget_ids=None,
    params=None,
    **kwargs,
):
    return get_method(name).run(
        source_model_dir=trained_model,
        output_dir=tmp_path / name,
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        full_texts=records,
        forget_ids=forget_ids,
        params=params,
        **kwargs,
    )


def test_registry_holds_the_methods_with_their_guarantees():
    assert sorted(METHODS) == [
        "gradient_ascent",
        "gradient_difference",
        "npo",
        "refusal",
        "retrain",
        "rmu",
        "simnpo",
        "sisa",
    ]
    assert {name: cls.guarantee for name, cls in METHODS.items()} == {
        "retrain": "exact",
        "sisa": "exact",
        "gradient_ascent": "statistical",
        "gradient_difference": "statistical",
        "npo": "statistical",
        "simnpo": "statistical",
        "rmu": "statistical",
        "refusal": "statistical",
    }


def test_unknown_method_error_lists_the_valid_names():
    with pytest.raises(
        ValueError, match="unknown unlearning method 'grad_ascent'.*gradient_ascent.*npo.*retrain"
    ):
        get_method("grad_ascent")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_params_reject_unknown_keys_by_name(name):
    method = get_method(name)
    with pytest.raises(ValueError, match="unknown field.*learning_rte"):
        method.parse_params({"learning_rte": 0.1})


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("gradient_ascent", {"learning_rate": -1}, "learning_rate"),
        ("gradient_ascent", {"max_steps": 0}, "max_steps"),
        ("gradient_difference", {"retain_weight": -0.5}, "retain_weight"),
        ("npo", {"beta": 0}, "beta"),
        ("npo", {"max_retain_loss_increase": 0}, "max_retain_loss_increase"),
        ("npo", {"forget_loss_target_ratio": 1.0}, "forget_loss_target_ratio"),
        ("npo", {"forget_loss_target_from": "holdout"}, "forget_loss_target_from"),
        ("npo", {"eval_every": "5"}, "eval_every"),
        ("retrain", {"retain_eval_size": 0}, "retain_eval_size"),
        ("retrain", {"recipe": {"n_head": 5}}, "recipe"),
        ("sisa", {"retain_eval_size": 0}, "retain_eval_size"),
    ],
)
def test_params_reject_out_of_range_values_naming_the_field(name, params, field):
    with pytest.raises(ValueError, match=rf"Params\.{field}"):
        get_method(name).parse_params(params)


def test_params_round_trip_and_defaults():
    params = get_method("npo").parse_params({"beta": 0.2, "learning_rate": 5e-4})
    assert params.beta == 0.2 and params.retain_weight == 3.0
    assert get_method("npo").parse_params(params.as_dict()) == params


@pytest.mark.parametrize("name", APPROXIMATE)
def test_approximate_method_raises_forget_loss_and_keeps_retain_loss_within_bound(
    name, trained_model, tmp_path, forget_texts, retain_texts
):
    result = run(
        name,
        trained_model=trained_model,
        tmp_path=tmp_path,
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        params={"learning_rate": 1e-3, "max_steps": 60, "eval_every": 1, "max_retain_loss_increase": 0.3},
    )
    m = result.metrics
    assert result.guarantee == "statistical"
    assert m["forget_loss_after"] > m["forget_loss_before"] * 1.3
    assert m["retain_loss_after"] <= m["retain_loss_bound"] + 1e-6
    assert m["stopped_reason"] in {"forget_loss_target", "retain_loss_bound", "max_steps"}
    assert result.weights_sha256 == weights_sha256(result.output_dir) != weights_sha256(trained_model)
    model = AutoModelForCausalLM.from_pretrained(result.output_dir, local_files_only=True)
    assert model.config.n_layer == 1


#: Gradient difference measured at every step with no retain bound: only a forget target stops it.
UNTIL_A_TARGET = {"learning_rate": 2e-3, "max_steps": 500, "eval_every": 1, "max_retain_loss_increase": None}


def test_approximate_method_stops_once_the_forget_loss_target_is_reached(
    trained_model, tmp_path, forget_texts, retain_texts
):
    result = run(
        "gradient_difference",
        trained_model=trained_model,
        tmp_path=tmp_path,
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        params={**UNTIL_A_TARGET, "forget_loss_target": 1.0},
    )
    assert result.metrics["stopped_reason"] == "forget_loss_target"
    assert result.metrics["forget_loss_after"] >= 1.0
    assert result.steps < 500


@pytest.mark.parametrize(
    ("points", "target", "adaptive", "expected"),
    [
        ([(0, 1.0), (4, 2.0)], 3.0, False, 12),  # fixed: every eval_every (8) steps
        ([(0, 1.0)], 3.0, True, 8),  # one point: no rise to read yet
        ([(0, 1.0), (4, 2.0)], None, True, 12),  # no target, nothing to approach
        ([(0, 1.0), (4, 2.0)], 3.0, True, 6),  # 1 nat left at 0.25 a step: 4 steps, half of it
        ([(0, 1.0), (2, 2.9)], 3.0, True, 3),  # nearly there: the next step
        ([(0, 1.0), (1, 1.01)], 3.0, True, 9),  # far: at most eval_every
        ([(0, 2.0), (4, 1.5)], 3.0, True, 12),  # falling: no prediction
        ([(0, 2.0), (4, 3.5)], 3.0, True, 12),  # past the target (a stop decides there)
    ],
)
def test_the_next_measurement_comes_sooner_as_the_forget_loss_nears_its_target(
    points, target, adaptive, expected
):
    params = get_method("gradient_difference").parse_params({"eval_every": 8, "eval_adaptive": adaptive})
    assert next_measurement(points, target=target, params=params) == expected


def test_an_adaptive_schedule_stops_where_measuring_every_step_does_with_fewer_measurements(
    trained_model, tmp_path, forget_texts, retain_texts
):
    """Measuring changes no weight, so every schedule follows one trajectory; the stop is the
    first measured step past the target. Every 8 steps overshoots it; adaptive (at most 8) does not."""
    outcomes = {}
    for label, schedule in {
        "every step": {"eval_every": 1},
        "every 8": {"eval_every": 8},
        "adaptive": {"eval_every": 8, "eval_adaptive": True},
    }.items():
        outcomes[label] = run(
            "gradient_difference",
            trained_model=trained_model,
            tmp_path=tmp_path / label.replace(" ", "_"),
            forget_texts=forget_texts,
            retain_texts=retain_texts,
            params={**UNTIL_A_TARGET, "learning_rate": 2e-4, "forget_loss_target": 1.0, **schedule},
        )
    fine, coarse, adaptive = (outcomes[k] for k in ("every step", "every 8", "adaptive"))
    assert {o.metrics["stopped_reason"] for o in outcomes.values()} == {"forget_loss_target"}
    assert coarse.steps > fine.steps == adaptive.steps
    assert adaptive.weights_sha256 == fine.weights_sha256 != coarse.weights_sha256
    assert [entry[0] for entry in coarse.metrics["history"]] == list(range(0, coarse.steps + 1, 8))
    measured = [entry[0] for entry in adaptive.metrics["history"]]
    assert len(measured) < len(fine.metrics["history"])
    gaps = [b - a for a, b in zip(measured, measured[1:])]
    assert max(gaps) <= 8 and gaps[-1] == 1  # longer gaps far from the target, one step at the end


#: Tickets in the training records' form about people the tiny model was never trained on.
NON_MEMBER_TEXTS = [
    f"Ticket {100 + i}: contact {name} at {email} about order {order}."
    for i, (name, email, order) in enumerate(
        [
            ("Gita Moore", "gita.m@mail.test", 512),
            ("Hugo Vance", "hugo.vance@post.test", 377),
            ("Ines Rowe", "ines88@inbox.test", 604),
            ("Jonas Pike", "jonas.pike@mail.test", 219),
        ]
        * 2
    )
]


def test_a_run_can_stop_where_the_forget_records_score_like_non_members(
    trained_model, tmp_path, forget_texts, retain_texts
):
    result = run(
        "gradient_difference",
        trained_model=trained_model,
        tmp_path=tmp_path,
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        non_member_texts=NON_MEMBER_TEXTS,
        params={**UNTIL_A_TARGET, "forget_loss_target_from": "non_members"},
    )
    m = result.metrics
    # Before, the memorised records score far below records the model never saw.
    assert m["forget_loss_before"] < m["non_member_loss_before"] - 0.5
    assert m["stopped_reason"] == "forget_loss_target" and 0 < result.steps < 500
    assert m["forget_loss_target_from"] == "non_members" and m["non_member_records"] == len(NON_MEMBER_TEXTS)
    # The target is the non-members' loss on the weights of the stop, not the one before.
    assert m["forget_loss_target"] == pytest.approx(m["non_member_loss_after"], rel=1e-4)
    assert m["forget_loss_after"] >= m["forget_loss_target"] - 1e-4
    step, forget, retain, non_members = m["history"][-1]
    assert step == result.steps and non_members == pytest.approx(m["forget_loss_target"])
    # At the measurement before the stop the forget records still scored below the non-members.
    _, forget_before_stop, _, non_members_before_stop = m["history"][-2]
    assert forget_before_stop < non_members_before_stop
    # Without the retain bound nothing reads the retain loss during the run: measured before and
    # after, not at the measurements in between (the most records of the three).
    assert m["history"][0][2] == pytest.approx(m["retain_loss_before"]) and retain is None
    assert all(entry[2] is None for entry in m["history"][1:]) and m["retain_loss_after"] > 0


def test_a_run_stopping_on_non_members_resumes_to_the_same_stop_and_refuses_other_non_members(
    trained_model, tmp_path, forget_texts, retain_texts
):
    params = {**UNTIL_A_TARGET, "forget_loss_target_from": "non_members"}
    common = {
        "trained_model": trained_model,
        "forget_texts": forget_texts,
        "retain_texts": retain_texts,
        "params": params,
    }
    straight = run(
        "gradient_difference", tmp_path=tmp_path / "a", non_member_texts=NON_MEMBER_TEXTS, **common
    )
    assert straight.metrics["stopped_reason"] == "forget_loss_target" and straight.steps > 4

    def die(step, total):
        if step == 3:
            raise KeyboardInterrupt

    resumable = {"checkpoint_dir": tmp_path / "ckpt", "checkpoint_every": 2}
    with pytest.raises(KeyboardInterrupt):
        run(
            "gradient_difference",
            tmp_path=tmp_path / "b",
            non_member_texts=NON_MEMBER_TEXTS,
            progress=die,
            **resumable,
            **common,
        )
    # Other non-members would move the target: that run's checkpoint is not this one's.
    with pytest.raises(CheckpointMismatch):
        run(
            "gradient_difference",
            tmp_path=tmp_path / "c",
            non_member_texts=NON_MEMBER_TEXTS[:4],
            **resumable,
            **common,
        )
    resumed = run(
        "gradient_difference",
        tmp_path=tmp_path / "b",
        non_member_texts=NON_MEMBER_TEXTS,
        **resumable,
        **common,
    )
    assert resumed.metrics["resumed_from_step"] == 2
    assert resumed.steps == straight.steps and resumed.weights_sha256 == straight.weights_sha256
    assert resumed.metrics["non_member_loss_before"] == straight.metrics["non_member_loss_before"]


def test_a_target_from_non_members_needs_them(trained_model, tmp_path, forget_texts, retain_texts):
    with pytest.raises(ValueError, match="needs non_member_texts"):
        run(
            "npo",
            trained_model=trained_model,
            tmp_path=tmp_path,
            forget_texts=forget_texts,
            retain_texts=retain_texts,
            params={"forget_loss_target_from": "non_members"},
        )


def test_retain_loss_bound_keeps_the_last_weights_within_it(
    trained_model, tmp_path, forget_texts, retain_texts
):
    result = run(
        "gradient_ascent",
        trained_model=trained_model,
        tmp_path=tmp_path,
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        params={
            "learning_rate": 1e-2,
            "max_steps": 200,
            "forget_loss_target": 100.0,
            "max_retain_loss_increase": 0.1,
            "eval_every": 2,
        },
    )
    m = result.metrics
    assert m["stopped_reason"] == "retain_loss_bound"
    assert m["retain_loss_after"] <= m["retain_loss_bound"] + 1e-6
    # Under the bound the retain loss is what decides, so every measurement reads it.
    assert len(m["history"]) > 2 and all(entry[2] is not None for entry in m["history"])


BOUND_AT_ONCE = {"learning_rate": 1e-2, "max_steps": 20, "eval_every": 2, "max_retain_loss_increase": 0.05}


@pytest.fixture
def ascend_at_once(trained_model, forget_texts, retain_texts):
    """Gradient ascent from 1e-2, which crosses the retain bound by its first measurement (and at
    5e-3 and 2.5e-3; at 1.25e-3 it keeps steps), into ``out``; four backoffs unless ``params`` say."""

    def ascend(out, *, checkpoint_dir=None, checkpoint_every=None, **params):
        extra = (
            {}
            if checkpoint_dir is None
            else {"checkpoint_dir": checkpoint_dir, "checkpoint_every": checkpoint_every}
        )
        return run(
            "gradient_ascent",
            trained_model=trained_model,
            tmp_path=out,
            forget_texts=forget_texts,
            retain_texts=retain_texts,
            params={**BOUND_AT_ONCE, "lr_backoffs": 4, **params},
            **extra,
        )

    return ascend


def test_a_run_that_would_keep_no_step_halves_its_learning_rate_and_starts_again(ascend_at_once, tmp_path):
    result = ascend_at_once(tmp_path)
    assert result.steps > 0
    assert result.metrics["lr_backoffs_applied"] == 3
    assert result.metrics["learning_rate"] == pytest.approx(1.25e-3)
    provenance = json.loads((tmp_path / "gradient_ascent" / "lethe_unlearning.json").read_text())
    assert provenance["params"]["learning_rate"] == pytest.approx(1.25e-3)
    assert result.metrics["forget_loss_after"] > result.metrics["forget_loss_before"]


def test_the_attempt_that_keeps_steps_equals_a_run_at_its_learning_rate_from_one_load(
    ascend_at_once, tmp_path, monkeypatch
):
    import transformers

    loads = []
    load = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM,
        "from_pretrained",
        lambda *args, **kwargs: loads.append(args) or load(*args, **kwargs),
    )
    backed_off = ascend_at_once(tmp_path / "a")
    assert backed_off.metrics["lr_backoffs_applied"] == 3 and len(loads) == 1
    direct = ascend_at_once(tmp_path / "b", learning_rate=1.25e-3, lr_backoffs=0)
    assert direct.steps == backed_off.steps > 0
    assert direct.weights_sha256 == backed_off.weights_sha256


def test_backoff_attempts_keep_their_checkpoints_apart_and_nothing_outside_them_counts(
    ascend_at_once, tmp_path, monkeypatch
):
    # A folder named like an attempt's, in the working directory, is not a checkpoint directory.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lr-backoff-4").mkdir()
    without = ascend_at_once(tmp_path / "a")
    assert without.metrics["lr_backoffs_applied"] == 3
    checkpoints = tmp_path / "checkpoints"
    with_checkpoints = ascend_at_once(tmp_path / "b", checkpoint_dir=checkpoints, checkpoint_every=1)
    assert with_checkpoints.weights_sha256 == without.weights_sha256
    assert (checkpoints / "lr-backoff-3").is_dir()  # the attempt that kept steps checkpointed there


def test_a_run_that_keeps_no_step_at_any_learning_rate_fails_and_writes_nothing(ascend_at_once, tmp_path):
    with pytest.raises(RetainBoundBeforeFirstStep, match=r"unlearned nothing.*0\.01, 0\.005") as failed:
        ascend_at_once(tmp_path, lr_backoffs=1)
    # The message gives the last try's measurement, which did cross the bound.
    measured = re.search(
        r"at 0\.005: (\d+\.\d+) nats before, (\d+\.\d+) at step \d+, on \d+ retain records\)",
        str(failed.value),
    )
    assert measured and float(measured[2]) > float(measured[1])
    assert not (tmp_path / "gradient_ascent").exists()


def test_npo_without_retain_term_does_not_need_retain_texts(trained_model, tmp_path, forget_texts):
    result = run(
        "npo",
        trained_model=trained_model,
        tmp_path=tmp_path,
        forget_texts=forget_texts,
        retain_texts=[],
        params={"retain_weight": 0, "max_steps": 10, "max_retain_loss_increase": None},
    )
    assert result.metrics["forget_loss_after"] > result.metrics["forget_loss_before"]


def test_gradient_difference_refuses_an_empty_retain_set(trained_model, tmp_path, forget_texts):
    with pytest.raises(ValueError, match="retain_texts"):
        run(
            "gradient_difference",
            trained_model=trained_model,
            tmp_path=tmp_path,
            forget_texts=forget_texts,
            retain_texts=[],
        )


def test_cancelling_an_approximate_method_raises_and_writes_no_model(
    trained_model, tmp_path, forget_texts, retain_texts
):
    with pytest.raises(TrainingCancelled):
        run(
            "npo",
            trained_model=trained_model,
            tmp_path=tmp_path,
            forget_texts=forget_texts,
            retain_texts=retain_texts,
            should_stop=lambda: True,
        )
    assert not (tmp_path / "npo").exists()


def test_approximate_method_resumes_from_its_checkpoint_to_the_same_weights(
    trained_model, tmp_path, forget_texts, retain_texts
):
    params = {
        "learning_rate": 1e-3,
        "max_steps": 20,
        "eval_every": 2,
        "forget_loss_target": 100.0,
        "max_retain_loss_increase": None,
    }
    straight = run(
        "gradient_difference",
        trained_model=trained_model,
        tmp_path=tmp_path / "a",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        params=params,
    )

    def die(step, total):
        if step == 13:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(
            "gradient_difference",
            trained_model=trained_model,
            tmp_path=tmp_path / "b",
            forget_texts=forget_texts,
            retain_texts=retain_texts,
            params=params,
            checkpoint_dir=tmp_path / "ckpt",
            checkpoint_every=4,
            progress=die,
        )
    resumed = run(
        "gradient_difference",
        trained_model=trained_model,
        tmp_path=tmp_path / "b",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        params=params,
        checkpoint_dir=tmp_path / "ckpt",
        checkpoint_every=4,
    )
    assert resumed.metrics["resumed_from_step"] == 12
    assert resumed.metrics["forget_loss_before"] == straight.metrics["forget_loss_before"]
    assert resumed.metrics["forget_loss_after"] == pytest.approx(
        straight.metrics["forget_loss_after"], abs=1e-5
    )
    assert resumed.weights_sha256 == straight.weights_sha256


def test_retrain_trains_on_exactly_the_records_without_the_forget_ids(
    trained_model, tmp_path, records, forget_ids, forget_texts, retain_texts, tiny_recipe
):
    result = run(
        "retrain",
        trained_model=trained_model,
        tmp_path=tmp_path,
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        records=records,
        forget_ids=forget_ids,
        params={"measure_losses": True},
    )
    kept = [text for rid, text in records if rid not in set(forget_ids)]
    provenance = json.loads((tmp_path / "retrain" / "lethe_training.json").read_text())
    assert provenance["records"] == len(kept) == len(records) - len(forget_ids)
    assert provenance["data_fingerprint"] == texts_fingerprint(kept)
    assert result.metrics["excluded_records"] == len(forget_ids)
    assert result.metrics["exact_recipe"] is True
    reference = train_causal_lm(texts=kept, recipe=tiny_recipe, output_dir=tmp_path / "reference")
    assert result.weights_sha256 == reference.weights_sha256
    assert TrainingRecipe.load(tmp_path / "retrain") == tiny_recipe
    assert result.metrics["forget_loss_after"] > 2 * result.metrics["forget_loss_before"]
    assert result.metrics["retain_loss_after"] < 2 * result.metrics["retain_loss_before"]


def test_retrain_can_keep_the_source_tokenizer(
    trained_model, tmp_path, records, forget_ids, forget_texts, retain_texts
):
    run(
        "retrain",
        trained_model=trained_model,
        tmp_path=tmp_path,
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        records=records,
        forget_ids=forget_ids,
        params={"retrain_tokenizer": False},
    )
    source = json.loads(open(f"{trained_model}/tokenizer.json", encoding="utf-8").read())
    kept = json.loads((tmp_path / "retrain" / "tokenizer.json").read_text())
    assert source["model"]["vocab"] == kept["model"]["vocab"]


def test_retrain_with_records_needs_forget_ids(trained_model, tmp_path, records, forget_texts, retain_texts):
    with pytest.raises(ValueError, match="forget_ids"):
        run(
            "retrain",
            trained_model=trained_model,
            tmp_path=tmp_path,
            forget_texts=forget_texts,
            retain_texts=retain_texts,
            records=records,
        )


def test_unlearned_model_records_its_parent_and_no_record_text(
    trained_model, tmp_path, forget_texts, retain_texts
):
    result = run(
        "gradient_ascent",
        trained_model=trained_model,
        tmp_path=tmp_path,
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        params={"max_steps": 5},
    )
    content = (tmp_path / "gradient_ascent" / "lethe_unlearning.json").read_text()
    provenance = json.loads(content)
    assert provenance["parent_weights_sha256"] == weights_sha256(trained_model)
    assert provenance["method"] == "gradient_ascent" and provenance["guarantee"] == "statistical"
    assert "alice" not in content.lower()
    assert result.as_dict()["metrics"]["forget_records"] == len(forget_texts)


def test_the_engine_imports_without_django():
    code = (
        "import sys; import unlearning_jobs.engine.methods, unlearning_jobs.engine.models, "
        "unlearning_jobs.engine.training.sisa; print('django' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", APPROXIMATE)
def test_approximate_methods_run_on_cuda(name, trained_model, tmp_path, forget_texts, retain_texts):
    result = run(
        name,
        trained_model=trained_model,
        tmp_path=tmp_path,
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        # No retain-loss bound: in bf16 gradient ascent crosses it by the first measurement and
        # keeps the step-0 weights (seen on an H200), and this test is about running on CUDA.
        params={"learning_rate": 2e-3, "max_steps": 60, "max_retain_loss_increase": None},
        device="cuda",
    )
    assert result.device.startswith("cuda")
    assert result.metrics["forget_loss_after"] > result.metrics["forget_loss_before"]
