"""The keys guard rules are hashed under: one per deployment, derived from the guard master key.

A rule is the HMAC of a normalised identifier. Whoever holds the key can hash every phone number
of a region, or a list of e-mail addresses, and find in a rule set exactly the people who asked
to be forgotten. So the key of the PII index never hashes rules (it never leaves Lethe): each
deployment has its own key, derived with HKDF-SHA256 from ``LETHE_GUARD_MASTER_KEY`` and the
deployment's id. A serving stack outside Lethe is given its deployment's key only; with it, it
can enumerate that deployment's rules and no other's, and nothing in the PII index.

The key id (``guard-d<deployment id>:<fingerprint>``) is stored with every rule set and exported
with it; it changes by itself when the master key does. Rule sets hashed under a retired master
key, or under the index key before deployment keys existed, are served from Lethe until they are
re-keyed (``suppression.services.deployment_rules_rekey``), and never exported.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ValidationError

from requests_app.identifiers import pii_hasher
from unlearning_jobs.engine.pii.hashing import KeyedHasher

# Derivation labels: changing one changes every deployment's key, so they are versioned, never edited.
HKDF_SALT = b"lethe.guard-deployment-key.v1"
KEY_ID_PREFIX = "guard-d"


def deployment_key(master_key: bytes, deployment_id: int) -> bytes:
    """Return the 32-byte key of deployment ``deployment_id`` under ``master_key`` (HKDF-SHA256)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=HKDF_SALT,
        info=f"deployment:{int(deployment_id)}".encode("ascii"),
    ).derive(master_key)


def deployment_key_id(deployment_id: int, key: bytes) -> str:
    """Return the name of a deployment key: the deployment and a fingerprint that reveals nothing."""
    return f"{KEY_ID_PREFIX}{int(deployment_id)}:" + hashlib.sha256(b"lethe.key-id:" + key).hexdigest()[:12]


def _hasher(deployment_id: int, master_key: bytes) -> KeyedHasher:
    key = deployment_key(master_key, deployment_id)
    return KeyedHasher(key=key, key_id=deployment_key_id(deployment_id, key))


def deployment_hasher(deployment) -> KeyedHasher:
    """Return the hasher new rules of ``deployment`` are made with (the current master key)."""
    return _hasher(deployment.pk, settings.LETHE_GUARD_MASTER_KEY)


def rule_set_hasher(rule_set) -> KeyedHasher:
    """Return the hasher ``rule_set`` was made with, for the guard that serves it inside Lethe.

    The deployment's key under the current or a retired master key; the index key for a rule set
    made before deployment keys existed. Raise ``ValidationError`` when no configured key made it.
    """
    current = deployment_hasher(rule_set.deployment)
    if rule_set.key_id == current.key_id:
        return current
    for retired in settings.LETHE_GUARD_RETIRED_MASTER_KEYS:
        hasher = _hasher(rule_set.deployment_id, retired)
        if rule_set.key_id == hasher.key_id:
            return hasher
    index = pii_hasher()
    if rule_set.key_id == index.key_id:
        return index
    raise ValidationError(
        f"Rule set v{rule_set.version} was hashed under key {rule_set.key_id!r}, which no configured "
        "key makes: put the old guard master key in LETHE_GUARD_RETIRED_MASTER_KEYS, or re-key the "
        "deployment's rules (manage.py guard_rules_rekey)."
    )


def rule_set_needs_rekey(rule_set) -> bool:
    """Return True when ``rule_set`` is not hashed under its deployment's current key."""
    return rule_set.key_id != deployment_hasher(rule_set.deployment).key_id
