"""Bring your own model: import a pretrained base, fine-tune it on a data-set version, as jobs.

Two job kinds on the ``gpu`` queue (``settings.LETHE_JOB_KINDS``):

- ``import`` converts a ``.gguf`` file or a Hugging Face checkpoint directory once into a plain
  fp32 safetensors directory under ``LETHE_DATA_DIR/models`` (``engine.importing``) and registers
  it as a version of kind *base*, with the SHA-256 of the source. Its pretraining data is unknown
  to Lethe: every report on it, or on anything fine-tuned from it, says deletion covers only the
  data Lethe trained on.
- ``finetune`` fine-tunes a base (full parameters or a LoRA adapter, or S LoRA adapters on
  disjoint shards for SISA) on a data-set version's records (``engine.training.finetune``). The
  version it makes names the base as its parent and stores the recipe that remakes it exactly;
  ``retrain`` and ``sisa`` deletion re-fine-tune from the same base (``deletion.services``).

The records are read as training jobs read them (the re-ingestion guard's held-back records left
out), as prompt/answer pairs when the data set's two text fields are a prompt and an answer.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings

from compliance import roles
from unlearning_jobs.jobs.records import (
    MAX_HOLDOUT_FRACTION,
    TRAINING_RECORDS_FILE,
    dataset_version_holds_prompt_answer,
    dataset_version_training_pairs,
    finetune_records,
    training_holdout_split,
)
from unlearning_jobs.jobs.runner import JobOutcome
from unlearning_jobs.jobs.services import JobError, JobNotPermitted, job_create
from unlearning_jobs.models import DatasetVersion, JobKind, JobPhase, ModelKind, ModelVersion, UnlearningJob
from unlearning_jobs.registry.services import (
    IMPORT_FILE,
    MAX_NAME_LENGTH,
    MAX_NOTES_LENGTH,
    ModelRegistrationError,
    model_import_source_check,
    model_kind_detect,
    model_weights_verify,
)

logger = logging.getLogger(__name__)

#: Versions a fine-tune may start from: plain model directories (not adapters or ensembles).
FINETUNABLE_KINDS = (ModelKind.BASE.value, ModelKind.HF.value, ModelKind.FINETUNE.value)
#: Keys of a fine-tuning job's parameters that are the job's, not the engine's ``FinetuneParams``.
FINETUNE_JOB_KEYS = ("name", "sisa_shards", "sisa_slices", "holdout_fraction")


def _actor_check(actor) -> None:
    if not roles.actor_may(actor, roles.OPERATE_JOBS, system=True):
        raise JobNotPermitted(f"{roles.actor_name(actor)} may not import or fine-tune models.")


def _name_check(value: Any, *, label: str, max_length: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{label}: must be text")
    text = value.strip()
    if required and not text:
        raise ValueError(f"{label}: must not be empty")
    if len(text) > max_length:
        raise ValueError(f"{label}: must be at most {max_length} characters")
    return text


# --- import ---------------------------------------------------------------------------------------


def import_params_validate(method: str, params: Mapping[str, Any] | None) -> dict:
    """Return an import job's parameters checked: ``name``, ``source_path``, ``source_kind``, ``notes``."""
    data = dict(params or {})
    unknown = sorted(set(data) - {"name", "source_path", "source_kind", "notes"})
    if unknown:
        raise ValueError(f"ImportJobParams: unknown field(s) {', '.join(unknown)}")
    if data.get("source_kind") not in ("gguf", "hf_dir"):
        raise ValueError("ImportJobParams.source_kind: must be gguf or hf_dir")
    return {
        "name": _name_check(data.get("name"), label="ImportJobParams.name", max_length=MAX_NAME_LENGTH),
        "source_path": _name_check(
            data.get("source_path"), label="ImportJobParams.source_path", max_length=1024
        ),
        "source_kind": data["source_kind"],
        "notes": _name_check(
            data.get("notes", ""), label="ImportJobParams.notes", max_length=MAX_NOTES_LENGTH, required=False
        ),
    }


def model_import_job_create(
    *, name: str, path: str | os.PathLike, actor, notes: str = "", enqueue: bool = True
) -> UnlearningJob:
    """Queue the conversion of a ``.gguf`` file or a checkpoint directory into a base model version.

    The path is confined to the allowed roots and checked for its kind now (``ModelRegistrationError``
    on ``path``), and again by the job, which reads it later.
    """
    _actor_check(actor)
    source, source_kind = model_import_source_check(path)
    try:
        params = import_params_validate(
            "", {"name": name, "source_path": str(source), "source_kind": source_kind, "notes": notes}
        )
    except ValueError as error:
        field = "notes" if ".notes" in str(error) else "name"
        raise ModelRegistrationError({field: [str(error).split(": ", 1)[-1].capitalize() + "."]}) from None
    return job_create(
        kind=JobKind.IMPORT.value, actor=actor, method=source_kind, params=params, enqueue=enqueue
    )


def _import_cache_dir() -> Path | None:
    value = getattr(settings, "LETHE_IMPORT_CACHE_DIR", "")
    return Path(value) if value else None


def _cached_conversion(cache: Path, source_sha256: str) -> Path | None:
    """Return a complete conversion of the source with this SHA-256 kept in the cache, or None."""
    if not cache.is_dir():
        return None
    for candidate in sorted(cache.iterdir()):
        marker = candidate / IMPORT_FILE
        if not marker.is_file() or not (candidate / "config.json").is_file():
            continue
        try:
            described = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if described.get("source_sha256") == source_sha256:
            return candidate
    return None


def _link_tree(source: Path, target: Path) -> None:
    """Copy a directory tree as hard links where the file system allows (models are never written to)."""

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def run_import_job(context) -> JobOutcome:
    """Convert the job's source into a base model directory (or reuse a cached conversion of it)."""
    from unlearning_jobs.engine.checkpoints import file_sha256
    from unlearning_jobs.engine.importing import import_model, read_import, tree_sha256

    job = context.job
    params = import_params_validate(job.method, job.params)
    source, source_kind = model_import_source_check(params["source_path"])
    context.phase(JobPhase.LOADING_MODEL)
    source_sha = file_sha256(source) if source_kind == "gguf" else tree_sha256(source)
    context.log(f"importing a {source_kind} source of SHA-256 {source_sha}")
    staging = context.staging_dir
    if staging.exists():
        shutil.rmtree(staging)
    cache = _import_cache_dir()
    cached = _cached_conversion(cache, source_sha) if cache is not None else None
    if cached is not None:
        _link_tree(cached, staging)
        context.log(f"reused the conversion cached for this SHA-256 ({cached.name})")
        description = read_import(staging) or {}
        seconds = 0.0
    else:
        imported = import_model(source, staging, overwrite=True)
        description = read_import(staging) or {}
        seconds = imported.seconds
        context.log(
            f"converted in {seconds:.1f} s: {imported.architecture}, {imported.parameters} parameters"
        )
        if cache is not None:
            target = cache / f"import-{source_sha[:16]}"
            if not target.exists():
                cache.mkdir(parents=True, exist_ok=True)
                partial = cache / f".partial-{source_sha[:16]}-{os.getpid()}"
                _link_tree(staging, partial)
                os.rename(partial, target)
    context.phase(JobPhase.SAVING)
    if description.get("source_sha256") != source_sha:
        raise ValueError("the converted model does not record the SHA-256 of its source")
    return JobOutcome(
        metrics={
            "source_kind": source_kind,
            "source_sha256": source_sha,
            "architecture": description.get("architecture"),
            "model_type": description.get("model_type"),
            "parameters": description.get("parameters"),
            "dtype": description.get("dtype"),
            "conversion_seconds": round(seconds, 3),
            "reused_cached_conversion": cached is not None,
            "pretraining_data": "unknown",
        },
        model_name=params["name"],
        model_kind=ModelKind.BASE.value,
        model_notes=params["notes"]
        or f"Imported by job #{job.pk} from a {source_kind} file; pretraining data unknown to Lethe.",
    )


# --- fine-tuning ---------------------------------------------------------------------------------


def finetune_params_validate(method: str, params: Mapping[str, Any] | None) -> dict:
    """Return a fine-tuning job's parameters: ``name``, the SISA layout if any, and ``FinetuneParams``.

    ``sisa_shards`` trains that many LoRA adapters on disjoint shards (``sisa_slices`` slices
    each), which ``sisa`` unlearning then retrains in part; it needs ``adapter: "lora"`` and one
    process. ``holdout_fraction`` of the version's records are never trained on
    (``jobs.records.training_holdout_split``): verification's non-members. Every other key is a
    field of the engine's ``FinetuneParams``, checked there.
    """
    from unlearning_jobs.engine.training.finetune import FinetuneParams

    data = dict(params or {})
    name = _name_check(
        data.pop("name", "fine-tune"), label="FinetuneJobParams.name", max_length=MAX_NAME_LENGTH
    )
    shards = data.pop("sisa_shards", None)
    slices = data.pop("sisa_slices", 1)
    for field, value in (("sisa_shards", shards), ("sisa_slices", slices)):
        if value is None and field == "sisa_shards":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
            raise ValueError(
                f"FinetuneJobParams.{field}: must be a whole number between 1 and 64, got {value!r}"
            )
    holdout = data.pop("holdout_fraction", 0.0)
    if (
        isinstance(holdout, bool)
        or not isinstance(holdout, int | float)
        or not 0 <= holdout <= MAX_HOLDOUT_FRACTION
    ):
        raise ValueError(
            f"FinetuneJobParams.holdout_fraction: must be a number between 0 and {MAX_HOLDOUT_FRACTION}, got {holdout!r}"
        )
    if isinstance(data.get("target_modules"), list):
        data["target_modules"] = tuple(data["target_modules"])
    finetune = FinetuneParams.from_dict(data)
    if shards is not None and finetune.adapter != "lora":
        raise ValueError('FinetuneJobParams.sisa_shards: SISA over adapters needs adapter "lora"')
    if shards is not None and finetune.num_processes != 1:
        raise ValueError(
            "FinetuneJobParams.sisa_shards: SISA adapters train in one process (num_processes 1)"
        )
    return {
        "name": name,
        "sisa_shards": shards,
        "sisa_slices": slices,
        "holdout_fraction": float(holdout),
        **finetune.as_dict(),
    }


def finetune_job_create(
    *,
    base_model: ModelVersion,
    dataset_version: DatasetVersion,
    actor,
    params: Mapping[str, Any] | None = None,
    enqueue: bool = True,
) -> UnlearningJob:
    """Queue a fine-tune of ``base_model`` on ``dataset_version``; it registers a version whose parent is the base.

    Without a ``format`` the records are prompt/answer pairs when the data set's two text fields
    are a prompt and an answer (``question``/``answer``, ``prompt``/``response`` …), plain text
    otherwise.
    """
    _actor_check(actor)
    if base_model.kind not in FINETUNABLE_KINDS:
        raise JobError(
            {
                "base_model": [
                    f"{base_model} is {base_model.get_kind_display().lower()}; fine-tune a base or a full model."
                ]
            }
        )
    params = dict(params or {})
    paired = dataset_version_holds_prompt_answer(dataset_version)
    if "format" not in params:
        params["format"] = "prompt_answer" if paired else "text"
    elif params["format"] == "prompt_answer" and not paired:
        fields = ", ".join(dataset_version.text_fields or []) or "one text field"
        raise JobError(
            {
                "params": [
                    f"FinetuneParams.format: prompt_answer needs a data set whose two text fields are a prompt "
                    f"and an answer (e.g. question, answer); {dataset_version} has {fields}."
                ]
            }
        )
    method = "sisa_finetune" if params.get("sisa_shards") else "finetune"
    return job_create(
        kind=JobKind.FINETUNE.value,
        actor=actor,
        method=method,
        params=params,
        source_model=base_model,
        dataset_version=dataset_version,
        enqueue=enqueue,
    )


def run_finetune_job(context) -> JobOutcome:
    """Fine-tune the job's base on its data-set version; resume from the job's checkpoints."""
    from unlearning_jobs.engine.device import device_label
    from unlearning_jobs.engine.training.finetune import FinetuneParams
    from unlearning_jobs.engine.training.launch import finetune_launch
    from unlearning_jobs.engine.training.sisa_adapters import train_sisa_adapters

    job = context.job
    base, version = job.source_model, job.dataset_version
    if base is None or version is None:
        raise ValueError("a fine-tuning job needs a base model version and a data-set version")
    model_weights_verify(base)  # the base's weights must be the ones registered
    cleaned = finetune_params_validate(job.method, job.params)
    name, shards, slices, holdout = (cleaned.pop(key) for key in FINETUNE_JOB_KEYS)
    params = FinetuneParams.from_dict({**cleaned, "target_modules": tuple(cleaned["target_modules"])})
    context.phase(JobPhase.LOADING_DATA)
    pairs, held_out = training_holdout_split(dataset_version_training_pairs(version), fraction=holdout)
    if not pairs:
        raise ValueError(f"{version} leaves no record to fine-tune on")
    records = finetune_records(pairs, record_format=params.format)
    data_identity = {
        "dataset": version.dataset.name,
        "dataset_version_id": version.pk,
        "manifest_sha256": version.manifest_sha256,
        "record_format": params.format,
    }
    resumed = context.resumable_step()
    device = context.device_record()
    context.log(
        f"fine-tuning {base} ({params.adapter}, {params.format}) on {len(records)} records of {version} on {device}"
        + (f" ({len(held_out)} held out, never trained on)" if held_out else "")
        + (f" as {shards} LoRA adapters x {slices} slices (SISA)" if shards else "")
        + (f"; resuming from checkpoint step {resumed}" if resumed else "")
    )
    common = {
        "base_model_dir": base.path,
        "records": records,
        "params": params,
        "output_dir": context.staging_dir,
        "data_identity": data_identity,
        "progress": context.progress,
        "should_stop": context.should_stop,
        "checkpoint_dir": context.checkpoint_dir,
        "device": context.device,
        "overwrite": True,
    }
    if shards:
        result = train_sisa_adapters(**common, shards=shards, slices=slices)
        metrics = {
            "steps": result.steps,
            "full_training_steps": result.full_training_steps,
            "shards": shards,
            "slices": slices,
            "epochs_per_slice": result.epochs_per_slice,
        }
    else:
        result = finetune_launch(**common, checkpoint_every=context.checkpoint_every)
        metrics = {
            "steps": result.steps,
            "total_steps": result.total_steps,
            "tokens": result.tokens,
            "final_loss": result.final_loss,
            "epoch_losses": list(result.epoch_losses),
            "engine_compute_seconds": result.compute_seconds,
            "resumed_from_step": result.resumed_from_step,
            "output_kind": result.output_kind,
        }
    metrics.update(
        {
            "records": len(records),
            "held_out_records": len(held_out),
            "record_format": params.format,
            "adapter": params.adapter,
            "seconds": result.seconds,
            "base_model_id": base.pk,
            "base_weights_sha256": base.weights_sha256,
            "base_model": "pretraining data unknown; deletion covers the fine-tuning data only",
        }
    )
    (context.staging_dir / TRAINING_RECORDS_FILE).write_text(
        "".join(f"{record_id}\n" for record_id, _ in pairs), encoding="utf-8"
    )
    context.log(f"fine-tuned in {result.seconds:.1f} s on {result.device}")
    return JobOutcome(
        metrics=metrics,
        model_name=name,
        model_kind=model_kind_detect(context.staging_dir),
        model_dataset_version=version,
        model_parent=base,
        device=device_label(result.device),
        model_notes=f"Fine-tuned from {base.name} (#{base.pk}) by job #{job.pk}.",
    )
