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
row). A parameter with no salient row is frozen for the run; of a parameter with some, the
optimiser steps only the salient rows (:class:`SalientRowParameters`), which is the same as
stepping the whole parameter with the other rows' gradients zeroed: with Adam's zero moments
such rows stay where they are (decoupled weight decay would move them, so the parameters forbid
combining the two).
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


class TrainedParameters:
    """The tensors a run's optimiser steps, by parameter name, and how they reach the weights.

    Unmasked, they are the model's trainable parameters themselves and there is nothing to copy.
    """

    def __init__(self, named: Sequence[tuple[str, torch.Tensor]]):
        self.named = list(named)
        self.parameters = [tensor for _name, tensor in self.named]

    def count(self) -> int:
        """Return how many numbers the optimiser steps (the job's ``trainable_parameters``)."""
        return sum(p.numel() for p in self.parameters)

    def write_back(self) -> None:
        """Copy what the optimiser changed into the model's weights (after each step)."""

    def state(self) -> dict[str, torch.Tensor]:
        """Return CPU copies of what can move, by name: a checkpoint's and the retain bound's copy.

        A masked run's holds the salient rows only, not the parameters they sit in (on SmolLM2
        at 1 %: 1.6 M numbers instead of 60.4 M, a 7B model's gigabytes instead of tens).
        """
        return {name: tensor.detach().to("cpu", copy=True) for name, tensor in self.named}

    def load_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Put a :meth:`state` back, into the weights too; ValueError names what does not fit."""
        tensors = dict(self.named)
        unknown = sorted(set(state) - set(tensors))
        if unknown:
            raise ValueError(f"it holds parameters this run does not train: {unknown[:5]}")
        misfit = sorted(name for name, value in state.items() if value.shape != tensors[name].shape)
        if misfit:
            raise ValueError(f"its shapes differ from this run's for {misfit[:5]}")
        with torch.no_grad():
            for name, value in state.items():
                tensors[name].copy_(value.to(tensors[name].device))
        self.write_back()


class SalientRowParameters(TrainedParameters):
    """A masked run's optimised tensors: each salient parameter's salient rows, gathered.

    Why: a mask of 1 % of the rows still touched 45 % of SmolLM2's weights (every parameter
    with one salient row), and AdamW kept two moments for all of them and the model a whole
    gradient for each until the step; at 7B those are tens of gigabytes for rows that never
    move. Here the optimiser steps one compact leaf per parameter, ``rows × row size``, and
    after each step :meth:`write_back` copies the rows into the weights. The gradient reaches
    the leaf two ways. A linear layer whose weight is salient computes its weight gradient for
    the salient rows only (:class:`_SalientRowsLinear`: ``grad_out[..., rows]ᵀ x`` instead of
    ``grad_outᵀ x``, the output layer's 49,152 rows on SmolLM2 cut to a few hundred), and an
    embedding lookup adds only the salient tokens' gradients (:class:`_SalientRowsEmbedding`).
    Any other use (a norm, a bias, a layer of another type) forms the parameter's whole
    gradient, and a hook that runs as soon as autograd has finished it copies the salient rows
    into the leaf's gradient and frees the whole one. The numbers are those of stepping the whole
    parameter with the other rows' gradients zeroed (Adam leaves a row with zero gradient and
    zero moments where it is, weight decay being refused with a mask), up to the order in which
    a matrix product sums.
    """

    def __init__(self, model, masks: Mapping[str, torch.Tensor]):
        params = dict(model.named_parameters())
        self._rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._hooks = []
        self._patched: list[torch.nn.Module] = []
        by_param: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        named_rows: dict[str, torch.Tensor] = {}
        for name in sorted(masks):
            param = params[name]
            if not param.requires_grad:  # frozen by the caller after the mask was taken: cannot move
                continue
            index = masks[name].nonzero().flatten().to(param.device)
            rows = torch.nn.Parameter(param.detach().index_select(0, index))
            self._rows.append((param, index, rows))
            named_rows[name] = rows
            self._hooks.append(param.register_post_accumulate_grad_hook(_gather_rows(index, rows)))
            by_param[id(param)] = (index, rows)
        for module in model.modules():
            if id(getattr(module, "weight", None)) not in by_param or "forward" in vars(module):
                continue
            if type(module) is torch.nn.Linear:
                module.forward = _salient_rows_linear_forward(module, *by_param[id(module.weight)])
            elif type(module) is torch.nn.Embedding and _plain_lookup(module):
                module.forward = _salient_rows_embedding_forward(module, *by_param[id(module.weight)])
            else:
                continue
            self._patched.append(module)
        super().__init__(list(named_rows.items()))

    @property
    def row_sliced_layers(self) -> int:
        """How many linear and embedding layers compute their weight gradient for the salient rows only."""
        return len(self._patched)

    def write_back(self) -> None:
        with torch.no_grad():
            for param, index, rows in self._rows:
                param.index_copy_(0, index, rows)

    def close(self) -> None:
        """Stop gathering and slicing: the model's layers and gradients are its own again."""
        for hook in self._hooks:
            hook.remove()
        for module in self._patched:
            del module.forward
        self._hooks, self._patched = [], []


class _SalientRowsLinear(torch.autograd.Function):
    """``x Wᵀ + b`` whose weight gradient is computed, into the compact ``rows``, for ``index`` only.

    The forward is the layer's own (``W`` holds the rows' current values, :meth:`write_back`
    keeps them so); the input's gradient is the whole ``grad_out W`` as before, because the
    layers below need it; the weight gradient is that of the salient output channels only, and
    ``W`` itself gets none (its other rows cannot move). The products run in the dtype autocast
    gave the forward's output, as autograd's own linear backward does; autograd casts each
    gradient to its input's dtype.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, rows, index):
        out = torch.nn.functional.linear(x, weight, bias)
        # Under autocast the product read x in the output's dtype; keep that copy, as autograd's
        # own linear does, not a float32 one twice its size.
        ctx.save_for_backward(x.to(out.dtype), weight, index)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, index = ctx.saved_tensors
        grad_x = grad_rows = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out.matmul(weight.to(grad_out.dtype))
        if ctx.needs_input_grad[3]:
            picked = grad_out.index_select(-1, index).reshape(-1, index.numel())
            grad_rows = picked.t().matmul(x.reshape(-1, x.shape[-1]).to(picked.dtype))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_out.reshape(-1, grad_out.shape[-1]).sum(0)
        return grad_x, None, grad_bias, grad_rows, None


def _salient_rows_linear_forward(
    module: torch.nn.Linear, index: torch.Tensor, rows: torch.Tensor
) -> Callable:
    """Return ``module``'s forward with its weight gradient sliced to ``index`` (into ``rows``)."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        return _SalientRowsLinear.apply(x, module.weight, module.bias, rows, index)

    return forward


class _SalientRowsEmbedding(torch.autograd.Function):
    """A lookup whose weight gradient goes, into the compact ``rows``, to the salient tokens only.

    Autograd's own embedding backward forms a dense ``vocabulary × width`` gradient (SmolLM2:
    113 MB in float32; a 128k-token 7B vocabulary: 2 GB) of which a mask keeps a few hundred
    rows. Here each looked-up position whose token is salient adds its output gradient to that
    token's compact row (``slots`` maps a token to its row, -1 for the others); the padding
    token, which a lookup never trains, adds nothing.
    """

    @staticmethod
    def forward(ctx, ids, weight, rows, slots, padding_idx):
        ctx.save_for_backward(ids, slots)
        ctx.padding_idx = padding_idx
        ctx.rows_shape = rows.shape
        return torch.nn.functional.embedding(ids, weight, padding_idx)

    @staticmethod
    def backward(ctx, grad_out):
        ids, slots = ctx.saved_tensors
        grad_rows = None
        if ctx.needs_input_grad[2]:
            flat_ids = ids.reshape(-1)
            where = slots[flat_ids]
            keep = where >= 0
            if ctx.padding_idx is not None:
                keep &= flat_ids != ctx.padding_idx
            # Summed in float32, as autograd's own lookup backward does for bf16 weights; autograd
            # casts the result to the rows' dtype.
            grad_rows = grad_out.new_zeros(ctx.rows_shape, dtype=torch.float32)
            grad_rows.index_add_(0, where[keep], grad_out.reshape(-1, grad_out.shape[-1])[keep].float())
        return None, None, grad_rows, None, None


def _plain_lookup(module: torch.nn.Embedding) -> bool:
    """Whether a lookup is plain: no renormalisation, frequency scaling or sparse gradient."""
    return module.max_norm is None and not module.scale_grad_by_freq and not module.sparse


def _salient_rows_embedding_forward(
    module: torch.nn.Embedding, index: torch.Tensor, rows: torch.Tensor
) -> Callable:
    """Return ``module``'s forward with its weight gradient sliced to ``index`` (into ``rows``)."""
    slots = torch.full((module.num_embeddings,), -1, dtype=torch.long, device=index.device)
    slots[index] = torch.arange(index.numel(), device=index.device)

    def forward(ids: torch.Tensor) -> torch.Tensor:
        return _SalientRowsEmbedding.apply(ids, module.weight, rows, slots, module.padding_idx)

    return forward


def _gather_rows(index: torch.Tensor, rows: torch.Tensor) -> Callable[[torch.Tensor], None]:
    """Return the hook that moves ``index``'s rows of a finished gradient into ``rows.grad``."""

    def gather(param: torch.Tensor) -> None:
        if param.grad is None:  # its only uses were row-sliced layers, which gave it none
            return
        picked = param.grad.index_select(0, index)
        rows.grad = picked if rows.grad is None else rows.grad.add_(picked)
        param.grad = None

    return gather


@contextmanager
def salient_rows_only(model, salient: SalientRows | None) -> Iterator[TrainedParameters]:
    """Yield what the optimiser is to step: ``model``'s trainable parameters, or their salient rows.

    With a mask, every trainable parameter without a salient row is also frozen for the block:
    backward then skips its weight gradient altogether (a linear layer's weight gradient is a
    third of its backward). The optimiser, made inside, holds only the salient rows
    (:class:`SalientRowParameters`), and so do the retain bound's copy of the last good weights
    and the checkpoints (:meth:`TrainedParameters.state`). On leaving, normal or not, the hooks are removed and the frozen parameters are
    trainable again, so a caller (or the learning-rate backoff's next attempt, which computes its
    mask anew) gets the model's own choice back. ``salient=None`` freezes and gathers nothing.
    """
    if salient is None:
        yield TrainedParameters([(name, p) for name, p in model.named_parameters() if p.requires_grad])
        return
    frozen = []
    for name, param in model.named_parameters():
        if param.requires_grad and name not in salient.masks:
            param.requires_grad_(False)
            frozen.append(param)
    trained = None
    try:
        trained = SalientRowParameters(model, salient.masks)
        yield trained
    finally:
        if trained is not None:
            trained.close()
        for param in frozen:
            param.requires_grad_(True)
