"""What each unlearning method guarantees and where a report files it, readable without torch.

The web processes need two facts about a method name: whether it is exact (its model becomes
the request's retrain reference in verification; the report promises deletion without a
statistical caveat) and which framework its result belongs to (exact, approximate unlearning,
output suppression). Reading them from ``engine.methods`` would import torch and transformers
into every page. This table is those facts alone; ``engine.methods`` checks its registry against
it on import and refuses to load if the two disagree, so a method is declared here once and
everything above the engine reads the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

EXACT = "exact"
STATISTICAL = "statistical"
FRAMEWORK_APPROXIMATE = "approximate_unlearning"
FRAMEWORK_OUTPUT_SUPPRESSION = "output_suppression"


@dataclass(frozen=True)
class CatalogueEntry:
    """One method: ``guarantee`` (``exact`` or ``statistical``) and ``framework`` (``exact``,
    ``approximate_unlearning`` or ``output_suppression``: what the report files it under)."""

    name: str
    guarantee: str
    framework: str


CATALOGUE: dict[str, CatalogueEntry] = {
    entry.name: entry
    for entry in (
        CatalogueEntry("retrain", EXACT, EXACT),
        CatalogueEntry("sisa", EXACT, EXACT),
        CatalogueEntry("gradient_ascent", STATISTICAL, FRAMEWORK_APPROXIMATE),
        CatalogueEntry("gradient_difference", STATISTICAL, FRAMEWORK_APPROXIMATE),
        CatalogueEntry("npo", STATISTICAL, FRAMEWORK_APPROXIMATE),
        CatalogueEntry("simnpo", STATISTICAL, FRAMEWORK_APPROXIMATE),
        CatalogueEntry("rmu", STATISTICAL, FRAMEWORK_APPROXIMATE),
        # Refusal tuning changes what the model says, not what its weights hold (seed 001 §IV).
        CatalogueEntry("refusal", STATISTICAL, FRAMEWORK_OUTPUT_SUPPRESSION),
    )
}

#: The methods whose result is the model trained without the records (retrain, SISA).
EXACT_METHODS: frozenset[str] = frozenset(
    name for name, entry in CATALOGUE.items() if entry.guarantee == EXACT
)


def is_exact(name: str) -> bool:
    """Return whether ``name`` is an exact method; an unknown name is not (promise nothing)."""
    return name in EXACT_METHODS


def framework_of(name: str) -> str:
    """Return the framework a method's result is filed under; unknown names list the valid ones."""
    try:
        return CATALOGUE[name].framework
    except KeyError:
        raise ValueError(
            f"unknown unlearning method {name!r}; valid methods are {', '.join(sorted(CATALOGUE))}"
        ) from None
