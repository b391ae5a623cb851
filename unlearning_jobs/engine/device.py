"""Choose the torch device and dtype for model work, and describe it for heartbeats and jobs.

One code path for CPU and CUDA: callers ask ``select_device()`` and move tensors there; bf16 is
used only where the GPU supports it, fp32 otherwise.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DeviceInfo:
    """What a worker or a job ran on, as stored in heartbeats, job rows and reports."""

    type: str  # "cuda" or "cpu"
    name: str
    memory_total_bytes: int | None
    memory_free_bytes: int | None
    bf16: bool

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_device_info() -> DeviceInfo:
    """Return this machine's CPU as a device, without importing torch."""
    return DeviceInfo(
        type="cpu",
        name=platform.processor() or platform.machine() or "cpu",
        memory_total_bytes=None,
        memory_free_bytes=None,
        bf16=False,
    )


def describe_device(prefer_cuda: bool = True) -> DeviceInfo:
    """Return the device a model job would use here, with its name and memory.

    This initialises CUDA when there is a GPU: call it only in the process that does the model
    work, never in a worker's parent process that forks pool children (docs/jobs.md).
    """
    if not prefer_cuda:
        return cpu_device_info()
    import torch

    if prefer_cuda and torch.cuda.is_available():
        index = torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(index)
        return DeviceInfo(
            type="cuda",
            name=torch.cuda.get_device_name(index),
            memory_total_bytes=int(total),
            memory_free_bytes=int(free),
            bf16=bool(torch.cuda.is_bf16_supported()),
        )
    return cpu_device_info()


def select_device(prefer_cuda: bool = True):
    """Return ``(torch.device, torch.dtype)`` for training and inference on this machine."""
    import torch

    info = describe_device(prefer_cuda)
    if info.type == "cuda":
        return torch.device("cuda"), (torch.bfloat16 if info.bf16 else torch.float32)
    return torch.device("cpu"), torch.float32


def resolve_device(device=None):
    """Return ``(torch.device, dtype)`` for an explicit device name or ``None`` (pick the best here).

    ``dtype`` is the autocast dtype: bf16 on a CUDA device that supports it, fp32 otherwise.
    Weights and optimiser state stay in fp32 either way, so checkpoints are device-independent.
    """
    import torch

    if device is None:
        return select_device()
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device} requested but torch sees no CUDA GPU")
        return device, (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32)
    return device, torch.float32


def device_label(device: str) -> str:
    """Return ``cpu`` or ``cuda:0 (NVIDIA H100 …)``: a torch device and, for this machine's kind, its name.

    A job pinned to the CPU of a GPU machine is labelled ``cpu``, not with the GPU's name.
    """
    info = describe_device()
    same_kind = device.split(":")[0] == info.type
    return f"{device} ({info.name})" if same_kind and info.name and info.name != device else device


def make_accelerator(device=None, *, bf16: bool = False):
    """Return an ``accelerate.Accelerator`` for ``device`` (``None``: the best here, ``"cpu"``, ``"cuda"``).

    Every training loop of the engine (from-scratch training, fine-tuning, SISA adapters, the
    approximate unlearning methods) runs through the Accelerator so that one code path places the
    model on the CPU, one GPU, or (under ``accelerate launch``) one GPU per process with DDP, and
    wraps the forward pass in bf16 autocast. ``bf16`` is refused off CUDA: on the CPU it is slower
    than fp32 and would change results, and a recipe must mean the same thing everywhere.
    Gradient accumulation is done by the caller with ``accelerator.no_sync`` (see
    ``training/finetune.py``), so ``gradient_accumulation_steps`` stays 1.

    Accelerate keeps its device and precision in a process-wide singleton that refuses (or, for
    ``cpu``, silently ignores) a different choice later. A worker process runs one job after
    another, each with its own device and precision (a bf16 fine-tune, then an fp32 job pinned to
    the CPU), so outside ``accelerate launch`` a stale choice is dropped first; within a launched
    group every process keeps the configuration it was started with.
    """
    import torch
    from accelerate import Accelerator

    wanted = None if device is None else torch.device(device)
    use_cpu = wanted is not None and wanted.type == "cpu"
    if wanted is not None and wanted.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {wanted} requested but torch sees no CUDA GPU")
    if bf16:
        if use_cpu or not torch.cuda.is_available():
            raise ValueError("bf16 is for CUDA GPUs only; this run is on the CPU (set bf16 to false)")
        if not torch.cuda.is_bf16_supported():
            raise ValueError("this GPU does not support bf16 (set bf16 to false)")
    mixed_precision = "bf16" if bf16 else "no"
    if _launched():
        return Accelerator(cpu=use_cpu, mixed_precision=mixed_precision)
    if use_cpu or not torch.cuda.is_available():
        target = torch.device("cpu")
    else:
        target = wanted if wanted is not None else torch.device("cuda")
    _drop_stale_accelerator_state(target, mixed_precision)
    if target.type == "cuda" and target.index is not None:
        # A single process goes to the current GPU; a pinned job (LETHE_JOB_DEVICE=cuda:1) names
        # another, which accelerate reads from this variable when its state is created.
        with _environment("ACCELERATE_TORCH_DEVICE", str(target)):
            return Accelerator(cpu=use_cpu, mixed_precision=mixed_precision)
    return Accelerator(cpu=use_cpu, mixed_precision=mixed_precision)


def single_process_accelerator(
    device=None, *, bf16: bool, what: str, why: str, remedy: str = "run it without accelerate launch"
):
    """Return :func:`make_accelerator`'s Accelerator for a loop that must run in one process.

    From-scratch training, SISA shard training and the approximate methods shard no data across
    processes, so under ``accelerate launch`` every process would train the same copy and write
    the same files. They refuse instead, with a ``ValueError`` that names the loop (``what``), the
    reason (``why``) and what to do (``remedy``); fine-tuning is the loop that runs on several.
    """
    accelerator = make_accelerator(device, bf16=bf16)
    if accelerator.num_processes > 1:
        raise ValueError(
            f"{what} runs in one process; it was started as one of {accelerator.num_processes} "
            f"({why}): {remedy}"
        )
    return accelerator


def _launched() -> bool:
    """Return whether this process is one of several started together (``accelerate launch``, torchrun)."""
    return os.environ.get("LOCAL_RANK") is not None or int(os.environ.get("WORLD_SIZE", "1")) > 1


def _drop_stale_accelerator_state(target, mixed_precision: str) -> None:
    """Forget accelerate's process-wide state when this (single) process now wants another device or precision."""
    from accelerate.state import AcceleratorState, PartialState

    current = PartialState._shared_state.get("device")
    precision = AcceleratorState._shared_state.get("_mixed_precision")
    if (current is not None and current != target) or (
        precision is not None and precision != mixed_precision
    ):
        AcceleratorState._reset_state(reset_partial_state=True)


@contextlib.contextmanager
def _environment(name: str, value: str):
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous
