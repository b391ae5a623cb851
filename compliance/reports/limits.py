"""Statements of what an erasure does not guarantee, chosen by the frameworks and methods applied.

The wording follows Cooper et al., "Machine Unlearning Doesn't Do What You Think" (2024): each
statement names the mismatch between what was done and what a reader may assume. Statements are
plain language for a regulator, and every report carries the ones that apply, in a fixed order.
A statement's text is part of the signed body; changing a text here changes only reports issued
afterwards, so texts are edited by adding a code, never by rewording an old one in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from unlearning_jobs.engine.method_catalogue import EXACT_METHODS

DELETION = "deletion"
OUTPUT_SUPPRESSION = "output_suppression"
LATENT_SUPPRESSION = "latent_suppression"
FRAMEWORKS = (DELETION, OUTPUT_SUPPRESSION, LATENT_SUPPRESSION)
FRAMEWORK_LABELS = {
    DELETION: "Deletion (removal of observed information)",
    OUTPUT_SUPPRESSION: "Output suppression",
    LATENT_SUPPRESSION: "Latent-information suppression",
}
FRAMEWORK_SHORT_LABELS = {
    DELETION: "Deletion",
    OUTPUT_SUPPRESSION: "Output suppression",
    LATENT_SUPPRESSION: "Latent suppression",
}
SUPPRESSION_FRAMEWORKS = frozenset({OUTPUT_SUPPRESSION, LATENT_SUPPRESSION})

# Deletion methods whose result does not depend on the removed records (the engine's catalogue,
# read without torch). Any other deletion method, including one the catalogue has never heard
# of (a job recorded under a name since retired), is treated as approximate: the report must not
# promise more than it can show.
EXACT_DELETION_METHODS = EXACT_METHODS

COOPER_ET_AL = "Cooper et al., Machine Unlearning Doesn't Do What You Think (2024)"


@dataclass(frozen=True)
class LimitStatement:
    code: str
    title: str
    text: str
    mismatch: int | None = None

    def as_dict(self, *, applies_because: str) -> dict:
        return {
            "code": self.code,
            "title": self.title,
            "text": self.text,
            "mismatch": self.mismatch,
            "applies_because": applies_because,
            "source": COOPER_ET_AL,
        }


NOTHING_APPLIED = LimitStatement(
    "no_framework_applied",
    "Nothing was applied to any model",
    "No erasure framework was applied to a model or a data set for this request. This report "
    "records how the request was handled; it makes no claim about what any model contains.",
)
APPROXIMATE_UNLEARNING = LimitStatement(
    "approximate_unlearning_statistical",
    "Approximate unlearning gives a statistical guarantee only",
    "The model's parameters were changed by approximate unlearning ({methods}) rather than by "
    "retraining without the records. Its effect is measured, not proven: the verification results "
    "in this report show how closely the model resembles one that never saw the records, on the tests that "
    "were run. Information the tests did not probe may remain in the parameters.",
)
LOCATING_COVERAGE = LimitStatement(
    "deletion_covers_located_records",
    "Deletion covers the records that were found",
    "Deletion removed the records that Lethe's search located and the officer confirmed. Copies "
    "the search did not recognise (a paraphrase, a misspelt name, a data set outside the scope) "
    "were not removed; the search coverage in this report says what was searched.",
)
REMOVAL_NOT_SUPPRESSION = LimitStatement(
    "removal_does_not_guarantee_suppression",
    "Removing records does not guarantee the model cannot produce similar output",
    "The person's records are no longer in the training data the model learnt from, yet the model "
    "may still produce similar text: from other records about the person, from what it can infer, "
    "or by chance. Removal of observed information is not suppression of outputs.",
    mismatch=2,
)
SUPPRESSION_NOT_REMOVAL = LimitStatement(
    "suppression_is_not_removal",
    "Suppression does not remove anything from the model",
    "Guardrails ({methods}) stop the deployed system from revealing the person's data, but the "
    "model's parameters still hold whatever it learnt about the person. A copy of the model "
    "served without these guardrails is not covered.",
    mismatch=1,
)
REINTRODUCTION = LimitStatement(
    "prompts_can_reintroduce_information",
    "Prompts can bring the information back",
    "A model is not its outputs: it can still reason about the person from what a prompt tells "
    "it. A prompt that re-introduces the person's data can lead the model to use or complete it "
    "again; the input filter refuses the prompts it recognises, not every possible one.",
    mismatch=3,
)
LATENT_PROBES = LimitStatement(
    "latent_probes_are_finite",
    "Inference was probed with a finite set of questions",
    "Latent information was measured with the deduction questions listed in the verification "
    "results. Inferences that those questions did not ask about were not measured and may remain.",
)
BASE_PRETRAINING_DATA = LimitStatement(
    "base_pretraining_data_not_covered",
    "Deletion covers the data Lethe trained on, not a base model's pretraining data",
    "The model started from a pretrained base ({bases}) that Lethe imported; the data that base was "
    "pretrained on is unknown to Lethe. Deletion covers the data Lethe trained or fine-tuned the model "
    "on, never the base's pretraining data: whatever the base learnt about the person there, if "
    "anything, was neither searched for nor removed.",
)
DOWNSTREAM_USE = LimitStatement(
    "downstream_use_outside_the_model",
    "How outputs are used is outside the model",
    "A model is not how its outputs are used. What people or systems do with outputs produced "
    "before or after this erasure (copies, summaries, decisions made with them) is outside the "
    "model and outside what this report can show.",
    mismatch=4,
)


def _methods_text(methods: Iterable[str]) -> str:
    names = sorted({method.replace("_", " ") for method in methods})
    return ", ".join(names) if names else "method not recorded"


def limits_statements(*, applied: dict[str, set[str]], jobs: Iterable[dict] = ()) -> list[dict]:
    """Return the statements of limits for ``applied`` (framework → the methods applied under it).

    ``applied`` holds only what was actually applied (jobs that succeeded); a framework decided
    but never carried out is shown by the jobs table, not covered by statements of what it
    would not guarantee. ``jobs`` are the report's job rows: any whose model starts from a
    pretrained base (``base_model``) calls for the statement that the base's pretraining data
    is not covered.
    """
    statements: list[dict] = []
    deletion_methods = applied.get(DELETION, set())
    suppression_methods = set().union(*(applied.get(name, set()) for name in SUPPRESSION_FRAMEWORKS))
    suppression_used = [name for name in FRAMEWORKS if name in SUPPRESSION_FRAMEWORKS and name in applied]
    if not applied:
        statements.append(NOTHING_APPLIED.as_dict(applies_because="no framework was applied"))
    if DELETION in applied:
        approximate = sorted(method for method in deletion_methods if method not in EXACT_DELETION_METHODS)
        if approximate or not deletion_methods:
            text = APPROXIMATE_UNLEARNING.text.format(methods=_methods_text(approximate))
            statements.append(
                {
                    **APPROXIMATE_UNLEARNING.as_dict(
                        applies_because="deletion by approximate unlearning: " + _methods_text(approximate)
                    ),
                    "text": text,
                }
            )
        statements.append(LOCATING_COVERAGE.as_dict(applies_because="deletion"))
        statements.append(REMOVAL_NOT_SUPPRESSION.as_dict(applies_because="deletion"))
    if suppression_used:
        because = " and ".join(name.replace("_", " ") for name in suppression_used)
        statements.append(
            {
                **SUPPRESSION_NOT_REMOVAL.as_dict(applies_because=because),
                "text": SUPPRESSION_NOT_REMOVAL.text.format(methods=_methods_text(suppression_methods)),
            }
        )
        statements.append(REINTRODUCTION.as_dict(applies_because=because))
    if LATENT_SUPPRESSION in applied:
        statements.append(LATENT_PROBES.as_dict(applies_because="latent suppression"))
    bases = sorted(
        {
            str(job["base_model"].get("model_version"))
            for job in jobs
            if isinstance(job, dict) and isinstance(job.get("base_model"), dict)
        }
    )
    if bases:
        statements.append(
            {
                **BASE_PRETRAINING_DATA.as_dict(
                    applies_because="a job ran on a model that starts from a pretrained base"
                ),
                "text": BASE_PRETRAINING_DATA.text.format(bases=", ".join(bases)),
            }
        )
    statements.append(DOWNSTREAM_USE.as_dict(applies_because="always"))
    return statements
