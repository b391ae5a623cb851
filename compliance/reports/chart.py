"""Draw the verification plot: each measured value against its threshold, pass or fail.

Metrics have different scales, so each row is drawn on its own range (zero, the value and the
threshold, with a margin): the bar is the value, the black tick the threshold, the colour the
recorded pass or fail — never recomputed from the drawing. Rendered as SVG with matplotlib's
``Figure`` (no pyplot), so no display and no global backend are involved.
"""

from __future__ import annotations

import io

PASS_COLOUR = "#1e6b34"
FAIL_COLOUR = "#b3261e"
MISSING_COLOUR = "#9aa3b2"
MAX_ROWS = 40


def number_text(value, threshold=None) -> str:
    """Return ``value`` with at least 3 significant digits, more if it would print as ``threshold``.

    So a failing 0.0500001 against 0.05 never reads as sitting on the boundary. None reads
    "not measured".
    """
    if value is None:
        return "not measured"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    for digits in range(3, 17):
        text = f"{value:.{digits}g}"
        if threshold is None or value == threshold or float(text) != threshold:
            return text
    return repr(value)


def verification_chart_svg(results: list[dict]) -> str | None:
    """Return the plot of ``results`` (verification rows) as SVG text, or None when there are none."""
    rows = [row for row in results if isinstance(row, dict)][:MAX_ROWS]
    if not rows:
        return None
    from matplotlib.figure import Figure

    height = 0.42 * len(rows) + 0.9
    figure = Figure(figsize=(7.0, height), layout="constrained")
    axis = figure.subplots()
    labels = []
    for index, row in enumerate(reversed(rows)):
        value, threshold = row.get("value"), row.get("threshold")
        labels.append(f"{row.get('metric', '?')} · {str(row.get('subject', ''))[:28]}")
        numbers = [0.0] + [float(x) for x in (value, threshold) if isinstance(x, (int, float))]
        low, high = min(numbers), max(numbers)
        span = (high - low) or 1.0
        low, high = low - 0.1 * span if low < 0 else low, high + 0.25 * span

        def scaled(x, low=low, high=high):
            return (float(x) - low) / (high - low)

        zero = scaled(0.0)
        if isinstance(value, (int, float)):
            colour = PASS_COLOUR if row.get("passed") is True else FAIL_COLOUR
            axis.barh(index, scaled(value) - zero, left=zero, height=0.55, color=colour)
            # A value of zero has no bar; the dot still shows where it lies.
            axis.plot([scaled(value)], [index], marker="o", markersize=4.5, color=colour)
        else:
            axis.barh(
                index,
                1.0,
                left=0.0,
                height=0.55,
                color="none",
                edgecolor=MISSING_COLOUR,
                hatch="///",
                linewidth=0.6,
            )
        if isinstance(threshold, (int, float)):
            axis.plot([scaled(threshold)] * 2, [index - 0.38, index + 0.38], color="black", linewidth=1.6)
        verdict = "pass" if row.get("passed") is True else "FAIL"
        axis.text(
            1.02,
            index,
            f"{number_text(value, threshold)} {row.get('comparator', '')} "
            f"{number_text(threshold)}  {verdict}",
            va="center",
            fontsize=7.5,
            transform=axis.get_yaxis_transform(),
        )
    axis.set_yticks(range(len(rows)), labels, fontsize=7.5)
    axis.set_xlim(0, 1)
    axis.set_xticks([])
    axis.set_ylim(-0.6, len(rows) - 0.4)
    for side in ("top", "right", "bottom"):
        axis.spines[side].set_visible(False)
    axis.set_xlabel("each row on its own scale · bar: measured value · tick: threshold", fontsize=7.5)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()
