"""Representation misdirection for unlearning (RMU; Li et al. 2024, the WMDP paper).

On forget data, the hidden state that one decoder layer outputs is pushed toward a fixed random
direction of norm ``steering_coeff``; on retain data, it is pulled toward the hidden state of the
model as it was at the start (activation matching). Later layers then read noise where the
forgotten content was, while the rest of the data keeps its representation:

    L = gamma * mean_t || h_l(x_forget)_t - c * u ||^2 / d + alpha * mean_t || h_l(x_retain)_t - h_l^ref(x_retain)_t ||^2 / d

with ``u`` a random unit vector drawn once (uniform [0, 1) entries, normalised, as in
OpenUnlearning), ``t`` over answer tokens (prompt masked with pairs) and ``d`` the hidden size.

By default only that layer's MLP trains (the WMDP recipe trains one layer's MLP too); the
layer is found without naming the architecture (GPT-2's ``transformer.h``, Llama/SmolLM2's
``model.layers``). ``trainable="all"`` trains every weight, as OpenUnlearning's current TOFU
configuration does. With ``adapter="lora"`` the adapter is placed on that MLP's linear layers
only, and the frozen copy is the model with its adapter disabled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..training.validation import require
from .approximate import ApproximateMethod, ApproximateParams
from .reference import decoder_layers, is_peft_model, layer_mlp, lora_targets_in_layer_mlp

TRAINABLE = ("mlp", "all")
#: OpenUnlearning's layer for Llama-3.2-1B (16 layers); smaller models use their middle layer.
DEFAULT_LAYER = 7


def resolve_layer(model, layer: int | None) -> int:
    """Return the decoder layer RMU steers: ``layer``, else 7 when the model is deep enough, else the middle."""
    _prefix, layers = decoder_layers(model)
    n = len(layers)
    chosen = (DEFAULT_LAYER if n > DEFAULT_LAYER else n // 2) if layer is None else layer
    if not 0 <= chosen < n:
        raise ValueError(
            f"RmuParams.layer: layer {chosen} does not exist; the model has {n} layers (0..{n - 1})"
        )
    return chosen


def hidden_output(output):
    """Return the hidden-state tensor of a decoder layer's output (a tensor or a tuple's first item)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def activation_loss(activations, target, mask):
    """Return OpenUnlearning's masked activation MSE: per sequence the mean over scored tokens of
    the mean squared difference over hidden units, then the mean over sequences."""
    squared = (activations.float() - target.float()).pow(2).mean(dim=-1)
    mask = mask.to(squared.dtype)
    per_sequence = (squared * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    return per_sequence.mean()


def run_with_layer_output(model, layer_module, batch):
    """Run ``model`` on a batch and return the hidden state ``layer_module`` produced."""
    cache = []

    def hook(_module, _inputs, output):
        cache.append(hidden_output(output))

    handle = layer_module.register_forward_hook(hook)
    try:
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        handle.remove()
    if not cache:
        raise RuntimeError("the steered layer did not run in the forward pass")
    return cache[0]


@dataclass(frozen=True)
class RmuParams(ApproximateParams):
    """Shared parameters plus ``layer`` (None: 7, or the middle layer of a shallower model),
    ``steering_coeff`` (the norm of the target direction; OpenUnlearning's TOFU value 2),
    ``forget_weight`` (gamma), ``retain_weight`` (alpha) and ``trainable`` (``mlp``: that
    layer's MLP only; ``all``: every weight). The published recipe is ``preset="reference"``."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "reference": {
            "learning_rate": 1e-5,
            "epochs": 10,
            "batch_size": 32,
            "retain_batch_size": 32,
            "weight_decay": 0.01,
            "lr_schedule": "linear",
            "warmup_epochs": 1.0,
            "stop_at_forget_target": False,
            "max_retain_loss_increase": None,
            "eval_every": 10,
            "layer": 7,
            "steering_coeff": 2.0,
            "trainable": "all",
        }
    }

    learning_rate: float = 1e-4
    layer: int | None = None
    steering_coeff: float = 2.0
    forget_weight: float = 1.0
    retain_weight: float = 1.0
    trainable: str = "mlp"

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        require(
            self.layer is None or self.layer >= 0, name, "layer", f"must be non-negative, got {self.layer}"
        )
        require(
            0 < self.steering_coeff <= 1000,
            name,
            "steering_coeff",
            f"must be in (0, 1000], got {self.steering_coeff}",
        )
        require(
            0 < self.forget_weight <= 1000,
            name,
            "forget_weight",
            f"must be in (0, 1000], got {self.forget_weight}",
        )
        require(
            0 <= self.retain_weight <= 10000,
            name,
            "retain_weight",
            f"must be in [0, 10000], got {self.retain_weight}",
        )
        require(
            self.trainable in TRAINABLE,
            name,
            "trainable",
            f"must be one of {TRAINABLE}, got {self.trainable!r}",
        )


class Rmu(ApproximateMethod):
    name = "rmu"
    summary = "steer one layer's activations on forget data to a random vector, match them on retain data"
    Params = RmuParams
    needs_reference = True
    trains_on_retain = True

    def __init__(self) -> None:
        self._layer: int | None = None
        self._control: torch.Tensor | None = None
        self._modules: dict[int, torch.nn.Module] = {}

    def _layer_module(self, model):
        key = id(model)
        if key not in self._modules:
            _prefix, layers = decoder_layers(model)
            self._modules[key] = layers[self._layer]
        return self._modules[key]

    def lora_target_modules(self, model, params):
        """With ``trainable="mlp"``, put the adapter on the steered layer's MLP only."""
        if params.lora_target_modules is not None or params.trainable == "all":
            return super().lora_target_modules(model, params)
        return lora_targets_in_layer_mlp(model, resolve_layer(model, params.layer))

    def configure_trainable(self, model, params) -> None:
        """Freeze everything but the steered layer's MLP (its adapter weights on a peft model)."""
        layer = resolve_layer(model, params.layer)
        if params.trainable == "all":
            super().configure_trainable(model, params)
            return
        _prefix, layers = decoder_layers(model)
        _name, mlp = layer_mlp(layers[layer])
        if is_peft_model(model):
            inside = {id(p) for p in mlp.parameters()}
            adapter = [p for p in model.parameters() if p.requires_grad]
            for param in adapter:
                param.requires_grad_(id(param) in inside)
            if not any(id(p) in inside for p in adapter):
                raise ValueError(
                    f"rmu: the adapter has no weights in layer {layer}'s MLP; use trainable='all' "
                    "or an adapter that targets that MLP"
                )
            return
        model.requires_grad_(False)
        mlp.requires_grad_(True)

    def setup(self, *, model, tokenizer, params, forget_records, block_size, device) -> None:
        """Resolve the layer and draw the steering direction once, from the run's seed."""
        self._layer = resolve_layer(model, params.layer)
        self._modules = {}
        hidden = int(getattr(model.config, "hidden_size", None) or model.config.n_embd)
        generator = torch.Generator().manual_seed(params.seed)
        direction = torch.rand(1, 1, hidden, generator=generator)
        self._control = (direction / direction.norm() * params.steering_coeff).to(device)

    def provenance_extra(self) -> dict[str, Any]:
        return {"rmu_layer": self._layer}

    def forget_term_reads_reference(self, params) -> bool:
        """Return False: the steering term reads the model being trained only (the retain term reads the reference)."""
        return False

    def forget_term(self, *, model, batch, params, reference=None):
        """Return gamma x the steering MSE on the forget batch: the layer's activations pushed to the control vector."""
        if self._control is None:
            raise ValueError("rmu needs its control vector (run setup first)")
        forget = batch["forget"]
        hidden = run_with_layer_output(model, self._layer_module(model), forget)
        return params.forget_weight * activation_loss(
            hidden, self._control.expand_as(hidden), forget["labels"] != -100
        )

    def retain_term(self, *, model, batch, params, reference=None):
        """Return alpha x the activation-matching MSE on the retain batch (the layer held where the reference has it), or 0."""
        retain = batch.get("retain")
        if retain is None or not self.uses_retain(params):
            return 0.0
        if reference is None:
            raise ValueError("rmu needs its reference model to match the retain activations")
        with reference.active() as ref_model, torch.no_grad():
            target = run_with_layer_output(ref_model, self._layer_module(ref_model), retain).detach()
        current = run_with_layer_output(model, self._layer_module(model), retain)
        return params.retain_weight * activation_loss(current, target, retain["labels"] != -100)
