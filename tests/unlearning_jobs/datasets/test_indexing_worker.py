"""A real Celery worker on Redis indexes a small file chunk by chunk and locates a request's person."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command

from requests_app import services
from requests_app.models import IdentityMethod, LegalGround
from tests.conftest import WorkerProcess, wait_for
from tests.factories.datasets import WILLIAM, WILLIAM_RECORDS, write_jsonl
from unlearning_jobs.models import DatasetVersion, MatchCandidate, SearchCoverage, WorkerHeartbeat

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.fixture
def data_worker(worker_env, settings, tmp_path_factory):
    """A worker that shares this test's data folder (where stored copies are read from)."""
    data_dir = tmp_path_factory.mktemp("data")
    settings.LETHE_DATA_DIR = data_dir
    env = dict(worker_env, LETHE_DATA_DIR=str(data_dir))
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = WorkerProcess(
        env=env, hostname=f"index-worker-{os.getpid()}@localhost", log_path=log_path
    ).start()
    yield worker
    worker.stop()


def test_a_real_worker_indexes_the_chunks_and_locates_a_request(data_worker, officer, capsys):
    wait_for(
        lambda: WorkerHeartbeat.objects.filter(hostname=data_worker.hostname).exists(),
        timeout=60,
        what=f"the worker's heartbeat; log:\n{data_worker.log_tail()}",
    )
    source = write_jsonl(data_worker_data(data_worker) / "william.jsonl", WILLIAM_RECORDS)

    call_command(
        "ingest_dataset",
        "--name",
        "worker-set",
        "--path",
        str(source),
        "--id-field",
        "id",
        "--chunk-size",
        "3",
        "--timeout",
        "240",
    )

    out = capsys.readouterr().out
    version = DatasetVersion.objects.get(dataset__name="worker-set")
    assert version.status == "indexed", data_worker.log_tail()
    assert "worker-set v1 indexed: 10 records" in out
    assert set(version.chunks.values_list("worker", flat=True)) == {data_worker.hostname}
    assert set(version.chunks.values_list("attempts", flat=True)) == {1}

    erasure_request = services.erasure_request_create(
        subject=WILLIAM, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer
    )
    erasure_request = services.erasure_request_verify_identity(
        erasure_request=erasure_request, actor=officer, method=IdentityMethod.EMAIL_LINK
    )
    services.erasure_request_start_locating(erasure_request=erasure_request, actor=officer)

    def reviewing():
        erasure_request.refresh_from_db()
        return erasure_request.status == "review"

    wait_for(reviewing, timeout=120, what=f"the locate task; log:\n{data_worker.log_tail()}")
    coverage = SearchCoverage.objects.get(erasure_request=erasure_request)
    assert coverage.status == "done" and coverage.versions[0]["version_id"] == version.pk
    strong = set(
        MatchCandidate.objects.filter(erasure_request=erasure_request, tier="strong").values_list(
            "record__record_id", flat=True
        )
    )
    assert strong == {"S1", "S2", "S3"}


def data_worker_data(worker: WorkerProcess):
    from pathlib import Path

    return Path(worker.env["LETHE_DATA_DIR"])
