"""Turn records into training examples and batches, and measure a model's loss on them.

One record is one example: ``tokenizer(text).input_ids + [eos]``, cut to the block size. Batches
are padded to their longest example and the padding is masked out of the loss. The order of
examples in an epoch is a pure function of ``(seed, epoch)``, so a run resumed at any step sees
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence

Example = list[int]


def encode_texts(tokenizer, texts: Sequence[str], *, block_size: int) -> list[Example]:
    """Return one example per text: its token ids, the end-of-text id, cut to ``block_size``."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token; train it with train_byte_bpe_tokenizer")
    if not texts:
        return []
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return [(ids + [eos])[:block_size] for ids in encoded]


class LazyExamples(Sequence):
    """Encode texts on first use, so a method that samples a few thousand retain records from a
    data set of millions tokenizes only those."""

    def __init__(self, tokenizer, texts: Sequence[str], *, block_size: int) -> None:
        self._tokenizer = tokenizer
        self._texts = texts
        self._block_size = block_size
        self._cache: dict[int, Example] = {}

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, index: int) -> Example:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if index not in self._cache:
            self._cache[index] = encode_texts(
                self._tokenizer, [self._texts[index]], block_size=self._block_size
            )[0]
        return self._cache[index]


def pad_token_id(tokenizer) -> int:
    """Return the id used for padding (the pad token, else end-of-text)."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return int(tokenizer.eos_token_id)


def collate(examples: Sequence[Example], *, pad_id: int, device=None) -> dict:
    """Pad ``examples`` to the longest one; return ``input_ids``, ``attention_mask`` and ``labels``.

    ``labels`` are the input ids with padding set to -100; the shift for next-token prediction
    happens in :func:`sequence_nll`, as in Hugging Face models.
    """
    import torch

    if not examples:
        raise ValueError("cannot collate an empty batch")
    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        input_ids[row, : len(example)] = torch.tensor(example, dtype=torch.long)
        attention[row, : len(example)] = 1
    labels = input_ids.masked_fill(attention == 0, -100)
    batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
    if device is not None:
        batch = {k: v.to(device) for k, v in batch.items()}
    return batch


def epoch_order(n: int, *, seed: int, epoch: int, salt: int = 0) -> list[int]:
    """Return the shuffled order of ``n`` examples for one epoch, fixed by ``(seed, salt, epoch)``."""
    import torch

    generator = torch.Generator().manual_seed(mix_seed(seed, salt, epoch))
    return torch.randperm(n, generator=generator).tolist()


def mix_seed(*parts: int) -> int:
    """Derive a 63-bit generator seed from several integers, stable across Python versions."""
    digest = hashlib.sha256(json.dumps(list(parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Return the number of optimiser steps one epoch of ``n`` examples takes (last batch partial)."""
    return -(-n // batch_size)


def autocast_context(device, dtype):
    """Return bf16 autocast on CUDA when ``dtype`` is bf16, else a no-op: one code path for both."""
    import torch

    if getattr(device, "type", str(device)) == "cuda" and dtype == torch.bfloat16:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sequence_nll(model, batch: dict):
    """Return ``(nll_sum, token_count)`` per sequence, both shape ``[batch]``, in float32.

    The logits at position ``t`` predict the label at ``t + 1``; label -100 is ignored.
    """
    import torch
    import torch.nn.functional as F

    logits = next_token_logits(model, batch)
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    nll = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        labels.clamp(min=0).reshape(-1),
        reduction="none",
    ).view(labels.shape)
    nll = nll * mask
    return nll.sum(dim=1), mask.sum(dim=1).to(torch.float32)


def mean_token_nll(model, batch: dict):
    """Return the batch's mean next-token loss over all real tokens, as in causal-LM training."""
    nll, count = sequence_nll(model, batch)
    return nll.sum() / count.sum().clamp(min=1)


def next_token_logits(model, batch: dict):
    """Return the logits that predict each next token, ``[batch, length - 1, vocab]``, in float32."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out.logits[:, :-1, :].float()


def mean_token_kl(model, batch: dict, reference_logits):
    """Return KL(reference ‖ model) of the next-token distributions, averaged over the batch's real tokens.

    The retain term of GradDiff-KL and NPO-KL (OpenUnlearning's ``retain_loss_type: KL``). The
    NLL term raises the probability of the retain records' own tokens, so it goes on fitting them
    past where the model was; this one holds the model's whole next-token distribution where the
    reference (``reference_logits``, from :func:`next_token_logits` of the model at the start)
    had it. Counted on the tokens NLL counts (label not -100: a pair's answer tokens), where
    OpenUnlearning averages over every position of the batch, prompt and padding included.
    """
    import torch.nn.functional as F

    mask = batch["labels"][:, 1:] != -100
    log_p = F.log_softmax(next_token_logits(model, batch)[mask], dim=-1)
    log_q = F.log_softmax(reference_logits[mask], dim=-1)
    return F.kl_div(log_p, log_q, reduction="sum", log_target=True) / mask.sum().clamp(min=1)


def evaluate_loss(
    model, examples: Sequence[Example], *, pad_id: int, device, dtype, batch_size: int = 32
) -> float:
    """Return the mean next-token loss (nats per token) of ``model`` on ``examples``, without grad.

    Returns ``nan`` when there are no tokens to score. The model's train/eval mode is restored.
    """
    import torch

    if not examples:
        return float("nan")
    was_training = getattr(model, "training", False)
    model.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start : start + batch_size], pad_id=pad_id, device=device)
            with autocast_context(device, dtype):
                nll, n = sequence_nll(model, batch)
            total += float(nll.sum())
            count += float(n.sum())
    if was_training:
        model.train()
    return total / count if count else float("nan")


def texts_fingerprint(texts: Sequence[str]) -> str:
    """Return a SHA-256 over the texts in order, so a checkpoint is never resumed on other data."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    return digest.hexdigest()
