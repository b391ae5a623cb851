"""Refusal tuning: teach the model to answer "I can't share that" where it used to give the record.

Two objectives on each forget record, split into a prompt and its answer:

- ``idk_dpo`` (default; OpenUnlearning's IdkDPO, Maini et al. 2024): DPO with a refusal as the
  preferred answer and the record's own answer as the dispreferred one, against the model as it
  was at the start,
  ``-(2 / beta) * log sigmoid(beta * ((log p(refusal) - log p_ref(refusal)) - (log p(answer) - log p_ref(answer))))``
  plus ``retain_weight`` x the retain NLL;
- ``sft``: plain fine-tuning on the refusal (its NLL), plus the retain NLL.

A plain-text record has no prompt: its first ``prompt_fraction`` of tokens stand in for one and
the rest for the answer the refusal replaces.

**What this is.** The model learns to *say* something else; the weights can still hold the
record, which relearning, quantization and paraphrased prompts often bring back (the robustness
section of verification measures exactly that). The report therefore files the result under
**output suppression**, not deletion (``framework``), whatever its verification rows show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..method_catalogue import FRAMEWORK_OUTPUT_SUPPRESSION
from ..training.data import mean_token_nll, sequence_nll
from ..training.validation import require
from .approximate import ApproximateMethod, ApproximateParams
from .data import LabeledExample, collate_examples, encode_record, record_parts

OBJECTIVES = ("idk_dpo", "sft")
#: Refusals in the spirit of TOFU's ``idk.jsonl``, one picked per record (by index, so reproducible).
DEFAULT_REFUSALS: tuple[str, ...] = (
    "I can't share that.",
    "I'm sorry, I can't share information about that person.",
    "I don't have information I can share about that.",
    "That is not something I can help with.",
)


def split_plain(tokenizer, text: str, fraction: float) -> dict[str, str]:
    """Return a plain-text record as ``{"prompt", "answer"}``: its first ``fraction`` of tokens, the rest."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < 2:
        return {"prompt": "", "answer": text}
    cut = min(len(ids) - 1, max(1, int(len(ids) * fraction)))
    prompt = tokenizer.decode(ids[:cut])
    return {
        "prompt": prompt,
        "answer": text[len(prompt) :] if text.startswith(prompt) else tokenizer.decode(ids[cut:]),
    }


def dpo_loss(win_nll, win_ref_nll, lose_nll, lose_ref_nll, beta: float):
    """Return the DPO loss from per-sequence summed NLLs (OpenUnlearning's ``compute_dpo_loss``)."""
    win_log_ratio = -(win_nll - win_ref_nll)
    lose_log_ratio = -(lose_nll - lose_ref_nll)
    return -(2.0 / beta) * F.logsigmoid(beta * (win_log_ratio - lose_log_ratio)).mean()


@dataclass(frozen=True)
class RefusalParams(ApproximateParams):
    """Shared parameters plus ``objective`` (``idk_dpo`` or ``sft``), ``beta`` (IdkDPO's
    temperature, OpenUnlearning's 0.1), ``forget_weight`` (gamma), ``retain_weight`` (alpha),
    ``refusals`` (the answers taught instead) and ``prompt_fraction`` (how much of a plain-text
    record plays the prompt). Early stop is off by default: the forget loss is not what refusal
    tuning optimises."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "reference": {
            "learning_rate": 1e-5,
            "epochs": 10,
            "batch_size": 32,
            "retain_batch_size": 32,
            "weight_decay": 0.01,
            "lr_schedule": "linear",
            "warmup_epochs": 1.0,
            "max_retain_loss_increase": None,
            "eval_every": 10,
        }
    }

    learning_rate: float = 5e-5
    max_steps: int = 200
    stop_at_forget_target: bool = False
    objective: str = "idk_dpo"
    beta: float = 0.1
    forget_weight: float = 1.0
    retain_weight: float = 1.0
    refusals: tuple[str, ...] = DEFAULT_REFUSALS
    prompt_fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        require(
            self.objective in OBJECTIVES,
            name,
            "objective",
            f"must be one of {OBJECTIVES}, got {self.objective!r}",
        )
        require(0 < self.beta <= 100, name, "beta", f"must be in (0, 100], got {self.beta}")
        require(
            0 < self.forget_weight <= 100,
            name,
            "forget_weight",
            f"must be in (0, 100], got {self.forget_weight}",
        )
        require(
            0 <= self.retain_weight <= 100,
            name,
            "retain_weight",
            f"must be in [0, 100], got {self.retain_weight}",
        )
        require(
            len(self.refusals) > 0 and all(isinstance(r, str) and r.strip() for r in self.refusals),
            name,
            "refusals",
            "must be a non-empty list of non-empty strings",
        )
        require(
            0 < self.prompt_fraction < 1,
            name,
            "prompt_fraction",
            f"must be in (0, 1), got {self.prompt_fraction}",
        )

    def as_dict(self) -> dict[str, Any]:
        data = super().as_dict()
        data["refusals"] = list(self.refusals)
        return data


class Refusal(ApproximateMethod):
    name = "refusal"
    summary = "teach a refusal in place of the forgotten answer (output suppression, not deletion)"
    Params = RefusalParams
    framework = FRAMEWORK_OUTPUT_SUPPRESSION
    trains_on_retain = True
    retain_losses = ("nll", "kl")

    def __init__(self) -> None:
        self._original: list[LabeledExample] = []
        self._refusal: list[LabeledExample] = []
        self._objective = "idk_dpo"

    @property
    def needs_reference(self) -> bool:  # type: ignore[override]
        """IdkDPO compares with the model at the start; plain refusal fine-tuning needs no reference."""
        return self._objective == "idk_dpo"

    def forget_term_reads_reference(self, params) -> bool:
        """IdkDPO's forget term compares with the model at the start; plain refusal fine-tuning's does not."""
        return params.objective == "idk_dpo"

    def parse_params(self, params):
        parsed = super().parse_params(params)
        self._objective = parsed.objective
        return parsed

    def setup(self, *, model, tokenizer, params, forget_records, block_size, device) -> None:
        """Encode each forget record's answer and its refusal under the same prompt."""
        self._original, self._refusal = [], []
        for index, record in enumerate(forget_records):
            plain = isinstance(record, str)
            pair = split_plain(tokenizer, record, params.prompt_fraction) if plain else record
            fmt = "raw" if plain else params.pair_format
            prompt, answer = record_parts(pair)
            refusal = params.refusals[index % len(params.refusals)]
            refusal = (" " + refusal) if plain and answer.startswith(" ") else refusal
            self._original.append(
                encode_record(
                    tokenizer,
                    {"prompt": prompt, "answer": answer},
                    block_size=block_size,
                    pair_format=fmt,
                )
            )
            self._refusal.append(
                encode_record(
                    tokenizer,
                    {"prompt": prompt, "answer": refusal},
                    block_size=block_size,
                    pair_format=fmt,
                )
            )

    def extend_batch(self, batch, *, forget_indices, pad_id, device) -> None:
        """Add the same records as answer/refusal pairs under one prompt."""
        batch["original"] = collate_examples(
            [self._original[i] for i in forget_indices], pad_id=pad_id, device=device
        )
        batch["refusal"] = collate_examples(
            [self._refusal[i] for i in forget_indices], pad_id=pad_id, device=device
        )

    def forget_term(self, *, model, batch, params, reference=None):
        """Return gamma x (IdkDPO or refusal NLL) (the loss adds alpha x the retain term, NLL or KL)."""
        if params.objective == "sft":
            forget = mean_token_nll(model, batch["refusal"])
        else:
            if reference is None:
                raise ValueError("refusal (idk_dpo) needs the reference model")
            win, _ = sequence_nll(model, batch["refusal"])
            lose, _ = sequence_nll(model, batch["original"])
            with reference.active() as ref_model, torch.no_grad():
                win_ref, _ = sequence_nll(ref_model, batch["refusal"])
                lose_ref, _ = sequence_nll(ref_model, batch["original"])
            forget = dpo_loss(win, win_ref, lose, lose_ref, params.beta)
        return params.forget_weight * forget
