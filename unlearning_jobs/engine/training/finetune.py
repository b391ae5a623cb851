"""Fine-tune a pretrained causal LM (full parameters or LoRA) through ``accelerate``, reproducibly.

The organisation's models are pretrained checkpoints fine-tuned on its data, so exact deletion
means fine-tuning again from the same base on the data without the records. That is only exact
when a fine-tune is a pure function of its recipe: the base weights (by SHA-256), the records in
order, the hyper-parameters and the seed. Everything random is therefore seeded from the recipe
(LoRA initialisation, data order per epoch, dropout), and the recipe returned with every result
(and saved as ``lethe_finetune.json``) holds all of it.

The loop keeps ``train_causal_lm``'s conventions: ``progress(step, total)`` after each optimiser
step, ``should_stop()`` before each (checkpoint, then :class:`TrainingCancelled`), and with a
``checkpoint_dir`` a full state every ``checkpoint_every`` steps from which a killed run resumes
to the same weights as an uninterrupted one; a checkpoint of other data or another recipe raises
:class:`CheckpointMismatch`.

Device placement, bf16 autocast and DDP come from ``accelerate.Accelerator``. Gradient
accumulation is done here with ``accelerator.no_sync`` rather than ``accelerator.accumulate``:
the loss of an optimiser step is the mean over *all* its answer tokens (records differ in
length, and a mean of per-batch means would weight short answers more), so every micro-batch's
summed loss is divided by the token count of the whole step, which each process computes from
the (deterministic) data order. Under ``accelerate launch --num_processes N`` every process
takes every N-th example of each micro-batch; DDP's gradient average then equals the
one-process gradient up to floating-point summation order.

Output (decided in docs/engine.md): a full fine-tune writes a complete model directory; a LoRA
fine-tune writes a small *adapter directory* (``adapter_config.json``,
``adapter_model.safetensors``, the tokenizer, ``lethe_finetune.json`` naming the base by path
and SHA-256). :func:`unlearning_jobs.engine.models.load_causal_lm` loads either.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..checkpoints import (
    atomic_directory,
    capture_rng_state,
    latest_checkpoint,
    load_state,
    restore_rng_state,
    save_checkpoint,
    weights_sha256,
)
from ..device import make_accelerator
from ..importing import read_import
from .data import epoch_order, mix_seed
from .train import CheckpointMismatch, TrainingCancelled, make_optimizer
from .validation import dataclass_from_dict, require

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
StopCallback = Callable[[], bool]

FINETUNE_FILE = "lethe_finetune.json"
FINETUNE_FORMAT = "lethe-finetune/1"
CHECKPOINT_FORMAT = "lethe-finetune-checkpoint/1"
ADAPTERS = ("none", "lora")
FORMATS = ("text", "prompt_answer")
LR_SCHEDULES = ("constant", "linear", "cosine")
#: peft's shorthand for "every linear layer except the output head".
ALL_LINEAR = "all-linear"
IGNORE = -100

Record = str | Mapping[str, str]


@dataclass(frozen=True)
class FinetuneParams:
    """Hyper-parameters of a fine-tune; with the base and the records they fix the result exactly.

    - ``adapter``: ``"none"`` (all parameters) or ``"lora"`` (``lora_r``, ``lora_alpha``,
      ``lora_dropout``, ``target_modules``; an empty tuple means every linear layer).
    - ``format``: ``"text"`` (loss on every token) or ``"prompt_answer"`` (records are
      ``{"prompt"/"question": …, "answer": …}``; the tokenizer's chat template is applied when it
      has one; loss on the answer tokens only).
    - ``batch_size`` is the micro-batch over all processes; an optimiser step sees
      ``batch_size * gradient_accumulation_steps`` records.
    - ``bf16``: mixed precision on CUDA only (refused on the CPU). ``num_processes``: data-parallel
      processes under ``accelerate launch`` (1: in this process).
    """

    adapter: str = "lora"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ()
    format: str = "text"
    epochs: int = 1
    learning_rate: float = 2e-4
    lr_schedule: str = "linear"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 256
    max_grad_norm: float = 1.0
    seed: int = 0
    gradient_checkpointing: bool = False
    bf16: bool = False
    num_processes: int = 1

    def __post_init__(self) -> None:
        name = type(self).__name__
        require(
            self.adapter in ADAPTERS,
            name,
            "adapter",
            f"must be one of {', '.join(ADAPTERS)}, got {self.adapter!r}",
        )
        require(
            self.format in FORMATS,
            name,
            "format",
            f"must be one of {', '.join(FORMATS)}, got {self.format!r}",
        )
        require(
            self.lr_schedule in LR_SCHEDULES,
            name,
            "lr_schedule",
            f"must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}",
        )
        for field in (
            "lora_r",
            "lora_alpha",
            "epochs",
            "batch_size",
            "gradient_accumulation_steps",
            "num_processes",
        ):
            value = getattr(self, field)
            require(value >= 1, name, field, f"must be at least 1, got {value}")
        require(self.max_length >= 2, name, "max_length", f"must be at least 2, got {self.max_length}")
        require(
            0 <= self.lora_dropout < 1, name, "lora_dropout", f"must be in [0, 1), got {self.lora_dropout}"
        )
        require(
            0 < self.learning_rate <= 1, name, "learning_rate", f"must be in (0, 1], got {self.learning_rate}"
        )
        require(
            self.warmup_steps >= 0, name, "warmup_steps", f"must be non-negative, got {self.warmup_steps}"
        )
        require(
            0 <= self.weight_decay < 1, name, "weight_decay", f"must be in [0, 1), got {self.weight_decay}"
        )
        require(self.max_grad_norm > 0, name, "max_grad_norm", f"must be positive, got {self.max_grad_norm}")
        require(self.seed >= 0, name, "seed", f"must be non-negative, got {self.seed}")
        require(
            isinstance(self.target_modules, tuple)
            and all(isinstance(m, str) and m for m in self.target_modules),
            name,
            "target_modules",
            "must be a list of module names (empty: every linear layer)",
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FinetuneParams:
        """Build validated params from JSON; unknown keys and bad values raise ``ValueError`` by name."""
        return dataclass_from_dict(cls, data)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    def replace(self, **changes: Any) -> FinetuneParams:
        return type(self).from_dict({**self.as_dict(), **changes})

    def training_fields(self) -> dict[str, Any]:
        """The fields that change the weights (not ``num_processes``, which only changes speed)."""
        data = self.as_dict()
        data.pop("num_processes")
        return data


@dataclass(frozen=True)
class FinetuneResult:
    """What a fine-tune produced: the directory, its checksum, its cost, and the recipe that remakes it."""

    output_dir: str
    output_kind: str  # "adapter" or "full"
    weights_sha256: str
    steps: int
    total_steps: int
    records: int
    tokens: int
    seconds: float
    compute_seconds: float
    final_loss: float
    epoch_losses: tuple[float, ...]
    resumed_from_step: int | None
    device: str
    num_processes: int
    trainable_parameters: int
    recipe: dict

    def as_dict(self) -> dict:
        data = asdict(self)
        data["epoch_losses"] = list(self.epoch_losses)
        return data


# --- records -----------------------------------------------------------------------------------


def normalise_finetune_records(records) -> list[tuple[str, Record]]:
    """Return ``[(record_id, record), …]`` from a mapping, ``(id, record)`` pairs, or bare records.

    A record is a string (``format="text"``) or a mapping with ``prompt`` (or ``question``) and
    ``answer``. Bare records get their position as id. Ids are strings and must be unique, since
    exact deletion removes records by id.
    """
    if isinstance(records, Mapping):
        items = list(records.items())
    else:
        items = []
        for index, item in enumerate(records):
            if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], (str, Mapping)):
                items.append((item[0], item[1]))
            else:
                items.append((index, item))
    out, seen = [], set()
    for rid, record in items:
        rid = str(rid)
        if rid in seen:
            raise ValueError(f"record id {rid} occurs more than once")
        if not isinstance(record, (str, Mapping)):
            raise ValueError(
                f"record {rid}: expected a string or a prompt/answer object, got {type(record).__name__}"
            )
        seen.add(rid)
        out.append((rid, record))
    return out


def _prompt_answer(rid: str, record: Record) -> tuple[str, str]:
    if not isinstance(record, Mapping):
        raise ValueError(f"record {rid}: format prompt_answer needs {{'prompt', 'answer'}}, got a string")
    prompt = record.get("prompt", record.get("question"))
    answer = record.get("answer")
    if not isinstance(prompt, str) or not isinstance(answer, str):
        raise ValueError(
            f"record {rid}: format prompt_answer needs string 'prompt' (or 'question') and 'answer'"
        )
    return prompt, answer


def _text(rid: str, record: Record) -> str:
    if isinstance(record, str):
        return record
    if "text" in record and isinstance(record["text"], str):
        return record["text"]
    raise ValueError(f"record {rid}: format text needs a string (or {{'text': …}}), got an object")


def records_fingerprint(records: Sequence[tuple[str, Record]]) -> str:
    """Return a SHA-256 over the records in order (ids and content), for recipes and checkpoints."""
    digest = hashlib.sha256()
    for rid, record in records:
        digest.update(hashlib.sha256(json.dumps([rid, record], sort_keys=True).encode("utf-8")).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class Example:
    """Token ids and labels of one record; labels are -100 where no loss is taken."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def loss_tokens(self) -> int:
        """Label tokens after the next-token shift (the first position is never predicted)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE)


def _eos(tokenizer) -> int | None:
    return tokenizer.eos_token_id


def encode_record(tokenizer, rid: str, record: Record, *, fmt: str, max_length: int) -> Example:
    """Tokenize one record for training.

    ``text``: the tokenizer's own special tokens (BOS where it adds one), the text, then EOS;
    every token is a label. ``prompt_answer``: with a chat template, the user turn rendered with
    the generation prompt, followed by the rest of the full conversation (answer and the
    template's end-of-turn); without one, the prompt's ids then ``" " + answer`` and EOS. Labels
    cover only the answer part. Cut to ``max_length``.
    """
    eos = _eos(tokenizer)
    if fmt == "text":
        ids = list(tokenizer(_text(rid, record)).input_ids)
        if eos is not None and (not ids or ids[-1] != eos):
            ids.append(eos)
        ids = ids[:max_length]
        return Example(tuple(ids), tuple(ids))
    prompt, answer = _prompt_answer(rid, record)
    prompt_ids, answer_ids = _prompt_answer_ids(tokenizer, prompt, answer)
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + answer_ids)[:max_length]
    return Example(tuple(ids), tuple(labels))


def _prompt_answer_ids(tokenizer, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    if getattr(tokenizer, "chat_template", None):
        user = [{"role": "user", "content": prompt}]
        prompt_text = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full_text = tokenizer.apply_chat_template(
            user + [{"role": "assistant", "content": answer}], tokenize=False
        )
        prompt_ids = list(tokenizer(prompt_text, add_special_tokens=False).input_ids)
        full_ids = list(tokenizer(full_text, add_special_tokens=False).input_ids)
        if full_ids[: len(prompt_ids)] == prompt_ids and len(full_ids) > len(prompt_ids):
            return prompt_ids, full_ids[len(prompt_ids) :]
        # A template that renders the prompt differently inside the full conversation: keep the
        # generation prompt exactly as inference will see it and append the answer to it.
        answer_ids = list(tokenizer(answer, add_special_tokens=False).input_ids)
    else:
        prompt_ids = list(tokenizer(prompt).input_ids)
        answer_ids = list(tokenizer(" " + answer, add_special_tokens=False).input_ids)
    eos = _eos(tokenizer)
    if eos is not None:
        answer_ids.append(eos)
    return prompt_ids, answer_ids


def encode_records(tokenizer, records: Sequence[tuple[str, Record]], params: FinetuneParams) -> list[Example]:
    """Return one :class:`Example` per record; a record left without any label token is an error."""
    examples = []
    for rid, record in records:
        example = encode_record(tokenizer, rid, record, fmt=params.format, max_length=params.max_length)
        if example.loss_tokens == 0:
            raise ValueError(
                f"record {rid}: no answer token fits in max_length={params.max_length}; raise max_length"
            )
        examples.append(example)
    return examples


def collate_examples(examples: Sequence[Example], *, pad_id: int, device=None) -> dict:
    """Right-pad to the longest example; padding gets attention 0 and label -100."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention[row, :n] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
    if device is not None:
        batch = {k: v.to(device) for k, v in batch.items()}
    return batch


def summed_nll(model, batch: dict):
    """Return the summed next-token cross-entropy over labels that are not -100, in float32."""
    import torch.nn.functional as F

    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits[:, :-1, :].float()
    labels = batch["labels"][:, 1:]
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )


def pad_id_of(tokenizer) -> int:
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    return 0


# --- base model and adapters -------------------------------------------------------------------


def describe_base(base_model_dir: str | os.PathLike) -> dict:
    """Return the base's identity for a recipe: path, weights SHA-256, and its import record if any."""
    base = Path(base_model_dir).resolve()
    if not (base / "config.json").is_file():
        raise ValueError(f"{base} is not a model directory (no config.json); import the model first")
    imported = read_import(base) or {}
    return {
        "path": str(base),
        "weights_sha256": weights_sha256(base),
        "source_sha256": imported.get("source_sha256"),
        "architecture": imported.get("architecture"),
        "kind": imported.get("kind", "base"),
    }


def lora_config_dict(params: FinetuneParams) -> dict | None:
    """Return the LoRA settings the recipe records (``None`` for a full fine-tune)."""
    if params.adapter != "lora":
        return None
    return {
        "r": params.lora_r,
        "lora_alpha": params.lora_alpha,
        "lora_dropout": params.lora_dropout,
        "target_modules": list(params.target_modules) or ALL_LINEAR,
        "bias": "none",
        "task_type": "CAUSAL_LM",
    }


def load_base_model(base_model_dir, params: FinetuneParams, *, init_seed: int | None = None):
    """Load the base in fp32 and wrap it for training: LoRA (seeded initialisation) or all parameters.

    ``init_seed`` seeds the LoRA matrices (default: from ``params.seed``); SISA gives each shard
    its own.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(base_model_dir), dtype=torch.float32, local_files_only=True
    )
    if params.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if params.adapter == "lora":
        from peft import LoraConfig, get_peft_model

        config = lora_config_dict(params)
        torch.manual_seed(mix_seed(params.seed, 0x10A) if init_seed is None else init_seed)
        model = get_peft_model(model, LoraConfig(**config))
        if params.gradient_checkpointing:
            model.enable_input_require_grads()
    return model


def lr_at(step: int, *, total: int, params: FinetuneParams) -> float:
    """Linear warmup then the schedule's decay, a pure function of the step (so resumes restore it)."""
    peak = params.learning_rate
    warmup = min(params.warmup_steps, max(total - 1, 0))
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    if params.lr_schedule == "constant" or total <= warmup + 1:
        return peak
    progress = (step - warmup) / max(1, total - warmup)
    if params.lr_schedule == "linear":
        return peak * max(0.0, 1.0 - progress)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def trainable_state(model) -> dict:
    """Return the trainable parameters (LoRA matrices, or everything) as CPU tensors by name."""
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model, state: Mapping) -> None:
    """Copy saved trainable parameters into ``model``; a name it lacks is a mismatch, not skipped."""
    import torch

    params = dict(model.named_parameters())
    unknown = [n for n in state if n not in params]
    if unknown:
        raise CheckpointMismatch(f"checkpoint holds parameters the model lacks, e.g. {unknown[0]}")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device))


# --- the loop ----------------------------------------------------------------------------------


class StepLoop:
    """Run optimiser steps over examples with an Accelerator: the part fine-tuning and SISA share.

    ``plan(examples, epochs, salt)`` fixes the steps; ``run_step`` takes one. Each process takes
    every ``num_processes``-th example of each micro-batch; the summed loss is divided by the
    token count of the whole optimiser step (over all processes and micro-batches).
    """

    def __init__(self, *, accelerator, model, optimizer, params: FinetuneParams, pad_id: int) -> None:
        self.accelerator = accelerator
        self.model = model
        self.optimizer = optimizer
        self.params = params
        self.pad_id = pad_id

    @property
    def step_size(self) -> int:
        return self.params.batch_size * self.params.gradient_accumulation_steps

    def steps_per_epoch(self, n: int) -> int:
        return -(-n // self.step_size) if n else 0

    def step_examples(self, examples, *, step: int, per_epoch: int, salt: int, cache: dict) -> list:
        epoch, index = divmod(step, per_epoch)
        if cache.get("epoch") != epoch:
            cache["epoch"] = epoch
            cache["order"] = epoch_order(len(examples), seed=self.params.seed, epoch=epoch, salt=salt)
        order = cache["order"]
        return [examples[i] for i in order[index * self.step_size : (index + 1) * self.step_size]]

    def run_step(self, chunk: Sequence[Example], *, lr: float) -> tuple[float, int]:
        """Take one optimiser step on ``chunk``; return its mean loss over all processes and its tokens."""
        import torch

        acc = self.accelerator
        total_tokens = sum(e.loss_tokens for e in chunk)
        micro = [chunk[i : i + self.params.batch_size] for i in range(0, len(chunk), self.params.batch_size)]
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        local_sum = torch.zeros((), device=acc.device)
        for k, part in enumerate(micro):
            mine = list(part[acc.process_index :: acc.num_processes])
            # A process with no example of this micro-batch still joins DDP's gradient all-reduce,
            # with a zero-weighted loss on a real example.
            weight = 1.0 if mine else 0.0
            batch = collate_examples(mine or list(part[:1]), pad_id=self.pad_id, device=acc.device)
            last = k == len(micro) - 1
            context = (
                acc.no_sync(self.model) if (not last and acc.num_processes > 1) else contextlib.nullcontext()
            )
            with context:
                with acc.autocast():
                    nll = summed_nll(self.model, batch) * weight
                acc.backward(nll * acc.num_processes / max(total_tokens, 1))
            local_sum += nll.detach()
        acc.clip_grad_norm_(self.model.parameters(), self.params.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        summed = acc.reduce(local_sum, reduction="sum") if acc.num_processes > 1 else local_sum
        return float(summed) / max(total_tokens, 1), total_tokens

    def stop_requested(self, should_stop: StopCallback | None) -> bool:
        """Ask ``should_stop`` and agree across processes: any process asking to stop stops all."""
        import torch

        flag = bool(should_stop()) if should_stop is not None else False
        if self.accelerator.num_processes == 1:
            return flag
        total = self.accelerator.reduce(
            torch.tensor(float(flag), device=self.accelerator.device), reduction="sum"
        )
        return float(total) > 0


def _fingerprint(records_fp: str, base: dict, params: FinetuneParams) -> str:
    digest = hashlib.sha256(records_fp.encode())
    digest.update(json.dumps([base["weights_sha256"], params.training_fields()], sort_keys=True).encode())
    return digest.hexdigest()


def build_recipe(*, base: dict, params: FinetuneParams, data_identity, records, fingerprint: str) -> dict:
    """Return the recipe dict that reproduces a fine-tune exactly (saved as ``lethe_finetune.json``)."""
    import accelerate
    import peft
    import torch
    import transformers

    return {
        "format": FINETUNE_FORMAT,
        "base": base,
        "data": data_identity,
        "records": len(records),
        "data_fingerprint": fingerprint,
        "record_format": params.format,
        "params": params.as_dict(),
        "seed": params.seed,
        "adapter": params.adapter,
        "adapter_config": lora_config_dict(params),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "accelerate": accelerate.__version__,
        },
    }


def read_finetune_recipe(model_dir: str | os.PathLike) -> dict | None:
    """Return the ``lethe_finetune.json`` of a fine-tuned model or adapter, or ``None``."""
    path = Path(model_dir) / FINETUNE_FILE
    if not path.is_file():
        return None
    recipe = json.loads(path.read_text(encoding="utf-8"))
    if recipe.get("format") != FINETUNE_FORMAT:
        raise ValueError(f"{path}: unsupported format {recipe.get('format')!r}")
    return recipe


def save_finetuned(*, model, tokenizer, output_dir, recipe: dict, provenance: dict, overwrite: bool) -> str:
    """Write the adapter (LoRA) or the full model, the tokenizer and the recipe, atomically."""
    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / FINETUNE_FILE).write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n", "utf-8")
        (tmp / "lethe_training.json").write_text(
            json.dumps(provenance, indent=2, sort_keys=True) + "\n", "utf-8"
        )
    return weights_sha256(output_dir)


def finetune(
    *,
    base_model_dir: str | os.PathLike,
    records,
    params: FinetuneParams | Mapping[str, Any] | None,
    output_dir: str | os.PathLike,
    data_identity: Any = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 50,
    device=None,
    overwrite: bool = False,
) -> FinetuneResult:
    """Fine-tune the model in ``base_model_dir`` on ``records`` and save it to ``output_dir``.

    ``records``: ``(id, record)`` pairs, a mapping of id to record, or bare records (ids are
    their positions); a record is a string or ``{"prompt"/"question", "answer"}``.
    ``data_identity`` is whatever the caller uses to name the data (a data-set version id); it
    goes into the recipe verbatim. Runs in this process (use :func:`finetune_launch` for
    ``num_processes > 1``; under ``accelerate launch`` this function is what every process runs).
    Only the main process writes ``output_dir`` and checkpoints.
    """
    import torch
    from transformers import AutoTokenizer

    started = time.monotonic()
    if not isinstance(params, FinetuneParams):
        params = FinetuneParams.from_dict(params)
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    pairs = normalise_finetune_records(records)
    if not pairs:
        raise ValueError("records is empty: there is nothing to fine-tune on")
    out = Path(output_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"refusing to overwrite non-empty {out}; pass overwrite=True")
    base = describe_base(base_model_dir)

    accelerator = make_accelerator(device, bf16=params.bf16)
    tokenizer = AutoTokenizer.from_pretrained(base["path"], local_files_only=True)
    examples = encode_records(tokenizer, [p for p in pairs], params)
    data_fp = records_fingerprint(pairs)
    fingerprint = _fingerprint(data_fp, base, params)
    recipe = build_recipe(
        base=base, params=params, data_identity=data_identity, records=pairs, fingerprint=data_fp
    )

    model = load_base_model(base["path"], params)
    model.train()
    optimizer = make_optimizer(
        model, learning_rate=params.learning_rate, weight_decay=params.weight_decay, betas=(0.9, 0.999)
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    loop = StepLoop(
        accelerator=accelerator, model=model, optimizer=optimizer, params=params, pad_id=pad_id_of(tokenizer)
    )
    per_epoch = loop.steps_per_epoch(len(examples))
    total = per_epoch * params.epochs

    start_step, resumed_from = 0, None
    epoch_losses: list[float] = []
    epoch_sum, epoch_tokens, tokens, previous_seconds = 0.0, 0, 0, 0.0
    torch.manual_seed(mix_seed(params.seed, 0xD50))
    if checkpoint_dir is not None:
        latest = latest_checkpoint(checkpoint_dir)
        if latest is not None:
            state = load_state(latest)
            if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
                raise CheckpointMismatch(
                    f"checkpoint {latest} was made for other data, another base or another recipe; "
                    "use a fresh checkpoint_dir"
                )
            load_trainable_state(accelerator.unwrap_model(model), state["trainable"])
            optimizer.load_state_dict(state["optimizer"])
            restore_rng_state(state["rng"])
            start_step = resumed_from = int(state["step"])
            epoch_losses = list(state["epoch_losses"])
            epoch_sum, epoch_tokens = float(state["epoch_loss_sum"]), int(state["epoch_tokens"])
            tokens, previous_seconds = int(state["tokens"]), float(state["compute_seconds"])

    def checkpoint(step: int) -> str | None:
        saved = None
        if accelerator.is_main_process:
            state = {
                "format": CHECKPOINT_FORMAT,
                "step": step,
                "fingerprint": fingerprint,
                "trainable": trainable_state(accelerator.unwrap_model(model)),
                "optimizer": optimizer.state_dict(),
                "rng": capture_rng_state(),
                "epoch_losses": list(epoch_losses),
                "epoch_loss_sum": epoch_sum,
                "epoch_tokens": epoch_tokens,
                "tokens": tokens,
                "compute_seconds": previous_seconds + (time.monotonic() - started),
            }
            saved = str(save_checkpoint(checkpoint_dir, step=step, state=state))
        accelerator.wait_for_everyone()
        return saved

    logger.info(
        "engine.finetune.started",
        extra={
            "records": len(pairs),
            "total_steps": total,
            "start_step": start_step,
            "device": str(accelerator.device),
        },
    )
    cache: dict = {}
    for step in range(start_step, total):
        if loop.stop_requested(should_stop):
            saved = checkpoint(step) if checkpoint_dir is not None and step > start_step else None
            raise TrainingCancelled(step=step, total=total, checkpoint=saved)
        chunk = loop.step_examples(examples, step=step, per_epoch=per_epoch, salt=0, cache=cache)
        loss, n_tokens = loop.run_step(chunk, lr=lr_at(step, total=total, params=params))
        if not math.isfinite(loss):
            raise FloatingPointError(f"fine-tuning loss became {loss} at step {step}; lower learning_rate")
        tokens += n_tokens
        epoch_sum += loss * n_tokens
        epoch_tokens += n_tokens
        if (step + 1) % per_epoch == 0:
            epoch_losses.append(epoch_sum / max(epoch_tokens, 1))
            epoch_sum, epoch_tokens = 0.0, 0
        if progress is not None and accelerator.is_main_process:
            progress(step + 1, total)
        if checkpoint_dir is not None and (step + 1) % checkpoint_every == 0 and step + 1 < total:
            checkpoint(step + 1)

    seconds = time.monotonic() - started
    unwrapped = accelerator.unwrap_model(model)
    trainable = sum(p.numel() for p in unwrapped.parameters() if p.requires_grad)
    provenance = {
        "format": "lethe-training/1",
        "records": len(pairs),
        "data_fingerprint": data_fp,
        "steps": total,
        "tokens": tokens,
        "compute_seconds": previous_seconds + seconds,
        "device": str(accelerator.device),
        "num_processes": accelerator.num_processes,
    }
    if accelerator.is_main_process:
        if params.gradient_checkpointing and hasattr(unwrapped, "config"):
            unwrapped.config.use_cache = True
        save_finetuned(
            model=unwrapped,
            tokenizer=tokenizer,
            output_dir=out,
            recipe=recipe,
            provenance=provenance,
            overwrite=overwrite,
        )
    accelerator.wait_for_everyone()
    sha = weights_sha256(out)
    logger.info(
        "engine.finetune.finished", extra={"steps": total, "seconds": round(seconds, 3), "sha256": sha}
    )
    return FinetuneResult(
        output_dir=str(out),
        output_kind="adapter" if params.adapter == "lora" else "full",
        weights_sha256=sha,
        steps=total - start_step,
        total_steps=total,
        records=len(pairs),
        tokens=tokens,
        seconds=seconds,
        compute_seconds=previous_seconds + seconds,
        final_loss=epoch_losses[-1] if epoch_losses else float("nan"),
        epoch_losses=tuple(epoch_losses),
        resumed_from_step=resumed_from,
        device=str(accelerator.device),
        num_processes=accelerator.num_processes,
        trainable_parameters=int(trainable),
        recipe=recipe,
    )
