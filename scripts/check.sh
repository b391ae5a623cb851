#!/usr/bin/env bash
# The code checks `make test` runs before the suite: formatting and lint (ruff), and the layers
# of docs/architecture.md (import-linter; contracts in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap_venv.sh
echo "[check] ruff format"
.venv/bin/ruff format --check --quiet .
echo "[check] ruff lint"
.venv/bin/ruff check --quiet .
echo "[check] import layers"
PYTHONPATH=. .venv/bin/lint-imports --no-cache | tail -n 8
