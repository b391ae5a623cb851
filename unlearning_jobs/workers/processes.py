"""Name a process beyond its pid, and prove on its host that it no longer exists.

``ProcessIdentity`` is host, pid and the kernel's start time of the process, so a recycled pid is
not mistaken for the original; ``process_is_gone`` answers only for this host. Jobs record the
process that executes them (``jobs.liveness``); the Kill button (``workers.control``) checks it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def _process_start_token(pid: int) -> str:
    """Return ``<boot id>:<start time in clock ticks>`` of a process, or "" where /proc is absent.

    Together with the host and the pid it names one process for the machine's whole uptime: a
    pid reused by a later process has another start time, and a reboot another boot id.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = _BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may hold spaces: split after its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    return f"{boot}:{fields[19]}"  # field 22 of stat, the 20th after the command name


@dataclass(frozen=True)
class ProcessIdentity:
    """One process on one host: what a job records about the process that executes it."""

    host: str
    pid: int
    started: str

    @classmethod
    def current(cls) -> "ProcessIdentity":
        """Return the identity of the calling process."""
        return cls.of(os.getpid())

    @classmethod
    def of(cls, pid: int) -> "ProcessIdentity":
        """Return the identity of process ``pid`` of this host."""
        return cls(host=socket.gethostname(), pid=pid, started=_process_start_token(pid))


def process_is_gone(*, host: str, pid: int | None, started: str) -> bool:
    """Return True only when it is certain that the recorded process no longer runs.

    Certainty needs the same host (a pid means nothing elsewhere) and either no process with
    that pid or one that started at another time (the pid was reused). Anything else, including
    a process of another host, is "not known to be gone": the job's heartbeat decides then.
    """
    if not pid or not host or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        pass
    return bool(started) and _process_start_token(pid) not in ("", started)
