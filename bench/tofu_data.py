"""TOFU's JSON-lines files (``../shared/data/tofu``), read one way for every bench.

TOFU (Maini et al. 2024, MIT) ships each split as one JSON object a line: ``question`` and
``answer``, and in the perturbed splits ``paraphrased_answer`` and ``perturbed_answer``.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_tofu(path: Path) -> list[dict]:
    """Return the items of one TOFU file (``full.json``, ``forget10.json`` …), in file order."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
