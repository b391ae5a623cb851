"""The deletion framework as jobs: the data a method reads, the derived data set, the runners.

Deletion has two halves (SPEC §2): the person's records leave the data set, as a new data-set
version whose manifest lists what was removed (so the next training run cannot bring them back),
and the model's parameters change by one of the engine's methods:

- ``retrain`` and ``sisa`` read the whole data-set version the source model was trained on, in
  order, and drop the forget records by id, with the source model's recipe and seed;
- ``gradient_ascent``, ``gradient_difference`` and ``npo`` read the forget texts and a seeded
  sample of the other records as the retain set.

Training jobs (the demo model, or any model trained on a registered version) run here too: the
same records in the same order are what makes ``retrain`` an exact reproduction without them.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from unlearning_jobs.datasets.reingestion import dataset_version_held_back_record_ids
from unlearning_jobs.datasets.services import dataset_version_derive
from unlearning_jobs.datasets.storage import record_id_hash
from unlearning_jobs.engine.device import device_label
from unlearning_jobs.engine.method_catalogue import EXACT
from unlearning_jobs.jobs.records import (
    MAX_HOLDOUT_FRACTION,
    TRAINING_RECORDS_FILE,
    dataset_version_training_pairs,
    finetune_records,
    forget_never_trained,
    forget_records_for_job,
    model_record_format,
    model_training_ids,
    non_member_stop_records_offered,
    records_texts,
    retain_sample,
    source_training_pairs,
    training_holdout_split,
    unlearning_records,
)
from unlearning_jobs.jobs.runner import JobOutcome
from unlearning_jobs.models import (
    DatasetVersion,
    DatasetVersionStatus,
    Framework,
    JobPhase,
    ModelKind,
    UnlearningJob,
)
from unlearning_jobs.registry.services import FINETUNE_FILE, model_kind_detect, model_weights_verify

logger = logging.getLogger(__name__)

#: At most this many retained records regularise an approximate method (a seeded sample).
RETAIN_SAMPLE_SIZE = 5000


# --- reading the data --------------------------------------------------------------------------


# --- the derived data-set version ------------------------------------------------------------------


def removed_ids_sha256(record_ids: Iterable[str]) -> str:
    """Return the SHA-256 that ``dataset_version_derive`` writes for a set of removed record ids."""

    hashes = sorted(record_id_hash(record_id) for record_id in set(record_ids))
    return hashlib.sha256("\n".join(hashes).encode("ascii")).hexdigest()


def dataset_version_derive_for_job(*, job: UnlearningJob) -> DatasetVersion | None:
    """Return the version of the job's data set without its forget records, making it once.

    Idempotent across attempts (the job remembers the version it made) and across the jobs of
    one request (a version already derived from the same parent, for the same request, without
    exactly the same records is reused). None when the job's version holds none of the records.
    """

    if job.produced_dataset_version_id is not None:
        return job.produced_dataset_version
    version = job.dataset_version
    if version is None:
        return None
    removed = [record for record in forget_records_for_job(job) if record.version_id == version.pk]
    if not removed:
        return None
    sha = removed_ids_sha256(record.record_id for record in removed)
    derived = None
    if job.erasure_request_id is not None:
        derived = (
            DatasetVersion.objects.filter(
                parent=version,
                removed_manifest__sha256=sha,
                removed_manifest__erasure_request_id=job.erasure_request_id,
            )
            .order_by("pk")
            .first()
        )
    if derived is None:
        if version.status != DatasetVersionStatus.INDEXED:
            raise ValueError(
                f"{version} is not indexed; a derived version can be made only from an indexed one"
            )
        reference = job.erasure_request.reference if job.erasure_request_id else f"job {job.pk}"
        derived = dataset_version_derive(
            version=version,
            remove=removed,
            actor=None,
            erasure_request=job.erasure_request,
            reason=f"Erasure {reference}: deletion by job #{job.pk} ({job.method}).",
        )
    with transaction.atomic():
        UnlearningJob.objects.filter(pk=job.pk, produced_dataset_version__isnull=True).update(
            produced_dataset_version=derived
        )
    job.produced_dataset_version = derived
    return derived


# --- parameters ------------------------------------------------------------------------------------


def unlearn_params_validate(method: str, params: Mapping[str, Any] | None) -> dict:
    """Return the method's parameters validated by its engine ``Params`` (defaults filled in)."""
    from unlearning_jobs.engine.methods import get_method

    engine_method = get_method(method)
    return engine_method.parse_params(dict(params or {})).as_dict()


@dataclass(frozen=True)
class TrainJobParams:
    """What a training job needs besides its data: a name, the recipe, and the SISA layout if any.

    ``sisa_shards`` None trains one model; a number trains that many shards of
    ``sisa_slices`` slices (Bourtoule et al.), which ``sisa`` unlearning then retrains in part.
    ``holdout_fraction`` of the version's records are never trained on
    (``jobs.records.training_holdout_split``): verification's non-members.
    """

    name: str = "model"
    recipe: dict | None = None
    sisa_shards: int | None = None
    sisa_slices: int = 4
    sisa_epochs_per_slice: int | None = None
    holdout_fraction: float = 0.0

    def __post_init__(self) -> None:
        from unlearning_jobs.engine.training import TrainingRecipe
        from unlearning_jobs.engine.training.validation import require

        name = type(self).__name__
        require(
            bool(self.name.strip()) and len(self.name) <= 200, name, "name", "must be 1 to 200 characters"
        )
        if self.recipe is not None:
            TrainingRecipe.from_dict(self.recipe)
        require(
            self.sisa_shards is None or 1 <= self.sisa_shards <= 64,
            name,
            "sisa_shards",
            f"must be between 1 and 64, got {self.sisa_shards}",
        )
        require(
            1 <= self.sisa_slices <= 64,
            name,
            "sisa_slices",
            f"must be between 1 and 64, got {self.sisa_slices}",
        )
        require(
            self.sisa_epochs_per_slice is None or self.sisa_epochs_per_slice >= 1,
            name,
            "sisa_epochs_per_slice",
            f"must be at least 1, got {self.sisa_epochs_per_slice}",
        )
        require(
            0 <= self.holdout_fraction <= MAX_HOLDOUT_FRACTION,
            name,
            "holdout_fraction",
            f"must be between 0 and {MAX_HOLDOUT_FRACTION}, got {self.holdout_fraction}",
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainJobParams:
        from unlearning_jobs.engine.training.validation import dataclass_from_dict

        return dataclass_from_dict(cls, data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def training_recipe(self):
        from unlearning_jobs.engine.training import TrainingRecipe

        return TrainingRecipe.from_dict(self.recipe or {})


def train_params_validate(method: str, params: Mapping[str, Any] | None) -> dict:
    """Return a training job's parameters validated, the recipe filled in with its defaults."""
    cleaned = TrainJobParams.from_dict(params)
    data = cleaned.as_dict()
    data["recipe"] = cleaned.training_recipe().as_dict()
    return data


# --- runners ------------------------------------------------------------------------------------------


def run_train_job(context) -> Any:
    """Train a model from scratch on the job's data-set version; resume from the job's checkpoints."""
    from unlearning_jobs.engine.training import train_causal_lm
    from unlearning_jobs.engine.training.sisa import train_sisa

    job = context.job
    params = TrainJobParams.from_dict(job.params)
    recipe = params.training_recipe()
    if job.dataset_version is None:
        raise ValueError("a training job needs a data-set version")
    context.phase(JobPhase.LOADING_DATA)
    pairs, held_out = training_holdout_split(
        dataset_version_training_pairs(job.dataset_version), fraction=params.holdout_fraction
    )
    if not pairs:
        raise ValueError(f"{job.dataset_version} leaves no record to train on")
    resumed = context.resumable_step()
    device = context.device_record()
    context.log(
        f"training {params.name!r} on {len(pairs)} records of {job.dataset_version} on {device}"
        + (f" ({len(held_out)} held out, never trained on)" if held_out else "")
        + (
            f" as {params.sisa_shards} SISA shards x {params.sisa_slices} slices"
            if params.sisa_shards
            else ""
        )
        + (f"; resuming from checkpoint step {resumed}" if resumed else "")
    )
    if params.sisa_shards:
        result = train_sisa(
            records=pairs,
            recipe=recipe,
            output_dir=context.staging_dir,
            shards=params.sisa_shards,
            slices=params.sisa_slices,
            epochs_per_slice=params.sisa_epochs_per_slice,
            progress=context.progress,
            should_stop=context.should_stop,
            checkpoint_dir=context.checkpoint_dir,
            device=context.device,
            overwrite=True,
        )
        metrics = {
            "records": len(pairs),
            "steps": result.steps,
            "full_training_steps": result.full_training_steps,
            "shards": params.sisa_shards,
            "slices": params.sisa_slices,
            "epochs_per_slice": result.epochs_per_slice,
            "seconds": result.seconds,
            "resumed_from_step": None,
        }
        kind = ModelKind.SISA.value
    else:
        result = train_causal_lm(
            texts=[text for _, text in pairs],
            recipe=recipe,
            output_dir=context.staging_dir,
            progress=context.progress,
            should_stop=context.should_stop,
            checkpoint_dir=context.checkpoint_dir,
            checkpoint_every=context.checkpoint_every,
            device=context.device,
            overwrite=True,
        )
        metrics = {
            "records": result.records,
            "steps": result.steps,
            "total_steps": result.total_steps,
            "tokens": result.tokens,
            "final_loss": result.final_loss,
            "epoch_losses": list(result.epoch_losses),
            "seconds": result.seconds,
            "engine_compute_seconds": result.compute_seconds,
            "resumed_from_step": result.resumed_from_step,
        }
        kind = ModelKind.HF.value
    metrics["held_out_records"] = len(held_out)
    (context.staging_dir / TRAINING_RECORDS_FILE).write_text(
        "".join(f"{record_id}\n" for record_id, _ in pairs), encoding="utf-8"
    )
    context.log(f"trained in {result.seconds:.1f} s on {result.device}")
    return JobOutcome(
        metrics=metrics,
        model_name=params.name,
        model_kind=kind,
        model_dataset_version=job.dataset_version,
        device=device_label(result.device),
        model_notes=f"Trained by job #{job.pk}.",
    )


def _stop_non_members(*, source, version, forget_ids) -> list[tuple[str, str]]:
    """Return the non-member records a run's forget-loss target comes from; raise when there are none."""
    if version is None:
        raise ValueError(
            "forget_loss_target_from 'non_members' needs the data-set version the source model was "
            "trained on, to find records it was not trained on"
        )
    records = non_member_stop_records_offered(
        version, trained_ids=model_training_ids(Path(source.path)), forget_ids=forget_ids
    )
    if not records:
        raise ValueError(
            f"forget_loss_target_from 'non_members' needs records of {version} that {source} was not "
            "trained on (at least two: half stay for verification), and there are none: train or fine-tune "
            "it with a holdout_fraction, or use the default target ('retain')"
        )
    return [(record.record_id, text) for record, text in records_texts(records)]


def _held_back_for_others(version, *, forget_ids: Iterable[str]) -> set[str]:
    """Return the ids the guard holds back in ``version`` for erasures other than this job's.

    A model trained before another person's erasure was approved names that person's records in
    its training list; retraining or regularising on them would train on an erased person's data
    again, which the re-ingestion guard exists to prevent. The job's own forget records are
    handled by the method.
    """
    if version is None:
        return set()
    return dataset_version_held_back_record_ids(version) - set(forget_ids)


def run_unlearn_job(context) -> Any:
    """Unlearn the job's forget set from its source model with the job's method (deletion framework)."""
    from unlearning_jobs.engine.methods import get_method

    job = context.job
    source = job.source_model
    if source is None:
        raise ValueError("an unlearning job needs a source model version")
    # Before anything is derived or written: the weights must be the ones registered (and audited).
    model_weights_verify(source)
    context.log(f"weights of {source.name} match the registry ({source.weights_sha256[:12]}…)")
    method = get_method(job.method)
    params = method.parse_params(job.params)
    context.phase(JobPhase.LOADING_DATA)
    forget = records_texts(forget_records_for_job(job))
    if not forget:
        raise ValueError("the job's forget set is empty: nothing to unlearn")
    version = job.dataset_version
    if method.guarantee == EXACT and version is None:
        raise ValueError(f"{job.method} needs the data-set version the source model was trained on")
    if version is not None:
        pairs = source_training_pairs(source=source, version=version, forget=[record for record, _ in forget])
        forget_ids = sorted({record.record_id for record, _ in forget if record.version_id == version.pk})
    else:
        # A model registered without its training data is regularised on the forget records' own version.
        retain_version = forget[0][0].version
        pairs = dataset_version_training_pairs(retain_version)
        forget_ids = sorted(
            {record.record_id for record, _ in forget if record.version_id == retain_version.pk}
        )
    # What the source was trained on stays the list of its descent; what this run trains or
    # regularises on leaves out records the guard holds back for other erasures since.
    trained_pairs = pairs
    held_back_in_source = _held_back_for_others(version, forget_ids=forget_ids) & {
        record_id for record_id, _ in pairs
    }
    leave_out = {}
    if source.kind == ModelKind.SISA:
        # Its kept shards and slice states were trained on them, and their texts are checked
        # against what they were trained on: the method leaves them out where it retrains.
        leave_out = {"leave_out_ids": sorted(held_back_in_source)}
    else:
        pairs = [pair for pair in pairs if pair[0] not in held_back_in_source]
    if held_back_in_source:
        context.log(
            f"{len(held_back_in_source)} record(s) the source was trained on are held back for other "
            "erasures: left out of what this run trains on"
            + ("; a SISA model keeps them in the shards and slices it does not retrain" if leave_out else "")
        )
    # Found before anything is derived, so a run that cannot have them fails having changed nothing.
    stop_pairs = (
        _stop_non_members(source=source, version=version, forget_ids=forget_ids)
        if method.guarantee != EXACT and params.target_from_non_members
        else []
    )
    # Refusal tuning is output suppression: the records stay in the data set (nothing is deleted).
    suppression_only = job.framework == Framework.OUTPUT_SUPPRESSION
    derived = None if suppression_only else dataset_version_derive_for_job(job=job)
    if derived is not None:
        context.log(f"records removed from the data set: {len(forget_ids)}; new data-set version {derived}")
    resumed = context.resumable_step()
    device = context.device_record()
    context.log(
        f"{job.method} on {source} with {len(forget)} forget record(s) on {device}"
        + (f"; resuming from checkpoint step {resumed}" if resumed else "")
    )
    exact_method = method.guarantee == EXACT
    never_trained = forget_never_trained(
        forget, version=version, trained_ids=(record_id for record_id, _ in trained_pairs)
    )
    unlearned = forget
    if never_trained and not exact_method and not suppression_only:
        unlearned = [pair for pair in forget if pair[0].pk not in never_trained] or forget
        context.log(
            f"{len(never_trained)} forget record(s) the source was never trained on (held out by its "
            "training job): removed from the data set"
            + (
                ", not unlearned from its weights (pushing down a text the model never saw only "
                "makes it stand out)"
                if len(unlearned) < len(forget)
                else "; the source saw none of the forget records, so the run unlearns them all"
            )
        )
    forget_texts = [text for _, text in unlearned]
    if exact_method:
        retain_texts = [text for record_id, text in pairs if record_id not in set(forget_ids)]
    else:
        retain_texts = retain_sample(
            pairs, exclude=set(forget_ids), size=RETAIN_SAMPLE_SIZE, seed=getattr(params, "seed", 0)
        )
    # A model fine-tuned on prompt/answer pairs is re-fine-tuned on the same pairs, split the same way.
    record_format = model_record_format(source.recipe)
    full_records = finetune_records(pairs, record_format=record_format) if record_format else pairs
    non_members = {}
    if not exact_method:
        forget_texts = unlearning_records(forget_texts, record_format=record_format)
        retain_texts = unlearning_records(retain_texts, record_format=record_format)
        if stop_pairs:
            non_members = {
                "non_member_texts": unlearning_records(
                    [text for _, text in stop_pairs], record_format=record_format
                )
            }
            context.log(
                f"forget-loss target: the loss of {len(stop_pairs)} record(s) of {version} the source was "
                "not trained on"
            )
    context.phase(JobPhase.LOADING_MODEL)  # the first progress report switches it to computing
    result = method.run(
        source_model_dir=source.path,
        output_dir=context.staging_dir,
        forget_texts=forget_texts,
        retain_texts=retain_texts,
        params=params,
        full_texts=full_records if version is not None else None,
        forget_ids=forget_ids,
        progress=context.progress,
        should_stop=context.should_stop,
        checkpoint_dir=context.checkpoint_dir,
        checkpoint_every=context.checkpoint_every,
        device=context.device,
        overwrite=True,
        **non_members,
        **leave_out,
    )
    if version is not None and source.kind != ModelKind.SISA:
        # What a later exact retrain of this version must train on: the source's records without
        # the ones forgotten now (an approximate method's weights still descend from them, and
        # from the records held back for others, which that retrain leaves out in its turn).
        dropped = set(forget_ids)
        listed = pairs if exact_method else trained_pairs
        (context.staging_dir / TRAINING_RECORDS_FILE).write_text(
            "".join(f"{record_id}\n" for record_id, _ in listed if record_id not in dropped), encoding="utf-8"
        )
    finetune_recipe = Path(source.path) / FINETUNE_FILE
    if not exact_method and finetune_recipe.is_file() and not (context.staging_dir / FINETUNE_FILE).exists():
        # The weights descend from that fine-tune: a later exact retrain re-fine-tunes from the
        # same base with the same recipe, on the records this job's record list names.
        shutil.copyfile(finetune_recipe, context.staging_dir / FINETUNE_FILE)
    metrics = dict(result.metrics)
    metrics.setdefault("resumed_from_step", resumed)
    metrics.update(
        {
            "held_back_for_others_left_out": (
                result.metrics["left_out_records"] if leave_out else len(held_back_in_source)
            ),
            "guarantee": result.guarantee,
            "steps": result.steps,
            "seconds": result.seconds,
            "forget_records": len(forget),
            "forget_records_in_training_data": len(forget_ids),
            "forget_records_never_trained": len(never_trained),
            "forget_records_unlearned": len(unlearned),
        }
    )
    context.log(
        f"{job.method} finished in {result.seconds:.1f} s on {result.device}: "
        f"{metrics.get('stopped_reason', 'completed')}"
    )
    exact = exact_method
    reference = job.erasure_request.reference if job.erasure_request_id else f"job {job.pk}"
    return JobOutcome(
        metrics=metrics,
        model_name=f"{source.name} - {job.method} ({reference})",
        model_kind=model_kind_detect(context.staging_dir),
        model_dataset_version=derived if exact and derived is not None else source.dataset_version,
        model_parent=source,
        produced_dataset_version=derived,
        device=device_label(result.device),
        model_notes=(
            f"{job.method} ({result.guarantee} guarantee) of {source.name} by job #{job.pk}"
            + (
                "; trained without the forget records."
                if exact
                else "; the weights descend from training on the forget records, changed to make them "
                "unlikely: a statistical, not an exact, removal."
            )
        ),
    )
