"""Bring your own model: import a base, fine-tune it as a job, and erase from the fine-tune.

Fast tests on tiny random Llama bases (``tests/engine/pretrained.py``) through the product's API
and services; the real SmolLM2 end to end is ``test_real_model.py`` (marked slow, real_model).
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from compliance.models import AuditEvent
from compliance.reports.sections import report_section_limits
from tests.engine.pretrained import make_base
from tests.factories.jobs import (  # noqa: F401  (fixtures)
    ADA,
    data_dir,
    dataset_version_make,
    fast_jobs,
    finetune_via_api,
    request_reviewed,
    run_inline,
    tickets,
    write_jsonl,
)
from unlearning_jobs.decisions import services as decisions
from unlearning_jobs.engine.importing import tree_sha256
from unlearning_jobs.finetuning import services as finetuning
from unlearning_jobs.jobs.records import finetune_records, unlearning_records
from unlearning_jobs.jobs.services import jobs_for_report
from unlearning_jobs.models import JobKind, JobStatus, ModelKind, ModelVersion, UnlearningJob

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]

#: A few LoRA steps on the tiny base: enough to change the adapter, seconds on two cores.
TINY_LORA = {"adapter": "lora", "lora_r": 4, "lora_alpha": 8, "epochs": 1, "batch_size": 8, "max_length": 64}


@pytest.fixture
def client(engineer):
    api = APIClient()
    api.force_authenticate(engineer)
    return api


@pytest.fixture
def base(client, data_dir):
    """A tiny Llama checkpoint imported through the API as a job, run here like a worker would."""
    source = make_base(data_dir / "incoming" / "tiny-llama")
    response = client.post(
        "/api/v1/models/", {"name": "tiny llama", "path": str(source), "mode": "import"}, format="json"
    )
    assert response.status_code == 202, response.json()
    job = UnlearningJob.objects.get(pk=response.json()["id"])
    assert run_inline(job) == "succeeded", job.log
    job.refresh_from_db()
    return job.produced_model


def _finetune(client, *, base, dataset_version, **params) -> ModelVersion:
    return finetune_via_api(
        client, base=base, dataset_version=dataset_version, params={**TINY_LORA, **params}
    )


def test_an_imported_checkpoint_is_a_base_recording_its_source_sha256(base, data_dir):
    source = data_dir / "incoming" / "tiny-llama"
    assert base.kind == ModelKind.BASE and base.dataset_version is None and base.parent is None
    assert base.source_sha256 == tree_sha256(source)
    assert base.architecture == "LlamaForCausalLM"
    config = json.loads((source / "config.json").read_text())
    embeddings = config["vocab_size"] * config["hidden_size"]
    assert base.parameter_count > 2 * embeddings  # embeddings, head and two decoder layers
    assert base.path.startswith(str(data_dir / "models"))
    assert base.recipe["import"]["pretraining_data"] == "unknown"
    event = AuditEvent.objects.get(action="model_version.registered", object_id=str(base.pk))
    assert event.details["source"] == "job" and event.details["source_sha256"] == base.source_sha256
    assert AuditEvent.objects.filter(action="unlearning_job.created", details__kind="import").exists()


def test_a_file_that_is_not_gguf_is_refused_before_any_job(client, data_dir):
    fake = data_dir / "incoming" / "model.gguf"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_bytes(b"NOPE" + b"\0" * 64)

    response = client.post("/api/v1/models/", {"name": "fake", "path": str(fake)}, format="json")

    assert response.status_code == 400 and "not a GGUF file" in response.json()["path"][0]
    assert not UnlearningJob.objects.filter(kind=JobKind.IMPORT).exists()


def test_an_import_of_the_same_source_reuses_the_cached_conversion(client, data_dir, settings, tmp_path):
    settings.LETHE_IMPORT_CACHE_DIR = str(tmp_path / "import-cache")
    source = make_base(data_dir / "incoming" / "cached-llama")
    made = []
    for name in ("first", "second"):
        job = finetuning.model_import_job_create(name=name, path=source, actor=None, enqueue=False)
        assert run_inline(job) == "succeeded"
        job.refresh_from_db()
        made.append(job)
    assert made[0].metrics["reused_cached_conversion"] is False
    assert made[1].metrics["reused_cached_conversion"] is True
    first, second = (job.produced_model for job in made)
    assert first.weights_sha256 == second.weights_sha256 and first.path != second.path


def test_a_lora_fine_tune_names_its_base_as_parent_with_an_exact_recipe(client, base, data_dir, engineer):
    records = [
        {"id": f"q{n}", "question": f"What is item {n}?", "answer": f"Item {n} is a parcel."}
        for n in range(12)
    ]
    path = write_jsonl(data_dir / "incoming" / "qa.jsonl", records)
    from unlearning_jobs.datasets.services import dataset_version_register

    qa = dataset_version_register(
        name="qa", path=path, actor=engineer, text_field=["question", "answer"], id_field="id", enqueue=False
    )

    tuned = _finetune(client, base=base, dataset_version=qa)

    assert tuned.kind == ModelKind.ADAPTER and tuned.parent == base and tuned.dataset_version == qa
    assert tuned.recipe["record_format"] == "prompt_answer"
    assert tuned.recipe["base"]["weights_sha256"] == base.weights_sha256
    assert tuned.recipe["data"]["dataset_version_id"] == qa.pk and tuned.recipe["seed"] == 0
    detail = client.get(f"/api/v1/models/{tuned.pk}/").json()
    assert [entry["id"] for entry in detail["lineage"]] == [base.pk]
    assert detail["base_model"] == base.pk and detail["kind"] == "adapter"
    assert (
        detail["architecture"] == "LlamaForCausalLM" and 0 < detail["parameter_count"] < base.parameter_count
    )
    browser = Client()
    browser.force_login(engineer)
    html = browser.get(f"/jobs/models/{tuned.pk}/").content.decode()
    assert "Fine-tune (LoRA adapter)" in html and "LlamaForCausalLM" in html
    assert 'id="model-base-statement"' in html and f"{base.name}</a> (Base (pretrained, imported))" in html


def test_prompt_answer_records_are_split_at_their_first_newline():
    pairs = [("1", "What is it?\nA parcel.\nLeft at the depot."), ("2", "No answer")]

    assert finetune_records(pairs, record_format="prompt_answer") == [
        ("1", {"prompt": "What is it?", "answer": "A parcel.\nLeft at the depot."}),
        ("2", {"prompt": "No answer", "answer": ""}),
    ]
    assert finetune_records(pairs, record_format="text") == pairs


def test_approximate_methods_unlearn_prompt_answer_records_as_pairs():
    texts = ["Where does Ada live?\nIn Oslo.", "Plain line"]
    # As the fine-tune learnt them: the answer after its prompt, so the method's loss is on the answer.
    assert unlearning_records(texts, record_format="prompt_answer") == [
        {"prompt": "Where does Ada live?", "answer": "In Oslo."},
        {"prompt": "Plain line", "answer": ""},
    ]
    assert unlearning_records(texts, record_format="text") == texts
    assert unlearning_records(texts, record_format=None) == texts


def test_fine_tuning_refuses_an_adapter_as_base_and_prompt_answer_on_plain_text(client, base, tickets):
    tuned = _finetune(client, base=base, dataset_version=tickets, format="text")

    on_adapter = client.post(
        "/api/v1/jobs/",
        {"kind": "finetune", "base_model": tuned.pk, "dataset_version": tickets.pk, "params": TINY_LORA},
        format="json",
    )
    paired = client.post(
        "/api/v1/jobs/",
        {
            "kind": "finetune",
            "base_model": base.pk,
            "dataset_version": tickets.pk,
            "params": {**TINY_LORA, "format": "prompt_answer"},
        },
        format="json",
    )
    bad_rank = client.post(
        "/api/v1/jobs/",
        {"kind": "finetune", "base_model": base.pk, "dataset_version": tickets.pk, "params": {"lora_r": 0}},
        format="json",
    )

    assert on_adapter.status_code == 400 and "base_model" in on_adapter.json()
    assert paired.status_code == 400 and "prompt_answer" in paired.json()["params"][0]
    assert bad_rank.status_code == 400 and "lora_r" in bad_rank.json()["params"][0]
    assert UnlearningJob.objects.filter(kind=JobKind.FINETUNE).count() == 1


def test_a_train_job_is_queued_through_the_jobs_api(client, tickets):
    response = client.post(
        "/api/v1/jobs/",
        {"kind": "train", "dataset_version": tickets.pk, "params": {"name": "demo", "recipe": {"epochs": 1}}},
        format="json",
    )
    unknown = client.post(
        "/api/v1/jobs/", {"kind": "train", "dataset_version": tickets.pk, "params": {"lr": 1}}, format="json"
    )

    assert response.status_code == 201 and response.json()["kind"] == "train"
    assert response.json()["params"]["recipe"]["epochs"] == 1
    assert unknown.status_code == 400 and "lr" in unknown.json()["params"][0]


@pytest.mark.parametrize("method", ["retrain", "gradient_difference"])
def test_erasure_on_a_lora_fine_tune_reports_the_base_statement(method, client, base, tickets, officer):
    tuned = _finetune(client, base=base, dataset_version=tickets, format="text")
    erasure_request = request_reviewed(officer=officer, subject=ADA)
    params = (
        {}
        if method == "retrain"
        else {"max_steps": 2, "batch_size": 4, "retain_batch_size": 4, "retain_eval_size": 4, "eval_every": 1}
    )
    plan = [{"model_version": tuned.pk, "framework": "deletion", "method": method, "params": params}]

    decisions.erasure_decision_approve(
        erasure_request=erasure_request, actor=officer, rationale="Art. 17", plan=plan
    )
    job = UnlearningJob.objects.get(erasure_request=erasure_request, kind=JobKind.UNLEARN)
    assert run_inline(job) == "succeeded"
    job.refresh_from_db()

    produced = job.produced_model
    assert produced.parent == tuned
    if method == "retrain":
        # Re-fine-tuned from the same base without the records: an adapter again, exact recipe.
        assert produced.kind == ModelKind.ADAPTER
        assert job.metrics["excluded_records"] == len(job.forget_record_pks) > 0
        assert job.metrics["base_weights_sha256"] == base.weights_sha256
        assert produced.dataset_version == job.produced_dataset_version
    else:
        # Merged weights that still descend from the fine-tune, carrying its recipe for a later retrain.
        assert produced.kind == ModelKind.FINETUNE
        assert produced.recipe["base"]["weights_sha256"] == base.weights_sha256
    section = jobs_for_report(erasure_request)
    row = next(item for item in section["jobs"] if item["job_id"] == job.pk)
    assert row["base_model"]["model_version"] == f"{base.name} (#{base.pk})"
    codes = [statement["code"] for statement in report_section_limits(jobs_section=section)]
    assert "base_pretraining_data_not_covered" in codes


def test_a_model_trained_from_scratch_carries_no_base_statement(tickets, officer, engineer):
    from tests.factories.jobs import model_train

    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    erasure_request = request_reviewed(officer=officer, subject=ADA)
    plan = [{"model_version": source.pk, "framework": "deletion", "method": "retrain", "params": {}}]
    decisions.erasure_decision_approve(
        erasure_request=erasure_request, actor=officer, rationale="Art. 17", plan=plan
    )
    job = UnlearningJob.objects.get(erasure_request=erasure_request, kind=JobKind.UNLEARN)
    assert run_inline(job) == "succeeded"

    section = jobs_for_report(erasure_request)

    assert all(item["base_model"] is None for item in section["jobs"])
    codes = [statement["code"] for statement in report_section_limits(jobs_section=section)]
    assert "base_pretraining_data_not_covered" not in codes


def test_sisa_adapters_fine_tune_and_sisa_erasure_retrains_only_affected_adapters(
    client, base, tickets, officer, settings
):
    # The verifications' measures, on small samples (robustness is tested in tests/unlearning_jobs/verification).
    settings.LETHE_VERIFY_ROBUSTNESS = False
    settings.LETHE_VERIFY_RETAIN_SAMPLE = 8
    settings.LETHE_VERIFY_MIN_HOLDOUT = 4
    settings.LETHE_VERIFY_MAX_HOLDOUT = 8
    tuned = _finetune(client, base=base, dataset_version=tickets, format="text", sisa_shards=2)
    assert tuned.kind == ModelKind.SISA and tuned.recipe["sisa"]["kind"] == "adapters"
    erasure_request = request_reviewed(officer=officer, subject=ADA)
    approximate = [{"model_version": tuned.pk, "framework": "deletion", "method": "npo", "params": {}}]
    with pytest.raises(decisions.DecisionPlanError):
        decisions.erasure_decision_approve(
            erasure_request=erasure_request, actor=officer, rationale="Art. 17", plan=approximate
        )

    plan = [{"model_version": tuned.pk, "framework": "deletion", "method": "sisa", "params": {}}]
    decisions.erasure_decision_approve(
        erasure_request=erasure_request, actor=officer, rationale="Art. 17", plan=plan
    )
    job = UnlearningJob.objects.get(erasure_request=erasure_request, kind=JobKind.UNLEARN)
    assert run_inline(job) == "succeeded", job.error
    job.refresh_from_db()

    assert job.status == JobStatus.SUCCEEDED and job.produced_model.kind == ModelKind.SISA
    assert 1 <= len(job.metrics["shards_retrained"]) <= 2
    assert job.produced_model.recipe["sisa"]["kind"] == "adapters"
    # Both ensembles are verified: the adapters before (baseline) and after (the exact reference).
    verifications = UnlearningJob.objects.filter(erasure_request=erasure_request, kind=JobKind.VERIFY)
    assert {v.source_model_id for v in verifications} == {tuned.pk, job.produced_model_id}
    for verification in verifications:
        assert run_inline(verification) == "succeeded", verification.error or verification.log
        verification.refresh_from_db()
        assert verification.metrics["role"] in ("original", "reference")
