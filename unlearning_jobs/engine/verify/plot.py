"""Draw membership score distributions, forget vs holdout, side by side for several models.

One panel per named result ("original", "retrain", "unlearned"): if unlearning worked, the
forget histogram of the unlearned model overlaps the holdout histogram as it does for the
retrain, instead of sitting apart as it does for the original. Written as SVG (for the report)
and PNG (for pages, rendered by matplotlib's Agg canvas) without pyplot, so no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .membership import MIA_SCORES
from .report import VerificationResult

__all__ = ["SCORE_LABELS", "plot_membership_distributions"]

SCORE_LABELS: dict[str, str] = {
    "loss": "− mean token loss",
    "zlib": "− loss / zlib length",
    "min_k": "Min-K% (k = 0.4)",
    "min_k_plus_plus": "Min-K%++ (k = 0.4)",
}


def _scores(
    result: VerificationResult | Mapping, score: str
) -> tuple[list[float], list[float], float | None]:
    measurements = (
        result.measurements if isinstance(result, VerificationResult) else result.get("measurements", {})
    )
    membership = measurements.get("membership")
    if not membership:
        raise ValueError("a result without membership measurements cannot be plotted")
    members = [value for value in membership["member_scores"][score] if value is not None]
    nonmembers = [value for value in membership["nonmember_scores"][score] if value is not None]
    return members, nonmembers, membership.get("auc", {}).get(score)


def plot_membership_distributions(
    *,
    results: Mapping[str, VerificationResult | Mapping],
    path: str | Path,
    score: str = "min_k_plus_plus",
    bins: int = 30,
) -> tuple[Path, Path]:
    """Write ``<path>.svg`` and ``<path>.png`` with one histogram panel per result; return both.

    ``path``'s suffix, if any, is replaced. Every panel shares the x-axis range so the panels
    can be compared by eye.
    """
    if score not in MIA_SCORES:
        raise ValueError(f"score must be one of {MIA_SCORES}, got {score!r}")
    if not results:
        raise ValueError("nothing to plot: no results given")
    # A bare Figure renders PNG through the Agg canvas and SVG through the SVG canvas without
    # pyplot, so no global backend is switched in the worker that calls this.
    from matplotlib.figure import Figure

    data = {name: _scores(result, score) for name, result in results.items()}
    everything = [value for members, nonmembers, _auc in data.values() for value in members + nonmembers]
    if not everything:
        raise ValueError("nothing to plot: the results hold no membership scores")
    edges = np.linspace(min(everything), max(everything), bins + 1)
    if edges[0] == edges[-1]:
        edges = np.linspace(edges[0] - 0.5, edges[0] + 0.5, bins + 1)

    figure = Figure(figsize=(4.2 * len(data), 3.4), layout="constrained")
    axes = figure.subplots(1, len(data), sharex=True, squeeze=False)[0]
    for axis, (name, (members, nonmembers, auc)) in zip(axes, data.items()):
        axis.hist(
            nonmembers,
            bins=edges,
            alpha=0.55,
            label=f"holdout (n={len(nonmembers)})",
            color="#4c72b0",
            density=True,
        )
        axis.hist(
            members, bins=edges, alpha=0.55, label=f"forget (n={len(members)})", color="#dd8452", density=True
        )
        title = name if auc is None else f"{name} — AUC {auc:.3f}"
        axis.set_title(title, fontsize=10)
        axis.set_xlabel(f"{SCORE_LABELS[score]} (higher = more member-like)", fontsize=8)
        axis.legend(fontsize=8)
    axes[0].set_ylabel("density")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    svg = target.with_suffix(".svg")
    png = target.with_suffix(".png")
    figure.savefig(svg, format="svg")
    figure.savefig(png, format="png", dpi=120)
    return svg, png
