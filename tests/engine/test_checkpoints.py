"""Weight checksums and atomic checkpoints: a kill mid-write never leaves one a resume would trust."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

from unlearning_jobs.engine.checkpoints import (
    atomic_directory,
    latest_checkpoint,
    list_checkpoints,
    load_state,
    save_checkpoint,
    weight_files,
    weights_sha256,
)


def test_weights_sha256_of_a_model_equals_sha256sum_of_its_weight_file(trained_model):
    with open(os.path.join(trained_model, "model.safetensors"), "rb") as handle:
        expected = hashlib.sha256(handle.read()).hexdigest()
    assert weights_sha256(trained_model) == expected


def test_weights_sha256_of_a_sisa_dir_reads_shards_in_path_order_and_ignores_other_files(tmp_path):
    for name, content in [("shard_01", b"second"), ("shard_00", b"first"), ("shard_10", b"third")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(content)
        (tmp_path / name / "config.json").write_text("{}")
        (tmp_path / name / "slices").mkdir()
        (tmp_path / name / "slices" / "state.pt").write_bytes(b"not weights")
    (tmp_path / ".tmp-shard_02-abc").mkdir()
    (tmp_path / ".tmp-shard_02-abc" / "model.safetensors").write_bytes(b"half written")
    assert [p.parent.name for p in weight_files(tmp_path)] == ["shard_00", "shard_01", "shard_10"]
    assert weights_sha256(tmp_path) == hashlib.sha256(b"firstsecondthird").hexdigest()


def test_weights_sha256_without_weights_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        weights_sha256(tmp_path)


def test_atomic_directory_leaves_nothing_behind_when_the_write_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "out") as tmp:
            (tmp / "model.safetensors").write_bytes(b"partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_replaces_only_when_asked(tmp_path):
    with atomic_directory(tmp_path / "out") as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(FileExistsError):
        with atomic_directory(tmp_path / "out") as tmp:
            (tmp / "a").write_text("2")
    with atomic_directory(tmp_path / "out", overwrite=True) as tmp:
        (tmp / "a").write_text("3")
    assert (tmp_path / "out" / "a").read_text() == "3"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_write_killed_midway_is_ignored_by_resume_and_cleaned_by_the_next_save(tmp_path):
    save_checkpoint(tmp_path, step=10, state={"step": 10, "w": torch.ones(2)})
    # What a SIGKILL during the step-20 save leaves: a temporary directory with a torn file.
    torn = tmp_path / ".tmp-step-00000020-deadbeef"
    torn.mkdir()
    (torn / "state.pt").write_bytes(b"\x80\x02torn")
    assert latest_checkpoint(tmp_path).name == "step-00000010"
    assert load_state(latest_checkpoint(tmp_path))["step"] == 10
    save_checkpoint(tmp_path, step=30, state={"step": 30})
    assert not torn.exists()


def test_save_checkpoint_keeps_the_newest_ones(tmp_path):
    for step in (5, 10, 15, 20):
        save_checkpoint(tmp_path, step=step, state={"step": step}, keep=2)
    assert [step for step, _ in list_checkpoints(tmp_path)] == [15, 20]


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_loading_a_checkpoint_never_runs_pickled_code(tmp_path):
    path = tmp_path / "step-00000001"
    path.mkdir()
    torch.save({"step": 1, "evil": _Payload()}, path / "state.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_state(path)
