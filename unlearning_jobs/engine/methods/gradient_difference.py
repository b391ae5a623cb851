"""Gradient difference: ascend the forget loss while descending the retain loss (Liu et al. 2022).

The retain term anchors the model on the rest of the data, so the forget records can be pushed
further before utility suffers than with plain gradient ascent.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..training.data import mean_token_nll
from ..training.validation import require
from .approximate import ApproximateMethod, ApproximateParams


@dataclass(frozen=True)
class GradientDifferenceParams(ApproximateParams):
    """Shared parameters plus ``retain_weight``, the weight of the retain loss against the forget loss.

    A retain weight of 3 held the demo's other people in place (90 % of their e-mails still
    extractable) where 1 let the retain-loss bound stop the run before the forget set was gone.
    At lr 5e-5 it removed every identifier of the demo's three forgotten people (extraction 0 of
    108 probes) at 0.959 of the original's retain perplexity; at 3e-4 one person still leaked.
    """

    learning_rate: float = 5e-5
    retain_weight: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            0 <= self.retain_weight <= 100,
            type(self).__name__,
            "retain_weight",
            f"must be in [0, 100], got {self.retain_weight}",
        )


class GradientDifference(ApproximateMethod):
    name = "gradient_difference"
    summary = "ascend the forget loss and descend the retain loss"
    Params = GradientDifferenceParams
    trains_on_retain = True
    retain_losses = ("nll", "kl")

    def forget_term(self, *, model, batch, params, reference=None):
        """Return ``-forget_nll`` (the loss adds ``retain_weight`` x the retain term: NLL, or KL with ``retain_loss="kl"``)."""
        return -mean_token_nll(model, batch["forget"])
