"""Import of outside models: Hugging Face directories and the checks that refuse anything else."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from unlearning_jobs.engine.checkpoints import weights_sha256
from unlearning_jobs.engine.importing import import_model, read_import, source_kind, tree_sha256

from .pretrained import make_base


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return make_base(tmp_path_factory.mktemp("hf") / "tiny-qwen2", arch="qwen2")


def test_imports_a_checkpoint_directory_as_a_plain_base(hf_dir, tmp_path):
    result = import_model(hf_dir, tmp_path / "imported")
    out = tmp_path / "imported"
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert (out / "tokenizer.json").is_file()
    assert result.architecture == "Qwen2ForCausalLM" and result.model_type == "qwen2"
    assert result.kind == "base" and result.pretraining_data == "unknown"
    assert result.source_kind == "hf_dir" and result.dtype == "float32"
    source = load_file(hf_dir / "model.safetensors")
    imported = load_file(out / "model.safetensors")
    assert set(source) == set(imported)
    assert all(torch.equal(source[k], imported[k]) for k in source)
    expected = sum(t.numel() for t in source.values())  # tied embeddings are stored once
    assert result.parameters == expected
    assert result.weights_sha256 == weights_sha256(out)
    assert read_import(out)["source_sha256"] == result.source_sha256


def test_directory_hash_is_deterministic_and_sees_content_not_location(hf_dir, tmp_path):
    copy = shutil.copytree(hf_dir, tmp_path / "copy")
    assert tree_sha256(copy) == tree_sha256(hf_dir)
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    assert tree_sha256(copy) != tree_sha256(hf_dir)


def test_refuses_paths_that_are_not_models(hf_dir, tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        source_kind(tmp_path / "absent")
    text = tmp_path / "weights.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="must be a .gguf"):
        source_kind(text)
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"NOPE" + b"\0" * 16)
    with pytest.raises(ValueError, match="not a GGUF file"):
        source_kind(fake)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="needs config.json"):
        source_kind(tmp_path / "empty")
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(hf_dir / "config.json", no_weights / "config.json")
    with pytest.raises(ValueError, match="no weights"):
        import_model(no_weights, tmp_path / "out")


def test_a_corrupt_source_fails_and_leaves_no_model_or_temporary(hf_dir, tmp_path):
    broken = shutil.copytree(hf_dir, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(Exception):  # noqa: B017 - safetensors' own error type for a corrupt file
        import_model(broken, tmp_path / "dest" / "model")
    dest = tmp_path / "dest"
    assert not (dest / "model").exists()
    assert not dest.exists() or not any(p.name.startswith(".tmp-") for p in dest.iterdir())


def test_refuses_to_overwrite_an_existing_model(hf_dir, tmp_path):
    out = tmp_path / "imported"
    import_model(hf_dir, out)
    with pytest.raises(FileExistsError):
        import_model(hf_dir, out)
