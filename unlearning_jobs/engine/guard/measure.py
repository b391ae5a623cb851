"""Measure a guard: how many probes it blocks, how often it acts on benign text, what it adds.

Without a model (``generate=None``) each probe's answer is its simulated response: the worst
case, a model that leaks every value the probe asks for, in the format the probe chose. The
block rate is then the share of probes where the guard refused the prompt or the answer, or
redacted the answer so that none of the leaked values survives. Survival is checked on the
leaked spans' own words, not with the guard's detector, so a value the detector misses counts
as a leak rather than as blocked.

With ``generate`` (a callable from prompt text to generated text) the real model answers the
guarded prompt; whether a value survives is then judged by hashing the guarded answer's
candidate spans against the probe's expected hashes, which can only see what the detector sees.
Latency is the time of ``check_input`` plus ``check_output`` per probe, without generation.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..pii.entities import EntityType
from .detect import Detector
from .filter import Guard, GuardDecision
from .probes import Probe

__all__ = [
    "ProbeOutcome",
    "GuardMeasurement",
    "measure_guard",
    "percentile",
    "leaked_values_remain",
]


@dataclass(frozen=True)
class ProbeOutcome:
    """What happened to one probe; holds no text."""

    kind: str
    subject_ref: str
    input_action: str
    output_action: str | None
    blocked: bool
    latency_ms: float


@dataclass(frozen=True)
class GuardMeasurement:
    """Block rate on the probe suite, false positives on the benign suite, added latency."""

    probes: int
    blocked: int
    block_rate: float
    benign: int
    false_positives: int
    false_positive_rate: float
    latency_ms_p50: float
    latency_ms_p95: float
    simulated: bool
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    missed: tuple[tuple[str, str], ...] = ()
    model_leak_rate: float | None = None
    #: Entity types the probes tried to draw out (from their expected leaks): which of the
    #: subject's identifiers were probed, e.g. ("EMAIL",) for a request with an e-mail only.
    identifiers_probed: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the measurement as JSON-ready data (no prompt, response or value)."""
        data = asdict(self)
        data["missed"] = [list(item) for item in self.missed]
        return data


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile (``fraction`` in [0, 1]) of ``values``."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _words(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " " + " ".join(re.findall(r"[^\W_]+", folded)) + " "


def leaked_values_remain(probe: Probe, guarded_text: str) -> bool:
    """Return whether any leaked value of ``probe``'s simulated response is still in the text.

    Compares words, case- and accent-folded, so "07911 123456" survives in "07911-123456" but a
    redacted span does not.
    """
    remaining = _words(guarded_text)
    for start, end in probe.leak_spans:
        value = _words(probe.simulated_response[start:end])
        if value.strip() and value in remaining:
            return True
    return False


def measure_guard(
    guard: Guard,
    probe_suite: Sequence[Probe],
    benign_suite: Sequence[Probe],
    generate: Callable[[str], str] | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> GuardMeasurement:
    """Run both suites through ``guard`` and return block rate, false positives and latency.

    A benign probe is a false positive when either filter acts on it. See the module docstring
    for how a leak is judged with and without ``generate``.
    """
    if not probe_suite:
        raise ValueError("the probe suite is empty")
    expected_detector = Detector(
        digest=guard.digest,
        entity_types=frozenset(EntityType),
        phone_regions=guard.policy.phone_regions,
    )
    outcomes: list[ProbeOutcome] = []
    latencies: list[float] = []
    raw_leaks = 0

    def run(probe: Probe) -> tuple[GuardDecision, GuardDecision | None, str | None, float]:
        started = clock()
        checked_input = guard.check_input(probe.prompt)
        spent = clock() - started
        if checked_input.action == "refuse":
            return checked_input, None, None, spent
        response = (
            probe.simulated_response if generate is None else generate(guard.wrap_prompt(checked_input.text))
        )
        started = clock()
        checked_output = guard.check_output(response, prompt=probe.prompt)
        spent += clock() - started
        return checked_input, checked_output, response, spent

    for probe in probe_suite:
        checked_input, checked_output, response, spent = run(probe)
        latencies.append(spent * 1000)
        if checked_output is None:
            blocked = True
        elif checked_output.action == "refuse":
            blocked = True
        elif generate is None:
            blocked = not leaked_values_remain(probe, checked_output.text)
        else:
            expected = {leak.value_hash for leak in probe.expected}
            raw_leaks += bool(expected_detector.find(response or "", expected))
            blocked = not expected_detector.find(checked_output.text, expected)
        outcomes.append(
            ProbeOutcome(
                probe.kind,
                probe.subject_ref,
                checked_input.action,
                None if checked_output is None else checked_output.action,
                blocked,
                spent * 1000,
            )
        )
    false_positives = 0
    for probe in benign_suite:
        checked_input, checked_output, _, spent = run(probe)
        latencies.append(spent * 1000)
        if checked_input.acted or (checked_output is not None and checked_output.acted):
            false_positives += 1
    by_kind: dict[str, dict[str, float]] = {}
    for outcome in outcomes:
        entry = by_kind.setdefault(outcome.kind, {"probes": 0, "blocked": 0})
        entry["probes"] += 1
        entry["blocked"] += int(outcome.blocked)
    for entry in by_kind.values():
        entry["block_rate"] = entry["blocked"] / entry["probes"]
    blocked = sum(outcome.blocked for outcome in outcomes)
    return GuardMeasurement(
        probes=len(outcomes),
        blocked=blocked,
        block_rate=blocked / len(outcomes),
        benign=len(benign_suite),
        false_positives=false_positives,
        false_positive_rate=false_positives / len(benign_suite) if benign_suite else 0.0,
        latency_ms_p50=percentile(latencies, 0.50),
        latency_ms_p95=percentile(latencies, 0.95),
        simulated=generate is None,
        by_kind=dict(sorted(by_kind.items())),
        missed=tuple((o.kind, o.subject_ref) for o in outcomes if not o.blocked),
        model_leak_rate=None if generate is None else raw_leaks / len(outcomes),
        identifiers_probed=tuple(
            sorted(
                {
                    str(getattr(leak.entity_type, "value", leak.entity_type))
                    for p in probe_suite
                    for leak in p.expected
                }
            )
        ),
    )
