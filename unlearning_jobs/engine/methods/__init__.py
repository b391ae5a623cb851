"""Unlearning methods behind one registry: ``get_method(name).run(...)`` for every one of them.

=====================  ===========  ===================  =============================================
name                   guarantee    framework            what it does
=====================  ===========  ===================  =============================================
retrain                exact        (exact)              train again without the records (gold standard)
sisa                   exact        (exact)              retrain only the SISA shards that held the records
gradient_ascent        statistical  approximate          ascend the loss of the forget records
gradient_difference    statistical  approximate          ascend forget loss, descend retain loss
npo                    statistical  approximate          negative preference optimisation (``reference`` preset)
simnpo                 statistical  approximate          length-normalised NPO without a reference model
rmu                    statistical  approximate          steer one layer's activations to a random vector
refusal                statistical  output_suppression   teach a refusal instead of the answer (IdkDPO)
=====================  ===========  ===================  =============================================

Approximate methods carry ``framework`` (``approximate_unlearning`` or ``output_suppression``):
what the report files the result under. Records may be strings or ``{"prompt", "answer"}``
mappings (loss on answer tokens only); ``adapter="lora"`` trains a LoRA adapter instead of the
full weights, and ``ApproximateMethod.unlearn`` runs on a model already in memory (``peft``
included).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..method_catalogue import (
    CATALOGUE,
    EXACT,
    FRAMEWORK_APPROXIMATE,
    FRAMEWORK_OUTPUT_SUPPRESSION,
    STATISTICAL,
    CatalogueEntry,
    framework_of,
)
from ..training.train import CheckpointMismatch, TrainingCancelled
from .approximate import ApproximateMethod, RetainBoundBeforeFirstStep
from .base import MethodResult, UnlearningMethod
from .gradient_ascent import GradientAscent
from .gradient_difference import GradientDifference
from .npo import Npo
from .refusal import Refusal
from .retrain import Retrain
from .rmu import Rmu
from .simnpo import SimNpo
from .sisa import Sisa

METHODS: dict[str, type[UnlearningMethod]] = {
    cls.name: cls for cls in (Retrain, Sisa, GradientAscent, GradientDifference, Npo, SimNpo, Rmu, Refusal)
}


def get_method(name: str) -> UnlearningMethod:
    """Return an instance of the method registered as ``name``; unknown names list the valid ones."""
    try:
        return METHODS[name]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown unlearning method {name!r}; valid methods are {', '.join(sorted(METHODS))}"
        ) from None


def method_framework(name: str) -> str:
    """Return what the report files a method's result under: ``exact``, ``approximate_unlearning``
    or ``output_suppression`` (the catalogue's answer, which the Django side reads without torch)."""
    return framework_of(name)


class CatalogueMismatch(RuntimeError):
    """The registry and ``method_catalogue`` disagree: a method was declared in one place only."""


def _class_framework(cls: type[UnlearningMethod]) -> str:
    return EXACT if cls.guarantee == EXACT else getattr(cls, "framework", FRAMEWORK_APPROXIMATE)


def check_catalogue(
    methods: Mapping[str, type[UnlearningMethod]] = METHODS,
    catalogue: Mapping[str, CatalogueEntry] = CATALOGUE,
) -> None:
    """Raise ``CatalogueMismatch`` unless every registered method is in the catalogue with its
    class's guarantee and framework, and nothing else is: the web side trusts the catalogue."""
    problems = [f"{name}: registered, not in the catalogue" for name in methods.keys() - catalogue.keys()]
    problems += [f"{name}: in the catalogue, not registered" for name in catalogue.keys() - methods.keys()]
    for name in methods.keys() & catalogue.keys():
        cls, entry = methods[name], catalogue[name]
        if (cls.guarantee, _class_framework(cls)) != (entry.guarantee, entry.framework):
            problems.append(
                f"{name}: class says {cls.guarantee}/{_class_framework(cls)}, "
                f"catalogue says {entry.guarantee}/{entry.framework}"
            )
    if problems:
        raise CatalogueMismatch("unlearning method catalogue out of step: " + "; ".join(sorted(problems)))


check_catalogue()


__all__ = [
    "EXACT",
    "FRAMEWORK_APPROXIMATE",
    "FRAMEWORK_OUTPUT_SUPPRESSION",
    "METHODS",
    "STATISTICAL",
    "ApproximateMethod",
    "CatalogueMismatch",
    "CheckpointMismatch",
    "MethodResult",
    "RetainBoundBeforeFirstStep",
    "TrainingCancelled",
    "check_catalogue",
    "UnlearningMethod",
    "get_method",
    "method_framework",
]
