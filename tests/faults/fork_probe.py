"""Fork a child while another thread imports a slow module; report what the child could do.

Run as ``python -m tests.faults.fork_probe exclusive|plain``, in a fresh interpreter so that a
child that hangs, and the slow module, stay out of the test's process. Prints one JSON object:

- ``fork_seconds``: how long ``os.fork()`` took in the parent (the section delays it), and
  ``import_done_before_fork``: whether the module's body had finished when the fork returned;
- ``child``: ``"exited"`` with its exit code, or ``"hung"`` when it had not exited
  ``CHILD_TIMEOUT`` seconds after the parent's import ended (then it is SIGKILLed and reaped);
- ``child_seconds``: how long the child took to import the module and exit.

``exclusive`` imports inside ``forksafe.fork_exclusive()``, as Lethe's background threads do;
``plain`` is the control: the same import outside the section, which is how the demo's training
job hung (the child inherits the module's import lock, held by a thread it does not have).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

SLOW_SECONDS = 3.0
CHILD_TIMEOUT = 5.0


def main(mode: str) -> dict:
    from unlearning_jobs.workers.forksafe import fork_exclusive

    folder = tempfile.mkdtemp(prefix="lethe-fork-probe-")
    name = f"lethe_slow_module_{os.getpid()}"
    Path(folder, f"{name}.py").write_text(
        f"import time\ntime.sleep({SLOW_SECONDS})\nVALUE = 42\nDONE_AT = time.monotonic()\n"
    )
    sys.path.insert(0, folder)
    try:
        return _fork_mid_import(mode, name, fork_exclusive)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fork_mid_import(mode: str, name: str, fork_exclusive) -> dict:
    importing = threading.Event()

    def importer() -> None:
        if mode == "exclusive":
            with fork_exclusive():
                importing.set()
                importlib.import_module(name)
        else:
            importing.set()
            importlib.import_module(name)

    thread = threading.Thread(target=importer, daemon=True)
    thread.start()
    if not importing.wait(10):
        raise SystemExit("the importing thread never started")
    time.sleep(0.3)  # well inside the module's body, holding its import lock
    before = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: import the same module, then leave at once
        module = importlib.import_module(name)
        os._exit(0 if module.VALUE == 42 else 3)
    forked = time.monotonic()
    thread.join(timeout=30)
    facts = {
        "mode": mode,
        "fork_seconds": forked - before,
        "import_done_before_fork": sys.modules[name].DONE_AT <= forked,
    }
    deadline = time.monotonic() + CHILD_TIMEOUT  # the import has ended: the child needs no longer
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return {**facts, "child": "hung", "child_seconds": None}
    return {
        **facts,
        "child": "exited",
        "exit_code": os.waitstatus_to_exitcode(status),
        "child_seconds": time.monotonic() - before,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
