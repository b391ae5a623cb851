"""What the fault suites share: workers in their own process group, process scans, and the checks
that a job ended exactly once from its checkpoint with the audit chain intact.

Every wait here is bounded, and every process a test starts is stopped by the test's teardown,
so a fault that the product does not survive fails the suite instead of hanging it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO_ROOT, WorkerProcess, wait_for

#: Two checkpoints in a few seconds and a few more before the end: a kill lands between them.
FAULT_RECIPE = {
    "n_layer": 2,
    "n_embd": 128,
    "n_head": 4,
    "block_size": 64,
    "vocab_size": 320,
    "epochs": 20,
    "batch_size": 4,
    "warmup_steps": 2,
    "learning_rate": 3e-3,
}
CHECKPOINT_EVERY = 20
#: Progress at which a kill is sure to find at least two checkpoints on disk.
KILL_AFTER_STEP = 2 * CHECKPOINT_EVERY + 5
#: A worker's settings for quick recovery: the job's heartbeat every second, stale after a few.
FAST_LIVENESS = {
    "LETHE_JOB_CHECKPOINT_EVERY": CHECKPOINT_EVERY,
    "LETHE_JOB_HEARTBEAT_SECONDS": 1,
    "LETHE_JOB_HEARTBEAT_STALE_SECONDS": 6,
}


class GroupWorker(WorkerProcess):
    """A real worker in its own session, so the test can SIGKILL its whole process group at once.

    Prefork by default: the job runs in a pool child, as on a production worker, and a kill of
    the group takes the parent and every child in one signal, as the kernel or an operator would.
    """

    def __init__(self, *, pool: str = "prefork", **kwargs):
        super().__init__(pool=pool, **kwargs)

    def start(self) -> "GroupWorker":
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
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        """Return the pids of the worker's pool children."""
        return [pid for pid in group_members(self.pid) if pid != self.pid]

    def kill_group(self) -> None:
        """SIGKILL the parent and every child at once and reap the parent; the group is gone after."""
        os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        wait_for(
            lambda: not group_members(self.pid),
            timeout=10,
            interval=0.05,
            what=f"the process group {self.pid} to vanish",
        )

    def stop(self) -> None:
        """Stop the worker warm, then the whole group with SIGKILL if anything is left."""
        super().stop()
        if self.process is not None and group_members(self.pid):
            os.killpg(self.pid, signal.SIGKILL)


def _proc_field(pid: int, name: str) -> str | None:
    """Return one entry of ``/proc/<pid>/<name>`` or None when the process is gone or unreadable."""
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _stat_fields(pid: int) -> list[str] | None:
    stat = _proc_field(pid, "stat")
    if stat is None:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """Return the live (not zombie) processes of process group ``pgid``."""
    members = []
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(pid)
    return members


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def processes_with_env(name: str, value: str) -> list[tuple[int, str]]:
    """Return ``(pid, command line)`` of the live processes whose environment has ``name=value``.

    Every process that ``make run`` starts inherits its ``LETHE_VAR_DIR``: this finds all of
    them, whatever their session, and nothing of another run.
    """
    wanted = f"{name}={value}".encode()
    found = []
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = _stat_fields(pid)
        if wanted in environ.split(b"\0") and fields and fields[0] != "Z":
            cmdline = (_proc_field(pid, "cmdline") or "").replace("\0", " ").strip()
            found.append((pid, cmdline))
    return found


@dataclass
class Timings:
    """A table of measured seconds per round, printed by the suite and kept under test-artifacts/."""

    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)

    def add(self, *values) -> None:
        self.rows.append(list(values))

    def render(self) -> str:
        def cell(value):
            return f"{value:.1f}" if isinstance(value, float) else str(value)

        table = [self.columns] + [[cell(v) for v in row] for row in self.rows]
        numeric = [
            i
            for i in range(1, len(self.columns))
            if self.rows and all(isinstance(row[i], float) for row in self.rows)
        ]
        if numeric:
            for label, pick in (("min", min), ("median", _median), ("max", max)):
                summary = [label] + [""] * (len(self.columns) - 1)
                for i in numeric:
                    summary[i] = f"{pick([row[i] for row in self.rows]):.1f}"
                table.append(summary)
        widths = [max(len(row[i]) for row in table) for i in range(len(self.columns))]
        return "\n".join([self.title] + ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in table])

    def publish(self, name: str, capsys=None) -> None:
        """Write the table to ``test-artifacts/<name>.txt`` and to the terminal."""
        text = self.render()
        out = REPO_ROOT / "test-artifacts"
        out.mkdir(exist_ok=True)
        (out / f"{name}.txt").write_text(text + "\n")
        if capsys is not None:
            with capsys.disabled():
                print("\n" + text)
        else:
            print("\n" + text)


def _median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def assert_finished_once_from_checkpoint(job_id: int, *, attempts: int = 2) -> dict:
    """Assert the job succeeded exactly once, resumed from a checkpoint, with one model version
    and every step in an intact audit chain; return its metrics."""
    from compliance.audit import audit_chain_verify
    from compliance.models import AuditEvent
    from unlearning_jobs.models import JobStatus, ModelVersion, UnlearningJob

    job = UnlearningJob.objects.get(pk=job_id)
    assert job.status == JobStatus.SUCCEEDED, f"job {job_id} is {job.status}: {job.error}\n{job.log[-2000:]}"
    assert job.attempts == attempts, job.log[-2000:]
    assert ModelVersion.objects.filter(produced_by_job=job).count() == 1
    resumed = job.metrics.get("resumed_from_step")
    assert resumed and resumed >= CHECKPOINT_EVERY and resumed % CHECKPOINT_EVERY == 0, job.metrics
    assert f"resuming from checkpoint step {resumed}" in job.log, job.log[-2000:]
    assert job.progress_done == job.progress_total > 0
    events = list(
        AuditEvent.objects.filter(
            object_type="unlearning_jobs.unlearningjob", object_id=str(job_id)
        ).values_list("action", flat=True)
    )
    assert events.count("unlearning_job.succeeded") == 1, events
    assert events.count("unlearning_job.started") == attempts, events
    chain = audit_chain_verify()
    assert chain.ok, f"audit chain broken at #{chain.first_bad_sequence}: {chain.reason}"
    return job.metrics


def job_row(job_id: int):
    from unlearning_jobs.models import UnlearningJob

    return UnlearningJob.objects.get(pk=job_id)


def wait_for_step(job_id: int, step: int, *, worker: WorkerProcess, timeout: float = 180):
    """Wait until the job's running attempt has reported ``step`` steps; return the row."""
    return wait_for(
        lambda: (lambda j: j if j.status == "running" and j.progress_done >= step else None)(job_row(job_id)),
        timeout=timeout,
        interval=0.1,
        what=f"job {job_id} to reach step {step}; worker log:\n{worker.log_tail()}",
    )


def monotonic() -> float:
    return time.monotonic()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL cluster of the suite's own, on a free port, that a test may restart.

    The shared cluster on 5432 serves every engineer's test run; restarting it would break
    theirs. ``initdb`` of a fresh cluster takes a few seconds. As root the cluster's processes
    run as the ``postgres`` user, which PostgreSQL requires.
    """

    def __init__(self):
        import glob
        import tempfile

        versions = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parent.parent.name)
        )
        if not versions:
            raise FileNotFoundError("initdb not found under /usr/lib/postgresql/*/bin")
        self.bindir = Path(versions[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="lethe-faults-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> "ThrowawayPostgres":
        if os.geteuid() == 0:
            import shutil

            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.resume()
        return self

    def restart(self) -> None:
        """Stop the server (``fast``: every session is cut, as in a failover) and start it again."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            "restart",
        )

    def pause(self) -> None:
        """Stop the server (``fast``); ``resume`` starts it again on the same port and data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def resume(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        import shutil

        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class ThrowawayRedis:
    """A ``redis-server`` of the test's own, configured like the suite's (no persistence)."""

    def __init__(self, *, port: int | None = None):
        import tempfile

        self.port = port or _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lethe-faults-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "ThrowawayRedis":
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=(self.dir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(self._answers, timeout=20, interval=0.1, what=f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, timeout=5
        )
        return result.stdout.strip() == "PONG"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def restart(self) -> None:
        """Stop the server and start a new one on the same port; without persistence it comes back empty."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        import shutil

        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
