"""Measure verbatim memorisation: how much of a forget record's continuation the model recites.

MUSE's VerbMem (Shi et al. 2024): prompt with the beginning of a forget record, generate
greedily, and score the completion against the true continuation with ROUGE-L. ROUGE-L is
implemented here (longest common subsequence over word tokens) rather than taken from a package,
so the tokenisation is fixed and visible: lower-cased runs of ASCII letters and digits, as the
``rouge-score`` package does without stemming.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from .lm import context_length, encode, greedy_complete

__all__ = [
    "RougeL",
    "VerbMemResult",
    "rouge_tokens",
    "lcs_length",
    "rouge_l",
    "measure_verbmem",
]

_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class RougeL:
    """ROUGE-L of a candidate against a reference: LCS / candidate, LCS / reference, and F1."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class VerbMemResult:
    """Mean ROUGE-L over the forget records that were long enough to split."""

    mean_f1: float
    mean_recall: float
    n_records: int
    n_skipped: int
    max_f1: float
    per_record_f1: tuple[float, ...]

    def as_dict(self) -> dict:
        return asdict(self)


def rouge_tokens(text: str) -> list[str]:
    """Return the word tokens ROUGE compares: lower-cased runs of ASCII letters and digits."""
    return _TOKEN.findall(text.lower())


def lcs_length(first: Sequence[str], second: Sequence[str]) -> int:
    """Return the length of the longest common subsequence of two token sequences."""
    if len(first) < len(second):
        first, second = second, first
    previous = [0] * (len(second) + 1)
    for item in first:
        current = [0]
        for index, other in enumerate(second, start=1):
            if item == other:
                current.append(previous[index - 1] + 1)
            else:
                current.append(max(previous[index], current[index - 1]))
        previous = current
    return previous[-1]


def rouge_l(*, candidate: str, reference: str) -> RougeL:
    """Return ROUGE-L precision, recall and F1 of ``candidate`` against ``reference``.

    F1 is 0 when either side has no tokens or nothing is shared (as ``rouge-score`` does).
    """
    candidate_tokens = rouge_tokens(candidate)
    reference_tokens = rouge_tokens(reference)
    if not candidate_tokens or not reference_tokens:
        return RougeL(0.0, 0.0, 0.0)
    common = lcs_length(candidate_tokens, reference_tokens)
    if common == 0:
        return RougeL(0.0, 0.0, 0.0)
    precision = common / len(candidate_tokens)
    recall = common / len(reference_tokens)
    return RougeL(precision, recall, 2 * precision * recall / (precision + recall))


def measure_verbmem(
    *,
    model,
    tokenizer,
    device,
    texts: Sequence[str],
    prefix_fraction: float = 0.5,
    max_prefix_tokens: int = 32,
    max_continuation_tokens: int = 128,
    batch_size: int = 8,
    max_length: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerbMemResult:
    """Return the mean ROUGE-L F1 of greedy completions against the true continuations.

    Each text is split in model tokens: the prompt is its first ``prefix_fraction`` (at most
    ``max_prefix_tokens``, MUSE's 32), the reference is what follows (at most
    ``max_continuation_tokens``, MUSE's 128). The completion is cut to the reference's token
    length, so a model is not penalised for running on past the end of a short record; prompt
    and reference together never exceed the model's context (``max_length``, default the
    model's position limit). Texts of fewer than two tokens are skipped and counted.
    ``mean_f1`` is NaN when nothing was scored.
    """
    if not 0.0 < prefix_fraction < 1.0:
        raise ValueError(f"prefix_fraction must be between 0 and 1, got {prefix_fraction}")
    if max_prefix_tokens < 1 or max_continuation_tokens < 1:
        raise ValueError("max_prefix_tokens and max_continuation_tokens must be at least 1")
    limit = context_length(model, tokenizer, max_length)
    prompts: list[str] = []
    references: list[str] = []
    reference_lengths: list[int] = []
    skipped = 0
    for text in texts:
        ids = encode(tokenizer, text, special_tokens=False)
        if len(ids) < 2:
            skipped += 1
            continue
        cut = min(max_prefix_tokens, max(1, int(len(ids) * prefix_fraction)), limit - 1)
        reference_ids = ids[cut : cut + min(max_continuation_tokens, limit - cut)]
        prompts.append(tokenizer.decode(ids[:cut]))
        references.append(tokenizer.decode(reference_ids))
        reference_lengths.append(len(reference_ids))
    completions = (
        greedy_complete(
            model=model,
            tokenizer=tokenizer,
            prompts=prompts,
            device=device,
            max_new_tokens=max(reference_lengths),
            batch_size=batch_size,
            max_length=max_length,
            progress=progress,
        )
        if prompts
        else []
    )
    scores: list[RougeL] = []
    for completion, reference, length in zip(completions, references, reference_lengths):
        completion_ids = encode(tokenizer, completion, special_tokens=False)[:length]
        scores.append(rouge_l(candidate=tokenizer.decode(completion_ids), reference=reference))
    f1s = tuple(score.f1 for score in scores)
    return VerbMemResult(
        mean_f1=sum(f1s) / len(f1s) if f1s else math.nan,
        mean_recall=sum(score.recall for score in scores) / len(scores) if scores else math.nan,
        n_records=len(scores),
        n_skipped=skipped,
        max_f1=max(f1s) if f1s else math.nan,
        per_record_f1=f1s,
    )
