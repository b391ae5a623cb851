"""``make run`` from an empty ``var/``, again and again: the demo trains, and Ctrl-C stops it all.

The issue this guards: 2 fresh starts in 3 hung at the demo's first training step, because the
gpu worker's pool child was forked while another thread held an import lock. A single start
that happens to pass proves nothing, so the stack is started ``LETHE_FAULTS_STARTS`` times (10
by default) exactly as ``make run`` starts it (``scripts/run_embedded.sh``: SQLite and the
file-system broker in a fresh var dir, a cpu worker with the beat, a gpu worker, the web
process), and each start must show the demo training job's progress within 60 s of the gpu
worker starting. Then SIGINT, what a terminal's Ctrl-C sends, must stop every process the
script started within 20 s.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.faults.support import Timings, processes_with_env

pytestmark = [pytest.mark.faults, pytest.mark.slow]

STARTS = int(os.environ.get("LETHE_FAULTS_STARTS", "10"))
#: From the script's start to the gpu worker's start: migrate, seed and index the demo data.
SEED_TIMEOUT = 240.0
PROGRESS_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
DEMO_JOB_ID = 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_env(var_dir: Path, listen: str) -> dict:
    """The environment of a newcomer's ``make run``: no Lethe settings, no PostgreSQL, no Redis."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LETHE_", "DATABASE_URL", "CELERY_", "DJANGO_"))
    }
    env.update({"LETHE_VAR_DIR": str(var_dir), "LETHE_LISTEN": listen, "PYTHONUNBUFFERED": "1"})
    return env


def _demo_job(database: Path) -> dict | None:
    """Return the demo training job's progress, attempts and log, read from the stack's SQLite file."""
    if not database.exists():
        return None
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            row = connection.execute(
                "SELECT progress_done, attempts, log FROM unlearning_jobs_unlearningjob WHERE id = ?",
                (DEMO_JOB_ID,),
            ).fetchone()
    except sqlite3.OperationalError:  # not migrated yet, or a writer holds the lock: read again
        return None
    return {"progress": row[0], "attempts": row[1], "log": row[2]} if row else None


def _demo_progress(database: Path) -> int | None:
    job = _demo_job(database)
    return job["progress"] if job else None


def _has_progress(job: dict | None) -> bool:
    return bool(job and job["progress"])


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _kill_everything_of(var_dir: Path) -> None:
    """SIGKILL every process of this start that is still there (teardown after a failure)."""
    for pid, _command in processes_with_env("LETHE_VAR_DIR", str(var_dir)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def _start_once(var_dir: Path, *, ready=_has_progress, what: str = "progress") -> dict:
    """Start the stack, wait until ``ready(demo job)``, stop it with SIGINT; return the timings.

    A fresh start gets an empty ``var_dir``; an existing one is started again as it was left.
    """
    listen = f"127.0.0.1:{_free_port()}"
    log_path = var_dir.parent / f"{var_dir.name}-{time.monotonic_ns()}.out"
    var_dir.mkdir(parents=True, exist_ok=True)
    gpu_pgid_file = var_dir / "run" / "worker-gpu.pgid"
    database = var_dir / "lethe.sqlite3"
    # `env --default-signal=INT`: a background job of a non-interactive shell starts with SIGINT
    # ignored, and bash cannot trap a signal ignored at entry; a terminal's Ctrl-C has no such issue.
    with log_path.open("wb") as log:
        script = subprocess.Popen(
            ["env", "--default-signal=INT", "scripts/run_embedded.sh"],
            cwd=REPO_ROOT,
            env=_run_env(var_dir, listen),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    started = time.monotonic()
    try:
        gpu_started = None
        while gpu_started is None:
            if gpu_pgid_file.exists():
                gpu_started = time.monotonic()
            elif script.poll() is not None:
                pytest.fail(f"run_embedded.sh exited with {script.returncode}:\n{_tail(log_path)}")
            elif time.monotonic() - started > SEED_TIMEOUT:
                pytest.fail(f"the gpu worker did not start within {SEED_TIMEOUT:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.1)
        progressed = None
        while progressed is None:
            job = _demo_job(database)
            if ready(job):
                progressed = time.monotonic()
            elif time.monotonic() - gpu_started > PROGRESS_TIMEOUT:
                pytest.fail(
                    f"the demo training job showed no {what} within {PROGRESS_TIMEOUT:.0f} s of "
                    f"the gpu worker starting ({job and {k: job[k] for k in ('progress', 'attempts')}}); "
                    f"gpu worker log:\n{_tail(var_dir / 'log' / 'worker-gpu.log')}"
                )
            else:
                time.sleep(0.2)
        assert processes_with_env("LETHE_VAR_DIR", str(var_dir)), (
            "the stack's processes are found by their var dir"
        )
        os.kill(script.pid, signal.SIGINT)
        stop_sent = time.monotonic()
        left = processes_with_env("LETHE_VAR_DIR", str(var_dir))
        while left and time.monotonic() - stop_sent < STOP_TIMEOUT:
            time.sleep(0.1)
            left = processes_with_env("LETHE_VAR_DIR", str(var_dir))
        stopped = time.monotonic()
        assert not left, (
            f"{len(left)} process(es) of the stack still running {STOP_TIMEOUT:.0f} s after "
            f"SIGINT:\n" + "\n".join(f"{pid} {cmd}" for pid, cmd in left) + f"\n{_tail(log_path)}"
        )
        # The script's INT trap ends it with 130 after its clean-up, like any shell stopped by Ctrl-C.
        assert script.wait(timeout=5) == 130, _tail(log_path)
        return {
            "seed": gpu_started - started,
            "progress": progressed - gpu_started,
            "stop": stopped - stop_sent,
            "steps": _demo_progress(database),
        }
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait(timeout=10)
        _kill_everything_of(var_dir)


def test_make_run_trains_the_demo_at_every_fresh_start_and_ctrl_c_stops_everything(tmp_path, capsys):
    table = Timings(
        title=f"make run from an empty var/, {STARTS} starts (seconds)",
        columns=[
            "start",
            "to gpu worker",
            "gpu worker to first progress",
            "SIGINT to all gone",
            "steps when stopped",
        ],
    )
    for number in range(1, STARTS + 1):
        timing = _start_once(tmp_path / f"var-{number}")
        table.add(number, timing["seed"], timing["progress"], timing["stop"], timing["steps"])
    table.publish("faults-embedded-starts", capsys)


def test_a_job_stopped_by_ctrl_c_is_picked_up_again_by_the_next_make_run(tmp_path):
    """Ctrl-C stops the demo's training mid-way; the next ``make run`` on the same var dir runs it
    again in a new attempt, from its checkpoint (every 50 steps by default): nothing is lost."""
    var_dir = tmp_path / "var"
    first = _start_once(var_dir, ready=lambda job: bool(job and job["progress"] >= 60), what="60 steps")
    assert first["steps"] >= 60
    _start_once(
        var_dir,
        ready=lambda job: bool(
            job and job["attempts"] >= 2 and "resuming from checkpoint step" in job["log"]
        ),
        what="a second attempt resuming",
    )
    job = _demo_job(var_dir / "lethe.sqlite3")
    assert job["attempts"] == 2 and job["progress"] > 0, job["log"][-2000:]
