"""SimNPO (Fan et al. 2024, "Simplicity Prevails: Rethinking Negative Preference Optimization").

NPO without a reference model, its log-likelihood normalised by the answer's length:

    L = gamma * -(2 / beta) * E_forget[ log sigmoid( beta * (NLL_sum(y|x) / |y| - delta) ) ]
        + alpha * E_retain[ mean token NLL ]

Length normalisation keeps long answers from dominating the gradient (NPO's sum weighs a record
by its length); dropping the reference saves its memory and its forward pass. The defaults are
OpenUnlearning's (``configs/trainer/SimNPO.yaml``, from the authors' TOFU configuration): beta
4.5, gamma 0.125, delta 0, alpha 1. Only the answer tokens count (prompt masked) with pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn.functional as F

from ..training.data import sequence_nll
from ..training.validation import require
from .approximate import ApproximateMethod, ApproximateParams


def simnpo_forget_loss(nll, count, *, beta: float, delta: float):
    """Return SimNPO's forget term from per-sequence summed NLLs and scored-token counts."""
    mean_nll = nll / count.clamp(min=1) - delta
    return -(2.0 / beta) * F.logsigmoid(beta * mean_nll).mean()


@dataclass(frozen=True)
class SimNpoParams(ApproximateParams):
    """Shared parameters plus ``beta``, ``delta`` (reward margin), ``forget_weight`` (gamma) and
    ``retain_weight`` (alpha). The learning rate is the shared default scaled to what NPO used
    on the demo; the published recipe's 1e-5 for 10 epochs is ``preset="reference"``."""

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
        }
    }

    learning_rate: float = 5e-5
    beta: float = 4.5
    delta: float = 0.0
    forget_weight: float = 0.125
    retain_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        require(0 < self.beta <= 100, name, "beta", f"must be in (0, 100], got {self.beta}")
        require(-100 <= self.delta <= 100, name, "delta", f"must be in [-100, 100], got {self.delta}")
        require(
            0 < self.forget_weight <= 100,
            name,
            "forget_weight",
            f"must be in (0, 100], got {self.forget_weight}",
        )
        require(
            0 <= self.retain_weight <= 1000,
            name,
            "retain_weight",
            f"must be in [0, 1000], got {self.retain_weight}",
        )


class SimNpo(ApproximateMethod):
    name = "simnpo"
    summary = "length-normalised NPO without a reference model"
    Params = SimNpoParams
    trains_on_retain = True
    retain_losses = ("nll", "kl")

    def forget_term(self, *, model, batch, params, reference=None):
        """Return gamma x SimNPO's forget term (the loss adds alpha x the retain term, NLL or KL)."""
        nll, count = sequence_nll(model, batch["forget"])
        return params.forget_weight * simnpo_forget_loss(nll, count, beta=params.beta, delta=params.delta)
