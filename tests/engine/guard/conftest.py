"""A hand-written erased subject, its rules and guards, shared by the guard tests.

The subject has an accented, hyphenated name with a nickname (William → Bill), a UK phone, an
address, an account id and two records that only together tie the name to the address.
"""

from __future__ import annotations

import pytest

from unlearning_jobs.engine.guard import GuardPolicy, RuleSet, SubjectFacts, SubjectRecord
from unlearning_jobs.engine.guard.filter import Guard
from unlearning_jobs.engine.pii.hashing import KeyedHasher

KEY = b"guard-test-key-0123456789abcdef"
KEY_ID = "test-key-1"

SUBJECT = SubjectFacts(
    subject_ref="req-0001",
    name="William Jérôme Smith-Jones",
    emails=("Bill.Smith@Example.com",),
    phones=("07911 123456",),
    addresses=("12 Baker Street, London NW1 6XE",),
    account_ids=("ACC-123456",),
    cities=("London",),
    dates_of_birth=("1985-03-12",),
    records=(
        SubjectRecord(
            "T1",
            "Order 55123 for account ACC-123456 was delivered to 12 Baker Street, London NW1 6XE.",
        ),
        SubjectRecord(
            "T2", "Contact William Smith-Jones at Bill.Smith@Example.com about account ACC-123456."
        ),
    ),
)

#: Every raw value of the subject, for searching serialised rules and logs.
RAW_VALUES = (
    "William",
    "Jérôme",
    "Smith",
    "Jones",
    "Bill.Smith@Example.com",
    "bill.smith@example.com",
    "07911 123456",
    "+447911123456",
    "7911123456",
    "Baker",
    "NW1 6XE",
    "ACC-123456",
    "ACC123456",
    "London",
    "1985-03-12",
)


@pytest.fixture(scope="session")
def hasher() -> KeyedHasher:
    return KeyedHasher(key=KEY, key_id=KEY_ID)


@pytest.fixture(scope="session")
def subject_rules(hasher):
    return SUBJECT.rules(hasher=hasher)


@pytest.fixture(scope="session")
def rule_set(subject_rules) -> RuleSet:
    return RuleSet(key_id=KEY_ID, version=3, rules=subject_rules, policy=GuardPolicy(mode="redact"))


@pytest.fixture(scope="session")
def guard(rule_set, hasher) -> Guard:
    return Guard(rule_set, hasher)


@pytest.fixture(scope="session")
def refusing_guard(rule_set, hasher) -> Guard:
    return Guard(rule_set, hasher, GuardPolicy(mode="refuse"))
