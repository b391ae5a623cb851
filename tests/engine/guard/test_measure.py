"""Measurement: block rate, false positives, latency; simulated worst case and a real generator."""

from __future__ import annotations

import pytest

from unlearning_jobs.engine.guard import (
    Guard,
    GuardPolicy,
    benign_suite,
    measure_guard,
    probe_suite,
)
from unlearning_jobs.engine.guard.measure import leaked_values_remain, percentile
from unlearning_jobs.engine.guard.probes import evasion_probes
from unlearning_jobs.engine.guard.synthetic import fake_subjects

from .conftest import SUBJECT


@pytest.fixture(scope="module")
def suites(hasher):
    others = fake_subjects(count=4, seed=21, ref_prefix="other")
    return probe_suite(SUBJECT, hasher=hasher), benign_suite(others, hasher=hasher)


@pytest.mark.parametrize("mode", ["redact", "refuse"])
def test_simulated_worst_case_is_blocked_without_false_positives(rule_set, hasher, suites, mode):
    guard = Guard(rule_set, hasher, GuardPolicy(mode=mode))
    measured = measure_guard(guard, *suites)
    assert measured.simulated and measured.model_leak_rate is None
    assert measured.block_rate == 1.0, measured.missed
    assert measured.false_positives == 0
    assert measured.latency_ms_p50 <= measured.latency_ms_p95
    assert set(measured.by_kind) >= {"direct", "prefix", "reintroduction", "latent_deduction"}
    assert "Smith" not in str(measured.as_dict())


def test_an_unguarded_response_counts_as_a_leak(suites):
    probe = suites[0][0]
    assert leaked_values_remain(probe, probe.simulated_response)
    assert not leaked_values_remain(probe, "I cannot share that.")


def test_evasions_are_measured_as_leaks_not_hidden(guard, hasher):
    evasions = evasion_probes(SUBJECT, hasher=hasher)
    measured = measure_guard(guard, evasions, ())
    assert measured.block_rate < 1.0
    assert measured.false_positive_rate == 0.0


def test_a_generator_that_leaks_is_caught_by_the_output_filter(guard, suites):
    def leaky_model(prompt: str) -> str:
        return "Her e-mail is BILL.SMITH@EXAMPLE.COM and she is Bill Smith-Jones."

    measured = measure_guard(guard, suites[0][:5], suites[1][:5], generate=leaky_model)
    assert not measured.simulated
    assert measured.model_leak_rate > 0
    assert measured.block_rate == 1.0


def test_percentile_is_nearest_rank():
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3
    assert percentile(list(range(1, 101)), 0.95) == 95
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_empty_probe_suite_is_refused(guard):
    with pytest.raises(ValueError, match="empty"):
        measure_guard(guard, (), ())
