"""Data-set registration as a job on the cpu queue: the API answers at once, a worker reads the file.

Reading, checking and copying every record of a large file takes minutes; inside a web request it
would hold a server thread until the proxy gives up, and a second click would start it again. The
API checks what it can without reading the file (``dataset_registration_check``: the name, the
fields, the confined path) and queues a ``register_dataset`` job; the job calls the registry's
``dataset_version_register`` as its creator, and records the version it made in the same
transaction (``produced_dataset_version``), so a redelivered or retried attempt returns that
version instead of registering the file twice. A file the registry refuses fails the job with the
registry's reason in its error and log, and nothing is written; the job can be retried once the
file is fixed. The browser's upload form stays synchronous: its file is capped at
``LETHE_UPLOAD_MAX_BYTES`` while it streams in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compliance import roles
from compliance.queues import WorkQueue
from unlearning_jobs.datasets.services import (
    MAX_NAME_LENGTH,
    DatasetRegistrationError,
    dataset_registration_check,
    dataset_version_register,
)
from unlearning_jobs.datasets.storage import DatasetActionNotPermitted
from unlearning_jobs.jobs.runner import JobOutcome
from unlearning_jobs.jobs.services import job_create
from unlearning_jobs.models import DatasetVersion, JobKind, JobPhase, UnlearningJob

_TEXT_PARAMS = ("name", "path", "id_field", "description")


def register_params_validate(method: str, params: Mapping[str, Any] | None) -> dict:
    """Return a registration job's parameters with their types checked; raise ``ValueError``.

    The file itself is checked by the job, which reads it; the API checked the path already.
    """
    data = dict(params or {})
    unknown = set(data) - {*_TEXT_PARAMS, "format", "text_fields", "chunk_size"}
    if unknown:
        raise ValueError(f"unknown registration parameters: {', '.join(sorted(unknown))}")
    for key in _TEXT_PARAMS:
        if not isinstance(data.get(key, ""), str | None):
            raise ValueError(f"RegisterParams.{key}: must be text")
    if not (data.get("name") or "").strip() or len(data["name"]) > MAX_NAME_LENGTH:
        raise ValueError(f"RegisterParams.name: give a name of 1 to {MAX_NAME_LENGTH} characters")
    if not (data.get("path") or "").strip():
        raise ValueError("RegisterParams.path: give the path of the data-set file")
    fields = data.get("text_fields") or ["text"]
    if not isinstance(fields, list) or not all(isinstance(f, str) and f.strip() for f in fields):
        raise ValueError("RegisterParams.text_fields: a list of field names")
    chunk_size = data.get("chunk_size")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError("RegisterParams.chunk_size: a whole number of at least 1")
    return {
        "name": data["name"].strip(),
        "path": data["path"],
        "format": data.get("format") or None,
        "text_fields": [f.strip() for f in fields],
        "id_field": data.get("id_field") or None,
        "description": data.get("description") or "",
        "chunk_size": chunk_size,
    }


def dataset_register_job_create(
    *,
    name: str,
    path: str | Path,
    actor,
    format: str | None = None,
    text_field: str | Sequence[str] | None = "text",
    id_field: str | None = None,
    description: str = "",
    chunk_size: int | None = None,
    enqueue: bool = True,
) -> UnlearningJob:
    """Check the request and queue a job that registers the file; raise ``DatasetRegistrationError``.

    Nothing that needs the file's content is checked here: its records, their fields and ids are
    the job's to read, and a refusal fails the job with the registry's reason.
    """
    if not roles.actor_may(actor, roles.OPERATE_JOBS, system=True):
        raise DatasetActionNotPermitted(f"{roles.actor_name(actor)} may not register or change data sets.")
    checked = dataset_registration_check(
        name=name,
        path=path,
        format=format,
        text_field=text_field,
        id_field=id_field,
        description=description,
        chunk_size=chunk_size,
    )
    params = {
        "name": checked.name,
        "path": str(checked.source),
        "format": checked.format,
        "text_fields": list(checked.text_fields),
        "id_field": checked.id_field,
        "description": checked.description,
        "chunk_size": chunk_size,
    }
    return job_create(
        kind=JobKind.REGISTER_DATASET.value,
        actor=actor,
        queue=WorkQueue.CPU.value,
        params=params,
        enqueue=enqueue,
    )


def run_register_dataset_job(context) -> JobOutcome:
    """Register the job's file as a new version (once), and report what was registered."""
    job = context.job
    version = job.produced_dataset_version
    if version is not None:
        context.log(f"an earlier attempt registered {version}; nothing more to do")
    else:
        params = register_params_validate(job.method, job.params)
        context.phase(JobPhase.LOADING_DATA)

        def remember(made: DatasetVersion) -> None:
            # Inside the registration's transaction: the job knows its version exactly when it exists.
            UnlearningJob.objects.filter(pk=job.pk, produced_dataset_version__isnull=True).update(
                produced_dataset_version=made
            )

        try:
            version = dataset_version_register(
                name=params["name"],
                path=params["path"],
                actor=job.created_by,
                format=params["format"],
                text_field=params["text_fields"],
                id_field=params["id_field"],
                description=params["description"],
                chunk_size=params["chunk_size"],
                on_registered=remember,
            )
        except DatasetRegistrationError as error:
            reasons = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
            )
            raise ValueError(f"the registry refused the file ({reasons})") from None
        context.log(f"registered {version}: {version.record_count} records, indexing queued")
    context.progress(1, 1)
    return JobOutcome(
        metrics={
            "dataset_id": version.dataset_id,
            "dataset_version_id": version.pk,
            "version": version.number,
            "records": version.record_count,
            "manifest_sha256": version.manifest_sha256,
            "file_sha256": version.file_sha256,
        },
        produced_dataset_version=version,
    )
