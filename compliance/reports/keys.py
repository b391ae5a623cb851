"""The key that signs audit reports, read from the environment by ``settings.py``.

Kept free of Django imports at module level: settings import it before apps are ready.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os

# Derivation label: changing it changes every derived key, so it is versioned, never edited.
REPORT_SIGNING_KEY_DERIVATION_LABEL = b"lethe.report-signing-key.v1"
MIN_SIGNING_KEY_BYTES = 16


def report_signing_key(value: str | None, *, secret_key: str) -> bytes:
    """Return the HMAC key for reports: ``LETHE_REPORT_SIGNING_KEY``, else one derived from the secret key.

    Deriving keeps the secret key itself inside Django while the embedded default needs no
    configuration. A production deployment sets the variable, so that rotating the secret key
    does not leave every issued report unverifiable.
    """
    from django.core.exceptions import ImproperlyConfigured

    if value:
        key = value.encode("utf-8")
        if len(key) < MIN_SIGNING_KEY_BYTES:
            raise ImproperlyConfigured(
                f"LETHE_REPORT_SIGNING_KEY must be at least {MIN_SIGNING_KEY_BYTES} bytes long"
            )
        return key
    return hmac.new(secret_key.encode("utf-8"), REPORT_SIGNING_KEY_DERIVATION_LABEL, hashlib.sha256).digest()


def report_signing_key_id(value: str | None, *, key: bytes) -> str:
    """Return the name written beside every report signature: ``value``, or a fingerprint of ``key``.

    The fingerprint is a hash of the key, never the key, and changes by itself when the key does.
    """
    if value and value.strip():
        return value.strip()
    return "report-hmac:" + hashlib.sha256(b"lethe.report-key-id:" + key).hexdigest()[:12]


def retired_signing_keys(value: str | None) -> dict[str, bytes]:
    """Return ``{key_id: key}`` of keys that no longer sign but still verify older reports.

    ``LETHE_REPORT_RETIRED_SIGNING_KEYS`` is a JSON object, ``{"<key id>": "<key>"}``: JSON
    because a key may hold any character a simpler list format would use as a separator.
    """
    from django.core.exceptions import ImproperlyConfigured

    if not value or not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(
            f"LETHE_REPORT_RETIRED_SIGNING_KEYS is not JSON ({error.msg}); expected "
            '{"<key id>": "<key>", ...}'
        ) from None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.strip() for k, v in parsed.items()
    ):
        raise ImproperlyConfigured(
            'LETHE_REPORT_RETIRED_SIGNING_KEYS must be a JSON object of strings: {"<key id>": "<key>"}'
        )
    keys = {}
    for key_id, key in parsed.items():
        if len(key.encode("utf-8")) < MIN_SIGNING_KEY_BYTES:
            raise ImproperlyConfigured(
                f"LETHE_REPORT_RETIRED_SIGNING_KEYS: the key of {key_id!r} is shorter than "
                f"{MIN_SIGNING_KEY_BYTES} bytes"
            )
        keys[key_id.strip()] = key.encode("utf-8")
    return keys


# --- Ed25519: what reports are signed with now ------------------------------------------------

ED25519_KEY_FILE_NAME = "report_signing_ed25519.pem"


def report_signing_private_key_pem(value: str | None, *, key_file: str | None, var_dir) -> bytes:
    """Return the PEM of the Ed25519 key that signs reports.

    From ``LETHE_REPORT_SIGNING_PRIVATE_KEY`` (the PEM itself), else the file named by
    ``LETHE_REPORT_SIGNING_PRIVATE_KEY_FILE``, else a key generated once into
    ``var/report_signing_ed25519.pem`` (mode 600) for the embedded default; ``manage.py check
    --deploy`` says so when a deployment runs on such a generated key. Any auditor verifies with
    the public half (``GET /api/v1/reports/keys/``); only this key can sign.
    """
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from django.core.exceptions import ImproperlyConfigured

    if value and value.strip():
        pem, source = value.strip().encode("ascii"), "LETHE_REPORT_SIGNING_PRIVATE_KEY"
    elif key_file:
        try:
            pem, source = Path(key_file).read_bytes(), f"LETHE_REPORT_SIGNING_PRIVATE_KEY_FILE ({key_file})"
        except OSError as error:
            raise ImproperlyConfigured(
                f"LETHE_REPORT_SIGNING_PRIVATE_KEY_FILE cannot be read: {error.strerror}"
            ) from None
    else:
        path = Path(var_dir) / ED25519_KEY_FILE_NAME
        if not path.exists():
            _key_file_create(
                path,
                Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
        pem, source = path.read_bytes(), str(path)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(
            f"The report signing key from {source} is not a PEM private key: {error}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"The report signing key from {source} is not an Ed25519 key.")
    return pem


def _key_file_create(path, pem: bytes) -> None:
    """Write a new key file readable by its owner only, complete or not at all.

    Written to a temporary name and linked into place, so a process starting at the same moment
    (the web process and a worker on an empty var/) either makes the file or reads the other's,
    never a half-written one; the first link wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        # Another process may have made the key first: then that one is the key, and this one goes.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def retired_public_keys(value: str | None) -> dict[str, bytes]:
    """Return ``{key_id: public PEM}`` of Ed25519 keys that no longer sign but still verify.

    ``LETHE_REPORT_RETIRED_PUBLIC_KEYS`` is a JSON object ``{"<key id>": "<public key PEM>"}``.
    """
    from django.core.exceptions import ImproperlyConfigured

    if not value or not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(f"LETHE_REPORT_RETIRED_PUBLIC_KEYS is not JSON ({error.msg})") from None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise ImproperlyConfigured(
            'LETHE_REPORT_RETIRED_PUBLIC_KEYS must be {"<key id>": "<public key PEM>"}'
        )
    return {key_id.strip(): pem.encode("ascii") for key_id, pem in parsed.items()}
