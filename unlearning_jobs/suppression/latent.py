"""Latent-information suppression (framework 3): derived-data stores and what a model still infers.

Data derived from the training records or inferred about people (profiles, inferences,
embeddings, caches, feature tables, retrieval indexes) is registered per store, by an engineer on
the derived-stores page, ``POST /api/v1/derived-stores/`` or ``manage.py register_derived_store``,
with the ids of the records it was built from. Each entry names its subject by the index's keyed
hash of one of their identifiers, or its source record by the keyed hash of the record's id, so
deleting what a request reaches is a lookup against the request's identifier hashes and its
confirmed records, never a decryption. Latent probes ask deduction and inverse questions ("Which city does <name> live
in?", "Who lives at <address>?") and judge the model's greedy answers by hashing their candidate
spans against the expected values: with the guard off (what the model infers) and on (what leaks).

Runners: ``latent_delete`` (delete the entries; probe before and after when the model loads) and
``latent_probe`` (probe only).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q

from compliance import roles
from compliance.audit import audit_event_record
from compliance.text import control_character_found
from requests_app.identifiers import pii_hasher
from requests_app.matching.review import forget_set_for_request
from unlearning_jobs.datasets.storage import record_id_hash
from unlearning_jobs.jobs.runner import JobOutcome
from unlearning_jobs.models import (
    DatasetRecord,
    Deployment,
    DerivedDataKind,
    DerivedDataStore,
    DerivedEntry,
    ModelVersion,
)
from unlearning_jobs.suppression.guard import deployment_guard, model_generate_fn, subject_facts_for_request

logger = logging.getLogger(__name__)

LATENT_NEW_TOKENS = 16


MAX_RECORD_KEYS = 100_000
MAX_STORE_TEXT = {"name": 200, "location": 1024, "owner": 200}


class DerivedStoreInvalid(ValidationError):
    """The store cannot be registered as given; ``message_dict`` names the field."""


def _store_text(field: str, value) -> str:
    text = (value or "").strip() if isinstance(value, str) else ""
    if not text:
        raise DerivedStoreInvalid({field: [f"The {field} is required."]})
    if len(text) > MAX_STORE_TEXT[field]:
        raise DerivedStoreInvalid(
            {field: [f"The {field} is {len(text)} characters long; at most {MAX_STORE_TEXT[field]}."]}
        )
    if control_character_found(text):
        raise DerivedStoreInvalid({field: [f"The {field} holds control characters."]})
    return text


def _record_keys_clean(record_keys, dataset) -> list[str]:
    """Return the distinct record keys, each the id of a record of the store's data set."""
    keys = sorted({str(key).strip() for key in (record_keys or ()) if str(key).strip()})
    if not keys:
        return []
    if dataset is None:
        raise DerivedStoreInvalid(
            {
                "dataset": [
                    "Record keys name records of a data set: choose the data set the store was built from."
                ]
            }
        )
    if len(keys) > MAX_RECORD_KEYS:
        raise DerivedStoreInvalid(
            {"record_keys": [f"At most {MAX_RECORD_KEYS} record keys per registration."]}
        )
    known: set[str] = set()
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        known.update(
            DatasetRecord.objects.filter(version__dataset=dataset, record_id__in=chunk).values_list(
                "record_id", flat=True
            )
        )
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise DerivedStoreInvalid(
            {
                "record_keys": [
                    f"{len(unknown)} of {len(keys)} record keys are not record ids of {dataset.name} "
                    f"(first: {unknown[0][:60]!r}); give the ids the data set's records have."
                ]
            }
        )
    return keys


def derived_store_register(
    *,
    name: str,
    kind: str,
    location: str,
    owner: str,
    dataset=None,
    record_keys=(),
    actor,
) -> DerivedDataStore:
    """Register a store of data derived from training records or inferred about people.

    ``record_keys`` are the ids of the records of ``dataset`` the store holds something built
    from (an embedding, a cached answer, a feature row, an index entry): each becomes an entry
    keyed by the record id's keyed hash, so a request whose forget set holds that record deletes
    it (``derived_entries_delete_for_request``). Unknown ids are refused, none stored. The location
    is where the store lives for its owner (a URI, a table name); Lethe never opens it.
    """
    if not roles.actor_may(actor, roles.OPERATE_JOBS, system=True):
        raise PermissionDenied("Only engineers register derived-data stores.")
    name = _store_text("name", name)
    location = _store_text("location", location)
    owner = _store_text("owner", owner)
    if kind not in DerivedDataKind.values:
        raise DerivedStoreInvalid({"kind": [f"Choose one of: {', '.join(DerivedDataKind.values)}."]})
    if DerivedDataStore.objects.filter(name=name).exists():
        raise DerivedStoreInvalid({"name": [f"A derived-data store is already named {name!r}."]})
    keys = _record_keys_clean(record_keys, dataset)
    hashes = sorted({record_id_hash(key) for key in keys})
    with transaction.atomic():
        store = DerivedDataStore.objects.create(
            name=name, kind=kind, location=location, owner=owner, dataset=dataset
        )
        DerivedEntry.objects.bulk_create(
            [
                DerivedEntry(store=store, record_key_hash=digest, description="built from a training record")
                for digest in hashes
            ],
            batch_size=2000,
        )
        audit_event_record(
            actor=actor,
            action="derived_store.registered",
            target=store,
            details={
                "name": name,
                "kind": kind,
                "owner": owner,
                "dataset_id": dataset.pk if dataset else None,
                "record_keys": len(hashes),
                # What was registered, checkable later without listing the ids.
                "record_key_hashes_sha256": hashlib.sha256("\n".join(hashes).encode("ascii")).hexdigest(),
            },
        )
    logger.info("derived_store.registered", extra={"store_id": store.pk, "record_keys": len(hashes)})
    return store


def derived_stores_list():
    """Return the registered stores with their data set and the number of entries each holds."""
    return (
        DerivedDataStore.objects.select_related("dataset")
        .annotate(
            entries_total=Count("entries"),
            record_entries=Count("entries", filter=~Q(entries__record_key_hash="")),
        )
        .order_by("name")
    )


def derived_entry_record(*, store: DerivedDataStore, subject_key_hash: str, description: str) -> DerivedEntry:
    """Record that ``store`` holds an entry about the subject keyed by ``subject_key_hash``."""
    if len(subject_key_hash) != 64:
        raise ValidationError("subject_key_hash must be a 64-character keyed hash.")
    return DerivedEntry.objects.create(
        store=store, subject_key_hash=subject_key_hash, description=description[:300]
    )


def _request_record_filter(erasure_request) -> Q | None:
    """Return the filter of entries built from the request's confirmed records, or None."""
    by_dataset: dict[int, set[str]] = {}
    for record in forget_set_for_request(erasure_request):
        by_dataset.setdefault(record.version.dataset_id, set()).add(record_id_hash(record.record_id))
    condition = None
    for dataset_id, hashes in by_dataset.items():
        part = Q(store__dataset_id=dataset_id, record_key_hash__in=sorted(hashes))
        condition = part if condition is None else condition | part
    return condition


def derived_entries_delete_for_request(*, erasure_request, actor) -> dict[str, int]:
    """Delete the derived entries of the request's subject; return counts per store.

    An entry goes when it is keyed by one of the request's identifier hashes, or when it was
    built from one of the request's confirmed records (its store's data set, the record id's
    keyed hash).
    """
    digests = list(erasure_request.identifier_hashes.values_list("digest", flat=True))
    condition = Q(subject_key_hash__in=digests) & ~Q(subject_key_hash="")
    by_record = _request_record_filter(erasure_request)
    if by_record is not None:
        condition |= by_record
    with transaction.atomic():
        entries = DerivedEntry.objects.filter(condition).select_related("store")
        counts: dict[str, int] = {}
        for store_name in entries.values_list("store__name", flat=True):
            counts[store_name] = counts.get(store_name, 0) + 1
        deleted = entries.delete()[0] if counts else 0
        audit_event_record(
            actor=actor,
            action="derived_entries.deleted",
            target=erasure_request,
            details={
                "erasure_request_id": erasure_request.pk,
                "deleted": deleted,
                "by_store": dict(sorted(counts.items())),
            },
        )
    logger.info(
        "derived_entries.deleted", extra={"erasure_request_id": erasure_request.pk, "deleted": deleted}
    )
    return dict(sorted(counts.items()))


def latent_probe_measure(
    *, model_version: ModelVersion, facts, deployment: Deployment | None = None, generate=None
) -> dict:
    """Return what the model infers from latent probes, without and (given a deployment) with the guard.

    ``inferred_rate`` is the share of probes whose raw greedy answer holds an expected value;
    ``guarded_leak_rate`` the share whose guarded answer still does. ``inferred_kinds`` counts
    per probe kind; ``inferred_not_stated`` those whose answer no single record states.
    """
    from unlearning_jobs.engine.guard import latent_probes
    from unlearning_jobs.engine.guard.detect import Detector
    from unlearning_jobs.engine.guard.digest import KeyedDigest
    from unlearning_jobs.engine.pii.entities import EntityType

    hasher = pii_hasher()
    probes = latent_probes(facts, hasher=hasher)
    if not probes:
        return {"probes": 0, "inferred_rate": None, "guarded_leak_rate": None}
    generate = generate or model_generate_fn(model_version, max_new_tokens=LATENT_NEW_TOKENS)
    detector = Detector(digest=KeyedDigest(hasher), entity_types=frozenset(EntityType))
    guard = deployment_guard(deployment) if deployment is not None else None
    inferred = guarded = not_stated = 0
    kinds: dict[str, int] = {}
    for probe in probes:
        expected = {leak.value_hash for leak in probe.expected}
        if detector.find(generate(probe.prompt), expected):
            inferred += 1
            kinds[probe.kind] = kinds.get(probe.kind, 0) + 1
            not_stated += int(not probe.stated_in_one_record)
        if guard is not None:
            result = guard.run(probe.prompt, generate=generate)
            guarded += int(result.action != "refuse" and bool(detector.find(result.text, expected)))
    return {
        "probes": len(probes),
        "inferred": inferred,
        "inferred_rate": inferred / len(probes),
        "inferred_kinds": kinds,
        "inferred_not_stated": not_stated,
        "guarded_leak_rate": guarded / len(probes) if guard is not None else None,
        "guard_rule_set_version": deployment.active_rule_set.version if deployment is not None else None,
    }


def latent_params_clean(params: Mapping[str, Any] | None) -> dict:
    """Return a latent decision's parameters: optionally the deployment whose guard is probed too."""
    params = dict(params or {})
    unknown = set(params) - {"deployment_id"}
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    deployment_id = params.get("deployment_id")
    if deployment_id is not None and (isinstance(deployment_id, bool) or not isinstance(deployment_id, int)):
        raise ValueError("deployment_id must be the id of a deployment")
    return {"deployment_id": deployment_id}


def latent_job_params_validate(method: str, params: Mapping[str, Any] | None) -> dict:
    return latent_params_clean(params)


def _probe(job, context, label: str) -> dict | None:

    if job.source_model is None:
        return None
    deployment = None
    if job.params.get("deployment_id"):
        deployment = Deployment.objects.select_related("active_rule_set").get(pk=job.params["deployment_id"])
    else:
        deployment = (
            Deployment.objects.filter(model_version=job.source_model)
            .select_related("active_rule_set")
            .order_by("-pk")
            .first()
        )
    try:
        facts = subject_facts_for_request(job.erasure_request)
        return latent_probe_measure(model_version=job.source_model, facts=facts, deployment=deployment)
    except (FileNotFoundError, OSError, ValidationError) as error:
        context.log(f"latent probes {label}: not measured ({type(error).__name__})")
        return {"not_measured": type(error).__name__}


def run_latent_delete_job(context):
    """Probe, delete the subject's derived entries, probe again; record counts and rates."""

    job = context.job
    before = _probe(job, context, "before")
    counts = derived_entries_delete_for_request(erasure_request=job.erasure_request, actor=None)
    after = _probe(job, context, "after")
    context.log(f"derived entries deleted: {sum(counts.values())} in {len(counts)} store(s)")
    context.progress(1, 1)
    return JobOutcome(
        metrics={
            "derived_deleted": sum(counts.values()),
            "derived_by_store": counts,
            "latent_before": before,
            "latent_after": after,
        }
    )


def run_latent_probe_job(context):
    """Measure what the model still infers about the job's request's subject."""

    measured = _probe(context.job, context, "now")
    context.progress(1, 1)
    return JobOutcome(metrics={"latent": measured})
