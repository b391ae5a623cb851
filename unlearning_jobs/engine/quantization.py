"""Round-to-nearest weight quantization: as verification's attack applies it, and as training sees it.

One quantizer serves two jobs, so that what an unlearning run is made to withstand is exactly
what verification then attacks it with:

- ``fake_quantize_`` rounds every weight matrix of a model in place (verification's 4-bit and
  8-bit attacks, ``verify.robustness.quantized_copy``, on a merged copy);
- ``quantized_weights`` makes a model *compute* with its quantized weights inside a block and
  gives the exact weights back on leaving (an unlearning run's forget term evaluated on the
  weights an attacker would quantize to; ``methods.approximate``).

The scheme is symmetric round-to-nearest, per output channel at 8 bits and per group of
``group_size`` input weights below, of every weight matrix (linear layers, GPT-2's ``Conv1D``,
embeddings, a tied LM head once), dequantized back to float: the numbers a weight-only int8/int4
model computes with, on the CPU and on any architecture. Other schemes (GPTQ, NF4, AWQ) round
differently; a model made to withstand this one is not thereby shown to withstand them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["QUANTIZATION_BITS", "fake_quantize_", "quantize_matrix", "quantized_weights", "weight_matrices"]

#: The widths the quantizer takes (2-4 bits per group, 8 bits per channel).
QUANTIZATION_BITS: tuple[int, ...] = (2, 3, 4, 8)


def weight_matrices(model) -> list[tuple[torch.nn.Parameter, bool]]:
    """Return each distinct weight matrix once with whether it is stored ``[in, out]`` (Conv1D)."""
    from transformers.pytorch_utils import Conv1D

    seen: set[int] = set()
    found = []
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, Conv1D, torch.nn.Embedding)):
            weight = getattr(module, "weight", None)
            if weight is None or weight.dim() != 2 or id(weight) in seen:
                continue
            seen.add(id(weight))
            found.append((weight, isinstance(module, Conv1D)))
    return found


def _quantize_rows(weight: torch.Tensor, bits: int, group_size: int | None) -> torch.Tensor:
    """Return ``weight`` ([out, in]) quantized symmetrically per row (or per group of a row) and dequantized."""
    qmax = 2 ** (bits - 1) - 1
    rows, cols = weight.shape
    group = cols if group_size is None or group_size >= cols else group_size
    pad = (-cols) % group
    work = torch.nn.functional.pad(weight.float(), (0, pad)) if pad else weight.float()
    grouped = work.reshape(rows, -1, group)
    scale = grouped.abs().amax(dim=-1, keepdim=True) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    quantized = torch.clamp(torch.round(grouped / scale), -qmax, qmax) * scale
    return quantized.reshape(rows, -1)[:, :cols].to(weight.dtype)


def quantize_matrix(
    weight: torch.Tensor, *, transposed: bool, bits: int, group_size: int | None
) -> torch.Tensor:
    """Return one weight matrix quantized and dequantized, in its own layout (``transposed``: Conv1D's)."""
    if bits not in QUANTIZATION_BITS:
        raise ValueError(f"bits must be one of {QUANTIZATION_BITS}, got {bits}")
    rows = weight.t() if transposed else weight
    quantized = _quantize_rows(rows, bits, None if bits == 8 else group_size)
    return quantized.t() if transposed else quantized


def fake_quantize_(model, *, bits: int, group_size: int | None = None) -> int:
    """Quantize every weight matrix of ``model`` in place (round to nearest, symmetric); return how many.

    8 bits quantizes per output channel; fewer bits per group of ``group_size`` weights of a
    channel (``None``: per channel). Biases and norms stay in float, as in weight-only schemes.
    A ``peft`` model is quantized as its parts (merge it first for the merged model's numbers).
    """
    if bits not in QUANTIZATION_BITS:
        raise ValueError(f"bits must be one of {QUANTIZATION_BITS}, got {bits}")
    matrices = weight_matrices(model)
    with torch.no_grad():
        for weight, transposed in matrices:
            weight.copy_(quantize_matrix(weight, transposed=transposed, bits=bits, group_size=group_size))
    return len(matrices)


def _adapter_deltas(model) -> tuple[dict[int, torch.Tensor], set[int]]:
    """Return each LoRA-adapted base weight's active delta (by the weight's id) and the adapters' own weights' ids.

    A LoRA layer computes with ``base + delta``; that sum is what a merged, then quantized, model
    holds, so it is what has to be rounded.
    """
    from peft.tuners.lora import LoraLayer

    deltas: dict[int, torch.Tensor] = {}
    adapter_weights: set[int] = set()
    for module in model.modules():
        if not isinstance(module, LoraLayer):
            continue
        for container in (module.lora_A, module.lora_B):
            adapter_weights.update(id(p) for p in container.parameters())
        base = module.get_base_layer()
        active = [name for name in module.active_adapters if name in module.lora_A]
        if module.disable_adapters or module.merged or not active:
            continue
        deltas[id(base.weight)] = sum(module.get_delta_weight(name) for name in active)
    return deltas, adapter_weights


@contextlib.contextmanager
def quantized_weights(model, *, bits: int, group_size: int | None) -> Iterator[int]:
    """Inside the block ``model`` computes with its weights as ``fake_quantize_`` would leave them.

    Yields how many matrices were rounded. On leaving, normal or not, every weight is given back
    exactly as it was (saved copies, not re-derived). A gradient taken inside lands on the same
    parameters and is the gradient at the quantized point (the straight-through estimate of
    quantization-aware training). On a ``peft`` LoRA model the rounded matrix is the merged one,
    ``base + delta``: the base weight is set to ``quantize(base + delta) - delta`` so that the
    layer, adapter on, computes with the quantized merged weight and the adapter's gradient is
    taken there. A reference read by switching the adapter off would then see a changed base,
    which is why ``methods.approximate`` refuses LoRA runs whose forget term reads it.
    Costs one copy of the weight matrices while inside.
    """
    if bits not in QUANTIZATION_BITS:
        raise ValueError(f"bits must be one of {QUANTIZATION_BITS}, got {bits}")
    saved: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
    try:
        with torch.no_grad():
            deltas, adapter_weights = _adapter_deltas(model)
            for weight, transposed in weight_matrices(model):
                if id(weight) in adapter_weights:
                    continue
                delta = deltas.get(id(weight))
                delta = None if delta is None else delta.to(weight.dtype)
                merged = weight if delta is None else weight + delta
                quantized = quantize_matrix(merged, transposed=transposed, bits=bits, group_size=group_size)
                saved.append((weight, weight.detach().clone()))
                weight.copy_(quantized if delta is None else quantized - delta)
        yield len(saved)
    finally:
        with torch.no_grad():
            for weight, original in saved:
                weight.copy_(original)
