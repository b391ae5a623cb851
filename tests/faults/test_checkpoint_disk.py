"""A checkpoint written to a full disk fails with ENOSPC and a clear message, never torch's
opaque "enforce fail ... unexpected pos", and leaves the previous state whole.

A real tmpfs of 1 MiB, mounted by the test (root), is the full disk.
"""

from __future__ import annotations

import errno

import pytest

from unlearning_jobs.engine.checkpoints import load_state, save_state

pytestmark = [pytest.mark.faults]


@pytest.fixture
def tiny_disk(small_disk, tmp_path):
    return small_disk(tmp_path / "disk", size="1m")


def _previous_state(disk):
    import torch

    save_state(disk / "state", {"step": 1, "w": torch.ones(4)})
    return disk / "state"


def test_a_state_larger_than_the_free_space_is_refused_before_writing(tiny_disk):
    import torch

    previous = _previous_state(tiny_disk)
    with pytest.raises(OSError) as refused:
        save_state(previous, {"step": 2, "w": torch.zeros(512 * 1024)})  # 2 MiB of tensors
    assert refused.value.errno == errno.ENOSPC
    assert "No space left on device: state needs about 2.0 MiB" in str(refused.value)
    assert load_state(previous)["step"] == 1
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["state"]


def test_a_write_that_fills_the_disk_is_reported_as_a_full_disk(tiny_disk):
    """The tensors fit, the rest of the state does not (a long list pickled beside them): the
    write itself fills the disk, torch raises its RuntimeError, and it is reported as ENOSPC."""
    import torch

    previous = _previous_state(tiny_disk)
    state = {"step": 2, "w": torch.zeros(1024), "notes": ["x" * 64 + str(n) for n in range(40_000)]}
    with pytest.raises(OSError) as failed:
        save_state(previous, state)
    assert failed.value.errno == errno.ENOSPC and isinstance(failed.value.__cause__, RuntimeError)
    assert load_state(previous)["step"] == 1
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["state"]
