"""SISA's before/after losses, with each shard measured once per version of its weights.

The ensemble's next-token probability is the mean of its shards' probabilities, so its loss on a
text needs only the log-probability each shard gives the text's own tokens: the ensemble's
log-probability of a token is ``logsumexp_s(log p_s) - log S``. Two savings follow, and SISA
unlearning is where they count (on the H200, measuring the four-adapter ensemble before and after
was 9.6 s of SISA's 24.0 s):

- no shard's whole vocabulary distribution is kept, let alone ``S`` of them stacked (four SmolLM2
  adapters at batch 32 x 256 tokens would stack 6 GB of float32 to score one batch);
- a shard that unlearning did not retrain is a byte copy of the source's, so its token
  log-probabilities after are the ones measured before: only the retrained shards are run again.

The losses equal :func:`~unlearning_jobs.engine.training.data.evaluate_loss` of the loaded
ensemble up to float rounding (tested).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ..models import load_causal_lm
from ..training.data import autocast_context, collate, encode_texts, pad_token_id
from .base import block_size_for

#: The two text sets SISA measures before and after unlearning.
SETS = ("forget", "retain")


def token_logprobs(model, examples, *, pad_id: int, device, dtype, batch_size: int = 32) -> torch.Tensor:
    """Return the log-probability ``model`` gives each scored token of ``examples``, in order.

    A token is scored where its label is not -100 (answer tokens only for prompt/answer records),
    as in :func:`~unlearning_jobs.engine.training.data.sequence_nll`; the result is one flat
    float32 tensor on the CPU.
    """
    scores: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start : start + batch_size], pad_id=pad_id, device=device)
            with autocast_context(device, dtype):
                out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            labels = batch["labels"][:, 1:]
            mask = labels != -100
            logprobs = torch.log_softmax(out.logits[:, :-1, :].float(), dim=-1)
            picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            scores.append(picked[mask].cpu())
            del out, logprobs
    return torch.cat(scores) if scores else torch.zeros(0)


def ensemble_loss(per_shard: Sequence[torch.Tensor]) -> float:
    """Return the ensemble's mean next-token loss from each shard's token log-probabilities."""
    stacked = torch.stack(list(per_shard))
    if stacked.shape[1] == 0:
        return float("nan")
    ensemble = torch.logsumexp(stacked, dim=0) - math.log(stacked.shape[0])
    return float(-ensemble.mean())


@dataclass
class ShardScores:
    """Each shard's token log-probabilities on the forget and retain texts, by shard index."""

    by_shard: dict[int, dict[str, torch.Tensor]]
    #: How many shards were run to get these (the rest were carried over unchanged).
    shards_run: int

    def losses(self) -> dict[str, float]:
        """Return ``{"forget": loss, "retain": loss}`` of the whole ensemble."""
        order = sorted(self.by_shard)
        return {name: ensemble_loss([self.by_shard[s][name] for s in order]) for name in SETS}


def score_sisa_dir(
    model_dir,
    *,
    forget_texts: Sequence[str],
    retain_texts: Sequence[str],
    device,
    dtype,
    only_shards: Iterable[int] | None = None,
    unchanged: Mapping[int, Mapping[str, torch.Tensor]] | None = None,
) -> ShardScores:
    """Score the shards of the SISA model in ``model_dir`` on the forget and retain texts.

    With ``only_shards``, only those shards are run and every other shard's scores are taken from
    ``unchanged`` (the same shard measured before, when its weights were copied unchanged).
    """
    model, tokenizer = load_causal_lm(model_dir, device=device)
    try:
        n_shards = len(model.shards)
        run = sorted(set(range(n_shards)) if only_shards is None else set(only_shards))
        carried = sorted(set(range(n_shards)) - set(run))
        missing = [s for s in carried if unchanged is None or s not in unchanged]
        if missing:
            raise ValueError(f"no earlier scores for unchanged shards {missing} of {model_dir}")
        block = block_size_for(model_dir, model.shards[0])
        pad = pad_token_id(tokenizer)
        encoded = {
            "forget": encode_texts(tokenizer, list(forget_texts), block_size=block),
            "retain": encode_texts(tokenizer, list(retain_texts), block_size=block),
        }
        by_shard: dict[int, dict[str, torch.Tensor]] = {s: dict(unchanged[s]) for s in carried}
        for s in run:
            by_shard[s] = {
                name: token_logprobs(model.shards[s], encoded[name], pad_id=pad, device=device, dtype=dtype)
                for name in SETS
            }
        return ShardScores(by_shard=by_shard, shards_run=len(run))
    finally:
        del model
