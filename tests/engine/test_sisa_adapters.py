"""Exact deletion on fine-tuned models: SISA over LoRA adapters, and re-fine-tuning (retrain)."""

from __future__ import annotations

import pytest
import torch

from unlearning_jobs.engine.checkpoints import file_sha256
from unlearning_jobs.engine.methods import get_method
from unlearning_jobs.engine.methods.base import measure_model_dir, retain_eval_sample
from unlearning_jobs.engine.models import AdapterSisaEnsemble, load_causal_lm
from unlearning_jobs.engine.training.finetune import finetune
from unlearning_jobs.engine.training.sisa import SisaLayout, read_manifest
from unlearning_jobs.engine.training.sisa_adapters import train_sisa_adapters, unlearn_sisa_adapters

from .pretrained import author_ids, make_base, qa_records

PARAMS = {"format": "prompt_answer", "epochs": 2, "batch_size": 4, "learning_rate": 1e-2, "max_length": 64}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base(tmp_path_factory.mktemp("base") / "llama")


@pytest.fixture(scope="module")
def records():
    return qa_records()


@pytest.fixture(scope="module")
def groups(records):
    return {rid: rid.split("-")[0] for rid, _ in records}


@pytest.fixture(scope="module")
def sisa_model(tmp_path_factory, base, records, groups):
    out = tmp_path_factory.mktemp("sisa") / "model"
    result = train_sisa_adapters(
        base_model_dir=base,
        records=records,
        params=PARAMS,
        output_dir=out,
        shards=3,
        slices=2,
        groups=groups,
        device="cpu",
    )
    return out, result


def texts_of(records):
    return [f"{r['question']} {r['answer']}" for _, r in records]


def test_sisa_adapters_train_one_adapter_per_shard_and_aggregate(sisa_model, base):
    out, result = sisa_model
    manifest = read_manifest(out)
    assert manifest["kind"] == "adapters" and manifest["shards"] == 3 and manifest["slices"] == 2
    assert result.shards_trained == (0, 1, 2)
    for name in manifest["shard_dirs"]:
        assert (out / name / "adapter_model.safetensors").is_file()
        assert (out / name / "slices" / "after_00" / "state.pt").is_file()
    layout = SisaLayout.from_dict(manifest["layout"])
    assert {layout.locate()[rid][0] for rid in author_ids(qa_records(), 0)} == {layout.locate()["0-0"][0]}
    model, tokenizer = load_causal_lm(out, device="cpu")
    assert isinstance(model, AdapterSisaEnsemble) and model.n_shards == 3
    ids = tokenizer("What does one know", return_tensors="pt").input_ids
    with torch.no_grad():
        per_shard = torch.stack(
            [torch.log_softmax(shard(input_ids=ids).logits, -1) for shard in model.shards]
        )
        ensemble = model(input_ids=ids).logits
    assert torch.allclose(ensemble, torch.logsumexp(per_shard, 0) - torch.log(torch.tensor(3.0)), atol=1e-5)
    assert not torch.allclose(per_shard[0], per_shard[1], atol=1e-3)
    generated = model.generate(ids, max_new_tokens=3)
    assert generated.shape[1] <= ids.shape[1] + 3
    # The adapters share one base; each keeps its own cache, and decoding equals the uncached one.
    assert torch.equal(generated, model.generate(ids, max_new_tokens=3, use_cache=False))


def test_sisa_unlearning_retrains_only_the_affected_adapter_and_equals_training_without(
    sisa_model, base, records, tmp_path
):
    out, _ = sisa_model
    layout = SisaLayout.from_dict(read_manifest(out)["layout"])
    where = layout.locate()
    # The author's last record stands for a record held back for another erasure, in a slice
    # this run retrains: it is left out too.
    *forget, held = sorted(author_ids(records, 0), key=lambda rid: where[rid][1])
    shard = where[forget[0]][0]
    assert where[held][1] >= min(where[rid][1] for rid in forget)
    unlearned = unlearn_sisa_adapters(
        source_dir=out,
        output_dir=tmp_path / "unlearned",
        records=records,
        forget_ids=forget,
        leave_out_ids=[held],
        device="cpu",
    )
    assert unlearned.shards_trained == (shard,)
    assert unlearned.manifest["unlearning"]["left_out_records"] == 1
    for s in range(3):
        name = f"shard_{s:02d}"
        same = file_sha256(out / name / "adapter_model.safetensors") == file_sha256(
            tmp_path / "unlearned" / name / "adapter_model.safetensors"
        )
        assert same == (s != shard)
    scratch = train_sisa_adapters(
        base_model_dir=base,
        records=[(rid, r) for rid, r in records if rid not in {*forget, held}],
        params=PARAMS,
        output_dir=tmp_path / "scratch",
        layout=layout.without([*forget, held]),
        epochs_per_slice=read_manifest(out)["epochs_per_slice"],
        device="cpu",
    )
    assert scratch.weights_sha256 == unlearned.weights_sha256
    assert unlearned.steps < scratch.steps


def test_sisa_method_on_adapters_reports_the_base_statement(sisa_model, records, tmp_path):
    out, _ = sisa_model
    forget = author_ids(records, 1)
    forget_texts = texts_of([(rid, r) for rid, r in records if rid in set(forget)])
    retain_texts = texts_of([(rid, r) for rid, r in records if rid not in set(forget)])
    result = get_method("sisa").run(
        source_model_dir=out,
        output_dir=tmp_path / "m",
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        full_texts=records,
        forget_ids=forget,
        device="cpu",
        params={"measure_losses": True},
    )
    assert result.guarantee == "exact" and len(result.metrics["shards_retrained"]) == 1
    assert "pretraining data unknown" in result.metrics["base_model"]
    assert result.metrics["retrained_steps"] < result.metrics["full_training_steps"]
    shards = read_manifest(out)["shards"]
    assert (result.metrics["shards_measured_before"], result.metrics["shards_measured_after"]) == (shards, 1)
    measured = measure_model_dir(
        tmp_path / "m",
        forget_texts=forget_texts,
        retain_texts=retain_eval_sample(retain_texts),
        device="cpu",
        dtype=None,
    )
    assert result.metrics["forget_loss_after"] == pytest.approx(measured["forget"], rel=1e-5)
    assert result.metrics["retain_loss_after"] == pytest.approx(measured["retain"], rel=1e-5)


def test_retrain_of_a_lora_fine_tune_equals_fine_tuning_without_the_records(base, records, tmp_path):
    finetune(
        base_model_dir=base,
        records=records,
        params=PARAMS,
        output_dir=tmp_path / "ft",
        data_identity="v1",
        device="cpu",
    )
    forget = author_ids(records, 2)
    keep = [(rid, r) for rid, r in records if rid not in set(forget)]
    expected = finetune(
        base_model_dir=base,
        records=keep,
        params=PARAMS,
        output_dir=tmp_path / "expected",
        data_identity="v1",
        device="cpu",
    )
    result = get_method("retrain").run(
        source_model_dir=tmp_path / "ft",
        output_dir=tmp_path / "retrained",
        forget_texts=texts_of([(rid, r) for rid, r in records if rid in set(forget)]),
        retain_texts=texts_of(keep),
        full_texts=records,
        forget_ids=forget,
        device="cpu",
        params={"measure_losses": True},
    )
    assert result.weights_sha256 == expected.weights_sha256
    assert result.metrics["excluded_records"] == len(forget) and result.metrics["exact_recipe"] is True
    assert result.metrics["forget_loss_after"] > result.metrics["forget_loss_before"]


def test_retrain_refuses_a_different_base(base, records, tmp_path):
    import shutil

    moved = shutil.copytree(base, tmp_path / "base")
    finetune(
        base_model_dir=moved,
        records=records[:8],
        params={**PARAMS, "epochs": 1},
        output_dir=tmp_path / "ft",
        device="cpu",
    )
    other = make_base(tmp_path / "other", seed=5)
    with pytest.raises(ValueError, match="SHA-256 differs"):
        get_method("retrain").run(
            source_model_dir=tmp_path / "ft",
            output_dir=tmp_path / "r",
            forget_texts=["x"],
            retain_texts=["y"],
            full_texts=records[:8],
            forget_ids=["0-0"],
            params={"base_model_dir": str(other)},
            device="cpu",
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_sisa_adapters_train_unlearn_and_decode_on_cuda(base, records, groups, tmp_path):
    params = {**PARAMS, "bf16": True}
    result = train_sisa_adapters(
        base_model_dir=base,
        records=records,
        params=params,
        output_dir=tmp_path / "sisa",
        shards=2,
        groups=groups,
        device="cuda",
    )
    assert result.steps > 0
    forget_ids = author_ids(records, 0)
    unlearned = get_method("sisa").run(
        source_model_dir=tmp_path / "sisa",
        output_dir=tmp_path / "unlearned",
        forget_texts=texts_of([r for r in records if r[0] in forget_ids]),
        retain_texts=texts_of([r for r in records if r[0] not in forget_ids]),
        full_texts=records,
        forget_ids=forget_ids,
        device="cuda",
    )
    assert len(unlearned.metrics["shards_retrained"]) == 1  # author 0 lives in one adapter of two
    model, tokenizer = load_causal_lm(tmp_path / "unlearned", device="cuda")
    assert isinstance(model, AdapterSisaEnsemble)
    ids = tokenizer("What does one know", return_tensors="pt").to("cuda")
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 4
