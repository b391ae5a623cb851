"""End to end on the real SmolLM2-135M-Instruct: import its GGUF through the API as a job, LoRA
fine-tune it on a handful of records (once as one adapter, once as SISA adapters), erase a person
in one decision by ``retrain`` and ``npo`` on the fine-tune and ``sisa`` on the adapters, verify
every produced model, and read the base-model statement in the report.

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
    finetune_via_api,
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
#: A few NPO steps on a LoRA adapter over the fine-tune: the path, not the forgetting, is tested here.
NPO = {
    "adapter": "lora",
    "max_steps": 3,
    "batch_size": 4,
    "retain_batch_size": 4,
    "retain_eval_size": 4,
    "eval_every": 1,
}


def test_smollm2_imported_fine_tuned_and_erased_by_retrain_sisa_and_npo_is_verified(
    settings, engineer, officer, data_dir
):
    gguf = smollm2_gguf_path()
    settings.LETHE_IMPORT_ROOTS = [gguf.parent]
    settings.LETHE_IMPORT_CACHE_DIR = str(CACHE)
    settings.LETHE_JOB_TORCH_THREADS = 2
    # Verification measured on small samples: the point here is that it runs on a fine-tune.
    settings.LETHE_VERIFY_ROBUSTNESS = False
    settings.LETHE_VERIFY_RETAIN_SAMPLE = 8
    settings.LETHE_VERIFY_MIN_HOLDOUT = 4
    settings.LETHE_VERIFY_MAX_HOLDOUT = 8
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
    tuned = finetune_via_api(client, base=base, dataset_version=tickets, params=LORA)
    assert tuned.kind == ModelKind.ADAPTER and tuned.parent == base
    shards = finetune_via_api(client, base=base, dataset_version=tickets, params={**LORA, "sisa_shards": 2})
    assert shards.kind == ModelKind.SISA and shards.recipe["sisa"]["kind"] == "adapters"

    erasure_request = request_reviewed(officer=officer, subject=ADA)
    decisions.erasure_decision_approve(
        erasure_request=erasure_request,
        actor=officer,
        rationale="Art. 17(1)(b)",
        plan=[
            {"model_version": tuned.pk, "framework": "deletion", "method": "retrain", "params": {}},
            {"model_version": tuned.pk, "framework": "deletion", "method": "npo", "params": NPO},
            {"model_version": shards.pk, "framework": "deletion", "method": "sisa", "params": {}},
        ],
    )
    unlearned = {}
    for job in UnlearningJob.objects.filter(erasure_request=erasure_request, kind=JobKind.UNLEARN):
        assert run_inline(job) == "succeeded", job.error or job.log
        job.refresh_from_db()
        unlearned[job.method] = job
    assert set(unlearned) == {"retrain", "npo", "sisa"}
    retrain, npo, sisa = unlearned["retrain"], unlearned["npo"], unlearned["sisa"]
    assert retrain.metrics["excluded_records"] == len(retrain.forget_record_pks) > 0
    assert retrain.metrics["base_weights_sha256"] == base.weights_sha256
    assert retrain.produced_model.kind == ModelKind.ADAPTER
    assert sisa.produced_model.kind == ModelKind.SISA and 1 <= len(sisa.metrics["shards_retrained"]) <= 2
    assert npo.produced_model.recipe["base"]["weights_sha256"] == base.weights_sha256

    verifications = UnlearningJob.objects.filter(erasure_request=erasure_request, kind=JobKind.VERIFY)
    produced = {retrain.produced_model_id, npo.produced_model_id, sisa.produced_model_id}
    # A baseline of each source (the fine-tune, the SISA adapters) and one of each produced model.
    assert {job.source_model_id for job in verifications} == produced | {tuned.pk, shards.pk}
    # The models retrain and NPO produced are measured here. The baselines, and the SISA ensemble
    # (probed whole and shard by shard), run the same code and would triple the test's minutes on
    # two cores: the tiny-Llama SISA-adapter test runs those verifications.
    for job in verifications.filter(source_model_id__in=[retrain.produced_model_id, npo.produced_model_id]):
        assert run_inline(job) == "succeeded", job.error or job.log
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED and job.metrics
    section = jobs_for_report(erasure_request)
    for job in unlearned.values():
        row = next(item for item in section["jobs"] if item["job_id"] == job.pk)
        assert row["base_model"]["model_version"] == f"{base.name} (#{base.pk})"
    codes = [statement["code"] for statement in report_section_limits(jobs_section=section)]
    assert "base_pretraining_data_not_covered" in codes
