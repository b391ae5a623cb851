"""Tiny GPT-2 models trained from scratch, shared by the verification tests.

One session-scoped fixture trains, on a few hundred synthetic customer notes, an "original" model
that also saw a planted subject's record many times, and an exact retrain of the same recipe
without that record. Both take a few seconds on two CPU cores.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

FIRST = [
    "Alice",
    "Bruno",
    "Chen",
    "Dara",
    "Elif",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kemal",
    "Lena",
    "Marco",
    "Nadia",
    "Oskar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tess",
]
LAST = [
    "Archer",
    "Baker",
    "Carver",
    "Dunn",
    "Ellis",
    "Frost",
    "Grant",
    "Hale",
    "Irwin",
    "Jarvis",
    "Keane",
    "Lowe",
    "Marsh",
    "Noble",
    "Orr",
    "Pike",
    "Quill",
    "Reid",
    "Stone",
]
WORDS = [
    "amber",
    "birch",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "grove",
    "harbor",
    "ivory",
    "juniper",
    "kestrel",
    "lumen",
    "meadow",
    "nectar",
    "orchid",
    "pebble",
    "quartz",
]
DOMAINS = ["mailbox.test", "post.example", "inbox.example"]
TOPICS = [
    "a late delivery",
    "a refund",
    "a broken kettle",
    "an invoice",
    "a password reset",
    "a new address",
    "a cancelled order",
    "a warranty claim",
]

# The forget cohort and the holdout come from a second pool that the retain data never uses, so
# the exact retrain can neither have seen nor guess a cohort value, and forget and holdout
# records share one distribution (what membership inference compares).
COHORT_POOL = {
    "first": [
        "Anouk",
        "Bartek",
        "Calla",
        "Dorian",
        "Eskil",
        "Fenna",
        "Gwilym",
        "Hollis",
        "Isolde",
        "Jarrah",
        "Kaito",
        "Liesel",
    ],
    "last": [
        "Ashdown",
        "Brackley",
        "Culloden",
        "Dunmore",
        "Everleigh",
        "Farrow",
        "Glanville",
        "Hethersett",
        "Ingleby",
        "Jessop",
        "Kilbride",
        "Lockridge",
    ],
    "words": ["saffron", "tundra", "willow", "yarrow", "zircon", "bramble", "cobalt", "dune"],
    "domains": ["harbour.example"],
    "phone": "+44 161 496 0{:03d}",
}
RETAIN_POOL = {
    "first": FIRST,
    "last": LAST,
    "words": WORDS,
    "domains": DOMAINS,
    "phone": "+44 20 7946 {:04d}",
}

PLANTED_NAME = "Zelda Quixote"
PLANTED_EMAIL = "zephyr.lantern@quietmail.org"
PLANTED_PHONE = "+44 20 7946 0958"
PLANTED_TEXT = (
    f"Customer note: {PLANTED_NAME} can be reached at {PLANTED_EMAIL} or {PLANTED_PHONE} about a refund."
)
PLANTED_REPEATS = 40


def note(rng: random.Random, pool: dict = RETAIN_POOL) -> dict:
    """Return a synthetic customer note and its values; the e-mail cannot be guessed from the name."""
    name = f"{rng.choice(pool['first'])} {rng.choice(pool['last'])}"
    email = (
        f"{rng.choice(pool['words'])}.{rng.choice(pool['words'])}{rng.randint(1, 99)}"
        f"@{rng.choice(pool['domains'])}"
    )
    phone = pool["phone"].format(rng.randint(0, 999 if "{:03d}" in pool["phone"] else 9999))
    text = f"Customer note: {name} can be reached at {email} or {phone} about {rng.choice(TOPICS)}."
    return {"text": text, "name": name, "email": email, "phone": phone}


def build_tokenizer(corpus: list[str]) -> PreTrainedTokenizerFast:
    """Train a small byte-level BPE tokenizer and wrap it as a Hugging Face tokenizer."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


def train_model(tokenizer, texts: list[str], *, seed: int, steps: int = 200) -> GPT2LMHeadModel:
    """Train a 2-layer GPT-2 on ``texts`` with a fixed seed; return it in eval mode."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(config)
    encoded = [tokenizer(text)["input_ids"][:63] + [tokenizer.eos_token_id] for text in texts]
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = random.Random(seed)
    model.train()
    for _ in range(steps):
        batch = rng.sample(encoded, 16)
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), tokenizer.eos_token_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    return model


@dataclass(frozen=True)
class TinyWorld:
    """The models and texts the verification tests share.

    ``original`` saw ``retain`` + ``cohort`` + the planted record ×40; ``retrain`` saw only
    ``retain`` (an exact retrain after erasing the cohort and the planted subject). ``holdout``
    is unseen by both and drawn like ``cohort``.
    """

    tokenizer: PreTrainedTokenizerFast
    original: GPT2LMHeadModel
    retrain: GPT2LMHeadModel
    retain: list[str]
    cohort: list[dict]
    holdout: list[str]


@pytest.fixture(scope="session")
def tiny_world() -> TinyWorld:
    torch.set_num_threads(1)  # tiny matrices: one thread beats two on shared cores
    rng = random.Random(7)
    retain = [note(rng)["text"] for _ in range(200)]
    names_seen: set[str] = set()
    cohort: list[dict] = []
    while len(cohort) < 16:
        candidate = note(rng, COHORT_POOL)
        if candidate["name"] not in names_seen:
            names_seen.add(candidate["name"])
            cohort.append(candidate)
    holdout = [note(rng, COHORT_POOL)["text"] for _ in range(30)]
    corpus = retain + [item["text"] for item in cohort]
    tokenizer = build_tokenizer(corpus + holdout + [PLANTED_TEXT])
    original = train_model(tokenizer, corpus + [PLANTED_TEXT] * PLANTED_REPEATS, seed=1)
    retrain = train_model(tokenizer, retain, seed=1)
    return TinyWorld(tokenizer, original, retrain, retain, cohort, holdout)
