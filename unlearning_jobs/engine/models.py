"""Load the models the engine trains, plain or SISA, behind one calling convention.

Verification and suppression code calls ``model(input_ids, attention_mask=…, labels=…)`` and
reads ``.logits`` and ``.loss``, and calls ``model.generate(input_ids, max_new_tokens=…)``.
A SISA directory loads as :class:`SisaEnsemble`, which answers the same calls by averaging the
shards' probabilities, so nothing downstream needs to know which kind of model it measures.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from transformers.modeling_outputs import CausalLMOutput

from .training.sisa import SISA_MANIFEST, is_sisa_dir, read_manifest

__all__ = ["SISA_MANIFEST", "SisaEnsemble", "is_sisa_dir", "load_causal_lm", "load_tokenizer"]


def load_tokenizer(path: str | os.PathLike):
    """Return the tokenizer saved in a model directory (plain or SISA), offline."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


class SisaEnsemble(torch.nn.Module):
    """Aggregate SISA shards: next-token log-probabilities are the log of the shards' mean probability."""

    def __init__(self, shards, manifest: dict) -> None:
        super().__init__()
        if not shards:
            raise ValueError("a SISA ensemble needs at least one shard")
        self.shards = torch.nn.ModuleList(shards)
        self.manifest = manifest

    @property
    def config(self):
        return self.shards[0].config

    @property
    def device(self):
        return next(self.parameters()).device

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    def forward(self, input_ids=None, attention_mask=None, labels=None, position_ids=None, **kwargs):
        """Return ``CausalLMOutput(loss, logits)``; ``logits`` are normalised log-probabilities.

        ``loss`` is the mean next-token cross-entropy over labels that are not -100, as in
        Hugging Face causal LMs.
        """
        if position_ids is None and attention_mask is not None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        stacked = torch.stack(
            [
                torch.log_softmax(
                    shard(
                        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
                    ).logits.float(),
                    dim=-1,
                )
                for shard in self.shards
            ]
        )
        logits = torch.logsumexp(stacked, dim=0) - math.log(len(self.shards))
        loss = None
        if labels is not None:
            shifted = logits[:, :-1, :]
            targets = labels[:, 1:]
            loss = torch.nn.functional.nll_loss(
                shifted.reshape(-1, shifted.size(-1)), targets.reshape(-1), ignore_index=-100
            )
        return CausalLMOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def generate(
        self,
        input_ids=None,
        attention_mask=None,
        max_new_tokens: int = 20,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        **kwargs,
    ):
        """Greedy decoding over the aggregated distribution; return prompt + new tokens.

        Prompts in a batch must be left-padded (as for Hugging Face ``generate``); sampling
        arguments are accepted and ignored, since verification decodes greedily.
        """
        if input_ids is None:
            raise ValueError("input_ids is required")
        eos = self.config.eos_token_id if eos_token_id is None else eos_token_id
        pad = self.config.pad_token_id if pad_token_id is None else pad_token_id
        if pad is None:
            pad = eos
        sequences = input_ids
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        finished = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)
        limit = self.config.n_positions if hasattr(self.config, "n_positions") else None
        for _ in range(max_new_tokens):
            window, window_mask = sequences, mask
            if limit is not None and sequences.size(1) > limit:
                window, window_mask = sequences[:, -limit:], mask[:, -limit:]
            next_logits = self.forward(input_ids=window, attention_mask=window_mask).logits[:, -1, :]
            next_tokens = next_logits.argmax(dim=-1)
            next_tokens = torch.where(finished, torch.full_like(next_tokens, pad), next_tokens)
            sequences = torch.cat([sequences, next_tokens[:, None]], dim=1)
            mask = torch.cat([mask, (~finished).long()[:, None]], dim=1)
            if eos is not None:
                finished |= next_tokens == eos
                if bool(finished.all()):
                    break
        return sequences


def load_causal_lm(path: str | os.PathLike, device=None, dtype=None):
    """Return ``(model, tokenizer)`` from a Hugging Face directory or a SISA directory, in eval mode.

    ``device`` defaults to :func:`~unlearning_jobs.engine.device.select_device`'s choice;
    ``dtype`` to float32 (pass ``torch.bfloat16`` for cheaper GPU inference). A SISA directory
    (one with ``sisa.json``) gives a :class:`SisaEnsemble` whose ``__call__`` and ``generate``
    match a causal LM's. Nothing is downloaded: the directory must hold the weights.
    """
    from transformers import AutoModelForCausalLM

    from .device import resolve_device

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"model directory not found: {root}")
    device, _autocast = resolve_device(device)
    dtype = torch.float32 if dtype is None else dtype
    tokenizer = load_tokenizer(root)
    if is_sisa_dir(root):
        manifest = read_manifest(root)
        shards = [
            AutoModelForCausalLM.from_pretrained(str(root / name), dtype=dtype, local_files_only=True)
            for name in manifest["shard_dirs"]
        ]
        model = SisaEnsemble(shards, manifest)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(root), dtype=dtype, local_files_only=True)
    model.to(device)
    model.eval()
    return model, tokenizer
