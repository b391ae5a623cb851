"""Training from scratch: tokenizer, recipe validation, determinism, cancellation and resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from unlearning_jobs.engine.checkpoints import latest_checkpoint, list_checkpoints, weights_sha256
from unlearning_jobs.engine.training import (
    CheckpointMismatch,
    TrainingCancelled,
    TrainingRecipe,
    train_byte_bpe_tokenizer,
    train_causal_lm,
)
from unlearning_jobs.engine.training.data import encode_texts


class WorkerDied(Exception):
    """Stands in for a SIGKILL: training stops without any chance to clean up."""


def texts_of(records):
    return [text for _, text in records]


def test_tokenizer_encodes_any_text_and_has_distinct_eos_and_pad(records):
    tokenizer = train_byte_bpe_tokenizer(texts=texts_of(records), vocab_size=300)
    text = "Ünïcode ☃ and contact alice.smith@mail.test"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == text
    assert tokenizer.eos_token_id is not None and tokenizer.pad_token_id is not None
    assert tokenizer.eos_token_id != tokenizer.pad_token_id
    assert len(tokenizer) == 300


def test_tokenizer_training_is_deterministic(records):
    first = train_byte_bpe_tokenizer(texts=texts_of(records), vocab_size=300)
    second = train_byte_bpe_tokenizer(texts=texts_of(records), vocab_size=300)
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()


def test_each_record_is_one_example_ending_in_eos_and_cut_to_block_size(records):
    tokenizer = train_byte_bpe_tokenizer(texts=texts_of(records), vocab_size=300)
    examples = encode_texts(tokenizer, ["short", "x " * 100], block_size=16)
    assert examples[0][-1] == tokenizer.eos_token_id
    assert len(examples[1]) == 16


def test_recipe_round_trips_through_a_dict():
    recipe = TrainingRecipe(n_layer=3, learning_rate=1e-3, lr_schedule="linear")
    assert TrainingRecipe.from_dict(json.loads(json.dumps(recipe.as_dict()))) == recipe


def test_recipe_rejects_unknown_fields_by_name():
    with pytest.raises(ValueError, match="unknown field.*n_layers"):
        TrainingRecipe.from_dict({"n_layers": 2})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"n_head": 3}, "n_head"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"vocab_size": 100}, "vocab_size"),
        ({"epochs": 0}, "epochs"),
        ({"lr_schedule": "exponential"}, "lr_schedule"),
        ({"batch_size": "8"}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"learning_rate": float("nan")}, "learning_rate"),
    ],
)
def test_recipe_rejects_bad_values_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"TrainingRecipe\.{field}"):
        TrainingRecipe.from_dict(changes)


def test_trained_model_loads_offline_with_auto_classes(trained_model, tiny_recipe):
    model = AutoModelForCausalLM.from_pretrained(trained_model, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(trained_model)
    assert model.config.n_layer == tiny_recipe.n_layer
    assert tokenizer.eos_token_id == model.config.eos_token_id
    assert TrainingRecipe.load(trained_model) == tiny_recipe


def test_training_lowers_the_loss(records, tiny_recipe, tmp_path):
    result = train_causal_lm(texts=texts_of(records), recipe=tiny_recipe, output_dir=tmp_path / "m")
    assert result.epoch_losses[-1] < result.epoch_losses[0] * 0.5
    assert result.steps == result.total_steps == 6 * tiny_recipe.epochs


def test_same_seed_gives_identical_weights_and_another_seed_does_not(
    records, tiny_recipe, tmp_path, trained_model
):
    again = train_causal_lm(texts=texts_of(records), recipe=tiny_recipe, output_dir=tmp_path / "again")
    other = train_causal_lm(
        texts=texts_of(records), recipe=tiny_recipe.replace(seed=4), output_dir=tmp_path / "other"
    )
    assert again.weights_sha256 == weights_sha256(trained_model)
    assert other.weights_sha256 != again.weights_sha256


def test_progress_is_reported_after_every_step(records, tiny_recipe, tmp_path):
    seen = []
    recipe = tiny_recipe.replace(epochs=2)
    train_causal_lm(
        texts=texts_of(records),
        recipe=recipe,
        output_dir=tmp_path / "m",
        progress=lambda step, total: seen.append((step, total)),
    )
    assert seen == [(step, 12) for step in range(1, 13)]


def test_should_stop_raises_cancelled_and_leaves_no_model(records, tiny_recipe, tmp_path):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(TrainingCancelled) as caught:
        train_causal_lm(
            texts=texts_of(records),
            recipe=tiny_recipe,
            output_dir=tmp_path / "m",
            should_stop=should_stop,
            checkpoint_dir=tmp_path / "ckpt",
        )
    assert caught.value.step == 5
    assert caught.value.checkpoint is not None
    assert not (tmp_path / "m").exists()
    assert list_checkpoints(tmp_path / "ckpt")[-1][0] == 5


def _die_at(step_to_die: int):
    def progress(step, total):
        if step == step_to_die:
            raise WorkerDied()

    return progress


def test_resume_after_a_crash_ends_with_the_weights_of_an_uninterrupted_run(records, tmp_path):
    recipe = TrainingRecipe(
        n_layer=1,
        n_embd=32,
        n_head=2,
        block_size=48,
        vocab_size=300,
        batch_size=8,
        epochs=4,
        learning_rate=1e-2,
        warmup_steps=3,
        dropout=0.1,
        seed=11,
    )
    texts = texts_of(records)
    reference = train_causal_lm(texts=texts, recipe=recipe, output_dir=tmp_path / "straight")
    with pytest.raises(WorkerDied):
        train_causal_lm(
            texts=texts,
            recipe=recipe,
            output_dir=tmp_path / "resumed",
            checkpoint_dir=tmp_path / "ckpt",
            checkpoint_every=5,
            progress=_die_at(13),
        )
    assert latest_checkpoint(tmp_path / "ckpt").name == "step-00000010"
    steps_seen = []
    resumed = train_causal_lm(
        texts=texts,
        recipe=recipe,
        output_dir=tmp_path / "resumed",
        checkpoint_dir=tmp_path / "ckpt",
        checkpoint_every=5,
        progress=lambda step, total: steps_seen.append(step),
    )
    assert resumed.resumed_from_step == 10
    assert steps_seen[0] == 11 and steps_seen[-1] == reference.total_steps
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    again = load_file(tmp_path / "resumed" / "model.safetensors")
    for name, tensor in straight.items():
        torch.testing.assert_close(again[name], tensor, rtol=0, atol=1e-6)
    assert resumed.epoch_losses == pytest.approx(reference.epoch_losses, abs=1e-6)


def test_resume_after_cancel_matches_an_uninterrupted_run(records, tiny_recipe, tmp_path, trained_model):
    texts = texts_of(records)
    budget = iter([False] * 30 + [True])
    with pytest.raises(TrainingCancelled):
        train_causal_lm(
            texts=texts,
            recipe=tiny_recipe,
            output_dir=tmp_path / "m",
            checkpoint_dir=tmp_path / "ckpt",
            checkpoint_every=1000,
            should_stop=lambda: next(budget),
        )
    resumed = train_causal_lm(
        texts=texts, recipe=tiny_recipe, output_dir=tmp_path / "m", checkpoint_dir=tmp_path / "ckpt"
    )
    assert resumed.resumed_from_step == 30
    assert resumed.weights_sha256 == weights_sha256(trained_model)


def test_a_checkpoint_of_other_data_is_refused(records, tiny_recipe, tmp_path):
    with pytest.raises(WorkerDied):
        train_causal_lm(
            texts=texts_of(records),
            recipe=tiny_recipe,
            output_dir=tmp_path / "m",
            checkpoint_dir=tmp_path / "ckpt",
            checkpoint_every=2,
            progress=_die_at(3),
        )
    with pytest.raises(CheckpointMismatch):
        train_causal_lm(
            texts=texts_of(records)[1:],
            recipe=tiny_recipe,
            output_dir=tmp_path / "m",
            checkpoint_dir=tmp_path / "ckpt",
        )


def test_refuses_to_overwrite_a_model_directory(records, tiny_recipe, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.safetensors").write_bytes(b"registered model")
    with pytest.raises(FileExistsError):
        train_causal_lm(texts=texts_of(records), recipe=tiny_recipe, output_dir=tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == b"registered model"


def test_empty_training_set_is_refused(tiny_recipe, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        train_causal_lm(texts=[], recipe=tiny_recipe, output_dir=tmp_path / "m")


def test_provenance_names_no_record_text(trained_model, records):
    for name in ("lethe_training.json", "lethe_recipe.json"):
        content = open(f"{trained_model}/{name}", encoding="utf-8").read()
        assert "alice" not in content.lower()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_with_bf16_autocast_learns(records, tiny_recipe, tmp_path):
    result = train_causal_lm(
        texts=texts_of(records), recipe=tiny_recipe, output_dir=tmp_path / "m", device="cuda"
    )
    assert result.device.startswith("cuda")
    assert result.epoch_losses[-1] < result.epoch_losses[0] * 0.5
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert next(model.parameters()).dtype == torch.float32
