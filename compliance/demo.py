"""Seed the demo: one user per role, the synthetic data set and its ground truth.

Idempotent: what exists is left as it is, so re-running changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from compliance.audit import audit_event_record
from compliance.roles import Role, roles_sync
from unlearning_jobs.datasets.indexing import dataset_version_index_inline
from unlearning_jobs.datasets.services import dataset_version_register
from unlearning_jobs.jobs import services as job_services
from unlearning_jobs.jobs.runner import job_run_inline
from unlearning_jobs.models import (
    DatasetVersion,
    DatasetVersionStatus,
    JobKind,
    JobStatus,
    PiiFinding,
    UnlearningJob,
)

DEMO_USERS = {"officer": Role.PRIVACY_OFFICER, "auditor": Role.AUDITOR, "engineer": Role.ENGINEER}


@dataclass
class DemoSeedResult:
    created_users: list[str] = field(default_factory=list)
    password: str | None = None  # set only when users were created now
    records_path: Path | None = None
    ground_truth_path: Path | None = None
    dataset_created: bool = False
    record_count: int = 0
    dataset_version_id: int | None = None
    dataset_registered: bool = False
    findings: int = 0
    model_version_id: int | None = None
    model_trained: bool = False
    model_seconds: float = 0.0
    model_job_id: int | None = None
    model_job_status: str = ""


def demo_paths(data_dir: Path) -> tuple[Path, Path]:
    """Return where the demo records and their ground truth live."""
    demo_dir = data_dir / "demo"
    return demo_dir / "support_tickets.jsonl", demo_dir / "support_tickets.ground_truth.json"


def demo_users_seed(*, password: str | None) -> tuple[list[str], str | None]:
    """Create the missing demo users in their role groups; return who was created and the password."""
    roles_sync()
    user_model = get_user_model()
    missing = [name for name in DEMO_USERS if not user_model.objects.filter(username=name).exists()]
    if not missing:
        return [], None
    password = password or secrets.token_urlsafe(12)
    with transaction.atomic():
        for username in missing:
            role = DEMO_USERS[username]
            user = user_model.objects.create_user(
                username=username, password=password, email=f"{username}@lethe.invalid"
            )
            user.groups.add(Group.objects.get(name=role.value))
            audit_event_record(
                actor=None,
                action="user.created",
                target=user,
                details={"username": username, "role": role.value, "source": "seed_demo"},
            )
    return missing, password


def demo_dataset_seed(*, data_dir: Path) -> tuple[Path, Path, bool, int]:
    """Write the demo records and ground truth unless both are already there."""
    from unlearning_jobs.engine.demo_data import generate_demo_dataset, write_demo_dataset

    records_path, ground_truth_path = demo_paths(data_dir)
    if records_path.exists() and ground_truth_path.exists():
        with records_path.open(encoding="utf-8") as handle:
            count = sum(1 for line in handle if line.strip())
        return records_path, ground_truth_path, False, count
    dataset = generate_demo_dataset()
    write_demo_dataset(dataset, records_path=records_path, ground_truth_path=ground_truth_path)
    return records_path, ground_truth_path, True, len(dataset.records)


DEMO_DATASET_NAME = "demo-support-tickets"


def demo_dataset_register(*, records_path: Path, progress=None):
    """Register and index the demo records once; return ``(version, registered_now)``.

    Indexing runs in this process (no worker needed), through the same chunk claims a worker
    uses, so a worker started alongside shares the work instead of repeating it.
    """

    version = (
        DatasetVersion.objects.filter(dataset__name=DEMO_DATASET_NAME, parent__isnull=True)
        .order_by("number")
        .first()
    )
    registered_now = version is None
    if version is None:
        version = dataset_version_register(
            name=DEMO_DATASET_NAME,
            path=records_path,
            actor=None,
            format="jsonl",
            text_field="text",
            id_field="id",
            enqueue=False,
            description="Synthetic customer-support tickets (seeded Faker); nobody in it is real.",
        )
    if version.status != DatasetVersionStatus.INDEXED:
        dataset_version_index_inline(version=version, progress=progress)
        version.refresh_from_db()
    return version, registered_now


def demo_model_seed(*, dataset_version, run_inline: bool = True):
    """Train and register the demo model on the demo data set once; return ``(job, trained_now)``.

    ``run_inline`` False queues the training job on the ``gpu`` queue instead, so a worker
    trains it while the web application is already up (``make run`` does this).
    """

    before = UnlearningJob.objects.filter(
        kind=JobKind.TRAIN, dataset_version=dataset_version, status=JobStatus.SUCCEEDED
    ).exists()
    job = demo_model_train(dataset_version=dataset_version, run_inline=run_inline)
    return job, not before


def demo_seed(
    *,
    password: str | None = None,
    data_dir: Path | None = None,
    with_index: bool = True,
    with_model: bool = True,
    queue_model: bool = False,
    progress=None,
) -> DemoSeedResult:
    """Seed everything the demo needs; return what was created this time.

    ``with_index`` registers and indexes the demo data set; ``with_model`` also trains the demo
    model on it (a few minutes on a CPU), so the demo has real memorised PII to erase.
    """
    data_dir = Path(data_dir or settings.LETHE_DATA_DIR)
    result = DemoSeedResult()
    result.created_users, result.password = demo_users_seed(password=password or settings.LETHE_DEMO_PASSWORD)
    (result.records_path, result.ground_truth_path, result.dataset_created, result.record_count) = (
        demo_dataset_seed(data_dir=data_dir)
    )
    if not (with_index or with_model):
        return result
    version, result.dataset_registered = demo_dataset_register(
        records_path=result.records_path, progress=progress
    )
    result.dataset_version_id = version.pk

    result.findings = PiiFinding.objects.filter(version=version).count()
    if with_model:
        job, result.model_trained = demo_model_seed(dataset_version=version, run_inline=not queue_model)
        result.model_job_id = job.pk
        result.model_job_status = job.status
        result.model_version_id = job.produced_model_id
        result.model_seconds = job.compute_seconds
    return result


#: The demo model: the engine's default 2 x 128 GPT-2 with a 4,096-token BPE, trained long enough
#: to memorise the e-mails of the people who appear in dozens of records (docs/jobs.md).
DEMO_MODEL_NAME = "demo-support-gpt2"


#: The demo model's recipe; its epochs come from ``LETHE_DEMO_TRAIN_EPOCHS`` (8; fewer in tests).
DEMO_RECIPE: dict = {}


def demo_model_train(
    *, dataset_version: DatasetVersion, actor=None, sisa_shards: int | None = None, run_inline: bool = True
) -> UnlearningJob:
    """Train the demo model on ``dataset_version`` as a training job and register it; return the job.

    Idempotent: a demo training of the same layout on the same version that succeeded, or is
    still queued or running, is returned instead of a new one. ``run_inline`` runs the job in
    this process through the same claim and runner as a worker (what ``seed_demo`` wants: the
    model exists when it returns, a few minutes on a CPU); otherwise it is queued on ``gpu``.
    """
    name = DEMO_MODEL_NAME + (f"-sisa{sisa_shards}" if sisa_shards else "")
    existing = (
        UnlearningJob.objects.filter(
            kind=JobKind.TRAIN,
            dataset_version=dataset_version,
            params__name=name,
            status__in=[JobStatus.SUCCEEDED, JobStatus.QUEUED, JobStatus.RUNNING],
        )
        .order_by("pk")
        .first()
    )
    if existing is not None:
        return existing
    job = job_services.train_job_create(
        dataset_version=dataset_version,
        actor=actor,
        name=name,
        recipe={**DEMO_RECIPE, "epochs": settings.LETHE_DEMO_TRAIN_EPOCHS},
        sisa_shards=sisa_shards,
        enqueue=not run_inline,
    )
    if run_inline:
        job_run_inline(job=job)
        job.refresh_from_db()
    return job
