"""Checksum model weights and write training checkpoints so that a kill never corrupts one.

Every directory the engine produces (a model version, a training checkpoint, a SISA slice
state) is first written under a temporary name beside its final place and then renamed, which
is atomic on one file system: a worker killed mid-write leaves a stray ``.tmp-*`` directory that
the next save removes, never a half-written checkpoint that a resume would trust.

Checkpoints hold only tensors, numbers, strings, lists and dicts and are read back with
``torch.load(weights_only=True)``, so loading one cannot run code.

A full disk is reported as what it is: ``OSError(ENOSPC)`` naming the path, the size needed and
the space free. ``torch.save`` itself reports a failed write as an opaque ``RuntimeError``
("enforce fail at inline_container.cc ... unexpected pos"), so the space is checked before the
write and the failure is diagnosed after it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

#: File names Hugging Face uses for weights, single-file and sharded, safetensors and pickle, and
#: peft's adapter weights.
WEIGHT_FILE_PATTERNS = (
    re.compile(r"^model\.safetensors$"),
    re.compile(r"^model-\d+-of-\d+\.safetensors$"),
    re.compile(r"^pytorch_model\.bin$"),
    re.compile(r"^pytorch_model-\d+-of-\d+\.bin$"),
    # A LoRA adapter directory (peft): its weights are the adapter's.
    re.compile(r"^adapter_model\.safetensors$"),
)
CHECKPOINT_PREFIX = "step-"
STATE_FILE = "state.pt"
_TMP_PREFIX = ".tmp-"
_CHECKPOINT_RE = re.compile(r"^step-(\d{8,})$")
_CHUNK = 1 << 20
#: Below this many free bytes after a failed write, the write failed because the disk was full.
_FULL_DISK_BYTES = 1 << 20

logger = logging.getLogger(__name__)


def weight_files(model_dir: str | os.PathLike) -> list[Path]:
    """Return the weight files under ``model_dir`` in the order their checksum reads them.

    The order is the relative POSIX path, sorted, so a SISA directory (``shard_00/…``,
    ``shard_01/…``) and a plain model directory are both covered the same way. Directories whose
    name starts with ``.`` (temporary writes) are skipped.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"model directory not found: {root}")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if any(p.match(name) for p in WEIGHT_FILE_PATTERNS):
                found.append(Path(dirpath) / name)
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    return found


def weights_sha256(model_dir: str | os.PathLike) -> str:
    """Return the SHA-256 of the model's weight files read one after another in sorted order.

    For a single-file model this is exactly ``sha256sum model.safetensors``, so an auditor can
    check it with ordinary tools; for a SISA directory it equals
    ``cat shard_00/model.safetensors shard_01/model.safetensors … | sha256sum``.
    """
    files = weight_files(model_dir)
    if not files:
        raise FileNotFoundError(f"no weight files (model.safetensors, pytorch_model.bin) in {model_dir}")
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """Return the SHA-256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry so a rename survives a power loss, where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems refuse fsync on directories; the rename is still atomic there.
        logger.debug("engine.checkpoints.dir_fsync_refused", extra={"path": str(path), "errno": exc.errno})
    finally:
        os.close(fd)


def remove_stale_temporaries(parent: str | os.PathLike) -> None:
    """Delete ``.tmp-*`` directories a killed writer left in ``parent``."""
    parent = Path(parent)
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        if entry.name.startswith(_TMP_PREFIX) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final_dir: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``final_dir`` only if the block finishes.

    Write everything into the yielded path; on normal exit its files are flushed and it is
    renamed to ``final_dir``. On an exception it is removed and ``final_dir`` is untouched.
    ``final_dir`` must not exist (or be an empty directory) unless ``overwrite`` is set, in which
    case the old directory is swapped out and deleted after the new one is in place.
    """
    final = Path(final_dir)
    if final.exists() and not overwrite:
        if not final.is_dir() or any(final.iterdir()):
            raise FileExistsError(f"refusing to overwrite non-empty {final}; pass overwrite=True")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{_TMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        for dirpath, _dirnames, filenames in os.walk(tmp):
            for name in filenames:
                with open(Path(dirpath) / name, "rb") as handle:
                    os.fsync(handle.fileno())
        if final.exists():
            old = final.parent / f"{_TMP_PREFIX}{final.name}-old-{uuid.uuid4().hex[:8]}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _tensor_bytes(value) -> int:
    """Return the bytes of the tensors in a state (nested dicts, lists, tuples): about its size on disk."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(item) for item in value)
    return 0


def _free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def _no_space(path: Path, *, needed: int, free: int) -> OSError:
    mib = 1 << 20
    return OSError(
        errno.ENOSPC,
        f"No space left on device: {path.name} needs about {needed / mib:.1f} MiB, "
        f"{free / mib:.1f} MiB free in {path.parent}",
    )


def save_state(path: str | os.PathLike, state: dict, *, overwrite: bool = True) -> Path:
    """Write a state dict (tensors, numbers, strings, lists, dicts) atomically as ``path/state.pt``.

    Raises ``OSError(ENOSPC)`` when the file system has no room for it, before writing when the
    tensors alone do not fit, or after a write that filled the disk; either way the previous
    state at ``path`` is untouched and the partial write is removed.
    """
    import torch

    path = Path(path)
    with atomic_directory(path, overwrite=overwrite) as tmp:
        needed = _tensor_bytes(state)
        free = _free_bytes(tmp)
        if needed > free:
            raise _no_space(path, needed=needed, free=free)
        try:
            torch.save(state, tmp / STATE_FILE)
        except RuntimeError as error:
            free = _free_bytes(tmp)
            if free < _FULL_DISK_BYTES:
                raise _no_space(path, needed=needed, free=free) from error
            raise
    return path


def load_state(path: str | os.PathLike, *, map_location="cpu") -> dict:
    """Read a state written by :func:`save_state` without executing pickled code."""
    import torch

    return torch.load(Path(path) / STATE_FILE, map_location=map_location, weights_only=True)


def checkpoint_path(checkpoint_dir: str | os.PathLike, step: int) -> Path:
    """Return where the checkpoint for ``step`` lives (``step-00000120``), sortable by name."""
    return Path(checkpoint_dir) / f"{CHECKPOINT_PREFIX}{step:08d}"


def list_checkpoints(checkpoint_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Return ``(step, path)`` of the complete checkpoints in ``checkpoint_dir``, oldest first."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _CHECKPOINT_RE.match(entry.name)
        if match and (entry / STATE_FILE).is_file():
            found.append((int(match.group(1)), entry))
    found.sort()
    return found


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    """Return the newest complete checkpoint in ``checkpoint_dir``, or ``None`` when there is none."""
    found = list_checkpoints(checkpoint_dir)
    return found[-1][1] if found else None


def save_checkpoint(checkpoint_dir: str | os.PathLike, *, step: int, state: dict, keep: int = 2) -> Path:
    """Write the training state for ``step`` atomically and keep only the ``keep`` newest.

    Older checkpoints are pruned after the new one is in place, so there is always at least one
    complete checkpoint on disk once the first save finished.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(root)
    path = save_state(checkpoint_path(root, step), state, overwrite=True)
    for _step, old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def capture_rng_state() -> dict:
    """Return torch's CPU and CUDA generator states, for bit-identical resumes."""
    import torch

    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Restore generator states captured by :func:`capture_rng_state`."""
    import torch

    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
