"""Output suppression on the Django side: deployments, their versioned rules, and the guard jobs.

Services (writes) and selectors (reads) for ``Deployment`` and ``SuppressionRuleSet``. Rules are
built by the engine (``engine.guard.rules_from_identifiers``) from a request's decrypted
identifiers and the quasi-identifiers found in its confirmed records, hashed the way the index
hashes but under the deployment's own key (``suppression.keys``), never the index key. Nothing
raw is stored or logged: a rule is an entity type, a keyed hash and the request's reference.

A rule set hashed under another key (the index key, before deployment keys existed, or a retired
guard master key) is re-keyed when the deployment's next version is written: every subject's
rules are built again from the request's identifiers under the deployment's key.

A change of rules never edits a version: it writes the next one (the previous rules plus or
minus one subject's) and makes it active, with an audit event, in one transaction.

``suppression_connect()`` (from ``AppConfig.ready()``) registers the job runners of the kinds
``guard``, ``guard_probe``, ``latent_probe`` and ``latent_delete``, offers their methods in the
officer's decision, queues a ``guard_probe`` of every deployment a ``guard`` job changed, and adds
deployments that received rules to the audit report's recipients and the probes' block and
false-positive rates to its verification section.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from compliance import roles
from compliance.audit import audit_event_record
from compliance.text import control_character_found
from requests_app.identifiers import identifiers_decrypt
from requests_app.matching.review import forget_set_for_request
from requests_app.models import ErasureRequest
from unlearning_jobs.datasets.storage import dataset_records_texts
from unlearning_jobs.engine.guard.rules import RECORD_LINKED_TYPES, RECORD_QUASI_TYPES, RULE_LISTS
from unlearning_jobs.engine.pii.entities import EntityType
from unlearning_jobs.engine.pii.linking import linked_spellings, value_findings, value_key
from unlearning_jobs.models import Deployment, ModelVersion, PiiFinding, SuppressionRule, SuppressionRuleSet
from unlearning_jobs.suppression.keys import deployment_hasher, rule_set_needs_rekey

logger = logging.getLogger(__name__)

PERSON = EntityType.PERSON.value


def _actor_check(actor, *permissions: str) -> None:
    if actor is None:
        return
    if not actor.is_active or not any(actor.has_perm(p) for p in permissions):
        raise PermissionDenied(f"{roles.actor_name(actor)} may not change suppression rules.")


def guard_policy_from(data: Mapping[str, Any] | None):
    from unlearning_jobs.engine.guard import GuardPolicy

    return GuardPolicy.from_dict({**GuardPolicy().as_dict(), **dict(data or {})})


def deployment_policy(deployment: Deployment):
    """Return the deployment's ``GuardPolicy``."""
    return guard_policy_from(deployment.policy)


def rule_set_engine(rule_set: SuppressionRuleSet, *, policy=None):
    """Return the engine's ``RuleSet`` for a stored version (rules read in one query)."""
    from unlearning_jobs.engine.guard import RuleSet
    from unlearning_jobs.engine.guard import SuppressionRule as EngineRule

    rules = tuple(
        EngineRule(entity_type, value_hash, subject_ref)
        for entity_type, value_hash, subject_ref in rule_set.rules.values_list(
            "entity_type", "value_hash", "subject_ref"
        ).iterator()
    )
    return RuleSet(
        key_id=rule_set.key_id,
        version=rule_set.version,
        rules=rules,
        policy=policy or deployment_policy(rule_set.deployment),
    )


def _write_version(
    *,
    deployment: Deployment,
    rules: Iterable,
    reason: str,
    actor,
    erasure_request=None,
    action: str,
    extra: dict | None = None,
) -> SuppressionRuleSet:
    """Store ``rules`` as the deployment's next rule-set version, make it active, and audit it."""
    from unlearning_jobs.engine.guard import RuleSet

    locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
    previous = locked.active_rule_set
    version = (previous.version + 1) if previous else 1
    unique = {
        (
            r.entity_type.value if hasattr(r.entity_type, "value") else str(r.entity_type),
            r.value_hash,
            r.subject_ref,
        ): r
        for r in rules
    }
    engine_set = RuleSet(
        key_id=deployment_hasher(locked).key_id,
        version=version,
        rules=tuple(unique.values()),
        policy=guard_policy_from(locked.policy),
    )
    rule_set = SuppressionRuleSet.objects.create(
        deployment=locked,
        version=version,
        key_id=engine_set.key_id,
        reason=reason[:500],
        erasure_request=erasure_request,
        fingerprint=engine_set.fingerprint(),
        rule_count=len(unique),
        subject_count=len(engine_set.subjects()),
        counts=engine_set.counts(),
        created_by=actor,
    )
    SuppressionRule.objects.bulk_create(
        [
            SuppressionRule(rule_set=rule_set, entity_type=kind, value_hash=value_hash, subject_ref=ref)
            for kind, value_hash, ref in unique
        ],
        batch_size=2000,
    )
    locked.active_rule_set = rule_set
    locked.save(update_fields=["active_rule_set"])
    audit_event_record(
        actor=actor,
        action=action,
        target=rule_set,
        details={
            "deployment_id": locked.pk,
            "deployment": locked.name,
            "model_version_id": locked.model_version_id,
            "rule_set_version": version,
            "previous_version": previous.version if previous else None,
            "fingerprint": rule_set.fingerprint,
            "key_id": rule_set.key_id,
            "rules": rule_set.rule_count,
            "subjects": rule_set.subject_count,
            "counts": rule_set.counts,
            "erasure_request_id": erasure_request.pk if erasure_request else None,
            **(extra or {}),
        },
    )
    deployment.active_rule_set = rule_set
    return rule_set


def deployment_create(
    *, name: str, model_version: ModelVersion, policy: Mapping[str, Any] | None, actor
) -> Deployment:
    """Register a deployment of ``model_version`` behind a guard with ``policy``, and its empty rules v1.

    Raise ``ValidationError`` when the name is taken or the policy is not a valid ``GuardPolicy``.
    """
    _actor_check(actor, roles.OPERATE_JOBS)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["Give the deployment a name."]})
    if control_character_found(name):
        raise ValidationError({"name": ["The name holds a control character; remove it."]})
    try:
        cleaned = guard_policy_from(policy).as_dict()
    except ValueError as error:
        raise ValidationError({"policy": [str(error)]}) from None
    with transaction.atomic():
        if Deployment.objects.filter(name=name).exists():
            raise ValidationError({"name": [f"A deployment named {name!r} exists."]})
        deployment = Deployment.objects.create(
            name=name, model_version=model_version, policy=cleaned, created_by=actor
        )
        audit_event_record(
            actor=actor,
            action="deployment.created",
            target=deployment,
            details={
                "name": name,
                "model_version_id": model_version.pk,
                "weights_sha256": model_version.weights_sha256,
                "policy": {k: v for k, v in cleaned.items() if k not in ("system_prompt", "refusal_message")},
            },
        )
        _write_version(
            deployment=deployment,
            rules=(),
            reason="deployment created",
            actor=actor,
            action="suppression_rules.versioned",
        )
    return deployment


def deployment_policy_update(
    *, deployment: Deployment, policy: Mapping[str, Any], actor
) -> SuppressionRuleSet:
    """Change the deployment's policy; the same rules become a new version, since the policy is part of it."""
    _actor_check(actor, roles.OPERATE_JOBS)
    try:
        cleaned = guard_policy_from(policy).as_dict()
    except ValueError as error:
        raise ValidationError({"policy": [str(error)]}) from None
    with transaction.atomic():
        Deployment.objects.filter(pk=deployment.pk).update(policy=cleaned)
        deployment.policy = cleaned
        rules, rekeyed_from = _current_rules(deployment)
        return _write_version(
            deployment=deployment,
            rules=rules,
            reason="policy changed",
            actor=actor,
            action="suppression_rules.versioned",
            extra={
                "policy_mode": cleaned["mode"],
                "entity_types": cleaned["entity_types"],
                **_rekey_details(rekeyed_from),
            },
        )


def subject_ref_for(erasure_request) -> str:
    """Return the opaque reference the rules name a request's subject by (its reference number)."""
    return erasure_request.reference


def _values(values: Iterable[str]) -> list[str]:
    return [v for v in values if isinstance(v, str) and v.strip()]


def records_identifier_values(erasure_request, *, records=None, texts=None) -> dict[str, list[str]]:
    """Return the values the request's confirmed records add to its rules, by the rules' list name.

    Every place and date of birth the records hold (``engine.guard.rules.RECORD_QUASI_TYPES``),
    and the names, e-mails, phones, addresses and account ids that the records link to the
    person: held by at least two of them and mostly by them across the data sets searched
    (``engine.pii.linking``).
    A request that gives only an e-mail so still suppresses the name and phone its person's
    records show, and a namesake beside another phone is told apart. Read from the stored copies
    at the findings' spans, in memory only. ``records`` (the request's confirmed records) and
    ``texts`` (theirs, by primary key) are read here unless a caller that holds them passes them.
    """
    records = forget_set_for_request(erasure_request) if records is None else records
    if not records:
        return {}
    texts = dataset_records_texts(records) if texts is None else texts
    values: dict[str, list[str]] = {
        RULE_LISTS[kind]: [] for kind in [*RECORD_QUASI_TYPES, *RECORD_LINKED_TYPES]
    }
    findings = PiiFinding.objects.filter(
        record__in=[r.pk for r in records], entity_type__in=[*RECORD_QUASI_TYPES, *RECORD_LINKED_TYPES]
    ).values_list(
        "record_id", "version_id", "entity_type", "start", "end", "value_hash", "sorted_hash", "recogniser"
    )
    linkable, versions = [], set()
    for record_pk, version_id, kind, start, end, value_hash, sorted_hash, recogniser in findings:
        if kind in RECORD_QUASI_TYPES:
            value = texts[record_pk][start:end].strip()
            if value and value not in values[RULE_LISTS[kind]]:
                values[RULE_LISTS[kind]].append(value)
        else:
            linkable.append((record_pk, kind, start, end, value_hash, sorted_hash, recogniser))
            versions.add(version_id)
    linked = linked_spellings(value_findings(linkable), lambda keys: _value_holders(keys, versions), texts)
    for kind, spellings in linked.items():
        values[RULE_LISTS[kind]].extend(spellings)
    return values


def _value_holders(
    keys: Iterable[tuple[str, str]], versions: Iterable[int]
) -> dict[tuple[str, str], set[int]]:
    """Return every record holding each (kind, hash) in the versions: names by their sorted hash."""
    keys = set(keys)
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)
    if not keys:
        return holders
    names = [h for kind, h in keys if kind == PERSON]
    others = [h for kind, h in keys if kind != PERSON]
    # Names as the NER found them (with a token-sorted hash), in any word order.
    lookup = Q(entity_type=PERSON, sorted_hash__in=names) | Q(value_hash__in=others)
    rows = PiiFinding.objects.filter(lookup, version_id__in=list(versions)).values_list(
        "record_id", "entity_type", "value_hash", "sorted_hash", "recogniser"
    )
    for record_pk, kind, value_hash, sorted_hash, recogniser in rows:
        key = value_key(kind, value_hash, sorted_hash, recogniser)
        if key in keys:
            holders[key].add(record_pk)
    return holders


class SubjectRules(NamedTuple):
    """A request's engine rules, the values refused per list, and the values its records added."""

    rules: tuple
    skipped: dict[str, int]
    from_records: dict[str, int]


def subject_rules_for_request(erasure_request, *, hasher) -> SubjectRules:
    """Return the request's engine rules under ``hasher`` (a deployment's, ``keys.deployment_hasher``).

    Built from the request's identifiers and what its confirmed records add
    (``records_identifier_values``). Each value is built on its own, so one value the engine
    refuses (a one-word name) is counted and skipped instead of leaving the whole subject
    unsuppressed; a refused value from the records is counted under ``records_<list>``.
    """
    from unlearning_jobs.engine.guard import rules_from_identifiers

    if not erasure_request.identifiers_encrypted:
        raise ValidationError("The request's identifiers were purged: rules cannot be built any more.")
    subject = identifiers_decrypt(erasure_request.identifiers_encrypted)
    given = {
        "names": _values(subject.names),
        "emails": _values(subject.emails),
        "phones": _values(subject.phones),
        "addresses": _values(subject.addresses),
        "account_ids": _values(subject.account_ids),
    }
    from_records = records_identifier_values(erasure_request)
    ref = subject_ref_for(erasure_request)
    rules: dict = {}
    skipped: dict[str, int] = {}
    added: dict[str, int] = {}
    for source, lists in (("", given), ("records_", from_records)):
        for list_name, values in lists.items():
            for value in values:
                try:
                    built = rules_from_identifiers(
                        hasher=hasher,
                        subject_ref=ref,
                        default_region=settings.LETHE_PHONE_REGION,
                        **{list_name: [value]},
                    )
                except ValueError:
                    skipped[source + list_name] = skipped.get(source + list_name, 0) + 1
                    continue
                new = {
                    (r.entity_type, r.value_hash): r
                    for r in built
                    if (r.entity_type, r.value_hash) not in rules
                }
                if source and new:
                    added[list_name] = added.get(list_name, 0) + 1
                rules.update(new)
    return SubjectRules(tuple(rules.values()), skipped, added)


def suppression_rules_add_for_request(
    *, deployment: Deployment, erasure_request, actor, reason: str = ""
) -> SuppressionRuleSet:
    """Add the request's subject to the deployment's rules as a new version; return the active version.

    The subject's earlier rules in this deployment are replaced, so running it again after the
    identifiers changed leaves no stale hashes. When nothing would change, no version is written
    and an audit event says so.
    """
    _actor_check(actor, roles.OPERATE_JOBS, roles.MANAGE_REQUESTS)
    new_rules, skipped, from_records = subject_rules_for_request(
        erasure_request, hasher=deployment_hasher(deployment)
    )
    if not new_rules:
        raise ValidationError("None of the request's identifiers can be made a suppression rule.")
    ref = subject_ref_for(erasure_request)
    with transaction.atomic():
        deployment = Deployment.objects.select_related("active_rule_set").get(pk=deployment.pk)
        current = rule_set_engine(deployment.active_rule_set) if deployment.active_rule_set else None
        rules, rekeyed_from = _current_rules(deployment, skip_ref=ref)
        kept = [r for r in rules if r.subject_ref != ref]
        before = {(r.entity_type, r.value_hash, r.subject_ref) for r in (current.rules if current else ())}
        after = {(r.entity_type, r.value_hash, r.subject_ref) for r in [*kept, *new_rules]}
        if current is not None and before == after:
            audit_event_record(
                actor=actor,
                action="suppression_rules.unchanged",
                target=deployment.active_rule_set,
                details={
                    "deployment_id": deployment.pk,
                    "erasure_request_id": erasure_request.pk,
                    "rule_set_version": current.version,
                },
            )
            return deployment.active_rule_set
        rule_set = _write_version(
            deployment=deployment,
            rules=[*kept, *new_rules],
            actor=actor,
            erasure_request=erasure_request,
            reason=reason or f"rules added for {ref}",
            action="suppression_rules.added",
            extra={
                "subject_ref": ref,
                "subject_rules": len(new_rules),
                "skipped_values": skipped,
                "values_from_confirmed_records": from_records,
                **_rekey_details(rekeyed_from),
            },
        )
    logger.info(
        "suppression_rules.added",
        extra={"deployment_id": deployment.pk, "rule_set_id": rule_set.pk, "rules": rule_set.rule_count},
    )
    return rule_set


def suppression_rules_remove_for_request(
    *, deployment: Deployment, erasure_request, actor, reason: str
) -> SuppressionRuleSet:
    """Remove the request's subject from the deployment's rules as a new version (e.g. a withdrawal)."""
    _actor_check(actor, roles.OPERATE_JOBS, roles.MANAGE_REQUESTS)
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why the subject's rules are removed."]})
    ref = subject_ref_for(erasure_request)
    with transaction.atomic():
        deployment = Deployment.objects.select_related("active_rule_set").get(pk=deployment.pk)
        current = rule_set_engine(deployment.active_rule_set)
        if not any(r.subject_ref == ref for r in current.rules):
            return deployment.active_rule_set
        rules, rekeyed_from = _current_rules(deployment, skip_ref=ref)
        kept = [r for r in rules if r.subject_ref != ref]
        return _write_version(
            deployment=deployment,
            rules=kept,
            actor=actor,
            erasure_request=erasure_request,
            reason=reason,
            action="suppression_rules.removed",
            extra={
                "subject_ref": ref,
                "subject_rules": sum(1 for r in current.rules if r.subject_ref == ref),
                **_rekey_details(rekeyed_from),
            },
        )


def _current_rules(deployment: Deployment, *, skip_ref: str | None = None) -> tuple[list, str | None]:
    """Return the active rules under the deployment's current key, and the key id they were re-keyed from.

    Rules under another key are built again from each subject's request (``skip_ref``'s are left
    out: the caller replaces or removes them). Raise ``ValidationError`` naming the subjects whose
    identifiers are gone: their rules cannot be re-keyed, and the old version stays active.
    """
    rule_set = deployment.active_rule_set
    if rule_set is None:
        return [], None
    current = rule_set_engine(rule_set)
    if not rule_set_needs_rekey(rule_set):
        return list(current.rules), None
    hasher = deployment_hasher(deployment)
    refs = sorted({r.subject_ref for r in current.rules} - {skip_ref})
    requests = {r.reference: r for r in ErasureRequest.objects.filter(reference__in=refs)}
    lost = [ref for ref in refs if ref not in requests or not requests[ref].identifiers_encrypted]
    if lost:
        raise ValidationError(
            f"The rules of {len(lost)} subject(s) ({', '.join(lost[:5])}) cannot be re-keyed under the "
            "deployment's key: their requests' identifiers were purged. Restore the retired key or "
            "remove those subjects' rules first (docs/security.md, 'Keys and their rotation')."
        )
    rules: list = []
    for ref in refs:
        rules.extend(subject_rules_for_request(requests[ref], hasher=hasher).rules)
    return rules, rule_set.key_id


def _rekey_details(rekeyed_from: str | None) -> dict:
    return {"rekeyed_from_key_id": rekeyed_from} if rekeyed_from else {}


def deployment_rules_rekey(*, deployment: Deployment, actor) -> SuppressionRuleSet | None:
    """Hash the deployment's active rules under its current key as a new version; None when they are.

    Run by ``manage.py guard_rules_rekey`` after the guard master key changed, or for rule sets made
    under the index key; any other change of a deployment's rules re-keys them too.
    """
    _actor_check(actor, roles.OPERATE_JOBS)
    with transaction.atomic():
        deployment = Deployment.objects.select_related("active_rule_set").get(pk=deployment.pk)
        if deployment.active_rule_set is None or not rule_set_needs_rekey(deployment.active_rule_set):
            return None
        rules, rekeyed_from = _current_rules(deployment)
        return _write_version(
            deployment=deployment,
            rules=rules,
            actor=actor,
            reason="re-keyed under the deployment's key",
            action="suppression_rules.rekeyed",
            extra=_rekey_details(rekeyed_from),
        )


# --- selectors ------------------------------------------------------------------------------------


def deployment_list():
    return Deployment.objects.select_related("model_version", "active_rule_set").order_by("name")


def deployment_for_model(model_version: ModelVersion) -> Deployment | None:
    """Return the newest deployment of a model version (the one its generate endpoint serves)."""
    return (
        Deployment.objects.filter(model_version=model_version)
        .select_related("active_rule_set")
        .order_by("-created_at", "-pk")
        .first()
    )


def deployment_rules_export(deployment: Deployment) -> dict:
    """Return the active rules as the engine's export document (hashes, types, key id, key check).

    Only rules under the deployment's own key leave Lethe; others (the index key's, a retired
    master key's) are refused until re-keyed, so an export never needs the index key to be used.
    """
    from unlearning_jobs.engine.guard.rules import rule_set_as_dict

    current = Deployment.objects.select_related("active_rule_set").get(pk=deployment.pk)
    if rule_set_needs_rekey(current.active_rule_set):
        raise ValidationError(
            "The deployment's rules are not hashed under its own key yet: re-key them first "
            "(manage.py guard_rules_rekey)."
        )
    return rule_set_as_dict(rule_set_engine(current.active_rule_set), hasher=deployment_hasher(current))


#: Who may read deployments and their rules, and who may generate behind a guard.
READ_DEPLOYMENT_PERMISSIONS = (roles.VIEW_JOBS, roles.VIEW_REQUESTS)
GENERATE_PERMISSIONS = (roles.OPERATE_JOBS, roles.MANAGE_REQUESTS)


def user_may_read_deployments(user) -> bool:
    return user.is_authenticated and roles.actor_may(user, *READ_DEPLOYMENT_PERMISSIONS)


def user_may_generate(user) -> bool:
    return user.is_authenticated and roles.actor_may(user, *GENERATE_PERMISSIONS)


def recipients_for_report(erasure_request) -> dict:
    """Return the deployments that received the request's rules: Art. 19 recipients of the erasure."""
    items = []
    seen: set[int] = set()
    for rule_set in (
        SuppressionRuleSet.objects.filter(erasure_request=erasure_request)
        .select_related("deployment__model_version")
        .order_by("created_at", "pk")
    ):
        if rule_set.deployment_id in seen:
            continue
        seen.add(rule_set.deployment_id)
        items.append(
            {
                "kind": "model_deployment",
                "name": f"{rule_set.deployment.name} (model version #{rule_set.deployment.model_version_id})",
                "notified_at": rule_set.created_at,
                "method": f"guard rules v{rule_set.version}",
                "acknowledged_at": rule_set.created_at,
            }
        )
    return {"recipients": items}


# --- wiring ---------------------------------------------------------------------------------------
