"""Canonical JSON, SHA-256 and HMAC-SHA256 for audit reports, and the keys they are made with.

The body of a report is signed as its canonical JSON: UTF-8, keys sorted, no whitespace,
non-ASCII characters kept as they are, and no NaN or infinity (strict JSON has none). Any
program that parses the body and writes it back this way gets the same bytes, so a signature
survives a round trip through a JSON parser but not a change of any value.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

SIGNATURE_ALGORITHM = "HMAC-SHA256"
CANONICALISATION = "lethe-canonical-json/1"


class UnknownSigningKey(LookupError):
    """A signature names a key id that this deployment does not hold."""


def canonical_json_text(value) -> str:
    """Return the one JSON text of ``value`` that every signer and verifier produces.

    Unlike the audit log's ``canonical_json`` nothing is converted silently: a value that is not
    plain JSON (a datetime, a NaN) raises, because a report must say exactly what it signs.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def canonical_json_bytes(value) -> bytes:
    return canonical_json_text(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hmac_hex(*, key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def report_id_for(*, reference: str, version: int | None) -> str:
    """Return ``ER-2026-000001-v2`` for an issued version, ``ER-2026-000001-draft`` for a draft."""
    return f"{reference}-v{version}" if version else f"{reference}-draft"


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    key: bytes


def signing_key_current() -> SigningKey:
    """Return the key new reports are signed with (``LETHE_REPORT_SIGNING_KEY``)."""
    from django.conf import settings

    return SigningKey(settings.LETHE_REPORT_SIGNING_KEY_ID, settings.LETHE_REPORT_SIGNING_KEY)


def signing_key_for(key_id: str) -> SigningKey:
    """Return the key named ``key_id``: the current one or a retired one; raise if neither."""
    from django.conf import settings

    current = signing_key_current()
    if key_id == current.key_id:
        return current
    retired = settings.LETHE_REPORT_RETIRED_SIGNING_KEYS.get(key_id)
    if retired is None:
        raise UnknownSigningKey(
            f"The signature names key {key_id!r}, which this Lethe does not hold (current key: "
            f"{current.key_id!r}; retired keys: {sorted(settings.LETHE_REPORT_RETIRED_SIGNING_KEYS) or 'none'}).")
    return SigningKey(key_id, retired)


def signature_block(*, body_bytes: bytes, key: SigningKey) -> dict:
    """Return the ``signature`` object written beside a body: algorithm, key id, SHA-256, HMAC."""
    return {
        "alg": SIGNATURE_ALGORITHM,
        "canonicalization": CANONICALISATION,
        "key_id": key.key_id,
        "sha256": sha256_hex(body_bytes),
        "hmac": hmac_hex(key=key.key, data=body_bytes),
    }


def hmac_matches(*, key: SigningKey, data: bytes, expected: str) -> bool:
    """Compare in constant time, so a forger learns nothing from how long a refusal took."""
    return hmac.compare_digest(hmac_hex(key=key.key, data=data), expected or "")
