"""Weights are re-hashed against the registry before a job or ``generate`` loads a model (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories.jobs import data_dir, fast_jobs, run_inline, tickets  # noqa: F401  (fixtures)
from unlearning_jobs.engine.checkpoints import weights_sha256
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import DatasetVersion, JobStatus, ModelVersion
from unlearning_jobs.registry.services import (
    ModelWeightsChanged,
    model_version_register,
    model_weights_verify,
)
from unlearning_jobs.suppression import guard as guard_runtime

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]


def _registered(data_dir: Path, engineer) -> ModelVersion:
    from transformers import GPT2Config, GPT2LMHeadModel

    directory = data_dir / "imported" / "tiny-gpt2"
    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=8, n_layer=1, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(directory)
    return model_version_register(name="tiny gpt2", path=directory, actor=engineer)


def _tamper_one_byte(version: ModelVersion) -> str:
    weights = Path(version.path) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # inside the last tensor: the file still loads, only the hash tells
    weights.write_bytes(bytes(data))
    return weights_sha256(version.path)


def test_untouched_weights_pass_and_one_changed_byte_is_refused_with_both_hashes(data_dir, engineer):
    version = _registered(data_dir, engineer)
    assert model_weights_verify(version) == version.weights_sha256

    found = _tamper_one_byte(version)

    with pytest.raises(ModelWeightsChanged) as error:
        model_weights_verify(version)
    assert str(error.value) == (
        f"weights of tiny gpt2 changed on disk since registration: "
        f"expected {version.weights_sha256}, found {found}"
    )


def test_an_unlearning_job_on_tampered_weights_fails_with_its_log_and_produces_nothing(
    data_dir, engineer, tickets
):
    version = _registered(data_dir, engineer)
    found = _tamper_one_byte(version)
    versions_before = DatasetVersion.objects.count()
    job = jobs.job_create(
        kind="unlearn",
        actor=engineer,
        framework="deletion",
        method="gradient_ascent",
        params={},
        source_model=version,
        dataset_version=tickets,
        forget_record_pks=[tickets.records.first().pk],
        enqueue=False,
    )

    assert run_inline(job) == "failed"

    job.refresh_from_db()
    expected = (
        f"weights of tiny gpt2 changed on disk since registration: "
        f"expected {version.weights_sha256}, found {found}"
    )
    assert job.status == JobStatus.FAILED and expected in job.error and expected in job.log
    assert "attempt 1 started" in job.log
    assert job.produced_model is None and ModelVersion.objects.count() == 1
    assert DatasetVersion.objects.count() == versions_before, "no data-set version derived"
    models = data_dir / "models"
    assert not models.exists() or not any(models.iterdir())


def test_the_generate_cache_refuses_tampered_weights_and_keeps_nothing_loaded(data_dir, engineer):
    version = _registered(data_dir, engineer)
    _tamper_one_byte(version)
    guard_runtime._MODELS.clear()

    with pytest.raises(ModelWeightsChanged):
        guard_runtime.model_load_cached(version)
    assert not guard_runtime._MODELS
