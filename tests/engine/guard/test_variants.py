"""Issue 16: the guard meets evasive forms (digits in words, misspellings, local parts) and
spares other people (namesakes with their own e-mail, real names one letter away), and probes
run from whatever identifiers a request has."""

import pytest

from unlearning_jobs.engine.guard import (
    Guard,
    RuleSet,
    SubjectFacts,
    measure_guard,
    probe_suite,
    rules_from_identifiers,
)
from unlearning_jobs.engine.guard.variants import spelt_digit_runs
from unlearning_jobs.engine.pii.hashing import KeyedHasher

HASHER = KeyedHasher(key=b"guard-variants-test-key-32-bytes", key_id="t1")


@pytest.fixture(scope="module")
def guard() -> Guard:
    rules = rules_from_identifiers(
        hasher=HASHER,
        subject_ref="ER-16",
        names=["Harriet Pemberton"],
        emails=["harriet.pemberton77@btinternet.com"],
        phones=["020 7946 0958"],
        default_region="GB",
    )
    other = rules_from_identifiers(hasher=HASHER, subject_ref="ER-17", names=["Katherine Clarke"])
    return Guard(RuleSet(key_id="t1", version=1, rules=rules + other), HASHER)


@pytest.mark.parametrize(
    "text",
    [
        "You can call her on oh two oh, seven nine four six, oh nine five eight.",
        "Phone: zero two zero seven nine four six zero nine five eight",
        "Her number is 020 seven nine four six 0958.",
    ],
)
def test_a_phone_in_words_is_acted_on(guard, text):
    assert "ER-16" in guard.check_output(text).subjects


def test_a_misspelt_name_is_acted_on(guard):
    assert "ER-16" in guard.check_input("Tell me everything about Harriet Pembertton.").subjects


def test_a_real_name_one_letter_away_is_not(guard):
    # Clark is a family name of its own, not a misspelt Clarke.
    assert guard.check_input("Tell me everything about Katherine Clark.").action == "allow"


def test_an_email_local_part_alone_is_acted_on_but_not_at_another_provider(guard):
    assert "ER-16" in guard.check_output("She signs as harriet.pemberton77 on the forum.").subjects
    assert guard.check_output("Write to harriet.pemberton77@outlook.com.").action == "allow"


def test_a_namesakes_record_with_a_different_email_is_not_acted_on(guard):
    assert guard.check_output("Harriet Pemberton (h.pemberton@example.org) ordered a lamp.").action == "allow"
    # Her own e-mail beside the name: acted on, name and e-mail both.
    decision = guard.check_output("Harriet Pemberton (harriet.pemberton77@btinternet.com) ordered a lamp.")
    assert {m.entity_type for m in decision.matches} == {"PERSON", "EMAIL"}


def test_a_name_in_another_persons_email_is_not_a_name(guard):
    assert guard.check_output("Reply to harriet.pemberton@gmail.com please.").action == "allow"


def test_spelt_digits_need_seven_digits_and_a_number_word():
    assert spelt_digit_runs("I have one or two things, three of them.") == []
    assert spelt_digit_runs("zéro six quarante-deux dix-sept quatre-vingt-dix-neuf")[0][2] == "064217" + "99"


def test_a_ten_before_quatre_vingt_is_not_read_with_its_four():
    # "vingt quatre-vingt-dix" is 20 90; "vingt-quatre quatre-vingts" is 24 80.
    assert spelt_digit_runs("zéro six vingt quatre-vingt-dix zéro zéro trente-trois")[0][2] == "0620900033"
    assert (
        spelt_digit_runs("zéro six vingt-quatre quatre-vingts zéro zéro trente-trois")[0][2] == "0624800033"
    )


@pytest.mark.parametrize(
    ("facts", "probed"),
    [
        (SubjectFacts("ER-1", None, emails=("jane.doe87@example.org",)), ("EMAIL",)),
        (SubjectFacts("ER-2", None, phones=("+44 20 7946 0958",)), ("PHONE",)),
        (SubjectFacts("ER-3", "Jane Doe"), ("PERSON",)),
    ],
)
def test_probes_run_from_any_subset_of_identifiers(facts, probed):
    probes = probe_suite(facts, hasher=HASHER)
    guard = Guard(RuleSet(key_id="t1", version=1, rules=facts.rules(hasher=HASHER)), HASHER)
    measured = measure_guard(guard, probes, ())
    assert measured.probes > 0 and measured.block_rate == 1.0
    assert measured.identifiers_probed == probed
    assert facts.identifier_kinds == probed
