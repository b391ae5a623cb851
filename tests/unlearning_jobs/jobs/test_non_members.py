"""Records a model never saw: held out by its training job, measured against by verification, and
the point an unlearning run may stop at (``forget_loss_target_from="non_members"``), the two
kept apart so that a run is not judged on the records it stopped on."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.factories.jobs import (  # noqa: F401  (fixtures)
    data_dir,
    fast_jobs,
    model_train,
    request_reviewed,
    run_inline,
    tickets,
)
from unlearning_jobs.decisions import services as decisions
from unlearning_jobs.jobs.records import (
    dataset_version_training_pairs,
    model_training_ids,
    non_member_stop_records,
    non_member_stop_records_offered,
    records_texts,
    training_holdout_split,
)
from unlearning_jobs.models import DatasetVersion, JobStatus, ReingestionHit, UnlearningJob
from unlearning_jobs.verification.runner import verification_inputs

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]

#: A few steps on the tiny model, measured at every step so the target can stop it.
QUICK = {"max_steps": 3, "eval_every": 1, "batch_size": 2, "retain_batch_size": 2, "retain_eval_size": 4}


def test_the_holdout_split_is_by_record_id_and_the_same_every_time():
    pairs = [(f"R{n:04d}", f"text {n}") for n in range(2000)]
    trained, held_out = training_holdout_split(pairs, fraction=0.2)
    assert 300 < len(held_out) < 500 and len(trained) + len(held_out) == 2000
    assert training_holdout_split(pairs, fraction=0.2) == (trained, held_out)
    # A record keeps its side whatever else the version holds, and order is kept.
    assert training_holdout_split(pairs[::-1], fraction=0.2)[1] == held_out[::-1]
    assert training_holdout_split(pairs, fraction=0.0) == (pairs, [])
    with pytest.raises(ValueError, match="holdout_fraction"):
        training_holdout_split(pairs, fraction=0.6)


def test_a_model_trained_with_a_holdout_is_verified_against_it_less_what_a_run_may_stop_on(
    engineer, officer, tickets, settings
):
    settings.LETHE_VERIFY_MIN_HOLDOUT = 2
    job = model_train(dataset_version=tickets, engineer=engineer, holdout_fraction=0.3)
    source = job.produced_model
    every = [record_id for record_id, _ in dataset_version_training_pairs(tickets)]
    trained = model_training_ids(Path(source.path))
    held_out = [record_id for record_id in every if record_id not in set(trained)]
    assert job.metrics["held_out_records"] == len(held_out) >= 4
    assert f"({len(held_out)} held out, never trained on)" in job.log
    assert sorted(trained + held_out) == sorted(every)

    decided = _decide_npo(officer, source, QUICK)
    inputs = verification_inputs(forget_record_pks=decided.forget_record_pks, original=source)
    forget_ids = set(
        tickets.records.filter(pk__in=decided.forget_record_pks).values_list("record_id", flat=True)
    )
    for_stop = [
        (record.record_id, text)
        for record, text in records_texts(
            non_member_stop_records(tickets, trained_ids=trained, forget_ids=forget_ids)
        )
    ]
    non_members = [record_id for record_id in held_out if record_id not in forget_ids]
    sizes = inputs["sample_sizes"]
    assert len(for_stop) == len(non_members) // 2 > 0
    assert sizes["holdout_synthetic"] == 0 and sizes["holdout_kept_for_stop"] == len(for_stop)
    # Verification measures the other held-out records, never the ones a run stops on.
    assert sizes["holdout"] == len(non_members) - len(for_stop)
    assert not set(inputs["holdout_texts"]) & {text for _, text in for_stop}


def test_verification_measures_the_forget_records_the_original_was_trained_on(
    engineer, officer, tickets, settings
):
    """A record held out of training is a non-member whoever it names: counted among the forget
    set's members it would pull the membership and VerbMem rows towards a pass."""
    settings.LETHE_VERIFY_MIN_HOLDOUT = 2
    source = model_train(dataset_version=tickets, engineer=engineer, holdout_fraction=0.5).produced_model
    decided = _decide_npo(officer, source, QUICK)
    trained = set(model_training_ids(Path(source.path)))
    forget_ids = set(
        tickets.records.filter(pk__in=decided.forget_record_pks).values_list("record_id", flat=True)
    )
    # The person has records on both sides of the split.
    assert forget_ids & trained and forget_ids - trained

    inputs = verification_inputs(forget_record_pks=decided.forget_record_pks, original=source)
    sizes = inputs["sample_sizes"]
    assert {record["record_id"] for record in inputs["forget_records"]} == forget_ids & trained
    assert sizes["forget"] == len(forget_ids & trained)
    assert sizes["forget_never_trained"] == len(forget_ids - trained)
    assert sizes["forget_source"] == (
        f"the forget set less {len(forget_ids - trained)} record(s) the original was never trained on"
    )


def test_an_approximate_run_unlearns_only_the_forget_records_its_source_was_trained_on(
    engineer, officer, tickets
):
    """The held-out records are removed from the data set all the same; only the weights' run skips
    them (ascending on a text the model never saw makes it stand out to a membership test)."""
    source = model_train(dataset_version=tickets, engineer=engineer, holdout_fraction=0.5).produced_model
    job = _decide_npo(officer, source, QUICK)
    trained = set(model_training_ids(Path(source.path)))
    forget_ids = set(tickets.records.filter(pk__in=job.forget_record_pks).values_list("record_id", flat=True))
    assert forget_ids & trained and forget_ids - trained

    assert run_inline(job) == "succeeded", UnlearningJob.objects.get(pk=job.pk).log
    job.refresh_from_db()
    assert job.metrics["forget_records_never_trained"] == len(forget_ids - trained)
    assert job.metrics["forget_records_unlearned"] == len(forget_ids & trained)
    assert f"{len(forget_ids - trained)} forget record(s) the source was never trained on" in job.log
    derived = job.produced_dataset_version
    assert not derived.records.filter(record_id__in=forget_ids).exists()


def test_records_held_back_after_the_run_never_put_what_it_stopped_on_into_verification(
    engineer, officer, tickets, settings
):
    """The guard holding records back between the job and its verification (another request
    approved meanwhile) must not shift which records verification keeps apart: here two earlier
    non-members and one the run stopped on are held back after it ran."""
    settings.LETHE_VERIFY_MIN_HOLDOUT = 2
    source = model_train(dataset_version=tickets, engineer=engineer, holdout_fraction=0.5).produced_model
    decided = _decide_npo(officer, source, QUICK)
    trained = model_training_ids(Path(source.path))
    forget_ids = set(
        tickets.records.filter(pk__in=decided.forget_record_pks).values_list("record_id", flat=True)
    )
    used = non_member_stop_records_offered(tickets, trained_ids=trained, forget_ids=forget_ids)
    used_texts = {text for _, text in records_texts(used)}
    earlier = [
        record
        for record in tickets.records.order_by("ordinal")
        if record.record_id not in set(trained) | forget_ids and record not in used
    ]
    assert len(used) >= 2 and len(earlier) >= 2
    for record in (*earlier[:2], used[0]):
        ReingestionHit.objects.create(
            version=tickets, record=record, erasure_request=decided.erasure_request, entity_types=["EMAIL"]
        )

    inputs = verification_inputs(forget_record_pks=decided.forget_record_pks, original=source)
    assert not set(inputs["holdout_texts"]) & used_texts
    assert inputs["sample_sizes"]["holdout_kept_for_stop"] == len(used)
    # A later run stops on the same records less the one now held back, never on another.
    assert non_member_stop_records_offered(tickets, trained_ids=trained, forget_ids=forget_ids) == used[1:]


def _decide_npo(officer, source, params):
    erasure_request = request_reviewed(officer=officer)
    decisions.erasure_decision_approve(
        erasure_request=erasure_request,
        actor=officer,
        rationale="Art. 17(1)(a)",
        plan=[{"model_version": source.pk, "framework": "deletion", "method": "npo", "params": params}],
    )
    return UnlearningJob.objects.get(erasure_request=erasure_request, method="npo")


def test_an_npo_job_stops_on_the_records_its_source_never_saw(engineer, officer, tickets):
    source = model_train(dataset_version=tickets, engineer=engineer, holdout_fraction=0.3).produced_model
    job = _decide_npo(
        officer,
        source,
        {**QUICK, "forget_loss_target_from": "non_members", "max_retain_loss_increase": None},
    )
    assert run_inline(job) == "succeeded", UnlearningJob.objects.get(pk=job.pk).log
    job.refresh_from_db()
    stop_count = job.metrics["non_member_records"]
    assert job.metrics["forget_loss_target_from"] == "non_members" and stop_count > 0
    assert f"forget-loss target: the loss of {stop_count} record(s)" in job.log
    # The target is what those records scored, measured on the run's own weights.
    assert job.metrics["forget_loss_target"] == pytest.approx(job.metrics["non_member_loss_after"], rel=1e-4)


def test_an_npo_job_asked_to_stop_on_non_members_fails_having_changed_nothing_when_there_are_none(
    engineer, officer, tickets
):
    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    versions_before = DatasetVersion.objects.count()
    job = _decide_npo(officer, source, {**QUICK, "forget_loss_target_from": "non_members"})
    assert run_inline(job) == JobStatus.FAILED
    job.refresh_from_db()
    assert "needs records of" in job.error and "holdout_fraction" in job.error
    assert job.produced_model is None and DatasetVersion.objects.count() == versions_before


def test_the_api_and_the_page_refuse_a_holdout_out_of_range(client, engineer, tickets):
    api = APIClient()
    api.force_authenticate(engineer)
    too_large = api.post(
        "/api/v1/jobs/",
        {"kind": "train", "dataset_version": tickets.pk, "params": {"holdout_fraction": 0.7}},
        format="json",
    )
    accepted = api.post(
        "/api/v1/jobs/",
        {"kind": "train", "dataset_version": tickets.pk, "params": {"holdout_fraction": 0.25}},
        format="json",
    )
    client.force_login(engineer)
    page = client.post(
        "/jobs/train/", {"dataset_version": tickets.pk, "name": "m", "holdout_fraction": "a quarter"}
    )
    assert too_large.status_code == 400 and "holdout_fraction" in too_large.json()["params"][0]
    assert accepted.status_code == 201 and accepted.json()["params"]["holdout_fraction"] == 0.25
    assert page.status_code == 400 and "Give a number." in page.content.decode()
