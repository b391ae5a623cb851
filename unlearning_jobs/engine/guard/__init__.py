"""Suppress erased subjects' data at a model's inputs and outputs (output and latent suppression).

Pure engine code: nothing here imports Django. Modules, one job each: ``policy`` (what a
deployment does on a match), ``rules`` (keyed-hash rules from a subject's identifiers, JSON
export), ``digest`` (the index's keyed hash, fast), ``detect`` (candidate spans in one pass),
``filter`` (the guard: input and output filters, system prompt), ``facts`` (what is known of a
subject, for probes), ``probes`` (probe suites and latent probes), ``synthetic`` (fictitious
people and sentences), ``measure`` (block rate, false positives, added latency).

Suppression is not removal: the model's parameters still hold what it learnt. See docs/guard.md.
"""

from .facts import SubjectFacts, SubjectRecord
from .filter import (
    Guard,
    GuardDecision,
    GuardedGeneration,
    GuardMatch,
    check_text_against_exported_rules,
    guard_from_exported_rules,
)
from .measure import GuardMeasurement, measure_guard
from .policy import GuardPolicy
from .probes import ExpectedLeak, Probe, benign_suite, evasion_probes, latent_probes, probe_suite
from .rules import RuleSet, SuppressionRule, export_rules, load_rules, rules_from_identifiers

__all__ = [
    "ExpectedLeak",
    "Guard",
    "GuardDecision",
    "GuardMatch",
    "GuardMeasurement",
    "GuardPolicy",
    "GuardedGeneration",
    "Probe",
    "RuleSet",
    "SubjectFacts",
    "SubjectRecord",
    "SuppressionRule",
    "benign_suite",
    "check_text_against_exported_rules",
    "evasion_probes",
    "export_rules",
    "guard_from_exported_rules",
    "latent_probes",
    "load_rules",
    "measure_guard",
    "probe_suite",
    "rules_from_identifiers",
]
