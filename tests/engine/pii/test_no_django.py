"""The PII engine must run without Django: the workers and tests on GPU machines rely on it."""

from __future__ import annotations

import subprocess
import sys


def test_engine_pii_imports_no_django():
    code = (
        "import sys\n"
        "import unlearning_jobs.engine.pii.scan, unlearning_jobs.engine.pii.readers\n"
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
