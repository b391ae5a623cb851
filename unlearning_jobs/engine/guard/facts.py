"""Describe what is known about a subject, for probes: identifiers, derived facts, records.

Raw values: a ``SubjectFacts`` exists only inside a job run or a benchmark and is never logged or
stored; what persists is the rules (keyed hashes) and the measurements (counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..pii.hashing import KeyedHasher
from .rules import SuppressionRule, rules_from_identifiers

__all__ = ["SubjectRecord", "SubjectFacts"]


@dataclass(frozen=True)
class SubjectRecord:
    """One training record that mentions the subject (raw text: only inside a job run)."""

    record_id: str
    text: str


@dataclass(frozen=True)
class SubjectFacts:
    """What is known about one subject: identifiers, derived facts and the records they are in.

    Raw values: this exists only inside a job run or a benchmark, never in logs or results.
    ``cities`` and ``dates_of_birth`` are quasi-identifiers; ``records`` let latent probes find
    facts that no single record states.
    """

    subject_ref: str
    name: str
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    account_ids: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    dates_of_birth: tuple[str, ...] = ()
    records: tuple[SubjectRecord, ...] = field(default=())
    default_region: str = "GB"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or len(self.name.split()) < 2:
            raise ValueError("a subject's name needs a given name and a family name")
        for name in (
            "emails",
            "phones",
            "addresses",
            "account_ids",
            "cities",
            "dates_of_birth",
            "records",
        ):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(f"{name} must be a sequence, not one string")
            object.__setattr__(self, name, tuple(value))

    def rules(self, *, hasher: KeyedHasher) -> tuple[SuppressionRule, ...]:
        """Return the subject's suppression rules (every identifier and quasi-identifier)."""
        return rules_from_identifiers(
            hasher=hasher,
            subject_ref=self.subject_ref,
            names=[self.name],
            emails=self.emails,
            phones=self.phones,
            addresses=self.addresses,
            account_ids=self.account_ids,
            locations=self.cities,
            dates_of_birth=self.dates_of_birth,
            default_region=self.default_region,
        )
