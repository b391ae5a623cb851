"""Run one claimed job: call the engine with progress, stop and checkpoints, then record the end.

The task (``job_tasks.job_run``) claims the job and hands it here. A *runner* per job kind
turns the job's rows into engine arguments and returns what it made; this module owns what
every kind shares:

- progress written every ``LETHE_JOB_PROGRESS_SECONDS`` and a stop check at the same pace, both
  fenced by the attempt number (``jobs.JobLost`` when the job was taken away);
- checkpoints in ``LETHE_DATA_DIR/jobs/<id>/checkpoints`` every ``LETHE_JOB_CHECKPOINT_EVERY``
  steps, which the next attempt resumes from, unless the engine finds they were made for other
  inputs (an erasure approved between the attempts holds back records the job then leaves out):
  then they are dropped and the attempt starts from the beginning, once;
- the output written to ``jobs/<id>/staging``, stamped with ``lethe_job.json`` and renamed to
  ``models/<name>-job<id>`` before the one transaction that registers it and marks the job
  succeeded. A kill between the rename and the commit leaves a finished directory that the next
  attempt adopts instead of training again; a kill before it leaves nothing under ``models/``.

The runner of each job kind is listed in ``settings.LETHE_JOB_KINDS`` (``jobs/kinds.py``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from unlearning_jobs.jobs import kinds
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.jobs.liveness import JobHeartbeat
from unlearning_jobs.models import DatasetVersion, JobPhase, ModelVersion, UnlearningJob
from unlearning_jobs.registry.services import model_dir_name, model_recipe_read, models_root
from unlearning_jobs.workers.services import worker_device_record

logger = logging.getLogger(__name__)

JOB_OUTPUT_FILE = "lethe_job.json"
JOB_OUTPUT_FORMAT = "lethe-job-output/1"
#: Errors after which the same attempt may well succeed later: the job goes back to its queue.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError)


@dataclass
class JobOutcome:
    """What a runner made: metrics, and the model directory it wrote into ``context.staging_dir``."""

    metrics: dict
    model_name: str | None = None
    model_kind: str = "hf"
    model_dataset_version: DatasetVersion | None = None
    model_parent: ModelVersion | None = None
    model_notes: str = ""
    produced_dataset_version: DatasetVersion | None = None
    device: str = ""


@dataclass
class JobContext:
    """Everything a runner needs besides the job row, with the fenced callbacks for the engine."""

    job: UnlearningJob
    attempt: int
    checkpoint_dir: Path
    staging_dir: Path
    checkpoint_every: int
    device: str | None
    heartbeat: JobHeartbeat | None = None
    _last_write: float = field(default=0.0, repr=False)
    _last_check: float = field(default=0.0, repr=False)
    _stop: bool = field(default=False, repr=False)
    _phase: str = field(default="", repr=False)

    def progress(self, done: int, total: int) -> None:
        """Store progress at most every ``LETHE_JOB_PROGRESS_SECONDS``, and always the last step.

        The first report after loading switches the phase to computing.
        """
        if self._phase != JobPhase.COMPUTING:
            self.phase(JobPhase.COMPUTING)
        now = time.monotonic()
        if done < total and now - self._last_write < settings.LETHE_JOB_PROGRESS_SECONDS:
            return
        self._last_write = now
        jobs.job_progress_record(job_id=self.job.pk, attempt=self.attempt, done=done, total=total)

    def device_record(self) -> str:
        """Resolve the device this job computes on, show it on the job while it runs; return its label.

        Also describes the device on the worker's row: this process does the model work, so it
        (not the worker's parent, which must never initialise CUDA) is the one that can say.
        """
        from unlearning_jobs.engine.device import describe_device, device_label, resolve_device

        device = resolve_device(self.device)[0]
        label = device_label(str(device))
        jobs.job_device_record(job_id=self.job.pk, attempt=self.attempt, device=label)
        if self.job.worker:
            worker_device_record(
                hostname=self.job.worker, device=describe_device(device.type == "cuda").as_dict()
            )
        return label

    def phase(self, phase: str) -> None:
        """Say what the attempt is doing now (``JobPhase``); it counts as progress for the watchdog."""
        jobs.job_phase_record(job_id=self.job.pk, attempt=self.attempt, phase=phase)
        self._phase = phase

    def should_stop(self) -> bool:
        """Return whether an engineer cancelled the job, reading the row at the progress pace.

        Raises ``JobLost`` as soon as the job's heartbeat found the attempt no longer owns it.
        """
        if self.heartbeat is not None and self.heartbeat.lost.is_set():
            raise jobs.JobLost(f"job {self.job.pk} attempt {self.attempt} no longer owns the job")
        now = time.monotonic()
        if not self._stop and now - self._last_check >= settings.LETHE_JOB_PROGRESS_SECONDS:
            self._last_check = now
            self._stop = jobs.job_stop_requested(job_id=self.job.pk, attempt=self.attempt)
        return self._stop

    def log(self, message: str) -> None:
        """Append one line to the job's log (never record text or identifiers); it also says the
        attempt is alive between progress reports, and stops it (``JobLost``) if it is not ours."""
        jobs.job_alive_record(job_id=self.job.pk, attempt=self.attempt)
        jobs.job_log_append(job_id=self.job.pk, text=message)

    def resumable_step(self) -> int | None:
        """Return the step of the newest checkpoint a previous attempt left, or None."""
        from unlearning_jobs.engine.checkpoints import list_checkpoints

        found = list_checkpoints(self.checkpoint_dir)
        return found[-1][0] if found else None


# --- execution ------------------------------------------------------------------------------------


def job_model_dir(job: UnlearningJob, name: str) -> Path:
    """Return the final folder of the model version the job produces."""

    return models_root() / model_dir_name(name=name, job_id=job.pk)


def _staging_dir(job: UnlearningJob) -> Path:
    return jobs.job_dir(job.pk) / "staging"


def _output_stamp(path: Path) -> dict | None:
    stamp = path / JOB_OUTPUT_FILE
    if not stamp.is_file():
        return None
    data = json.loads(stamp.read_text(encoding="utf-8"))
    return data if data.get("format") == JOB_OUTPUT_FORMAT else None


def _write_stamp(directory: Path, data: dict) -> None:
    tmp = directory / f".{JOB_OUTPUT_FILE}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, directory / JOB_OUTPUT_FILE)


def _stamp_for(job: UnlearningJob, outcome: JobOutcome, sha: str) -> dict:
    return {
        "format": JOB_OUTPUT_FORMAT,
        "job_id": job.pk,
        "kind": job.kind,
        "method": job.method,
        "framework": job.framework,
        "weights_sha256": sha,
        "metrics": outcome.metrics,
        "model_name": outcome.model_name,
        "model_kind": outcome.model_kind,
        "model_dataset_version_id": outcome.model_dataset_version.pk
        if outcome.model_dataset_version
        else None,
        "model_parent_id": outcome.model_parent.pk if outcome.model_parent else None,
        "model_notes": outcome.model_notes,
        "produced_dataset_version_id": (
            outcome.produced_dataset_version.pk if outcome.produced_dataset_version else None
        ),
        "device": outcome.device,
    }


def _outcome_from_stamp(stamp: dict) -> JobOutcome:
    def version(model, pk):
        return model.objects.get(pk=pk) if pk is not None else None

    return JobOutcome(
        metrics=stamp["metrics"],
        model_name=stamp["model_name"],
        model_kind=stamp["model_kind"],
        model_dataset_version=version(DatasetVersion, stamp["model_dataset_version_id"]),
        model_parent=version(ModelVersion, stamp["model_parent_id"]),
        model_notes=stamp.get("model_notes", ""),
        produced_dataset_version=version(DatasetVersion, stamp["produced_dataset_version_id"]),
        device=stamp.get("device", ""),
    )


def _finished_output(job: UnlearningJob) -> tuple[Path, dict] | None:
    """Return a model directory of this job that an earlier attempt finished but did not register."""
    if job.produced_model_id is not None:
        return None

    models_dir = models_root()
    if models_dir.is_dir():
        suffix = f"-job{job.pk}"
        for candidate in models_dir.iterdir():
            if candidate.is_dir() and candidate.name.endswith(suffix):
                stamp = _output_stamp(candidate)
                if stamp is not None and stamp["job_id"] == job.pk:
                    return candidate, stamp
    staging = _staging_dir(job)
    stamp = _output_stamp(staging) if staging.is_dir() else None
    if stamp is not None and stamp["job_id"] == job.pk:
        return _publish(job, staging, stamp), stamp
    return None


def _publish(job: UnlearningJob, staging: Path, stamp: dict) -> Path:
    """Rename the finished staging folder into ``models/``; the rename is the commit point on disk."""
    final = job_model_dir(job, stamp["model_name"] or job.kind)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        existing = _output_stamp(final)
        if existing is None or existing["job_id"] != job.pk:
            raise FileExistsError(f"{final} exists and was not written by job {job.pk}")
        return final
    os.rename(staging, final)
    return final


def summarise_error(error: BaseException) -> str:
    """Return the error and the innermost frames of its traceback, for the job page."""
    frames = traceback.extract_tb(error.__traceback__)[-6:]
    lines = [f"{type(error).__name__}: {error}"]
    lines += [f"  at {Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames]
    return "\n".join(lines)


def job_execute(*, job: UnlearningJob) -> str:
    """Run a job this worker just claimed to its end and record the end; return the final status.

    A deterministic error fails the job with the log kept and no model registered; a transient
    one gives it back to the queue; a cancel stops it at the next step; a ``JobLost`` (the job
    was re-queued or taken over meanwhile) ends this attempt without writing anything.
    """
    attempt = job.attempts
    started = time.monotonic()
    if settings.LETHE_JOB_TORCH_THREADS:
        import torch

        # On a CPU worker sharing its cores, fewer intra-op threads than cores is often faster.
        torch.set_num_threads(settings.LETHE_JOB_TORCH_THREADS)
    context = JobContext(
        job=job,
        attempt=attempt,
        checkpoint_dir=jobs.job_checkpoint_dir(job.pk),
        staging_dir=_staging_dir(job),
        checkpoint_every=settings.LETHE_JOB_CHECKPOINT_EVERY,
        device=settings.LETHE_JOB_DEVICE or None,
    )
    context.staging_dir.parent.mkdir(parents=True, exist_ok=True)
    # The job's own heartbeat, from this process, for as long as the attempt runs (liveness.py).
    with JobHeartbeat(job_id=job.pk, attempt=attempt) as heartbeat:
        context.heartbeat = heartbeat
        return _execute(job=job, context=context, attempt=attempt, started=started)


def _execute(*, job: UnlearningJob, context: JobContext, attempt: int, started: float) -> str:
    from unlearning_jobs.engine.checkpoints import weights_sha256
    from unlearning_jobs.engine.training import TrainingCancelled

    runner = kinds.job_runner_for(job.kind)
    try:
        if runner is None:
            raise ValueError(f"no runner is registered for {job.kind!r} jobs on this worker")
        context.log(f"attempt {attempt} started on {job.worker or 'this process'}")
        finished = _finished_output(job)
        if finished is not None:
            final, stamp = finished
            context.log(f"adopting the output an earlier attempt finished: {final.name}")
            outcome = _outcome_from_stamp(stamp)
            sha = stamp["weights_sha256"]
        else:
            outcome = _run_from_usable_checkpoints(runner, context)
            sha = None
            final = None
            if outcome.model_name is not None:
                sha = weights_sha256(context.staging_dir)
                stamp = _stamp_for(job, outcome, sha)
                _write_stamp(context.staging_dir, stamp)
                final = _publish(job, context.staging_dir, stamp)
        produced = None
        if final is not None:
            produced = jobs.ProducedModel(
                name=outcome.model_name,
                path=final,
                weights_sha256=sha,
                kind=outcome.model_kind,
                recipe=model_recipe_read(final),
                dataset_version=outcome.model_dataset_version,
                parent=outcome.model_parent,
                notes=outcome.model_notes,
            )
        jobs.job_succeed(
            job_id=job.pk,
            attempt=attempt,
            metrics=outcome.metrics,
            produced=produced,
            produced_dataset_version=outcome.produced_dataset_version,
            device=outcome.device,
            compute_seconds=time.monotonic() - started,
        )
        jobs.job_log_append(
            job_id=job.pk, text=f"succeeded{f'; model version at {final.name}' if final else ''}"
        )
        return "succeeded"
    except jobs.JobLost:
        logger.info("unlearning_job.attempt_superseded", extra={"job_id": job.pk, "attempt": attempt})
        return "lost"
    except TrainingCancelled as stop:
        if (
            jobs.job_stopped(
                job_id=job.pk, attempt=attempt, step=stop.step, compute_seconds=time.monotonic() - started
            )
            is None
        ):
            return "lost"
        jobs.job_log_append(job_id=job.pk, text=f"cancelled at step {stop.step} of {stop.total}")
        return "cancelled"
    except TRANSIENT_ERRORS as error:
        logger.warning(
            "unlearning_job.transient_error",
            extra={"job_id": job.pk, "attempt": attempt, "error_type": type(error).__name__},
        )
        error_type = type(error).__name__
        released = _once_the_database_answers(
            lambda: jobs.job_release_transient(
                job_id=job.pk,
                attempt=attempt,
                error_type=error_type,
                compute_seconds=time.monotonic() - started,
            )
        )
        return released.status if released else "lost"
    except Exception as error:  # any other error is deterministic: fail with the log kept
        summary = summarise_error(error)
        if (
            jobs.job_fail(
                job_id=job.pk,
                attempt=attempt,
                error=summary,
                error_type=type(error).__name__,
                compute_seconds=time.monotonic() - started,
            )
            is None
        ):
            return "lost"
        jobs.job_log_append(job_id=job.pk, text="failed: " + summary)
        return "failed"


def _run_from_usable_checkpoints(runner, context: JobContext) -> JobOutcome:
    """Run the job's runner; if an earlier attempt's checkpoints were made for other inputs, start over.

    A job's inputs can change between its attempts: records the guard holds back for an erasure
    approved meanwhile are left out of what it trains on. The engine refuses to resume checkpoints
    made for other data or another recipe (``CheckpointMismatch``); they are no use to this job any
    more, and keeping them would fail every retry the same way. So they are dropped, with the
    staging folder, and the runner runs again from the beginning within this attempt, once.
    """
    from unlearning_jobs.engine.training import CheckpointMismatch

    try:
        return runner(context)
    except CheckpointMismatch as mismatch:
        if not context.checkpoint_dir.is_dir() or not any(context.checkpoint_dir.iterdir()):
            raise
        context.log(
            f"the checkpoints an earlier attempt left do not fit this attempt's inputs ({mismatch}); "
            "dropped, starting again from the beginning"
        )
    shutil.rmtree(context.checkpoint_dir)
    context.checkpoint_dir.mkdir(parents=True)
    shutil.rmtree(context.staging_dir, ignore_errors=True)
    return runner(context)


def _once_the_database_answers(write: Callable[[], Any]) -> Any:
    """Run ``write``, retrying while the database is away (a restart, a failover); return its result.

    A lost database is the commonest transient error, and the connection it broke cannot be used
    again: each try closes it so the next one connects afresh. The tries stop after
    ``LETHE_JOB_HEARTBEAT_STALE_SECONDS``; the error is raised then, the attempt's heartbeat stops,
    and the stale-job sweep gives the job back instead.
    """
    deadline = time.monotonic() + settings.LETHE_JOB_HEARTBEAT_STALE_SECONDS
    delay = 0.5
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError):
            connection.close()
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 5.0)


def job_run_inline(*, job: UnlearningJob) -> str:
    """Claim and run a queued job in this process, exactly as a worker would; return its end status."""
    import socket

    claimed = jobs.job_claim(job_id=job.pk, worker=f"inline@{socket.gethostname()}")
    if claimed is None:
        return "not-queued"
    return job_execute(job=claimed)
