"""Measure utility: did unlearning damage what the model should still know?

Perplexity on a sample of the retain set (data the model must keep) and on held-out text of the
same distribution (general ability), each compared with the original model as

    utility ratio = original perplexity / model perplexity

so 1.0 means unchanged, below 1.0 worse (higher perplexity) and above 1.0 better. The ratio of
perplexities, rather than of losses, is used because perplexity is the figure people quote and a
ratio of 0.95 then reads as "5 % more perplexed".

Perplexity is per token, and an exact retrain learns its own vocabulary from the retained texts,
so it may split the same text into more or fewer tokens than the original: its per-token
perplexity is then in another unit. The comparison therefore divides both models' total NLL on
the same texts by the *original's* token count (:func:`utility_ratio_on_original_tokens`), which
is the plain ratio when the tokenizers agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from .lm import TokenStats, score_texts

__all__ = [
    "Perplexity",
    "perplexity_from_stats",
    "perplexity_from_sums",
    "measure_perplexity",
    "utility_ratio",
    "utility_ratio_on_original_tokens",
]


@dataclass(frozen=True)
class Perplexity:
    """Token-weighted perplexity exp(total NLL / total predicted tokens) over some texts."""

    value: float
    n_texts: int
    n_tokens: int

    def as_dict(self) -> dict:
        return asdict(self)


def perplexity_from_sums(*, nll_sum: float, n_tokens: int, n_texts: int) -> Perplexity:
    """Return the perplexity for a total NLL over ``n_tokens`` tokens (NaN when there are none)."""
    if n_tokens < 0 or n_texts < 0:
        raise ValueError("token and text counts cannot be negative")
    value = math.exp(nll_sum / n_tokens) if n_tokens else math.nan
    return Perplexity(value=value, n_texts=n_texts, n_tokens=n_tokens)


def perplexity_from_stats(stats: Sequence[TokenStats]) -> Perplexity:
    """Return the token-weighted perplexity of already-scored texts, skipping empty ones."""
    scored = [item for item in stats if item.n_tokens > 0]
    return perplexity_from_sums(
        nll_sum=float(-sum(item.logprobs.sum() for item in scored)),
        n_tokens=sum(item.n_tokens for item in scored),
        n_texts=len(scored),
    )


def measure_perplexity(
    *,
    model,
    tokenizer,
    device,
    texts: Sequence[str],
    batch_size: int = 8,
    max_length: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Perplexity:
    """Return the model's token-weighted perplexity on ``texts``."""
    stats = score_texts(
        model=model,
        tokenizer=tokenizer,
        texts=texts,
        device=device,
        batch_size=batch_size,
        max_length=max_length,
        with_distribution=False,
        progress=progress,
    )
    return perplexity_from_stats(stats)


def utility_ratio(*, original_perplexity: float, model_perplexity: float) -> float:
    """Return original / model perplexity: 1.0 unchanged, < 1.0 the model got worse.

    NaN if either is NaN or not positive, so a missing measurement can never pass a threshold.
    """
    if not (original_perplexity > 0 and model_perplexity > 0):
        return math.nan
    if math.isinf(model_perplexity):
        return 0.0 if math.isfinite(original_perplexity) else math.nan
    return original_perplexity / model_perplexity


def utility_ratio_on_original_tokens(
    *, original_perplexity: float, original_tokens: int, model_perplexity: float, model_tokens: int
) -> float:
    """Return exp((NLL_original − NLL_model) / original_tokens): the utility ratio across tokenizers.

    Both perplexities are token-weighted over the same texts; their totals
    (``log(perplexity) × tokens``) are likelihoods of the same text whatever the tokenizer, and
    dividing both by the original's token count keeps the original's per-token scale. Equal
    token counts give exactly ``original_perplexity / model_perplexity``. NaN when a figure is
    missing or not positive, 0.0 when the model's perplexity is infinite.
    """
    if original_tokens == model_tokens:
        return utility_ratio(original_perplexity=original_perplexity, model_perplexity=model_perplexity)
    if not (original_perplexity > 0 and model_perplexity > 0 and original_tokens > 0 and model_tokens > 0):
        return math.nan
    if math.isinf(model_perplexity):
        return 0.0 if math.isfinite(original_perplexity) else math.nan
    original_nll = math.log(original_perplexity) * original_tokens
    model_nll = math.log(model_perplexity) * model_tokens
    return math.exp((original_nll - model_nll) / original_tokens)
