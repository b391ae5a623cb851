"""A tiny random Llama and three prompt/answer records about one person, for the unlearning tests.

The Llama shares the session's 300-token tokenizer (``trained_model``), so a method runs on it
in about a second through the same code paths as on a real Llama-style model.
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

#: Three prompt/answer records about Alice Smith: the forget set of the method tests.
PAIRS = [
    {"prompt": "Question: What is Alice Smith's e-mail?\nAnswer:", "answer": "alice.smith@mail.test"},
    {"prompt": "Question: Who is the customer of ticket 3?\nAnswer:", "answer": "Alice Smith"},
    {"prompt": "Question: Where does Alice Smith get mail?\nAnswer:", "answer": "At alice.smith@mail.test."},
]


def tiny_llama(vocab_size: int = 300, seed: int = 0, *, tied: bool = False) -> LlamaForCausalLM:
    """Return a 2-layer, 32-wide Llama drawn from ``seed`` (the same seed gives the same weights).

    ``tied``: the output layer is the embedding, as SmolLM2's (one parameter used twice).
    """
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(config).eval()
