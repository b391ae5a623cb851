"""Describe what is known about a subject, for probes: identifiers, derived facts, records.

Raw values: a ``SubjectFacts`` exists only inside a job run or a benchmark and is never logged or
stored; what persists is the rules (keyed hashes) and the measurements (counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..pii.entities import EntityType
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
    #: The full name, or None where the request gives none (an e-mail or a phone alone): probes
    #: then ask about "this customer" and leak only the identifiers the request has.
    name: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    account_ids: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    dates_of_birth: tuple[str, ...] = ()
    records: tuple[SubjectRecord, ...] = field(default=())
    default_region: str = "GB"

    def __post_init__(self) -> None:
        if self.name is not None and (not isinstance(self.name, str) or len(self.name.split()) < 2):
            raise ValueError("a subject's name needs a given name and a family name (or None)")
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
        if self.name is None and not (self.emails or self.phones or self.addresses or self.account_ids):
            raise ValueError("a subject needs a name or at least one e-mail, phone, address or account id")

    @property
    def identifier_kinds(self) -> tuple[str, ...]:
        """Return the kinds of identifier known (``PERSON``, ``EMAIL``...), for probe output."""
        present = (
            (EntityType.PERSON, self.name),
            (EntityType.EMAIL, self.emails),
            (EntityType.PHONE, self.phones),
            (EntityType.ADDRESS, self.addresses),
            (EntityType.ACCOUNT_ID, self.account_ids),
        )
        return tuple(kind.value for kind, values in present if values)

    def rules(self, *, hasher: KeyedHasher) -> tuple[SuppressionRule, ...]:
        """Return the subject's suppression rules (every identifier and quasi-identifier)."""
        return rules_from_identifiers(
            hasher=hasher,
            subject_ref=self.subject_ref,
            names=[self.name] if self.name else [],
            emails=self.emails,
            phones=self.phones,
            addresses=self.addresses,
            account_ids=self.account_ids,
            locations=self.cities,
            dates_of_birth=self.dates_of_birth,
            default_region=self.default_region,
        )
