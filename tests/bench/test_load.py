"""bench/load.py's own rules: which databases it refuses, how it reads percentiles."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import load  # noqa: E402


@pytest.mark.parametrize("name", ["lethe", "lethe_test", "test_lethe_test", "postgres", ""])
def test_the_benchmark_refuses_the_dev_and_test_databases(name, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/untouched")
    args = argparse.Namespace(
        database_url=f"postgres://postgres@127.0.0.1:5432/{name}",
        broker_url=load.DEFAULT_BROKER_URL,
        var_dir=Path("var/load"),
    )
    with pytest.raises(SystemExit, match="refuses database"):
        load.configure_environment(args)
    assert load.os.environ["DATABASE_URL"].endswith("/untouched")


def test_percentiles_are_nearest_rank():
    values = [n / 1000 for n in range(1, 101)]  # 1 ms to 100 ms, shuffled order must not matter
    values.reverse()
    assert load.percentile(values, 0.50) == pytest.approx(0.050)
    assert load.percentile(values, 0.95) == pytest.approx(0.095)
    assert load.percentile([0.2], 0.95) == 0.2
    # 20 samples: the 95th percentile is the 19th, not the largest.
    assert load.percentile([n / 1000 for n in range(1, 21)], 0.95) == pytest.approx(0.019)
