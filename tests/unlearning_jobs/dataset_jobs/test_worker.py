"""Data-set registration from the API on a real worker that consumes only the cpu queue."""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from tests.conftest import WorkerProcess, wait_for
from tests.factories.datasets import write_jsonl
from tests.factories.jobs import data_dir, worker_env_for  # noqa: F401  (fixtures)
from unlearning_jobs.models import DatasetVersion, UnlearningJob

pytestmark = [pytest.mark.worker]


def test_a_cpu_worker_registers_and_indexes_a_file_posted_to_the_api(
    worker_env, data_dir, engineer, tmp_path
):
    source = write_jsonl(
        data_dir / "people.jsonl",
        {"p1": "Mail the invoice to accounts.", "p2": "Nothing personal here."},
    )
    client = APIClient()
    client.force_authenticate(engineer)
    answered = client.post(
        "/api/v1/datasets/",
        {"name": "people", "path": str(source), "id_field": "id", "chunk_size": 1},
        format="json",
    )
    assert answered.status_code == 202, answered.data
    job_id = answered.data["id"]
    worker = WorkerProcess(
        env=worker_env_for(worker_env, data_dir=data_dir),
        hostname=f"cpu-only-{os.getpid()}@localhost",
        log_path=tmp_path / "worker.log",
        queues="cpu",
    ).start()
    try:
        job = wait_for(
            lambda: UnlearningJob.objects.filter(pk=job_id, status__in=["succeeded", "failed"]).first(),
            timeout=120,
            what=f"the registration job to end\n{worker.log_tail()}",
        )
    finally:
        worker.stop()
    assert job.status == "succeeded", job.error
    assert job.worker.startswith("cpu-only-")
    version = DatasetVersion.objects.get(pk=job.produced_dataset_version_id)
    # Registered by the engineer who posted it, with one index chunk per record queued.
    assert version.record_count == 2 and version.registered_by == engineer
    assert version.chunks.count() == 2
