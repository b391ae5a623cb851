"""Canonical JSON, SHA-256 and Ed25519 signatures for audit reports, and the keys they are made with.

The body of a report is signed as its canonical JSON: UTF-8, keys sorted, no whitespace,
non-ASCII characters kept as they are, and no NaN or infinity (strict JSON has none). Any
program that parses the body and writes it back this way gets the same bytes, so a signature
survives a round trip through a JSON parser but not a change of any value.

Reports are signed with Ed25519: the private key signs inside Lethe, and anyone verifies with
the public key (``GET /api/v1/reports/keys/``), so an outside auditor needs no secret and cannot
forge. Reports issued before were signed with HMAC-SHA256; they stay verifiable with the HMAC key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_ALGORITHM = "Ed25519"
LEGACY_SIGNATURE_ALGORITHM = "HMAC-SHA256"
CANONICALISATION = "lethe-canonical-json/1"


class UnknownSigningKey(LookupError):
    """A signature names a key id that this deployment does not hold."""


def canonical_json_text(value) -> str:
    """Return the one JSON text of ``value`` that every signer and verifier produces.

    Unlike the audit log's ``canonical_json`` nothing is converted silently: a value that is not
    plain JSON (a datetime, a NaN) raises, because a report must say exactly what it signs.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json_bytes(value) -> bytes:
    return canonical_json_text(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hmac_hex(*, key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    key: bytes


# --- HMAC-SHA256: reports issued before Ed25519 ----------------------------------------------------


def signing_key_current() -> SigningKey:
    """Return the HMAC key of ``LETHE_REPORT_SIGNING_KEY`` (reports issued before Ed25519 name it)."""
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
            f"{current.key_id!r}; retired keys: {sorted(settings.LETHE_REPORT_RETIRED_SIGNING_KEYS) or 'none'})."
        )
    return SigningKey(key_id, retired)


# --- Ed25519 ------------------------------------------------------------------------------------


def public_key_id(public_key: Ed25519PublicKey) -> str:
    """Return ``ed25519:<16 hex>``: a fingerprint of the public key, the name written in signatures."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class ReportSigner:
    """The private key that signs reports now, and the id of its public half."""

    key_id: str
    private_key: Ed25519PrivateKey

    def sign(self, data: bytes) -> str:
        """Return the base64 Ed25519 signature of ``data``."""
        return base64.b64encode(self.private_key.sign(data)).decode("ascii")


def report_signer_current() -> ReportSigner:
    """Return the signer of new reports (``LETHE_REPORT_SIGNING_PRIVATE_KEY``)."""
    from django.conf import settings

    private_key = serialization.load_pem_private_key(
        settings.LETHE_REPORT_SIGNING_PRIVATE_KEY_PEM, password=None
    )
    return ReportSigner(public_key_id(private_key.public_key()), private_key)


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    public_key: Ed25519PublicKey
    current: bool

    def pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def jwk(self) -> dict:
        """Return the key as a JSON Web Key (RFC 8037: OKP, Ed25519)."""
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": self.key_id,
            "use": "sig",
            "alg": "EdDSA",
            "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii"),
        }


def public_keys() -> list[PublicKey]:
    """Return the public keys that verify reports: the current one first, then the retired ones."""
    from django.conf import settings

    current = report_signer_current()
    keys = [PublicKey(current.key_id, current.private_key.public_key(), current=True)]
    for key_id, pem in settings.LETHE_REPORT_RETIRED_PUBLIC_KEYS.items():
        public_key = serialization.load_pem_public_key(pem)
        if isinstance(public_key, Ed25519PublicKey) and public_key_id(public_key) != current.key_id:
            keys.append(PublicKey(key_id, public_key, current=False))
    return keys


def public_key_for(key_id: str) -> PublicKey:
    """Return the public key named ``key_id``; raise ``UnknownSigningKey`` if this Lethe has none."""
    for key in public_keys():
        if key.key_id == key_id:
            return key
    raise UnknownSigningKey(f"The signature names key {key_id!r}, whose public key this Lethe does not hold.")


def ed25519_verifies(*, key: PublicKey, data: bytes, signature_b64: str) -> bool:
    """Return whether ``signature_b64`` is the key's Ed25519 signature of ``data``."""
    try:
        key.public_key.verify(base64.b64decode(signature_b64 or "", validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_block(*, body_bytes: bytes, signer: ReportSigner) -> dict:
    """Return the ``signature`` object written beside a body: algorithm, key id, SHA-256, signature."""
    return {
        "alg": SIGNATURE_ALGORITHM,
        "canonicalization": CANONICALISATION,
        "key_id": signer.key_id,
        "sha256": sha256_hex(body_bytes),
        "signature": signer.sign(body_bytes),
    }


def hmac_matches(*, key: SigningKey, data: bytes, expected: str) -> bool:
    """Compare in constant time, so a forger learns nothing from how long a refusal took."""
    return hmac.compare_digest(hmac_hex(key=key.key, data=data), expected or "")
