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
