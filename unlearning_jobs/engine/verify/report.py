"""Hold verification results as rows of value, threshold and pass/fail, serialisable to JSON.

A row is what a report shows: the metric, its measured value at full precision, the threshold
and comparator, whether it passed, on how many samples, and details (sub-counts, masked
examples). ``passed`` is computed once, from the unrounded value, by ``thresholds.evaluate``;
nothing downstream recomputes it from a formatted number. ``format_value`` prints a value with
enough digits that it never looks equal to its limit unless it is.

``VerificationResult.measurements`` keeps the raw measurements (per-record membership scores,
AUCs, perplexities, truth ratios) so that one model's result can serve as the reference (exact
retrain) or the original in a later verification, after a round trip through JSON.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .thresholds import Threshold, evaluate

__all__ = ["ResultRow", "VerificationResult", "make_row", "format_value", "json_safe", "rows_table"]


def json_safe(data):
    """Return ``data`` with NaN/inf as None, tuples as lists and numpy scalars as Python numbers.

    Strict JSON (and PostgreSQL's jsonb) has no NaN; None reads as "not measured", which is also
    how ``evaluate`` treats it.
    """
    if isinstance(data, Mapping):
        return {str(key): json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    if isinstance(data, np.ndarray):
        return [json_safe(value) for value in data.tolist()]
    if isinstance(data, (bool, np.bool_)):
        return bool(data)
    if isinstance(data, numbers.Integral):
        return int(data)
    if isinstance(data, numbers.Real):
        number = float(data)
        return number if math.isfinite(number) else None
    return data


@dataclass(frozen=True)
class ResultRow:
    """One metric's outcome; ``value`` None means it could not be measured (and fails)."""

    metric: str
    value: float | None
    threshold: float
    comparator: str
    passed: bool
    n_samples: int
    center: float = 0.0
    condition: str = ""
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return json_safe(
            {
                "metric": self.metric,
                "value": self.value,
                "threshold": self.threshold,
                "comparator": self.comparator,
                "center": self.center,
                "condition": self.condition,
                "passed": self.passed,
                "n_samples": self.n_samples,
                "details": self.details,
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping) -> ResultRow:
        """Rebuild a row from ``as_dict`` output, keeping the stored pass/fail as it was decided."""
        value = data.get("value")
        return cls(
            metric=data["metric"],
            value=None if value is None else float(value),
            threshold=float(data["threshold"]),
            comparator=data["comparator"],
            passed=bool(data["passed"]),
            n_samples=int(data["n_samples"]),
            center=float(data.get("center", 0.0)),
            condition=data.get("condition", ""),
            details=dict(data.get("details", {})),
        )


def make_row(
    *, value: float | None, threshold: Threshold, n_samples: int, details: Mapping | None = None
) -> ResultRow:
    """Return the row for a measured value, deciding pass/fail on the unrounded value."""
    number = None if value is None else float(value)
    return ResultRow(
        metric=threshold.metric,
        value=number if number is not None and math.isfinite(number) else None,
        threshold=threshold.limit,
        comparator=threshold.comparator,
        passed=evaluate(number, threshold),
        n_samples=int(n_samples),
        center=threshold.center,
        condition=threshold.describe(),
        details=json_safe(dict(details or {})),
    )


def format_value(value: float | None, limit: float, *, digits: int = 3) -> str:
    """Return ``value`` with at least ``digits`` significant digits, more if it would print as ``limit``.

    0.0500001 against 0.05 prints "0.0500001", not "0.05", so a failing value never reads as if
    it sat exactly on the boundary. None prints as "not measured".
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    if value == limit:
        return f"{value:.{digits}g}"
    for precision in range(digits, 18):
        text = f"{value:.{precision}g}"
        if float(text) != limit and f"{limit:.{precision}g}" != text:
            return text
    return repr(float(value))


@dataclass(frozen=True)
class VerificationResult:
    """All rows of one verification, what was skipped and why, and the raw measurements.

    ``passed`` is True only when there is at least one row and every row passed; ``complete``
    says whether any metric was skipped (no reference model, no original, no TOFU items), so a
    report can tell "all checks passed" from "all the checks that ran passed".
    """

    rows: tuple[ResultRow, ...]
    skipped: tuple[dict, ...] = ()
    measurements: dict = field(default_factory=dict)
    #: The robustness section (``robustness.RobustnessResult.to_dict()``): its own rows, skipped
    #: list and limits statements; empty when robustness was not measured. Kept apart from
    #: ``rows`` so ``passed`` keeps its meaning; ``robustness_passed`` judges the section.
    robustness: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(row.passed for row in self.rows)

    @property
    def robustness_passed(self) -> bool | None:
        """Whether every robustness row passed; None when the section was not measured."""
        if not self.robustness:
            return None
        rows = self.robustness.get("rows", [])
        return bool(rows) and all(row.get("passed") for row in rows)

    @property
    def complete(self) -> bool:
        return not self.skipped

    def row(self, metric: str) -> ResultRow:
        """Return the row of ``metric``, or raise ``KeyError`` naming the metrics there are."""
        for row in self.rows:
            if row.metric == metric:
                return row
        raise KeyError(f"no row for {metric!r}; rows: {[row.metric for row in self.rows]}")

    def failed_metrics(self) -> list[str]:
        return [row.metric for row in self.rows if not row.passed]

    def to_dict(self) -> dict:
        data = {
            "passed": self.passed,
            "complete": self.complete,
            "rows": [row.as_dict() for row in self.rows],
            "skipped": list(self.skipped),
            "measurements": self.measurements,
        }
        if self.robustness:
            data["robustness"] = self.robustness
        return json_safe(data)

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping) -> VerificationResult:
        """Rebuild a result from ``to_dict`` output (e.g. a JSON column)."""
        if "rows" not in data:
            raise ValueError("a verification result mapping needs 'rows'")
        return cls(
            rows=tuple(ResultRow.from_dict(row) for row in data["rows"]),
            skipped=tuple(dict(item) for item in data.get("skipped", ())),
            measurements=dict(data.get("measurements", {})),
            robustness=dict(data.get("robustness") or {}),
        )


def rows_table(results: Mapping[str, VerificationResult], metrics: Sequence[str] | None = None) -> str:
    """Return a plain-text table of metrics (rows) by named results (columns), with pass/fail."""
    names = list(results)
    if metrics is None:
        metrics = []
        for result in results.values():
            for row in result.rows:
                if row.metric not in metrics:
                    metrics.append(row.metric)
    header = ["metric", "threshold", *names]
    lines = [header]
    for metric in metrics:
        condition = ""
        cells = []
        for name in names:
            try:
                row = results[name].row(metric)
            except KeyError:
                cells.append("—")
                continue
            condition = condition or row.condition
            mark = "pass" if row.passed else "FAIL"
            cells.append(f"{format_value(row.value, row.threshold)} {mark} (n={row.n_samples})")
        lines.append([metric, condition, *cells])
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines
    )
