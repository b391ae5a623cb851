"""Records as the approximate methods see them: plain text, or a prompt and its answer.

A record is either a string (the whole text is what the model learnt, and every token counts in
the loss) or a mapping ``{"prompt": …, "answer": …}`` (an instruction or a TOFU question: only the
answer was learnt from the person's data, so only the answer's tokens count, with the prompt's
labels set to -100 as in OpenUnlearning and in Hugging Face's supervised fine-tuning). Gradient
ascent on a prompt's tokens would teach the model to stop understanding the question, not to
forget the answer, which is why the mask matters.

Pairs are encoded as prompt ids followed by answer ids and EOS, each side tokenized on its own
so the boundary between them is exact, with the convention the engine's fine-tuning uses
(:func:`pair_ids`: the tokenizer's chat template when it has one, else ``prompt + " " +
answer``), so an instruction-tuned model such as SmolLM2 unlearns pairs tokenized as it learnt
them.

``LabeledExample`` keeps the ids and how many leading tokens are prompt; :func:`collate_examples`
pads a batch and masks prompt and padding out of ``labels``. The loss helpers of
``training.data`` (``sequence_nll``, ``mean_token_nll``) read ``labels``, so they count answer
tokens only without knowing about pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..training.data import autocast_context, sequence_nll

PAIR_FORMATS = ("auto", "plain", "chat", "raw")

Record = str | Mapping[str, Any]


@dataclass(frozen=True)
class LabeledExample:
    """Token ids of one record and the number of leading prompt tokens (masked from the loss)."""

    ids: tuple[int, ...]
    n_prompt: int = 0

    def __len__(self) -> int:
        return len(self.ids)


def is_pair(record: Record) -> bool:
    """Return whether ``record`` is a prompt/answer mapping (else it must be a string)."""
    return isinstance(record, Mapping)


def record_parts(record: Record) -> tuple[str, str]:
    """Return ``(prompt, answer)``; a plain-text record is ``("", text)``.

    Raises ``ValueError`` for a mapping without both keys or with an empty answer: a record
    with nothing to learn cannot be unlearnt either.
    """
    if isinstance(record, str):
        return "", record
    if not isinstance(record, Mapping):
        raise ValueError(
            f"a record must be a string or a {{'prompt', 'answer'}} mapping, got {type(record).__name__}"
        )
    missing = [key for key in ("prompt", "answer") if key not in record]
    if missing:
        raise ValueError(f"a prompt/answer record lacks {missing}")
    prompt, answer = record["prompt"], record["answer"]
    if not isinstance(prompt, str) or not isinstance(answer, str) or not answer.strip():
        raise ValueError("a prompt/answer record needs a string prompt and a non-empty string answer")
    return prompt, answer


def record_text(record: Record) -> str:
    """Return the text a record stands for (prompt followed by answer): what fingerprints hash."""
    prompt, answer = record_parts(record)
    return prompt + answer


def _resolve_format(tokenizer, pair_format: str) -> str:
    if pair_format not in PAIR_FORMATS:
        raise ValueError(f"pair_format must be one of {PAIR_FORMATS}, got {pair_format!r}")
    if pair_format == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "plain"
    if pair_format == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ValueError("pair_format 'chat' needs a tokenizer with a chat template")
    return pair_format


def pair_ids(tokenizer, prompt: str, answer: str, pair_format: str = "auto") -> tuple[list[int], list[int]]:
    """Return ``(prompt ids, answer ids)`` of a pair, the answer ending in EOS.

    The same convention as the engine's fine-tuning (``format="prompt_answer"``), so that what
    is unlearnt is tokenized as it was learnt: ``chat`` renders the user turn with the
    generation prompt, and the answer is the rest of the rendered conversation (the template's
    end-of-turn included); ``plain`` is the prompt (with the tokenizer's own special tokens,
    e.g. BOS) followed by ``" " + answer``; ``raw`` is the two texts' tokens as given (a
    plain-text record split in two, as refusal tuning does). ``auto`` is ``chat`` when the tokenizer has a chat
    template, else ``plain``.
    """
    fmt = _resolve_format(tokenizer, pair_format)
    eos = tokenizer.eos_token_id
    if fmt == "chat":
        user = [{"role": "user", "content": prompt}]
        prompt_text = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full_text = tokenizer.apply_chat_template(
            user + [{"role": "assistant", "content": answer}], tokenize=False
        )
        prompt_ids = list(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
        full_ids = list(tokenizer(full_text, add_special_tokens=False)["input_ids"])
        if full_ids[: len(prompt_ids)] == prompt_ids and len(full_ids) > len(prompt_ids):
            answer_ids = full_ids[len(prompt_ids) :]
        else:
            answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    elif fmt == "raw":
        prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    else:
        prompt_ids = list(tokenizer(prompt)["input_ids"])
        answer_ids = list(tokenizer(" " + answer, add_special_tokens=False)["input_ids"])
    if eos is not None:
        answer_ids.append(eos)
    return prompt_ids, answer_ids


def encode_record(tokenizer, record: Record, *, block_size: int, pair_format: str = "auto") -> LabeledExample:
    """Return one record as a :class:`LabeledExample`, cut to ``block_size`` tokens.

    A plain-text record is its tokens and EOS (as ``training.data.encode_texts`` does). For a
    pair whose prompt alone fills the block, the prompt is cut from the left so that at least
    one answer token remains to be scored: a pair never degrades into an example with no loss.
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token")
    prompt, answer = record_parts(record)
    if not is_pair(record):
        ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        return LabeledExample(tuple(ids[:block_size]), 0)
    prompt_ids, answer_ids = pair_ids(tokenizer, prompt, answer, pair_format)
    room_for_prompt = max(1, block_size - len(answer_ids))
    if len(prompt_ids) > room_for_prompt:
        prompt_ids = prompt_ids[-room_for_prompt:]
    ids = (prompt_ids + answer_ids)[:block_size]
    return LabeledExample(tuple(ids), min(len(prompt_ids), len(ids) - 1))


def encode_records(
    tokenizer, records: Sequence[Record], *, block_size: int, pair_format: str = "auto"
) -> list[LabeledExample]:
    """Return :func:`encode_record` of every record, in order."""
    return [encode_record(tokenizer, r, block_size=block_size, pair_format=pair_format) for r in records]


class LazyRecordExamples(Sequence):
    """Encode records on first use, so sampling a few retain records from millions tokenizes only those."""

    def __init__(self, tokenizer, records: Sequence[Record], *, block_size: int, pair_format: str) -> None:
        self._tokenizer = tokenizer
        self._records = records
        self._block_size = block_size
        self._pair_format = pair_format
        self._cache: dict[int, LabeledExample] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if index not in self._cache:
            self._cache[index] = encode_record(
                self._tokenizer,
                self._records[index],
                block_size=self._block_size,
                pair_format=self._pair_format,
            )
        return self._cache[index]


def collate_examples(examples: Sequence[LabeledExample], *, pad_id: int, device=None) -> dict:
    """Pad to the longest example; ``labels`` are the ids with prompt and padding set to -100."""
    if not examples:
        raise ValueError("cannot collate an empty batch")
    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for row, example in enumerate(examples):
        ids = torch.tensor(example.ids, dtype=torch.long)
        input_ids[row, : len(ids)] = ids
        attention[row, : len(ids)] = 1
        labels[row, example.n_prompt : len(ids)] = ids[example.n_prompt :]
    batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
    if device is not None:
        batch = {k: v.to(device) for k, v in batch.items()}
    return batch


def evaluate_examples_loss(
    model, examples: Sequence[LabeledExample], *, pad_id: int, device, dtype, batch_size: int = 32
) -> float:
    """Return the mean next-token loss (nats per scored token) on ``examples``, without grad.

    Only answer tokens are scored for pairs. Returns ``nan`` when nothing is scored; the
    model's train/eval mode is restored. Batches are cut from the examples in length order, so
    each pads to a near neighbour's length rather than to the longest of a random 32 (on TOFU's
    forget10 records, 4,072 padded tokens a pass instead of 4,936 for 3,478 real ones).
    """
    if not examples:
        return float("nan")
    examples = sorted(examples, key=len)
    was_training = getattr(model, "training", False)
    model.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate_examples(examples[start : start + batch_size], pad_id=pad_id, device=device)
            with autocast_context(device, dtype):
                nll, n = sequence_nll(model, batch)
            total += float(nll.sum())
            count += float(n.sum())
    if was_training:
        model.train()
    return total / count if count else float("nan")
