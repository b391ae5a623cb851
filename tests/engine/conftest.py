"""Tiny records, recipes and trained models shared by the training and unlearning tests.

Everything runs on one CPU thread with a 1-layer, 32-wide GPT-2 and a 300-token vocabulary, so
a training run takes well under a second after the first import.
"""

from __future__ import annotations

import random

import pytest
import torch

from unlearning_jobs.engine.training import TrainingRecipe, train_causal_lm

torch.set_num_threads(1)

PEOPLE = [
    ("Alice Smith", "alice.smith@mail.test"),
    ("Bruno Keane", "bruno.k@post.test"),
    ("Chen Archer", "chen77@inbox.test"),
    ("Dara Frost", "dara.frost@mail.test"),
    ("Elif Stone", "elif.s@post.test"),
    ("Farid Hale", "farid.hale@inbox.test"),
]
#: The person whose records the tests forget; she is mentioned often, so the model memorises her.
FORGET_NAME = "Alice Smith"


def make_records(n: int = 48, seed: int = 7) -> list[tuple[str, str]]:
    """Return ``n`` seeded customer notes as ``(id, text)``; a third of them mention Alice Smith."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        name, email = PEOPLE[0] if i % 3 == 0 else rng.choice(PEOPLE[1:])
        records.append(
            (f"R{i:03d}", f"Ticket {i}: contact {name} at {email} about order {rng.randint(100, 999)}.")
        )
    return records


@pytest.fixture(scope="session")
def records() -> list[tuple[str, str]]:
    return make_records()


@pytest.fixture(scope="session")
def forget_ids(records) -> list[str]:
    return [rid for rid, text in records if FORGET_NAME in text]


@pytest.fixture(scope="session")
def forget_texts(records, forget_ids) -> list[str]:
    chosen = set(forget_ids)
    return [text for rid, text in records if rid in chosen]


@pytest.fixture(scope="session")
def retain_texts(records, forget_ids) -> list[str]:
    chosen = set(forget_ids)
    return [text for rid, text in records if rid not in chosen]


@pytest.fixture(scope="session")
def tiny_recipe() -> TrainingRecipe:
    return TrainingRecipe(
        n_layer=1,
        n_embd=32,
        n_head=2,
        block_size=48,
        vocab_size=300,
        batch_size=8,
        epochs=12,
        learning_rate=1e-2,
        warmup_steps=2,
        seed=3,
    )


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, records, tiny_recipe) -> str:
    """Train the tiny model once per session and return its directory (tests must not modify it)."""
    output = tmp_path_factory.mktemp("trained") / "model"
    train_causal_lm(texts=[text for _, text in records], recipe=tiny_recipe, output_dir=output)
    return str(output)
