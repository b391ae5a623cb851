"""SISA unlearning (Bourtoule et al. 2021): retrain only the shards that held the forget records.

For each shard holding a forgotten record, training restarts from the state saved after the last
stage before the record's slice (from the seeded initialisation when it sat in slice 0) and runs
the remaining stages on the shard's records minus the forgotten ones. The other shards are
copied byte for byte. Because every stage is deterministic, the result is exactly the ensemble a
from-scratch SISA training without the records would give (``retrain`` of the SISA model), at a
fraction of the cost: about ``1 / shards`` of it, less when the record sat in a late slice.

Stated limit: the shared tokenizer is not retrained; its vocabulary may hold merges learnt from
the forgotten records. ``retrain`` with ``retrain_tokenizer`` removes those as well.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..checkpoints import weights_sha256
from ..device import resolve_device
from ..method_catalogue import EXACT
from ..models import load_tokenizer
from ..training.recipe import TrainingRecipe
from ..training.sisa import (
    SisaLayout,
    build_sisa,
    is_sisa_dir,
    normalise_records,
    plan_removal,
    prepare_removal_work_dir,
    prepare_work_dir,
    read_manifest,
)
from ..training.sisa_adapters import unlearn_sisa_adapters
from ..training.validation import dataclass_from_dict, require
from .base import (
    DEFAULT_RETAIN_EVAL_SIZE,
    MethodResult,
    UnlearningMethod,
    loss_metrics,
    retain_eval_sample,
)
from .sisa_losses import ShardScores, score_sisa_dir


@dataclass(frozen=True)
class SisaParams:
    """SISA unlearning has no knobs beyond the layout stored with the model; ``retain_eval_size``
    is how many retain records the before/after loss is measured on, ``measure_losses`` whether
    it is measured (``base.MEASURE_LOSSES_HELP``)."""

    retain_eval_size: int = DEFAULT_RETAIN_EVAL_SIZE
    measure_losses: bool = False

    def __post_init__(self) -> None:
        require(
            self.retain_eval_size >= 1,
            type(self).__name__,
            "retain_eval_size",
            f"must be at least 1, got {self.retain_eval_size}",
        )

    @classmethod
    def from_dict(cls, data) -> SisaParams:
        """Build validated params from JSON; unknown keys raise ``ValueError`` naming them."""
        return dataclass_from_dict(cls, data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _loss_metrics(before: ShardScores | None, after: ShardScores | None) -> dict[str, Any]:
    """Return the before/after loss metrics and how many shards each measurement ran."""
    if before is None or after is None:
        return loss_metrics(None, None)
    return {
        **loss_metrics(before.losses(), after.losses()),
        "shards_measured_before": before.shards_run,
        "shards_measured_after": after.shards_run,
    }


class Sisa(UnlearningMethod):
    name = "sisa"
    guarantee = EXACT
    summary = "retrain only the SISA shards that held the forget records, from their last clean slice"
    Params = SisaParams

    def run(
        self,
        *,
        source_model_dir,
        output_dir,
        forget_texts,
        retain_texts,
        params=None,
        full_texts=None,
        forget_ids=None,
        leave_out_ids=(),
        progress=None,
        should_stop=None,
        checkpoint_dir=None,
        checkpoint_every=50,
        device=None,
        overwrite=False,
    ) -> MethodResult:
        """Retrain the affected shards of the SISA model in ``source_model_dir`` into ``output_dir``.

        Needs ``forget_ids`` and ``full_texts`` (at least the retained records of the affected
        shards; their texts are checked against the fingerprints in the slice states, so a
        changed data set fails instead of silently breaking exactness). ``leave_out_ids`` are
        records not this run's to forget that must not be trained again (held back for other
        erasures): left out of the slices this run retrains, kept where the states are kept
        (:func:`~..training.sisa.plan_removal`). Resumes from ``checkpoint_dir`` at stage granularity.
        """
        started = time.monotonic()
        params = self.parse_params(params)
        source = Path(source_model_dir)
        if not is_sisa_dir(source):
            raise ValueError(
                f"{source} is not a SISA model (no sisa.json): train it with train_sisa, or use retrain"
            )
        if forget_ids is None:
            raise ValueError("sisa needs forget_ids: the record ids to remove from the shards")
        if full_texts is None:
            raise ValueError("sisa needs full_texts: the (record_id, text) records of the data set")
        manifest = read_manifest(source)
        if manifest.get("kind") == "adapters":
            return self._run_adapters(
                source=source,
                output_dir=output_dir,
                forget_texts=forget_texts,
                retain_texts=retain_texts,
                params=params,
                full_texts=full_texts,
                forget_ids=forget_ids,
                leave_out_ids=leave_out_ids,
                progress=progress,
                should_stop=should_stop,
                checkpoint_dir=checkpoint_dir,
                device=device,
                overwrite=overwrite,
                started=started,
            )
        recipe = TrainingRecipe.from_dict(manifest["recipe"])
        layout = SisaLayout.from_dict(manifest["layout"])
        drop = {str(i) for i in forget_ids}
        removal = plan_removal(layout, drop, leave_out_ids)
        affected, new_layout = removal.affected, removal.layout
        texts_by_id = {
            rid: text
            for rid, text in normalise_records(full_texts)
            if rid not in drop and rid not in removal.left_out
        }
        device, dtype = resolve_device(device)
        retain_sample = (
            retain_eval_sample(list(retain_texts), size=params.retain_eval_size) if retain_texts else []
        )
        before = (
            score_sisa_dir(
                source, forget_texts=forget_texts, retain_texts=retain_sample, device=device, dtype=dtype
            )
            if params.measure_losses
            else None
        )
        parent_sha = weights_sha256(source)

        out = Path(output_dir)
        if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
            raise FileExistsError(f"refusing to overwrite non-empty {out}; pass overwrite=True")
        work, resumable = prepare_work_dir(output_dir=out, checkpoint_dir=checkpoint_dir)
        try:
            prepare_removal_work_dir(source=source, work=work, removal=removal)
            result = build_sisa(
                work_dir=work,
                output_dir=out,
                layout=new_layout,
                kept_shards=frozenset(range(layout.n_shards)) - set(affected),
                texts_by_id=texts_by_id,
                recipe=recipe,
                tokenizer=load_tokenizer(source),
                epochs_per_slice=int(manifest["epochs_per_slice"]),
                device=device,
                progress=progress,
                should_stop=should_stop,
                overwrite=overwrite,
                manifest_extra={
                    "parent_weights_sha256": parent_sha,
                    "unlearning": {
                        "method": self.name,
                        "forgotten_records": len(drop),
                        "left_out_records": len(removal.left_out),
                        "shards_retrained": list(affected),
                    },
                },
            )
        finally:
            if not resumable:
                shutil.rmtree(work, ignore_errors=True)
        after = (
            score_sisa_dir(
                out,
                forget_texts=forget_texts,
                retain_texts=retain_sample,
                device=device,
                dtype=dtype,
                only_shards=affected,
                unchanged=before.by_shard,
            )
            if before is not None
            else None
        )
        full_steps = sum(manifest["full_training_steps"])
        metrics = {
            **_loss_metrics(before, after),
            "retain_eval_records": len(retain_sample),
            "stopped_reason": "completed",
            "shards": layout.n_shards,
            "slices": layout.n_slices,
            "shards_retrained": list(affected),
            "first_affected_slice": {str(s): r for s, r in affected.items()},
            "forget_ids_in_model": sum(1 for rid in drop if rid in layout.locate()),
            "left_out_records": len(removal.left_out),
            "retrained_steps": result.steps,
            "training_seconds": result.seconds,
            "full_training_steps": full_steps,
            "steps_ratio": (result.steps / full_steps) if full_steps else None,
            "tokenizer_retrained": False,
        }
        return MethodResult(
            method=self.name,
            guarantee=self.guarantee,
            output_dir=str(out),
            weights_sha256=result.weights_sha256,
            steps=result.steps,
            seconds=time.monotonic() - started,
            device=str(device),
            params=params.as_dict(),
            metrics=metrics,
        )

    def _run_adapters(
        self,
        *,
        source: Path,
        output_dir,
        forget_texts,
        retain_texts,
        params: SisaParams,
        full_texts,
        forget_ids,
        leave_out_ids,
        progress,
        should_stop,
        checkpoint_dir,
        device,
        overwrite,
        started: float,
    ) -> MethodResult:
        """SISA over LoRA adapters on a fine-tuned base: retrain only the affected adapters.

        ``full_texts`` are the fine-tuning records (strings or prompt/answer objects) by id.
        """
        device, dtype = resolve_device(device)
        retain_sample = (
            retain_eval_sample(list(retain_texts), size=params.retain_eval_size) if retain_texts else []
        )
        before = (
            score_sisa_dir(
                source, forget_texts=forget_texts, retain_texts=retain_sample, device=device, dtype=dtype
            )
            if params.measure_losses
            else None
        )
        result = unlearn_sisa_adapters(
            source_dir=source,
            output_dir=output_dir,
            records=full_texts,
            forget_ids=forget_ids,
            leave_out_ids=leave_out_ids,
            progress=progress,
            should_stop=should_stop,
            checkpoint_dir=checkpoint_dir,
            device=device,
            overwrite=overwrite,
        )
        after = (
            score_sisa_dir(
                output_dir,
                forget_texts=forget_texts,
                retain_texts=retain_sample,
                device=device,
                dtype=dtype,
                only_shards=result.shards_trained,
                unchanged=before.by_shard,
            )
            if before is not None
            else None
        )
        manifest = result.manifest
        full_steps = sum(read_manifest(source)["full_training_steps"])
        metrics = {
            **_loss_metrics(before, after),
            "retain_eval_records": len(retain_sample),
            "stopped_reason": "completed",
            "kind": "adapters",
            "shards": manifest["shards"],
            "slices": manifest["slices"],
            "shards_retrained": list(result.shards_trained),
            "left_out_records": manifest["unlearning"]["left_out_records"],
            "retrained_steps": result.steps,
            "training_seconds": result.seconds,
            "full_training_steps": full_steps,
            "steps_ratio": (result.steps / full_steps) if full_steps else None,
            "base_weights_sha256": manifest["base"]["weights_sha256"],
            "base_model": "pretraining data unknown; deletion covers the fine-tuning data only",
        }
        return MethodResult(
            method=self.name,
            guarantee=self.guarantee,
            output_dir=str(output_dir),
            weights_sha256=result.weights_sha256,
            steps=result.steps,
            seconds=time.monotonic() - started,
            device=str(device),
            params=params.as_dict(),
            metrics=metrics,
        )
