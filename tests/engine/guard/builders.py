"""A guard over a few named subjects, for tests that state each case as identifiers and texts."""

from unlearning_jobs.engine.guard import Guard, RuleSet, rules_from_identifiers
from unlearning_jobs.engine.pii.hashing import KeyedHasher

HASHER = KeyedHasher(key=b"guard-builder-test-key-32-bytes!", key_id="tb")


def guard_for(**subjects) -> Guard:
    """Return a guard over ``{subject_ref: {"names": [...], "emails": [...], ...}}``."""
    rules = []
    for ref, identifiers in subjects.items():
        rules += rules_from_identifiers(hasher=HASHER, subject_ref=ref, default_region="GB", **identifiers)
    return Guard(RuleSet(key_id=HASHER.key_id, version=1, rules=tuple(rules)), HASHER)
