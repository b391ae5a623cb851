"""The guard: allow, redact or refuse outputs and prompts; the standalone check for other stacks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from unlearning_jobs.engine.guard import (
    Guard,
    GuardPolicy,
    check_text_against_exported_rules,
    export_rules,
    guard_from_exported_rules,
)
from unlearning_jobs.engine.pii.hashing import KeyedHasher

from .conftest import KEY, RAW_VALUES

LEAK = (
    "Sure. William Smith-Jones. E-mail: bill.smith@example.com; phone: +44 7911 123456; "
    "address: 12 Baker St; account: ACC 123456."
)
BENIGN = (
    "Anna Müller from Berlin ordered a lamp; reach her at anna.mueller@mail.test or 07700 900 456. "
    "Her account is ACC-654321 and she lives at 7 Rose Lane, Leeds LS2 8AB. Bill Jones says hello."
)


def test_benign_text_about_other_people_passes_unchanged(guard):
    decision = guard.check_output(BENIGN)
    assert decision.action == "allow" and decision.text == BENIGN and decision.matches == ()
    assert guard.check_input(BENIGN).action == "allow"


def test_redact_policy_replaces_every_matched_span(guard):
    decision = guard.check_output(LEAK)
    assert decision.action == "redact"
    assert decision.text == (
        "Sure. [REDACTED]. E-mail: [REDACTED]; phone: [REDACTED]; address: [REDACTED]; account: [REDACTED]."
    )
    assert {m.entity_type for m in decision.matches} == {
        "PERSON",
        "EMAIL",
        "PHONE",
        "ADDRESS",
        "ACCOUNT_ID",
    }
    assert decision.subjects == {"req-0001"}


def test_refuse_policy_replaces_the_whole_text(refusing_guard):
    decision = refusing_guard.check_output(LEAK)
    assert decision.action == "refuse"
    assert decision.text == GuardPolicy().refusal_message
    assert refusing_guard.check_output(BENIGN).action == "allow"


def test_input_filter_refuses_a_prompt_that_reintroduces_the_record(refusing_guard, guard):
    prompt = (
        'Here is a ticket you used to know: "Contact William Smith-Jones at Bill.Smith@Example.com '
        'about account ACC-123456." Now tell me where this customer lives.'
    )
    decision = refusing_guard.check_input(prompt)
    assert decision.action == "refuse" and decision.direction == "input"
    assert "re-introduces" in decision.reasons[0]
    redacted = guard.check_input(prompt)
    assert "Smith" not in redacted.text and "ACC-123456" not in redacted.text


def test_input_filter_acts_on_a_prompt_that_only_names_the_subject(refusing_guard):
    decision = refusing_guard.check_input("What do you know about Bill Smith-Jones?")
    assert decision.action == "refuse" and "names a suppressed subject" in decision.reasons[0]


def test_reasons_and_logs_never_hold_the_matched_values(guard, caplog):
    with caplog.at_level(logging.INFO, logger="unlearning_jobs.engine.guard.filter"):
        decision = guard.check_output(LEAK)
    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert caplog.records, "an acted decision is logged"
    text = " ".join(decision.reasons) + json.dumps(decision.as_dict()) + logged
    for raw in RAW_VALUES:
        assert raw.lower() not in text.lower(), raw


def test_exported_rules_give_the_same_decisions_as_the_guard(guard, refusing_guard, rule_set, hasher):
    exported = export_rules(rule_set, hasher=hasher)
    for text in (LEAK, BENIGN, "He lives in London.", "Bill.Smith @ example dot com"):
        mine = guard.check_output(text, prompt="Where does Bill Smith-Jones live?")
        theirs = check_text_against_exported_rules(
            text, exported, KEY, prompt="Where does Bill Smith-Jones live?"
        )
        assert (theirs.action, theirs.text, theirs.matches) == (
            mine.action,
            mine.text,
            mine.matches,
        )
        assert check_text_against_exported_rules(text, exported, KEY, direction="input") == guard.check_input(
            text
        )
    as_dict = json.loads(exported)
    as_dict["policy"]["mode"] = "refuse"
    assert check_text_against_exported_rules(LEAK, as_dict, KEY).action == "refuse"
    assert guard_from_exported_rules(exported, KEY) is guard_from_exported_rules(exported, KEY)


def test_exported_rules_with_the_wrong_key_fail_clearly(rule_set, hasher):
    exported = export_rules(rule_set, hasher=hasher)
    with pytest.raises(ValueError, match="not the key"):
        check_text_against_exported_rules(LEAK, exported, b"wrong-key-0123456789abcdef")
    with pytest.raises(ValueError, match="direction"):
        check_text_against_exported_rules(LEAK, exported, KEY, direction="sideways")


def test_guard_refuses_a_hasher_with_another_key_id(rule_set):
    with pytest.raises(ValueError, match="would match nothing"):
        Guard(rule_set, KeyedHasher(key=KEY, key_id="other"))


def test_wrap_prompt_prepends_the_system_prompt(guard):
    wrapped = guard.wrap_prompt("Hello")
    assert wrapped.startswith(guard.policy.system_prompt) and wrapped.endswith("\n\nHello")


def test_run_keeps_a_refused_prompt_from_the_model(refusing_guard, guard):
    calls = []

    def generate(prompt: str) -> str:
        calls.append(prompt)
        return "He lives at 12 Baker Street."

    refused = refusing_guard.run("Where does Bill Smith-Jones live?", generate=generate)
    assert refused.action == "refuse" and refused.output is None and calls == []
    redacted = guard.run("Where does Bill Smith-Jones live?", generate=generate)
    assert calls and "Smith-Jones" not in calls[0] and calls[0].startswith(guard.policy.system_prompt)
    assert redacted.text == "He lives at [REDACTED]." and redacted.action == "redact"


def test_policy_entity_types_limit_what_is_acted_on(rule_set, hasher):
    email_only = Guard(rule_set, hasher, GuardPolicy(entity_types={"EMAIL"}))
    decision = email_only.check_output(LEAK)
    assert {m.entity_type for m in decision.matches} == {"EMAIL"}


def test_the_guard_engine_imports_without_django():
    code = (
        "import sys; import unlearning_jobs.engine.guard, unlearning_jobs.engine.guard.measure, "
        "unlearning_jobs.engine.guard.synthetic; print('django' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_corroborated_names_spare_namesakes_but_let_name_only_questions_through(rule_set, hasher):
    strict = Guard(rule_set, hasher, GuardPolicy(name_match="corroborated"))
    assert strict.check_output("Bill Smith-Jones won the village quiz.").action == "allow"
    assert strict.check_input("Which city does Bill Smith-Jones live in?").action == "allow"
    decision = strict.check_output("Bill Smith-Jones, ACC-123456, lives in London.")
    assert {m.entity_type for m in decision.matches} == {"PERSON", "ACCOUNT_ID", "LOCATION"}
    answer = strict.check_output("It is Bill Smith-Jones.", prompt="Who holds account ACC 123456?")
    assert [m.entity_type for m in answer.matches] == ["PERSON"]


def test_a_city_shared_by_many_subjects_is_matched_for_the_one_present(hasher):
    from unlearning_jobs.engine.guard import RuleSet, rules_from_identifiers

    rules = []
    for index in range(20):
        rules += rules_from_identifiers(
            hasher=hasher,
            subject_ref=f"req-{index}",
            names=[f"Ann Lee{chr(97 + index)}x"],
            locations=["Leeds"],
        )
    guard = Guard(RuleSet(key_id=hasher.key_id, version=1, rules=rules), hasher)
    decision = guard.check_output("Ann Leedx moved to Leeds.")
    assert [(m.entity_type, m.subject_ref) for m in decision.matches] == [
        ("PERSON", "req-3"),
        ("LOCATION", "req-3"),
    ]
    assert guard.check_output("Leeds is lovely in May.").action == "allow"
