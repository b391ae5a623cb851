"""Settings come from the environment; with nothing set, the embedded default works."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compliance.env import broker_config, database_config, env_flag, secret_key

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_database_url_for_postgres_is_parsed_into_django_settings(tmp_path):
    config = database_config("postgres://lethe:s3cret@db.internal:5433/lethe_prod", var_dir=tmp_path)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5433, "lethe_prod")
    assert (config["USER"], config["PASSWORD"]) == ("lethe", "s3cret")


def test_unset_database_url_means_sqlite_under_var(tmp_path):
    config = database_config(None, var_dir=tmp_path)
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "lethe.sqlite3")


def test_broker_url_is_used_as_given(tmp_path):
    url, options = broker_config("redis://127.0.0.1:6379/3", var_dir=tmp_path)
    assert (url, options) == ("redis://127.0.0.1:6379/3", {})
    assert not (tmp_path / "broker").exists()


def test_unset_broker_url_means_filesystem_transport_with_its_folders(tmp_path):
    url, options = broker_config("", var_dir=tmp_path)
    assert url == "filesystem://"
    assert Path(options["data_folder_in"]).is_dir()
    assert options["data_folder_in"] == options["data_folder_out"]
    assert Path(options["processed_folder"]).is_dir()


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = secret_key(None, var_dir=tmp_path)
    second = secret_key("", var_dir=tmp_path)
    assert first == second and len(first) >= 50
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    assert secret_key("from-env", var_dir=tmp_path) == "from-env"


@pytest.mark.parametrize(
    "value,expected",
    [(None, False), ("", False), ("1", True), ("True", True), ("no", False), ("off", False), ("yes", True)],
)
def test_debug_flag_is_off_unless_asked_for(value, expected):
    assert env_flag(value) is expected


@pytest.mark.slow
def test_embedded_default_migrates_seeds_and_answers_a_probe_with_nothing_set(tmp_path):
    """No DATABASE_URL, no broker, no key: SQLite, the file-system broker and a worker work."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "LETHE_SECRET_KEY",
            "LETHE_DATA_DIR",
            "DEBUG",
            "DJANGO_SETTINGS_MODULE",
        }
    }
    env["LETHE_VAR_DIR"] = str(tmp_path)
    env["LETHE_HEARTBEAT_SECONDS"] = "1"

    def run(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )

    migrated = run("migrate", "--noinput", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "lethe.sqlite3").exists()
    assert (tmp_path / "secret_key").exists()

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "compliance",
            "worker",
            "-Q",
            "cpu,gpu",
            "--pool",
            "solo",
            "--hostname",
            "embedded-test@localhost",
            "--loglevel",
            "WARNING",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        script = (
            "import time, django; django.setup()\n"
            "from compliance.queues import WorkQueue\n"
            "from unlearning_jobs.workers.services import queue_probe_send\n"
            "from unlearning_jobs.models import QueueProbe, WorkerHeartbeat\n"
            "probe = queue_probe_send(queue=WorkQueue.GPU)\n"
            "deadline = time.time() + 90\n"
            "while time.time() < deadline:\n"
            "    probe.refresh_from_db()\n"
            "    if probe.answered_at and WorkerHeartbeat.objects.exists(): break\n"
            "    time.sleep(0.5)\n"
            "print(probe.queue_delivered, probe.hostname, WorkerHeartbeat.objects.count())\n"
        )
        probed = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO_ROOT,
            env={**env, "DJANGO_SETTINGS_MODULE": "compliance.settings"},
            capture_output=True,
            text=True,
            timeout=150,
        )
    finally:
        worker.terminate()
        worker_output = worker.communicate(timeout=30)[0]
    assert probed.returncode == 0, probed.stderr + worker_output
    assert probed.stdout.split() == ["gpu", "embedded-test@localhost", "1"], worker_output


#: Keys production must set, each refused by a deploy check when missing.
PRODUCTION_KEYS = {
    "LETHE_GUARD_MASTER_KEY": "g7Vt-" + "Qm2xP9sL4kR8wN3bZ6cH1jD5fA0y" * 2,
    "LETHE_AUDIT_CHAIN_KEY": "a3Kw-" + "Zr8nT2vB6yL0pQ4xM9cF1hS7dJ5g" * 2,
}
REQUIRED_KEY_CHECKS = {"LETHE_GUARD_MASTER_KEY": "lethe.E001", "LETHE_AUDIT_CHAIN_KEY": "lethe.E002"}


def _deploy_check(tmp_path, **extra) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LETHE_", "DATABASE_URL", "CELERY_", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"))
    }
    env.update(
        LETHE_VAR_DIR=str(tmp_path),
        ALLOWED_HOSTS="lethe.example.org",
        LETHE_SECRET_KEY="x7Qp-" + "k3V9mZ2rT8wL5nB1cF6hJ4dS0aG" * 2,
        **extra,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check_and_plain_http_does_not(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key_file = tmp_path / "report-signing.pem"
    key_file.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    production = _deploy_check(
        tmp_path / "prod",
        LETHE_HTTPS="1",
        LETHE_HSTS_PRELOAD="1",
        LETHE_REPORT_SIGNING_PRIVATE_KEY_FILE=str(key_file),
        **PRODUCTION_KEYS,
    )
    assert production.returncode == 0, production.stdout + production.stderr
    assert "no issues" in production.stdout
    generated_key = _deploy_check(
        tmp_path / "generated", LETHE_HTTPS="1", LETHE_HSTS_PRELOAD="1", **PRODUCTION_KEYS
    )
    assert generated_key.returncode != 0 and "lethe.W001" in generated_key.stderr + generated_key.stdout
    # Each key Lethe would otherwise generate into var/ is required by its own check.
    for name, check_id in REQUIRED_KEY_CHECKS.items():
        missing = _deploy_check(
            tmp_path / f"no-{name}",
            LETHE_HTTPS="1",
            LETHE_HSTS_PRELOAD="1",
            LETHE_REPORT_SIGNING_PRIVATE_KEY_FILE=str(key_file),
            **{k: v for k, v in PRODUCTION_KEYS.items() if k != name},
        )
        assert missing.returncode != 0 and check_id in missing.stderr + missing.stdout, name

    plain = _deploy_check(tmp_path / "plain")
    assert plain.returncode != 0
    assert "SESSION_COOKIE_SECURE" in plain.stderr + plain.stdout


def test_session_and_csrf_cookies_are_same_site_strict_and_sessions_short(client, settings):
    response = client.get("/login/")
    assert response.cookies["csrftoken"]["samesite"] == "Strict"
    assert settings.SESSION_COOKIE_SAMESITE == "Strict" and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_COOKIE_AGE <= 8 * 60 * 60
    # The test run swaps in a fast hasher; the project's own list starts with Argon2.
    from compliance import settings as project_settings

    assert project_settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


def test_processes_starting_together_on_an_empty_var_make_one_report_signing_key(tmp_path):
    """The web process and a worker start on an empty var/ at once: one key, never a half-written one."""
    from concurrent.futures import ProcessPoolExecutor

    from compliance.reports.keys import ED25519_KEY_FILE_NAME

    with ProcessPoolExecutor(max_workers=6) as pool:
        pems = set(pool.map(_make_signing_key, [str(tmp_path)] * 12))
    assert len(pems) == 1
    assert os.listdir(tmp_path) == [ED25519_KEY_FILE_NAME]
    assert (tmp_path / ED25519_KEY_FILE_NAME).stat().st_mode & 0o777 == 0o600


def _make_signing_key(var_dir: str) -> bytes:
    from compliance.reports.keys import report_signing_private_key_pem

    return report_signing_private_key_pem(None, key_file=None, var_dir=var_dir)
