"""Detection: each format variant meets the rules' normal forms; cost does not depend on rules."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from unlearning_jobs.engine.guard import RuleSet, rules_from_identifiers
from unlearning_jobs.engine.guard.detect import STOPWORDS, Detector, phone_forms
from unlearning_jobs.engine.guard.digest import KeyedDigest
from unlearning_jobs.engine.guard.synthetic import valid_phone
from unlearning_jobs.engine.pii.entities import EntityType
from unlearning_jobs.engine.pii.normalise import nickname_table, normalise_phone

from .conftest import KEY_ID


def matched_types(guard, text: str) -> set[str]:
    return {match.entity_type for match in guard.check_output(text).matches}


@pytest.mark.parametrize(
    "text",
    [
        "07911 123456",
        "07911-123-456",
        "+44 7911 123456",
        "+44 (0)7911 123456",
        "0044 7911 123456",
        "(07911) 123456",
        "+447911123456",
        "Call 07911 123456 2 times",
        "tel:07911.123.456",
    ],
)
def test_phone_formats_are_caught(guard, text):
    assert "PHONE" in matched_types(guard, text)


@pytest.mark.parametrize(
    "text",
    [
        "bill.smith@example.com",
        "BILL.SMITH@EXAMPLE.COM",
        "Bill.Smith @ Example.com",
        "bill dot smith at example dot com",
        "bill.smith(at)example(dot)com",
        "bill.smith [at] example [dot] com",
        "write to <bill.smith@example.com>.Then",
    ],
)
def test_email_case_spacing_and_obfuscation_are_caught(guard, text):
    assert "EMAIL" in matched_types(guard, text)


@pytest.mark.parametrize(
    "text",
    [
        "William Smith-Jones",
        "SMITH-JONES, William",
        "smith-jones william",
        "Bill Smith-Jones",
        "W. Smith-Jones",
        "Smith-Jones, W.",
        "William Jerome Smith-Jones",
        "WILLIAM JÉRÔME SMITH-JONES",
        "William Jérôme Smith-Jones's parcel",
        "William J. Smith-Jones",
        "Dr. Bill Smith-Jones",
    ],
)
def test_name_order_case_accents_nicknames_and_initials_are_caught(guard, text):
    assert "PERSON" in matched_types(guard, text)


@pytest.mark.parametrize(
    "text",
    [
        "12 Baker Street",
        "12 baker st.",
        "12 BAKER STREET, LONDON NW1 6XE",
        "12 Baker St\nLondon NW1 6XE",
        "Send it to 12 Baker Street, London please",
    ],
)
def test_address_variants_are_caught(guard, text):
    assert "ADDRESS" in matched_types(guard, text)


@pytest.mark.parametrize(
    "text", ["ACC-123456", "acc 123456", "ACC123456", "acc-123-456", "account ACC/123456."]
)
def test_account_id_variants_are_caught(guard, text):
    assert "ACCOUNT_ID" in matched_types(guard, text)


@pytest.mark.parametrize(
    "text",
    [
        "William Smith",
        "William Jones",
        "Bill Jones",
        "W. Jones",
        "Jerome Jones",
        "J. Smith-Jonas",
        "bill.smith@example.org",
        "07911 123457",
        "13 Baker Street",
        "12 Baker Road",
        "ACC-123457",
        "Lucas J. Smith wrote a book.",
        "I will see the smith in Jones Park at 12 noon.",
    ],
)
def test_near_misses_about_other_people_pass(guard, text):
    assert guard.check_output(text).action == "allow"


def test_quasi_identifiers_count_only_beside_their_subject(guard):
    assert guard.check_output("I moved to London in 1985-03-12.").action == "allow"
    decision = guard.check_output("Bill Smith-Jones moved to London.")
    assert {m.entity_type for m in decision.matches} == {"PERSON", "LOCATION"}
    answer = guard.check_output("He lives in London.", prompt="Which city does W. Smith-Jones live in?")
    assert answer.action == "redact" and answer.text == "He lives in [REDACTED]."
    born = guard.check_output("Born on 12 March 1985.", prompt="When was Bill Smith-Jones born?")
    assert [m.entity_type for m in born.matches] == ["DATE_OF_BIRTH"]


def test_phone_forms_agree_with_phonenumbers_on_valid_numbers():
    rng = random.Random(4)
    for _ in range(200):
        region = rng.choice(["GB", "US"])
        number = phonenumbers.parse(valid_phone(rng, region), region)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        for style in (
            phonenumbers.PhoneNumberFormat.NATIONAL,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        ):
            written = phonenumbers.format_number(number, style)
            assert normalise_phone(written, region) == e164
            assert e164 in phone_forms(written, ("GB", "US")), written


def test_stopwords_hold_no_given_name_or_nickname():
    names = set(nickname_table())
    assert not names & STOPWORDS
    assert not any(len(word) == 1 for word in STOPWORDS)


class CountingTable:
    """A rule table that counts lookups, to show how many a text costs."""

    def __init__(self, hashes: set[str]) -> None:
        self.hashes, self.lookups = hashes, 0

    def __contains__(self, value: object) -> bool:
        self.lookups += 1
        return value in self.hashes


def test_lookups_per_text_do_not_depend_on_the_number_of_rules(hasher):
    text = (
        "Contact Ann Lee at ann.lee@mail.test or 07911 654321; she lives at 4 Elm Road, Leeds "
        "LS1 4AB and holds account CUST-778899. Her colleague Bob Stone wrote on Monday."
    )
    detector = Detector(digest=KeyedDigest(hasher), entity_types=frozenset(EntityType))
    lookups = []
    for subjects in (10, 2000):
        rules = []
        for index in range(subjects):
            rules += rules_from_identifiers(
                hasher=hasher,
                subject_ref=f"req-{index}",
                names=[f"Zed{index} Quorn{index}"],
                emails=[f"z{index}@q.test"],
                account_ids=[f"ZQ-{index:06d}"],
            )
        table = CountingTable(set(RuleSet(key_id=KEY_ID, version=1, rules=rules).table()))
        assert detector.find(text, table) == []
        lookups.append(table.lookups)
    assert lookups[0] == lookups[1] > 0


def test_configured_account_id_patterns_catch_what_the_windows_miss(hasher):
    from unlearning_jobs.engine.guard import Guard, GuardPolicy

    iban = "GB29 NWBK 6016 1331 9268 19"
    rules = rules_from_identifiers(hasher=hasher, subject_ref="req-7", account_ids=[iban])
    rule_set = RuleSet(key_id=KEY_ID, version=1, rules=rules)
    text = f"Pay into {iban.lower()} today."
    assert Guard(rule_set, hasher).check_output(text).action == "allow"
    policy = GuardPolicy(
        account_id_patterns=(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",)
    )
    decision = Guard(rule_set, hasher, policy).check_output(text)
    assert decision.text == "Pay into [REDACTED] today."
    with pytest.raises(ValueError, match="not a valid regex"):
        GuardPolicy(account_id_patterns=("(",))


def test_places_match_as_the_index_normalises_them(hasher):
    from unlearning_jobs.engine.guard import Guard

    rules = rules_from_identifiers(
        hasher=hasher, subject_ref="req-8", names=["Ann Lee"], locations=["The Hague"]
    )
    guard = Guard(RuleSet(key_id=KEY_ID, version=1, rules=rules), hasher)
    assert guard.check_output("Ann Lee moved to the Hague.").text == "[REDACTED] moved to the [REDACTED]."
