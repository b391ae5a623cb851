"""Load the models the engine trains, plain, LoRA adapter or SISA, behind one calling convention.

Verification and suppression code calls ``model(input_ids, attention_mask=…, labels=…)`` and
reads ``.logits`` and ``.loss``, and calls ``model.generate(input_ids, max_new_tokens=…)``.
A SISA directory loads as :class:`SisaEnsemble`, which answers the same calls by averaging the
shards' probabilities, so nothing downstream needs to know which kind of model it measures.

Directories the engine reads:

- a Hugging Face model directory (``config.json`` + safetensors): trained from scratch, imported
  (``importing.import_model``) or fully fine-tuned;
- a LoRA adapter directory (``adapter_config.json``, ``lethe_finetune.json`` naming its base):
  the base is loaded and the adapter applied (merged by default, so the result is a plain model);
- a SISA directory (``sisa.json``): GPT-2 shards trained from scratch, or LoRA adapters over one
  base (:class:`AdapterSisaEnsemble`, the base held once in memory).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from transformers.modeling_outputs import CausalLMOutput

from .device import resolve_device
from .training.sisa import SISA_MANIFEST, is_sisa_dir, read_manifest

__all__ = [
    "SISA_MANIFEST",
    "AdapterSisaEnsemble",
    "SisaEnsemble",
    "adapter_base_dir",
    "is_adapter_dir",
    "is_sisa_dir",
    "load_causal_lm",
    "load_tokenizer",
]

ADAPTER_CONFIG = "adapter_config.json"


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
        # A running log-sum-exp, not S distributions stacked: memory stays at three vocabulary-wide
        # tensors whatever the number of shards (four SmolLM2 adapters stacked at batch 32 x 256
        # tokens would be 6 GB of float32).
        summed = None
        for shard in self.shards:
            logprobs = torch.log_softmax(
                shard(
                    input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
                ).logits.float(),
                dim=-1,
            )
            summed = logprobs if summed is None else torch.logaddexp(summed, logprobs)
        logits = summed - math.log(len(self.shards))
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
        arguments are accepted and ignored, since verification decodes greedily. Each shard keeps
        its own key/value cache, so a new token costs one position per shard rather than the
        whole sequence again (S x a 7B model re-reading a long prompt for every token was what
        made verifying SISA adapters slow); ``use_cache=False``, or a sequence that would
        outgrow a model's context, decodes without caches, window by window.
        """
        if input_ids is None:
            raise ValueError("input_ids is required")
        eos = self.config.eos_token_id if eos_token_id is None else eos_token_id
        pad = self.config.pad_token_id if pad_token_id is None else pad_token_id
        if pad is None:
            pad = eos
        sequences = input_ids
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        limit = getattr(self.config, "n_positions", None) or getattr(
            self.config, "max_position_embeddings", None
        )
        if kwargs.get("use_cache", True) and (limit is None or input_ids.size(1) + max_new_tokens <= limit):
            return self._generate_cached(sequences, mask, max_new_tokens=max_new_tokens, eos=eos, pad=pad)
        finished = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)
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

    def _generate_cached(self, sequences, mask, *, max_new_tokens: int, eos, pad):
        """The same greedy decoding as the uncached loop, each shard reading only the new token."""
        finished = torch.zeros(sequences.size(0), dtype=torch.bool, device=sequences.device)
        caches: list = [None] * len(self.shards)
        step_ids, positions = sequences, (mask.long().cumsum(-1) - 1).clamp(min=0)
        for _ in range(max_new_tokens):
            log_probs = []
            for index, shard in enumerate(self.shards):
                out = shard(
                    input_ids=step_ids,
                    attention_mask=mask,
                    position_ids=positions,
                    past_key_values=caches[index],
                    use_cache=True,
                )
                caches[index] = out.past_key_values
                log_probs.append(torch.log_softmax(out.logits[:, -1, :].float(), dim=-1))
            next_logits = torch.logsumexp(torch.stack(log_probs), dim=0)
            next_tokens = next_logits.argmax(dim=-1)
            next_tokens = torch.where(finished, torch.full_like(next_tokens, pad), next_tokens)
            sequences = torch.cat([sequences, next_tokens[:, None]], dim=1)
            mask = torch.cat([mask, (~finished).long()[:, None]], dim=1)
            step_ids, positions = next_tokens[:, None], positions[:, -1:] + 1
            if eos is not None:
                finished |= next_tokens == eos
                if bool(finished.all()):
                    break
        return sequences


class _AdapterView(torch.nn.Module):
    """One adapter of a shared ``PeftModel``, callable like a causal LM (a SISA shard's view).

    Verification probes every SISA shard on its own; with adapters the shards share one base, so
    each "shard" activates its adapter before answering. Holding the peft model in a plain
    attribute (not a submodule) keeps its parameters counted once, in the ensemble.
    """

    def __init__(self, peft_model, adapter_name: str) -> None:
        super().__init__()
        object.__setattr__(self, "_peft", peft_model)
        self.adapter_name = adapter_name

    @property
    def config(self):
        return self._peft.config

    @property
    def device(self):
        return next(self._peft.parameters()).device

    @property
    def generation_config(self):
        return self._peft.generation_config

    def forward(self, *args, **kwargs):
        self._peft.set_adapter(self.adapter_name)
        return self._peft(*args, **kwargs)

    @torch.no_grad()
    def generate(self, *args, **kwargs):
        self._peft.set_adapter(self.adapter_name)
        return self._peft.generate(*args, **kwargs)


class AdapterSisaEnsemble(SisaEnsemble):
    """SISA over LoRA adapters: one base in memory, ``S`` adapters, probabilities averaged.

    Same aggregation and calling convention as :class:`SisaEnsemble`; ``shards`` are views that
    answer with one adapter each, so per-shard verification works unchanged.
    """

    def __init__(self, peft_model, adapter_names, manifest: dict) -> None:
        torch.nn.Module.__init__(self)
        if not adapter_names:
            raise ValueError("a SISA ensemble needs at least one shard")
        self.peft_model = peft_model
        self.shards = [_AdapterView(peft_model, name) for name in adapter_names]
        self.manifest = manifest


def is_adapter_dir(path: str | os.PathLike) -> bool:
    """Return whether ``path`` holds a LoRA adapter (``adapter_config.json``) rather than full weights."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base_dir(path: str | os.PathLike) -> Path:
    """Return the base model directory an adapter (or an adapter SISA directory) was trained on.

    Read from ``lethe_finetune.json`` (or ``sisa.json``) where Lethe trained it, else from peft's
    ``base_model_name_or_path``. Raises ``FileNotFoundError`` when that directory is gone.
    """
    import json

    root = Path(path)
    base = None
    for name in ("lethe_finetune.json", SISA_MANIFEST):
        meta = root / name
        if meta.is_file():
            data = json.loads(meta.read_text(encoding="utf-8"))
            base = (data.get("base") or {}).get("path")
            if base:
                break
    if not base and (root / ADAPTER_CONFIG).is_file():
        base = json.loads((root / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{root} does not name its base model")
    base = Path(base)
    if not (base / "config.json").is_file():
        raise FileNotFoundError(f"the base model of {root} is not at {base}; pass base_model_dir")
    return base


def load_causal_lm(
    path: str | os.PathLike, device=None, dtype=None, *, merge_adapter: bool = True, base_model_dir=None
):
    """Return ``(model, tokenizer)`` from a model, adapter or SISA directory, in eval mode.

    ``device`` defaults to :func:`~unlearning_jobs.engine.device.select_device`'s choice;
    ``dtype`` to float32 (pass ``torch.bfloat16`` for cheaper GPU inference). A SISA directory
    (one with ``sisa.json``) gives a :class:`SisaEnsemble` (GPT-2 shards) or an
    :class:`AdapterSisaEnsemble` (LoRA adapters over one base) whose ``__call__`` and
    ``generate`` match a causal LM's. A LoRA adapter directory loads its base (from the path its
    recipe names, or ``base_model_dir``) with the adapter applied: merged into the weights by
    default (a plain model, as fast as the base), or as a ``PeftModel`` with ``merge_adapter=False``
    (so a method can train the adapter further or disable it to get the base back).
    Nothing is downloaded: the directories must hold the weights.
    """
    from transformers import AutoModelForCausalLM

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"model directory not found: {root}")
    device, _autocast = resolve_device(device)
    dtype = torch.float32 if dtype is None else dtype
    tokenizer = load_tokenizer(root)
    if is_sisa_dir(root):
        manifest = read_manifest(root)
        if manifest.get("kind") == "adapters":
            from peft import PeftModel

            base = Path(base_model_dir) if base_model_dir is not None else adapter_base_dir(root)
            base_model = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype, local_files_only=True)
            names = list(manifest["shard_dirs"])
            peft_model = PeftModel.from_pretrained(base_model, str(root / names[0]), adapter_name=names[0])
            for name in names[1:]:
                peft_model.load_adapter(str(root / name), adapter_name=name)
            model = AdapterSisaEnsemble(peft_model, names, manifest)
        else:
            shards = [
                AutoModelForCausalLM.from_pretrained(str(root / name), dtype=dtype, local_files_only=True)
                for name in manifest["shard_dirs"]
            ]
            model = SisaEnsemble(shards, manifest)
    elif is_adapter_dir(root):
        from peft import PeftModel

        base = Path(base_model_dir) if base_model_dir is not None else adapter_base_dir(root)
        base_model = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype, local_files_only=True)
        model = PeftModel.from_pretrained(base_model, str(root))
        if merge_adapter:
            model = model.merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(str(root), dtype=dtype, local_files_only=True)
    model.to(device)
    model.eval()
    return model, tokenizer
