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
