"""The model registry: register checkpoints by path, record the versions jobs produce, read them.

A model version is a directory that ``AutoModelForCausalLM.from_pretrained`` loads (or a SISA
directory of such shards) plus the SHA-256 of its weights, taken once at registration. Paths are
confined to ``LETHE_DATA_DIR`` and ``LETHE_IMPORT_ROOTS`` after following symbolic links, so a
form or an API call cannot make a worker read an arbitrary folder of the server.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from compliance import roles
from compliance.audit import audit_event_record
from compliance.paths import NOT_ALLOWED, PathMissing, PathNotAllowed, confined_path
from compliance.text import LINE_CONTROLS, control_character_found
from unlearning_jobs.models import DatasetVersion, ModelKind, ModelVersion

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 200
MAX_NOTES_LENGTH = 4000
RECIPE_FILE = "lethe_recipe.json"
SISA_MANIFEST = "sisa.json"


class ModelRegistrationError(ValidationError):
    """The checkpoint cannot be registered; ``message_dict`` names the field and the problem."""


class ModelActionNotPermitted(PermissionDenied):
    """The actor's role does not allow registering models."""


def models_root() -> Path:
    """Return the folder under which Lethe writes the model versions its jobs produce."""
    return Path(settings.LETHE_DATA_DIR) / "models"


def model_path_check(path: str | os.PathLike) -> tuple[Path, str]:
    """Return ``(resolved directory, kind)`` of a checkpoint, or raise ``ModelRegistrationError``.

    The directory must lie inside an allowed root as written and once links are followed
    (``compliance.paths``), hold a
    ``config.json`` (Hugging Face) or a ``sisa.json`` (SISA ensemble), and hold weight files.
    """
    from unlearning_jobs.engine.checkpoints import weight_files

    if not str(path).strip():
        raise ModelRegistrationError({"path": ["Give the path of the checkpoint directory."]})
    if control_character_found(str(path)):
        raise ModelRegistrationError({"path": ["The path holds a control character; remove it."]})
    raw = Path(path)
    try:
        resolved = confined_path(raw)
    except PathNotAllowed:
        raise ModelRegistrationError(
            {
                "path": [
                    f"{NOT_ALLOWED} Checkpoints are registered from LETHE_DATA_DIR or a folder of LETHE_IMPORT_ROOTS "
                    "(docs/jobs.md)."
                ]
            }
        ) from None
    except PathMissing:
        raise ModelRegistrationError({"path": [f"{raw.name}: no such directory."]}) from None
    if not resolved.is_dir():
        raise ModelRegistrationError({"path": [f"{raw}: is not a directory."]})
    if (resolved / SISA_MANIFEST).is_file():
        kind = ModelKind.SISA
    elif (resolved / "config.json").is_file():
        kind = ModelKind.HF
    else:
        raise ModelRegistrationError(
            {
                "path": [
                    f"{raw}: holds neither config.json (a Hugging Face checkpoint) nor sisa.json (a SISA "
                    "ensemble)."
                ]
            }
        )
    if not weight_files(resolved):
        raise ModelRegistrationError(
            {"path": [f"{raw}: has no weight files (model.safetensors or pytorch_model.bin)."]}
        )
    if kind == ModelKind.HF:
        _causal_lm_config_check(resolved, raw=raw)
    return resolved, kind.value


def _causal_lm_config_check(directory: Path, *, raw: Path) -> None:
    """Refuse a checkpoint whose ``config.json`` is unreadable or names no causal-LM architecture."""
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelRegistrationError({"path": [f"{raw}: config.json cannot be read ({error})."]}) from None
    if not isinstance(config, dict) or not config.get("model_type"):
        raise ModelRegistrationError({"path": [f"{raw}: config.json names no model_type."]})
    architectures = config.get("architectures") or []
    if architectures and not any(
        str(name).endswith(("ForCausalLM", "LMHeadModel")) for name in architectures
    ):
        raise ModelRegistrationError(
            {
                "path": [
                    f"{raw}: config.json names {', '.join(map(str, architectures))}, not a causal language model."
                ]
            }
        )


def model_recipe_read(directory: Path) -> dict:
    """Return the training recipe stored beside the weights, or an empty dict for foreign models.

    For a SISA directory the recipe is completed with its layout parameters (shards, slices,
    epochs per slice), which exact unlearning needs.
    """
    recipe: dict = {}
    recipe_file = directory / RECIPE_FILE
    if recipe_file.is_file():
        recipe = json.loads(recipe_file.read_text(encoding="utf-8"))
    manifest_file = directory / SISA_MANIFEST
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        recipe = dict(manifest.get("recipe") or recipe)
        recipe["sisa"] = {key: manifest.get(key) for key in ("shards", "slices", "epochs_per_slice")}
    return recipe


def _actor_check(actor) -> None:
    if not roles.actor_may(actor, roles.OPERATE_JOBS, system=True):
        raise ModelActionNotPermitted(f"{roles.actor_name(actor)} may not register models.")


def _text(
    value: str | None,
    *,
    field_name: str,
    label: str,
    required: bool,
    max_length: int,
    allow_controls: str = "",
) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ModelRegistrationError({field_name: [f"{label} is required."]})
    if len(text) > max_length:
        raise ModelRegistrationError({field_name: [f"{label} is longer than {max_length} characters."]})
    if control_character_found(text, allow=allow_controls):
        raise ModelRegistrationError({field_name: [f"{label} holds a control character; remove it."]})
    return text


def model_version_register(
    *,
    name: str,
    path: str | os.PathLike,
    actor,
    dataset_version: DatasetVersion | None = None,
    parent: ModelVersion | None = None,
    notes: str = "",
) -> ModelVersion:
    """Register an existing checkpoint directory where it lies, with the checksum of its weights.

    ``dataset_version`` is the data it was trained on when known; without one, exact methods
    (retrain, SISA) cannot be applied to it and only approximate unlearning or suppression can.
    A directory already registered is refused with the version that holds it.
    """
    from unlearning_jobs.engine.checkpoints import weights_sha256

    _actor_check(actor)
    name = _text(name, field_name="name", label="The name", required=True, max_length=MAX_NAME_LENGTH)
    notes = _text(
        notes,
        field_name="notes",
        label="The notes",
        required=False,
        max_length=MAX_NOTES_LENGTH,
        allow_controls=LINE_CONTROLS,
    )
    resolved, kind = model_path_check(path)
    existing = ModelVersion.objects.filter(path=str(resolved)).first()
    if existing is not None:
        raise ModelRegistrationError({"path": [f"{resolved} is already registered as {existing}."]})
    sha = weights_sha256(resolved)
    try:
        recipe = model_recipe_read(resolved)
    except (OSError, ValueError) as error:
        raise ModelRegistrationError(
            {"path": [f"{resolved}: the stored recipe cannot be read ({error})."]}
        ) from None
    with transaction.atomic():
        version = ModelVersion.objects.create(
            name=name,
            path=str(resolved),
            kind=kind,
            weights_sha256=sha,
            dataset_version=dataset_version,
            parent=parent,
            recipe=recipe,
            notes=notes,
            created_by=actor,
        )
        audit_event_record(
            actor=actor,
            action="model_version.registered",
            target=version,
            details={
                "name": name,
                "path": str(resolved),
                "kind": kind,
                "weights_sha256": sha,
                "dataset_version_id": dataset_version.pk if dataset_version else None,
                "parent_id": parent.pk if parent else None,
                "source": "external",
            },
        )
    logger.info("model_version.registered", extra={"model_version_id": version.pk, "kind": kind})
    return version


def model_version_record_produced(
    *,
    job,
    name: str,
    path: Path,
    weights_sha256: str,
    kind: str,
    recipe: dict,
    dataset_version: DatasetVersion | None,
    parent: ModelVersion | None,
    notes: str = "",
) -> ModelVersion:
    """Record the version a job wrote, inside the caller's transaction; return the existing one if any.

    Called only from the job's success transaction: the directory is already in its final place,
    and the row, the job's success and their audit events commit together. The one-to-one link
    to the job makes a second version for the same job impossible even under a race.
    """
    existing = ModelVersion.objects.filter(produced_by_job=job).first()
    if existing is not None:
        return existing
    version = ModelVersion.objects.create(
        name=name[:MAX_NAME_LENGTH],
        path=str(path),
        kind=kind,
        weights_sha256=weights_sha256,
        dataset_version=dataset_version,
        parent=parent,
        produced_by_job=job,
        recipe=recipe,
        notes=notes,
        created_by=job.created_by,
    )
    audit_event_record(
        actor=None,
        action="model_version.registered",
        target=version,
        details={
            "name": version.name,
            "path": str(path),
            "kind": kind,
            "weights_sha256": weights_sha256,
            "dataset_version_id": dataset_version.pk if dataset_version else None,
            "parent_id": parent.pk if parent else None,
            "source": "job",
            "job_id": job.pk,
        },
    )
    return version


def model_dir_name(*, name: str, job_id: int) -> str:
    """Return the folder name under ``models/`` for a job's output: a slug of its name and the job id."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "model"
    return f"{slug}-job{job_id}"


# --- selectors ----------------------------------------------------------------------------------


def model_version_list() -> QuerySet[ModelVersion]:
    """Return every model version, newest first, with what the list pages show."""
    return ModelVersion.objects.select_related(
        "dataset_version", "dataset_version__dataset", "parent", "produced_by_job", "created_by"
    )


def model_versions_in_scope(*, erasure_request) -> QuerySet[ModelVersion]:
    """Return the model versions an erasure request covers.

    Everything when the request's scope is "all"; otherwise the versions it names and those
    trained on a version of a data set it names.
    """
    from django.db.models import Q

    versions = model_version_list()
    if erasure_request.scope_all:
        return versions
    return versions.filter(
        Q(pk__in=erasure_request.scope_model_version_ids)
        | Q(dataset_version__dataset_id__in=erasure_request.scope_dataset_ids)
    )
