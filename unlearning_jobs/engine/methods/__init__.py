"""Unlearning methods behind one registry: ``get_method(name).run(...)`` for every one of them.

=====================  ===========  ==========================================================
name                   guarantee    what it does
=====================  ===========  ==========================================================
retrain                exact        train again from scratch without the records (gold standard)
sisa                   exact        retrain only the SISA shards that held the records
gradient_ascent        statistical  ascend the loss of the forget records
gradient_difference    statistical  ascend forget loss, descend retain loss
npo                    statistical  negative preference optimisation against the source model
=====================  ===========  ==========================================================
"""

from __future__ import annotations

from ..training.train import CheckpointMismatch, TrainingCancelled
from .base import EXACT, STATISTICAL, MethodResult, UnlearningMethod
from .gradient_ascent import GradientAscent
from .gradient_difference import GradientDifference
from .npo import Npo
from .retrain import Retrain
from .sisa import Sisa

METHODS: dict[str, type[UnlearningMethod]] = {
    cls.name: cls for cls in (Retrain, Sisa, GradientAscent, GradientDifference, Npo)
}


def get_method(name: str) -> UnlearningMethod:
    """Return an instance of the method registered as ``name``; unknown names list the valid ones."""
    try:
        return METHODS[name]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown unlearning method {name!r}; valid methods are {', '.join(sorted(METHODS))}"
        ) from None


__all__ = [
    "EXACT",
    "METHODS",
    "STATISTICAL",
    "CheckpointMismatch",
    "MethodResult",
    "TrainingCancelled",
    "UnlearningMethod",
    "get_method",
]
