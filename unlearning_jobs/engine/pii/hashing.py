"""Hash normalised personal data with the server's key, so the index never holds raw values.

One ``KeyedHasher`` is used for the index, for a request's identifiers and for guardrail rules:
the same normalised value of the same entity type gives the same hash everywhere, and nothing
can be matched without the key (an unkeyed hash of an e-mail address is reversible by
dictionary).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from .entities import (
    DIRECT_IDENTIFIERS,
    PRESIDIO_TO_ENTITY,
    QUASI_IDENTIFIERS,
    EntityType,
    entity_type_from_presidio,
)

__all__ = [
    "EntityType",
    "DIRECT_IDENTIFIERS",
    "QUASI_IDENTIFIERS",
    "PRESIDIO_TO_ENTITY",
    "entity_type_from_presidio",
    "HashingKeyError",
    "KeyedHasher",
    "MIN_KEY_BYTES",
]

#: Shortest key accepted: HMAC-SHA256 is only as strong as its key.
MIN_KEY_BYTES = 16


class HashingKeyError(ValueError):
    """The hashing key or its id is unusable."""


@dataclass(frozen=True)
class KeyedHasher:
    """HMAC-SHA256 of ``"<ENTITY_TYPE>:<normalised value>"`` under a server key.

    ``key_id`` names the key (not the key itself) so an index built under one key is never
    compared with hashes made under another; store it with every index version. The entity
    type is part of the message so that a value hashed as a name never equals the same string
    hashed as a place.
    """

    key: bytes = field(repr=False)
    key_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.key, (bytes, bytearray)):
            raise HashingKeyError(f"hashing key must be bytes, got {type(self.key).__name__}")
        if len(self.key) < MIN_KEY_BYTES:
            raise HashingKeyError(
                f"hashing key is {len(self.key)} bytes; at least {MIN_KEY_BYTES} are required"
            )
        if not isinstance(self.key_id, str) or not self.key_id.strip():
            raise HashingKeyError("hashing key id must be a non-empty string")

    def hash(self, entity_type: EntityType | str, normalised: str) -> str:
        """Return the hex HMAC-SHA256 of ``f"{entity_type}:{normalised}"``.

        ``normalised`` must already have passed the matching ``normalise_*`` function: hashing
        does not fold anything, so that what is hashed is exactly what was decided.
        """
        kind = EntityType(entity_type)
        if not normalised:
            raise ValueError(f"cannot hash an empty normalised {kind.value} value")
        message = f"{kind.value}:{normalised}".encode("utf-8")
        return hmac.new(bytes(self.key), message, hashlib.sha256).hexdigest()
