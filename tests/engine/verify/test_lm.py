"""The model contract: batched results equal one-at-a-time results, and the model's mode is kept."""

from __future__ import annotations

import numpy as np
import pytest

from unlearning_jobs.engine.verify.lm import greedy_complete, score_continuations, score_texts


def test_scores_do_not_depend_on_batching_or_padding(tiny_world):
    texts = [tiny_world.holdout[0], tiny_world.retain[0][:30], tiny_world.retain[1]]
    batched = score_texts(
        model=tiny_world.retrain, tokenizer=tiny_world.tokenizer, texts=texts, device="cpu", batch_size=3
    )
    for text, stats in zip(texts, batched):
        alone = score_texts(
            model=tiny_world.retrain, tokenizer=tiny_world.tokenizer, texts=[text], device="cpu", batch_size=1
        )[0]
        np.testing.assert_allclose(stats.logprobs, alone.logprobs, atol=1e-4)
        np.testing.assert_allclose(stats.std_logprob, alone.std_logprob, atol=1e-4)
        assert stats.n_tokens == len(tiny_world.tokenizer(text)["input_ids"]) - 1


def test_greedy_completions_do_not_depend_on_left_padding(tiny_world):
    prompts = ["Customer note:", tiny_world.retain[2][:40], "Customer note: Zelda Quixote can be"]
    batched = greedy_complete(
        model=tiny_world.original,
        tokenizer=tiny_world.tokenizer,
        prompts=prompts,
        device="cpu",
        max_new_tokens=12,
        batch_size=3,
    )
    alone = [
        greedy_complete(
            model=tiny_world.original,
            tokenizer=tiny_world.tokenizer,
            prompts=[prompt],
            device="cpu",
            max_new_tokens=12,
            batch_size=1,
        )[0]
        for prompt in prompts
    ]
    assert batched == alone


def test_continuation_scores_cover_exactly_the_answer_tokens(tiny_world):
    pairs = [("Customer note:", " Zelda Quixote"), ("Customer note: Zelda", " Quixote can be")]
    scored = score_continuations(
        model=tiny_world.original, tokenizer=tiny_world.tokenizer, pairs=pairs, device="cpu"
    )
    for (_prompt, answer), logprobs in zip(pairs, scored):
        assert len(logprobs) == len(tiny_world.tokenizer(answer)["input_ids"])
        assert (logprobs <= 0).all()


def test_a_model_in_training_mode_is_restored_after_scoring(tiny_world):
    model = tiny_world.retrain
    model.train()
    try:
        score_texts(model=model, tokenizer=tiny_world.tokenizer, texts=["Customer note: a"], device="cpu")
        assert model.training
    finally:
        model.eval()


def test_bad_batch_size_is_refused(tiny_world):
    with pytest.raises(ValueError, match="batch_size"):
        score_texts(
            model=tiny_world.retrain,
            tokenizer=tiny_world.tokenizer,
            texts=["x y"],
            device="cpu",
            batch_size=0,
        )


def test_vocabulary_moments_match_a_direct_computation(tiny_world):
    import torch

    text = tiny_world.retain[3]
    stats = score_texts(
        model=tiny_world.original, tokenizer=tiny_world.tokenizer, texts=[text], device="cpu"
    )[0]
    ids = torch.tensor([tiny_world.tokenizer(text)["input_ids"]])
    with torch.no_grad():
        log_probs = torch.log_softmax(tiny_world.original(input_ids=ids).logits[0, :-1].double(), -1)
    probs = log_probs.exp()
    mean = (probs * log_probs).sum(-1)
    std = (probs * (log_probs - mean[:, None]) ** 2).sum(-1).sqrt()
    np.testing.assert_allclose(stats.mean_logprob, mean.numpy(), atol=1e-4)
    np.testing.assert_allclose(stats.std_logprob, std.numpy(), atol=1e-4)
    np.testing.assert_allclose(
        stats.logprobs, log_probs.gather(-1, ids[0, 1:, None])[:, 0].numpy(), atol=1e-4
    )


def test_verbmem_on_a_record_longer_than_the_context_fits_prompt_and_reference(tiny_world):
    from unlearning_jobs.engine.verify.memorisation import measure_verbmem

    long_text = " ".join(tiny_world.retain[:4])  # about 120 tokens; the tiny model has 64 positions
    assert len(tiny_world.tokenizer(long_text)["input_ids"]) > 64
    result = measure_verbmem(
        model=tiny_world.retrain, tokenizer=tiny_world.tokenizer, device="cpu", texts=[long_text]
    )
    assert result.n_records == 1 and 0.0 <= result.mean_f1 <= 1.0


def test_a_continuation_longer_than_the_context_is_refused_or_truncated(tiny_world):
    long_answer = " " + " ".join(tiny_world.retain[:4])  # more than the 64 positions
    pairs = [("Customer note:", long_answer)]
    with pytest.raises(ValueError, match="does not fit"):
        score_continuations(
            model=tiny_world.retrain, tokenizer=tiny_world.tokenizer, pairs=pairs, device="cpu"
        )
    scored = score_continuations(
        model=tiny_world.retrain,
        tokenizer=tiny_world.tokenizer,
        pairs=pairs,
        device="cpu",
        truncate_long_continuations=True,
    )[0]
    prompt_tokens = len(tiny_world.tokenizer("Customer note:")["input_ids"])
    assert len(scored) == 64 - prompt_tokens


def test_truth_ratios_count_truncated_answers(tiny_world):
    from unlearning_jobs.engine.verify.records import TofuItem
    from unlearning_jobs.engine.verify.tofu import measure_truth_ratios

    item = TofuItem(
        question="Who?",
        answer="x",
        paraphrased_answer=" ".join(tiny_world.retain[:4]),
        perturbed_answers=("A refund.", "An invoice."),
    )
    result = measure_truth_ratios(
        model=tiny_world.retrain, tokenizer=tiny_world.tokenizer, device="cpu", items=[item]
    )
    assert result.n_truncated_answers == 1 and result.truth_ratios[0] > 0
