"""End to end on the real SmolLM2-135M-Instruct: import its GGUF through the API as a job, LoRA
fine-tune it on a handful of records, erase a person from the fine-tune with ``retrain``, verify.

The conversion (about a minute here) is cached under ``var/cache/models`` by the GGUF's SHA-256
(``LETHE_IMPORT_CACHE_DIR``; ``make test`` wipes the test var dir, not that), shared with
``tests/engine/test_real_model.py``; the import job then links the cached directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from compliance.reports.sections import report_section_limits
from tests.factories.jobs import (  # noqa: F401  (fixtures)
    ADA,
    data_dir,
    dataset_version_make,
    fast_jobs,
    request_reviewed,
    run_inline,
    tiny_records,
)
from unlearning_jobs.decisions import services as decisions
from unlearning_jobs.engine.importing import smollm2_gguf_path
from unlearning_jobs.jobs.services import jobs_for_report
from unlearning_jobs.models import JobKind, JobStatus, ModelKind, UnlearningJob

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,
    pytest.mark.real_model,
    pytest.mark.usefixtures("fast_jobs"),
]

CACHE = Path(
    os.environ.get("LETHE_MODEL_CACHE", Path(__file__).resolve().parents[3] / "var" / "cache" / "models")
)
LORA = {"adapter": "lora", "lora_r": 4, "lora_alpha": 8, "epochs": 1, "batch_size": 8, "max_length": 48}


def test_smollm2_imported_fine_tuned_and_erased_with_retrain_is_verified(
    settings, engineer, officer, data_dir
):
    gguf = smollm2_gguf_path()
    settings.LETHE_IMPORT_ROOTS = [gguf.parent]
    settings.LETHE_IMPORT_CACHE_DIR = str(CACHE)
    settings.LETHE_JOB_TORCH_THREADS = 2
    # Verification measured on small samples: the point here is that it runs on a fine-tune.
    settings.LETHE_VERIFY_ROBUSTNESS = False
    settings.LETHE_VERIFY_RETAIN_SAMPLE = 16
    settings.LETHE_VERIFY_MAX_HOLDOUT = 20
    client = APIClient()
    client.force_authenticate(engineer)

    imported = client.post(
        "/api/v1/models/", {"name": "SmolLM2-135M-Instruct", "path": str(gguf)}, format="json"
    )
    assert imported.status_code == 202, imported.json()
    import_job = UnlearningJob.objects.get(pk=imported.json()["id"])
    assert run_inline(import_job) == "succeeded", import_job.log
    import_job.refresh_from_db()
    base = import_job.produced_model
    assert base.kind == ModelKind.BASE and base.architecture == "LlamaForCausalLM"
    assert 134_000_000 < base.parameter_count < 135_000_000
    assert base.source_sha256 == import_job.metrics["source_sha256"]

    tickets = dataset_version_make(engineer=engineer, records=tiny_records(repeats=1))
    tuned_response = client.post(
        "/api/v1/jobs/",
        {"kind": "finetune", "base_model": base.pk, "dataset_version": tickets.pk, "params": LORA},
        format="json",
    )
    assert tuned_response.status_code == 201, tuned_response.json()
    tune_job = UnlearningJob.objects.get(pk=tuned_response.json()["id"])
    assert run_inline(tune_job) == "succeeded", tune_job.error or tune_job.log
    tune_job.refresh_from_db()
    tuned = tune_job.produced_model
    assert tuned.kind == ModelKind.ADAPTER and tuned.parent == base

    erasure_request = request_reviewed(officer=officer, subject=ADA)
    decisions.erasure_decision_approve(
        erasure_request=erasure_request,
        actor=officer,
        rationale="Art. 17(1)(b)",
        plan=[{"model_version": tuned.pk, "framework": "deletion", "method": "retrain", "params": {}}],
    )
    unlearn = UnlearningJob.objects.get(erasure_request=erasure_request, kind=JobKind.UNLEARN)
    assert run_inline(unlearn) == "succeeded", unlearn.error or unlearn.log
    unlearn.refresh_from_db()
    assert unlearn.metrics["excluded_records"] == len(unlearn.forget_record_pks) > 0
    assert unlearn.metrics["base_weights_sha256"] == base.weights_sha256
    assert unlearn.produced_model.kind == ModelKind.ADAPTER

    verifications = list(UnlearningJob.objects.filter(erasure_request=erasure_request, kind=JobKind.VERIFY))
    assert len(verifications) == 2
    for job in verifications:
        assert run_inline(job) == "succeeded", job.error or job.log
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED
    section = jobs_for_report(erasure_request)
    codes = [statement["code"] for statement in report_section_limits(jobs_section=section)]
    assert "base_pretraining_data_not_covered" in codes
