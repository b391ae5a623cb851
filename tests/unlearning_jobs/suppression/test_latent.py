"""Latent-information suppression: derived entries deleted by request, and what a tiny model still infers.

The tiny model cannot learn a deduction in seconds, so the probe's answer is planted: the model
is trained on the direct fact in the probe's own words. What this proves is the measurement
path (greedy answer, keyed-hash detection of the expected city, guard on and off), not that a
model deduces; the deduction itself is exercised by the engine's probe tests.
"""

from __future__ import annotations

import json

import pytest

from compliance.models import AuditEvent
from tests.factories.jobs import *  # noqa: F401,F403
from tests.factories.jobs import (
    TINY_RECIPE,
    dataset_version_make,
    model_train,
    request_reviewed,
)
from unlearning_jobs.engine.guard import SubjectFacts
from unlearning_jobs.models import DerivedEntry
from unlearning_jobs.suppression import latent
from unlearning_jobs.suppression import services as suppression

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]


def test_a_request_deletes_its_subjects_derived_entries_and_records_counts(officer, engineer, tickets):
    reviewed = request_reviewed(officer=officer)
    store = latent.derived_store_register(
        name="profiles",
        kind="profiles",
        location="s3://profiles",
        owner="growth team",
        dataset=tickets.dataset,
        actor=engineer,
    )
    digest = reviewed.identifier_hashes.filter(entity_type="EMAIL").values_list("digest", flat=True)[0]
    latent.derived_entry_record(store=store, subject_key_hash=digest, description="inferred home city")
    latent.derived_entry_record(store=store, subject_key_hash="f" * 64, description="someone else")

    counts = latent.derived_entries_delete_for_request(erasure_request=reviewed, actor=officer)

    assert counts == {"profiles": 1} and list(
        DerivedEntry.objects.values_list("subject_key_hash", flat=True)
    ) == ["f" * 64]
    event = AuditEvent.objects.get(action="derived_entries.deleted")
    assert event.details["deleted"] == 1 and event.details["by_store"] == {"profiles": 1}


def test_latent_probes_find_a_planted_inference_and_report_a_city_the_rules_do_not_hold(
    engineer, officer, data_dir
):
    fact = "Which city does Ada Quill live in? Ada Quill lives in Leeds."
    records = [{"id": f"L{n}", "text": fact} for n in range(24)]
    version = dataset_version_make(engineer=engineer, name="facts", records=records, index=False)
    model = model_train(
        dataset_version=version,
        engineer=engineer,
        recipe={**TINY_RECIPE, "epochs": 12, "learning_rate": 1e-2},
    ).produced_model
    facts = SubjectFacts(subject_ref="ER-TEST-1", name="Ada Quill", cities=("Leeds",))

    unguarded = latent.latent_probe_measure(model_version=model, facts=facts)

    assert unguarded["probes"] == 1 and unguarded["inferred"] == 1, unguarded
    assert unguarded["inferred_kinds"] == {"latent_deduction": 1}
    tickets_version = dataset_version_make(engineer=engineer)
    reviewed = request_reviewed(officer=officer)
    deployment = suppression.deployment_create(name="d", model_version=model, policy=None, actor=engineer)
    suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer
    )
    guarded = latent.latent_probe_measure(model_version=model, facts=facts, deployment=deployment)
    # The request's rules hold the name and e-mail but no city (its records state none): the guard
    # redacts the name from prompt and answer, and the inferred city still gets through. The
    # metric says so instead of reporting the guard as a cure.
    assert guarded["inferred_rate"] == 1.0 and guarded["guarded_leak_rate"] == 1.0
    assert "leeds" not in json.dumps(guarded).lower() and tickets_version.pk


# --- derived-data stores registered by a person ----------------------------------------------------


def _confirmed_record_ids(erasure_request) -> list[str]:
    from requests_app.matching.review import forget_set_for_request

    return sorted({record.record_id for record in forget_set_for_request(erasure_request)})


def test_a_store_registered_with_record_keys_loses_the_entries_built_from_a_requests_records(
    officer, engineer, tickets
):
    reviewed = request_reviewed(officer=officer)
    confirmed = _confirmed_record_ids(reviewed)
    others = sorted(set(tickets.records.values_list("record_id", flat=True)) - set(confirmed))[:3]
    assert confirmed and others
    store = latent.derived_store_register(
        name="support-embeddings",
        kind="embeddings",
        location="s3://ml/support/embeddings-v3",
        owner="search team",
        dataset=tickets.dataset,
        record_keys=confirmed + others + [confirmed[0]],  # a repeated id counts once
        actor=engineer,
    )
    assert store.entries.count() == len(confirmed) + len(others)
    event = AuditEvent.objects.get(action="derived_store.registered")
    assert event.details["record_keys"] == len(confirmed) + len(others)
    # Only keyed hashes are kept: no record id in the entries or the audit event.
    stored = json.dumps(event.details) + str(list(store.entries.values_list("record_key_hash", flat=True)))
    assert not any(record_id in stored for record_id in confirmed + others)

    counts = latent.derived_entries_delete_for_request(erasure_request=reviewed, actor=officer)

    assert counts == {"support-embeddings": len(confirmed)}
    assert store.entries.count() == len(others)


def test_a_store_is_refused_whole_for_an_unknown_record_key_or_a_missing_data_set(officer, engineer, tickets):
    from django.core.exceptions import PermissionDenied, ValidationError

    known = tickets.records.values_list("record_id", flat=True)[0]
    with pytest.raises(ValidationError, match="1 of 2 record keys"):
        latent.derived_store_register(
            name="cache",
            kind="caches",
            location="redis://cache/0",
            owner="platform",
            dataset=tickets.dataset,
            record_keys=[known, "NO-SUCH-RECORD"],
            actor=engineer,
        )
    with pytest.raises(ValidationError, match="data set"):
        latent.derived_store_register(
            name="cache", kind="caches", location="x", owner="y", record_keys=[known], actor=engineer
        )
    with pytest.raises(PermissionDenied):
        latent.derived_store_register(name="cache", kind="caches", location="x", owner="y", actor=officer)
    assert (
        not DerivedEntry.objects.exists()
        and not AuditEvent.objects.filter(action="derived_store.registered").exists()
    )


def test_engineers_register_stores_on_the_page_the_api_and_the_command(
    client, engineer, officer, tickets, data_dir, settings
):
    from django.core.management import call_command
    from rest_framework.test import APIClient

    ids = list(tickets.records.values_list("record_id", flat=True)[:4])
    client.force_login(engineer)
    page = client.post(
        "/jobs/derived-stores/",
        {
            "name": "features",
            "kind": "feature_tables",
            "location": "warehouse.features_v2",
            "owner": "analytics",
            "dataset": str(tickets.dataset.pk),
            "record_keys": "\n".join(ids[:2]),
        },
        follow=True,
    )
    assert page.status_code == 200 and "registered with 2 record keys" in page.content.decode()
    listing = client.get("/jobs/derived-stores/").content.decode()
    assert "features" in listing and 'id="register-derived-store"' in listing

    api = APIClient()
    api.force_authenticate(engineer)
    created = api.post(
        "/api/v1/derived-stores/",
        {
            "name": "retrieval",
            "kind": "retrieval_index",
            "location": "qdrant://support",
            "owner": "search",
            "dataset": tickets.dataset.pk,
            "record_keys": ids,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["record_keys"] == 4
    bad = api.post(
        "/api/v1/derived-stores/",
        {
            "name": "r2",
            "kind": "retrieval_index",
            "location": "q",
            "owner": "s",
            "dataset": tickets.dataset.pk,
            "record_keys": ["NOPE"],
        },
        format="json",
    )
    assert bad.status_code == 400 and "record_keys" in bad.json()
    officer_api = APIClient()
    officer_api.force_authenticate(officer)
    assert officer_api.post("/api/v1/derived-stores/", {}, format="json").status_code == 403
    listed = {store["name"]: store for store in officer_api.get("/api/v1/derived-stores/").json()}
    assert listed["features"]["record_keys"] == 2 and listed["retrieval"]["kind"] == "retrieval_index"

    keys_file = data_dir / "cache.ids"
    keys_file.write_text("\n".join(ids[:3]) + "\n", encoding="utf-8")
    call_command(
        "register_derived_store",
        "--name=answer-cache",
        "--kind=caches",
        "--location=redis://cache/1",
        "--owner=platform",
        f"--dataset={tickets.dataset.name}",
        f"--record-keys-file={keys_file}",
        f"--user={engineer.username}",
    )
    assert DerivedEntry.objects.filter(store__name="answer-cache").count() == 3
    assert AuditEvent.objects.filter(action="derived_store.registered").count() == 3
