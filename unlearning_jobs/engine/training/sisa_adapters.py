"""SISA over LoRA adapters: S adapters on disjoint shards of the fine-tuning data, one shared base.

Exact deletion on a fine-tuned 7 B model by re-fine-tuning costs the whole fine-tune. SISA
(Bourtoule et al. 2021) splits the records into ``S`` disjoint shards and trains one model per
shard; here each "model" is a LoRA adapter on the same frozen base, so the ensemble costs one
base plus ``S`` small adapters in memory and on disk. Each shard is trained in ``R`` slices:
stage ``r`` trains on slices ``0..r`` for ``epochs_per_slice`` epochs and its full state
(adapter weights, optimiser moments, generator state) is kept. Forgetting a record retrains
only its shard, from the state before the record's slice; the other adapters are copied byte for
byte. Every stage is a pure function of the base (by SHA-256), the recipe, the shard, the slice
and its records, so the result is exactly the ensemble a from-scratch SISA fine-tune without the
records would give. At inference the adapters' next-token probabilities are averaged
(:class:`unlearning_jobs.engine.models.AdapterSisaEnsemble`).

The base's pretraining data is untouched by all of this: deletion covers the data Lethe
fine-tuned on, never what the base learnt before.

Directory layout::

    sisa.json                 manifest: kind "adapters", base (path, SHA-256), recipe, layout
    tokenizer.json …          the base's tokenizer
    shard_00/                 adapter_config.json, adapter_model.safetensors, lethe_shard.json
        slices/after_00/state.pt
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..checkpoints import (
    atomic_directory,
    capture_rng_state,
    load_state,
    remove_stale_temporaries,
    restore_rng_state,
    save_state,
    weights_sha256,
)
from ..device import make_accelerator
from .data import mix_seed
from .finetune import (
    FinetuneParams,
    ProgressCallback,
    StepLoop,
    StopCallback,
    describe_base,
    encode_records,
    load_base_model,
    load_trainable_state,
    lora_config_dict,
    lr_at,
    normalise_finetune_records,
    pad_id_of,
    records_fingerprint,
    trainable_state,
)
from .sisa import (
    SISA_ADAPTERS_FORMAT,
    SISA_MANIFEST,
    SLICES_SUBDIR,
    SisaLayout,
    plan_removal,
    prepare_removal_work_dir,
    prepare_work_dir,
    read_manifest,
    shard_dir_name,
    shard_finished,
    slice_state_dir,
    write_shard_file,
)
from .train import CheckpointMismatch, TrainingCancelled, make_optimizer

logger = logging.getLogger(__name__)

STATE_FORMAT = "lethe-sisa-adapter-slice/1"


@dataclass(frozen=True)
class SisaAdaptersResult:
    """What a SISA adapter training (or unlearning) produced and what it cost."""

    output_dir: str
    weights_sha256: str
    shards_trained: tuple[int, ...]
    steps: int
    full_training_steps: int
    seconds: float
    epochs_per_slice: int
    device: str
    manifest: dict

    def as_dict(self) -> dict:
        data = asdict(self)
        data["shards_trained"] = list(self.shards_trained)
        return data


def default_epochs_per_slice(epochs: int, slices: int) -> int:
    """Epochs per stage so a record is seen ``epochs`` times on average (as in ``training/sisa.py``)."""
    return max(1, round(2 * epochs / (slices + 1)))


class _AdapterBuild:
    """Train the shard adapters a work directory lacks, resuming at stage granularity."""

    def __init__(
        self,
        *,
        work_dir: Path,
        base: dict,
        layout: SisaLayout,
        records_by_id: Mapping[str, Any],
        params: FinetuneParams,
        epochs_per_slice: int,
        device,
        progress: ProgressCallback | None,
        should_stop: StopCallback | None,
        kept_shards: frozenset[int] = frozenset(),
    ) -> None:
        from transformers import AutoTokenizer

        self.work_dir = work_dir
        self.kept_shards = kept_shards
        self.base = base
        self.layout = layout
        self.records_by_id = records_by_id
        self.params = params
        self.epochs_per_slice = epochs_per_slice
        self.progress, self.should_stop = progress, should_stop
        self.accelerator = make_accelerator(device, bf16=params.bf16)
        self.tokenizer = AutoTokenizer.from_pretrained(base["path"], local_files_only=True)
        self.pad_id = pad_id_of(self.tokenizer)
        self.done_steps, self.total_steps = 0, 0
        self._examples: dict[str, Any] = {}

    def examples(self, ids: Sequence[str]) -> list:
        missing = [rid for rid in ids if rid not in self._examples]
        absent = [rid for rid in missing if rid not in self.records_by_id]
        if absent:
            raise ValueError(
                f"the text of {len(absent)} record(s) the shards need is missing, e.g. id {absent[0]}"
            )
        if missing:
            encoded = encode_records(
                self.tokenizer, [(rid, self.records_by_id[rid]) for rid in missing], self.params
            )
            self._examples.update(zip(missing, encoded, strict=True))
        return [self._examples[rid] for rid in ids]

    def fingerprint(self, shard: int, stage: int) -> str:
        ids = self.layout.shard_ids(shard, stage)
        absent = [rid for rid in ids if rid not in self.records_by_id]
        if absent:
            raise ValueError(
                f"the text of {len(absent)} record(s) of shard {shard} is missing, e.g. id {absent[0]}"
            )
        digest = hashlib.sha256(records_fingerprint([(rid, self.records_by_id[rid]) for rid in ids]).encode())
        digest.update(
            json.dumps(
                [
                    self.base["weights_sha256"],
                    self.params.training_fields(),
                    shard,
                    stage,
                    self.epochs_per_slice,
                ],
                sort_keys=True,
            ).encode()
        )
        return digest.hexdigest()

    def stage_steps(self, shard: int, stage: int) -> int:
        n = len(self.layout.shard_ids(shard, stage))
        step = self.params.batch_size * self.params.gradient_accumulation_steps
        return (-(-n // step)) * self.epochs_per_slice if n else 0

    def resume_stage(self, shard: int) -> int | None:
        shard_dir = self.work_dir / shard_dir_name(shard)
        if shard_finished(
            shard_dir,
            fingerprint=None
            if shard in self.kept_shards
            else lambda: self.fingerprint(shard, self.layout.n_slices - 1),
        ):
            return None
        remove_stale_temporaries(shard_dir / SLICES_SUBDIR)
        for stage in range(self.layout.n_slices - 2, -1, -1):
            path = slice_state_dir(shard_dir, stage)
            if (path / "state.pt").is_file():
                if load_state(path).get("fingerprint") != self.fingerprint(shard, stage):
                    raise CheckpointMismatch(
                        f"slice state {path} was trained on other records or another recipe"
                    )
                return stage + 1
        return 0

    def run(self) -> tuple[int, ...]:
        plan = {}
        for shard in range(self.layout.n_shards):
            start = self.resume_stage(shard)
            if start is not None:
                plan[shard] = start
        self.total_steps = sum(
            self.stage_steps(s, r) for s, start in plan.items() for r in range(start, self.layout.n_slices)
        )
        for shard, start in plan.items():
            self.train_shard(shard, start)
        return tuple(plan)

    def train_shard(self, shard: int, start_stage: int) -> None:
        import torch

        acc, params = self.accelerator, self.params
        shard_dir = self.work_dir / shard_dir_name(shard)
        shard_dir.mkdir(parents=True, exist_ok=True)
        model = load_base_model(self.base["path"], params, init_seed=mix_seed(params.seed, shard, 0x10A))
        model.train()
        optimizer = make_optimizer(
            model, learning_rate=params.learning_rate, weight_decay=params.weight_decay, betas=(0.9, 0.999)
        )
        model, optimizer = acc.prepare(model, optimizer)
        loop = StepLoop(accelerator=acc, model=model, optimizer=optimizer, params=params, pad_id=self.pad_id)
        torch.manual_seed(mix_seed(params.seed, shard, 1))
        if start_stage > 0:
            state = load_state(slice_state_dir(shard_dir, start_stage - 1))
            load_trainable_state(acc.unwrap_model(model), state["trainable"])
            optimizer.load_state_dict(state["optimizer"])
            restore_rng_state(state["rng"])
        for stage in range(start_stage, self.layout.n_slices):
            examples = self.examples(self.layout.shard_ids(shard, stage))
            total = self.stage_steps(shard, stage)
            per_epoch = loop.steps_per_epoch(len(examples)) or 1
            cache: dict = {}
            for local in range(total):
                if loop.stop_requested(self.should_stop):
                    raise TrainingCancelled(step=self.done_steps, total=self.total_steps)
                chunk = loop.step_examples(
                    examples, step=local, per_epoch=per_epoch, salt=mix_seed(shard, stage), cache=cache
                )
                loss, _tokens = loop.run_step(chunk, lr=lr_at(local, total=total, params=params))
                if loss != loss:
                    raise FloatingPointError(
                        f"shard {shard} stage {stage}: loss became NaN; lower learning_rate"
                    )
                self.done_steps += 1
                if self.progress is not None and acc.is_main_process:
                    self.progress(self.done_steps, self.total_steps)
            if stage < self.layout.n_slices - 1 and acc.is_main_process:
                save_state(
                    slice_state_dir(shard_dir, stage),
                    {
                        "format": STATE_FORMAT,
                        "shard": shard,
                        "stage": stage,
                        "fingerprint": self.fingerprint(shard, stage),
                        "trainable": trainable_state(acc.unwrap_model(model)),
                        "optimizer": optimizer.state_dict(),
                        "rng": capture_rng_state(),
                    },
                )
        if acc.is_main_process:
            acc.unwrap_model(model).save_pretrained(shard_dir, safe_serialization=True)
            write_shard_file(
                shard_dir,
                shard=shard,
                records=len(self.layout.shard_ids(shard, self.layout.n_slices - 1)),
                fingerprint=self.fingerprint(shard, self.layout.n_slices - 1),
            )
        acc.wait_for_everyone()
        # The Accelerator keeps references to every prepared model; drop them before the next shard.
        acc.free_memory()
        del model, optimizer, loop
        logger.info("engine.sisa_adapters.shard_trained", extra={"shard": shard, "from_stage": start_stage})


def _manifest(*, build: _AdapterBuild, data_identity, extra: Mapping[str, Any] | None) -> dict:
    full = [
        sum(build.stage_steps(s, r) for r in range(build.layout.n_slices))
        for s in range(build.layout.n_shards)
    ]
    return {
        "format": SISA_ADAPTERS_FORMAT,
        "kind": "adapters",
        "shards": build.layout.n_shards,
        "slices": build.layout.n_slices,
        "epochs_per_slice": build.epochs_per_slice,
        "shard_dirs": [shard_dir_name(s) for s in range(build.layout.n_shards)],
        "records": len(build.layout.record_ids()),
        "full_training_steps": full,
        "aggregation": "mean of shard probabilities",
        "base": build.base,
        "finetune": build.params.as_dict(),
        "adapter_config": lora_config_dict(build.params),
        "data": data_identity,
        "layout": build.layout.as_dict(),
        **dict(extra or {}),
    }


def _build(
    *,
    work: Path,
    out: Path,
    base: dict,
    layout: SisaLayout,
    records_by_id: Mapping[str, Any],
    params: FinetuneParams,
    epochs_per_slice: int,
    data_identity,
    device,
    progress,
    should_stop,
    overwrite: bool,
    manifest_extra: Mapping[str, Any] | None = None,
    kept_shards: frozenset[int] = frozenset(),
) -> SisaAdaptersResult:
    started = time.monotonic()
    build = _AdapterBuild(
        work_dir=work,
        base=base,
        layout=layout,
        records_by_id=records_by_id,
        params=params,
        epochs_per_slice=epochs_per_slice,
        device=device,
        progress=progress,
        should_stop=should_stop,
        kept_shards=kept_shards,
    )
    trained = build.run()
    manifest = _manifest(build=build, data_identity=data_identity, extra=manifest_extra)
    if build.accelerator.is_main_process:
        (work / SISA_MANIFEST).write_text(
            json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        build.tokenizer.save_pretrained(work)
        with atomic_directory(out, overwrite=overwrite) as tmp:
            for child in sorted(work.iterdir()):
                if not child.name.startswith("."):
                    shutil.move(str(child), str(tmp / child.name))
        shutil.rmtree(work, ignore_errors=True)
    build.accelerator.wait_for_everyone()
    return SisaAdaptersResult(
        output_dir=str(out),
        weights_sha256=weights_sha256(out),
        shards_trained=trained,
        steps=build.done_steps,
        full_training_steps=sum(manifest["full_training_steps"]),
        seconds=time.monotonic() - started,
        epochs_per_slice=epochs_per_slice,
        device=str(build.accelerator.device),
        manifest=manifest,
    )


def _check_lora(params: FinetuneParams) -> None:
    if params.adapter != "lora":
        raise ValueError(
            "SISA over adapters needs adapter='lora' (full fine-tunes would hold S copies of the base)"
        )
    if params.num_processes != 1:
        raise ValueError("SISA adapters train one shard at a time in this process; set num_processes to 1")


def train_sisa_adapters(
    *,
    base_model_dir: str | os.PathLike,
    records,
    params: FinetuneParams | Mapping[str, Any] | None,
    output_dir: str | os.PathLike,
    shards: int = 4,
    slices: int = 1,
    layout: SisaLayout | None = None,
    groups: Mapping[str, str] | None = None,
    epochs_per_slice: int | None = None,
    data_identity: Any = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    device=None,
    overwrite: bool = False,
) -> SisaAdaptersResult:
    """Fine-tune ``shards`` LoRA adapters of ``base_model_dir`` on disjoint shards of ``records``.

    ``records`` and ``params`` are as for :func:`~.finetune.finetune` (``adapter`` must be
    ``"lora"``). The layout is dealt from ``params.seed`` unless given; ``groups`` (record id to
    e.g. data subject) keeps a group in one shard, so erasing a person retrains one adapter.
    ``epochs_per_slice`` defaults so a record is seen ``params.epochs`` times on average. With
    ``checkpoint_dir`` a killed run resumes from the last finished stage of each shard.
    """
    if not isinstance(params, FinetuneParams):
        params = FinetuneParams.from_dict(params)
    _check_lora(params)
    pairs = normalise_finetune_records(records)
    if not pairs:
        raise ValueError("records is empty: there is nothing to fine-tune on")
    records_by_id = dict(pairs)
    layout = SisaLayout.for_records(
        [rid for rid, _ in pairs],
        layout=layout,
        shards=shards,
        slices=slices,
        seed=params.seed,
        groups=groups,
    )
    if epochs_per_slice is None:
        epochs_per_slice = default_epochs_per_slice(params.epochs, layout.n_slices)
    if epochs_per_slice < 1:
        raise ValueError(f"epochs_per_slice must be at least 1, got {epochs_per_slice}")
    out = Path(output_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"refusing to overwrite non-empty {out}; pass overwrite=True")
    base = describe_base(base_model_dir)
    work, resumable = prepare_work_dir(output_dir=out, checkpoint_dir=checkpoint_dir)
    try:
        return _build(
            work=work,
            out=out,
            base=base,
            layout=layout,
            records_by_id=records_by_id,
            params=params,
            epochs_per_slice=epochs_per_slice,
            data_identity=data_identity,
            device=device,
            progress=progress,
            should_stop=should_stop,
            overwrite=overwrite,
        )
    finally:
        if not resumable:
            shutil.rmtree(work, ignore_errors=True)


def unlearn_sisa_adapters(
    *,
    source_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    records,
    forget_ids: Sequence[str],
    leave_out_ids: Sequence[str] = (),
    base_model_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    device=None,
    overwrite: bool = False,
) -> SisaAdaptersResult:
    """Retrain only the adapters whose shards held ``forget_ids``; copy the others byte for byte.

    ``records`` must hold at least the retained records of the affected shards (checked against
    the fingerprints in the slice states, so changed data fails instead of breaking exactness).
    The base must be the one the adapters were trained on (its SHA-256 is checked).
    ``leave_out_ids`` are left out of the retrained slices (:func:`~.sisa.plan_removal`).
    """
    source = Path(source_dir)
    manifest = read_manifest(source)
    if manifest.get("kind") != "adapters":
        raise ValueError(f"{source} is a SISA model of GPT-2 shards, not of adapters: use the sisa method")
    params = FinetuneParams.from_dict(manifest["finetune"])
    base_path = base_model_dir if base_model_dir is not None else manifest["base"]["path"]
    base = describe_base(base_path)
    if base["weights_sha256"] != manifest["base"]["weights_sha256"]:
        raise ValueError(
            f"the base at {base['path']} is not the one the adapters were trained on (SHA-256 differs)"
        )
    base = {**manifest["base"], "path": base["path"]}
    layout = SisaLayout.from_dict(manifest["layout"])
    drop = {str(i) for i in forget_ids}
    removal = plan_removal(layout, drop, leave_out_ids)
    records_by_id = {
        rid: rec
        for rid, rec in normalise_finetune_records(records)
        if rid not in drop and rid not in removal.left_out
    }
    out = Path(output_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"refusing to overwrite non-empty {out}; pass overwrite=True")
    work, resumable = prepare_work_dir(output_dir=out, checkpoint_dir=checkpoint_dir)
    try:
        prepare_removal_work_dir(source=source, work=work, removal=removal)
        return _build(
            work=work,
            out=out,
            base=base,
            layout=removal.layout,
            kept_shards=frozenset(range(layout.n_shards)) - set(removal.affected),
            records_by_id=records_by_id,
            params=params,
            epochs_per_slice=int(manifest["epochs_per_slice"]),
            data_identity=manifest.get("data"),
            device=device,
            progress=progress,
            should_stop=should_stop,
            overwrite=overwrite,
            manifest_extra={
                "parent_weights_sha256": weights_sha256(source),
                "unlearning": {
                    "method": "sisa",
                    "forgotten_records": len(drop),
                    "left_out_records": len(removal.left_out),
                    "shards_retrained": list(removal.affected),
                },
            },
        )
    finally:
        if not resumable:
            shutil.rmtree(work, ignore_errors=True)
