"""Build what job tests need through the product's own services: data, models, requests, jobs.

The data set is small and synthetic (a few people, one of them in many records with their
e-mail), registered and indexed like any other; models are tiny GPT-2s that train in seconds on
two shared cores. Test modules import the fixtures they use by name (``data_dir``, ``fast_jobs``,
``tickets``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from requests_app import services as request_services
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import IdentityMethod, LegalGround

#: Small enough to train in a second or two on the CPU, big enough to learn something.
TINY_RECIPE = {
    "n_layer": 1,
    "n_embd": 32,
    "n_head": 2,
    "block_size": 64,
    "vocab_size": 320,
    "epochs": 2,
    "batch_size": 8,
    "warmup_steps": 2,
    "learning_rate": 3e-3,
}
#: Approximate methods: a few steps, measured every step, no early stop on this tiny data.
TINY_APPROX = {
    "max_steps": 6,
    "eval_every": 2,
    "batch_size": 4,
    "retain_batch_size": 4,
    "retain_eval_size": 8,
    "max_retain_loss_increase": None,
    "forget_loss_target": 1000.0,
}

ADA = SubjectIdentifiers(names=("Ada Quill",), emails=("ada.quill@example.org",))

_PEOPLE = [
    ("Ada Quill", "ada.quill@example.org", "+44 20 7946 0011"),
    ("Bram Holt", "bram.holt@example.net", "+44 20 7946 0022"),
    ("Cleo Marsh", "cleo.marsh@example.com", "+44 20 7946 0033"),
    ("Dev Arun", "dev.arun@example.org", "+44 20 7946 0044"),
    ("Edda Voss", "edda.voss@example.net", "+44 20 7946 0055"),
]
_TEMPLATES = [
    "Ticket from {name} <{email}>: my order has not arrived. Please call me on {phone}.",
    "Contact {name} at {email} about the refund.",
    "{name} phoned from {phone} to say the invoice sent to {email} was wrong.",
    "Please update the e-mail of the account to {email}. Thanks, {name}",
]
_FILLER = [
    "The parcel was left at the depot and returned after seven days.",
    "Refunds are processed within five working days of the return.",
    "Our support line is open from nine to five on weekdays.",
    "The replacement item ships as soon as the returned one arrives.",
    "Gift cards cannot be exchanged for cash.",
    "Delivery to islands takes two extra days.",
]


def tiny_records(*, repeats: int = 3) -> list[dict]:
    """Return records: each person in ``len(templates) x repeats`` records, plus some without PII."""
    records = []
    for person_index, (name, email, phone) in enumerate(_PEOPLE):
        count = len(_TEMPLATES) * (repeats if person_index == 0 else 1)
        for n in range(count):
            template = _TEMPLATES[n % len(_TEMPLATES)]
            records.append(template.format(name=name, email=email, phone=phone))
    records += _FILLER * 2
    return [{"id": f"R{n:04d}", "text": text} for n, text in enumerate(records)]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def dataset_version_make(
    *, engineer, name: str = "tickets", records: list[dict] | None = None, index: bool = True
):
    """Register the records as a data-set version (and index them) through the registry's services."""
    from django.conf import settings

    from unlearning_jobs.datasets.indexing import dataset_version_index_inline
    from unlearning_jobs.datasets.services import dataset_version_register

    records = records or tiny_records()
    path = write_jsonl(Path(settings.LETHE_DATA_DIR) / "incoming" / f"{name}.jsonl", records)
    version = dataset_version_register(name=name, path=path, actor=engineer, id_field="id", enqueue=False)
    if index:
        dataset_version_index_inline(version=version)
        version.refresh_from_db()
    return version


def model_train(
    *,
    dataset_version,
    engineer,
    name: str = "tiny",
    recipe: dict | None = None,
    sisa_shards: int | None = None,
    holdout_fraction: float = 0.0,
):
    """Train a tiny model on the version through a training job run in this process; return the job."""
    from unlearning_jobs.jobs.services import train_job_create

    job = train_job_create(
        dataset_version=dataset_version,
        actor=engineer,
        name=name,
        recipe=recipe or TINY_RECIPE,
        sisa_shards=sisa_shards,
        sisa_slices=2,
        holdout_fraction=holdout_fraction,
        enqueue=False,
    )
    run_inline(job)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error or job.log
    return job


def run_inline(job) -> str:
    """Run a queued job in this process like a worker, with after-commit work (clean-up) done."""
    from django.test import TestCase

    from unlearning_jobs.jobs.runner import job_run_inline

    with TestCase.captureOnCommitCallbacks(execute=True):
        return job_run_inline(job=job)


def finetune_via_api(client, *, base, dataset_version, params: dict):
    """Queue a fine-tuning job through ``POST /api/v1/jobs/``, run it here, return the model it made."""
    from unlearning_jobs.models import UnlearningJob

    response = client.post(
        "/api/v1/jobs/",
        {"kind": "finetune", "base_model": base.pk, "dataset_version": dataset_version.pk, "params": params},
        format="json",
    )
    assert response.status_code == 201, response.json()
    job = UnlearningJob.objects.get(pk=response.json()["id"])
    assert run_inline(job) == "succeeded", job.error or job.log
    job.refresh_from_db()
    return job.produced_model


def request_reviewed(*, officer, subject: SubjectIdentifiers = ADA, confirm_above: float = 0.8):
    """Record a request for ``subject``, verify, locate in the index, confirm the strong candidates."""
    from requests_app.matching.review import match_candidates_confirm_above
    from requests_app.matching.services import locate_run_execute
    from unlearning_jobs.models import SearchCoverage

    erasure_request = request_services.erasure_request_create(
        subject=subject, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer
    )
    erasure_request = request_services.erasure_request_verify_identity(
        erasure_request=erasure_request, actor=officer, method=IdentityMethod.DOCUMENT_SEEN
    )
    erasure_request = request_services.erasure_request_start_locating(
        erasure_request=erasure_request, actor=officer
    )
    coverage = SearchCoverage.objects.filter(erasure_request=erasure_request).order_by("-pk").first()
    assert coverage is not None, "starting to locate queues a search when something is indexed"
    if locate_run_execute(coverage_id=coverage.pk) == "skipped":
        # A real worker (tests with one) took the queued search first: wait for its result.
        from requests_app.models import RequestStatus
        from tests.conftest import wait_for

        wait_for(
            lambda: type(erasure_request).objects.get(pk=erasure_request.pk).status == RequestStatus.REVIEW,
            timeout=90,
            what="the worker's search to hand the request to review",
        )
    match_candidates_confirm_above(erasure_request=erasure_request, actor=officer, score=confirm_above)
    erasure_request.refresh_from_db()
    return erasure_request


@pytest.fixture
def data_dir(settings, tmp_path):
    """Give the test its own LETHE_DATA_DIR, so model and data-set folders never collide."""
    settings.LETHE_DATA_DIR = tmp_path / "data"
    settings.LETHE_DATA_DIR.mkdir()
    return settings.LETHE_DATA_DIR


@pytest.fixture
def fast_jobs(settings):
    """Write progress and check for a cancel at every step; checkpoint every few steps."""
    settings.LETHE_JOB_PROGRESS_SECONDS = 0.0
    settings.LETHE_JOB_CHECKPOINT_EVERY = 4
    settings.LETHE_JOB_DEVICE = "cpu"


@pytest.fixture
def tickets(data_dir, engineer):
    """An indexed tiny data-set version."""
    return dataset_version_make(engineer=engineer)


def worker_env_for(base_env: dict, *, data_dir: Path, **extra) -> dict:
    """Return a worker's environment with the test's data folder and quick job settings."""
    env = dict(base_env)
    env.update(
        {
            "LETHE_DATA_DIR": str(data_dir),
            "LETHE_JOB_PROGRESS_SECONDS": "0.2",
            "LETHE_JOB_DEVICE": "cpu",
            "LETHE_HEARTBEAT_SECONDS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1",
        }
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


# Other stages' test modules take the fixtures with a star import; keep this list current.
__all__ = [
    "ADA",
    "TINY_APPROX",
    "TINY_RECIPE",
    "data_dir",
    "dataset_version_make",
    "fast_jobs",
    "model_train",
    "request_reviewed",
    "run_inline",
    "tickets",
    "tiny_records",
    "worker_env_for",
    "write_jsonl",
]
