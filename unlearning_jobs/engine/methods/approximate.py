"""The loop shared by the approximate methods: gradient ascent, gradient difference, NPO.

A method only says *what* is minimised on a ``{"forget": batch, "retain": batch}`` pair
(:meth:`ApproximateMethod.compute_loss`); this module decides *when*: the step budget, early stop
once the forget loss reaches its target, the retain-loss bound that protects utility, progress,
cancellation and resumable checkpoints.

These methods change the parameters so that the forget records become unlikely. They give no
guarantee that the model is what it would have been without the records: the report calls the
result statistical, and verification measures it.
"""

from __future__ import annotations

import abc
import copy
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..checkpoints import (
    capture_rng_state,
    latest_checkpoint,
    load_state,
    restore_rng_state,
    save_checkpoint,
    weights_sha256,
)
from ..device import resolve_device
from ..training.data import (
    LazyExamples,
    autocast_context,
    collate,
    encode_texts,
    epoch_order,
    evaluate_loss,
    pad_token_id,
    steps_per_epoch,
    texts_fingerprint,
)
from ..training.recipe import TrainingRecipe
from ..training.sisa import is_sisa_dir
from ..training.train import CheckpointMismatch, TrainingCancelled, save_model_dir
from ..training.validation import dataclass_from_dict, require
from .base import (
    STATISTICAL,
    MethodResult,
    UnlearningMethod,
    block_size_for,
    provenance_json,
    sample_indices,
)

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "lethe-unlearn-checkpoint/1"


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

    - ``forget_loss_target``: stop once the mean forget loss (nats/token) reaches it. When
      ``None`` the target is ``forget_loss_target_ratio`` x the retain loss before unlearning; a
      memorised record scores about the retain loss, and raising it several-fold is what made
      the demo's e-mails unextractable (an exact retrain scores them far higher still).
    - ``max_retain_loss_increase``: stop, and keep the last weights measured within the bound,
      once the retain loss exceeds its value before by this many nats per token (0.05 nats is a
      perplexity about 5 % higher, the verification's utility threshold); ``None`` disables it.
    - ``eval_every``: steps between measurements of the forget loss and the retain sample; the
      stop decisions are taken there, so it is also their granularity.
    """

    learning_rate: float = 3e-5
    max_steps: int = 600
    batch_size: int = 8
    retain_batch_size: int = 8
    forget_loss_target: float | None = None
    forget_loss_target_ratio: float = 8.0
    max_retain_loss_increase: float | None = 0.05
    eval_every: int = 5
    retain_eval_size: int = 64
    max_grad_norm: float = 1.0
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
            self.max_retain_loss_increase is None or self.max_retain_loss_increase > 0,
            name,
            "max_retain_loss_increase",
            f"must be positive, got {self.max_retain_loss_increase}",
        )
        require(self.eval_every >= 1, name, "eval_every", f"must be at least 1, got {self.eval_every}")
        require(
            self.retain_eval_size >= 1,
            name,
            "retain_eval_size",
            f"must be at least 1, got {self.retain_eval_size}",
        )
        require(self.max_grad_norm > 0, name, "max_grad_norm", f"must be positive, got {self.max_grad_norm}")
        require(self.seed >= 0, name, "seed", f"must be non-negative, got {self.seed}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None):
        """Build validated params from JSON; unknown keys and out-of-range values raise ``ValueError``."""
        return dataclass_from_dict(cls, data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _batch_at(examples, *, step: int, batch_size: int, seed: int, salt: int):
    """Return the examples of batch ``step`` of an endless, reshuffled-per-epoch stream."""
    per_epoch = steps_per_epoch(len(examples), batch_size)
    epoch, index = divmod(step, per_epoch)
    order = epoch_order(len(examples), seed=seed, epoch=epoch, salt=salt)
    return [examples[i] for i in order[index * batch_size : (index + 1) * batch_size]]


class ApproximateMethod(UnlearningMethod):
    """An unlearning method that fine-tunes the model on forget (and retain) batches."""

    guarantee = STATISTICAL
    #: Whether compute_loss needs a frozen copy of the source model (NPO).
    needs_reference = False
    #: Whether compute_loss trains on retain batches (the guard always measures retain loss).
    trains_on_retain = False

    def uses_retain(self, params) -> bool:
        """Return whether this run trains on retain batches (a zero ``retain_weight`` turns it off)."""
        return self.trains_on_retain and getattr(params, "retain_weight", 1.0) > 0

    @abc.abstractmethod
    def compute_loss(self, *, model, batch: Mapping[str, Any], params, reference=None):
        """Return the scalar loss to *minimise* for one ``{"forget": …, "retain": …}`` batch."""

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
    ) -> MethodResult:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

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
        model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32, local_files_only=True)
        model.to(device)
        reference = None
        if self.needs_reference:
            reference = copy.deepcopy(model).eval()
            reference.requires_grad_(False)
        pad = pad_token_id(tokenizer)
        block = block_size_for(source, model)
        forget_ex = encode_texts(tokenizer, forget_texts, block_size=block)
        retain_ex = LazyExamples(tokenizer, retain_texts, block_size=block)
        retain_eval = [
            retain_ex[i]
            for i in sample_indices(len(retain_ex), size=params.retain_eval_size, seed=params.seed)
        ]

        def losses() -> tuple[float, float]:
            forget = evaluate_loss(model, forget_ex, pad_id=pad, device=device, dtype=dtype)
            retain = (
                evaluate_loss(model, retain_eval, pad_id=pad, device=device, dtype=dtype)
                if retain_eval
                else float("nan")
            )
            return forget, retain

        optimizer = torch.optim.AdamW(
            model.parameters(), lr=params.learning_rate, weight_decay=0.0, foreach=False
        )
        fingerprint = hashlib.sha256(
            json.dumps(
                [
                    self.name,
                    params.as_dict(),
                    parent_sha,
                    texts_fingerprint(forget_texts),
                    texts_fingerprint(retain_texts),
                ]
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
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            restore_rng_state(state["rng"])
            start_step = resumed_from = int(state["step"])
            previous_seconds = float(state["compute_seconds"])
            before = dict(state["before"])
            history = [tuple(h) for h in state["history"]]
        else:
            forget_before, retain_before = losses()
            before = {"forget": forget_before, "retain": retain_before}
            history = [(0, forget_before, retain_before)]
        target = params.forget_loss_target
        if target is None:
            base = before["retain"] if math.isfinite(before["retain"]) else before["forget"]
            target = params.forget_loss_target_ratio * base
        bound = None
        if params.max_retain_loss_increase is not None and math.isfinite(before["retain"]):
            bound = before["retain"] + params.max_retain_loss_increase

        logger.info(
            "engine.unlearn.started",
            extra={
                "method": self.name,
                "forget_records": len(forget_texts),
                "retain_records": len(retain_texts),
                "start_step": start_step,
                "device": str(device),
            },
        )
        last_good = (
            {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()} if bound else None
        )
        last_checkpoint_step = start_step
        stopped_reason, steps_done = "max_steps", params.max_steps
        model.train()
        for step in range(start_step, params.max_steps + 1):
            if step % params.eval_every == 0 or step == params.max_steps:
                if step == history[-1][0]:
                    forget_now, retain_now = history[-1][1], history[-1][2]
                else:
                    forget_now, retain_now = losses()
                    history.append((step, forget_now, retain_now))
                if bound is not None and retain_now > bound:
                    model.load_state_dict(last_good)
                    stopped_reason, steps_done = (
                        "retain_loss_bound",
                        history[-2][0] if len(history) > 1 else 0,
                    )
                    break
                if forget_now >= target:
                    stopped_reason, steps_done = "forget_loss_target", step
                    break
                if last_good is not None:
                    last_good = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                if (
                    checkpoint_dir is not None
                    and step - last_checkpoint_step >= checkpoint_every
                    and step < params.max_steps
                ):
                    save_checkpoint(
                        checkpoint_dir,
                        step=step,
                        state={
                            "format": CHECKPOINT_FORMAT,
                            "step": step,
                            "fingerprint": fingerprint,
                            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                            "optimizer": optimizer.state_dict(),
                            "rng": capture_rng_state(),
                            "before": before,
                            "history": [list(h) for h in history],
                            "compute_seconds": previous_seconds + time.monotonic() - started,
                        },
                    )
                    last_checkpoint_step = step
            if step == params.max_steps:
                break
            if should_stop is not None and should_stop():
                logger.info("engine.unlearn.cancelled", extra={"method": self.name, "step": step})
                raise TrainingCancelled(step=step, total=params.max_steps)
            batch = {
                "forget": collate(
                    _batch_at(forget_ex, step=step, batch_size=params.batch_size, seed=params.seed, salt=1),
                    pad_id=pad,
                    device=device,
                ),
                "retain": (
                    collate(
                        _batch_at(
                            retain_ex,
                            step=step,
                            batch_size=params.retain_batch_size,
                            seed=params.seed,
                            salt=2,
                        ),
                        pad_id=pad,
                        device=device,
                    )
                    if retain_ex and self.uses_retain(params)
                    else None
                ),
            }
            with autocast_context(device, dtype):
                loss = self.compute_loss(model=model, batch=batch, params=params, reference=reference)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{self.name}: loss became {float(loss)} at step {step}; lower learning_rate"
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if progress is not None:
                progress(step + 1, params.max_steps)

        model.eval()
        forget_after, retain_after = losses()
        seconds = time.monotonic() - started
        metrics = {
            "forget_loss_before": before["forget"],
            "forget_loss_after": forget_after,
            "retain_loss_before": before["retain"],
            "retain_loss_after": retain_after,
            "forget_loss_target": target,
            "retain_loss_bound": bound,
            "stopped_reason": stopped_reason,
            "forget_records": len(forget_texts),
            "retain_eval_records": len(retain_eval),
            "history": [list(h) for h in history],
            "resumed_from_step": resumed_from,
            "compute_seconds": previous_seconds + seconds,
        }
        recipe = None
        if (source / "lethe_recipe.json").is_file():
            recipe = TrainingRecipe.load(source)
        provenance = {
            "format": "lethe-unlearning/1",
            "method": self.name,
            "guarantee": self.guarantee,
            "params": params.as_dict(),
            "parent_weights_sha256": parent_sha,
            "steps": steps_done,
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
            progress(steps_done, steps_done)
        logger.info(
            "engine.unlearn.finished",
            extra={
                "method": self.name,
                "steps": steps_done,
                "stopped_reason": stopped_reason,
                "sha256": sha,
            },
        )
        return MethodResult(
            method=self.name,
            guarantee=self.guarantee,
            output_dir=str(out),
            weights_sha256=sha,
            steps=steps_done,
            seconds=seconds,
            device=str(device),
            params=params.as_dict(),
            metrics=metrics,
        )
