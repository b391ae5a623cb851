"""The frameworks and methods an officer may choose in a decision, and what runs each.

The engine's unlearning methods (``engine.methods.METHODS``) are filed under the framework the
engine gives each (``method_framework``): exact and approximate unlearning under deletion,
``refusal`` (refusal tuning) under output suppression, because it changes what the model says,
not what its weights hold (seed 001 §IV). Every one of them runs as an ``unlearn`` job with its
own parameter class, and offers its named presets (``{"preset": "reference"}``: the published
recipe). Output suppression also offers the guard, latent suppression the deletion of derived
data, both from the suppression stage below this one. A method with no job kind is recorded as a
decision without a job. The list is built here, from the stages' own names: no registration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from unlearning_jobs.deletion.services import unlearn_params_validate
from unlearning_jobs.models import Framework, JobKind
from unlearning_jobs.suppression.guard import guard_params_clean
from unlearning_jobs.suppression.latent import latent_params_clean

ParamsValidator = Callable[[Mapping[str, Any] | None], dict]


@dataclass(frozen=True)
class PlanMethod:
    """A method an officer may choose for a framework, how its parameters are checked, what runs it."""

    framework: str
    method: str
    validate: ParamsValidator
    job_kind: str | None
    summary: str = ""
    guarantee: str = ""
    #: Whether the method needs the data-set version the model was trained on (exact deletion).
    needs_training_data: bool = False
    #: Named parameter presets besides the default (``lethe``): name → the values it sets.
    presets: tuple[tuple[str, str], ...] = ()

    @property
    def changes_weights(self) -> bool:
        """Whether the method runs as an unlearning job on the model (and needs the forget set)."""
        return self.job_kind == JobKind.UNLEARN.value


def _deletion_validator(name: str) -> ParamsValidator:
    def validate(params: Mapping[str, Any] | None) -> dict:
        return unlearn_params_validate(name, params)

    return validate


def _presets(params_class) -> tuple[tuple[str, str], ...]:
    """Return ``(name, "key=value, ...")`` for each named preset of a parameter class."""
    presets = getattr(params_class, "PRESETS", None) or {}
    return tuple(
        (name, ", ".join(f"{key}={value}" for key, value in sorted(values.items())))
        for name, values in sorted(presets.items())
    )


def engine_methods() -> list[PlanMethod]:
    """Return the engine's unlearning methods, each under its framework, each run by an unlearn job.

    ``method_framework`` decides: ``exact`` and ``approximate_unlearning`` are deletion;
    ``output_suppression`` (refusal tuning) is output suppression, whatever it changes in the
    weights, because what it removes is the answer, not the knowledge.
    """
    # The engine imports torch: read only when a decision is made or shown, never at start-up.
    from unlearning_jobs.engine.methods import EXACT, FRAMEWORK_OUTPUT_SUPPRESSION, METHODS, method_framework

    methods = []
    for name, cls in sorted(METHODS.items()):
        framework = (
            Framework.OUTPUT_SUPPRESSION.value
            if method_framework(name) == FRAMEWORK_OUTPUT_SUPPRESSION
            else Framework.DELETION.value
        )
        methods.append(
            PlanMethod(
                framework=framework,
                method=name,
                validate=_deletion_validator(name),
                job_kind=JobKind.UNLEARN.value,
                summary=cls.summary,
                guarantee=cls.guarantee,
                needs_training_data=cls.guarantee == EXACT,
                presets=_presets(getattr(cls, "Params", None)),
            )
        )
    return methods


def deletion_methods() -> list[PlanMethod]:
    """Return the engine's methods filed under deletion (exact and approximate unlearning)."""
    return [m for m in engine_methods() if m.framework == Framework.DELETION.value]


def suppression_methods() -> list[PlanMethod]:
    """Return the output- and latent-suppression methods of the suppression stage."""
    return [
        PlanMethod(
            framework=Framework.OUTPUT_SUPPRESSION.value,
            method="guard",
            validate=guard_params_clean,
            job_kind=JobKind.GUARD.value,
            summary="input and output filters keyed to the subject, and a system prompt, on the model's deployments",
        ),
        PlanMethod(
            framework=Framework.LATENT_SUPPRESSION.value,
            method="derived_data_deletion",
            validate=latent_params_clean,
            job_kind=JobKind.LATENT_DELETE.value,
            summary="delete the subject's derived data and probe what the model still infers",
        ),
    ]


@cache
def _all_methods() -> tuple[PlanMethod, ...]:
    return tuple(engine_methods() + suppression_methods())


def plan_methods() -> list[PlanMethod]:
    """Return every method an officer may choose, by framework."""
    return sorted(_all_methods(), key=lambda m: (Framework.values.index(m.framework), m.method))


def plan_method_for(framework: str, method: str) -> PlanMethod | None:
    """Return the method ``method`` of ``framework``, or None when it offers none by that name."""
    return next((m for m in _all_methods() if (m.framework, m.method) == (framework, method)), None)
