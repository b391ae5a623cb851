"""Gradient ascent: raise the loss of the forget records (Jang et al. 2023; TOFU's baseline).

The simplest approximate method and the least careful: nothing holds the rest of the model in
place, so the retain-loss bound and the forget-loss target of the shared loop are what stop it
from wrecking utility.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..training.data import mean_token_nll
from .approximate import ApproximateMethod, ApproximateParams


@dataclass(frozen=True)
class GradientAscentParams(ApproximateParams):
    """Only the shared parameters: learning rate, step budget, stopping target and bound."""


class GradientAscent(ApproximateMethod):
    name = "gradient_ascent"
    summary = "ascend the next-token loss on the forget records"
    Params = GradientAscentParams

    def forget_term(self, *, model, batch, params, reference=None):
        """Return the negated forget loss, so descending it ascends the forget loss (no retain term)."""
        return -mean_token_nll(model, batch["forget"])
