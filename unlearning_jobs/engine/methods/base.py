"""The contract every unlearning method keeps, and the measurements they share.

A method is a small class with a ``name``, a ``guarantee`` (``exact`` for retrain and SISA,
``statistical`` for the approximate methods), a frozen ``Params`` dataclass validated from JSON,
and one entry point, :meth:`UnlearningMethod.run`, that reads a source model directory and
writes a new one. Jobs call every method the same way; arguments a method does not need are
ignored, and arguments it needs but did not get raise ``ValueError`` before any work starts.
"""

from __future__ import annotations

import abc
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..models import load_causal_lm
from ..training.data import encode_texts, epoch_order, evaluate_loss, pad_token_id
from ..training.recipe import RECIPE_FILE, TrainingRecipe
from ..training.sisa import Records
from ..training.validation import dataclass_from_dict

ProgressCallback = Callable[[int, int], None]
StopCallback = Callable[[], bool]

#: Loss is measured on at most this many retain records (a seeded sample) before and after.
DEFAULT_RETAIN_EVAL_SIZE = 64


@dataclass(frozen=True)
class MethodResult:
    """What an unlearning run produced, for the job row, the new model version and the report.

    ``metrics`` of approximate methods hold ``forget_loss_before``/``after`` and ``retain_loss_before``/``after``
    (mean next-token loss in nats per token; retain measured on a seeded sample of at most
    ``retain_eval_records`` records) and ``stopped_reason``; methods add their own keys
    (``shards_retrained`` for SISA, ``excluded_records`` for retrain, …). Exact methods measure
    the losses only when their params turn ``measure_losses`` on (``losses_measured`` says which).
    """

    method: str
    guarantee: str
    output_dir: str
    weights_sha256: str
    steps: int
    seconds: float
    device: str
    params: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "method": self.method,
            "guarantee": self.guarantee,
            "output_dir": self.output_dir,
            "weights_sha256": self.weights_sha256,
            "steps": self.steps,
            "seconds": self.seconds,
            "device": self.device,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
        }


class UnlearningMethod(abc.ABC):
    """Base class: subclasses set ``name``, ``guarantee``, ``Params`` and implement :meth:`run`."""

    name: ClassVar[str]
    guarantee: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type]

    def parse_params(self, params: Mapping[str, Any] | Any | None):
        """Return a validated ``Params`` from a dict (or pass an existing ``Params`` through)."""
        if isinstance(params, self.Params):
            return params
        return dataclass_from_dict(self.Params, params)

    @abc.abstractmethod
    def run(
        self,
        *,
        source_model_dir: str | os.PathLike,
        output_dir: str | os.PathLike,
        forget_texts: Sequence[str],
        retain_texts: Sequence[str],
        params: Mapping[str, Any] | Any | None = None,
        full_texts: Records | None = None,
        forget_ids: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
        should_stop: StopCallback | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 50,
        device=None,
        overwrite: bool = False,
    ) -> MethodResult:
        """Unlearn ``forget_texts`` from the model in ``source_model_dir`` into ``output_dir``.

        ``forget_texts`` are the confirmed records of the person, ``retain_texts`` the rest of
        the data set (the regulariser for approximate methods, the training set for retrain when
        ``full_texts`` is not given). ``full_texts`` (``(record_id, text)`` pairs or a mapping, in
        data-set order) and ``forget_ids`` are what exact methods need to drop exactly those
        records. ``progress(step, total)``, ``should_stop()`` (raises ``TrainingCancelled``) and
        ``checkpoint_dir`` (resume after a crash) behave as in ``train_causal_lm``. The source
        directory is never modified; ``output_dir`` is written atomically.
        """


def sample_indices(n: int, *, size: int, seed: int) -> list[int]:
    """Return a seeded sample of ``min(n, size)`` indices in ascending order."""
    if n <= size:
        return list(range(n))
    return sorted(epoch_order(n, seed=seed, epoch=0, salt=0x5A3)[:size])


def block_size_for(model_dir: str | os.PathLike, model) -> int:
    """Return the context length examples are cut to: the recipe's, else the model's positions."""
    recipe_file = Path(model_dir) / RECIPE_FILE
    if recipe_file.is_file():
        return TrainingRecipe.load(model_dir).block_size
    config = model.config
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return min(value, 1024)
    return 512


def measure_losses(
    *, model, tokenizer, model_dir, forget_texts: Sequence[str], retain_texts: Sequence[str], device, dtype
) -> dict[str, float]:
    """Return ``{"forget": loss, "retain": loss}`` (nats per token) for a loaded model."""
    block = block_size_for(model_dir, model.shards[0] if hasattr(model, "shards") else model)
    pad = pad_token_id(tokenizer)
    return {
        "forget": evaluate_loss(
            model,
            encode_texts(tokenizer, forget_texts, block_size=block),
            pad_id=pad,
            device=device,
            dtype=dtype,
        ),
        "retain": evaluate_loss(
            model,
            encode_texts(tokenizer, retain_texts, block_size=block),
            pad_id=pad,
            device=device,
            dtype=dtype,
        ),
    }


def measure_model_dir(model_dir, *, forget_texts, retain_texts, device, dtype) -> dict[str, float]:
    """Load a model directory (plain or SISA) and return its forget and retain loss."""
    model, tokenizer = load_causal_lm(model_dir, device=device)
    try:
        return measure_losses(
            model=model,
            tokenizer=tokenizer,
            model_dir=model_dir,
            forget_texts=forget_texts,
            retain_texts=retain_texts,
            device=device,
            dtype=dtype,
        )
    finally:
        del model


#: What ``measure_losses`` on an exact method's params says, for its docstring and forms.
MEASURE_LOSSES_HELP = (
    "also measure the forget and retain loss before and after (off by default): exact methods remove "
    "the records by construction, and the verification queued after every deletion measures both "
    "models fully. On a SISA ensemble the check costs every shard's inference, which at small data "
    "sizes outweighs the retraining"
)


@dataclass(frozen=True)
class LossCheck:
    """An exact method's optional before/after loss check, on the same texts both times."""

    enabled: bool
    forget_texts: Sequence
    retain_texts: Sequence
    device: Any
    dtype: Any

    def measure(self, model_dir) -> dict[str, float] | None:
        """Return the forget and retain loss of ``model_dir``, or ``None`` when the check is off."""
        if not self.enabled:
            return None
        return measure_model_dir(
            model_dir,
            forget_texts=list(self.forget_texts),
            retain_texts=list(self.retain_texts),
            device=self.device,
            dtype=self.dtype,
        )


def loss_metrics(before: Mapping[str, float] | None, after: Mapping[str, float] | None) -> dict[str, Any]:
    """Return an exact method's before/after loss metrics, or only that they were not measured."""
    if before is None or after is None:
        return {"losses_measured": False}
    return {
        "losses_measured": True,
        "forget_loss_before": before["forget"],
        "forget_loss_after": after["forget"],
        "retain_loss_before": before["retain"],
        "retain_loss_after": after["retain"],
    }


def retain_eval_sample(
    retain_texts: Sequence[str], *, size: int = DEFAULT_RETAIN_EVAL_SIZE, seed: int = 0
) -> list[str]:
    """Return the seeded sample of retain texts that before/after retain loss is measured on."""
    return [retain_texts[i] for i in sample_indices(len(retain_texts), size=size, seed=seed)]


def provenance_json(data: Mapping[str, Any]) -> str:
    """Return the text of ``lethe_unlearning.json``: method, params, parent checksum, metrics; no record text."""
    return json.dumps(dict(data), indent=2, sort_keys=True, default=str) + "\n"
