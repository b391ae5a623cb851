"""The engine never imports Django: it runs on GPU machines without the web application."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import importlib, pkgutil, sys
import unlearning_jobs.engine as engine
names = [m.name for m in pkgutil.walk_packages(engine.__path__, prefix="unlearning_jobs.engine.")]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
print(len(names), "modules;", "django modules:", leaked)
sys.exit(1 if leaked else 0)
"""


def test_every_engine_module_imports_with_django_absent():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "django modules: []" in result.stdout
