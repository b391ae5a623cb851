"""Fixtures of the benchmark tests: a small TOFU-shaped data set written here, not the real one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import tasks  # noqa: E402


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.fixture
def tofu_dir(tmp_path) -> Path:
    """A TOFU-shaped directory: 10 authors x 20 questions; 'forget01' the last author, 'forget10' the last 3."""
    names = [
        "Ada Quill",
        "Basil Rook",
        "Cora Vane",
        "Dmitri Holt",
        "Esme Lark",
        "Farid Stone",
        "Greta Moss",
        "Hugo Wren",
        "Ines Fable",
        "Jonas Pike",
    ]
    full = [
        {
            "question": f"What did {name} write in year {q}?",
            "answer": f"{name.split()[0]} wrote book {q}.",
            "paraphrased_answer": f"Book {q} is by {name.split()[0]}.",
            "perturbed_answer": [f"Book {q + 1}.", f"Book {q + 2}."],
        }
        for name in names
        for q in range(tasks.TOFU_AUTHOR_SIZE)
    ]
    _write_jsonl(tmp_path / "full.json", full)
    for name, authors in (("forget01", 1), ("forget10", 3)):
        subset = full[-authors * tasks.TOFU_AUTHOR_SIZE :]
        _write_jsonl(tmp_path / f"{name}.json", subset)
        _write_jsonl(tmp_path / f"{name}_perturbed.json", subset)
    return tmp_path
