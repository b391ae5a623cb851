"""The loop shared by the approximate methods: gradient ascent, gradient difference, NPO, SimNPO, RMU, refusal.

A method only says *what* is minimised on a ``{"forget": batch, "retain": batch}`` pair (its
:meth:`ApproximateMethod.forget_term`, plus the shared or its own ``retain_term``; their sum is
``compute_loss``); this module decides *when*: the step budget (steps, or
epochs over the forget set), the learning-rate schedule, early stop once the forget loss reaches
its target, the retain-loss bound that protects utility, progress, cancellation and resumable
checkpoints.

Records are plain texts or ``{"prompt", "answer"}`` pairs (``methods.data``); with pairs every
loss, and the before/after losses, count answer tokens only.

Training runs on full weights, or on a LoRA adapter (``adapter="lora"``, ``peft``): the base
weights stay frozen, the reference of NPO/IdkDPO/RMU is the model with its adapter disabled
rather than a second copy, and the adapter is merged into the weights that are saved, so the
produced directory loads and verifies like any other model. :meth:`ApproximateMethod.unlearn`
runs the same loop on a model already in memory, a ``peft`` model included.

The loop runs through ``accelerate.Accelerator`` (``device.make_accelerator``), as fine-tuning
does: it places the model, wraps the forward passes (training, reference and the loss
measurements) in bf16 autocast on a GPU that supports it, and does backward and clipping, so
the engine has one device code path. On the CPU in fp32 it adds no arithmetic: the weights are
the ones the hand-written loop produced. It runs in **one process**: RMU's layer hooks, the
adapter-disabled reference of a LoRA run and the frozen copy all read the bare model, and every
process would write the same checkpoints, so a method started under ``accelerate launch`` with
several processes raises ``ValueError`` rather than silently training N copies.

These methods change the parameters so that the forget records become unlikely. They give no
guarantee that the model is what it would have been without the records: the report calls the
result statistical, and verification measures it (``refusal`` is weaker still: it is filed under
output suppression, see its module).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..checkpoints import (
    capture_rng_state,
    latest_checkpoint,
    load_state,
    restore_rng_state,
    save_checkpoint,
    weights_sha256,
)
from ..device import resolve_device, single_process_accelerator
from ..method_catalogue import FRAMEWORK_APPROXIMATE, STATISTICAL
from ..models import is_adapter_dir, load_causal_lm
from ..quantization import QUANTIZATION_BITS, quantized_weights
from ..training.data import (
    epoch_order,
    mean_token_kl,
    mean_token_nll,
    next_token_logits,
    pad_token_id,
    steps_per_epoch,
    texts_fingerprint,
)
from ..training.recipe import TrainingRecipe
from ..training.sisa import is_sisa_dir
from ..training.train import CheckpointMismatch, TrainingCancelled, save_model_dir
from ..training.validation import dataclass_from_dict, require
from .base import (
    MethodResult,
    UnlearningMethod,
    block_size_for,
    provenance_json,
    sample_indices,
)
from .data import (
    PAIR_FORMATS,
    LazyRecordExamples,
    collate_examples,
    encode_records,
    evaluate_examples_loss,
    is_pair,
    record_text,
)
from .reference import is_peft_model, make_reference, wrap_with_lora
from .saliency import salient_rows, salient_rows_only

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "lethe-unlearn-checkpoint/2"
LR_SCHEDULES = ("constant", "linear")
ADAPTERS = ("none", "lora")
#: Where the forget-loss target comes from when none is given (``ApproximateParams``).
FORGET_LOSS_TARGET_SOURCES = ("retain", "non_members")
#: What a method's retain term measures on the retain batch (``ApproximateParams.retain_loss``).
RETAIN_LOSSES = ("nll", "kl")


class RetainBoundBeforeFirstStep(ValueError):
    """An approximate method kept no step: every learning rate tried crossed the retain bound at once."""


def _backoff_dir(checkpoint_dir, attempt: int) -> Path | None:
    """Where attempt ``attempt`` of ``run``'s learning-rate backoff keeps its checkpoints (0: the dir itself).

    None without a checkpoint directory: such a run keeps no checkpoints and resumes nothing.
    """
    if checkpoint_dir is None:
        return None
    root = Path(checkpoint_dir)
    return root if attempt == 0 else root / f"lr-backoff-{attempt}"


@dataclass(frozen=True)
class ApproximateParams:
    """Hyper-parameters every approximate method shares.

    The defaults were tuned with ``bench/unlearning.py`` on the demo model (2 x 128, trained at
    lr 3e-3 on the synthetic support records, forgetting every record of the three most
    frequently mentioned people) and checked by verification: small learning rates over more
    steps forget more within the same retain-loss bound than large ones over few (gradient
    difference at 3e-4 hit the bound after 45 steps with 1 of 3 people still leaking; at 5e-5
    it reached the forget-loss target after 235 steps with none leaking). Each method overrides
    ``learning_rate`` with the value that worked for it.

    - ``max_steps``: optimiser steps; ``epochs``, when set, replaces it with epochs over the
      forget set (``epochs x ceil(forget records / batch_size)``), as OpenUnlearning counts.
    - ``forget_loss_target``: stop once the mean forget loss (nats/token) reaches it. When
      ``None`` it comes from ``forget_loss_target_from``: ``retain`` (the default) is
      ``forget_loss_target_ratio`` x the retain loss before unlearning; a memorised record scores
      about the retain loss, and raising it several-fold is what made the demo's e-mails
      unextractable (an exact retrain scores them far higher still). ``non_members`` is the mean
      loss, at each measurement, of records of the same kind the model was never trained on
      (``non_member_texts``): the point where the forgotten records look to the model like
      records it never saw, near what a retrained model shows. Near, not on: how well a model
      predicts a person it never saw depends on the person (on SmolLM2 fine-tuned on TOFU the
      re-fine-tune scored the forgotten author 0.3 nats below the mean of other unseen
      authors, which spread over 0.4 nats), so the stop lands within about 15 points of the
      retrain's PrivLeak there, not 10. A fixed ratio is further off on a model it was not
      tuned for (8 x the retain loss is 6.8 nats there, never reached).
      ``stop_at_forget_target=False`` never stops there (the published recipes do not).
    - ``max_retain_loss_increase``: stop, and keep the last weights measured within the bound,
      once the retain loss exceeds its value before by this many nats per token (0.05 nats is a
      perplexity about 5 % higher, the verification's utility threshold); ``None`` disables it.
    - ``retain_eval_size`` and ``retain_eval_held_out``: how many retain records the bound is
      measured on (sampled with ``seed``), and whether they are kept out of the retain term's
      batches (at most half the retain records are then set aside). Kept in, a method with a
      retain term can fit the records its bound reads and pass it while the model loses utility
      elsewhere (seen on SmolLM2 fine-tuned on TOFU: a saliency-masked NPO run kept its retain
      loss inside the bound and lost 41 % of held-out authors' utility).
    - ``retain_loss``: what the retain term of a method that has a token-level one (gradient
      difference, NPO, SimNPO, refusal) minimises on the retain batch: ``nll`` (the default; the
      records' own tokens made likely again) or ``kl`` (the KL divergence from the model at the
      start, GradDiff-KL / NPO-KL in OpenUnlearning: the whole next-token distribution held where
      it was, not only the records' tokens, so the term stops fitting the records it replays past
      where the model had them). ``kl`` needs the reference: a frozen copy on full weights (twice
      the weights in memory), the adapter switched off on a LoRA run (no copy).
    - ``eval_every``: steps between measurements of the forget loss and the retain sample (the
      retain sample only under the retain bound: without it, before and after the run alone); the
      stop decisions are taken there, so it is also their granularity.
    - ``eval_adaptive``: when true, ``eval_every`` is the longest interval, and once two
      measurements show the forget loss rising toward its target the next comes after half the
      steps that rise predicts are left (at least one): few measurements far from the target,
      one per step near it, so a run neither pays for measuring where nothing is decided nor
      overshoots the target by a whole interval. Measuring was 62 % of a TOFU run's time at
      ``eval_every`` 2 (``measurement_seconds``), and the last interval's overshoot cost it
      utility (``docs/performance.md``).
    - ``lr_backoffs``: when the retain loss crosses its bound at the first measurement, so that
      no step is kept and the weights would come back unchanged, ``run`` starts again from the
      source at half the learning rate, at most this many times, then fails saying so. Seen on
      SmolLM2 fine-tuned on TOFU (an H200, bf16): gradient ascent, NPO and refusal at these
      defaults crossed the bound by step 5 and kept no step, which would have registered the
      source's weights as an unlearned model.
    - ``weight_decay``, ``lr_schedule`` (``constant`` or ``linear`` decay to 0 at the last
      step) and ``warmup_epochs`` (linear warm-up over ``int(warmup_epochs x forget records) //
      batch_size`` steps, OpenUnlearning's formula) shape the optimiser.
    - ``pair_format``: how a ``{"prompt", "answer"}`` record is tokenized: ``auto`` (the chat
      template when the tokenizer has one, else ``plain``), ``plain`` or ``chat``, as the
      engine's fine-tuning does (``methods.data.pair_ids``).
    - ``adapter``: ``none`` trains every weight; ``lora`` trains a fresh LoRA adapter of rank
      ``lora_r`` (scale ``lora_alpha``/r, dropout ``lora_dropout``) on ``lora_target_modules``
      (module-name suffixes; ``None`` = every linear layer of the decoder layers) and merges it.
    - ``preset``: the named set of defaults the other values started from (``lethe`` unless a
      method defines others, e.g. NPO's ``reference``); recorded for the report.
    - ``salient_fraction``: when set, only that fraction of the trainable weights' rows (output
      channels), those with the largest gradient of the forget records' NLL at the start, may
      change (``methods.saliency``, after SURE: updates concentrated in few weights and taken
      at a larger learning rate survive 4-bit quantization). ``None`` trains every row.
      Needs ``weight_decay`` 0: decoupled decay would move the rows the mask holds still.
    - ``quantized_forget_bits``: when set (4, say), each step also takes the method's forget
      term on the weights rounded as verification's quantization attack rounds them (``engine.
      quantization``, groups of ``quantized_forget_group_size``) and adds its gradient, taken at
      the rounded point, to the step's (the straight-through estimate of quantization-aware
      training). With a target, each of the two forget terms (full precision, rounded) is taken
      only while its own loss was below the forget-loss target at the last measurement (past it,
      pushing further only costs utility while the other loss gets there: on TOFU an ungated
      run drove the rounded loss to 12.6 nats against a target of 3.2); the retain term is taken
      on every step, and the stop waits until the forget records score at the target both as
      the weights are and as they round. Without a target both terms are taken on every step.
      Without the rounded term a run that moves weights by less
      than half a quantization step is undone by rounding (4-bit quantization restored about half
      of what gradient difference removed on SmolLM2 fine-tuned on TOFU, ``docs/performance.md``).
      What it withstands is this round-to-nearest scheme; others (GPTQ, NF4) round differently.
      Not with ``salient_fraction`` (its rows compute outside the weights being rounded), nor
      on a LoRA adapter for a method whose forget term reads the reference (NPO, IdkDPO, RMU):
      the adapter-off reference would read the rounded base weights.
    """

    #: Named presets: values that replace the class defaults before the caller's own values.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    learning_rate: float = 3e-5
    max_steps: int = 600
    epochs: int | None = None
    batch_size: int = 8
    retain_batch_size: int = 8
    forget_loss_target: float | None = None
    forget_loss_target_ratio: float = 8.0
    forget_loss_target_from: str = "retain"
    stop_at_forget_target: bool = True
    max_retain_loss_increase: float | None = 0.05
    eval_every: int = 5
    eval_adaptive: bool = False
    lr_backoffs: int = 3
    retain_eval_size: int = 64
    retain_eval_held_out: bool = False
    retain_loss: str = "nll"
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    pair_format: str = "auto"
    adapter: str = "none"
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_target_modules: tuple[str, ...] | None = None
    preset: str = "lethe"
    salient_fraction: float | None = None
    quantized_forget_bits: int | None = None
    quantized_forget_group_size: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        name = type(self).__name__
        require(
            0 < self.learning_rate <= 1, name, "learning_rate", f"must be in (0, 1], got {self.learning_rate}"
        )
        require(
            1 <= self.max_steps <= 1_000_000,
            name,
            "max_steps",
            f"must be in [1, 1000000], got {self.max_steps}",
        )
        require(
            self.epochs is None or 1 <= self.epochs <= 10_000,
            name,
            "epochs",
            f"must be in [1, 10000] or null, got {self.epochs}",
        )
        require(self.batch_size >= 1, name, "batch_size", f"must be at least 1, got {self.batch_size}")
        require(
            self.retain_batch_size >= 1,
            name,
            "retain_batch_size",
            f"must be at least 1, got {self.retain_batch_size}",
        )
        require(
            self.forget_loss_target is None or self.forget_loss_target > 0,
            name,
            "forget_loss_target",
            f"must be positive, got {self.forget_loss_target}",
        )
        require(
            self.forget_loss_target_ratio > 1,
            name,
            "forget_loss_target_ratio",
            f"must be greater than 1, got {self.forget_loss_target_ratio}",
        )
        require(
            self.forget_loss_target_from in FORGET_LOSS_TARGET_SOURCES,
            name,
            "forget_loss_target_from",
            f"must be one of {FORGET_LOSS_TARGET_SOURCES}, got {self.forget_loss_target_from!r}",
        )
        require(
            self.max_retain_loss_increase is None or self.max_retain_loss_increase > 0,
            name,
            "max_retain_loss_increase",
            f"must be positive, got {self.max_retain_loss_increase}",
        )
        require(self.eval_every >= 1, name, "eval_every", f"must be at least 1, got {self.eval_every}")
        require(
            isinstance(self.eval_adaptive, bool),
            name,
            "eval_adaptive",
            f"must be true or false, got {self.eval_adaptive!r}",
        )
        require(
            isinstance(self.lr_backoffs, int) and 0 <= self.lr_backoffs <= 10,
            name,
            "lr_backoffs",
            f"must be an integer from 0 to 10, got {self.lr_backoffs!r}",
        )
        require(
            self.retain_eval_size >= 1,
            name,
            "retain_eval_size",
            f"must be at least 1, got {self.retain_eval_size}",
        )
        require(
            self.retain_loss in RETAIN_LOSSES,
            name,
            "retain_loss",
            f"must be one of {RETAIN_LOSSES}, got {self.retain_loss!r}",
        )
        require(self.max_grad_norm > 0, name, "max_grad_norm", f"must be positive, got {self.max_grad_norm}")
        require(
            0 <= self.weight_decay <= 1, name, "weight_decay", f"must be in [0, 1], got {self.weight_decay}"
        )
        require(
            self.lr_schedule in LR_SCHEDULES,
            name,
            "lr_schedule",
            f"must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}",
        )
        require(
            0 <= self.warmup_epochs <= 1000,
            name,
            "warmup_epochs",
            f"must be in [0, 1000], got {self.warmup_epochs}",
        )
        require(
            self.pair_format in PAIR_FORMATS,
            name,
            "pair_format",
            f"must be one of {PAIR_FORMATS}, got {self.pair_format!r}",
        )
        require(self.adapter in ADAPTERS, name, "adapter", f"must be one of {ADAPTERS}, got {self.adapter!r}")
        require(1 <= self.lora_r <= 1024, name, "lora_r", f"must be in [1, 1024], got {self.lora_r}")
        require(self.lora_alpha > 0, name, "lora_alpha", f"must be positive, got {self.lora_alpha}")
        require(
            0 <= self.lora_dropout < 1, name, "lora_dropout", f"must be in [0, 1), got {self.lora_dropout}"
        )
        require(
            self.lora_target_modules is None
            or (
                len(self.lora_target_modules) > 0
                and all(isinstance(m, str) and m for m in self.lora_target_modules)
            ),
            name,
            "lora_target_modules",
            "must be a non-empty list of module names or null",
        )
        require(
            self.salient_fraction is None or 0 < self.salient_fraction < 1,
            name,
            "salient_fraction",
            f"must be in (0, 1) or null, got {self.salient_fraction}",
        )
        require(
            self.salient_fraction is None or self.weight_decay == 0,
            name,
            "salient_fraction",
            f"needs weight_decay 0 (decay would move the rows the mask holds still), got weight_decay {self.weight_decay}",
        )
        require(
            self.quantized_forget_bits is None or self.quantized_forget_bits in QUANTIZATION_BITS,
            name,
            "quantized_forget_bits",
            f"must be one of {QUANTIZATION_BITS} or null, got {self.quantized_forget_bits}",
        )
        require(
            self.quantized_forget_group_size >= 1,
            name,
            "quantized_forget_group_size",
            f"must be at least 1, got {self.quantized_forget_group_size}",
        )
        require(
            self.quantized_forget_bits is None or self.salient_fraction is None,
            name,
            "quantized_forget_bits",
            "cannot be combined with salient_fraction (the salient rows compute outside the rounded weights)",
        )
        presets = ("lethe", *type(self).PRESETS)
        require(self.preset in presets, name, "preset", f"must be one of {presets}, got {self.preset!r}")
        require(self.seed >= 0, name, "seed", f"must be non-negative, got {self.seed}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None):
        """Build validated params from JSON; a ``preset`` supplies defaults the other keys override.

        Unknown keys, unknown presets and out-of-range values raise ``ValueError``.
        """
        data = dict(data or {})
        preset = data.get("preset", "lethe")
        if preset != "lethe":
            if not isinstance(preset, str) or preset not in cls.PRESETS:
                raise ValueError(
                    f"{cls.__name__}.preset: must be one of {('lethe', *cls.PRESETS)}, got {preset!r}"
                )
            data = {**cls.PRESETS[preset], **data}
        return dataclass_from_dict(cls, data)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data.get("lora_target_modules") is not None:
            data["lora_target_modules"] = list(data["lora_target_modules"])
        return data

    @property
    def target_from_non_members(self) -> bool:
        """Whether the run stops where the forget records score like non-members (it needs some)."""
        return (
            self.stop_at_forget_target
            and self.forget_loss_target is None
            and self.forget_loss_target_from == "non_members"
        )

    def total_steps(self, n_forget: int) -> int:
        """Return the step budget for ``n_forget`` forget records (``epochs`` wins over ``max_steps``)."""
        if self.epochs is None:
            return self.max_steps
        return self.epochs * steps_per_epoch(n_forget, self.batch_size)

    def warmup_steps(self, n_forget: int) -> int:
        """Return the warm-up steps: ``int(warmup_epochs x n_forget) // batch_size``."""
        return int(self.warmup_epochs * n_forget) // self.batch_size


def next_measurement(
    points: Sequence[tuple[int, float]], *, target: float | None, params: ApproximateParams
) -> int:
    """Return the step of the measurement after the last of ``points`` (step, the loss the stop reads).

    Every ``eval_every`` steps; with ``eval_adaptive``, while the last two points show the loss
    rising toward ``target`` and still below it, after half the steps that rise predicts are
    left (at least one, at most ``eval_every``). Halving allows for the rise speeding up, as
    ascent on the forget loss does once the records start to go.
    """
    last_step, last = points[-1]
    if not params.eval_adaptive or target is None or len(points) < 2 or not last < target:
        return last_step + params.eval_every
    previous_step, previous = points[-2]
    rise = (last - previous) / max(last_step - previous_step, 1)
    if not rise > 0:
        return last_step + params.eval_every
    left = (target - last) / rise
    return last_step + max(1, min(params.eval_every, int(left / 2)))


def _indices_at(n: int, *, step: int, batch_size: int, seed: int, salt: int) -> list[int]:
    """Return the example indices of batch ``step`` of an endless, reshuffled-per-epoch stream."""
    per_epoch = steps_per_epoch(n, batch_size)
    epoch, index = divmod(step, per_epoch)
    order = epoch_order(n, seed=seed, epoch=epoch, salt=salt)
    return order[index * batch_size : (index + 1) * batch_size]


def retain_split(n: int, params: ApproximateParams, *, replayed: bool = True) -> tuple[list[int], list[int]]:
    """Return (the retain records the loss bound is measured on, those the retain term trains on).

    By default the bound's sample is drawn from every retain record and the retain term trains
    on all of them, so it can fit the very records the bound reads. With
    ``retain_eval_held_out`` the sample (at most half the records) is kept out of the retain
    term's batches, so the bound measures what unlearning cost on records like the retain set,
    not how well the retain term fits its own batches. A method that trains on no retain record
    (``replayed=False``: gradient ascent, a retain weight of 0) has nothing to hold out from, so
    its sample is the default one.
    """
    if not (params.retain_eval_held_out and replayed):
        return sample_indices(n, size=params.retain_eval_size, seed=params.seed), list(range(n))
    if n < 2:
        raise ValueError(
            f"retain_eval_held_out needs at least 2 retain records (one to measure, one to train on), got {n}"
        )
    held_out = sample_indices(n, size=min(params.retain_eval_size, n // 2), seed=params.seed)
    kept = set(held_out)
    return held_out, [i for i in range(n) if i not in kept]


def _lr_factor(step: int, *, warmup: int, total: int, schedule: str) -> float:
    """Return the learning-rate multiplier at ``step`` (Hugging Face's linear schedule with warm-up)."""
    if step < warmup:
        return step / max(1, warmup)
    if schedule == "constant":
        return 1.0
    return max(0.0, (total - step) / max(1, total - warmup))


@dataclass
class UnlearnOutcome:
    """What :meth:`ApproximateMethod.unlearn` did to the model it was given (in place)."""

    steps: int
    stopped_reason: str
    metrics: dict[str, Any]
    seconds: float
    trainable_parameters: int
    reference: str | None


class ApproximateMethod(UnlearningMethod):
    """An unlearning method that fine-tunes the model on forget (and retain) batches."""

    guarantee = STATISTICAL
    #: What the report files the result under: weights changed so the records score as unseen
    #: (approximate unlearning), or only the model's answers changed (output suppression).
    framework: ClassVar[str] = FRAMEWORK_APPROXIMATE
    #: Whether the loss needs the model as it was at the start (NPO, IdkDPO, RMU).
    needs_reference = False
    #: Whether the loss trains on retain batches (the guard always measures retain loss).
    trains_on_retain = False
    #: The ``retain_loss`` values the method's retain term takes: a token-level term
    #: (:meth:`retain_term`) takes ``nll`` or ``kl``; RMU's activation matching and gradient
    #: ascent's absent term only the default.
    retain_losses: ClassVar[tuple[str, ...]] = ("nll",)

    def uses_retain(self, params) -> bool:
        """Return whether this run trains on retain batches (a zero ``retain_weight`` turns it off)."""
        return self.trains_on_retain and getattr(params, "retain_weight", 1.0) > 0

    def uses_reference(self, params) -> bool:
        """Return whether this run needs the model as it was at the start (the method, or a KL retain term)."""
        return self.needs_reference or (params.retain_loss == "kl" and self.uses_retain(params))

    def forget_term_reads_reference(self, params) -> bool:
        """Return whether the forget term (not the retain term) reads the model as it was at the start."""
        return self.needs_reference

    def parse_params(self, params):
        """Return a validated ``Params`` from a dict (presets applied) or pass ``Params`` through.

        Raises ``ValueError`` for a ``retain_loss`` the method's retain term does not take.
        """
        parsed = params if isinstance(params, self.Params) else self.Params.from_dict(params)
        if parsed.retain_loss not in self.retain_losses:
            raise ValueError(
                f"{type(parsed).__name__}.retain_loss: {self.name} takes {list(self.retain_losses)}, "
                f"got {parsed.retain_loss!r} (a KL retain term replaces the retain NLL of gradient "
                "difference, NPO, SimNPO and refusal)"
            )
        if (
            parsed.quantized_forget_bits is not None
            and parsed.adapter == "lora"
            and self.forget_term_reads_reference(parsed)
        ):
            raise ValueError(
                f"{type(parsed).__name__}.quantized_forget_bits: {self.name}'s forget term reads the model at "
                "the start, which on a LoRA adapter is the base weights the rounding changes; use full "
                "weights (adapter 'none') or leave quantized_forget_bits null"
            )
        return parsed

    def retain_term(self, *, model, batch: Mapping[str, Any], params, reference=None):
        """Return ``retain_weight`` x the retain term on ``batch["retain"]``, or 0 when the run has none.

        The term is the retain records' mean token NLL, or with ``retain_loss="kl"`` the mean
        token KL divergence from ``reference`` (see ``ApproximateParams``).
        """
        retain = batch.get("retain")
        if retain is None or not self.uses_retain(params):
            return 0.0
        if params.retain_loss == "kl":
            if reference is None:
                raise ValueError(f"{self.name}: retain_loss 'kl' needs the reference model")
            with reference.active() as ref_model:
                reference_logits = next_token_logits(ref_model, retain)
            term = mean_token_kl(model, retain, reference_logits)
        else:
            term = mean_token_nll(model, retain)
        return params.retain_weight * term

    @abc.abstractmethod
    def forget_term(self, *, model, batch: Mapping[str, Any], params, reference=None):
        """Return the forget term to *minimise* on ``batch["forget"]`` (weighted as the method weighs it).

        ``reference`` (when :meth:`uses_reference`) has ``active()``, a context manager yielding
        the model as it was at the start, without grad. Kept apart from the retain term so the
        loop can take each where it is needed (the quantization-aware step takes the forget term
        on the rounded weights, and each forget term only until its own loss reaches the target).
        """

    def compute_loss(self, *, model, batch: Mapping[str, Any], params, reference=None):
        """Return the scalar loss to *minimise* for one ``{"forget": …, "retain": …}`` batch: forget plus retain term."""
        return self.forget_term(
            model=model, batch=batch, params=params, reference=reference
        ) + self.retain_term(model=model, batch=batch, params=params, reference=reference)

    # Hooks a method may override -------------------------------------------------------------

    def lora_target_modules(self, model, params):
        """Return the LoRA targets when ``adapter="lora"``: the params', else every decoder linear."""
        return None if params.lora_target_modules is None else list(params.lora_target_modules)

    def configure_trainable(self, model, params) -> None:
        """Set ``requires_grad``: every weight on full weights; a peft model's own choice (the adapter)."""
        if not is_peft_model(model):
            model.requires_grad_(True)

    def setup(self, *, model, tokenizer, params, forget_records, block_size: int, device) -> None:
        """Prepare per-run state before the first step (RMU's layer and control vector, refusal answers)."""

    def extend_batch(self, batch: dict, *, forget_indices: Sequence[int], pad_id: int, device) -> None:
        """Add method-specific parts to a batch (the refusal answers of the same forget records)."""

    def provenance_extra(self) -> dict[str, Any]:
        """Return method-specific facts for ``lethe_unlearning.json`` (RMU's resolved layer)."""
        return {}

    # The loop --------------------------------------------------------------------------------

    def unlearn(
        self,
        *,
        model,
        tokenizer,
        forget_records: Sequence,
        retain_records: Sequence,
        non_member_records: Sequence = (),
        params=None,
        block_size: int,
        device=None,
        dtype=None,
        progress=None,
        should_stop=None,
        checkpoint_dir=None,
        checkpoint_every: int = 50,
        fingerprint_extra: str = "",
    ) -> UnlearnOutcome:
        """Run the unlearning loop on ``model`` in memory (changed in place) and return what it did.

        ``model`` is a causal LM (full weights, or a ``peft`` model whose adapter trains); it is
        moved to ``device`` (``None``: the best here, with bf16 autocast where the GPU supports
        it; an explicit device autocasts in bf16 only when ``dtype`` is ``torch.bfloat16`` and
        the device is CUDA). Records are strings or ``{"prompt", "answer"}`` mappings.
        ``non_member_records`` (same kinds) are records the model was never trained on, read only
        when the forget-loss target comes from them (``forget_loss_target_from="non_members"``).
        ``run`` is this plus loading, an optional fresh LoRA adapter, merging and saving. Raises
        ``ValueError`` under several processes (see the module docstring).
        """
        started = time.monotonic()
        params = self.parse_params(params)
        forget_records, retain_records = list(forget_records), list(retain_records)
        if not forget_records:
            raise ValueError("forget_texts is empty: there is nothing to unlearn")
        if self.uses_retain(params) and not retain_records:
            raise ValueError(f"{self.name} needs retain_texts to regularise on")
        non_member_records = list(non_member_records) if params.target_from_non_members else []
        if params.target_from_non_members and not non_member_records:
            raise ValueError(
                f"{self.name}: forget_loss_target_from 'non_members' needs non_member_texts, records of "
                "the same kind the model was never trained on"
            )
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        if device is None:
            device, dtype = resolve_device(device)
        elif dtype is None:
            dtype = torch.float32
        device = torch.device(device)
        accelerator = single_process_accelerator(
            device,
            bf16=device.type == "cuda" and dtype == torch.bfloat16,
            what=self.name,
            why="RMU's layer hooks and the reference read the bare model, and every process would "
            "write the same checkpoints",
        )
        device = accelerator.device

        self.configure_trainable(model, params)
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError(f"{self.name}: no parameter is trainable")
        # Single process: the prepared model is the bare one, so hooks, the adapter switch and
        # the frozen copy (made here, after placement, so it sits on the same device) see it.
        model = accelerator.unwrap_model(accelerator.prepare(model))
        reference = make_reference(model) if self.uses_reference(params) else None
        pad = pad_token_id(tokenizer)
        forget_ex = encode_records(
            tokenizer, forget_records, block_size=block_size, pair_format=params.pair_format
        )
        retain_ex = LazyRecordExamples(
            tokenizer, retain_records, block_size=block_size, pair_format=params.pair_format
        )
        non_member_ex = encode_records(
            tokenizer, non_member_records, block_size=block_size, pair_format=params.pair_format
        )
        eval_indices, retain_pool = retain_split(len(retain_ex), params, replayed=self.uses_retain(params))
        retain_eval = [retain_ex[i] for i in eval_indices]
        self.setup(
            model=model,
            tokenizer=tokenizer,
            params=params,
            forget_records=forget_records,
            block_size=block_size,
            device=device,
        )
        # From the weights as given, before any checkpoint is loaded: a resumed run, or the
        # learning-rate backoff's restart, trains the same rows.
        salient = (
            salient_rows(
                model,
                forget_ex,
                fraction=params.salient_fraction,
                pad_id=pad,
                device=device,
                batch_size=params.batch_size,
                autocast=accelerator.autocast,
            )
            if params.salient_fraction is not None
            else None
        )
        # The optimiser is made inside, over what can move (a masked run: the salient rows only),
        # so it and the checkpoints hold nothing the mask holds still.
        with salient_rows_only(model, salient) as trained:
            total_steps = params.total_steps(len(forget_records))
            warmup = params.warmup_steps(len(forget_records))
            optimizer = torch.optim.AdamW(
                trained.parameters, lr=params.learning_rate, weight_decay=params.weight_decay
            )  # PyTorch's default, as make_optimizer: unchanged on the CPU, multi-tensor on CUDA
            # The scheduler drives the bare optimiser, whose param_groups the prepared one shares.
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer,
                lambda step: _lr_factor(step, warmup=warmup, total=total_steps, schedule=params.lr_schedule),
            )
            optimizer = accelerator.prepare(optimizer)

            measuring = {"seconds": 0.0}

            @contextlib.contextmanager
            def timed_measurement():
                """Add the block's seconds to the run's measuring time (what the stop decisions cost)."""
                began = time.monotonic()
                try:
                    yield
                finally:
                    measuring["seconds"] += time.monotonic() - began

            def losses(*, retain: bool = True) -> tuple[float | None, ...]:
                """Return the mean forget and retain losses, and the non-members' when they set the target.

                ``retain=False`` leaves the retain loss out (None): during the run it decides
                something only under the retain bound, and it is the largest of the three samples,
                so a run without the bound that measures often (a non-member target checked every
                step) would spend most of its measuring on a number nothing reads.
                """
                # Autocast comes from the accelerator; fp32 here keeps the helper from adding its own.
                with timed_measurement(), accelerator.autocast():
                    measured = [
                        None
                        if examples is retain_eval and not retain
                        else evaluate_examples_loss(
                            model, examples, pad_id=pad, device=device, dtype=torch.float32
                        )
                        if examples
                        else float("nan")
                        for examples in (forget_ex, retain_eval, non_member_ex)
                    ]
                return tuple(measured if non_member_ex else measured[:2])

            quantized_bits = params.quantized_forget_bits

            def rounded():
                """Return the block in which the model computes with its weights rounded (``quantized_forget_bits``)."""
                return quantized_weights(
                    model, bits=quantized_bits, group_size=params.quantized_forget_group_size
                )

            def quantized_forget_loss() -> float:
                """Return the forget records' mean loss on the rounded weights (what a quantizing attacker reads)."""
                with timed_measurement(), rounded(), accelerator.autocast():
                    return evaluate_examples_loss(
                        model, forget_ex, pad_id=pad, device=device, dtype=torch.float32
                    )

            fingerprint = hashlib.sha256(
                json.dumps(
                    [
                        self.name,
                        params.as_dict(),
                        fingerprint_extra,
                        texts_fingerprint([record_text(r) for r in forget_records]),
                        texts_fingerprint([record_text(r) for r in retain_records]),
                    ]
                    + (
                        [texts_fingerprint([record_text(r) for r in non_member_records])]
                        if non_member_records
                        else []
                    )
                    # A masked run's checkpoints hold its salient rows only (weights and optimiser
                    # state), named by the parameters they sit in.
                    + ([sorted(salient.masks), "salient rows"] if salient is not None else [])
                ).encode()
            ).hexdigest()

            start_step, previous_seconds, resumed_from = 0, 0.0, None
            state = None
            if checkpoint_dir is not None:
                latest = latest_checkpoint(checkpoint_dir)
                if latest is not None:
                    state = load_state(latest)
                    if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
                        raise CheckpointMismatch(f"checkpoint {latest} belongs to another unlearning run")
            if state is not None:
                try:
                    trained.load_state(state["model"])
                except ValueError as error:
                    raise CheckpointMismatch(f"checkpoint {latest} does not fit this run: {error}") from None
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
                restore_rng_state(state["rng"])
                start_step = resumed_from = int(state["step"])
                previous_seconds = float(state["compute_seconds"])
                before = dict(state["before"])
                history = [tuple(h) for h in state["history"]]
                quantized_history = [tuple(h) for h in state.get("quantized_history", [])]
            else:
                measured = losses()
                before = {"forget": measured[0], "retain": measured[1]}
                if non_member_ex:
                    before["non_members"] = measured[2]
                history = [(0, *measured)]
                quantized_history = [(0, quantized_forget_loss())] if quantized_bits is not None else []
            # Each entry of history: (step, forget loss, retain loss[, non-members' loss]); the
            # retain loss is None between the first and last entries of a run without the bound.
            target = None
            if params.stop_at_forget_target:
                target = params.forget_loss_target
                if target is None and non_member_ex:
                    target = before["non_members"]
                elif target is None:
                    base = before["retain"] if math.isfinite(before["retain"]) else before["forget"]
                    target = params.forget_loss_target_ratio * base
            bound = None
            if params.max_retain_loss_increase is not None and math.isfinite(before["retain"]):
                bound = before["retain"] + params.max_retain_loss_increase

            logger.info(
                "engine.unlearn.started",
                extra={
                    "method": self.name,
                    "forget_records": len(forget_records),
                    "retain_records": len(retain_records),
                    "start_step": start_step,
                    "device": str(device),
                    "trainable_parameters": trained.count(),
                },
            )
            last_good = trained.state() if bound else None
            rounded_steps = int(state.get("quantized_steps", 0)) if state is not None else 0
            # Steps that took the forget term at full precision (all of them but in a gated
            # quantization-aware run); a checkpoint from before it was kept counts every step.
            full_precision_steps = (
                int(state.get("full_precision_forget_steps", state["step"])) if state is not None else 0
            )
            last_checkpoint_step = start_step
            stopped_reason, steps_done = "max_steps", total_steps
            model.train()
            measure_at = start_step  # the run's first decisions are taken before its first step
            for step in range(start_step, total_steps + 1):
                if step >= measure_at or step == total_steps:
                    if step != history[-1][0]:
                        history.append((step, *losses(retain=bound is not None or step == total_steps)))
                        if quantized_bits is not None:
                            quantized_history.append((step, quantized_forget_loss()))
                    forget_now, retain_now = history[-1][1], history[-1][2]
                    if quantized_bits is not None:
                        # Forgotten only once it is forgotten as the weights are and as they round.
                        forget_now = min(forget_now, quantized_history[-1][1])
                    if non_member_ex:
                        # What records the model never saw score now: the run's damage raises it too.
                        target = history[-1][3]
                    if bound is not None and retain_now > bound:
                        trained.load_state(last_good)
                        stopped_reason, steps_done = (
                            "retain_loss_bound",
                            history[-2][0] if len(history) > 1 else 0,
                        )
                        break
                    if target is not None and forget_now >= target:
                        stopped_reason, steps_done = "forget_loss_target", step
                        break
                    if last_good is not None:
                        last_good = trained.state()
                    # The loss the stop reads at the last two measurements (quantization-aware:
                    # the lower of the two ways the records score).
                    rounded_recent = dict(quantized_history[-2:])
                    measure_at = next_measurement(
                        [
                            (entry[0], min(entry[1], rounded_recent.get(entry[0], math.inf)))
                            for entry in history[-2:]
                        ],
                        target=target,
                        params=params,
                    )
                    if (
                        checkpoint_dir is not None
                        and step - last_checkpoint_step >= checkpoint_every
                        and step < total_steps
                    ):
                        save_checkpoint(
                            checkpoint_dir,
                            step=step,
                            state={
                                "format": CHECKPOINT_FORMAT,
                                "step": step,
                                "fingerprint": fingerprint,
                                "model": trained.state(),
                                "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(),
                                "rng": capture_rng_state(),
                                "before": before,
                                "history": [list(h) for h in history],
                                "quantized_history": [list(h) for h in quantized_history],
                                "quantized_steps": rounded_steps,
                                "full_precision_forget_steps": full_precision_steps,
                                "compute_seconds": previous_seconds + time.monotonic() - started,
                            },
                        )
                        last_checkpoint_step = step
                if step == total_steps:
                    break
                if should_stop is not None and should_stop():
                    logger.info("engine.unlearn.cancelled", extra={"method": self.name, "step": step})
                    raise TrainingCancelled(step=step, total=total_steps)
                forget_indices = _indices_at(
                    len(forget_ex), step=step, batch_size=params.batch_size, seed=params.seed, salt=1
                )
                batch = {
                    "forget": collate_examples(
                        [forget_ex[i] for i in forget_indices], pad_id=pad, device=device
                    ),
                    "retain": (
                        collate_examples(
                            [
                                retain_ex[retain_pool[j]]
                                for j in _indices_at(
                                    len(retain_pool),
                                    step=step,
                                    batch_size=params.retain_batch_size,
                                    seed=params.seed,
                                    salt=2,
                                )
                            ],
                            pad_id=pad,
                            device=device,
                        )
                        if len(retain_pool) and self.uses_retain(params)
                        else None
                    ),
                }
                self.extend_batch(batch, forget_indices=forget_indices, pad_id=pad, device=device)
                # A quantization-aware run with a target takes each forget term only while its own
                # loss (as the weights are, as they round) was below the target at the last
                # measurement: past it, pushing further only costs utility while the other term
                # gets there (the stop waits for both; on TOFU the ungated rounded term drove its
                # loss to 12.6 nats against a target of 3.2).
                gated = quantized_bits is not None and target is not None
                full_precision_forget = not (gated and history[-1][1] >= target)
                rounded_forget = quantized_bits is not None and not (
                    gated and quantized_history[-1][1] >= target
                )
                with accelerator.autocast():
                    loss = (
                        self.compute_loss(model=model, batch=batch, params=params, reference=reference)
                        if full_precision_forget
                        else self.retain_term(model=model, batch=batch, params=params, reference=reference)
                    )
                if torch.is_tensor(loss):  # a plain 0: the forget term is off and there is no retain term
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"{self.name}: loss became {float(loss)} at step {step}; lower learning_rate"
                        )
                    accelerator.backward(loss)
                full_precision_steps += full_precision_forget
                if rounded_forget:
                    # The forget term again on the rounded weights; its gradient, taken there, is
                    # added to the step's (backward inside the block: the graph holds the
                    # rounded weights).
                    with rounded():
                        with accelerator.autocast():
                            rounded_loss = self.forget_term(
                                model=model, batch=batch, params=params, reference=reference
                            )
                        if not torch.isfinite(rounded_loss):
                            raise FloatingPointError(
                                f"{self.name}: the rounded weights' loss became {float(rounded_loss)} at step "
                                f"{step}; lower learning_rate"
                            )
                        accelerator.backward(rounded_loss)
                    rounded_steps += 1
                accelerator.clip_grad_norm_(trained.parameters, params.max_grad_norm)
                optimizer.step()
                trained.write_back()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if progress is not None:
                    progress(step + 1, total_steps)

            model.eval()
            forget_after, retain_after, *non_members_after = losses()
            quantized_after = quantized_forget_loss() if quantized_bits is not None else None
            # Give the caller its model back without the bf16 forward wrapper prepare() installed.
            accelerator.unwrap_model(model, keep_fp32_wrapper=False)
            seconds = time.monotonic() - started
            metrics = {
                "forget_loss_before": before["forget"],
                "forget_loss_after": forget_after,
                "retain_loss_before": before["retain"],
                "retain_loss_after": retain_after,
                "forget_loss_target": target,
                "forget_loss_target_from": (
                    None
                    if target is None
                    else "non_members"
                    if non_member_ex
                    else "given"
                    if params.forget_loss_target is not None
                    else "retain"
                ),
                "non_member_records": len(non_member_ex),
                "non_member_loss_before": before.get("non_members"),
                "non_member_loss_after": non_members_after[0] if non_members_after else None,
                "retain_loss_bound": bound,
                "stopped_reason": stopped_reason,
                "forget_records": len(forget_records),
                "forget_pairs": sum(is_pair(r) for r in forget_records),
                "retain_eval_records": len(retain_eval),
                "retain_eval_held_out": len(retain_pool) < len(retain_ex),
                "total_steps": total_steps,
                "warmup_steps": warmup,
                "history": [list(h) for h in history],
                "resumed_from_step": resumed_from,
                "compute_seconds": previous_seconds + seconds,
                # Of this process's seconds, those spent measuring the losses the stop reads
                # (before, at every eval_every steps, after; a resumed run: since the resume).
                "measurement_seconds": measuring["seconds"],
                "trainable_parameters": trained.count(),
                "reference": None if reference is None else reference.kind,
                **(
                    {
                        "quantized_forget_bits": quantized_bits,
                        "quantized_forget_group_size": params.quantized_forget_group_size,
                        "quantized_forget_loss_before": quantized_history[0][1]
                        if quantized_history
                        else None,
                        "quantized_forget_loss_after": quantized_after,
                        "quantized_forget_history": [list(h) for h in quantized_history],
                        "quantized_forget_steps": rounded_steps,
                        "full_precision_forget_steps": full_precision_steps,
                    }
                    if quantized_bits is not None
                    else {}
                ),
                **(salient.summary() if salient is not None else {}),
                **self.provenance_extra(),
            }
            return UnlearnOutcome(
                steps=steps_done,
                stopped_reason=stopped_reason,
                metrics=metrics,
                seconds=seconds,
                trainable_parameters=metrics["trainable_parameters"],
                reference=metrics["reference"],
            )

    def run(
        self,
        *,
        source_model_dir,
        output_dir,
        forget_texts,
        retain_texts,
        params=None,
        full_texts=None,
        forget_ids=None,
        progress=None,
        should_stop=None,
        checkpoint_dir=None,
        checkpoint_every=50,
        device=None,
        overwrite=False,
        non_member_texts=None,
    ) -> MethodResult:
        """Load the source, unlearn (on full weights or a fresh LoRA adapter), merge and save.

        ``forget_texts``/``retain_texts``/``non_member_texts`` may hold ``{"prompt", "answer"}``
        mappings as well as strings (answer tokens only are then trained and measured).
        """
        started = time.monotonic()
        params = self.parse_params(params)
        forget_texts, retain_texts = list(forget_texts), list(retain_texts)
        if not forget_texts:
            raise ValueError("forget_texts is empty: there is nothing to unlearn")
        if self.uses_retain(params) and not retain_texts:
            raise ValueError(f"{self.name} needs retain_texts to regularise on")
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        source = Path(source_model_dir)
        if is_sisa_dir(source):
            raise ValueError(
                f"{self.name} fine-tunes one model; {source} is a SISA ensemble: use 'sisa' or 'retrain'"
            )
        out = Path(output_dir)
        if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
            raise FileExistsError(f"refusing to overwrite non-empty {out}; pass overwrite=True")

        device, dtype = resolve_device(device)
        parent_sha = weights_sha256(source)
        tokenizer = AutoTokenizer.from_pretrained(str(source))

        def load_model():
            if is_adapter_dir(source):
                # A LoRA fine-tune: its base with the adapter merged in, so every weight the method
                # changes is saved (from_pretrained would attach the adapter and save only it).
                loaded, _ = load_causal_lm(source, device="cpu", dtype=torch.float32)
            else:
                loaded = AutoModelForCausalLM.from_pretrained(
                    str(source), dtype=torch.float32, local_files_only=True
                )
            if params.adapter == "lora":
                loaded = wrap_with_lora(
                    loaded,
                    r=params.lora_r,
                    alpha=params.lora_alpha,
                    dropout=params.lora_dropout,
                    target_modules=self.lora_target_modules(loaded, params),
                )
            return loaded

        # A resumed job continues the attempt whose checkpoints it finds (each attempt's learning
        # rate is in its checkpoints' fingerprint, so each keeps its own directory).
        first = max(
            (
                k
                for k in range(1, params.lr_backoffs + 1)
                if checkpoint_dir is not None and _backoff_dir(checkpoint_dir, k).is_dir()
            ),
            default=0,
        )
        tried: list[float] = []
        model = load_model()
        block = block_size_for(source, model)
        # An attempt that kept no step has put back the weights it started from, so the next one
        # starts from the source without reading it again (tens of GB for a 7B model); with the
        # random state put back too, the attempt that keeps steps gives exactly what a run at its
        # learning rate gives, so the recorded parameters reproduce the model.
        start_rng = capture_rng_state()
        for attempt in range(first, params.lr_backoffs + 1):
            attempt_params = dataclasses.replace(params, learning_rate=params.learning_rate * 0.5**attempt)
            restore_rng_state(start_rng)
            # unlearn() places the model (through its Accelerator) and picks the autocast.
            outcome = self.unlearn(
                model=model,
                tokenizer=tokenizer,
                forget_records=forget_texts,
                retain_records=retain_texts,
                non_member_records=non_member_texts or (),
                params=attempt_params,
                block_size=block,
                device=device,
                dtype=dtype,
                progress=progress,
                should_stop=should_stop,
                checkpoint_dir=_backoff_dir(checkpoint_dir, attempt),
                checkpoint_every=checkpoint_every,
                fingerprint_extra=parent_sha,
            )
            tried.append(attempt_params.learning_rate)
            if outcome.steps > 0 or outcome.stopped_reason != "retain_loss_bound":
                break
            logger.info(
                "engine.unlearn.lr_backoff",
                extra={"method": self.name, "learning_rate": attempt_params.learning_rate},
            )
        else:
            start, first = outcome.metrics["history"][:2]
            retain_start, first_step, retain_first = start[2], first[0], first[2]
            raise RetainBoundBeforeFirstStep(
                f"{self.name} unlearned nothing: the retain loss crossed its bound (+"
                f"{params.max_retain_loss_increase} nats) at the first measurement (step "
                f"{params.eval_every}) at every learning rate tried ({', '.join(f'{lr:g}' for lr in tried)}), "
                f"so no step was kept and the weights are the source's (at {tried[-1]:g}: "
                f"{retain_start:.3f} nats before, {retain_first:.3f} at step {first_step}, on "
                f"{outcome.metrics['retain_eval_records']} retain records"
                f"{' held out of the retain term' if params.retain_eval_held_out else ''}). Lower "
                "learning_rate or eval_every, allow a larger max_retain_loss_increase, or train a "
                "LoRA adapter."
            )
        params = attempt_params
        if is_peft_model(model):
            model = model.merge_and_unload()
        model.requires_grad_(True)
        seconds = time.monotonic() - started
        metrics = dict(outcome.metrics)
        metrics["lr_backoffs_applied"] = attempt
        metrics["learning_rate"] = params.learning_rate
        recipe = None
        if (source / "lethe_recipe.json").is_file():
            recipe = TrainingRecipe.load(source)
        provenance = {
            "format": "lethe-unlearning/1",
            "method": self.name,
            "guarantee": self.guarantee,
            "framework": self.framework,
            "params": params.as_dict(),
            "parent_weights_sha256": parent_sha,
            "steps": outcome.steps,
            "metrics": {k: v for k, v in metrics.items() if k != "history"},
            "device": str(device),
        }
        sha = save_model_dir(
            model=model,
            tokenizer=tokenizer,
            output_dir=out,
            recipe=recipe,
            overwrite=overwrite,
            provenance={"format": "lethe-training/1", "derived_from": parent_sha, "method": self.name},
            extra_files={"lethe_unlearning.json": provenance_json(provenance)},
        )
        if progress is not None:
            progress(outcome.steps, outcome.steps)
        logger.info(
            "engine.unlearn.finished",
            extra={
                "method": self.name,
                "steps": outcome.steps,
                "stopped_reason": outcome.stopped_reason,
                "sha256": sha,
            },
        )
        return MethodResult(
            method=self.name,
            guarantee=self.guarantee,
            output_dir=str(out),
            weights_sha256=sha,
            steps=outcome.steps,
            seconds=seconds,
            device=str(device),
            params=params.as_dict(),
            metrics=metrics,
        )


def params_fields(params_class) -> list[str]:
    """Return the field names of a params dataclass (for forms and docs)."""
    return [field.name for field in dataclasses.fields(params_class)]
