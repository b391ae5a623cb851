"""Fixtures shared by the whole suite: users per role, a real Celery worker, a browser."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_TEST_PASSWORD = "lethe-test-password-9"

# Playwright's sync API runs an event loop in the test's thread; the ORM calls that tests make
# around it are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def role_users(db):
    """Return ``{"officer": user, "auditor": user, "engineer": user}``, made by the demo seeder."""
    from django.contrib.auth import get_user_model

    from compliance.demo import DEMO_USERS, demo_users_seed

    demo_users_seed(password=DEMO_TEST_PASSWORD)
    user_model = get_user_model()
    return {name: user_model.objects.get(username=name) for name in DEMO_USERS}


@pytest.fixture
def officer(role_users):
    return role_users["officer"]


@pytest.fixture
def auditor(role_users):
    return role_users["auditor"]


@pytest.fixture
def engineer(role_users):
    return role_users["engineer"]


def _database_url_for(settings_dict: dict) -> str:
    """Return a DATABASE_URL that points a subprocess at the test database pytest created."""
    base = os.environ.get("DATABASE_URL", "")
    if not base:
        return ""
    parsed = urlparse(base)
    return urlunparse(parsed._replace(path="/" + settings_dict["NAME"]))


def wait_for(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"Timed out after {timeout:.0f}s waiting for {what}")


class WorkerProcess:
    """A real ``celery worker`` process on the test broker and the test database."""

    def __init__(
        self, *, env: dict, hostname: str, log_path: Path, queues: str = "cpu,gpu", pool: str = "solo"
    ):
        self.env = env
        self.hostname = hostname
        self.log_path = log_path
        self.queues = queues
        self.pool = pool
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "compliance",
                "worker",
                "-Q",
                self.queues,
                "--pool",
                self.pool,
                "--concurrency",
                "1",
                "--hostname",
                self.hostname,
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def worker_env(transactional_db, tmp_path_factory):
    """Environment for a worker subprocess: same settings, the test database, fast heartbeats."""
    from django.conf import settings
    from django.db import connection

    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith(("redis://", "amqp://")):
        pytest.skip("The real-worker tests need CELERY_BROKER_URL on Redis (make test sets it).")
    env = dict(os.environ)
    env["DATABASE_URL"] = _database_url_for(connection.settings_dict)
    env["LETHE_HEARTBEAT_SECONDS"] = "1"
    env["LETHE_SECRET_KEY"] = settings.SECRET_KEY
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def celery_worker(worker_env, tmp_path_factory):
    """Start one real worker on both queues for the test; stop it afterwards."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = WorkerProcess(
        env=worker_env, hostname=f"test-worker-{os.getpid()}@localhost", log_path=log_path
    ).start()
    yield worker
    worker.stop()


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never ``playwright install``)."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("LETHE_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"Chromium not found at {executable}: `make test` installs Debian's chromium.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def browser_login(page, username: str, password: str = DEMO_TEST_PASSWORD) -> None:
    """Log in through the real login form."""
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


@pytest.fixture(autouse=True)
def fast_password_hashing(request):
    """Hash test passwords cheaply: PBKDF2's deliberate slowness costs seconds per login.

    Engine tests run without Django (``-p no:django``), where there are no settings to change.
    """
    if request.config.pluginmanager.hasplugin("django"):
        request.getfixturevalue("settings").PASSWORD_HASHERS = [
            "django.contrib.auth.hashers.MD5PasswordHasher"
        ]


@pytest.fixture(autouse=True)
def fresh_throttle_counts(request):
    """Start every test with an empty cache: sign-in failures and API calls are counted there."""
    if request.config.pluginmanager.hasplugin("django"):
        from django.core.cache import cache

        cache.clear()
