"""Verification in the application: verify jobs queued after unlearning, stored rows, pages, API,
the completion check and the report section, built through the product's services.

One tiny model memorises a planted subject's e-mail (the record repeated many times); the
officer's decision retrains it exactly without the records; the verify jobs that the success
queues then show extraction on the original and none on the retrain.
"""

from __future__ import annotations

import math

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from requests_app import services as request_services
from requests_app.models import LegalGround
from tests.factories.jobs import *  # noqa: F401,F403
from tests.factories.jobs import run_inline
from tests.factories.verification import (
    PLANTED,
    planted_request_decided,
)
from unlearning_jobs.models import JobStatus, ModelVersion, UnlearningJob, VerificationRun
from unlearning_jobs.verification.services import (
    low_fpr_text,
    request_verification_unfinished_refusal,
    verification_for_report,
    verification_job_create,
    verification_run_assess,
    verify_jobs_of_request,
    verify_params_validate,
)


@pytest.fixture
def verified(data_dir, fast_jobs, engineer, officer, settings):
    """Train, locate, decide an exact retrain, run it, and run the verify jobs its success queued."""
    settings.LETHE_VERIFY_MIN_HOLDOUT = 12
    settings.LETHE_VERIFY_RETAIN_SAMPLE = 24
    retrained = planted_request_decided(engineer=engineer, officer=officer)
    erasure_request = retrained["request"]
    queued = list(verify_jobs_of_request(erasure_request.pk))
    refusal = request_verification_unfinished_refusal(erasure_request)
    for job in queued:
        assert run_inline(job) == "succeeded", UnlearningJob.objects.get(pk=job.pk).log
    erasure_request.refresh_from_db()
    return {
        "request": erasure_request,
        "source": retrained["source"],
        "retrain": retrained["jobs"][0],
        "queued": queued,
        "refusal_while_queued": refusal,
    }


def _run(erasure_request, role) -> VerificationRun:
    return VerificationRun.objects.get(erasure_request=erasure_request, role=role)


@pytest.mark.django_db
def test_a_retrain_success_queues_baseline_and_reference_verifications_that_store_their_rows(
    verified, officer, auditor, client, settings
):
    erasure_request, retrain = verified["request"], verified["retrain"]
    assert [(j.params["role"], j.source_model_id, j.queue) for j in verified["queued"]] == [
        ("original", verified["source"].pk, "gpu"),
        ("reference", retrain.produced_model_id, "gpu"),
    ]
    # While they were queued, completion was refused naming them.
    refusal = verified["refusal_while_queued"]
    assert refusal and all(f"#{job.pk} (verify, queued)" in refusal for job in verified["queued"])
    assert request_verification_unfinished_refusal(erasure_request) is None

    original, reference = _run(erasure_request, "original"), _run(erasure_request, "reference")
    extraction_original = original.results.get(metric="extraction_rate")
    extraction_reference = reference.results.get(metric="extraction_rate")
    assert extraction_original.value > 0 and extraction_original.passed is False
    assert extraction_reference.value == 0 and extraction_reference.passed is True
    assert original.sample_sizes["holdout_synthetic"] == 12 and original.sample_sizes["forget"] == 24
    # The data set held nothing out, so every non-member was synthetic: each membership row says so.
    membership_rows = [r for r in reference.results.all() if "tpr_at_fpr" in r.details]
    assert {r.metric for r in membership_rows} >= {"mia_auc_loss", "mia_auc_min_k"}
    assert all(r.details["n_nonmembers_synthetic"] == 12 for r in membership_rows)
    assert "12 of them synthetic demo-generator records" in low_fpr_text(membership_rows[0].details)
    # No raw identifier is stored anywhere in a run; examples are masked.
    stored = str(list(original.results.values_list("details", flat=True))) + str(original.measurements)
    assert "zephyr.lantern@quietmail.org" not in stored and "Zelda Quixote" not in stored
    assert reference.results.filter(metric="utility_ratio_retain").exists()  # compared with the original
    assert reference.plot_svg.lstrip().startswith("<?xml") and reference.plot_png_base64

    # Shown: the request page, the job page (through the one-line include) and the API.
    client.force_login(officer)
    page = client.get(reverse("unlearning_jobs:verification-request", args=[erasure_request.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-metric="extraction_rate"' in html and "FAIL" in html and "pass" in html
    job_page = client.get(
        reverse("unlearning_jobs:job-detail", args=[verified["queued"][1].pk])
    ).content.decode()
    assert 'id="job-verification"' in job_page and 'id="verification-plot"' in job_page
    api = client.get(f"/api/v1/requests/{erasure_request.pk}/verification/")
    assert api.status_code == 200
    rows = {(run["role"], row["metric"]): row for run in api.json()["runs"] for row in run["results"]}
    assert rows[("original", "extraction_rate")]["passed"] is False
    assert rows[("reference", "extraction_rate")]["value"] == 0
    job_api = client.get(f"/api/v1/jobs/{retrain.pk}/verification/").json()
    assert job_api["run"]["role"] == "reference"

    # The report gets the rows with passed as stored, and the plot.
    section = verification_for_report(erasure_request)
    assert {(r["subject"].split(":")[0], r["metric"], r["passed"]) for r in section["results"]} >= {
        ("Original (baseline)", "extraction_rate", False),
        ("Exact-retrain reference", "extraction_rate", True),
    }
    assert section["figures"] and section["figures"][0]["png_base64"]
    auc_row = next(r for r in section["results"] if r["metric"] == "mia_auc_loss")
    assert auc_row["membership"]["n_nonmembers_synthetic"] == 12
    assert "12 of them synthetic" in auc_row["low_fpr_text"]

    # Auditors read it too; a user with no role does not.
    client.force_login(auditor)
    assert client.get(f"/api/v1/requests/{erasure_request.pk}/verification/").status_code == 200
    nobody = get_user_model().objects.create_user("nobody", password="x-unused-password-1")
    client.force_login(nobody)
    assert client.get(f"/api/v1/requests/{erasure_request.pk}/verification/").status_code == 403
    assert (
        client.get(reverse("unlearning_jobs:verification-request", args=[erasure_request.pk])).status_code
        == 403
    )

    # A threshold turns the stored value into pass or fail exactly at its limit (one training serves both checks).
    value = extraction_original.value
    settings.LETHE_VERIFY_THRESHOLDS = {"extraction_rate": value}
    row = verification_run_assess(run=original, plot=False).results.get(metric="extraction_rate")
    assert row.value == value and row.threshold == value and row.passed is True
    settings.LETHE_VERIFY_THRESHOLDS = {"extraction_rate": math.nextafter(value, -math.inf)}
    row = verification_run_assess(run=original, plot=False).results.get(metric="extraction_rate")
    assert row.value == value and row.passed is False
    first = verification_for_report(erasure_request)["results"][0]
    assert first["metric"] == "extraction_rate" and first["passed"] is False


@pytest.mark.django_db
def test_a_sisa_unlearning_is_verified_shard_by_shard(data_dir, fast_jobs, engineer, officer, settings):
    """The verify jobs of a SISA model store each shard's extraction beside the ensemble's."""
    settings.LETHE_VERIFY_MIN_HOLDOUT = 12
    settings.LETHE_VERIFY_RETAIN_SAMPLE = 24
    erasure_request = planted_request_decided(
        engineer=engineer, officer=officer, plan=(("sisa", {}),), sisa_shards=3
    )["request"]
    for queued in verify_jobs_of_request(erasure_request.pk):
        assert run_inline(queued) == "succeeded", UnlearningJob.objects.get(pk=queued.pk).log
    for role in ("original", "reference"):
        row = _run(erasure_request, role).results.get(metric="extraction_rate")
        shards = row.details["by_shard"]
        assert [shard["shard"] for shard in shards] == [0, 1, 2]
        assert row.value == max([row.details["ensemble_rate"], *(shard["rate"] for shard in shards)])
    original = _run(erasure_request, "original").results.get(metric="extraction_rate")
    reference = _run(erasure_request, "reference").results.get(metric="extraction_rate")
    assert original.value > 0 and reference.value == 0


# --- cheap checks: no model is trained ---------------------------------------------------------------


@pytest.fixture
def a_model(data_dir):
    return ModelVersion.objects.create(name="m", path=str(data_dir / "m"), weights_sha256="0" * 64)


@pytest.mark.django_db
def test_completion_waits_for_a_failed_verification_and_names_it(officer, a_model, data_dir):
    erasure_request = request_services.erasure_request_create(
        subject=PLANTED, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer
    )
    job = verification_job_create(
        model_version=a_model,
        role="original",
        erasure_request_id=erasure_request.pk,
        forget_record_pks=[],
        original_model=a_model,
        enqueue=False,
    )
    assert (
        verification_job_create(
            model_version=a_model,
            role="original",
            erasure_request_id=erasure_request.pk,
            forget_record_pks=[],
            original_model=a_model,
            enqueue=False,
        )
        == job
    )
    UnlearningJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED)
    refusal = request_verification_unfinished_refusal(erasure_request)
    assert f"#{job.pk} (verify, failed)" in refusal
    UnlearningJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    assert request_verification_unfinished_refusal(erasure_request) is None


def test_verify_parameters_refuse_an_unknown_role_or_field():
    assert verify_params_validate("verify", {"role": "produced"})["role"] == "produced"
    for bad in ({"role": "best"}, {"role": "original", "extra": 1}, {"role": "original", "for_job_id": "7"}):
        with pytest.raises(ValueError):
            verify_params_validate("verify", bad)
    with pytest.raises(ValueError):
        verify_params_validate("train", {"role": "original"})


@pytest.mark.django_db
def test_an_auditor_cannot_read_the_verification_of_a_job_outside_requests(
    auditor, engineer, a_model, client
):
    job = verification_job_create(
        model_version=a_model,
        role="original",
        erasure_request_id=None,
        forget_record_pks=[],
        original_model=a_model,
        enqueue=False,
    )
    client.force_login(auditor)
    assert client.get(f"/api/v1/jobs/{job.pk}/verification/").status_code == 404
    client.force_login(engineer)
    response = client.get(f"/api/v1/jobs/{job.pk}/verification/")
    assert response.status_code == 200 and response.json()["run"] is None


# --- robustness and membership at low FPR --------------------------------------------------------------


@pytest.mark.django_db
def test_every_model_is_attacked_and_the_produced_model_gets_recovery_rows(
    data_dir, fast_jobs, engineer, officer, client, settings
):
    """A retrain and an approximate unlearning of one model: the original, the retrain and the
    produced model are all measured with the robustness section, so the produced model's recovery
    rows are judged (not skipped), shown on the pages and carried to the report with their limits."""
    settings.LETHE_VERIFY_MIN_HOLDOUT = 12
    settings.LETHE_VERIFY_RETAIN_SAMPLE = 24
    settings.LETHE_VERIFY_ROBUSTNESS_RELEARN_STEPS = 3
    settings.LETHE_VERIFY_ROBUSTNESS_MAX_EVAL_RECORDS = 8
    quick = {"max_steps": 2, "eval_every": 1, "batch_size": 4, "retain_eval_size": 4}
    erasure_request = planted_request_decided(
        engineer=engineer, officer=officer, plan=(("retrain", {}), ("gradient_ascent", quick))
    )["request"]
    for job in verify_jobs_of_request(erasure_request.pk):
        assert run_inline(job) == "succeeded", UnlearningJob.objects.get(pk=job.pk).log

    runs = {run.role: run for run in VerificationRun.objects.filter(erasure_request=erasure_request)}
    assert set(runs) == {"original", "reference", "produced"}
    for run in runs.values():  # every model was attacked, with the same records
        assert run.measurements["robustness"]["split"] == runs["original"].measurements["robustness"]["split"]
    produced = {row.metric: row for row in runs["produced"].results.all()}
    for metric in ("relearning_recovery", "quantization_8bit_recovery", "quantization_4bit_recovery"):
        row = produced[metric]
        assert row.details["section"] == "robustness" and row.details["limits"].startswith("A pass shows")
        assert "skipped" not in row.details, row.details  # judged against the original and the retrain
        assert row.passed == (row.value is not None and row.value <= row.threshold)
    assert produced["paraphrase_extraction_rate"].n_samples > 0
    # The original is the scale of recovery, not a claim: its recovery rows are listed, not stored.
    assert "relearning_recovery" not in {row.metric for row in runs["original"].results.all()}
    assert any(item.get("section") == "robustness" for item in runs["original"].skipped)
    # The run passes only when its robustness rows pass too.
    assert runs["produced"].passed == all(row.passed for row in produced.values())
    # Membership rows carry TPR at 1 % and 0.1 % FPR with bootstrap intervals.
    membership = produced["privleak_min_k_plus_plus"].details
    assert set(membership["tpr_at_fpr"]) == {"0.01", "0.001"}
    assert len(membership["confidence_intervals"]["tpr@0.01"]) == 2

    client.force_login(officer)
    html = client.get(
        reverse("unlearning_jobs:verification-request", args=[erasure_request.pk])
    ).content.decode()
    assert 'id="robustness-table"' in html and 'data-metric="relearning_recovery"' in html
    assert "A pass shows that fine-tuning" in html and "TPR at 1 % FPR" in html and "95 % CI" in html
    api_rows = [
        row
        for run in client.get(f"/api/v1/requests/{erasure_request.pk}/verification/").json()["runs"]
        for row in run["results"]
    ]
    assert {row["section"] for row in api_rows} == {"verification", "robustness"}

    report_rows = verification_for_report(erasure_request)["results"]
    relearning = next(r for r in report_rows if r["metric"] == "relearning_recovery")
    assert relearning["role"] == "produced" and relearning["section"] == "robustness" and relearning["limits"]
    assert any("TPR at 1 % FPR" in r.get("low_fpr_text", "") for r in report_rows)


@pytest.mark.django_db
def test_robustness_switched_off_leaves_the_produced_model_with_rows_not_measured(a_model, officer, settings):
    """No robustness measured on a produced model: each robustness row is stored as not measured
    (a fail, with the reason), never left out."""
    settings.LETHE_VERIFY_ROBUSTNESS = False
    erasure_request = request_services.erasure_request_create(
        subject=PLANTED, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer
    )
    job = verification_job_create(
        model_version=a_model,
        role="produced",
        erasure_request_id=erasure_request.pk,
        forget_record_pks=[],
        original_model=a_model,
        enqueue=False,
    )
    measurements = {
        "extraction": {
            "rate": 0.0,
            "n_probes": 4,
            "n_leaking": 0,
            "n_subjects_leaking": 0,
            "leaks_by_kind": {},
        },
        "verbmem": {"mean_f1": 0.1, "mean_recall": 0.1, "max_f1": 0.2, "n_records": 4, "n_skipped": 0},
        "membership": {
            "auc": {"loss": 0.5, "zlib": 0.5, "min_k": 0.5, "min_k_plus_plus": 0.5},
            "n_members": 4,
            "n_nonmembers": 4,
            "n_skipped_members": 0,
            "n_skipped_nonmembers": 0,
            "k": 0.4,
        },
        "perplexity": {
            "retain": {"value": 10.0, "n_tokens": 100, "n_texts": 4},
            "holdout": {"value": 12.0, "n_tokens": 100, "n_texts": 4},
        },
    }
    run = VerificationRun.objects.create(
        job=job,
        model_version=a_model,
        erasure_request=erasure_request,
        role="produced",
        measurements=measurements,
    )
    run = verification_run_assess(run=run, plot=False)
    rows = {row.metric: row for row in run.results.all()}
    for metric in ("relearning_recovery", "quantization_8bit_recovery", "quantization_4bit_recovery"):
        assert rows[metric].value is None and rows[metric].passed is False
        assert "LETHE_VERIFY_ROBUSTNESS is off" in rows[metric].details["skipped"]
    assert run.passed is False
