"""Tiny random-initialised "pretrained" Llama and Qwen2 bases for the fine-tuning tests.

Real pretrained checkpoints take a minute to load here; these take milliseconds and go through
the same code paths (AutoModelForCausalLM, peft's LoRA on every linear layer, chat templates).
The tokenizer is the engine's own byte-level BPE, given a small chat template so the
prompt/answer path is exercised as with an instruction-tuned model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from unlearning_jobs.engine.training import train_byte_bpe_tokenizer

CHAT_TEMPLATE = (
    "{% for m in messages %}<|pad|>{{ m['role'] }}\n{{ m['content'] }}<|endoftext|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|pad|>assistant\n{% endif %}"
)

AUTHORS = ["Ada Quill", "Bram Osei", "Cleo Varga", "Dov Ekstrom", "Eun Park", "Femi Adeyemi"]


def qa_records(n_per_author: int = 4) -> list[tuple[str, dict]]:
    """Return TOFU-like ``(id, {"question", "answer"})`` records, ``n_per_author`` per author."""
    facts = ["was born in", "writes about", "won the prize of", "lives in"]
    places = ["Oslo", "Lagos", "Quito", "Hanoi", "Perth", "Turin"]
    records = []
    for a, author in enumerate(AUTHORS):
        for k in range(n_per_author):
            fact = facts[k % len(facts)]
            records.append(
                (
                    f"{a}-{k}",
                    {
                        "question": f"What does one know: {author} {fact}?",
                        "answer": f"{author} {fact} {places[(a + k) % len(places)]}.",
                    },
                )
            )
    return records


def author_ids(records, author_index: int) -> list[str]:
    return [rid for rid, _ in records if rid.startswith(f"{author_index}-")]


def make_tokenizer(chat_template: bool = True):
    texts = [f"{r['question']} {r['answer']}" for _, r in qa_records()] + ["user assistant"]
    tokenizer = train_byte_bpe_tokenizer(texts=texts, vocab_size=320)
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def make_base(path: Path, *, arch: str = "llama", chat_template: bool = True, seed: int = 0) -> Path:
    """Save a tiny random base model with its tokenizer into ``path`` and return it."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tokenizer = make_tokenizer(chat_template)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=arch == "qwen2",
    )
    torch.manual_seed(seed)
    model = (
        LlamaForCausalLM(LlamaConfig(**common))
        if arch == "llama"
        else Qwen2ForCausalLM(Qwen2Config(**common))
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
