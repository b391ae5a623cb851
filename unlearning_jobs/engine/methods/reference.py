"""The frozen reference a method compares against, LoRA adapters, and where a model's layers are.

NPO, IdkDPO (``refusal``) and RMU compare the model being trained with the model as it was at
the start. On full weights that is a frozen deep copy (twice the weights in memory). On a
``peft`` model with a LoRA adapter the base weights never change, so the reference is the same
model with the adapter switched off (``model.disable_adapter()``): no second copy, which is what
makes a 7 B model's unlearning fit on one GPU. Both give the reference in eval mode (no dropout),
as OpenUnlearning's frozen copy is.

Decoder layers are found without naming the architecture: the ``ModuleList`` whose length is the
configured number of layers (``transformer.h`` in GPT-2, ``model.layers`` in Llama, Qwen2 and
SmolLM2), and a layer's feed-forward block is its ``mlp`` child (the name every one of those
uses; ``feed_forward``/``ffn`` as fallbacks).
"""

from __future__ import annotations

import contextlib
import copy
import re

import torch

__all__ = [
    "AdapterDisabledReference",
    "FrozenCopyReference",
    "decoder_layers",
    "is_peft_model",
    "layer_mlp",
    "make_reference",
    "wrap_with_lora",
]


def is_peft_model(model) -> bool:
    """Return whether ``model`` is a ``peft`` model (it then has ``disable_adapter``)."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


class FrozenCopyReference:
    """A frozen deep copy of the model at the start of unlearning (full-weights training)."""

    kind = "frozen_copy"

    def __init__(self, model) -> None:
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)

    @contextlib.contextmanager
    def active(self):
        """Yield the module to run the reference forward pass on (without grad)."""
        with torch.no_grad():
            yield self.model


class AdapterDisabledReference:
    """The same ``peft`` model with its adapter disabled: the base weights, no copy.

    The model is put in eval mode for the reference pass (so the base's dropout does not make
    the reference noisy) and its previous mode restored after.
    """

    kind = "adapter_disabled"

    def __init__(self, model) -> None:
        if not is_peft_model(model):
            raise ValueError("AdapterDisabledReference needs a peft model")
        self.model = model

    @contextlib.contextmanager
    def active(self):
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), self.model.disable_adapter():
                yield self.model
        finally:
            if was_training:
                self.model.train()


def make_reference(model):
    """Return the reference for ``model``: adapter disabled for a peft model, else a frozen copy."""
    if is_peft_model(model):
        return AdapterDisabledReference(model)
    return FrozenCopyReference(model)


def _n_layers(config) -> int | None:
    for name in ("num_hidden_layers", "n_layer", "num_layers"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def decoder_layers(model) -> tuple[str, torch.nn.ModuleList]:
    """Return ``(qualified name, ModuleList)`` of the model's decoder layers.

    Works on GPT-2 (``transformer.h``), Llama-style models (``model.layers``) and either wrapped
    in ``peft``; raises ``ValueError`` when no single list of the configured length exists.
    """
    config = getattr(model, "config", None)
    expected = _n_layers(config) if config is not None else None
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList)
        and len(module) > 0
        and (expected is None or len(module) == expected)
    ]
    if expected is None:
        found = found[:1]
    if len(found) != 1:
        names = [name for name, _ in found]
        raise ValueError(
            f"cannot locate the decoder layers of {type(model).__name__}: "
            f"{len(found)} module lists of length {expected} ({names})"
        )
    return found[0]


def layer_mlp(layer: torch.nn.Module) -> tuple[str, torch.nn.Module]:
    """Return ``(child name, module)`` of a decoder layer's feed-forward block."""
    for name in ("mlp", "feed_forward", "ffn"):
        child = getattr(layer, name, None)
        if isinstance(child, torch.nn.Module):
            return name, child
    raise ValueError(
        f"cannot find the MLP of {type(layer).__name__}: no 'mlp', 'feed_forward' or 'ffn' child"
    )


def linear_names_in(module: torch.nn.Module) -> list[str]:
    """Return the names (relative to ``module``) of its weight matrices LoRA can adapt."""
    from transformers.pytorch_utils import Conv1D

    return [
        name
        for name, child in module.named_modules()
        if name and isinstance(child, (torch.nn.Linear, Conv1D))
    ]


def default_lora_targets(model) -> list[str]:
    """Return LoRA target module suffixes: every linear layer inside the decoder layers.

    ``peft`` matches a target against the end of a module's qualified name, so suffixes such as
    ``attn.c_attn`` (GPT-2) or ``self_attn.q_proj`` (Llama) cover every layer.
    """
    _prefix, layers = decoder_layers(model)
    return sorted(set(linear_names_in(layers[0])))


def wrap_with_lora(model, *, r: int, alpha: float, dropout: float, target_modules=None):
    """Return ``model`` wrapped in a fresh LoRA adapter (``peft``); only the adapter trains.

    ``target_modules`` is a list of module-name suffixes or a regex string (``peft``'s own
    conventions); ``None`` targets every linear layer of the decoder layers. GPT-2's ``Conv1D``
    layers store their weights transposed, which ``fan_in_fan_out`` tells ``peft``.
    """
    from peft import LoraConfig, get_peft_model
    from transformers.pytorch_utils import Conv1D

    targets = default_lora_targets(model) if target_modules is None else target_modules
    conv1d = any(isinstance(m, Conv1D) for m in model.modules())
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets) if not isinstance(targets, str) else targets,
        fan_in_fan_out=conv1d,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def lora_targets_in_layer_mlp(model, layer: int) -> str:
    """Return a ``peft`` regex selecting only the linear layers of decoder layer ``layer``'s MLP."""
    prefix, layers = decoder_layers(model)
    if not 0 <= layer < len(layers):
        raise ValueError(
            f"layer {layer} does not exist: the model has {len(layers)} layers (0..{len(layers) - 1})"
        )
    mlp_name, mlp = layer_mlp(layers[layer])
    names = linear_names_in(mlp)
    if not names:
        raise ValueError(f"layer {layer}'s MLP has no linear layers to adapt")
    base = re.escape(f"{prefix}.{layer}.{mlp_name}.")
    return rf".*{base}({'|'.join(re.escape(n) for n in names)})"
