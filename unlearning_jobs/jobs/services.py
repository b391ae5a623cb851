"""Every change to an unlearning job: creation, claim, progress, the end, retry, cancel, re-queue.

The job row in PostgreSQL is the job's only state; a Celery message carries just its id, so a
message delivered twice, redelivered after a worker died, or sent again by the stale-job sweep
is harmless. Three rules make that true:

- a worker *claims* a job with a conditional UPDATE (``status=queued`` → ``running`` and
  ``attempts + 1``) and does nothing when no row changed;
- every later write of that worker (progress, log, result) is conditional on the job still being
  ``running`` under the same attempt number, which fences off a worker presumed dead;
- the produced model version and the job's success are one transaction, and the version is
  one-to-one with its job.

Each state change writes its audit event in the same transaction. Actors are users for the
engineer's actions (cancel, retry, parameters) and the system (``None``) for what workers do.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Concat, Right
from django.utils import timezone

from compliance import roles
from compliance.audit import audit_event_record
from compliance.celery import app as celery_app
from compliance.extensions import extension_list
from compliance.models import AuditEvent
from compliance.queues import TaskName, WorkQueue
from requests_app.models import RequestStatus
from requests_app.services import TransitionNotAllowed, erasure_request_start_verifying
from unlearning_jobs.jobs.kinds import job_params_validate, job_runner_for
from unlearning_jobs.models import (
    DatasetVersion,
    ErasureDecision,
    JobKind,
    JobPhase,
    JobStatus,
    ModelVersion,
    UnlearningJob,
    WorkerHeartbeat,
)
from unlearning_jobs.registry.services import (
    model_version_base,
    model_version_record_produced,
    model_versions_index,
)
from unlearning_jobs.workers.control import runner_kill
from unlearning_jobs.workers.processes import ProcessIdentity, process_is_gone
from unlearning_jobs.workers.services import worker_is_alive

logger = logging.getLogger(__name__)

#: Statuses from which ``job_retry`` queues a job again.
RETRYABLE_STATUSES = (JobStatus.FAILED, JobStatus.CANCELLED)
#: Statuses from which ``job_cancel`` stops a job (a failed job is cancelled to give it up).
CANCELLABLE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED)
#: A job in one of these has ended: its page stops refreshing itself.
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
MAX_ERROR_LENGTH = 4000
#: The longest a job waits in its queue before a retry after a transient error (the backoff's cap).
MAX_RETRY_COUNTDOWN_SECONDS = 300.0
#: A queued job that a live, idle worker of its queue has not taken for this long lost its message
#: (``jobs_resend_queued``); longer than any retry countdown, during which a worker holds the
#: message without running it.
QUEUED_MESSAGE_LOST_SECONDS = 2 * MAX_RETRY_COUNTDOWN_SECONDS


class JobError(ValidationError):
    """The input or the job's state does not allow this change; nothing was written."""


class JobNotPermitted(PermissionDenied):
    """The actor's role does not allow this change to jobs."""


class JobLost(Exception):
    """This attempt no longer owns the job: it was cancelled, re-queued or taken over.

    Raised inside a running attempt by progress and stop checks; the attempt stops and writes
    nothing more, because another attempt (or nobody, after a cancel) is now in charge.
    """


# --- helpers --------------------------------------------------------------------------------------


def _actor_check(actor, permission: str = roles.OPERATE_JOBS) -> None:
    if not roles.actor_may(actor, permission, system=True):
        raise JobNotPermitted(f"{roles.actor_name(actor)} may not change jobs.")


def _details(job: UnlearningJob, **extra) -> dict:
    """Return the audit details every job event carries: what the job is, never record text."""
    details = {
        "job_id": job.pk,
        "kind": job.kind,
        "framework": job.framework or None,
        "method": job.method or None,
        "status": job.status,
        "attempts": job.attempts,
        "erasure_request_id": job.erasure_request_id,
        "source_model_id": job.source_model_id,
    }
    details.update(extra)
    return details


def _record(job: UnlearningJob, action: str, *, actor=None, **extra) -> None:
    audit_event_record(
        actor=actor, action=f"unlearning_job.{action}", target=job, details=_details(job, **extra)
    )


def job_dir(job_id: int) -> Path:
    """Return the job's working folder: checkpoints and the staged output live there."""
    return Path(settings.LETHE_DATA_DIR) / "jobs" / str(job_id)


def job_checkpoint_dir(job_id: int) -> Path:
    """Return where the job's training checkpoints are written, so a later attempt resumes."""
    return job_dir(job_id) / "checkpoints"


def job_enqueue(*, job: UnlearningJob, countdown: float | None = None) -> None:
    """Send the job to its queue once the current transaction commits.

    Sending after commit means a worker never looks for a row it cannot see yet; sending a job
    that is no longer queued is harmless, because the worker's claim finds nothing to take.
    """
    job_id, queue = job.pk, job.queue

    def send() -> None:
        celery_app.send_task(TaskName.JOB_RUN.value, args=(job_id,), queue=queue, countdown=countdown)

    transaction.on_commit(send)


# --- creation ------------------------------------------------------------------------------------


def job_create(
    *,
    kind: str,
    actor,
    queue: str = WorkQueue.GPU.value,
    erasure_request=None,
    decision: ErasureDecision | None = None,
    framework: str = "",
    method: str = "",
    params: Mapping | None = None,
    source_model: ModelVersion | None = None,
    dataset_version: DatasetVersion | None = None,
    forget_record_pks: Iterable[int] = (),
    enqueue: bool = True,
) -> UnlearningJob:
    """Create a queued job and send it to its queue after commit.

    ``params`` are validated (and completed with defaults) by the runner of the job's kind, so a
    job is created only when it can run. ``actor`` None is the system (a hook of another stage).
    """

    if job_runner_for(kind) is None:
        raise JobError({"kind": [f"No runner is registered for {kind!r} jobs."]})
    try:
        params = job_params_validate(kind=kind, method=method, params=params)
    except ValueError as error:
        raise JobError({"params": [str(error)]}) from None
    now = timezone.now()
    with transaction.atomic():
        job = UnlearningJob.objects.create(
            kind=kind,
            queue=queue,
            erasure_request=erasure_request,
            decision=decision,
            framework=framework,
            method=method,
            params=dict(params or {}),
            source_model=source_model,
            dataset_version=dataset_version,
            forget_record_pks=sorted({int(i) for i in forget_record_pks}),
            created_by=actor,
            queued_at=now,
        )
        job.checkpoint_dir = str(job_checkpoint_dir(job.pk))
        job.save(update_fields=["checkpoint_dir"])
        _record(
            job,
            "created",
            actor=actor,
            queue=queue,
            dataset_version_id=job.dataset_version_id,
            decision_id=job.decision_id,
            forget_records=len(job.forget_record_pks),
        )
        if enqueue:
            job_enqueue(job=job)
    logger.info("unlearning_job.created", extra={"job_id": job.pk, "kind": kind, "method": method})
    return job


def train_job_create(
    *,
    dataset_version: DatasetVersion,
    actor,
    name: str = "model",
    recipe: Mapping | None = None,
    sisa_shards: int | None = None,
    sisa_slices: int = 4,
    holdout_fraction: float = 0.0,
    enqueue: bool = True,
) -> UnlearningJob:
    """Queue a job that trains a model from scratch on the version's records and registers it.

    ``recipe`` overrides fields of the engine's default recipe (the demo's 2 x 128 GPT-2);
    ``sisa_shards`` trains that many SISA shards instead of one model, so that ``sisa``
    unlearning can later retrain only the shards that held a person's records;
    ``holdout_fraction`` of the records are never trained on (verification's non-members).
    """
    _actor_check(actor)
    try:
        params = job_params_validate(
            kind=JobKind.TRAIN.value,
            method="",
            params={
                "name": name,
                "recipe": dict(recipe or {}),
                "sisa_shards": sisa_shards,
                "sisa_slices": sisa_slices,
                "holdout_fraction": holdout_fraction,
            },
        )
    except ValueError as error:
        raise JobError({"params": [str(error)]}) from None
    return job_create(
        kind=JobKind.TRAIN.value,
        actor=actor,
        method="sisa_train" if sisa_shards else "train",
        params=params,
        dataset_version=dataset_version,
        enqueue=enqueue,
    )


# --- what a worker does ---------------------------------------------------------------------------


def job_claim(
    *, job_id: int, worker: str, task_id: str = "", process: ProcessIdentity | None = None
) -> UnlearningJob | None:
    """Take a queued job for ``worker``; return it, or None when there is nothing to take.

    The conditional UPDATE is the whole of the lock: of two deliveries of one message, or of a
    redelivery and the stale sweep's new message, exactly one finds the row queued. A job that
    is ``running`` is taken over only when its attempt is lost (``_attempt_lost_reason``: its
    process is provably gone, or its own heartbeat is stale), again by one conditional UPDATE on
    the attempt seen; a running job whose attempt is alive is left to it. ``process`` is the
    process that will execute the job (this one by default): the job records it for liveness.
    """
    process = process or ProcessIdentity.current()
    now = timezone.now()
    runner = {
        "status": JobStatus.RUNNING,
        "worker": worker,
        "worker_pid": process.pid,
        "runner_host": process.host[:255],
        "runner_started": process.started[:64],
        "task_id": task_id[:64],
        "attempts": F("attempts") + 1,
        "started_at": Coalesce(F("started_at"), Value(now)),
        "progress_at": now,
        "heartbeat_at": now,
        "phase": "",
        "stalled_at": None,
        "cancel_requested": False,
        "error": "",
    }
    with transaction.atomic():
        taken_over = None
        claimed = UnlearningJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(**runner)
        if not claimed:
            seen = UnlearningJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).first()
            reason = _attempt_lost_reason(seen, now=now) if seen is not None else None
            if reason is None or seen.cancel_requested:
                return None
            if not _owned(seen.pk, seen.attempts).update(**runner):
                return None
            taken_over = {"reason": reason, "previous_attempt": seen.attempts, "previous_worker": seen.worker}
        job = UnlearningJob.objects.get(pk=job_id)
        WorkerHeartbeat.objects.filter(hostname=worker).update(current_job_id=job.pk)
        if taken_over:
            _record(job, "taken_over", worker=worker, **taken_over)
        _record(job, "started", worker=worker, attempt=job.attempts)
    if taken_over:
        job_log_append(
            job_id=job.pk,
            text=(
                f"attempt {taken_over['previous_attempt']} on "
                f"{taken_over['previous_worker'] or 'a worker'} lost "
                f"({taken_over['reason']}); taken over"
            ),
        )
    logger.info(
        "unlearning_job.started",
        extra={"job_id": job.pk, "attempt": job.attempts, "worker": worker, "taken_over": bool(taken_over)},
    )
    return job


def _attempt_lost_reason(
    job: UnlearningJob, *, now: datetime, heartbeat_stale_seconds: float | None = None
) -> str | None:
    """Return why a running job's attempt is lost, or None while it may still be working.

    ``runner_gone``: the process that executes it is provably gone (same host, no such process,
    or its pid now belongs to a later process). ``job_heartbeat_stale``: its own heartbeat, which
    that process writes every few seconds, is older than ``LETHE_JOB_HEARTBEAT_STALE_SECONDS``.
    The worker's heartbeat is not consulted: a prefork parent beats on after its child died.
    """
    if process_is_gone(host=job.runner_host, pid=job.worker_pid, started=job.runner_started):
        return "runner_gone"
    stale = (
        settings.LETHE_JOB_HEARTBEAT_STALE_SECONDS
        if heartbeat_stale_seconds is None
        else heartbeat_stale_seconds
    )
    last_beat = job.heartbeat_at or job.progress_at or job.started_at or job.queued_at
    if last_beat < now - timedelta(seconds=stale):
        return "job_heartbeat_stale"
    return None


def _owned(job_id: int, attempt: int):
    return UnlearningJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt)


def job_progress_record(*, job_id: int, attempt: int, done: int, total: int) -> None:
    """Store steps done of total; raise ``JobLost`` when this attempt no longer owns the job."""
    values = {
        "progress_done": max(0, int(done)),
        "progress_total": max(0, int(total)),
        "progress_at": timezone.now(),
    }
    if not _owned(job_id, attempt).update(**values):
        raise JobLost(f"job {job_id} attempt {attempt} no longer owns the job")


def job_device_record(*, job_id: int, attempt: int, device: str) -> None:
    """Store the device a running attempt computes on, so the queue shows it before the job ends."""
    if not _owned(job_id, attempt).update(device=device[:255], progress_at=timezone.now()):
        raise JobLost(f"job {job_id} attempt {attempt} no longer owns the job")


def job_phase_record(*, job_id: int, attempt: int, phase: str) -> None:
    """Store what a running attempt is doing now; a change of phase counts as progress."""
    if not _owned(job_id, attempt).update(phase=phase[:32], progress_at=timezone.now()):
        raise JobLost(f"job {job_id} attempt {attempt} no longer owns the job")


def job_stop_requested(*, job_id: int, attempt: int) -> bool:
    """Return whether an engineer asked the job to stop; raise ``JobLost`` if it is not ours any more."""
    row = _owned(job_id, attempt).values_list("cancel_requested", flat=True).first()
    if row is None:
        raise JobLost(f"job {job_id} attempt {attempt} no longer owns the job")
    return bool(row)


def job_alive_record(*, job_id: int, attempt: int) -> None:
    """Note that the attempt is still working (between progress reports); ``JobLost`` if not ours."""
    if not _owned(job_id, attempt).update(progress_at=timezone.now()):
        raise JobLost(f"job {job_id} attempt {attempt} no longer owns the job")


def job_log_append(*, job_id: int, text: str) -> None:
    """Append lines to the job's log, keeping only the newest ``LETHE_JOB_LOG_MAX_CHARS``.

    One UPDATE with the concatenation done by the database, so concurrent appends never lose a
    line; when the log outgrows the bound its oldest part is dropped. No record text goes here.
    """
    line = text if text.endswith("\n") else text + "\n"
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S ")
    UnlearningJob.objects.filter(pk=job_id).update(
        log=Right(Concat(F("log"), Value(stamp + line)), settings.LETHE_JOB_LOG_MAX_CHARS)
    )


@dataclass
class ProducedModel:
    """The model directory a job wrote, already in its final place, and what to record with it."""

    name: str
    path: Path
    weights_sha256: str
    kind: str
    recipe: dict = field(default_factory=dict)
    dataset_version: DatasetVersion | None = None
    parent: ModelVersion | None = None
    notes: str = ""


def job_succeed(
    *,
    job_id: int,
    attempt: int,
    metrics: dict,
    produced: ProducedModel | None,
    produced_dataset_version: DatasetVersion | None = None,
    device: str = "",
    compute_seconds: float = 0.0,
) -> UnlearningJob:
    """Mark the job succeeded and register its model version, in one transaction.

    Idempotent: a version already recorded for the job is reused, never duplicated. Raises
    ``JobLost`` (and writes nothing) when this attempt no longer owns the job. Then the
    registered success hooks run, and the request moves to verifying when this was the last of
    its decision jobs.
    """

    with transaction.atomic():
        job = UnlearningJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.RUNNING or job.attempts != attempt:
            raise JobLost(f"job {job_id} attempt {attempt} no longer owns the job")
        model = None
        if produced is not None:
            model = model_version_record_produced(
                job=job,
                name=produced.name,
                path=produced.path,
                weights_sha256=produced.weights_sha256,
                kind=produced.kind,
                recipe=produced.recipe,
                dataset_version=produced.dataset_version,
                parent=produced.parent,
                notes=produced.notes,
            )
        job.status = JobStatus.SUCCEEDED
        job.produced_model = model
        if produced_dataset_version is not None:
            job.produced_dataset_version = produced_dataset_version
        job.metrics = metrics
        job.device = (device or job.device)[:255]
        job.compute_seconds = job.compute_seconds + compute_seconds
        job.progress_done = max(job.progress_done, job.progress_total)
        job.finished_at = timezone.now()
        job.error = ""
        job.save()
        _record(
            job,
            "succeeded",
            produced_model_id=model.pk if model else None,
            weights_sha256=model.weights_sha256 if model else None,
            produced_dataset_version_id=job.produced_dataset_version_id,
            compute_seconds=round(job.compute_seconds, 3),
            device=job.device,
        )
        _heartbeat_release(job)
        # what a success starts (verification, probes): settings.LETHE_JOB_SUCCEEDED_HOOKS
        for hook in extension_list("LETHE_JOB_SUCCEEDED_HOOKS"):
            hook(job)
        _request_advance(job)
        checkpoints = job.checkpoint_dir
        transaction.on_commit(lambda: _checkpoints_remove(checkpoints))
    logger.info(
        "unlearning_job.succeeded",
        extra={"job_id": job.pk, "attempt": attempt, "produced_model_id": model.pk if model else None},
    )
    return job


def _checkpoints_remove(path: str) -> None:
    """Delete a finished job's checkpoints: its result is registered and they are no longer needed."""
    if path:
        shutil.rmtree(path, ignore_errors=True)


def job_fail(
    *, job_id: int, attempt: int, error: str, error_type: str, compute_seconds: float = 0.0
) -> UnlearningJob | None:
    """Mark the job failed with its error, keeping its log and checkpoints for a retry.

    Returns None when this attempt no longer owns the job (nothing is written then).
    """
    with transaction.atomic():
        job = UnlearningJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.RUNNING or job.attempts != attempt:
            return None
        job.status = JobStatus.FAILED
        job.error = error[-MAX_ERROR_LENGTH:]
        job.compute_seconds = job.compute_seconds + compute_seconds
        job.finished_at = timezone.now()
        job.save()
        _record(job, "failed", error_type=error_type, attempt=attempt)
        _heartbeat_release(job)
    logger.warning(
        "unlearning_job.failed", extra={"job_id": job_id, "attempt": attempt, "error_type": error_type}
    )
    return job


def job_stopped(
    *, job_id: int, attempt: int, step: int, compute_seconds: float = 0.0
) -> UnlearningJob | None:
    """Mark the job cancelled after its runner stopped at an engineer's request."""
    with transaction.atomic():
        job = UnlearningJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.RUNNING or job.attempts != attempt:
            return None
        job.status = JobStatus.CANCELLED
        job.compute_seconds = job.compute_seconds + compute_seconds
        job.finished_at = timezone.now()
        job.save()
        _record(job, "cancelled", stopped_at_step=step, attempt=attempt)
        _heartbeat_release(job)
        _request_advance(job)
    logger.info("unlearning_job.cancelled", extra={"job_id": job_id, "attempt": attempt, "step": step})
    return job


def job_release_transient(
    *, job_id: int, attempt: int, error_type: str, compute_seconds: float = 0.0
) -> UnlearningJob | None:
    """Give a job back to its queue after a transient error (a lost database or broker connection).

    The job is queued again with a backoff that doubles per attempt, up to
    ``LETHE_JOB_MAX_ATTEMPTS`` attempts; after that it fails like any other error.
    """
    with transaction.atomic():
        job = UnlearningJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.RUNNING or job.attempts != attempt:
            return None
        if job.attempts >= settings.LETHE_JOB_MAX_ATTEMPTS:
            job.status = JobStatus.FAILED
            job.error = f"{error_type}: gave up after {job.attempts} attempts with transient errors"
            job.finished_at = timezone.now()
            job.compute_seconds = job.compute_seconds + compute_seconds
            job.save()
            _record(job, "failed", error_type=error_type, attempt=attempt, transient=True)
            _heartbeat_release(job)
            return job
        countdown = min(MAX_RETRY_COUNTDOWN_SECONDS, 5.0 * 2 ** (job.attempts - 1))
        job.status = JobStatus.QUEUED
        job.queued_at = timezone.now()
        job.worker = ""
        job.worker_pid = None
        job.compute_seconds = job.compute_seconds + compute_seconds
        job.save()
        _record(job, "requeued", reason="transient_error", error_type=error_type, countdown_seconds=countdown)
        _heartbeat_release(job)
        job_enqueue(job=job, countdown=countdown)
    return job


def _heartbeat_release(job: UnlearningJob) -> None:
    if job.worker:
        WorkerHeartbeat.objects.filter(hostname=job.worker, current_job_id=job.pk).update(current_job_id=None)


def _request_advance(job: UnlearningJob) -> None:
    """Move the job's request to verifying once every job made from its decisions has ended well.

    Only jobs created from decisions count (verification jobs of later stages do not). A failed
    job holds the request in executing until it is retried or given up (cancelled); a request
    whose decision jobs were all cancelled stays in executing for the officer to decide.
    """

    if job.erasure_request_id is None or job.decision_id is None:
        return
    erasure_request = job.erasure_request
    if erasure_request.status != RequestStatus.EXECUTING:
        return
    decision_jobs = UnlearningJob.objects.filter(
        erasure_request_id=job.erasure_request_id, decision__isnull=False
    )
    if decision_jobs.exclude(status__in=[JobStatus.SUCCEEDED, JobStatus.CANCELLED]).exists():
        return
    succeeded = list(decision_jobs.filter(status=JobStatus.SUCCEEDED).values_list("pk", flat=True))
    if not succeeded:
        return
    try:
        erasure_request_start_verifying(
            erasure_request=erasure_request,
            actor=None,
            note="Every job of the decision has finished.",
            details={
                "jobs_succeeded": succeeded,
                "jobs_cancelled": list(
                    decision_jobs.filter(status=JobStatus.CANCELLED).values_list("pk", flat=True)
                ),
            },
        )
    except TransitionNotAllowed as refusal:
        # Another stage's precondition holds the request; its own step will move it on.
        logger.info(
            "unlearning_job.request_not_advanced",
            extra={
                "job_id": job.pk,
                "erasure_request_id": job.erasure_request_id,
                "reason": " ".join(refusal.messages),
            },
        )


def request_jobs_unfinished_refusal(erasure_request) -> str | None:
    """Return why a request cannot move to verifying while its decision jobs are not done, or None.

    Registered as a precondition of the "start verifying" step, so the officer's button says
    what is still running instead of moving the request too early.
    """
    pending = UnlearningJob.objects.filter(
        erasure_request=erasure_request,
        decision__isnull=False,
    ).exclude(status__in=[JobStatus.SUCCEEDED, JobStatus.CANCELLED])
    count = pending.count()
    if not count:
        return None
    ids = ", ".join(f"#{pk}" for pk in pending.values_list("pk", flat=True)[:5])
    return (
        f"{erasure_request.reference}: {count} job(s) of the decision have not finished "
        f"successfully ({ids}); retry or cancel them first."
    )


# --- what an engineer does ------------------------------------------------------------------------


def job_cancel(*, job: UnlearningJob, actor) -> UnlearningJob:
    """Stop a job: a queued one at once, a running one at its next step, a failed one is given up."""
    _actor_check(actor)
    with transaction.atomic():
        locked = UnlearningJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in CANCELLABLE_STATUSES:
            raise JobError(
                {
                    "status": [
                        f"Job #{locked.pk} is {locked.get_status_display().lower()}; "
                        "only a queued, running or failed job can be cancelled."
                    ]
                }
            )
        if locked.status == JobStatus.RUNNING:
            if locked.cancel_requested:
                return locked
            locked.cancel_requested = True
            locked.save(update_fields=["cancel_requested"])
            _record(locked, "cancel_requested", actor=actor)
        else:
            previous = locked.status
            locked.status = JobStatus.CANCELLED
            locked.finished_at = timezone.now()
            locked.save(update_fields=["status", "finished_at"])
            _record(locked, "cancelled", actor=actor, previous_status=previous)
            _request_advance(locked)
    job.refresh_from_db()
    return job


def job_retry(*, job: UnlearningJob, actor) -> UnlearningJob:
    """Queue a failed or cancelled job again; it resumes from its last checkpoint.

    The attempt count is kept (it only grows), so the log and the audit trail show every try.
    """
    _actor_check(actor)
    with transaction.atomic():
        locked = UnlearningJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in RETRYABLE_STATUSES:
            raise JobError(
                {
                    "status": [
                        f"Job #{locked.pk} is {locked.get_status_display().lower()}; "
                        "only a failed or cancelled job can be retried."
                    ]
                }
            )
        previous = locked.status
        locked.status = JobStatus.QUEUED
        locked.cancel_requested = False
        locked.queued_at = timezone.now()
        locked.finished_at = None
        locked.worker = ""
        locked.worker_pid = None
        locked.save()
        _record(locked, "retried", actor=actor, previous_status=previous)
        job_enqueue(job=locked)
    job_log_append(job_id=job.pk, text=f"queued again by {roles.actor_name(actor)}")
    job.refresh_from_db()
    return job


def job_params_update(*, job: UnlearningJob, actor, params: Mapping) -> UnlearningJob:
    """Change the method's parameters of a job that has not started; its checkpoints are dropped.

    The parameters are validated by the method's own ``Params`` first. Checkpoints from an
    earlier attempt belong to the old parameters and would be refused on resume, so they go.
    """

    _actor_check(actor)
    with transaction.atomic():
        locked = UnlearningJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != JobStatus.QUEUED:
            raise JobError(
                {
                    "status": [
                        f"Job #{locked.pk} is {locked.get_status_display().lower()}; "
                        "parameters can be changed only while it is queued."
                    ]
                }
            )
        try:
            cleaned = job_params_validate(kind=locked.kind, method=locked.method, params=params)
        except ValueError as error:
            raise JobError({"params": [str(error)]}) from None
        if cleaned == locked.params:
            return locked
        previous = locked.params
        locked.params = cleaned
        locked.save(update_fields=["params"])
        _record(locked, "params_changed", actor=actor, previous_params=previous, params=cleaned)
        checkpoints = locked.checkpoint_dir
        transaction.on_commit(lambda: _checkpoints_remove(checkpoints))
    job.refresh_from_db()
    return job


# --- the stale-job sweep --------------------------------------------------------------------------


def jobs_requeue_stale(*, now: datetime | None = None, stale_seconds: float | None = None) -> list[int]:
    """Queue again every running job whose attempt is lost; return their ids.

    An attempt is lost when its own heartbeat, written by the process that executes it, is older
    than ``stale_seconds`` (``LETHE_JOB_HEARTBEAT_STALE_SECONDS``), or when that process is
    provably gone from this host (``_attempt_lost_reason``), whatever the worker's heartbeat
    says. Each job is put back conditionally on the attempt the sweep saw, so a job that finished
    meanwhile is left alone; a job an engineer asked to stop is cancelled instead. The new attempt
    resumes from the last checkpoint.

    A lost attempt whose process still exists (a frozen or wedged process: its heartbeat stopped,
    it did not die) is killed once its job has changed hands, as ``job_kill`` does: it could write
    nothing more, but it would hold its worker's pool slot for good, and on a one-slot GPU worker
    nothing would ever run the job again.
    """
    now = now or timezone.now()
    requeued = []
    for job in UnlearningJob.objects.filter(status=JobStatus.RUNNING):
        reason = _attempt_lost_reason(job, now=now, heartbeat_stale_seconds=stale_seconds)
        if reason is None:
            continue
        runner = {
            "host": job.runner_host,
            "pid": job.worker_pid,
            "started": job.runner_started,
            "task_id": job.task_id,
        }
        outcome = _lost_attempt_end(job, reason=reason, now=now)
        if outcome == "requeued":
            requeued.append(job.pk)
        if outcome is not None and reason != "runner_gone":
            _lost_runner_stop(job, runner)
    return requeued


def jobs_resend_queued(*, now: datetime | None = None, queued_seconds: float | None = None) -> list[int]:
    """Send again the message of every queued job that its queue's idle workers are not taking; return their ids.

    The row is the job; the message only wakes a worker, and a broker can lose it: Redis restarted
    without persistence, a purged queue, a crash between commit and send. A worker holds one
    message at a time (prefetch 1, acks late), so when a live worker of the job's queue runs no
    job while the job has waited longer than ``queued_seconds`` (``QUEUED_MESSAGE_LOST_SECONDS``,
    beyond any retry countdown), the job's message is gone. Sending it again is harmless if it
    was not: the second claim finds nothing to take. Each resend is an audit event, and a job is
    sent again at most once per ``queued_seconds``.
    """

    now = now or timezone.now()
    wait = QUEUED_MESSAGE_LOST_SECONDS if queued_seconds is None else queued_seconds
    waiting = list(
        UnlearningJob.objects.filter(status=JobStatus.QUEUED, queued_at__lt=now - timedelta(seconds=wait))
        .defer("log")
        .order_by("queued_at", "pk")
    )
    if not waiting:
        return []
    busy = set(UnlearningJob.objects.filter(status=JobStatus.RUNNING).values_list("worker", flat=True))
    idle_queues = set()
    for heartbeat in WorkerHeartbeat.objects.all():
        if heartbeat.hostname not in busy and worker_is_alive(heartbeat, now=now):
            idle_queues.update(heartbeat.queues)
    resent = []
    for job in waiting:
        if job.queue not in idle_queues:
            continue
        recently = AuditEvent.objects.filter(
            object_type=job._meta.label_lower,
            object_id=str(job.pk),
            action="unlearning_job.resent",
            occurred_at__gte=now - timedelta(seconds=wait),
        ).exists()
        if recently:
            continue
        waited = round((now - job.queued_at).total_seconds())
        with transaction.atomic():
            _record(job, "resent", reason="message_presumed_lost", queued_seconds=waited)
            job_enqueue(job=job)
        job_log_append(
            job_id=job.pk,
            text=f"queued for {waited} s while a worker of queue {job.queue} was idle: "
            "its message was presumed lost and sent again",
        )
        logger.warning("unlearning_job.resent", extra={"job_id": job.pk, "queued_seconds": waited})
        resent.append(job.pk)
    return resent


def _lost_attempt_end(job: UnlearningJob, *, reason: str, now: datetime) -> str | None:
    """Take a running job from its lost attempt: cancel, fail or queue it again.

    Return ``"requeued"`` or ``"ended"``, or None when the attempt no longer held the job (it
    finished meanwhile, or another sweep or a takeover came first) and nothing was written.
    """
    if job.cancel_requested:
        with transaction.atomic():
            if not _owned(job.pk, job.attempts).update(status=JobStatus.CANCELLED, finished_at=now):
                return None
            job.refresh_from_db()
            _record(job, "cancelled", reason=reason, worker=job.worker)
            _heartbeat_release(job)
            _request_advance(job)
        return "ended"
    if job.attempts >= settings.LETHE_JOB_MAX_ATTEMPTS:
        # Each attempt lost its process (an out-of-memory kill, say): stop feeding it to workers.
        error = f"gave up after {job.attempts} attempts whose process was lost ({reason})"
        with transaction.atomic():
            if not _owned(job.pk, job.attempts).update(status=JobStatus.FAILED, finished_at=now, error=error):
                return None
            job.refresh_from_db()
            _record(job, "failed", error_type="WorkerLost", reason=reason, worker=job.worker)
            _heartbeat_release(job)
        return "ended"
    worker, attempt = job.worker, job.attempts
    if not _requeue(job, action="requeued", reason=reason, now=now):
        return None
    job_log_append(
        job_id=job.pk,
        text=f"the process running attempt {attempt} on "
        f"{worker or 'a worker'} presumed gone ({reason}); queued again",
    )
    logger.warning("unlearning_job.requeued", extra={"job_id": job.pk, "reason": reason})
    return "requeued"


def _lost_runner_stop(job: UnlearningJob, runner: dict) -> None:
    """Stop the still existing process of an attempt this sweep just took the job from.

    Its pid is signalled only while no other running job records that same process (a pool
    child whose attempt ended without its row saying so may have moved on to the next job);
    otherwise only the attempt's task is revoked, which kills nothing once that task has ended.
    """

    busy_elsewhere = (
        UnlearningJob.objects.filter(
            status=JobStatus.RUNNING,
            runner_host=runner["host"],
            worker_pid=runner["pid"],
            runner_started=runner["started"],
        )
        .exclude(pk=job.pk)
        .exists()
    )
    how = runner_kill(**{**runner, "pid": None if busy_elsewhere else runner["pid"]})
    if how != "none":
        job_log_append(job_id=job.pk, text=f"the process of lost attempt {job.attempts} was stopped ({how})")


def _requeue(job: UnlearningJob, *, action: str, reason: str, now: datetime, actor=None, **details) -> bool:
    """Put a running attempt's job back in its queue, fenced on that attempt; return whether it was.

    The old attempt can write nothing more (every write is conditional on its attempt number);
    a new message is sent after commit and the next claim resumes from the last checkpoint.
    """
    with transaction.atomic():
        changed = _owned(job.pk, job.attempts).update(
            status=JobStatus.QUEUED,
            queued_at=now,
            worker="",
            worker_pid=None,
            runner_host="",
            runner_started="",
            task_id="",
            heartbeat_at=None,
            phase="",
            stalled_at=None,
        )
        if not changed:
            return False
        _heartbeat_release(job)
        previous = {
            "worker": job.worker,
            "previous_attempt": job.attempts,
            "pid": job.worker_pid,
            "task_id": job.task_id or None,
        }
        job.refresh_from_db()
        _record(job, action, actor=actor, reason=reason, **previous, **details)
        job_enqueue(job=job)
    return True


def _stall_limit_seconds(job: UnlearningJob) -> float:
    """Return how long the job may go without progress before the watchdog calls it stalled."""
    if job.phase == JobPhase.LOADING_MODEL:
        return settings.LETHE_JOB_LOAD_STALL_SECONDS
    return settings.LETHE_JOB_STALL_SECONDS


def jobs_flag_stalled(*, now: datetime | None = None) -> list[int]:
    """The watchdog: mark live running jobs without progress for too long as stalled; return their ids.

    A stalled job's process is alive (its heartbeat is fresh) but its progress has not moved for
    ``LETHE_JOB_STALL_SECONDS`` (``LETHE_JOB_LOAD_STALL_SECONDS`` while it loads a model): a
    deadlock, a hung collective, a wedged GPU. The engineer's queue shows it with its last log
    line and offers kill and re-queue (``job_kill``). The flag and its end are audit events.
    """
    now = now or timezone.now()
    flagged = []
    for job in UnlearningJob.objects.filter(status=JobStatus.RUNNING).defer("log"):
        last_progress = job.progress_at or job.started_at or job.queued_at
        if job.stalled_at is not None:
            if last_progress > job.stalled_at and _owned(job.pk, job.attempts).filter(
                stalled_at=job.stalled_at
            ).update(stalled_at=None):
                with transaction.atomic():
                    _record(job, "stall_ended", stalled_since=job.stalled_at.isoformat())
            continue
        silent = (now - last_progress).total_seconds()
        if silent < _stall_limit_seconds(job):
            continue
        with transaction.atomic():
            if not _owned(job.pk, job.attempts).filter(stalled_at__isnull=True).update(stalled_at=now):
                continue
            _record(
                job,
                "stalled",
                seconds_without_progress=round(silent),
                phase=job.phase or None,
                worker=job.worker,
            )
        job_log_append(job_id=job.pk, text=f"watchdog: no progress for {round(silent)} s; the job is stalled")
        logger.warning("unlearning_job.stalled", extra={"job_id": job.pk, "seconds": round(silent)})
        flagged.append(job.pk)
    return flagged


def job_kill(*, job: UnlearningJob, actor) -> UnlearningJob:
    """Kill the process running a job and queue the job again; it resumes from its last checkpoint.

    For a stalled or hung job, which a cancel cannot stop because it never reaches its next
    step. The job is re-queued first, fenced on the running attempt (so whatever that process
    still does is refused), then its process is killed with SIGKILL: directly when it runs on
    this host and is provably the same process, and through Celery's ``revoke(terminate=True)``
    for a pool child elsewhere. Audit event ``killed``.
    """

    _actor_check(actor)
    locked = UnlearningJob.objects.filter(pk=job.pk).first()
    if locked is None or locked.status != JobStatus.RUNNING:
        status = locked.get_status_display().lower() if locked else "gone"
        raise JobError({"status": [f"Job #{job.pk} is {status}; only a running job can be killed."]})
    attempt = locked.attempts
    runner = {
        "host": locked.runner_host,
        "pid": locked.worker_pid,
        "started": locked.runner_started,
        "task_id": locked.task_id,
    }
    if not _requeue(
        locked,
        action="killed",
        reason="killed_by_engineer",
        now=timezone.now(),
        actor=actor,
        stalled=locked.stalled_at is not None,
    ):
        raise JobError({"status": [f"Job #{job.pk} changed meanwhile; reload and try again."]})
    who = roles.actor_name(actor)
    job_log_append(job_id=job.pk, text=f"attempt {attempt} killed by {who}; queued again")
    runner_kill(**runner)
    job.refresh_from_db()
    return job


# --- selectors ------------------------------------------------------------------------------------


def user_may_view_jobs(user) -> bool:
    """Return whether the user may read job state: engineers and officers all, auditors those of requests."""
    return user.is_authenticated and roles.actor_may(user, roles.VIEW_JOBS, roles.VIEW_REQUESTS)


def job_list_for(*, user):
    """Return the jobs ``user`` may read, newest first.

    Engineers and officers (who hold the jobs permission) read every job; auditors, who read
    requests, read the jobs run for requests.
    """
    jobs = UnlearningJob.objects.select_related(
        "erasure_request", "source_model", "produced_model", "dataset_version", "decision"
    )
    if user.has_perm(roles.VIEW_JOBS):
        return jobs
    if user.has_perm(roles.VIEW_REQUESTS):
        return jobs.filter(erasure_request__isnull=False)
    return jobs.none()


def job_last_log_line(job: UnlearningJob) -> str:
    """Return the newest line of the job's log without its time stamp: what a stalled job last said."""
    lines = job.log.rstrip("\n").rsplit("\n", 1)
    last = lines[-1] if lines and lines[-1] else ""
    return last[20:] if len(last) > 20 and last[4] == "-" and last[19] == " " else last


def jobs_running_by_worker() -> dict[str, list[UnlearningJob]]:
    """Return the running jobs per worker name, read from the jobs themselves (not the heartbeats)."""
    running: dict[str, list[UnlearningJob]] = {}
    for job in (
        UnlearningJob.objects.filter(status=JobStatus.RUNNING).defer("log").order_by("started_at", "pk")
    ):
        running.setdefault(job.worker, []).append(job)
    return running


def unlearning_job_to_watch() -> UnlearningJob | None:
    """Return the unlearning job of a request worth watching: a running one first, else the newest."""
    jobs = UnlearningJob.objects.filter(kind=JobKind.UNLEARN, erasure_request__isnull=False).select_related(
        "erasure_request"
    )
    return (
        jobs.filter(status=JobStatus.RUNNING).order_by("-pk").first()
        or jobs.defer("log").order_by("-pk").first()
    )


def job_queue_overview(*, now: datetime | None = None) -> list[dict]:
    """Return, per queue, the queued, running and failed jobs, oldest first, with their age."""
    now = now or timezone.now()
    queues = sorted(
        {q.value for q in WorkQueue} | set(UnlearningJob.objects.values_list("queue", flat=True).distinct())
    )
    jobs = (
        UnlearningJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED])
        .select_related("erasure_request", "source_model")
        .order_by("queued_at", "pk")
    )
    overview = {queue: {"queue": queue, "queued": [], "running": [], "failed": []} for queue in queues}
    for job in jobs:
        since = (
            job.queued_at
            if job.status == JobStatus.QUEUED
            else (job.started_at if job.status == JobStatus.RUNNING else job.finished_at) or job.queued_at
        )
        overview[job.queue][job.status].append(
            {
                "job": job,
                "since": since,
                "age_seconds": max(0.0, (now - since).total_seconds()),
                "last_log_line": job_last_log_line(job) if job.stalled_at else "",
            }
        )
    for entry in overview.values():
        entry["rows"] = entry["running"] + entry["queued"] + entry["failed"]
    return list(overview.values())


#: Where ``jobs_prefetch_for_report`` leaves a request's jobs for ``request_jobs``.
_PREFETCHED_JOBS_ATTR = "_prefetched_request_jobs"


def _request_jobs_queryset():
    return UnlearningJob.objects.select_related(
        "erasure_request", "source_model", "produced_model", "decision"
    ).order_by("pk")


def request_jobs(*, erasure_request) -> list[UnlearningJob]:
    """Return the jobs run for a request, in the order they were created."""
    prefetched = getattr(erasure_request, _PREFETCHED_JOBS_ATTR, None)
    if prefetched is not None:
        return list(prefetched)
    return list(_request_jobs_queryset().filter(erasure_request=erasure_request))


_PREFETCHED_MODEL_INDEX_ATTR = "_lethe_model_versions_index"


def jobs_prefetch_for_report(erasure_requests: list) -> None:
    """Read the jobs of many requests in one query, for ``jobs_for_report`` on a list page.

    The jobs stay on the request instances (``request_jobs`` returns them); list pages use the
    instances for that one page and then drop them.
    """
    from django.db.models import Prefetch, prefetch_related_objects

    erasure_requests = list(erasure_requests)
    prefetch_related_objects(
        erasure_requests,
        Prefetch("unlearning_jobs", queryset=_request_jobs_queryset(), to_attr=_PREFETCHED_JOBS_ATTR),
    )
    # The model lineage (which base a version starts from) is read once for the whole page.
    index = model_versions_index()
    for erasure_request in erasure_requests:
        setattr(erasure_request, _PREFETCHED_MODEL_INDEX_ATTR, index)


def jobs_for_report(erasure_request) -> dict:
    """Return the request's jobs for its audit report: method, parameters, weights in and out, cost.

    Only jobs of a framework (those carrying out decisions) are listed; no record text, no
    identifier, and the device and worker only as names.
    """
    items = []
    index = getattr(erasure_request, _PREFETCHED_MODEL_INDEX_ATTR, None)
    for job in request_jobs(erasure_request=erasure_request):
        if not job.framework:
            continue
        source, produced = job.source_model, job.produced_model
        base = None
        if source is not None:
            index = index if index is not None else model_versions_index()
            base = model_version_base(source, index=index)
        items.append(
            {
                "job_id": job.pk,
                "framework": job.framework,
                "method": job.method,
                "status": job.status,
                "parameters": job.params,
                "model_version_in": f"{source.name} (#{source.pk})" if source else None,
                "model_version_out": f"{produced.name} (#{produced.pk})" if produced else None,
                "weights_sha256_in": source.weights_sha256 if source else None,
                "weights_sha256_out": produced.weights_sha256 if produced else None,
                "device": job.device or None,
                "worker": job.worker or None,
                "compute_seconds": round(job.compute_seconds, 3),
                "attempts": job.attempts,
                "started_at": job.started_at,
                "finished_at": job.finished_at,
                # The pretrained base the source's weights start from: its pretraining data is
                # unknown to Lethe, and deletion never covers it (compliance/reports/limits.py).
                "base_model": (
                    {
                        "model_version": f"{base.name} (#{base.pk})",
                        "weights_sha256": base.weights_sha256,
                        "pretraining_data": "unknown",
                    }
                    if base is not None
                    else None
                ),
            }
        )
    return {"jobs": items}
