"""Compute the PII index's keyed hashes at the rate a guard needs them.

``KeyedHasher.hash`` validates its arguments and sets up HMAC's key pads on every call, about
5 µs; a guard hashes hundreds of candidate spans per response. ``KeyedDigest`` computes the very
same HMAC-SHA256 of ``"<ENTITY_TYPE>:<normalised>"`` (RFC 2104) from inner and outer SHA-256
states prepared once, about 1.5 µs, and checks itself against ``KeyedHasher.hash`` when built,
so a change of the index's hash format fails loudly instead of silently matching nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from ..pii.entities import EntityType
from ..pii.hashing import KeyedHasher

__all__ = ["KeyedDigest"]

_BLOCK = 64  # SHA-256's block size, HMAC's key pad length
_SELF_CHECK = (EntityType.PERSON, "lethe guard self check")


class KeyedDigest:
    """Return ``hasher.hash(kind, normalised)`` for already-normalised values, fast."""

    __slots__ = ("key_id", "_inner", "_outer")

    def __init__(self, hasher: KeyedHasher) -> None:
        if not isinstance(hasher, KeyedHasher):
            raise ValueError(f"a KeyedHasher is required, got {type(hasher).__name__}")
        self.key_id = hasher.key_id
        key = bytes(hasher.key)
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))
        for kind in EntityType:
            if self(kind, _SELF_CHECK[1]) != hasher.hash(kind, _SELF_CHECK[1]):
                raise ValueError(
                    "KeyedDigest no longer reproduces KeyedHasher.hash: the index's hash format "
                    "changed, and the guard must follow it"
                )

    def for_type(self, kind: EntityType) -> Callable[[str], str]:
        """Return a function hashing normalised values of one type (saves a lookup per call)."""
        outer = self._outer
        prefix = self._inner.copy()
        prefix.update(f"{EntityType(kind).value}:".encode("utf-8"))

        def digest(normalised: str) -> str:
            state = prefix.copy()
            state.update(normalised.encode("utf-8"))
            result = outer.copy()
            result.update(state.digest())
            return result.hexdigest()

        return digest

    def __call__(self, kind: EntityType, normalised: str) -> str:
        """Return the hex HMAC-SHA256 of ``"<kind>:<normalised>"`` under the hasher's key."""
        state = self._inner.copy()
        state.update(f"{EntityType(kind).value}:{normalised}".encode("utf-8"))
        result = self._outer.copy()
        result.update(state.digest())
        return result.hexdigest()
