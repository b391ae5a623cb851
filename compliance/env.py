"""Turn Lethe's environment variables into Django and Celery settings.

Kept apart from settings.py so the parsing can be tested without reloading settings, and so the
embedded default (nothing set: SQLite, a file-system broker, a generated key) is one readable
function per concern.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

TRUE_WORDS = {"1", "true", "yes", "on"}


def env_flag(value: str | None, *, default: bool = False) -> bool:
    """Return True for the usual spellings of yes; ``default`` when the variable is unset."""
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in TRUE_WORDS


def database_config(url: str | None, *, var_dir: Path) -> dict:
    """Return the ``DATABASES['default']`` dict for ``url``, or a SQLite file under ``var_dir``."""
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(var_dir / "lethe.sqlite3"),
            # A web process and a worker share the file: wait for the lock instead of failing.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    config = dj_database_url.parse(url, conn_max_age=60)
    if config["ENGINE"] == "django.db.backends.postgresql":
        config.setdefault("TEST", {})
    return config


def broker_config(url: str | None, *, var_dir: Path) -> tuple[str, dict]:
    """Return ``(broker_url, broker_transport_options)``.

    Unset means Kombu's file-system transport under ``var_dir/broker``, so the embedded default
    needs no broker process. The folders are created here because the transport does not.
    """
    if url:
        return url, {}
    broker_dir = var_dir / "broker"
    queue_dir = broker_dir / "queue"
    processed_dir = broker_dir / "processed"
    control_dir = broker_dir / "control"
    for folder in (queue_dir, processed_dir, control_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return "filesystem://", {
        "data_folder_in": str(queue_dir),
        "data_folder_out": str(queue_dir),
        "processed_folder": str(processed_dir),
        "store_processed": False,
        # Broadcast exchanges (remote control) would otherwise land in the working directory.
        "control_folder": str(control_dir),
    }


def secret_key(value: str | None, *, var_dir: Path) -> str:
    """Return ``value``, or a key generated once into ``var_dir/secret_key`` (never committed)."""
    if value:
        return value
    key_file = var_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def identifier_keys(value: str | None, *, var_dir: Path) -> list[str]:
    """Return the Fernet keys for data subjects' identifiers, the encrypting key first.

    ``value`` is a comma-separated list (``LETHE_IDENTIFIER_KEYS``): the first key encrypts, all
    of them decrypt, so a new key is put in front and the old ones stay behind it until
    ``rotate_identifier_keys`` has re-encrypted every row (docs/workflow.md). Unset means one
    key generated once into ``var_dir/identifier_keys`` (mode 600, never committed), like the
    secret key, so the embedded default needs no configuration.
    """
    from cryptography.fernet import Fernet
    from django.core.exceptions import ImproperlyConfigured

    if value and value.strip():
        keys = [key.strip() for key in value.split(",") if key.strip()]
    else:
        key_file = var_dir / "identifier_keys"
        if not key_file.exists():
            var_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(Fernet.generate_key().decode("ascii") + "\n")
            key_file.chmod(0o600)
        keys = [line.strip() for line in key_file.read_text().splitlines() if line.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"LETHE_IDENTIFIER_KEYS: key {position} is not a Fernet key (32 url-safe "
                "base64-encoded bytes; make one with cryptography.fernet.Fernet.generate_key())"
            ) from None
    if not keys:
        raise ImproperlyConfigured("LETHE_IDENTIFIER_KEYS holds no key")
    return keys


# Derivation label: changing it changes every keyed hash, so it is versioned, never edited.
PII_HASH_KEY_DERIVATION_LABEL = b"lethe.pii-hash-key.v1"


def pii_hash_key(value: str | None, *, secret_key: str) -> bytes:
    """Return the HMAC key for personal-data hashes (the PII index and requests' identifiers).

    ``LETHE_PII_HASH_KEY`` when set (at least 16 bytes); otherwise a key derived from the secret
    key, so that the secret key itself never leaves Django and one deployment's hashes agree
    across its web processes and workers.
    """
    import hashlib
    import hmac

    from django.core.exceptions import ImproperlyConfigured

    if value:
        key = value.encode("utf-8")
        if len(key) < 16:
            raise ImproperlyConfigured("LETHE_PII_HASH_KEY must be at least 16 bytes long")
        return key
    return hmac.new(secret_key.encode("utf-8"), PII_HASH_KEY_DERIVATION_LABEL, hashlib.sha256).digest()


def pii_hash_key_id(value: str | None, *, key: bytes) -> str:
    """Return the name stored beside every keyed hash: ``value``, or a fingerprint of ``key``.

    Hashes made under different keys never compare equal, so each is stored with the key's id;
    a fingerprint changes by itself when the key does.
    """
    import hashlib

    if value and value.strip():
        return value.strip()
    return "hmac-sha256:" + hashlib.sha256(b"lethe.key-id:" + key).hexdigest()[:12]


def account_id_prefixes(value: str) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
    """Parse ``"ACC=ACCT,ACCOUNT;CUST=CUSTOMER"`` into prefix synonyms; empty means the defaults.

    Raises ``ImproperlyConfigured`` naming the bad part, so a typo stops the process at start.
    """
    from django.core.exceptions import ImproperlyConfigured

    if not value.strip():
        return None
    groups = []
    for part in value.split(";"):
        if not part.strip():
            continue
        canonical, sep, spellings = part.partition("=")
        canonical = canonical.strip().upper()
        words = tuple(word.strip().upper() for word in spellings.split(",") if word.strip())
        if not sep or not canonical.isalpha() or not all(word.replace("/", "").isalpha() for word in words):
            raise ImproperlyConfigured(
                f"LETHE_ACCOUNT_ID_PREFIXES: {part.strip()!r} is not CANONICAL=SPELLING,SPELLING (letters only)"
            )
        groups.append((canonical, words))
    return tuple(groups)


def _key_file_create(path: Path, content: bytes) -> None:
    """Write a new key file readable by its owner only, complete or not at all.

    Written to a temporary name and linked into place, so processes starting together on an
    empty var/ (the web process and a worker) share one key: the first link wins.
    """
    import contextlib
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


#: A master key shorter than this is refused: it derives keys that protect low-entropy values.
MIN_MASTER_KEY_BYTES = 32


def master_key(value: str | None, *, name: str, var_dir: Path) -> bytes:
    """Return the key named ``name`` (``LETHE_GUARD_MASTER_KEY``, ``LETHE_AUDIT_CHAIN_KEY``).

    ``value`` when set (at least 32 bytes of text, e.g. ``secrets.token_urlsafe(48)``); unset,
    a key generated once into ``var_dir/<name in lower case>`` (mode 600, never committed), so
    the embedded default needs no configuration. Production sets it: ``check --deploy`` fails
    without it (``compliance/checks.py``).
    """
    from django.core.exceptions import ImproperlyConfigured

    if value and value.strip():
        key = value.strip().encode("utf-8")
        if len(key) < MIN_MASTER_KEY_BYTES:
            raise ImproperlyConfigured(f"{name} must be at least {MIN_MASTER_KEY_BYTES} bytes long")
        return key
    key_file = var_dir / name.lower()
    if not key_file.exists():
        _key_file_create(key_file, secrets.token_urlsafe(48).encode("ascii"))
    return key_file.read_bytes().strip()


def retired_master_keys(value: str | None, *, name: str) -> list[bytes]:
    """Return the keys of a comma-separated list that no longer derive new keys but still verify."""
    from django.core.exceptions import ImproperlyConfigured

    keys = [part.strip().encode("utf-8") for part in (value or "").split(",") if part.strip()]
    for position, key in enumerate(keys, start=1):
        if len(key) < MIN_MASTER_KEY_BYTES:
            raise ImproperlyConfigured(f"{name}: key {position} is shorter than {MIN_MASTER_KEY_BYTES} bytes")
    return keys
