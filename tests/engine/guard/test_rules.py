"""Suppression rules: hashes only, the index's hashes, every form, a validated JSON export."""

from __future__ import annotations

import json

import pytest

from unlearning_jobs.engine.guard import (
    GuardPolicy,
    RuleSet,
    SuppressionRule,
    export_rules,
    load_rules,
)
from unlearning_jobs.engine.guard.digest import KeyedDigest
from unlearning_jobs.engine.guard.rules import (
    address_forms,
    key_check,
    name_forms,
    rules_from_identifiers,
)
from unlearning_jobs.engine.pii.entities import EntityType
from unlearning_jobs.engine.pii.hashing import KeyedHasher
from unlearning_jobs.engine.pii.normalise import (
    name_token_sorted,
    normalise_address,
    normalise_email,
    normalise_name,
    normalise_phone,
)

from .conftest import KEY_ID, RAW_VALUES, SUBJECT


def test_exported_rules_hold_no_raw_value(rule_set, hasher):
    exported = export_rules(rule_set, hasher=hasher)
    repr_text = repr(rule_set)
    for raw in RAW_VALUES:
        for form in {raw, raw.lower(), raw.upper()}:
            assert form not in exported, form
            assert form not in repr_text, form


def test_rules_hold_the_index_hashes_of_each_identifier(subject_rules, hasher):
    hashes = {(rule.entity_type, rule.value_hash) for rule in subject_rules}
    name = SUBJECT.name
    expected = [
        (EntityType.PERSON, normalise_name(name)),
        (EntityType.PERSON, name_token_sorted(name)),
        (EntityType.EMAIL, normalise_email(SUBJECT.emails[0])),
        (EntityType.PHONE, normalise_phone(SUBJECT.phones[0], "GB")),
        (EntityType.ADDRESS, normalise_address(SUBJECT.addresses[0])),
        (EntityType.ADDRESS, normalise_address("12 Baker Street")),
    ]
    for kind, normalised in expected:
        assert (kind, hasher.hash(kind, normalised)) in hashes, (kind, normalised)


def test_fast_digest_reproduces_the_index_hasher(hasher):
    digest = KeyedDigest(hasher)
    long_key = KeyedHasher(key=b"k" * 100, key_id="long")
    for kind in EntityType:
        for value in ("john smith", "+447911123456", "ünïcode välue", "x" * 300):
            assert digest(kind, value) == hasher.hash(kind, value)
            assert digest.for_type(kind)(value) == hasher.hash(kind, value)
            assert KeyedDigest(long_key)(kind, value) == long_key.hash(kind, value)


def test_name_forms_cover_order_initials_nicknames_and_hyphenated_family_names():
    forms = name_forms("William Jérôme Smith-Jones")
    for form in (
        "william jerome smith jones",
        "jerome jones smith william",
        "bill smith jones",
        "jones smith william",
        "w smith jones",
        "smith jones w",
        "william j smith jones",
    ):
        assert form in forms, form
    assert "bill jones" not in forms and "william jones" not in forms  # someone else


def test_name_forms_take_initials_from_the_given_name_not_its_nicknames():
    forms = name_forms("Alexander Hoffmann")
    assert {"a hoffmann", "hoffmann a", "sandy hoffmann"} <= forms
    assert not {"s hoffmann", "hoffmann s", "x hoffmann", "l hoffmann"} & forms


def test_name_forms_keep_initials_in_order_so_other_people_do_not_match():
    forms = name_forms("Lucas Barroso Jara")
    assert "lucas j" in forms
    assert "j lucas" not in forms  # J. Lucas is someone else
    assert "lucas barroso" in forms


@pytest.mark.parametrize("name", ["Madonna", "Jacobus van", "Conferma da", "de la Cruz"])
def test_one_word_name_is_refused(hasher, name):
    # A particle is no word of a name on its own: "Jacobus van" would act on every Jacobus.
    with pytest.raises(ValueError, match=r"names\[0\]: a one-word name"):
        rules_from_identifiers(hasher=hasher, subject_ref="req-1", names=[name])


def test_a_name_with_particles_and_two_words_of_its_own_is_kept(hasher):
    assert rules_from_identifiers(hasher=hasher, subject_ref="req-1", names=["Pieter van der Berg"])
    assert rules_from_identifiers(hasher=hasher, subject_ref="req-1", names=["Seán O Neill"])


def test_address_forms_cover_street_part_and_street_first_layouts():
    assert address_forms("12 Baker Street, London NW1 6XE") == {
        "12 baker street",
        "12 baker street london nw1 6xe",
    }
    assert "beckergasse 8" in address_forms("Beckergasse 8, 1010 Wien")
    flat = address_forms("Flat 3, 12 Baker St, London")
    assert "flat 3" not in flat and "12 baker street" in flat


def test_malformed_identifier_names_its_list_and_position(hasher):
    with pytest.raises(ValueError, match=r"phones\[1\]"):
        rules_from_identifiers(hasher=hasher, subject_ref="req-1", phones=["07911 123456", "12"])
    with pytest.raises(ValueError, match=r"emails\[0\]"):
        rules_from_identifiers(hasher=hasher, subject_ref="req-1", emails=["not an address"])
    with pytest.raises(ValueError, match="no identifiers"):
        rules_from_identifiers(hasher=hasher, subject_ref="req-1")
    with pytest.raises(ValueError, match="not one string"):
        rules_from_identifiers(hasher=hasher, subject_ref="req-1", emails="a@b.com")


@pytest.mark.parametrize("ref", ["John Smith", "john@example.com", "", "x" * 200])
def test_subject_ref_must_be_an_opaque_id(ref):
    with pytest.raises(ValueError, match="subject_ref"):
        SuppressionRule(EntityType.EMAIL, "a" * 64, ref)


def test_rule_set_validates_its_fields(subject_rules):
    with pytest.raises(ValueError, match="version"):
        RuleSet(key_id=KEY_ID, version=0, rules=subject_rules)
    with pytest.raises(ValueError, match="key_id"):
        RuleSet(key_id=" ", version=1, rules=subject_rules)
    with pytest.raises(ValueError, match="hash"):
        SuppressionRule("EMAIL", "XYZ", "req-1")


def test_export_round_trips_and_checks_the_key(rule_set, hasher):
    exported = export_rules(rule_set, hasher=hasher)
    document = json.loads(exported)
    assert document["format"] == "lethe-guard-rules" and document["version"] == 1
    assert document["key_id"] == KEY_ID and document["rule_set_version"] == 3
    assert set(document["rules"][0]) == {"type", "hash", "subject"}
    loaded = load_rules(exported, hasher=hasher)
    assert set(loaded.rules) == set(rule_set.rules)
    assert loaded.policy == rule_set.policy and loaded.version == 3
    assert loaded.fingerprint() == rule_set.fingerprint()
    wrong_key = KeyedHasher(key=b"another-key-0123456789", key_id=KEY_ID)
    with pytest.raises(ValueError, match="not the key"):
        load_rules(exported, hasher=wrong_key)
    with pytest.raises(ValueError, match="hashed under key"):
        load_rules(exported, hasher=KeyedHasher(key=b"another-key-0123456789", key_id="other"))
    assert document["key_check"] == key_check(hasher)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="other"), "not a guard rule export"),
        (lambda d: d.update(version=2), "unsupported guard rule export version 2"),
        (lambda d: d.pop("key_id"), "lacks 'key_id'"),
        (lambda d: d.update(rules={}), "'rules' must be a list"),
        (lambda d: d["rules"][0].update(hash="zz"), r"rules\[0\]: rule hash"),
        (lambda d: d["rules"][0].update(type="SHOE_SIZE"), r"rules\[0\]: unknown entity type"),
        (lambda d: d["rules"][0].pop("subject"), r"rules\[0\] must be an object"),
        (lambda d: d["policy"].update(mode="shout"), "policy: guard mode"),
        (lambda d: d["policy"].update(colour="red"), "policy: policy has unknown keys"),
    ],
)
def test_loader_rejects_malformed_exports_with_clear_errors(rule_set, hasher, change, message):
    document = json.loads(export_rules(rule_set, hasher=hasher))
    change(document)
    with pytest.raises(ValueError, match=message):
        load_rules(json.dumps(document))


def test_loader_rejects_text_that_is_not_json():
    with pytest.raises(ValueError, match="not valid JSON"):
        load_rules("{nope")


def test_table_shares_hashes_between_subjects(hasher):
    one = rules_from_identifiers(hasher=hasher, subject_ref="req-1", names=["Ann Lee"])
    two = rules_from_identifiers(
        hasher=hasher, subject_ref="req-2", names=["Ann Lee"], emails=["ann@lee.test"]
    )
    table = RuleSet(key_id=KEY_ID, version=1, rules=one + two).table()
    name_hash = hasher.hash(EntityType.PERSON, "ann lee")
    assert table[name_hash] == ("req-1", "req-2")


def test_policy_validates_and_round_trips():
    policy = GuardPolicy(mode="refuse", entity_types={"EMAIL", "PERSON"}, phone_regions=("gb",))
    assert policy.entity_types == frozenset({EntityType.EMAIL, EntityType.PERSON})
    assert policy.phone_regions == ("GB",)
    assert GuardPolicy.from_dict(policy.as_dict()) == policy
    with pytest.raises(ValueError, match="guard mode"):
        GuardPolicy(mode="block")
    with pytest.raises(ValueError, match="unknown entity type"):
        GuardPolicy(entity_types={"SHOE_SIZE"})
    with pytest.raises(ValueError, match="quasi-identifiers"):
        GuardPolicy(entity_types={"LOCATION"})
    with pytest.raises(ValueError, match="redaction_token"):
        GuardPolicy(redaction_token="  ")
    with pytest.raises(ValueError, match="alpha-2"):
        GuardPolicy(phone_regions=("GBR",))
    with pytest.raises(ValueError, match="not one string"):
        GuardPolicy(entity_types="EMAIL")


def test_table_collects_many_subjects_sharing_a_value(hasher):
    rules = []
    for index in range(20):
        rules += rules_from_identifiers(
            hasher=hasher,
            subject_ref=f"req-{index}",
            names=[f"Ann Lee{chr(97 + index)}x"],
            locations=["Leeds"],
        )
    table = RuleSet(key_id=KEY_ID, version=1, rules=rules).table()
    assert table[hasher.hash(EntityType.LOCATION, "leeds")] == tuple(f"req-{i}" for i in range(20))
