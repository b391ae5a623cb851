"""Name the kinds of personal data Lethe indexes, independent of Presidio's own labels.

The index, a request's identifiers and the guardrails must agree on one vocabulary, so a
Presidio or spaCy upgrade that renames a label cannot silently split the hashes of one value.
"""

from __future__ import annotations

from enum import StrEnum


class EntityType(StrEnum):
    """A kind of personal data; its value is the prefix of every keyed hash of that kind."""

    EMAIL = "EMAIL"
    PHONE = "PHONE"
    PERSON = "PERSON"
    ADDRESS = "ADDRESS"
    ACCOUNT_ID = "ACCOUNT_ID"
    DATE_OF_BIRTH = "DATE_OF_BIRTH"
    LOCATION = "LOCATION"


#: Entity types that identify a person on their own (the "strong" tier of matching).
DIRECT_IDENTIFIERS: frozenset[EntityType] = frozenset(
    {EntityType.EMAIL, EntityType.PHONE, EntityType.ACCOUNT_ID, EntityType.ADDRESS}
)

#: Entity types that only narrow a person down in combination ("quasi" tier).
QUASI_IDENTIFIERS: frozenset[EntityType] = frozenset({EntityType.DATE_OF_BIRTH, EntityType.LOCATION})

#: Presidio entity labels (built-in and Lethe's own recognisers) mapped onto Lethe's types.
PRESIDIO_TO_ENTITY: dict[str, EntityType] = {
    "EMAIL_ADDRESS": EntityType.EMAIL,
    "PHONE_NUMBER": EntityType.PHONE,
    "PERSON": EntityType.PERSON,
    "LOCATION": EntityType.LOCATION,
    "GPE": EntityType.LOCATION,
    "STREET_ADDRESS": EntityType.ADDRESS,
    "ACCOUNT_ID": EntityType.ACCOUNT_ID,
    "DATE_OF_BIRTH": EntityType.DATE_OF_BIRTH,
}


def entity_type_from_presidio(label: str) -> EntityType:
    """Return Lethe's entity type for a Presidio label, or raise ``ValueError`` if unmapped."""
    try:
        return PRESIDIO_TO_ENTITY[label]
    except KeyError:
        raise ValueError(
            f"Presidio entity label {label!r} has no Lethe entity type; "
            f"known labels: {sorted(PRESIDIO_TO_ENTITY)}"
        ) from None
