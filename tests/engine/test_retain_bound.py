"""The retain-loss bound's sample: drawn from every retain record, or held out of the retain term.

Why it matters (docs/unlearning-methods.md): a method with a retain term fits the records it
trains on, so a bound measured on those same records can stay green while the model loses
utility elsewhere. ``retain_eval_held_out`` keeps the bound's records out of the retain batches.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from unlearning_jobs.engine.methods.approximate import retain_split
from unlearning_jobs.engine.methods.data import encode_records
from unlearning_jobs.engine.methods.npo import Npo

from .tiny_models import PAIRS, tiny_llama


@pytest.fixture(scope="module")
def tokenizer(trained_model):
    return AutoTokenizer.from_pretrained(trained_model)


def test_by_default_the_bound_reads_records_the_retain_term_also_trains_on():
    params = Npo.Params(retain_eval_size=4)
    measured, trained = retain_split(10, params)
    assert len(measured) == 4 and trained == list(range(10))


def test_held_out_the_bound_reads_records_no_retain_batch_holds():
    params = Npo.Params(retain_eval_size=4, retain_eval_held_out=True)
    measured, trained = retain_split(10, params)
    assert len(measured) == 4 and set(measured).isdisjoint(trained)
    assert sorted(measured + trained) == list(range(10))
    # Never more than half the records are set aside, so the retain term keeps the rest.
    measured, trained = retain_split(5, Npo.Params(retain_eval_size=64, retain_eval_held_out=True))
    assert len(measured) == 2 and len(trained) == 3
    with pytest.raises(ValueError, match="at least 2 retain records"):
        retain_split(1, params)
    # A method with no retain term replays nothing: its sample is the default one.
    measured, trained = retain_split(10, params, replayed=False)
    assert len(measured) == 4 and trained == list(range(10))


class RecordingNpo(Npo):
    """NPO that notes every retain batch it trains on (the loop is the shared one)."""

    def __init__(self):
        self.retain_rows: list[list[int]] = []

    def extend_batch(self, batch, *, forget_indices, pad_id, device):
        for row, mask in zip(batch["retain"]["input_ids"], batch["retain"]["attention_mask"], strict=True):
            self.retain_rows.append(row[mask.bool()].tolist())


@pytest.mark.parametrize("held_out", [False, True])
def test_the_retain_term_trains_on_the_bounds_records_only_when_not_held_out(tokenizer, held_out):
    retain = [f"Record {i} of the retain set talks about topic {i * 7}." for i in range(12)]
    method = RecordingNpo()
    outcome = method.unlearn(
        model=tiny_llama(),
        tokenizer=tokenizer,
        forget_records=PAIRS,
        retain_records=retain,
        params={
            "max_steps": 12,
            "retain_batch_size": 4,
            "retain_eval_size": 4,
            "retain_eval_held_out": held_out,
            "max_retain_loss_increase": None,
            "learning_rate": 1e-4,
        },
        block_size=64,
        device=torch.device("cpu"),
    )
    assert outcome.metrics["retain_eval_held_out"] is held_out
    assert outcome.metrics["retain_eval_records"] == 4
    examples = encode_records(tokenizer, retain, block_size=64, pair_format="auto")
    measured, _trained = retain_split(
        len(retain), method.parse_params({"retain_eval_size": 4, "retain_eval_held_out": held_out})
    )
    measured_ids = {tuple(examples[i].ids) for i in measured}
    trained_ids = {tuple(row) for row in method.retain_rows}
    assert len(method.retain_rows) == 12 * 4
    if held_out:
        assert trained_ids.isdisjoint(measured_ids)
        assert len(trained_ids) == len(retain) - 4  # 12 steps of 4 cover the 8 records left
    else:
        assert measured_ids <= trained_ids  # 12 steps of 4 cover all 12, the measured ones too
