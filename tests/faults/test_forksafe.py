"""``unlearning_jobs.workers.forksafe``: a fork never cuts a thread's import in half.

The demo's training hung 2 starts in 3 because the prefork pool forked its child while the
worker's heartbeat thread was importing torch: the child inherited a held module import lock and
waited on it forever. Each scenario runs in a fresh interpreter (``fork_probe``) with bounded
waits, so the control, whose child does hang, never hangs the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.faults.fork_probe import CHILD_TIMEOUT

pytestmark = [pytest.mark.faults]


def _probe(mode: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.faults.fork_probe", mode],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_fork_waits_for_an_import_inside_the_section_and_the_child_imports_the_module():
    """Inside ``fork_exclusive()`` the fork waits until the import is done; the child then finds
    the module complete and exits at once."""
    outcome = _probe("exclusive")
    # Forked 0.3 s into the import: the fork returned only after the module's body ended, and the
    # child exited within the probe's bounded wait (CHILD_TIMEOUT after the import ended).
    assert outcome["import_done_before_fork"], outcome
    assert outcome["child"] == "exited" and outcome["exit_code"] == 0, outcome


def test_control_a_child_forked_mid_import_outside_the_section_hangs_on_the_import_lock():
    """The control: the same import outside the section lets the fork through at once, and the
    child blocks on the module's import lock for good (it is killed after a bounded wait).
    Without this the test above could pass for a reason that has nothing to do with the section."""
    outcome = _probe("plain")
    assert not outcome["import_done_before_fork"], outcome
    assert outcome["child"] == "hung", (
        f"a child forked mid-import exited ({outcome}); the control no longer shows the hazard, "
        f"so the test above proves nothing (waited {CHILD_TIMEOUT} s after the import ended)"
    )
