"""Train a GPT-2-style causal LM from scratch on records, resumably and reproducibly.

A plain loop rather than a ``transformers.Trainer``: it keeps every source of nondeterminism
in sight (initialisation seed, data order, dropout generator), which is what makes ``retrain``
exact and resume-after-crash equal to an uninterrupted run. Device placement, bf16 autocast,
backward and clipping go through ``accelerate.Accelerator`` (``device.make_accelerator``), as
in fine-tuning, so the engine has one device code path; on the CPU in fp32 the Accelerator adds
no arithmetic, and the weights are the ones the hand-written loop produced.

One process only: every process of an ``accelerate launch`` would train on every record and
write the same checkpoints and output directory, so :func:`train_causal_lm` refuses to run
under several processes rather than do that. Data-parallel training is what
``training/finetune.py`` is for.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..checkpoints import (
    atomic_directory,
    capture_rng_state,
    latest_checkpoint,
    load_state,
    restore_rng_state,
    save_checkpoint,
    weights_sha256,
)
from ..device import resolve_device, single_process_accelerator
from .data import (
    collate,
    encode_texts,
    epoch_order,
    mean_token_nll,
    pad_token_id,
    steps_per_epoch,
    texts_fingerprint,
)
from .recipe import TrainingRecipe
from .tokenizer import train_byte_bpe_tokenizer

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
StopCallback = Callable[[], bool]

TRAINING_FILE = "lethe_training.json"
CHECKPOINT_FORMAT = "lethe-train-checkpoint/1"
TOKENIZER_SUBDIR = "tokenizer"


class TrainingCancelled(Exception):
    """Raised when ``should_stop()`` returned true; training stopped before ``step``.

    When a checkpoint directory was given, the state at ``step`` was saved first
    (``checkpoint``), so running the job again resumes there.
    """

    def __init__(self, *, step: int, total: int, checkpoint: str | None = None) -> None:
        super().__init__(f"training cancelled at step {step} of {total}")
        self.step = step
        self.total = total
        self.checkpoint = checkpoint


class CheckpointMismatch(ValueError):
    """Raised when a checkpoint directory holds a run on other data or another recipe."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced and what it cost, as stored on the job and model version."""

    output_dir: str
    weights_sha256: str
    steps: int
    total_steps: int
    records: int
    tokens: int
    seconds: float
    compute_seconds: float
    final_loss: float
    epoch_losses: tuple[float, ...]
    resumed_from_step: int | None
    device: str
    recipe: TrainingRecipe

    def as_dict(self) -> dict:
        """Return a JSON-ready dict (the recipe as a nested dict)."""
        data = asdict(self)
        data["recipe"] = self.recipe.as_dict()
        data["epoch_losses"] = list(self.epoch_losses)
        return data


def build_model(recipe: TrainingRecipe, tokenizer, *, seed: int | None = None):
    """Return a randomly initialised ``GPT2LMHeadModel`` for the recipe.

    The initialisation is seeded by ``seed`` (default ``recipe.seed``), so the same recipe gives
    the same starting weights on every run.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=recipe.block_size,
        n_embd=recipe.n_embd,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        resid_pdrop=recipe.dropout,
        embd_pdrop=recipe.dropout,
        attn_pdrop=recipe.dropout,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad_token_id(tokenizer),
    )
    torch.manual_seed(recipe.seed if seed is None else seed)
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = pad_token_id(tokenizer)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def make_optimizer(model, *, learning_rate: float, weight_decay: float, betas: tuple[float, float]):
    """Return AdamW with decay on matrices only; biases and layer norms are not decayed."""
    import torch

    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # PyTorch's default: the per-parameter loop on the CPU (so CPU runs are unchanged), one
    # multi-tensor kernel per group on CUDA, where a LoRA model's hundreds of small tensors
    # otherwise cost a few kernel launches each per step.
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)


def lr_at(step: int, *, total: int, recipe: TrainingRecipe) -> float:
    """Return the learning rate for ``step`` (0-based): linear warmup, then the recipe's decay.

    The schedule is a pure function of the step, so a checkpoint's step restores it exactly.
    """
    peak = recipe.learning_rate
    warmup = min(recipe.warmup_steps, max(total - 1, 0))
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    if recipe.lr_schedule == "constant" or total <= warmup + 1:
        return peak
    progress = (step - warmup) / max(1, total - warmup)
    if recipe.lr_schedule == "linear":
        return peak * max(0.0, 1.0 - progress)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def optimizer_step(model, optimizer, batch: dict, *, lr: float, max_grad_norm: float, accelerator) -> float:
    """Take one descent step on the batch's mean token loss and return that loss.

    ``model`` and ``optimizer`` are prepared by ``accelerator``, whose autocast, backward and
    clipping the step uses (from-scratch training and SISA shard training).
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    with accelerator.autocast():
        loss = mean_token_nll(model, batch)
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _run_fingerprint(texts: Sequence[str], recipe: TrainingRecipe) -> str:
    import hashlib

    digest = hashlib.sha256(texts_fingerprint(texts).encode())
    digest.update(json.dumps(recipe.as_dict(), sort_keys=True).encode())
    return digest.hexdigest()


def _load_or_train_tokenizer(texts, recipe, checkpoint_dir):
    """Train the tokenizer, or reload the one a killed run saved, so resumes use the same vocabulary."""
    from transformers import AutoTokenizer

    if checkpoint_dir is not None:
        saved = Path(checkpoint_dir) / TOKENIZER_SUBDIR
        if (saved / "tokenizer.json").is_file():
            return AutoTokenizer.from_pretrained(saved)
    tokenizer = train_byte_bpe_tokenizer(texts=texts, vocab_size=recipe.vocab_size)
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        with atomic_directory(Path(checkpoint_dir) / TOKENIZER_SUBDIR, overwrite=True) as tmp:
            tokenizer.save_pretrained(tmp)
    return tokenizer


def save_model_dir(
    *,
    model,
    tokenizer,
    output_dir,
    recipe: TrainingRecipe | None,
    provenance: dict,
    overwrite: bool = False,
    extra_files: dict[str, str] | None = None,
) -> str:
    """Write a Hugging Face model directory atomically and return the SHA-256 of its weights.

    The directory holds ``config.json``, ``model.safetensors``, the tokenizer files,
    ``lethe_recipe.json`` (when a recipe is given) and ``lethe_training.json`` (provenance: record
    count, data fingerprint, steps; never record text).
    """
    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if recipe is not None:
            recipe.save(tmp)
        (tmp / TRAINING_FILE).write_text(
            json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        for name, content in (extra_files or {}).items():
            (tmp / name).write_text(content, encoding="utf-8")
    return weights_sha256(output_dir)


def train_causal_lm(
    *,
    texts: Sequence[str],
    recipe: TrainingRecipe,
    output_dir: str | os.PathLike,
    tokenizer=None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    device=None,
    overwrite: bool = False,
) -> TrainResult:
    """Train a causal LM from scratch on ``texts`` (one example per record) and save it.

    Deterministic for a given recipe, texts and device: the weights are initialised from
    ``recipe.seed`` and each epoch's order is a function of ``(seed, epoch)``. When
    ``tokenizer`` is ``None`` a byte-level BPE of ``recipe.vocab_size`` is trained on ``texts``.

    ``progress(step, total)`` is called after every optimiser step. ``should_stop()`` is asked
    before every step; when it returns true the state is checkpointed (if ``checkpoint_dir``) and
    :class:`TrainingCancelled` is raised. With ``checkpoint_dir``, the full state (weights,
    optimiser moments, generator states, step) is written atomically every ``checkpoint_every``
    steps, and a later call with the same directory resumes from the newest checkpoint and ends
    with the same weights as an uninterrupted run. A checkpoint of other data or another recipe
    raises :class:`CheckpointMismatch` rather than being resumed.

    The model directory is written atomically to ``output_dir`` (which must not exist or be
    empty unless ``overwrite``) and loads with ``AutoModelForCausalLM.from_pretrained``.

    ``device=None`` picks the best device here, with bf16 autocast on a GPU that supports it
    (weights and optimiser state stay fp32). Raises ``ValueError`` when started as one of
    several processes (``accelerate launch --num_processes N``); see the module docstring.
    """
    import torch

    started = time.monotonic()
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: there is nothing to train on")
    if not isinstance(recipe, TrainingRecipe):
        raise ValueError(f"recipe must be a TrainingRecipe, got {type(recipe).__name__}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    out = Path(output_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"refusing to overwrite non-empty {out}; pass overwrite=True")

    device, dtype = resolve_device(device)
    accelerator = single_process_accelerator(
        device,
        bf16=dtype == torch.bfloat16,
        what="train_causal_lm",
        why="every process would train on all records and write the same output",
        remedy="run it without accelerate launch, or fine-tune with num_processes instead",
    )
    device = accelerator.device
    if tokenizer is None:
        tokenizer = _load_or_train_tokenizer(texts, recipe, checkpoint_dir)
    pad_id = pad_token_id(tokenizer)
    examples = encode_texts(tokenizer, texts, block_size=recipe.block_size)
    per_epoch = steps_per_epoch(len(examples), recipe.batch_size)
    total = per_epoch * recipe.epochs
    fingerprint = _run_fingerprint(texts, recipe)

    model = build_model(recipe, tokenizer)
    model.train()
    optimizer = make_optimizer(
        model,
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        betas=(recipe.adam_beta1, recipe.adam_beta2),
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    # Checkpoints, resumes and the saved directory use the bare model's names and forward.
    bare = accelerator.unwrap_model(model)

    start_step, resumed_from = 0, None
    epoch_losses: list[float] = []
    epoch_sum, epoch_count, tokens, previous_seconds = 0.0, 0, 0, 0.0
    if checkpoint_dir is not None:
        latest = latest_checkpoint(checkpoint_dir)
        if latest is not None:
            state = load_state(latest)
            if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
                raise CheckpointMismatch(
                    f"checkpoint {latest} was made for other data or another recipe; use a fresh checkpoint_dir"
                )
            bare.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            restore_rng_state(state["rng"])
            start_step = resumed_from = int(state["step"])
            epoch_losses = list(state["epoch_losses"])
            epoch_sum, epoch_count = float(state["epoch_loss_sum"]), int(state["epoch_loss_count"])
            tokens, previous_seconds = int(state["tokens"]), float(state["compute_seconds"])

    logger.info(
        "engine.train.started",
        extra={"records": len(texts), "total_steps": total, "start_step": start_step, "device": str(device)},
    )

    def checkpoint(step: int) -> str:
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "fingerprint": fingerprint,
            "recipe": recipe.as_dict(),
            "model": {k: v.detach().cpu() for k, v in bare.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "rng": capture_rng_state(),
            "epoch_losses": list(epoch_losses),
            "epoch_loss_sum": epoch_sum,
            "epoch_loss_count": epoch_count,
            "tokens": tokens,
            "compute_seconds": previous_seconds + (time.monotonic() - started),
        }
        return str(save_checkpoint(checkpoint_dir, step=step, state=state))

    order, order_epoch = None, -1
    for step in range(start_step, total):
        if should_stop is not None and should_stop():
            saved = checkpoint(step) if checkpoint_dir is not None and step > start_step else None
            logger.info("engine.train.cancelled", extra={"step": step, "total_steps": total})
            raise TrainingCancelled(step=step, total=total, checkpoint=saved)
        epoch, index = divmod(step, per_epoch)
        if epoch != order_epoch:
            order, order_epoch = epoch_order(len(examples), seed=recipe.seed, epoch=epoch), epoch
        chunk = [examples[i] for i in order[index * recipe.batch_size : (index + 1) * recipe.batch_size]]
        batch = collate(chunk, pad_id=pad_id, device=device)
        loss = optimizer_step(
            model,
            optimizer,
            batch,
            lr=lr_at(step, total=total, recipe=recipe),
            max_grad_norm=recipe.max_grad_norm,
            accelerator=accelerator,
        )
        if not math.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} at step {step}; lower learning_rate")
        tokens += sum(len(e) for e in chunk)
        epoch_sum += loss
        epoch_count += 1
        if index == per_epoch - 1:
            epoch_losses.append(epoch_sum / epoch_count)
            epoch_sum, epoch_count = 0.0, 0
        if progress is not None:
            progress(step + 1, total)
        if checkpoint_dir is not None and (step + 1) % checkpoint_every == 0 and step + 1 < total:
            checkpoint(step + 1)

    seconds = time.monotonic() - started
    provenance = {
        "format": "lethe-training/1",
        "records": len(texts),
        "data_fingerprint": texts_fingerprint(texts),
        "steps": total,
        "tokens": tokens,
        "compute_seconds": previous_seconds + seconds,
        "device": str(device),
        "torch": torch.__version__,
    }
    sha = save_model_dir(
        model=accelerator.unwrap_model(model, keep_fp32_wrapper=False),
        tokenizer=tokenizer,
        output_dir=out,
        recipe=recipe,
        provenance=provenance,
        overwrite=overwrite,
    )
    logger.info("engine.train.finished", extra={"steps": total, "seconds": round(seconds, 3), "sha256": sha})
    return TrainResult(
        output_dir=str(out),
        weights_sha256=sha,
        steps=total - start_step,
        total_steps=total,
        records=len(texts),
        tokens=tokens,
        seconds=seconds,
        compute_seconds=previous_seconds + seconds,
        final_loss=epoch_losses[-1] if epoch_losses else float("nan"),
        epoch_losses=tuple(epoch_losses),
        resumed_from_step=resumed_from,
        device=str(device),
        recipe=recipe,
    )
