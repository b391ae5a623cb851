"""Weight saliency: train only the rows of the weights the forget records' gradient points at.

Why: "Catastrophic Failure of LLM Unlearning via Quantization" (Zhang et al., ICLR 2025) finds
that 4-bit round-to-nearest quantization gives back most of what utility-constrained unlearning
removed, because the updates are smaller than a quantization step. Lethe measured the same on
SmolLM2 fine-tuned on TOFU: every NPO run that did not over-forget lost 0.53–0.81 of the gap to
4-bit rounding (docs/performance.md). The paper's remedy, SURE, updates only the *salient*
neurons (slices of a weight along its first dimension, an output channel of ``nn.Linear``) whose
gradient of the forget loss is largest, at a larger learning rate, so that few weights move past
the rounding while the rest of the model, and its utility, stays where it was.

How Lethe differs from SURE: the mask is computed **once, before the first step**, from the
gradient of the summed token NLL of the whole forget set at the source weights (SalUn's schedule,
Fan et al. ICLR 2024), not re-computed from each batch's forget loss. That costs one pass over the
forget set instead of a second backward per step, and the mask does not depend on where a run
resumed: a resumed run, or the learning-rate backoff's restart, trains the same rows. At the
source weights the gradient of NPO's forget term points the same way as this NLL's (every
record's NPO weight is equal there), so the mask is the one NPO's first step would pick.

The threshold is global, as SURE's: the ``fraction`` of all rows of the trainable parameters
with the largest gradient norm (a 1-D parameter, a bias or a norm, counts each element as a
row). A parameter with no salient row gets no gradient at all, so AdamW neither steps it nor
keeps state for it; a parameter with some gets its other rows' gradients zeroed, which with
Adam's zero moments leaves them unchanged (decoupled weight decay would not, so the parameters
forbid combining the two).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..training.data import sequence_nll
from .data import collate_examples


@dataclass(frozen=True)
class SalientRows:
    """Which rows of which trainable parameters a saliency-masked run may change."""

    #: parameter name -> boolean mask over its first dimension (only parameters with a salient row)
    masks: dict[str, torch.Tensor]
    fraction: float
    rows: int
    total_rows: int
    weights: int
    total_weights: int

    def summary(self) -> dict:
        """Return what the run's provenance records: how much of the model the mask let move."""
        return {
            "salient_fraction": self.fraction,
            "salient_rows": self.rows,
            "salient_rows_of": self.total_rows,
            "salient_weights": self.weights,
            "salient_weights_of": self.total_weights,
            "salient_parameters": len(self.masks),
        }


def row_gradient_norms(grad: torch.Tensor) -> torch.Tensor:
    """Return the L2 norm of each slice of ``grad`` along its first dimension (``|g|`` for 1-D)."""
    if grad.dim() == 1:
        return grad.detach().float().abs()
    return grad.detach().float().flatten(1).norm(dim=1)


def salient_rows(
    model,
    examples: Sequence,
    *,
    fraction: float,
    pad_id: int,
    device,
    batch_size: int,
    autocast: Callable | None = None,
) -> SalientRows:
    """Return the rows of ``model``'s trainable parameters with the largest forget-NLL gradient.

    ``examples`` are the forget set's encoded examples (answer tokens only for pairs); the
    gradient is that of their summed token NLL, accumulated batch by batch in eval mode (no
    dropout). The model's gradients are cleared before and after; its weights are not touched.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if not examples:
        raise ValueError("saliency needs at least one forget example")
    named = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
    if not named:
        raise ValueError("saliency: no parameter is trainable")
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    try:
        for start in range(0, len(examples), batch_size):
            batch = collate_examples(examples[start : start + batch_size], pad_id=pad_id, device=device)
            if autocast is None:
                nll, _count = sequence_nll(model, batch)
            else:
                with autocast():
                    nll, _count = sequence_nll(model, batch)
            nll.sum().backward()
        norms = {
            name: row_gradient_norms(param.grad) if param.grad is not None else None for name, param in named
        }
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    total_rows = sum(param.shape[0] if param.dim() else 1 for _name, param in named)
    scored = [n for n in norms.values() if n is not None]
    if not scored:
        raise ValueError("saliency: the forget records gave no gradient to any trainable parameter")
    flat = torch.cat(scored)
    keep = max(1, math.ceil(fraction * total_rows))
    threshold = torch.topk(flat, min(keep, flat.numel())).values[-1]
    if threshold <= 0:
        # Fewer rows have any gradient than asked for: only those can be salient.
        threshold = torch.finfo(flat.dtype).tiny
    masks: dict[str, torch.Tensor] = {}
    rows = weights = 0
    params = dict(named)
    for name, norm in norms.items():
        if norm is None:
            continue
        mask = norm >= threshold
        count = int(mask.sum())
        if count:
            masks[name] = mask.to(params[name].device)
            rows += count
            per_row = params[name][0].numel() if params[name].dim() > 1 else 1
            weights += count * per_row
    return SalientRows(
        masks=masks,
        fraction=fraction,
        rows=rows,
        total_rows=total_rows,
        weights=weights,
        total_weights=sum(param.numel() for _name, param in named),
    )


def mask_gradients(
    named_parameters: Sequence[tuple[str, torch.Tensor]], masks: Mapping[str, torch.Tensor]
) -> None:
    """Keep only the salient rows' gradients: zero the others, drop a parameter's with none.

    Called after backward and before clipping, so the clipping norm is the masked gradient's.
    """
    for name, param in named_parameters:
        if param.grad is None:
            continue
        mask = masks.get(name)
        if mask is None:
            param.grad = None
            continue
        shape = (-1,) + (1,) * (param.grad.dim() - 1)
        param.grad.mul_(mask.view(shape).to(param.grad.dtype))


@contextmanager
def salient_rows_only(model, salient: SalientRows | None) -> Iterator[list[str]]:
    """Freeze, for the block, every trainable parameter of ``model`` without a salient row.

    Why: :func:`mask_gradients` would drop such a parameter's gradient after each backward, but
    autograd would still have computed it (a linear layer's weight gradient is a third of its
    backward) and held it until then. Frozen, it costs nothing, and the optimiser, the retain
    bound's copy of the last good weights and the checkpoints, made inside the block, hold only
    what can move. Yields the frozen parameters' names; on leaving, normal or not, they are
    trainable again, so a caller (or the learning-rate backoff's next attempt, which computes
    its mask anew) gets the model's own choice back. ``salient=None`` freezes nothing.
    """
    frozen = []
    if salient is not None:
        for name, param in model.named_parameters():
            if param.requires_grad and name not in salient.masks:
                param.requires_grad_(False)
                frozen.append((name, param))
    try:
        yield [name for name, _param in frozen]
    finally:
        for _name, param in frozen:
            param.requires_grad_(True)
