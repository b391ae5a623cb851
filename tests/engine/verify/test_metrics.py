"""Metric functions against values computed by hand."""

from __future__ import annotations

import itertools
import math
import random
import zlib

import numpy as np
import pytest

from unlearning_jobs.engine.verify.lm import TokenStats
from unlearning_jobs.engine.verify.membership import (
    auc_null_std,
    loss_score,
    min_k_plus_plus_score,
    min_k_score,
    privleak,
    record_scores,
    roc_auc,
    zlib_score,
)
from unlearning_jobs.engine.verify.memorisation import lcs_length, rouge_l, rouge_tokens
from unlearning_jobs.engine.verify.tofu import forget_quality, truth_ratio
from unlearning_jobs.engine.verify.utility import (
    perplexity_from_stats,
    utility_ratio,
    utility_ratio_on_original_tokens,
)


def test_auc_counts_tied_pairs_as_one_half():
    # Pairs won: 0.9 beats 3, 0.8 beats 3, 0.4 beats 0.1 and ties 0.4: 7.5 of 9.
    assert roc_auc(positive=[0.9, 0.8, 0.4], negative=[0.7, 0.4, 0.1]) == pytest.approx(7.5 / 9)


def test_auc_is_one_zero_and_one_half_at_the_extremes():
    assert roc_auc(positive=[3, 4], negative=[1, 2]) == 1.0
    assert roc_auc(positive=[1, 2], negative=[3, 4]) == 0.0
    assert roc_auc(positive=[5, 5, 5], negative=[5, 5]) == 0.5


def test_auc_equals_the_pairwise_count_on_random_scores_with_ties():
    rng = random.Random(3)
    positive = [rng.randint(0, 9) for _ in range(37)]
    negative = [rng.randint(0, 9) for _ in range(23)]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(positive, negative))
    assert roc_auc(positive=positive, negative=negative) == pytest.approx(wins / (37 * 23))


def test_auc_refuses_empty_or_nan_scores():
    with pytest.raises(ValueError, match="at least one positive"):
        roc_auc(positive=[], negative=[1.0])
    with pytest.raises(ValueError, match="finite"):
        roc_auc(positive=[math.nan], negative=[1.0])


def test_auc_null_std_matches_the_mann_whitney_variance():
    assert auc_null_std(50, 50) == pytest.approx(math.sqrt(101 / 30000))


def test_privleak_is_the_relative_auc_difference_in_percent():
    assert privleak(auc=0.8, reference_auc=0.5) == pytest.approx(60.0)
    assert privleak(auc=0.45, reference_auc=0.5) == pytest.approx(-10.0)
    assert math.isnan(privleak(auc=math.nan, reference_auc=0.5))
    with pytest.raises(ValueError, match="positive reference AUC"):
        privleak(auc=0.5, reference_auc=0.0)


def _stats(logprobs, mean=None, std=None):
    as_array = lambda values: None if values is None else np.asarray(values, dtype=float)  # noqa: E731
    return TokenStats(as_array(logprobs), as_array(mean), as_array(std))


def test_loss_zlib_and_min_k_scores_on_fixed_log_probs():
    stats = _stats([-1.0, -2.0, -3.0, -4.0, -5.0])
    assert loss_score(stats) == -3.0
    text = "a fixed text"
    assert zlib_score(stats, text) == pytest.approx(-3.0 / len(zlib.compress(text.encode())))
    # k = 0.4 of 5 tokens: the two least likely, -5 and -4.
    assert min_k_score(stats, 0.4) == -4.5
    # At least one token even when k × n rounds down to zero.
    assert min_k_score(_stats([-1.0, -7.0]), 0.1) == -7.0


def test_min_k_plus_plus_normalises_each_position_by_the_vocabulary_moments():
    stats = _stats([-1.0, -2.0, -3.0, -4.0, -5.0], mean=[-1, -1, -1, -1, -1], std=[1, 2, 1, 3, 4])
    # Normalised: 0, -0.5, -2, -1, -1; the lowest two are -2 and -1.
    assert min_k_plus_plus_score(stats, 0.4) == pytest.approx(-1.5)


def test_min_k_plus_plus_skips_positions_with_a_point_mass_distribution():
    stats = _stats([-1.0, 0.0], mean=[-2.0, 0.0], std=[1.0, 0.0])
    assert min_k_plus_plus_score(stats, 0.4) == pytest.approx(1.0)
    assert math.isnan(min_k_plus_plus_score(_stats([0.0], mean=[0.0], std=[0.0]), 0.4))


def test_record_scores_orient_every_score_higher_for_likelier_text():
    likely = record_scores(_stats([-0.1] * 4, [-1.0] * 4, [1.0] * 4), "same text")
    unlikely = record_scores(_stats([-3.0] * 4, [-1.0] * 4, [1.0] * 4), "same text")
    assert all(likely[name] > unlikely[name] for name in likely)


def test_rouge_l_on_fixed_strings():
    # LCS "the cat on the mat" = 5 of 6 tokens on each side.
    score = rouge_l(candidate="The cat sat on the mat.", reference="the cat lay on the mat")
    assert (score.precision, score.recall) == (pytest.approx(5 / 6), pytest.approx(5 / 6))
    assert score.f1 == pytest.approx(5 / 6)
    # LCS "a c" = 2: P = 2/4, R = 2/3, F1 = 4/7.
    score = rouge_l(candidate="a b c d", reference="a c e")
    assert (score.precision, score.recall, score.f1) == (
        pytest.approx(0.5),
        pytest.approx(2 / 3),
        pytest.approx(4 / 7),
    )


def test_rouge_l_ignores_case_and_punctuation_and_is_zero_without_overlap():
    assert rouge_l(candidate="Hello, World!", reference="hello world").f1 == 1.0
    assert rouge_l(candidate="", reference="anything").f1 == 0.0
    assert rouge_l(candidate="x y", reference="a b").f1 == 0.0
    assert rouge_tokens("Zelda's e-mail: Z.Q@x.org") == ["zelda", "s", "e", "mail", "z", "q", "x", "org"]


def test_lcs_length_is_symmetric():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert lcs_length(list("BDCABA"), list("ABCBDAB")) == 4


def test_ks_forget_quality_matches_the_exact_two_sample_p_value():
    # Completely separated samples of 3 and 3: D = 1, exact p = 2 / C(6, 3) = 0.1.
    quality = forget_quality(unlearned_truth_ratios=[1, 2, 3], retrained_truth_ratios=[4, 5, 6])
    assert quality.statistic == 1.0
    assert quality.p_value == pytest.approx(0.1)
    # 4 and 4: p = 2 / C(8, 4) = 2 / 70.
    quality = forget_quality(
        unlearned_truth_ratios=[0.1, 0.2, 0.3, 0.4], retrained_truth_ratios=[0.5, 0.6, 0.7, 0.8]
    )
    assert quality.p_value == pytest.approx(2 / 70)
    same = forget_quality(unlearned_truth_ratios=[0.3, 0.5], retrained_truth_ratios=[0.3, 0.5])
    assert same.p_value == 1.0


def test_forget_quality_refuses_nan_truth_ratios():
    with pytest.raises(ValueError, match="NaN"):
        forget_quality(unlearned_truth_ratios=[math.nan], retrained_truth_ratios=[0.5])


def test_truth_ratio_is_mean_normalised_perturbed_probability_over_paraphrased():
    half = math.log(0.5)
    # Paraphrased: 0.5 per token. Perturbed: 0.1 and 0.4 per token → mean 0.25 → R = 0.5.
    ratio = truth_ratio(
        paraphrased_logprobs=np.array([half, half]),
        perturbed_logprobs=[np.array([math.log(0.1)]), np.array([math.log(0.4)] * 3)],
    )
    assert ratio == pytest.approx(0.5)


def test_perplexity_is_token_weighted_and_utility_ratio_is_original_over_model():
    stats = [_stats([-1.0, -1.0, -1.0]), _stats([-2.0]), _stats([])]
    ppl = perplexity_from_stats(stats)
    assert ppl.value == pytest.approx(math.exp(5 / 4))
    assert (ppl.n_texts, ppl.n_tokens) == (2, 4)
    assert utility_ratio(original_perplexity=10.0, model_perplexity=12.5) == pytest.approx(0.8)
    assert utility_ratio(original_perplexity=10.0, model_perplexity=10.0) == 1.0
    assert math.isnan(utility_ratio(original_perplexity=math.nan, model_perplexity=10.0))


def test_utility_across_tokenizers_compares_total_likelihood_on_the_original_tokens():
    # The same text: the original splits it into 100 tokens at 2.0 nats each (200 nats in all);
    # a retrain with its own vocabulary into 80 tokens at 2.5 nats each (also 200 nats). Per
    # token the retrain looks 1.65x more perplexed; on the same text it is exactly as good.
    same = utility_ratio_on_original_tokens(
        original_perplexity=math.exp(2.0),
        original_tokens=100,
        model_perplexity=math.exp(2.5),
        model_tokens=80,
    )
    assert same == pytest.approx(1.0)
    assert utility_ratio(original_perplexity=math.exp(2.0), model_perplexity=math.exp(2.5)) == pytest.approx(
        math.exp(-0.5)
    )
    # 10 nats more on the text, spread over the original's 100 tokens.
    worse = utility_ratio_on_original_tokens(
        original_perplexity=math.exp(2.0),
        original_tokens=100,
        model_perplexity=math.exp(210 / 80),
        model_tokens=80,
    )
    assert worse == pytest.approx(math.exp(-0.1))
    # Equal token counts: the plain ratio of perplexities.
    assert utility_ratio_on_original_tokens(
        original_perplexity=10.0, original_tokens=7, model_perplexity=12.5, model_tokens=7
    ) == pytest.approx(0.8)
    assert math.isnan(
        utility_ratio_on_original_tokens(
            original_perplexity=10.0, original_tokens=0, model_perplexity=12.5, model_tokens=7
        )
    )
    assert (
        utility_ratio_on_original_tokens(
            original_perplexity=10.0, original_tokens=5, model_perplexity=math.inf, model_tokens=7
        )
        == 0.0
    )
