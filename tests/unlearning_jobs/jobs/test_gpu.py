"""Jobs on CUDA (bf16 where the GPU supports it): the same runner, the same code path as the CPU."""

from __future__ import annotations

import pytest
import torch

from tests.factories.jobs import (  # noqa: F401  (fixtures)
    TINY_APPROX,
    data_dir,
    fast_jobs,
    model_train,
    run_inline,
    tickets,
)
from unlearning_jobs.engine.checkpoints import weights_sha256
from unlearning_jobs.jobs import services as jobs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.django_db,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_training_and_unlearning_jobs_run_on_cuda_and_write_device_independent_weights(
    tickets, engineer, settings
):
    settings.LETHE_JOB_DEVICE = "cuda"
    settings.LETHE_JOB_PROGRESS_SECONDS = 0.0
    trained = model_train(dataset_version=tickets, engineer=engineer, name="on cuda")
    assert trained.device.startswith("cuda")

    forget = [r for r in tickets.records.order_by("ordinal")[:4]]
    job = jobs.job_create(
        kind="unlearn",
        actor=engineer,
        framework="deletion",
        method="npo",
        params={**TINY_APPROX, "learning_rate": 1e-3},
        source_model=trained.produced_model,
        dataset_version=tickets,
        forget_record_pks=[r.pk for r in forget],
        enqueue=False,
    )
    assert run_inline(job) == "succeeded", job.log
    job.refresh_from_db()
    assert (
        job.device.startswith("cuda") and job.metrics["forget_loss_after"] > job.metrics["forget_loss_before"]
    )
    produced = job.produced_model
    assert produced.weights_sha256 == weights_sha256(produced.path)  # fp32 weights on disk, loadable anywhere
    from unlearning_jobs.engine.models import load_causal_lm

    model, _ = load_causal_lm(produced.path, device="cpu")
    assert next(model.parameters()).dtype == torch.float32
