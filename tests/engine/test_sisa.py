"""SISA: layout, ensemble inference, and unlearning that retrains only the shards that held the records."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from unlearning_jobs.engine.checkpoints import file_sha256, weights_sha256
from unlearning_jobs.engine.methods import get_method
from unlearning_jobs.engine.methods.base import measure_model_dir, retain_eval_sample
from unlearning_jobs.engine.methods.sisa_losses import score_sisa_dir
from unlearning_jobs.engine.models import SisaEnsemble, load_causal_lm
from unlearning_jobs.engine.training import CheckpointMismatch, TrainingCancelled
from unlearning_jobs.engine.training.sisa import SisaLayout, plan_removal, read_manifest, train_sisa

SHARDS, SLICES = 3, 3


@pytest.fixture(scope="module")
def sisa_model(tmp_path_factory, records, tiny_recipe) -> str:
    output = tmp_path_factory.mktemp("sisa") / "model"
    train_sisa(
        records=records, recipe=tiny_recipe.replace(epochs=6), output_dir=output, shards=SHARDS, slices=SLICES
    )
    return str(output)


@pytest.fixture(scope="module")
def layout(sisa_model) -> SisaLayout:
    return SisaLayout.from_dict(read_manifest(sisa_model)["layout"])


def shard_file(model_dir, shard):
    return file_sha256(f"{model_dir}/shard_{shard:02d}/model.safetensors")


def one_shard_forget_ids(layout, records):
    """Return two ids that both sit in shard 1 (slices 1 and 2), so exactly one shard is affected."""
    return [layout.shards[1][1][0], layout.shards[1][2][0]]


def texts_for(records, ids):
    chosen = set(ids)
    return [t for rid, t in records if rid in chosen], [t for rid, t in records if rid not in chosen]


def test_layout_deals_every_record_to_exactly_one_balanced_place(records):
    layout = SisaLayout.assign([rid for rid, _ in records], shards=5, slices=2, seed=1)
    ids = layout.record_ids()
    assert sorted(ids) == sorted(rid for rid, _ in records)
    sizes = [sum(len(s) for s in shard) for shard in layout.shards]
    assert max(sizes) - min(sizes) <= 1
    assert SisaLayout.assign([rid for rid, _ in records], shards=5, slices=2, seed=1) == layout
    assert SisaLayout.from_dict(json.loads(json.dumps(layout.as_dict()))) == layout


def test_layout_without_ids_keeps_everyone_else_in_place(layout):
    gone = layout.shards[0][0][0]
    smaller = layout.without([gone])
    assert gone not in smaller.record_ids()
    where, now = layout.locate(), smaller.locate()
    assert all(now[rid] == where[rid] for rid in now)


def test_manifest_records_the_layout_and_shard_directories_load_alone(sisa_model, records):
    manifest = read_manifest(sisa_model)
    assert manifest["shards"] == SHARDS and manifest["slices"] == SLICES
    assert manifest["records"] == len(records)
    model = AutoModelForCausalLM.from_pretrained(f"{sisa_model}/shard_02", local_files_only=True)
    assert model.config.n_layer == 1


def test_ensemble_logits_are_the_log_of_the_mean_shard_probability(sisa_model):
    ensemble, tokenizer = load_causal_lm(sisa_model, device="cpu")
    assert isinstance(ensemble, SisaEnsemble) and ensemble.n_shards == SHARDS
    ids = tokenizer(["Ticket 3: contact", "Ticket 12: contact Bruno"], return_tensors="pt", padding=True)
    labels = ids.input_ids.masked_fill(ids.attention_mask == 0, -100)
    with torch.no_grad():
        out = ensemble(ids.input_ids, attention_mask=ids.attention_mask, labels=labels)
        probs = torch.stack(
            [
                torch.softmax(s(input_ids=ids.input_ids, attention_mask=ids.attention_mask).logits, -1)
                for s in ensemble.shards
            ]
        ).mean(0)
    real = ids.attention_mask.bool()  # padded positions carry no meaning
    torch.testing.assert_close(out.logits.exp()[real], probs[real], atol=1e-5, rtol=1e-4)
    mask = labels[:, 1:] != -100
    picked = out.logits[:, :-1].gather(-1, ids.input_ids[:, 1:, None]).squeeze(-1)
    assert float(out.loss) == pytest.approx(float(-(picked[mask]).mean()), rel=1e-5)


def test_ensemble_generates_greedily_like_a_causal_lm(sisa_model):
    ensemble, tokenizer = load_causal_lm(sisa_model, device="cpu")
    ids = tokenizer("Ticket 3: contact", return_tensors="pt").input_ids
    out = ensemble.generate(
        input_ids=ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    assert out.shape[0] == 1 and 1 <= out.shape[1] - ids.shape[1] <= 5
    assert torch.equal(out[:, : ids.shape[1]], ids)
    first = ensemble(ids).logits[0, -1].argmax()
    assert int(out[0, ids.shape[1]]) == int(first)


def test_cached_decoding_equals_decoding_the_whole_sequence_again(sisa_model):
    """Each shard's key/value cache changes the cost of a token, never which token is chosen."""
    ensemble, tokenizer = load_causal_lm(sisa_model, device="cpu")
    tokenizer.padding_side = "left"
    batch = tokenizer(["Ticket 3: contact", "Refund for order 12 was"], return_tensors="pt", padding=True)
    arguments = dict(max_new_tokens=8, pad_token_id=tokenizer.pad_token_id, eos_token_id=None)
    cached = ensemble.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask, **arguments)
    again = ensemble.generate(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False, **arguments
    )
    assert cached.shape == (2, batch.input_ids.shape[1] + 8)
    assert torch.equal(cached, again)


def test_unlearning_retrains_only_the_shard_that_held_the_records(sisa_model, layout, records, tmp_path):
    forget_ids = one_shard_forget_ids(layout, records)
    forget_texts, retain_texts = texts_for(records, forget_ids)
    result = get_method("sisa").run(
        source_model_dir=sisa_model,
        output_dir=tmp_path / "out",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        full_texts=records,
        forget_ids=forget_ids,
        params={"measure_losses": True},
    )
    assert result.metrics["shards_retrained"] == [1]
    assert result.metrics["first_affected_slice"] == {"1": 1}
    assert shard_file(tmp_path / "out", 0) == shard_file(sisa_model, 0)
    assert shard_file(tmp_path / "out", 2) == shard_file(sisa_model, 2)
    assert shard_file(tmp_path / "out", 1) != shard_file(sisa_model, 1)
    assert 0 < result.metrics["steps_ratio"] < 1 / SHARDS
    manifest = read_manifest(tmp_path / "out")
    remaining = SisaLayout.from_dict(manifest["layout"]).record_ids()
    assert not set(forget_ids) & set(remaining)
    assert len(remaining) == len(records) - 2
    assert manifest["parent_weights_sha256"] == weights_sha256(sisa_model)
    assert result.weights_sha256 == weights_sha256(tmp_path / "out")
    # Only the retrained shard was measured again; the losses are still the whole ensemble's.
    assert (result.metrics["shards_measured_before"], result.metrics["shards_measured_after"]) == (SHARDS, 1)
    retain_sample = retain_eval_sample(retain_texts)
    measured = measure_model_dir(
        tmp_path / "out", forget_texts=forget_texts, retain_texts=retain_sample, device="cpu", dtype=None
    )
    assert result.metrics["forget_loss_after"] == pytest.approx(measured["forget"], rel=1e-5)
    assert result.metrics["retain_loss_after"] == pytest.approx(measured["retain"], rel=1e-5)
    assert result.metrics["forget_loss_after"] != pytest.approx(
        result.metrics["forget_loss_before"], rel=1e-3
    )


def test_shard_scores_give_the_loaded_ensembles_loss(sisa_model, records):
    forget_texts = [t for _, t in records[:6]]
    retain_texts = [t for _, t in records[6:30]]
    scores = score_sisa_dir(
        sisa_model, forget_texts=forget_texts, retain_texts=retain_texts, device="cpu", dtype=None
    )
    assert scores.shards_run == SHARDS
    measured = measure_model_dir(
        sisa_model, forget_texts=forget_texts, retain_texts=retain_texts, device="cpu", dtype=None
    )
    assert scores.losses() == pytest.approx(measured, rel=1e-5)


def test_shard_scores_refuse_to_carry_over_a_shard_never_measured(sisa_model, records):
    texts = [t for _, t in records[:4]]
    with pytest.raises(ValueError, match=r"unchanged shards \[0, 2\]"):
        score_sisa_dir(
            sisa_model,
            forget_texts=texts,
            retain_texts=texts,
            device="cpu",
            dtype=None,
            only_shards=[1],
            unchanged={},
        )


def test_sisa_unlearning_equals_retraining_the_whole_ensemble_without_the_records(
    sisa_model, layout, records, tmp_path
):
    forget_ids = [layout.shards[0][0][0], layout.shards[2][2][-1]]
    forget_texts, retain_texts = texts_for(records, forget_ids)
    unlearned = get_method("sisa").run(
        source_model_dir=sisa_model,
        output_dir=tmp_path / "sisa",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        full_texts=records,
        forget_ids=forget_ids,
    )
    retrained = get_method("retrain").run(
        source_model_dir=sisa_model,
        output_dir=tmp_path / "retrain",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        full_texts=records,
        forget_ids=forget_ids,
        params={"retrain_tokenizer": False},
    )
    assert unlearned.metrics["shards_retrained"] == [0, 2]
    assert retrained.metrics["shards_retrained"] == [0, 1, 2]
    assert unlearned.weights_sha256 == retrained.weights_sha256
    assert unlearned.steps < retrained.steps


def test_removal_retrains_each_shard_from_its_first_affected_slice(layout):
    ids = [layout.shards[1][2][0], layout.shards[1][0][0], "not-in-model"]
    removal = plan_removal(layout, ids)
    assert removal.affected == {1: 0}
    assert removal.layout == layout.without(ids) and removal.left_out == frozenset()


def test_removal_leaves_out_records_held_back_for_others_only_where_it_retrains(layout):
    forget = [layout.shards[1][1][0]]
    retrained = [layout.shards[1][1][1], layout.shards[1][2][0]]
    kept = [layout.shards[1][0][0], layout.shards[0][2][0]]  # an earlier slice, a shard not retrained
    removal = plan_removal(layout, forget, [*retrained, *kept, *forget, "not-in-model"])
    assert removal.affected == {1: 1}
    assert removal.left_out == frozenset(retrained)
    remaining = set(removal.layout.record_ids())
    assert set(kept) <= remaining and not remaining & {*retrained, *forget}


def test_sisa_leaves_out_what_is_held_back_for_others_in_the_slices_it_retrains_and_stays_exact(
    sisa_model, layout, records, tmp_path
):
    """The kept states were trained on a held-back record of an earlier slice, so it stays; one in a
    retrained slice is not trained again; the result is the from-scratch ensemble on what is left."""
    forget_ids = [layout.shards[1][1][0]]
    left_out = [layout.shards[1][1][1], layout.shards[1][2][0]]
    kept = [layout.shards[1][0][0], layout.shards[0][2][0]]
    forget_texts, retain_texts = texts_for(records, forget_ids)
    unlearned = get_method("sisa").run(
        source_model_dir=sisa_model,
        output_dir=tmp_path / "sisa",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        full_texts=records,
        forget_ids=forget_ids,
        leave_out_ids=[*left_out, *kept],
    )
    assert unlearned.metrics["left_out_records"] == 2 and unlearned.metrics["shards_retrained"] == [1]
    manifest = read_manifest(tmp_path / "sisa")
    remaining = set(SisaLayout.from_dict(manifest["layout"]).record_ids())
    assert set(kept) <= remaining and not remaining & {*left_out, *forget_ids}
    assert manifest["unlearning"]["left_out_records"] == 2
    assert shard_file(tmp_path / "sisa", 0) == shard_file(sisa_model, 0)
    retrained = get_method("retrain").run(
        source_model_dir=sisa_model,
        output_dir=tmp_path / "retrain",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        full_texts=records,
        forget_ids=[*forget_ids, *left_out],
        params={"retrain_tokenizer": False},
    )
    assert unlearned.weights_sha256 == retrained.weights_sha256
    # A retrain trains every shard again, so it leaves out every one of them.
    everything = get_method("retrain").run(
        source_model_dir=sisa_model,
        output_dir=tmp_path / "retrain-all",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        full_texts=records,
        forget_ids=forget_ids,
        leave_out_ids=[*left_out, *kept],
        params={"retrain_tokenizer": False},
    )
    assert everything.metrics["left_out_records"] == 4
    remaining = set(SisaLayout.from_dict(read_manifest(tmp_path / "retrain-all")["layout"]).record_ids())
    assert not remaining & {*left_out, *kept, *forget_ids}


def test_sisa_refuses_texts_that_differ_from_what_the_shards_were_trained_on(
    sisa_model, layout, records, tmp_path
):
    forget_ids = [layout.shards[1][2][0]]
    changed_id = layout.shards[1][0][0]
    changed = [(rid, text + " edited" if rid == changed_id else text) for rid, text in records]
    forget_texts, retain_texts = texts_for(records, forget_ids)
    with pytest.raises(ValueError, match="other records|another recipe"):
        get_method("sisa").run(
            source_model_dir=sisa_model,
            output_dir=tmp_path / "out",
            forget_texts=forget_texts,
            retain_texts=retain_texts,
            full_texts=changed,
            forget_ids=forget_ids,
        )
    assert not (tmp_path / "out").exists()


def test_sisa_needs_a_sisa_model_and_approximate_methods_refuse_one(
    sisa_model, trained_model, records, tmp_path
):
    with pytest.raises(ValueError, match="not a SISA model"):
        get_method("sisa").run(
            source_model_dir=trained_model,
            output_dir=tmp_path / "a",
            forget_texts=["x"],
            retain_texts=["y"],
            full_texts=records,
            forget_ids=["R000"],
        )
    with pytest.raises(ValueError, match="SISA ensemble"):
        get_method("gradient_ascent").run(
            source_model_dir=sisa_model, output_dir=tmp_path / "b", forget_texts=["x"], retain_texts=["y"]
        )


def test_sisa_training_resumes_after_cancel_to_the_same_ensemble(sisa_model, records, tiny_recipe, tmp_path):
    calls = {"n": 0}

    def stop_midway():
        calls["n"] += 1
        return calls["n"] > 40

    with pytest.raises(TrainingCancelled):
        train_sisa(
            records=records,
            recipe=tiny_recipe.replace(epochs=6),
            output_dir=tmp_path / "m",
            shards=SHARDS,
            slices=SLICES,
            checkpoint_dir=tmp_path / "ckpt",
            should_stop=stop_midway,
        )
    assert not (tmp_path / "m").exists()
    result = train_sisa(
        records=records,
        recipe=tiny_recipe.replace(epochs=6),
        output_dir=tmp_path / "m",
        shards=SHARDS,
        slices=SLICES,
        checkpoint_dir=tmp_path / "ckpt",
    )
    assert result.steps < result.full_training_steps
    assert result.weights_sha256 == weights_sha256(sisa_model)


def test_a_resumed_training_refuses_a_finished_shard_trained_on_other_records(records, tiny_recipe, tmp_path):
    """Stopped as soon as shard 0 is finished (shard 1 has no slice state yet), then resumed on
    data where one of shard 0's records changed: the finished shard is not passed off as trained
    on it."""
    work_shard = tmp_path / "ckpt" / "sisa-work" / "shard_00" / "lethe_shard.json"
    common = dict(
        recipe=tiny_recipe.replace(epochs=6), shards=SHARDS, slices=SLICES, checkpoint_dir=tmp_path / "ckpt"
    )
    with pytest.raises(TrainingCancelled):
        train_sisa(records=records, output_dir=tmp_path / "m", should_stop=work_shard.is_file, **common)
    assert work_shard.is_file() and not (work_shard.parent.parent / "shard_01" / "slices").exists()
    # The layout train_sisa assigns is a function of the ids and the seed.
    layout = SisaLayout.assign(
        [rid for rid, _ in records], shards=SHARDS, slices=SLICES, seed=tiny_recipe.seed
    )
    changed_id = layout.shards[0][1][0]
    changed = [(rid, text + " edited" if rid == changed_id else text) for rid, text in records]
    with pytest.raises(CheckpointMismatch, match="finished shard"):
        train_sisa(records=changed, output_dir=tmp_path / "m", **common)
    assert not (tmp_path / "m").exists()


def test_a_resumed_removal_refuses_a_work_directory_prepared_for_another(
    sisa_model, layout, records, tmp_path
):
    """An interrupted SISA run resumed after another record was held back for someone else's
    erasure would finish shards trained on it: it refuses instead (and a job starts over)."""
    forget_ids = [layout.shards[1][0][0]]
    forget_texts, retain_texts = texts_for(records, forget_ids)
    common = dict(
        source_model_dir=sisa_model,
        output_dir=tmp_path / "out",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        full_texts=records,
        forget_ids=forget_ids,
        checkpoint_dir=tmp_path / "ckpt",
    )
    calls = {"n": 0}

    def stop_midway():
        calls["n"] += 1
        return calls["n"] > 5

    with pytest.raises(TrainingCancelled):
        get_method("sisa").run(should_stop=stop_midway, **common)
    with pytest.raises(CheckpointMismatch, match="prepared for another removal"):
        get_method("sisa").run(leave_out_ids=[layout.shards[1][2][0]], **common)
    resumed = get_method("sisa").run(**common)  # the same plan resumes
    assert resumed.metrics["shards_retrained"] == [1]


def test_sisa_ensemble_loss_is_finite_on_records(sisa_model, records):
    ensemble, tokenizer = load_causal_lm(sisa_model, device="cpu")
    ids = tokenizer(records[0][1], return_tensors="pt").input_ids
    with torch.no_grad():
        assert math.isfinite(float(ensemble(ids, labels=ids).loss))


def test_grouped_layout_keeps_a_persons_records_in_one_shard(records, forget_ids):
    ids = [rid for rid, _ in records]
    plain = SisaLayout.assign(ids, shards=SHARDS, slices=SLICES, seed=3)
    grouped = SisaLayout.assign(
        ids, shards=SHARDS, slices=SLICES, seed=3, groups={rid: "alice" for rid in forget_ids}
    )
    assert len(plan_removal(plain, forget_ids).affected) == SHARDS
    assert len(plan_removal(grouped, forget_ids).affected) == 1
    assert sorted(grouped.record_ids()) == sorted(ids)
    assert SisaLayout.assign(ids, shards=SHARDS, slices=SLICES, seed=3, groups={}) == plain


def test_exact_methods_can_leave_the_loss_check_to_verification(sisa_model, layout, records, tmp_path):
    forget_ids = one_shard_forget_ids(layout, records)
    forget_texts, retain_texts = texts_for(records, forget_ids)
    common = dict(
        forget_texts=forget_texts, retain_texts=retain_texts, full_texts=records, forget_ids=forget_ids
    )
    runs = {
        (name, measured): get_method(name).run(
            source_model_dir=sisa_model,
            output_dir=tmp_path / f"{name}-{measured}",
            params={
                "measure_losses": measured,
                **({"retrain_tokenizer": False} if name == "retrain" else {}),
            },
            **common,
        )
        for name in ("sisa", "retrain")
        for measured in (True, False)
    }
    for name in ("sisa", "retrain"):
        measured, unmeasured = runs[(name, True)], runs[(name, False)]
        assert measured.metrics["losses_measured"] is True and "forget_loss_after" in measured.metrics
        assert unmeasured.metrics["losses_measured"] is False
        assert not {"forget_loss_before", "forget_loss_after", "retain_loss_before"} & set(unmeasured.metrics)
        assert unmeasured.weights_sha256 == measured.weights_sha256
