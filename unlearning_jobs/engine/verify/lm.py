"""Query a causal language model: token log-probabilities and greedy completions, in batches.

Every metric goes through these three functions so that the model's contract is written down in
one place. ``model`` is anything with Hugging Face causal-LM semantics: ``model(input_ids=…,
attention_mask=…)`` returns an object with ``.logits`` of shape ``[batch, length, vocab]``, and
``model.generate(input_ids=…, attention_mask=…, max_new_tokens=…, do_sample=False,
pad_token_id=…)`` decodes greedily. ``tokenizer`` is a Hugging Face tokenizer. The model must
already be on ``device``; inputs are moved there. The model is put in eval mode for the call and
its previous mode is restored afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "TokenStats",
    "score_texts",
    "score_continuations",
    "greedy_complete",
    "encode",
    "context_length",
]

#: Called as ``progress(done, total)`` after each batch.
BatchProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class TokenStats:
    """Per-token statistics of one scored text, for every token after the first.

    ``logprobs[i]`` is log p(token i+1 | tokens ≤ i). ``mean_logprob`` and ``std_logprob`` are the
    mean and standard deviation of log p(z | tokens ≤ i) over the vocabulary z, weighted by
    p(z | tokens ≤ i) (the expectation Min-K%++ normalises by); they are ``None`` when the caller
    did not ask for them.
    """

    logprobs: np.ndarray
    mean_logprob: np.ndarray | None = None
    std_logprob: np.ndarray | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.logprobs.shape[0])


@contextlib.contextmanager
def _inference(model) -> Iterator[None]:
    """Run the block in eval mode without gradients, restoring the model's training flag."""
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            model.train()


def _pad_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def context_length(model, tokenizer, max_length: int | None = None) -> int:
    """Return the longest sequence to feed: the caller's, else the model's position limit."""
    if max_length is not None:
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2 tokens, got {max_length}")
        return max_length
    config = getattr(model, "config", None)
    for attribute in ("n_positions", "max_position_embeddings"):
        value = getattr(config, attribute, None)
        if isinstance(value, int) and value > 1:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 1 < value < 1_000_000:
        return value
    return 1024


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def encode(tokenizer, text: str, *, special_tokens: bool = True) -> list[int]:
    """Return the token ids of ``text`` (with the tokenizer's BOS/EOS rules when asked)."""
    return list(tokenizer(text, add_special_tokens=special_tokens)["input_ids"])


def _forward_batch(
    model, sequences: Sequence[list[int]], *, pad_id: int, device, want_distribution: bool
) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Return, per sequence, next-token log-probs of its own tokens (and vocabulary moments)."""
    width = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention[row, : len(sequence)] = 1
    input_ids = input_ids.to(device)
    attention = attention.to(device)
    logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1, :].float()
    log_probs = torch.log_softmax(logits, dim=-1)
    targets = input_ids[:, 1:]
    token_logprobs = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mean = std = None
    if want_distribution:
        probs = log_probs.exp()
        # Tokens with probability 0 (logit -inf) contribute nothing; 0 × -inf would be NaN.
        support = probs > 0
        mean = torch.where(support, probs * log_probs, 0.0).sum(-1)
        # Centred second moment: E[x²] − μ² cancels catastrophically when the model is confident.
        spread = torch.where(support, probs * (log_probs - mean.unsqueeze(-1)).square(), 0.0)
        std = spread.sum(-1).sqrt()
    results = []
    for row, sequence in enumerate(sequences):
        n = len(sequence) - 1
        results.append(
            (
                token_logprobs[row, :n].double().cpu().numpy(),
                None if mean is None else mean[row, :n].double().cpu().numpy(),
                None if std is None else std[row, :n].double().cpu().numpy(),
            )
        )
    return results


def _batched(indices: Sequence[int], lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Group indices into batches of similar length, so little compute goes to padding."""
    ordered = sorted(indices, key=lambda index: lengths[index])
    return [ordered[start : start + batch_size] for start in range(0, len(ordered), batch_size)]


def score_texts(
    *,
    model,
    tokenizer,
    texts: Sequence[str],
    device,
    batch_size: int = 8,
    max_length: int | None = None,
    with_distribution: bool = True,
    progress: BatchProgress | None = None,
) -> list[TokenStats]:
    """Return per-token log-probabilities of each text under the model, in input order.

    Texts longer than ``max_length`` tokens (default: the model's position limit) are cut at the
    end. A text of fewer than two tokens has nothing to predict and gets empty arrays; callers
    skip it and count it. ``with_distribution`` also returns the vocabulary moments Min-K%++
    needs, at the cost of one extra pass over the logits.
    """
    _check_batch_size(batch_size)
    limit = context_length(model, tokenizer, max_length)
    pad_id = _pad_id(tokenizer)
    sequences = [encode(tokenizer, text)[:limit] for text in texts]
    empty = np.zeros(0, dtype=np.float64)
    results: list[TokenStats] = [
        TokenStats(empty, empty if with_distribution else None, empty if with_distribution else None)
        for _ in sequences
    ]
    scorable = [index for index, sequence in enumerate(sequences) if len(sequence) >= 2]
    batches = _batched(scorable, [len(sequence) for sequence in sequences], batch_size)
    with _inference(model):
        for done, batch in enumerate(batches, start=1):
            outputs = _forward_batch(
                model,
                [sequences[index] for index in batch],
                pad_id=pad_id,
                device=device,
                want_distribution=with_distribution,
            )
            for index, (logprobs, mean, std) in zip(batch, outputs):
                results[index] = TokenStats(logprobs, mean, std)
            if progress is not None:
                progress(done, len(batches))
    return results


def score_continuations(
    *,
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    device,
    batch_size: int = 8,
    max_length: int | None = None,
    truncate_long_continuations: bool = False,
    progress: BatchProgress | None = None,
) -> list[np.ndarray]:
    """Return log p(token | prompt, earlier continuation tokens) for each continuation token.

    Prompt and continuation are tokenised separately and joined, so the boundary is exactly where
    the caller put it (a leading space belongs in the continuation for byte-level BPE). When the
    pair is longer than ``max_length`` the prompt is cut from the left. A continuation that does
    not fit beside the prompt's last ``max_length // 2`` tokens is refused, unless
    ``truncate_long_continuations``: then only its first tokens that fit are scored (the
    returned array is shorter than the continuation), which a length-normalised probability
    tolerates better than losing the question.
    """
    _check_batch_size(batch_size)
    limit = context_length(model, tokenizer, max_length)
    pad_id = _pad_id(tokenizer)
    sequences: list[list[int]] = []
    answer_lengths: list[int] = []
    for prompt, continuation in pairs:
        prompt_ids = encode(tokenizer, prompt)
        answer_ids = encode(tokenizer, continuation, special_tokens=False)
        if not answer_ids:
            raise ValueError("a continuation to score is empty")
        if not prompt_ids:
            raise ValueError("a prompt to score is empty: the first answer token needs context")
        # The prompt keeps at least half the context (or all of itself, if shorter).
        keep = min(len(prompt_ids), max(limit - len(answer_ids), limit // 2, 1))
        if len(answer_ids) > limit - keep:
            if not truncate_long_continuations:
                raise ValueError(
                    f"a continuation of {len(answer_ids)} tokens does not fit in max_length={limit} "
                    f"beside {keep} prompt tokens"
                )
            answer_ids = answer_ids[: limit - keep]
        sequences.append(prompt_ids[len(prompt_ids) - keep :] + answer_ids)
        answer_lengths.append(len(answer_ids))
    results: list[np.ndarray] = [np.zeros(0) for _ in sequences]
    batches = _batched(range(len(sequences)), [len(s) for s in sequences], batch_size)
    with _inference(model):
        for done, batch in enumerate(batches, start=1):
            outputs = _forward_batch(
                model,
                [sequences[index] for index in batch],
                pad_id=pad_id,
                device=device,
                want_distribution=False,
            )
            for index, (logprobs, _mean, _std) in zip(batch, outputs):
                results[index] = logprobs[-answer_lengths[index] :]
            if progress is not None:
                progress(done, len(batches))
    return results


def greedy_complete(
    *,
    model,
    tokenizer,
    prompts: Sequence[str],
    device,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    max_length: int | None = None,
    progress: BatchProgress | None = None,
) -> list[str]:
    """Return the model's greedy continuation of each prompt (the new text only), in input order.

    Prompts are left-padded in a batch so that every continuation starts at the same position;
    a prompt longer than ``max_length - max_new_tokens`` tokens keeps its last tokens, because the
    end of a prefix is what the continuation depends on.
    """
    _check_batch_size(batch_size)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    limit = context_length(model, tokenizer, max_length)
    room = limit - max_new_tokens
    if room < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in {limit} positions")
    pad_id = _pad_id(tokenizer)
    sequences = []
    for prompt in prompts:
        ids = encode(tokenizer, prompt)
        if not ids:
            raise ValueError("a prompt to complete is empty")
        sequences.append(ids[-room:])
    completions: list[str] = ["" for _ in sequences]
    batches = _batched(range(len(sequences)), [len(s) for s in sequences], batch_size)
    with _inference(model):
        for done, batch in enumerate(batches, start=1):
            width = max(len(sequences[index]) for index in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, index in enumerate(batch):
                sequence = sequences[index]
                input_ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
                attention[row, width - len(sequence) :] = 1
            output = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=pad_id,
            )
            for row, index in enumerate(batch):
                new_tokens = output[row, width:].tolist()
                eos = tokenizer.eos_token_id
                if eos is not None and eos in new_tokens:
                    new_tokens = new_tokens[: new_tokens.index(eos)]
                completions[index] = tokenizer.decode(new_tokens, skip_special_tokens=True)
            if progress is not None:
                progress(done, len(batches))
    return completions
