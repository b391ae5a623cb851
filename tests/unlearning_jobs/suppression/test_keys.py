"""Guard rules are hashed under each deployment's own key (HKDF from the guard master key), never the index key."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from compliance.models import AuditEvent
from requests_app.identifiers import SubjectIdentifiers, pii_hasher
from tests.factories.jobs import *  # noqa: F401,F403
from tests.factories.jobs import model_train, request_reviewed
from unlearning_jobs.engine.guard import check_text_against_exported_rules
from unlearning_jobs.engine.pii.entities import EntityType
from unlearning_jobs.engine.pii.normalise import normalise_value
from unlearning_jobs.models import SuppressionRule, SuppressionRuleSet
from unlearning_jobs.suppression import services as suppression
from unlearning_jobs.suppression.guard import deployment_guard
from unlearning_jobs.suppression.keys import deployment_hasher, rule_set_hasher

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]

PHONE = "+44 20 7946 0011"
ADA_WITH_PHONE = SubjectIdentifiers(names=("Ada Quill",), emails=("ada.quill@example.org",), phones=(PHONE,))


@pytest.fixture
def model(tickets, engineer):
    return model_train(dataset_version=tickets, engineer=engineer).produced_model


@pytest.fixture
def reviewed(officer, tickets):
    return request_reviewed(officer=officer, subject=ADA_WITH_PHONE)


def _deployment(name, model, engineer):
    return suppression.deployment_create(
        name=name, model_version=model, policy={"mode": "redact"}, actor=engineer
    )


def _phone_hash(hasher) -> str:
    return hasher.hash(EntityType.PHONE, normalise_value(EntityType.PHONE, PHONE, default_region="GB"))


def test_a_rule_set_reveals_nothing_without_its_deployment_key(model, engineer, reviewed, officer):
    deployment = _deployment("chat", model, engineer)
    suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer
    )
    export = suppression.deployment_rules_export(deployment)
    hashes = {rule["hash"] for rule in export["rules"]}
    own = deployment_hasher(deployment)

    # Whoever holds the index key and hashes every phone number of a region finds no one here.
    assert _phone_hash(pii_hasher()) not in hashes
    assert _phone_hash(own) in hashes
    assert export["key_id"] == own.key_id and export["key_id"].startswith(f"guard-d{deployment.pk}:")
    assert export["key_id"] != pii_hasher().key_id
    # A serving stack given the deployment's key suppresses the number; the index key is refused.
    text = f"Call her on {PHONE} today."
    decision = check_text_against_exported_rules(text, json.dumps(export), bytes(own.key))
    assert decision.action == "redact" and PHONE not in decision.text
    with pytest.raises(ValueError, match="not the key"):
        check_text_against_exported_rules(text, json.dumps(export), bytes(pii_hasher().key))


def test_two_deployments_rules_for_the_same_person_differ(model, engineer, reviewed, officer):
    first, second = _deployment("chat", model, engineer), _deployment("support", model, engineer)
    sets = [
        suppression.suppression_rules_add_for_request(deployment=d, erasure_request=reviewed, actor=officer)
        for d in (first, second)
    ]
    hashes = [
        set(SuppressionRule.objects.filter(rule_set=s).values_list("value_hash", flat=True)) for s in sets
    ]

    assert sets[0].rule_count == sets[1].rule_count > 0
    assert hashes[0].isdisjoint(hashes[1])
    assert sets[0].key_id != sets[1].key_id


def test_rules_under_the_index_key_are_served_refused_for_export_and_rekeyed(
    model, engineer, reviewed, officer
):
    deployment = _deployment("chat", model, engineer)
    # A rule set as Lethe made it before deployment keys: hashed under the PII index's key.
    legacy_rules = suppression.subject_rules_for_request(reviewed, hasher=pii_hasher()).rules
    legacy = SuppressionRuleSet.objects.create(
        deployment=deployment,
        version=2,
        key_id=pii_hasher().key_id,
        reason="made under the index key",
        fingerprint="0" * 64,
        rule_count=len(legacy_rules),
        subject_count=1,
        counts={},
    )
    SuppressionRule.objects.bulk_create(
        SuppressionRule(
            rule_set=legacy, entity_type=r.entity_type, value_hash=r.value_hash, subject_ref=r.subject_ref
        )
        for r in legacy_rules
    )
    deployment.active_rule_set = legacy
    deployment.save(update_fields=["active_rule_set"])

    # Inside Lethe it is still enforced (with the key it was made under); it never leaves Lethe.
    assert rule_set_hasher(legacy).key_id == pii_hasher().key_id
    assert deployment_guard(deployment).check_output(f"Her number is {PHONE}.").action == "redact"
    with pytest.raises(ValidationError, match="re-key"):
        suppression.deployment_rules_export(deployment)

    out = StringIO()
    call_command("guard_rules_rekey", stdout=out)
    deployment.refresh_from_db()
    rekeyed = deployment.active_rule_set
    assert "re-keyed as v3" in out.getvalue()
    assert rekeyed.version == 3 and rekeyed.key_id == deployment_hasher(deployment).key_id
    stored = set(SuppressionRule.objects.filter(rule_set=rekeyed).values_list("value_hash", flat=True))
    assert _phone_hash(deployment_hasher(deployment)) in stored and _phone_hash(pii_hasher()) not in stored
    assert rekeyed.subject_count == 1 and rekeyed.rule_count == len(legacy_rules)
    event = AuditEvent.objects.filter(action="suppression_rules.rekeyed").get()
    assert event.details["rekeyed_from_key_id"] == pii_hasher().key_id
    assert suppression.deployment_rules_export(deployment)["key_id"] == rekeyed.key_id
    # Nothing left to do the second time.
    out = StringIO()
    call_command("guard_rules_rekey", stdout=out)
    assert "already under its own key" in out.getvalue()


def test_a_new_master_key_changes_every_deployment_key_and_the_old_one_serves_until_rekeyed(
    model, engineer, reviewed, officer, settings
):
    deployment = _deployment("chat", model, engineer)
    before = suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer
    )
    old_master = settings.LETHE_GUARD_MASTER_KEY
    settings.LETHE_GUARD_MASTER_KEY = b"a-new-guard-master-key-for-the-rotation-test-0123"
    with pytest.raises(ValidationError, match="LETHE_GUARD_RETIRED_MASTER_KEYS"):
        rule_set_hasher(before)
    settings.LETHE_GUARD_RETIRED_MASTER_KEYS = [old_master]
    assert rule_set_hasher(before).key_id == before.key_id != deployment_hasher(deployment).key_id

    # The next change of the rules re-keys every subject's rules under the new key.
    after = suppression.suppression_rules_remove_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer, reason="withdrawn"
    )
    assert after.key_id == deployment_hasher(deployment).key_id and after.rule_count == 0
    again = suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer
    )
    new_hashes = set(SuppressionRule.objects.filter(rule_set=again).values_list("value_hash", flat=True))
    old_hashes = set(SuppressionRule.objects.filter(rule_set=before).values_list("value_hash", flat=True))
    assert again.rule_count == before.rule_count and new_hashes.isdisjoint(old_hashes)


def test_the_deployment_key_command_prints_that_deployments_key_only(model, engineer):
    import base64

    deployment = _deployment("chat", model, engineer)
    out = StringIO()
    call_command("guard_deployment_key", "chat", stdout=out)
    lines = dict(line.split(" ", 1) for line in out.getvalue().splitlines())
    assert lines["key_id"] == deployment_hasher(deployment).key_id
    assert base64.b64decode(lines["key_base64"]) == bytes(deployment_hasher(deployment).key)
    assert base64.b64decode(lines["key_base64"]) != bytes(pii_hasher().key)
