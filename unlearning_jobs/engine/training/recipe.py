"""The training recipe: everything needed to train a model again, bit for bit.

A recipe is stored beside every model version the engine trains (``lethe_recipe.json``), so that
``retrain`` can rebuild the model on the data without the forgotten records with the same
architecture, tokenizer size, optimiser, schedule, data order and seed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .validation import dataclass_from_dict, require

RECIPE_FILE = "lethe_recipe.json"
LR_SCHEDULES = ("constant", "linear", "cosine")
#: 256 byte symbols plus the end-of-text and padding tokens.
MIN_VOCAB_SIZE = 258


@dataclass(frozen=True)
class TrainingRecipe:
    """Architecture and optimisation of a GPT-2-style causal LM trained from scratch.

    The defaults are the demo model measured on the project's CPU machines: 2 layers x 128 wide,
    a 4,096-token byte-level BPE vocabulary, batch 8 at lr 3e-3 (about 17k tokens/s).
    """

    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    block_size: int = 128
    vocab_size: int = 4096
    learning_rate: float = 3e-3
    batch_size: int = 8
    epochs: int = 10
    seed: int = 0
    weight_decay: float = 0.01
    warmup_steps: int = 20
    lr_schedule: str = "cosine"
    max_grad_norm: float = 1.0
    dropout: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.99

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field in ("n_layer", "n_embd", "n_head", "block_size", "batch_size", "epochs"):
            require(getattr(self, field) >= 1, name, field, f"must be at least 1, got {getattr(self, field)}")
        require(
            self.n_embd % self.n_head == 0,
            name,
            "n_head",
            f"must divide n_embd ({self.n_embd}), got {self.n_head}",
        )
        require(self.block_size >= 2, name, "block_size", f"must be at least 2, got {self.block_size}")
        require(
            self.vocab_size >= MIN_VOCAB_SIZE,
            name,
            "vocab_size",
            f"must be at least {MIN_VOCAB_SIZE} (256 bytes + 2 special tokens), got {self.vocab_size}",
        )
        require(
            0 < self.learning_rate <= 1, name, "learning_rate", f"must be in (0, 1], got {self.learning_rate}"
        )
        require(self.seed >= 0, name, "seed", f"must be non-negative, got {self.seed}")
        require(
            0 <= self.weight_decay < 1, name, "weight_decay", f"must be in [0, 1), got {self.weight_decay}"
        )
        require(
            self.warmup_steps >= 0, name, "warmup_steps", f"must be non-negative, got {self.warmup_steps}"
        )
        require(
            self.lr_schedule in LR_SCHEDULES,
            name,
            "lr_schedule",
            f"must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}",
        )
        require(self.max_grad_norm > 0, name, "max_grad_norm", f"must be positive, got {self.max_grad_norm}")
        require(0 <= self.dropout < 1, name, "dropout", f"must be in [0, 1), got {self.dropout}")
        require(0 <= self.adam_beta1 < 1, name, "adam_beta1", f"must be in [0, 1), got {self.adam_beta1}")
        require(0 <= self.adam_beta2 < 1, name, "adam_beta2", f"must be in [0, 1), got {self.adam_beta2}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainingRecipe:
        """Build a recipe from JSON, rejecting unknown fields and out-of-range values by name."""
        return dataclass_from_dict(cls, data)

    def as_dict(self) -> dict[str, Any]:
        """Return the recipe as a JSON-ready dict that :meth:`from_dict` reads back unchanged."""
        return asdict(self)

    def replace(self, **changes: Any) -> TrainingRecipe:
        """Return a copy with ``changes`` applied and validated like :meth:`from_dict`."""
        return type(self).from_dict({**self.as_dict(), **changes})

    def save(self, model_dir: str | os.PathLike) -> Path:
        """Write the recipe as ``lethe_recipe.json`` into ``model_dir``."""
        path = Path(model_dir) / RECIPE_FILE
        path.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> TrainingRecipe:
        """Read ``lethe_recipe.json`` from a model directory the engine trained."""
        path = Path(model_dir) / RECIPE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {RECIPE_FILE} in {model_dir}: the model was not trained by Lethe")
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
