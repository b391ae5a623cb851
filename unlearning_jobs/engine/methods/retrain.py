"""Exact retraining without the forget records: the gold standard, and the verification reference.

The model is trained again from scratch with the source's recipe and seed on the data set minus
the forgotten records (for a SISA source: every shard, with the stored layout minus those
records). The result is, by construction, the model the organisation would have had if it had
never held the records. By default the tokenizer is retrained too, so no vocabulary merge learnt
from the records survives; that changes the token ids, which is harmless for a reference model.

A model Lethe fine-tuned from a pretrained base (``lethe_finetune.json``: full or LoRA, or a SISA
directory of adapters) is re-fine-tuned instead: from the same base (checked by SHA-256) with the
same recipe and seed on the records minus the forgotten ones. That is exact with respect to the
fine-tuning data; the base, whose pretraining data Lethe never saw, is untouched.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..device import resolve_device
from ..method_catalogue import EXACT
from ..models import load_tokenizer
from ..training.finetune import (
    FINETUNE_FILE,
    FinetuneParams,
    describe_base,
    normalise_finetune_records,
    read_finetune_recipe,
)
from ..training.launch import finetune_launch
from ..training.recipe import RECIPE_FILE, TrainingRecipe
from ..training.sisa import SisaLayout, is_sisa_dir, normalise_records, read_manifest, train_sisa
from ..training.sisa_adapters import train_sisa_adapters
from ..training.train import train_causal_lm
from ..training.validation import dataclass_from_dict, require
from .base import (
    DEFAULT_RETAIN_EVAL_SIZE,
    LossCheck,
    MethodResult,
    UnlearningMethod,
    loss_metrics,
    retain_eval_sample,
)


@dataclass(frozen=True)
class RetrainParams:
    """How to retrain.

    - ``retrain_tokenizer``: learn the vocabulary again from the retained texts (default), so
      no merge learnt from the forgotten records remains. Off, the source tokenizer is reused.
    - ``recipe``: recipe fields to override, or the whole recipe for a model not trained by
      Lethe (which has no ``lethe_recipe.json``). Any override makes the result a new training
      rather than an exact reproduction; ``metrics["exact_recipe"]`` says which.
    - ``retain_eval_size``: retain records sampled for the before/after loss.
    - ``measure_losses``: see ``base.MEASURE_LOSSES_HELP``.
    - ``base_model_dir``: for a fine-tuned source, where its base is now (default: the path its
      recipe names); its SHA-256 must match the recipe's.

    For a fine-tuned source ``recipe`` overrides fine-tuning fields (``FinetuneParams``), and
    ``retrain_tokenizer`` does not apply (a pretrained base keeps its tokenizer).
    """

    retrain_tokenizer: bool = True
    recipe: dict | None = None
    retain_eval_size: int = DEFAULT_RETAIN_EVAL_SIZE
    base_model_dir: str | None = None
    measure_losses: bool = False

    def __post_init__(self) -> None:
        name = type(self).__name__
        require(
            self.retain_eval_size >= 1,
            name,
            "retain_eval_size",
            f"must be at least 1, got {self.retain_eval_size}",
        )
        if self.recipe is not None:
            try:
                TrainingRecipe().replace(**self.recipe)
            except (TypeError, ValueError) as exc:
                try:
                    FinetuneParams().replace(**self.recipe)
                except (TypeError, ValueError):
                    raise ValueError(f"{name}.recipe: {exc}") from exc

    @classmethod
    def from_dict(cls, data) -> RetrainParams:
        """Build validated params from JSON; unknown keys raise ``ValueError`` naming them."""
        return dataclass_from_dict(cls, data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dropped_ids(pairs, *, forget_ids, leave_out_ids) -> tuple[set[str], int]:
    """Return every id a retrain excludes, and how many of the records are left out but not forgotten."""
    forget = {str(i) for i in forget_ids}
    left_out = {str(i) for i in leave_out_ids} - forget
    return forget | left_out, sum(1 for rid, _ in pairs if rid in left_out)


class Retrain(UnlearningMethod):
    name = "retrain"
    guarantee = EXACT
    summary = "train again from scratch without the forget records, same recipe and seed"
    Params = RetrainParams

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
        """Retrain on ``full_texts`` minus ``forget_ids`` (or on ``retain_texts`` when no ids are given).

        ``leave_out_ids`` are records not this run's to forget that must not be trained again
        (held back for other erasures): left out as well, counted apart (``left_out_records``).
        """
        started = time.monotonic()
        params = self.parse_params(params)
        source = Path(source_model_dir)
        if _is_finetuned(source):
            return self._refinetune(
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
                checkpoint_every=checkpoint_every,
                device=device,
                overwrite=overwrite,
                started=started,
            )
        sisa = is_sisa_dir(source)
        metrics: dict[str, Any] = {}
        if full_texts is not None:
            if forget_ids is None:
                raise ValueError(
                    "retrain with full_texts needs forget_ids: the ids of the records to exclude"
                )
            pairs = normalise_records(full_texts)
            drop, left_out = _dropped_ids(pairs, forget_ids=forget_ids, leave_out_ids=leave_out_ids)
            keep = [(rid, text) for rid, text in pairs if rid not in drop]
            metrics["excluded_records"] = len(pairs) - len(keep)
            metrics["left_out_records"] = left_out
            metrics["forget_ids_not_in_data"] = len({str(i) for i in forget_ids} - {rid for rid, _ in pairs})
        else:
            if sisa:
                raise ValueError("retrain of a SISA model needs full_texts with record ids and forget_ids")
            drop = set()
            keep = [(str(i), text) for i, text in enumerate(retain_texts)]
            metrics["excluded_records"] = None
        if not keep:
            raise ValueError("no records are left to train on after excluding the forget set")
        metrics["trained_records"] = len(keep)
        device, dtype = resolve_device(device)
        retain_sample = retain_eval_sample(
            list(retain_texts) or [t for _, t in keep], size=params.retain_eval_size
        )
        check = LossCheck(params.measure_losses, forget_texts, retain_sample, device, dtype)
        before = check.measure(source)

        if sisa:
            manifest = read_manifest(source)
            base = TrainingRecipe.from_dict(manifest["recipe"])
            recipe = base.replace(**params.recipe) if params.recipe else base
            layout = SisaLayout.from_dict(manifest["layout"]).without(drop)
            in_layout = set(layout.record_ids())
            records = [(rid, text) for rid, text in keep if rid in in_layout]
            metrics["records_not_in_layout"] = len(keep) - len(records)
            metrics["trained_records"] = len(records)
            result = train_sisa(
                records=records,
                recipe=recipe,
                output_dir=output_dir,
                layout=layout,
                epochs_per_slice=int(manifest["epochs_per_slice"]),
                tokenizer=None if params.retrain_tokenizer else load_tokenizer(source),
                progress=progress,
                should_stop=should_stop,
                checkpoint_dir=checkpoint_dir,
                device=device,
                overwrite=overwrite,
            )
            steps, sha = result.steps, result.weights_sha256
            metrics["shards_retrained"] = list(result.shards_trained)
            metrics["training_seconds"] = result.seconds
        else:
            if (source / RECIPE_FILE).is_file():
                base = TrainingRecipe.load(source)
                recipe = base.replace(**params.recipe) if params.recipe else base
            elif params.recipe is not None:
                recipe = TrainingRecipe.from_dict(params.recipe)
            else:
                raise ValueError(f"{source} has no {RECIPE_FILE}: pass params.recipe to say how to train it")
            result = train_causal_lm(
                texts=[text for _, text in keep],
                recipe=recipe,
                output_dir=output_dir,
                tokenizer=None if params.retrain_tokenizer else load_tokenizer(source),
                progress=progress,
                should_stop=should_stop,
                checkpoint_dir=checkpoint_dir,
                checkpoint_every=checkpoint_every,
                device=device,
                overwrite=overwrite,
            )
            steps, sha = result.steps, result.weights_sha256
            metrics["training_seconds"] = result.seconds
        after = check.measure(output_dir)
        metrics.update(
            {
                **loss_metrics(before, after),
                "retain_eval_records": len(retain_sample),
                "stopped_reason": "completed",
                "exact_recipe": params.recipe is None and (sisa or (source / RECIPE_FILE).is_file()),
                "tokenizer_retrained": params.retrain_tokenizer,
                "recipe": recipe.as_dict(),
            }
        )
        return MethodResult(
            method=self.name,
            guarantee=self.guarantee,
            output_dir=str(output_dir),
            weights_sha256=sha,
            steps=steps,
            seconds=time.monotonic() - started,
            device=str(device),
            params=params.as_dict(),
            metrics=metrics,
        )

    def _refinetune(
        self,
        *,
        source: Path,
        output_dir,
        forget_texts,
        retain_texts,
        params: RetrainParams,
        full_texts,
        forget_ids,
        leave_out_ids,
        progress,
        should_stop,
        checkpoint_dir,
        checkpoint_every,
        device,
        overwrite,
        started: float,
    ) -> MethodResult:
        """Fine-tune the same base again, same recipe and seed, on the records minus ``forget_ids``.

        ``full_texts`` are the fine-tuning records by id (strings or prompt/answer objects), as
        passed to ``finetune``; an adapter SISA source is retrained as a whole with its layout
        minus the forgotten ids (the reference SISA unlearning must equal).
        """
        if full_texts is None or forget_ids is None:
            raise ValueError(
                "retrain of a fine-tuned model needs full_texts (the fine-tuning records by id) and forget_ids"
            )
        sisa = is_sisa_dir(source)
        recipe = read_manifest(source) if sisa else read_finetune_recipe(source)
        stored = FinetuneParams.from_dict(recipe["finetune"] if sisa else recipe["params"])
        ft_params = stored.replace(**params.recipe) if params.recipe else stored
        base = describe_base(params.base_model_dir or recipe["base"]["path"])
        if base["weights_sha256"] != recipe["base"]["weights_sha256"]:
            raise ValueError(
                f"the base at {base['path']} is not the one {source} was fine-tuned from (SHA-256 differs)"
            )
        pairs = normalise_finetune_records(full_texts)
        drop, left_out = _dropped_ids(pairs, forget_ids=forget_ids, leave_out_ids=leave_out_ids)
        keep = [(rid, rec) for rid, rec in pairs if rid not in drop]
        if not keep:
            raise ValueError("no records are left to train on after excluding the forget set")
        metrics: dict[str, Any] = {
            "excluded_records": len(pairs) - len(keep),
            "left_out_records": left_out,
            "forget_ids_not_in_data": len({str(i) for i in forget_ids} - {rid for rid, _ in pairs}),
            "trained_records": len(keep),
        }
        device, dtype = resolve_device(device)
        retain_sample = (
            retain_eval_sample(list(retain_texts), size=params.retain_eval_size) if retain_texts else []
        )
        check = LossCheck(params.measure_losses, forget_texts, retain_sample, device, dtype)
        before = check.measure(source)
        if sisa:
            layout = SisaLayout.from_dict(recipe["layout"]).without(drop)
            result = train_sisa_adapters(
                base_model_dir=base["path"],
                records=keep,
                params=ft_params,
                output_dir=output_dir,
                layout=layout,
                epochs_per_slice=int(recipe["epochs_per_slice"]),
                data_identity=recipe.get("data"),
                progress=progress,
                should_stop=should_stop,
                checkpoint_dir=checkpoint_dir,
                device=device,
                overwrite=overwrite,
            )
            metrics["shards_retrained"] = list(result.shards_trained)
            new_recipe = result.manifest
        else:
            result = finetune_launch(
                base_model_dir=base["path"],
                records=keep,
                params=ft_params,
                output_dir=output_dir,
                data_identity=recipe.get("data"),
                progress=progress,
                should_stop=should_stop,
                checkpoint_dir=checkpoint_dir,
                checkpoint_every=checkpoint_every,
                device=device,
                overwrite=overwrite,
            )
            new_recipe = result.recipe
        after = check.measure(output_dir)
        metrics.update(
            {
                **loss_metrics(before, after),
                "retain_eval_records": len(retain_sample),
                "stopped_reason": "completed",
                "exact_recipe": params.recipe is None,
                "tokenizer_retrained": False,
                "training_seconds": result.seconds,
                "base_weights_sha256": base["weights_sha256"],
                "base_model": "pretraining data unknown; deletion covers the fine-tuning data only",
                "recipe": new_recipe,
            }
        )
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


def _is_finetuned(source: Path) -> bool:
    """Return whether ``source`` was fine-tuned by Lethe from a pretrained base (plain, adapter or SISA)."""
    if (source / FINETUNE_FILE).is_file():
        return True
    return is_sisa_dir(source) and read_manifest(source).get("kind") == "adapters"
