"""Train a model as SISA shards and slices (Bourtoule et al. 2021), so deletion is cheap and exact.

The records are split into ``S`` disjoint shards, each shard into ``R`` slices. Shard ``s`` is
an independent GPT-2 model trained incrementally: stage ``r`` trains on slices ``0..r`` of the
shard for ``epochs_per_slice`` epochs, and the full training state after each stage (weights,
optimiser moments, generator state) is kept. At inference the shards are aggregated
(:class:`unlearning_jobs.engine.models.SisaEnsemble`).

Everything a stage does is a pure function of the recipe, the shard index, the slice index and
the records of slices ``0..r`` (initial weights, data order, learning-rate schedule, dropout
stream). Removing a record from slice ``k`` of shard ``s`` therefore only invalidates shard
``s`` from stage ``k`` on: retraining it from the state after stage ``k - 1`` gives exactly the
weights a from-scratch SISA training without that record would give, and the other shards are
untouched (byte-identical files).

Directory layout::

    sisa.json               manifest: shards, slices, epochs per slice, recipe, layout (record ids)
    lethe_recipe.json       the recipe (as for a plain model)
    tokenizer.json …        one tokenizer shared by all shards
    shard_00/               a complete Hugging Face model directory
        model.safetensors, config.json, tokenizer files, lethe_shard.json
        slices/after_00/state.pt   training state after stage 0 (kept for stages 0..R-2)
    shard_01/ …

The tokenizer is trained once on all records and is not retrained when shards are: its
vocabulary may still hold merges learnt from deleted records. ``retrain`` with
``retrain_tokenizer`` removes that too, at full cost.

Device placement, bf16 autocast, backward and clipping go through ``accelerate.Accelerator``
(``device.make_accelerator``), as in :func:`~.train.train_causal_lm`; on the CPU in fp32 it adds
no arithmetic, so the shards are the ones the earlier hand-written loop produced. One process
only: every process of an ``accelerate launch`` would train every shard and write the same work
and output directories, so training and SISA unlearning refuse to run under several processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
from ..device import resolve_device, single_process_accelerator
from .data import (
    collate,
    encode_texts,
    epoch_order,
    mix_seed,
    pad_token_id,
    steps_per_epoch,
    texts_fingerprint,
)
from .recipe import TrainingRecipe
from .tokenizer import train_byte_bpe_tokenizer
from .train import (
    TRAINING_FILE,
    CheckpointMismatch,
    ProgressCallback,
    StopCallback,
    TrainingCancelled,
    build_model,
    lr_at,
    make_optimizer,
    optimizer_step,
)

logger = logging.getLogger(__name__)

SISA_MANIFEST = "sisa.json"
SISA_FORMAT = "lethe-sisa/1"
#: SISA over LoRA adapters on a pretrained base (``training/sisa_adapters.py``), ``kind: "adapters"``.
SISA_ADAPTERS_FORMAT = "lethe-sisa-adapters/1"
SHARD_FILE = "lethe_shard.json"
SLICE_STATE_FORMAT = "lethe-sisa-slice/1"
SLICES_SUBDIR = "slices"
_LAYOUT_SALT = 0x515A
_WORK_SUBDIR = "sisa-work"

Records = Sequence[tuple[str, str]] | Mapping[str, str]


def normalise_records(records: Records) -> list[tuple[str, str]]:
    """Return ``[(record_id, text), …]`` in the given order; ids are strings and unique."""
    items = list(records.items()) if isinstance(records, Mapping) else list(records)
    out, seen = [], set()
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError("records must be (record_id, text) pairs or a mapping of id to text")
        record_id, text = str(item[0]), item[1]
        if not isinstance(text, str):
            raise ValueError(f"record {record_id}: text must be a string, got {type(text).__name__}")
        if record_id in seen:
            raise ValueError(f"record id {record_id} occurs more than once")
        seen.add(record_id)
        out.append((record_id, text))
    return out


def shard_dir_name(shard: int) -> str:
    """Return the directory name of shard ``shard`` (``shard_03``)."""
    return f"shard_{shard:02d}"


@dataclass(frozen=True)
class SisaLayout:
    """Which record ids were trained in which shard and slice: ``shards[s][r]`` is a tuple of ids."""

    shards: tuple[tuple[tuple[str, ...], ...], ...]

    def __post_init__(self) -> None:
        if not self.shards:
            raise ValueError("SisaLayout.shards: at least one shard is required")
        slices = {len(shard) for shard in self.shards}
        if len(slices) != 1 or 0 in slices:
            raise ValueError("SisaLayout.shards: every shard needs the same number (>= 1) of slices")
        seen: set[str] = set()
        for shard in self.shards:
            for ids in shard:
                for record_id in ids:
                    if record_id in seen:
                        raise ValueError(f"SisaLayout.shards: record id {record_id} is in two places")
                    seen.add(record_id)

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    @property
    def n_slices(self) -> int:
        return len(self.shards[0])

    @classmethod
    def assign(
        cls,
        record_ids: Sequence[str],
        *,
        shards: int,
        slices: int,
        seed: int,
        groups: Mapping[str, str] | None = None,
    ) -> SisaLayout:
        """Deal the ids at random (fixed by ``seed``) into ``shards`` balanced shards of ``slices`` slices.

        With ``groups`` (record id to a group key, e.g. the data subject the record is about, as
        far as it is known at training time) the records of one group go to one shard, next to
        each other, so erasing a person retrains one shard instead of all of them. Groups are
        placed in random order on the least-filled shard; records without a group are their own.
        """
        import torch

        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        if slices < 1:
            raise ValueError(f"slices must be at least 1, got {slices}")
        generator = torch.Generator().manual_seed(mix_seed(seed, _LAYOUT_SALT))
        order = torch.randperm(len(record_ids), generator=generator).tolist()
        grouped: dict[str, list[str]] = {}
        for index in order:
            rid = str(record_ids[index])
            key = groups.get(rid) if groups is not None else None
            grouped.setdefault(f"g:{key}" if key is not None else f"r:{rid}", []).append(rid)
        dealt: list[list[str]] = [[] for _ in range(shards)]
        for members in grouped.values():
            smallest = min(range(shards), key=lambda s: (len(dealt[s]), s))
            dealt[smallest].extend(members)
        layout = []
        for ids in dealt:
            base, extra = divmod(len(ids), slices)
            cut, start = [], 0
            for r in range(slices):
                size = base + (1 if r < extra else 0)
                cut.append(tuple(ids[start : start + size]))
                start += size
            layout.append(tuple(cut))
        return cls(shards=tuple(layout))

    @classmethod
    def for_records(
        cls,
        record_ids: Sequence[str],
        *,
        layout: SisaLayout | None,
        shards: int,
        slices: int,
        seed: int,
        groups: Mapping[str, str] | None = None,
    ) -> SisaLayout:
        """Return ``layout`` checked against ``record_ids``, or a new one assigned over them.

        A given layout (a retrain keeps the original's) must name only records that are present.
        """
        if layout is None:
            return cls.assign(list(record_ids), shards=shards, slices=slices, seed=seed, groups=groups)
        present = set(record_ids)
        unknown = [rid for rid in layout.record_ids() if rid not in present]
        if unknown:
            raise ValueError(
                f"layout names {len(unknown)} record id(s) absent from records, e.g. {unknown[0]}"
            )
        return layout

    def locate(self) -> dict[str, tuple[int, int]]:
        """Return ``{record_id: (shard, slice)}``."""
        return {
            rid: (s, r) for s, shard in enumerate(self.shards) for r, ids in enumerate(shard) for rid in ids
        }

    def record_ids(self) -> list[str]:
        """Return every record id in the layout, shard by shard, slice by slice."""
        return [rid for shard in self.shards for ids in shard for rid in ids]

    def shard_ids(self, shard: int, upto_slice: int) -> list[str]:
        """Return the ids stage ``upto_slice`` of ``shard`` trains on: slices ``0..upto_slice``."""
        return [rid for ids in self.shards[shard][: upto_slice + 1] for rid in ids]

    def without(self, record_ids) -> SisaLayout:
        """Return the layout with ``record_ids`` removed; every other id keeps its shard and slice."""
        drop = {str(r) for r in record_ids}
        return type(self)(
            shards=tuple(
                tuple(tuple(r for r in ids if r not in drop) for ids in shard) for shard in self.shards
            )
        )

    def as_dict(self) -> dict[str, Any]:
        return {"shards": [[list(ids) for ids in shard] for shard in self.shards]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SisaLayout:
        try:
            shards = tuple(tuple(tuple(str(r) for r in ids) for ids in shard) for shard in data["shards"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"SisaLayout: malformed layout ({exc})") from exc
        return cls(shards=shards)


@dataclass(frozen=True)
class SisaRemoval:
    """What removing records from a SISA model retrains, and the layout the result is trained on.

    ``affected`` maps each shard holding a forget record to the first slice it retrains from;
    ``left_out`` are the records to leave out (held back for other erasures) that sit in those
    retrained slices, so the retraining does not train on them again. One that sits in an earlier
    slice, or in a shard not retrained, stays: the kept states were trained on it, and removing it
    is its own erasure's job.
    """

    affected: dict[int, int]
    layout: SisaLayout
    left_out: frozenset[str]


def plan_removal(layout: SisaLayout, forget_ids, leave_out_ids=()) -> SisaRemoval:
    """Return the :class:`SisaRemoval` of ``forget_ids`` (and of ``leave_out_ids`` where retrained)."""
    where = layout.locate()
    forget = {str(i) for i in forget_ids}
    affected: dict[int, int] = {}
    for rid in forget:
        if rid in where:
            shard, slice_ = where[rid]
            affected[shard] = min(slice_, affected.get(shard, slice_))
    left_out = frozenset(
        rid
        for rid in {str(i) for i in leave_out_ids} - forget
        if rid in where and where[rid][0] in affected and where[rid][1] >= affected[where[rid][0]]
    )
    return SisaRemoval(
        affected=dict(sorted(affected.items())), layout=layout.without(forget | left_out), left_out=left_out
    )


_PREPARED = ".prepared"


def _copy_atomically(src: Path, dst: Path) -> None:
    """Copy a directory tree so that ``dst`` appears complete or not at all."""
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".tmp-{dst.name}-{uuid.uuid4().hex[:8]}"
    shutil.copytree(src, tmp)
    os.rename(tmp, dst)


def _removal_digest(removal: SisaRemoval) -> str:
    plan = {"affected": {str(s): r for s, r in removal.affected.items()}, "layout": removal.layout.as_dict()}
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


def prepare_removal_work_dir(*, source: Path, work: Path, removal: SisaRemoval) -> None:
    """Copy what a removal keeps into ``work``: the shards not retrained, byte for byte, and each
    retrained shard's slice states before its first affected slice (they never saw a forget
    record). Idempotent across a resumed run: a marker file holds the digest of the plan, and a
    work directory prepared for another plan (records held back for another erasure since the
    interrupted run) raises ``CheckpointMismatch`` instead of finishing shards trained on it."""
    marker = work / _PREPARED
    if marker.is_file():
        if marker.read_text(encoding="utf-8").strip() != _removal_digest(removal):
            raise CheckpointMismatch(f"work directory {work} was prepared for another removal")
        return
    layout = removal.layout
    for shard in range(layout.n_shards):
        name = shard_dir_name(shard)
        if shard not in removal.affected:
            _copy_atomically(source / name, work / name)
            continue
        for stage in range(min(removal.affected[shard], layout.n_slices - 1)):
            _copy_atomically(slice_state_dir(source / name, stage), slice_state_dir(work / name, stage))
        if (work / name / SHARD_FILE).exists():
            raise ValueError(f"work directory {work} holds a finished {name} that should be retrained")
    marker.write_text(_removal_digest(removal) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class SisaTrainResult:
    """What a SISA training (or partial retraining) produced and cost."""

    output_dir: str
    weights_sha256: str
    shards_trained: tuple[int, ...]
    steps: int
    full_training_steps: int
    seconds: float
    epochs_per_slice: int
    device: str

    def as_dict(self) -> dict:
        return {
            "output_dir": self.output_dir,
            "weights_sha256": self.weights_sha256,
            "shards_trained": list(self.shards_trained),
            "steps": self.steps,
            "full_training_steps": self.full_training_steps,
            "seconds": self.seconds,
            "epochs_per_slice": self.epochs_per_slice,
            "device": self.device,
        }


def default_epochs_per_slice(recipe: TrainingRecipe, slices: int) -> int:
    """Return epochs per stage so a record is seen ``recipe.epochs`` times on average.

    Stage ``r`` revisits slices ``0..r``, so a record in slice ``r`` is seen
    ``(R - r) * e`` times; the mean over slices is ``e (R + 1) / 2``.
    """
    return max(1, round(2 * recipe.epochs / (slices + 1)))


def read_manifest(model_dir: str | os.PathLike) -> dict:
    """Return the parsed ``sisa.json`` of a SISA model directory."""
    path = Path(model_dir) / SISA_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {SISA_MANIFEST} in {model_dir}: not a SISA model directory")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") not in (SISA_FORMAT, SISA_ADAPTERS_FORMAT):
        raise ValueError(f"{path}: unsupported format {manifest.get('format')!r}")
    return manifest


def is_sisa_dir(model_dir: str | os.PathLike) -> bool:
    """Return whether ``model_dir`` holds a SISA ensemble (a ``sisa.json`` manifest)."""
    return (Path(model_dir) / SISA_MANIFEST).is_file()


def _tokenizer_digest(tokenizer) -> str:
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest()


def _stage_fingerprint(
    *,
    texts: Sequence[str],
    recipe: TrainingRecipe,
    shard: int,
    stage: int,
    epochs_per_slice: int,
    tokenizer_digest: str,
) -> str:
    """Fingerprint everything a stage's result depends on, so a stale slice state is never resumed."""
    digest = hashlib.sha256(texts_fingerprint(texts).encode())
    digest.update(
        json.dumps(
            [recipe.as_dict(), shard, stage, epochs_per_slice, tokenizer_digest], sort_keys=True
        ).encode()
    )
    return digest.hexdigest()


def _stage_steps(n_examples: int, *, batch_size: int, epochs_per_slice: int) -> int:
    return steps_per_epoch(n_examples, batch_size) * epochs_per_slice if n_examples else 0


def full_training_steps(layout: SisaLayout, *, batch_size: int, epochs_per_slice: int) -> list[int]:
    """Return the optimiser steps a from-scratch training of each shard takes."""
    return [
        sum(
            _stage_steps(
                len(layout.shard_ids(s, r)), batch_size=batch_size, epochs_per_slice=epochs_per_slice
            )
            for r in range(layout.n_slices)
        )
        for s in range(layout.n_shards)
    ]


def slice_state_dir(shard_dir: Path, stage: int) -> Path:
    """Return where the training state after stage ``stage`` of a shard is kept."""
    return shard_dir / SLICES_SUBDIR / f"after_{stage:02d}"


def write_shard_file(shard_dir: Path, *, shard: int, records: int, fingerprint: str) -> None:
    """Mark a shard finished, with the fingerprint of what its last stage was trained on."""
    tmp = shard_dir / f".{SHARD_FILE}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(
        json.dumps({"shard": shard, "records": records, "fingerprint": fingerprint}) + "\n", encoding="utf-8"
    )
    os.replace(tmp, shard_dir / SHARD_FILE)


def shard_finished(shard_dir: Path, *, fingerprint: Callable[[], str] | None) -> bool:
    """Return whether ``shard_dir`` holds a finished shard of this build.

    A finished shard whose stored fingerprint is not ``fingerprint()`` was trained on other
    records (an interrupted build resumed on changed data): ``CheckpointMismatch``, so it is never
    passed off as trained on these. ``fingerprint=None`` is for a shard copied byte for byte from
    the source model, which this build does not train; a shard file without a fingerprint is
    one written before shard files held them.
    """
    path = shard_dir / SHARD_FILE
    if not path.is_file():
        return False
    stored = json.loads(path.read_text(encoding="utf-8")).get("fingerprint")
    if fingerprint is not None and stored is not None and stored != fingerprint():
        raise CheckpointMismatch(f"finished shard {shard_dir} was trained on other records or another recipe")
    return True


class _SisaBuild:
    """Train the shards that a work directory still lacks, resuming at stage granularity."""

    def __init__(
        self,
        *,
        work_dir: Path,
        layout: SisaLayout,
        texts_by_id: Mapping[str, str],
        recipe: TrainingRecipe,
        tokenizer,
        epochs_per_slice: int,
        accelerator,
        progress: ProgressCallback | None,
        should_stop: StopCallback | None,
        kept_shards: frozenset[int] = frozenset(),
    ) -> None:
        self.work_dir = work_dir
        self.kept_shards = kept_shards
        self.layout = layout
        self.texts_by_id = texts_by_id
        self.recipe = recipe
        self.tokenizer = tokenizer
        self.tokenizer_digest = _tokenizer_digest(tokenizer)
        self.epochs_per_slice = epochs_per_slice
        self.accelerator = accelerator
        self.progress, self.should_stop = progress, should_stop
        self.pad_id = pad_token_id(tokenizer)
        self.done_steps, self.total_steps = 0, 0
        self._examples: dict[str, list[int]] = {}

    def examples(self, ids: Sequence[str]) -> list[list[int]]:
        missing = [rid for rid in ids if rid not in self._examples]
        if missing:
            absent = [rid for rid in missing if rid not in self.texts_by_id]
            if absent:
                raise ValueError(
                    f"the text of {len(absent)} record(s) the shards need is missing, e.g. id {absent[0]}"
                )
            encoded = encode_texts(
                self.tokenizer, [self.texts_by_id[rid] for rid in missing], block_size=self.recipe.block_size
            )
            self._examples.update(zip(missing, encoded, strict=True))
        return [self._examples[rid] for rid in ids]

    def fingerprint(self, shard: int, stage: int) -> str:
        ids = self.layout.shard_ids(shard, stage)
        absent = [rid for rid in ids if rid not in self.texts_by_id]
        if absent:
            raise ValueError(
                f"the text of {len(absent)} record(s) of shard {shard} is missing, e.g. id {absent[0]}"
            )
        return _stage_fingerprint(
            texts=[self.texts_by_id[rid] for rid in ids],
            recipe=self.recipe,
            shard=shard,
            stage=stage,
            epochs_per_slice=self.epochs_per_slice,
            tokenizer_digest=self.tokenizer_digest,
        )

    def resume_stage(self, shard: int) -> int | None:
        """Return the first stage still to train for ``shard`` (``None`` when the shard is done)."""
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
                state = load_state(path)
                if state.get("fingerprint") != self.fingerprint(shard, stage):
                    raise CheckpointMismatch(
                        f"slice state {path} was trained on other records or another recipe"
                    )
                return stage + 1
        return 0

    def stage_steps(self, shard: int, stage: int) -> int:
        return _stage_steps(
            len(self.layout.shard_ids(shard, stage)),
            batch_size=self.recipe.batch_size,
            epochs_per_slice=self.epochs_per_slice,
        )

    def run(self) -> tuple[int, ...]:
        """Train every unfinished shard and return the indices of the shards trained."""
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

        acc, recipe = self.accelerator, self.recipe
        shard_dir = self.work_dir / shard_dir_name(shard)
        shard_dir.mkdir(parents=True, exist_ok=True)
        model = build_model(recipe, self.tokenizer, seed=mix_seed(recipe.seed, shard))
        model.train()
        optimizer = make_optimizer(
            model,
            learning_rate=recipe.learning_rate,
            weight_decay=recipe.weight_decay,
            betas=(recipe.adam_beta1, recipe.adam_beta2),
        )
        model, optimizer = acc.prepare(model, optimizer)
        # Slice states and the shard directory use the bare model's names and forward.
        bare = acc.unwrap_model(model)
        torch.manual_seed(mix_seed(recipe.seed, shard, 1))
        if start_stage > 0:
            state = load_state(slice_state_dir(shard_dir, start_stage - 1))
            bare.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            restore_rng_state(state["rng"])
        for stage in range(start_stage, self.layout.n_slices):
            ids = self.layout.shard_ids(shard, stage)
            examples = self.examples(ids)
            total = self.stage_steps(shard, stage)
            per_epoch = steps_per_epoch(len(examples), recipe.batch_size) if examples else 1
            order, order_epoch = None, -1
            for local in range(total):
                if self.should_stop is not None and self.should_stop():
                    raise TrainingCancelled(step=self.done_steps, total=self.total_steps)
                epoch, index = divmod(local, per_epoch)
                if epoch != order_epoch:
                    order = epoch_order(
                        len(examples), seed=recipe.seed, epoch=epoch, salt=mix_seed(shard, stage)
                    )
                    order_epoch = epoch
                chunk = [
                    examples[i] for i in order[index * recipe.batch_size : (index + 1) * recipe.batch_size]
                ]
                batch = collate(chunk, pad_id=self.pad_id, device=acc.device)
                loss = optimizer_step(
                    model,
                    optimizer,
                    batch,
                    lr=lr_at(local, total=total, recipe=recipe),
                    max_grad_norm=recipe.max_grad_norm,
                    accelerator=acc,
                )
                if loss != loss:
                    raise FloatingPointError(
                        f"shard {shard} stage {stage}: loss became NaN; lower learning_rate"
                    )
                self.done_steps += 1
                if self.progress is not None:
                    self.progress(self.done_steps, self.total_steps)
            if stage < self.layout.n_slices - 1:
                save_state(
                    slice_state_dir(shard_dir, stage),
                    {
                        "format": SLICE_STATE_FORMAT,
                        "shard": shard,
                        "stage": stage,
                        "fingerprint": self.fingerprint(shard, stage),
                        "model": {k: v.detach().cpu() for k, v in bare.state_dict().items()},
                        "optimizer": optimizer.state_dict(),
                        "rng": capture_rng_state(),
                    },
                )
        acc.unwrap_model(model, keep_fp32_wrapper=False).save_pretrained(shard_dir, safe_serialization=True)
        self.tokenizer.save_pretrained(shard_dir)
        records = len(self.layout.shard_ids(shard, self.layout.n_slices - 1))
        write_shard_file(
            shard_dir,
            shard=shard,
            records=records,
            fingerprint=self.fingerprint(shard, self.layout.n_slices - 1),
        )
        # The Accelerator keeps references to every prepared model; drop them before the next shard.
        acc.free_memory()
        del model, optimizer, bare
        logger.info(
            "engine.sisa.shard_trained", extra={"shard": shard, "from_stage": start_stage, "records": records}
        )


def write_manifest(
    *,
    work_dir: Path,
    layout: SisaLayout,
    recipe: TrainingRecipe,
    tokenizer,
    epochs_per_slice: int,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write ``sisa.json``, ``lethe_recipe.json`` and the shared tokenizer at the top of a SISA dir."""
    steps = full_training_steps(layout, batch_size=recipe.batch_size, epochs_per_slice=epochs_per_slice)
    manifest = {
        "format": SISA_FORMAT,
        "shards": layout.n_shards,
        "slices": layout.n_slices,
        "epochs_per_slice": epochs_per_slice,
        "shard_dirs": [shard_dir_name(s) for s in range(layout.n_shards)],
        "records": len(layout.record_ids()),
        "full_training_steps": steps,
        "aggregation": "mean of shard probabilities",
        "tokenizer": "shared by all shards; trained once, not retrained by SISA unlearning",
        "recipe": recipe.as_dict(),
        "layout": layout.as_dict(),
        **dict(extra or {}),
    }
    (work_dir / SISA_MANIFEST).write_text(
        json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    recipe.save(work_dir)
    tokenizer.save_pretrained(work_dir)


def sisa_accelerator(device=None):
    """Return the Accelerator SISA shard training runs on; ``ValueError`` under several processes.

    ``device=None`` picks the best device here, with bf16 autocast on a GPU that supports it
    (weights and optimiser state stay fp32), as for :func:`~.train.train_causal_lm`.
    """
    import torch

    device, dtype = resolve_device(device)
    return single_process_accelerator(
        device,
        bf16=dtype == torch.bfloat16,
        what="SISA shard training",
        why="every process would train every shard and write the same output",
    )


def build_sisa(
    *,
    work_dir: Path,
    output_dir: Path,
    layout: SisaLayout,
    texts_by_id: Mapping[str, str],
    recipe: TrainingRecipe,
    tokenizer,
    epochs_per_slice: int,
    device,
    progress,
    should_stop,
    overwrite: bool,
    manifest_extra: Mapping[str, Any] | None = None,
    remove_work_dir: bool = True,
    accelerator=None,
    kept_shards: frozenset[int] = frozenset(),
) -> SisaTrainResult:
    """Train what ``work_dir`` lacks, write the manifest, and move the result to ``output_dir``.

    Shared by :func:`train_sisa` (an empty work directory) and SISA unlearning (a work directory
    prepared with the untouched shards and the clean slice states of the affected ones).
    ``accelerator`` is :func:`sisa_accelerator`'s for ``device`` unless given; ``kept_shards``
    are the shards copied from the source, not trained here (their finished state is trusted).
    """
    started = time.monotonic()
    if accelerator is None:
        accelerator = sisa_accelerator(device)
    device = accelerator.device
    build = _SisaBuild(
        work_dir=work_dir,
        layout=layout,
        texts_by_id=texts_by_id,
        recipe=recipe,
        tokenizer=tokenizer,
        epochs_per_slice=epochs_per_slice,
        accelerator=accelerator,
        progress=progress,
        should_stop=should_stop,
        kept_shards=kept_shards,
    )
    trained = build.run()
    write_manifest(
        work_dir=work_dir,
        layout=layout,
        recipe=recipe,
        tokenizer=tokenizer,
        epochs_per_slice=epochs_per_slice,
        extra=manifest_extra,
    )
    steps_full = sum(
        full_training_steps(layout, batch_size=recipe.batch_size, epochs_per_slice=epochs_per_slice)
    )
    seconds = time.monotonic() - started
    provenance = {
        "format": "lethe-training/1",
        "records": len(layout.record_ids()),
        "steps": build.done_steps,
        "shards_trained": list(trained),
        "device": str(device),
        "compute_seconds": seconds,
    }
    (work_dir / TRAINING_FILE).write_text(
        json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        for child in sorted(work_dir.iterdir()):
            if child.name.startswith("."):
                continue
            if remove_work_dir:
                shutil.move(str(child), str(tmp / child.name))
            elif child.is_dir():
                shutil.copytree(child, tmp / child.name)
            else:
                shutil.copy2(child, tmp / child.name)
    if remove_work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    return SisaTrainResult(
        output_dir=str(output_dir),
        weights_sha256=weights_sha256(output_dir),
        shards_trained=trained,
        steps=build.done_steps,
        full_training_steps=steps_full,
        seconds=seconds,
        epochs_per_slice=epochs_per_slice,
        device=str(device),
    )


def prepare_work_dir(*, output_dir: Path, checkpoint_dir: str | os.PathLike | None) -> tuple[Path, bool]:
    """Return the work directory for a SISA build and whether it is a resumable one.

    With ``checkpoint_dir`` the work happens in ``checkpoint_dir/sisa-work`` and survives a kill;
    without, in a temporary directory beside ``output_dir``.
    """
    if checkpoint_dir is not None:
        work = Path(checkpoint_dir) / _WORK_SUBDIR
        work.mkdir(parents=True, exist_ok=True)
        return work, True
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    work = output_dir.parent / f".tmp-sisa-{output_dir.name}-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    return work, False


def train_sisa(
    *,
    records: Records,
    recipe: TrainingRecipe,
    output_dir: str | os.PathLike,
    shards: int = 8,
    slices: int = 4,
    layout: SisaLayout | None = None,
    groups: Mapping[str, str] | None = None,
    epochs_per_slice: int | None = None,
    tokenizer=None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    device=None,
    overwrite: bool = False,
) -> SisaTrainResult:
    """Train a SISA ensemble of ``shards`` x ``slices`` on ``records`` (``(id, text)`` pairs).

    The layout is dealt at random from ``recipe.seed`` unless given (``retrain`` passes the
    stored layout minus the forgotten ids, which makes it comparable with SISA unlearning);
    ``groups`` keeps each group's records (e.g. one person's) in one shard. The
    tokenizer is trained on all the texts unless given. With ``checkpoint_dir`` a killed run
    resumes from the last finished stage of each shard; ``should_stop`` raises
    :class:`TrainingCancelled`. ``progress(step, total)`` counts optimiser steps over all shards.
    Raises ``ValueError`` when started as one of several processes (``accelerate launch``), before
    anything is written; see the module docstring.
    """
    pairs = normalise_records(records)
    if not pairs:
        raise ValueError("records is empty: there is nothing to train on")
    texts_by_id = dict(pairs)
    layout = SisaLayout.for_records(
        [rid for rid, _ in pairs],
        layout=layout,
        shards=shards,
        slices=slices,
        seed=recipe.seed,
        groups=groups,
    )
    if epochs_per_slice is None:
        epochs_per_slice = default_epochs_per_slice(recipe, layout.n_slices)
    if epochs_per_slice < 1:
        raise ValueError(f"epochs_per_slice must be at least 1, got {epochs_per_slice}")
    out = Path(output_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"refusing to overwrite non-empty {out}; pass overwrite=True")
    accelerator = sisa_accelerator(device)  # refuses several processes before anything is written
    work, resumable = prepare_work_dir(output_dir=out, checkpoint_dir=checkpoint_dir)
    try:
        if tokenizer is None:
            tokenizer = _work_dir_tokenizer(work, [text for _, text in pairs], recipe)
        return build_sisa(
            work_dir=work,
            output_dir=out,
            layout=layout,
            texts_by_id=texts_by_id,
            recipe=recipe,
            tokenizer=tokenizer,
            epochs_per_slice=epochs_per_slice,
            device=device,
            progress=progress,
            should_stop=should_stop,
            overwrite=overwrite,
            accelerator=accelerator,
        )
    finally:
        if not resumable:
            shutil.rmtree(work, ignore_errors=True)


def _work_dir_tokenizer(work: Path, texts: Sequence[str], recipe: TrainingRecipe):
    """Train the shared tokenizer once per work directory, so a resumed build reuses it."""
    from transformers import AutoTokenizer

    saved = work / ".tokenizer"
    if (saved / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(saved)
    tokenizer = train_byte_bpe_tokenizer(texts=texts, vocab_size=recipe.vocab_size)
    tmp = work / f".tokenizer-{uuid.uuid4().hex[:8]}"
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, saved)
    return tokenizer
