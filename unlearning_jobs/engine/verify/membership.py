"""Measure membership inference: can a forget record be told apart from an unseen one?

Four per-record scores, each oriented so that a HIGHER score means "more likely a training
member", which makes every ROC AUC read the same way (members are the positive class):

* ``loss``: minus the mean token negative log-likelihood (Yeom et al. 2018);
* ``zlib``: minus (mean token NLL / length in bytes of the zlib-compressed text), Carlini et al.
  2021 as used by MUSE: text that is easy to compress is discounted;
* ``min_k``: Min-K% Prob (Shi et al. 2024), the mean log-probability of the k% least likely
  tokens (k = 0.4 as in MUSE);
* ``min_k_plus_plus``: Min-K%++ (Zhang et al. 2024), the same over token scores normalised at
  each position by the mean and standard deviation of log p(z | prefix) over the vocabulary z
  under the model's own next-token distribution.

PrivLeak (MUSE) compares the unlearned model's AUC with the exact retrain's:
(AUC_unlearned − AUC_retrain) / AUC_retrain × 100. Near 0 is good; large positive means the
forget set is still recognisable (under-unlearning), large negative that it stands out the other
way (over-unlearning).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import rankdata

from .lm import TokenStats, score_texts

__all__ = [
    "MIA_SCORES",
    "MembershipResult",
    "loss_score",
    "zlib_score",
    "min_k_score",
    "min_k_plus_plus_score",
    "record_scores",
    "roc_auc",
    "auc_null_std",
    "privleak",
    "tpr_at_fpr",
    "bootstrap_intervals",
    "LOW_FPRS",
    "measure_membership",
]

MIA_SCORES: tuple[str, ...] = ("loss", "zlib", "min_k", "min_k_plus_plus")
#: The false-positive rates TPR is reported at (Carlini et al. 2022: an attack that identifies a
#: few members with near certainty matters even when its AUC is near 0.5).
LOW_FPRS: tuple[float, ...] = (0.01, 0.001)
#: Bootstrap resamples for the confidence intervals of AUC and TPR.
N_BOOTSTRAP = 1000


def _require_tokens(stats: TokenStats) -> None:
    if stats.n_tokens == 0:
        raise ValueError("a membership score needs at least one predicted token")


def _lowest_fraction(values: np.ndarray, k: float) -> np.ndarray:
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must be in (0, 1], got {k}")
    count = max(1, int(len(values) * k))
    return np.sort(values)[:count]


def loss_score(stats: TokenStats) -> float:
    """Return minus the mean token NLL: higher when the model finds the text likely."""
    _require_tokens(stats)
    return float(np.mean(stats.logprobs))


def zlib_score(stats: TokenStats, text: str) -> float:
    """Return minus (mean token NLL / zlib-compressed byte length of ``text``)."""
    _require_tokens(stats)
    compressed = len(zlib.compress(text.encode("utf-8")))
    return float(np.mean(stats.logprobs)) / compressed


def min_k_score(stats: TokenStats, k: float = 0.4) -> float:
    """Return the mean log-probability of the ``k`` fraction of least likely tokens (at least one)."""
    _require_tokens(stats)
    return float(np.mean(_lowest_fraction(stats.logprobs, k)))


def min_k_plus_plus_score(stats: TokenStats, k: float = 0.4) -> float:
    """Return Min-K%++: the mean of the lowest ``k`` fraction of normalised token scores.

    A token's score is (log p(x_t) − μ_t) / σ_t where μ_t and σ_t are the mean and standard
    deviation of log p(z) for z drawn from the model's own next-token distribution at t. A
    position where the distribution is a point mass (σ_t = 0) carries no evidence and is left
    out; a text with no informative position scores NaN.
    """
    _require_tokens(stats)
    if stats.mean_logprob is None or stats.std_logprob is None:
        raise ValueError("Min-K%++ needs token stats scored with with_distribution=True")
    informative = stats.std_logprob > 0
    if not informative.any():
        return math.nan
    normalised = (stats.logprobs[informative] - stats.mean_logprob[informative]) / (
        stats.std_logprob[informative]
    )
    return float(np.mean(_lowest_fraction(normalised, k)))


def record_scores(stats: TokenStats, text: str, *, k: float = 0.4) -> dict[str, float]:
    """Return every membership score of one record, keyed by the names in ``MIA_SCORES``."""
    return {
        "loss": loss_score(stats),
        "zlib": zlib_score(stats, text),
        "min_k": min_k_score(stats, k),
        "min_k_plus_plus": min_k_plus_plus_score(stats, k),
    }


def roc_auc(*, positive: Sequence[float], negative: Sequence[float]) -> float:
    """Return the ROC AUC of scores separating ``positive`` (members) from ``negative``.

    Computed as the Mann–Whitney U statistic over n_pos × n_neg, with tied pairs counted as one
    half, which equals the area under the empirical ROC curve. Refuses empty or non-finite input
    rather than returning a number that looks meaningful.
    """
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("ROC AUC needs at least one positive and one negative score")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("ROC AUC scores must be finite numbers")
    ranks = rankdata(np.concatenate([pos, neg]))
    rank_sum = float(ranks[: pos.size].sum())
    u_statistic = rank_sum - pos.size * (pos.size + 1) / 2
    return u_statistic / (pos.size * neg.size)


def auc_null_std(n_positive: int, n_negative: int) -> float:
    """Return the standard deviation of the AUC of two same-distribution samples (no ties).

    sqrt((n_pos + n_neg + 1) / (12 n_pos n_neg)) from the Mann–Whitney U variance: how far from
    0.5 chance alone moves the AUC at these sample sizes.
    """
    if n_positive < 1 or n_negative < 1:
        raise ValueError("the AUC's null standard deviation needs both samples non-empty")
    return math.sqrt((n_positive + n_negative + 1) / (12 * n_positive * n_negative))


def privleak(*, auc: float, reference_auc: float) -> float:
    """Return MUSE's PrivLeak in percent: (auc − reference_auc) / reference_auc × 100.

    ``reference_auc`` is the exact-retrain model's AUC on the same forget and holdout records.
    NaN in, NaN out; a zero reference AUC is refused because the ratio is undefined.
    """
    if math.isnan(auc) or math.isnan(reference_auc):
        return math.nan
    if reference_auc <= 0:
        raise ValueError(f"PrivLeak needs a positive reference AUC, got {reference_auc}")
    return (auc - reference_auc) / reference_auc * 100.0


def tpr_at_fpr(*, positive: Sequence[float], negative: Sequence[float], fpr: float) -> float:
    """Return the true-positive rate at a false-positive rate of at most ``fpr``.

    The threshold is the strictest one that lets at most ``floor(fpr x n_negative)`` non-members
    score above it: members strictly above the ``(k + 1)``-th highest non-member score count as
    detected, so ties with a non-member never count in the attack's favour. With fewer than
    ``1 / fpr`` non-members that allows no false positive at all (the FPR actually measured is
    then 0, and the row carries ``fpr_resolution = 1 / n_negative`` to say so).
    """
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("TPR at a fixed FPR needs at least one positive and one negative score")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("TPR scores must be finite numbers")
    if not 0.0 <= fpr < 1.0:
        raise ValueError(f"fpr must be in [0, 1), got {fpr}")
    allowed = int(math.floor(fpr * neg.size + 1e-9))
    threshold = np.sort(neg)[::-1][allowed]
    return float((pos > threshold).mean())


def bootstrap_intervals(
    *,
    positive: Sequence[float],
    negative: Sequence[float],
    fprs: Sequence[float] = LOW_FPRS,
    n_bootstrap: int = N_BOOTSTRAP,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Return percentile bootstrap intervals of the AUC and of TPR at each FPR.

    Members and non-members are resampled separately, with replacement, ``n_bootstrap`` times
    from a seeded generator, so the interval is reproducible and reflects the sample sizes (a
    forget set of 16 records gives wide intervals: that is the point of reporting them).
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("a bootstrap interval needs at least one positive and one negative score")
    rng = np.random.default_rng(seed)
    aucs, tprs = [], {fpr: [] for fpr in fprs}
    for _ in range(n_bootstrap):
        p = pos[rng.integers(0, pos.size, pos.size)]
        n = neg[rng.integers(0, neg.size, neg.size)]
        aucs.append(roc_auc(positive=p, negative=n))
        for fpr in fprs:
            tprs[fpr].append(tpr_at_fpr(positive=p, negative=n, fpr=fpr))
    tail = (1 - level) / 2 * 100
    out = {"auc": [float(np.percentile(aucs, tail)), float(np.percentile(aucs, 100 - tail))]}
    for fpr in fprs:
        out[f"tpr@{fpr:g}"] = [
            float(np.percentile(tprs[fpr], tail)),
            float(np.percentile(tprs[fpr], 100 - tail)),
        ]
    return out


@dataclass(frozen=True)
class MembershipResult:
    """Per-record scores of members and non-members, the AUC per score, and the samples used.

    ``nonmember_nll_sum`` and ``nonmember_tokens`` are kept so the held-out perplexity comes
    from the same forward pass.
    """

    auc: dict[str, float]
    member_scores: dict[str, list[float]]
    nonmember_scores: dict[str, list[float]]
    n_members: int
    n_nonmembers: int
    n_skipped_members: int
    n_skipped_nonmembers: int
    k: float
    nonmember_nll_sum: float
    nonmember_tokens: int
    #: ``{score: {"0.01": tpr, "0.001": tpr}}``: TPR at each of ``LOW_FPRS``.
    tpr_at_fpr: dict[str, dict[str, float]] = field(default_factory=dict)
    #: ``{score: {"auc": [lo, hi], "tpr@0.01": [lo, hi], …}}``: 95 % bootstrap intervals.
    confidence_intervals: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    n_bootstrap: int = 0
    #: The smallest non-zero FPR these non-members can measure (1 / n_nonmembers).
    fpr_resolution: float = math.nan

    def as_dict(self) -> dict:
        return asdict(self)


def _scores_for(
    stats_list: Sequence[TokenStats], texts: Sequence[str], k: float
) -> tuple[dict[str, list[float]], int]:
    scores: dict[str, list[float]] = {name: [] for name in MIA_SCORES}
    skipped = 0
    for stats, text in zip(stats_list, texts):
        if stats.n_tokens == 0:
            skipped += 1
            continue
        values = record_scores(stats, text, k=k)
        if not all(math.isfinite(value) for value in values.values()):
            skipped += 1
            continue
        for name, value in values.items():
            scores[name].append(value)
    return scores, skipped


def measure_membership(
    *,
    model,
    tokenizer,
    device,
    member_texts: Sequence[str],
    nonmember_texts: Sequence[str],
    k: float = 0.4,
    batch_size: int = 8,
    max_length: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    n_bootstrap: int = N_BOOTSTRAP,
) -> MembershipResult:
    """Score forget records (members) and holdout records (non-members); return the AUC per score.

    A record too short to score, or whose Min-K%++ is undefined, is dropped from every score so
    all four AUCs use the same records; the counts are kept. An AUC is NaN when a side is empty.
    Beside each AUC: TPR at 1 % and 0.1 % FPR and bootstrap intervals of both
    (``n_bootstrap`` resamples; 0 skips the intervals).
    """
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must be in (0, 1], got {k}")
    texts = list(member_texts) + list(nonmember_texts)
    stats = score_texts(
        model=model,
        tokenizer=tokenizer,
        texts=texts,
        device=device,
        batch_size=batch_size,
        max_length=max_length,
        with_distribution=True,
        progress=progress,
    )
    n_members = len(member_texts)
    member_scores, member_skipped = _scores_for(stats[:n_members], texts[:n_members], k)
    nonmember_scores, nonmember_skipped = _scores_for(stats[n_members:], texts[n_members:], k)
    auc, tprs, intervals = {}, {}, {}
    for name in MIA_SCORES:
        if member_scores[name] and nonmember_scores[name]:
            auc[name] = roc_auc(positive=member_scores[name], negative=nonmember_scores[name])
            tprs[name] = {
                f"{fpr:g}": tpr_at_fpr(positive=member_scores[name], negative=nonmember_scores[name], fpr=fpr)
                for fpr in LOW_FPRS
            }
            if n_bootstrap > 0:
                intervals[name] = bootstrap_intervals(
                    positive=member_scores[name], negative=nonmember_scores[name], n_bootstrap=n_bootstrap
                )
        else:
            auc[name] = math.nan
            tprs[name] = {f"{fpr:g}": math.nan for fpr in LOW_FPRS}
    nonmember_stats = [item for item in stats[n_members:] if item.n_tokens > 0]
    return MembershipResult(
        auc=auc,
        member_scores=member_scores,
        nonmember_scores=nonmember_scores,
        n_members=len(member_scores["loss"]),
        n_nonmembers=len(nonmember_scores["loss"]),
        n_skipped_members=member_skipped,
        n_skipped_nonmembers=nonmember_skipped,
        k=k,
        nonmember_nll_sum=float(-sum(item.logprobs.sum() for item in nonmember_stats)),
        nonmember_tokens=int(sum(item.n_tokens for item in nonmember_stats)),
        tpr_at_fpr=tprs,
        confidence_intervals=intervals,
        n_bootstrap=n_bootstrap if intervals else 0,
        fpr_resolution=1.0 / len(nonmember_scores["loss"]) if nonmember_scores["loss"] else math.nan,
    )
