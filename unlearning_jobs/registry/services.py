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
# The engine's marker files (engine/importing.py, engine/training/finetune.py, peft), named here
# so that reading them does not load the engine (and torch) into the web process.
IMPORT_FILE = "lethe_import.json"
FINETUNE_FILE = "lethe_finetune.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"


class ModelRegistrationError(ValidationError):
    """The checkpoint cannot be registered; ``message_dict`` names the field and the problem."""


class ModelWeightsChanged(Exception):
    """The weights of a registered model version are no longer the ones registered."""


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
    The kind is read from what the directory holds (``model_kind_detect``).
    """
    from unlearning_jobs.engine.checkpoints import weight_files

    raw = Path(path)
    resolved = _confined(path, what="directory", hint="Checkpoints are registered")
    if not resolved.is_dir():
        raise ModelRegistrationError({"path": [f"{raw}: is not a directory."]})
    if not (resolved / SISA_MANIFEST).is_file() and not (resolved / "config.json").is_file():
        raise ModelRegistrationError(
            {
                "path": [
                    f"{raw}: holds neither config.json (a Hugging Face checkpoint) nor sisa.json (a SISA "
                    "ensemble)."
                ]
            }
        )
    kind = model_kind_detect(resolved)
    if not weight_files(resolved):
        raise ModelRegistrationError(
            {"path": [f"{raw}: has no weight files (model.safetensors or pytorch_model.bin)."]}
        )
    if kind != ModelKind.SISA:
        _causal_lm_config_check(resolved, raw=raw)
    return resolved, kind


def _confined(path: str | os.PathLike, *, what: str, hint: str) -> Path:
    """Return ``path`` resolved inside the allowed roots, or raise ``ModelRegistrationError`` on ``path``."""
    if not str(path).strip():
        raise ModelRegistrationError({"path": [f"Give the path of the {what}."]})
    if control_character_found(str(path)):
        raise ModelRegistrationError({"path": ["The path holds a control character; remove it."]})
    raw = Path(path)
    try:
        return confined_path(raw)
    except PathNotAllowed:
        raise ModelRegistrationError(
            {
                "path": [
                    f"{NOT_ALLOWED} {hint} from LETHE_DATA_DIR or a folder of LETHE_IMPORT_ROOTS (docs/jobs.md)."
                ]
            }
        ) from None
    except PathMissing:
        raise ModelRegistrationError({"path": [f"{raw.name}: no such {what}."]}) from None


def model_import_source_check(path: str | os.PathLike) -> tuple[Path, str]:
    """Return ``(resolved path, "gguf" | "hf_dir")`` of a model to import, or raise ``ModelRegistrationError``.

    An importable source is a ``.gguf`` file (llama.cpp's format, checked by its magic bytes) or
    a Hugging Face checkpoint directory (``config.json`` naming a causal LM, and weight files),
    inside an allowed root. Nothing is loaded here: the conversion runs in an import job.
    """
    from unlearning_jobs.engine.checkpoints import weight_files

    raw = Path(path)
    resolved = _confined(path, what="model file or directory", hint="Models are imported")
    if resolved.is_file():
        if resolved.suffix.lower() != ".gguf":
            raise ModelRegistrationError(
                {
                    "path": [
                        f"{raw.name}: a file to import must be a .gguf model; give a checkpoint's directory."
                    ]
                }
            )
        with open(resolved, "rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ModelRegistrationError(
                    {"path": [f"{raw.name}: is named .gguf but is not a GGUF file."]}
                )
        return resolved, "gguf"
    if not resolved.is_dir() or not (resolved / "config.json").is_file():
        raise ModelRegistrationError(
            {"path": [f"{raw}: is neither a .gguf file nor a checkpoint directory with config.json."]}
        )
    _causal_lm_config_check(resolved, raw=raw)
    if not weight_files(resolved):
        raise ModelRegistrationError({"path": [f"{raw}: has no weight files (*.safetensors)."]})
    return resolved, "hf_dir"


def model_kind_detect(directory: Path) -> str:
    """Return the ``ModelKind`` of a model directory from the files that mark it.

    ``sisa.json``: a SISA ensemble (of GPT-2 shards or of LoRA adapters); ``adapter_config.json``:
    a LoRA adapter; ``lethe_finetune.json``: a full fine-tune of a base; ``lethe_import.json``:
    an imported pretrained base; anything else a plain checkpoint.
    """
    if (directory / SISA_MANIFEST).is_file():
        return ModelKind.SISA.value
    if (directory / ADAPTER_CONFIG_FILE).is_file():
        return ModelKind.ADAPTER.value
    if (directory / FINETUNE_FILE).is_file():
        return ModelKind.FINETUNE.value
    if (directory / IMPORT_FILE).is_file():
        return ModelKind.BASE.value
    return ModelKind.HF.value


def _json_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _safetensors_parameters(path: Path) -> int | None:
    """Return the number of values in a safetensors file from its header (no tensor is read)."""
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size < 100_000_000:
                return None
            header = json.loads(handle.read(size))
    except (OSError, ValueError):
        return None
    total = 0
    for name, entry in header.items():
        if name == "__metadata__" or not isinstance(entry, dict):
            continue
        count = 1
        for dim in entry.get("shape", []):
            count *= int(dim)
        total += count
    return total


def model_facts(directory: Path) -> dict:
    """Return ``architecture``, ``parameter_count`` and ``source_sha256`` read from a model directory.

    The parameter count is that of the directory's own safetensors weights (a LoRA adapter's
    are the adapter's; a SISA ensemble's the sum over its shards); None for other weight files.
    """
    from unlearning_jobs.engine.checkpoints import weight_files

    if not Path(directory).is_dir():
        # Facts describe; they never decide. A version whose folder is elsewhere (another
        # machine's path, a test's stand-in) is recorded with what is known: nothing.
        return {"architecture": "", "parameter_count": None, "source_sha256": ""}
    config = _json_file(directory / "config.json")
    manifest = _json_file(directory / SISA_MANIFEST)
    finetune = _json_file(directory / FINETUNE_FILE)
    imported = _json_file(directory / IMPORT_FILE)
    if not config and manifest.get("shard_dirs"):
        config = _json_file(directory / str(manifest["shard_dirs"][0]) / "config.json")
    base = manifest.get("base") or finetune.get("base") or {}
    architectures = config.get("architectures") or []
    architecture = str(architectures[0]) if architectures else str(base.get("architecture") or "")
    counts = [
        _safetensors_parameters(path) if path.suffix == ".safetensors" else None
        for path in weight_files(directory)
    ]
    return {
        "architecture": architecture[:200],
        "parameter_count": sum(counts) if counts and None not in counts else None,
        "source_sha256": str(imported.get("source_sha256") or "")[:64],
    }


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
    """Return the recipe stored beside the weights, or an empty dict for foreign models.

    A model trained from scratch has ``lethe_recipe.json``; a fine-tune (full or adapter) its
    ``lethe_finetune.json`` (base by path and SHA-256, data, hyper-parameters, seed, adapter
    configuration); an imported base its ``lethe_import.json`` under ``import``. For a SISA
    directory the recipe is completed with its layout parameters (shards, slices, epochs per
    slice), which exact unlearning needs, and for SISA over adapters with the base and the
    fine-tuning parameters.
    """
    recipe: dict = {}
    recipe_file = directory / RECIPE_FILE
    if recipe_file.is_file():
        recipe = json.loads(recipe_file.read_text(encoding="utf-8"))
    finetune_file = directory / FINETUNE_FILE
    if finetune_file.is_file():
        recipe = json.loads(finetune_file.read_text(encoding="utf-8"))
    import_file = directory / IMPORT_FILE
    if import_file.is_file():
        recipe = {**recipe, "import": json.loads(import_file.read_text(encoding="utf-8"))}
    manifest_file = directory / SISA_MANIFEST
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        recipe = dict(manifest.get("recipe") or recipe)
        recipe["sisa"] = {key: manifest.get(key) for key in ("shards", "slices", "epochs_per_slice")}
        if manifest.get("kind") == "adapters":
            recipe["sisa"]["kind"] = "adapters"
            for key in ("base", "finetune", "adapter_config", "data"):
                recipe[key] = manifest.get(key)
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
    facts = model_facts(resolved)
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
            **facts,
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
                **facts,
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
    facts = model_facts(Path(path))
    if not facts["architecture"] and parent is not None:
        facts["architecture"] = parent.architecture
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
        **facts,
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
            **facts,
        },
    )
    return version


def model_weights_verify(model_version: ModelVersion) -> str:
    """Re-hash the version's weights on disk; raise ``ModelWeightsChanged`` unless they are the registered ones.

    Called once before a job or the generate cache loads the model, never per step: hashing reads
    every weight file (about 30 s for a 7B model in fp16 on a fast disk). Return the digest.
    """
    from unlearning_jobs.engine.checkpoints import weights_sha256

    found = weights_sha256(model_version.path)
    if found != model_version.weights_sha256:
        raise ModelWeightsChanged(
            f"weights of {model_version.name} changed on disk since registration: "
            f"expected {model_version.weights_sha256}, found {found}"
        )
    return found


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


def model_versions_index() -> dict[int, ModelVersion]:
    """Return every version by id with what lineage needs (one query), for pages that show many."""
    from django.db.models.fields.json import KT

    versions = ModelVersion.objects.only("id", "name", "kind", "weights_sha256", "parent_id").annotate(
        sisa_kind=KT("recipe__sisa__kind")
    )
    return {version.pk: version for version in versions}


def model_version_lineage(
    version: ModelVersion, *, index: dict[int, ModelVersion] | None = None
) -> list[ModelVersion]:
    """Return the version and its ancestors, the version first and the root (often a base) last.

    ``index`` (``model_versions_index``) answers without a query per ancestor.
    """
    chain = [version]
    seen = {version.pk}
    while chain[-1].parent_id is not None and chain[-1].parent_id not in seen:
        parent_id = chain[-1].parent_id
        parent = index.get(parent_id) if index is not None else None
        if parent is None:
            parent = ModelVersion.objects.get(pk=parent_id)
        seen.add(parent.pk)
        chain.append(parent)
    return chain


#: Kinds whose weights descend from a pretrained base whose data Lethe never saw.
FINETUNED_KINDS = (ModelKind.FINETUNE.value, ModelKind.ADAPTER.value)


def _finetuned(version: ModelVersion) -> bool:
    if version.kind in FINETUNED_KINDS:
        return True
    if version.kind != ModelKind.SISA:
        return False
    if hasattr(version, "sisa_kind"):
        return version.sisa_kind == "adapters"
    return (version.recipe.get("sisa") or {}).get("kind") == "adapters"


def model_version_base(
    version: ModelVersion, *, index: dict[int, ModelVersion] | None = None
) -> ModelVersion | None:
    """Return the pretrained base a version's weights start from, or None for a model Lethe trained.

    The nearest imported base in its lineage; failing one, the version a fine-tune (full,
    adapter, or SISA over adapters) in the lineage was fine-tuned from.
    """
    chain = model_version_lineage(version, index=index)
    for item in chain:
        if item.kind == ModelKind.BASE:
            return item
    for position, item in enumerate(chain):
        if _finetuned(item) and position + 1 < len(chain):
            return chain[position + 1]
    return None
