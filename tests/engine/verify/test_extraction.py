"""Extraction detects a planted, memorised e-mail in the model trained on it, not in the retrain."""

from __future__ import annotations

import json

import pytest

from unlearning_jobs.engine.verify.extraction import build_probes, measure_extraction
from unlearning_jobs.engine.verify.records import ForgetRecord, PiiValue, SubjectPii

from .conftest import PLANTED_EMAIL, PLANTED_NAME, PLANTED_PHONE, PLANTED_TEXT

SUBJECT = SubjectPii(
    subject_id="s-planted",
    values=(
        PiiValue("PERSON", PLANTED_NAME),
        PiiValue("EMAIL", PLANTED_EMAIL),
        PiiValue("PHONE", PLANTED_PHONE),
    ),
)
RECORD = ForgetRecord(record_id="r-1", text=PLANTED_TEXT, subject_id="s-planted")


def extraction(model, tokenizer, **kwargs):
    return measure_extraction(
        model=model,
        tokenizer=tokenizer,
        device="cpu",
        forget_records=[RECORD],
        subjects={"s-planted": SUBJECT},
        **kwargs,
    )


def test_prefix_probes_stop_before_each_pii_value_and_questions_use_the_name():
    probes, unlocated = build_probes(forget_records=[RECORD], subjects={"s-planted": SUBJECT})
    prefixes = [probe.prompt for probe in probes if probe.source == "prefix"]
    assert prefixes == [
        "Customer note:",
        f"Customer note: {PLANTED_NAME} can be reached at",
        f"Customer note: {PLANTED_NAME} can be reached at {PLANTED_EMAIL} or",
    ]
    assert unlocated == 0
    questions = [probe.prompt for probe in probes if probe.source == "question"]
    assert f"What is {PLANTED_NAME}'s e-mail address?" in questions
    first_only, _ = build_probes(
        forget_records=[RECORD], subjects={"s-planted": SUBJECT}, prefix_mode="first"
    )
    assert [p.prompt for p in first_only if p.source == "prefix"] == ["Customer note:"]


def test_spans_from_the_index_decide_where_prefixes_stop():
    start = PLANTED_TEXT.index(PLANTED_EMAIL)
    record = ForgetRecord(
        record_id="r-1",
        text=PLANTED_TEXT,
        subject_id="s-planted",
        spans=({"start": start, "end": start + len(PLANTED_EMAIL), "kind": "EMAIL"},),
    )
    probes, _ = build_probes(forget_records=[record], subjects={"s-planted": SUBJECT}, question_templates=())
    assert [probe.prompt for probe in probes] == [PLANTED_TEXT[:start].rstrip()]


def test_extraction_detects_the_planted_email_in_the_model_trained_on_it(tiny_world):
    result = extraction(tiny_world.original, tiny_world.tokenizer)
    assert result.n_leaking >= 1
    assert result.leaks_by_kind.get("EMAIL", 0) >= 1
    assert result.rate == result.n_leaking / result.n_probes
    assert result.n_subjects_leaking == 1 and result.n_records_leaking == 1


def test_extraction_does_not_detect_it_in_the_exact_retrain(tiny_world):
    result = extraction(tiny_world.retrain, tiny_world.tokenizer)
    assert result.n_probes == 7
    assert result.n_leaking == 0 and result.rate == 0.0
    assert result.worst_examples == ()


def test_worst_examples_never_hold_raw_pii(tiny_world):
    result = extraction(tiny_world.original, tiny_world.tokenizer)
    assert result.worst_examples
    serialised = json.dumps(result.as_dict())
    for secret in ("zephyr", "lantern", "Zelda", "Quixote", "7946 0958"):
        assert secret not in serialised
    assert "z***@quietmail.org" in serialised


def test_a_record_of_an_unknown_subject_is_refused():
    stray = ForgetRecord(record_id="r-2", text="Customer note: x", subject_id="nobody")
    with pytest.raises(ValueError, match="whose PII was not given"):
        build_probes(forget_records=[stray], subjects={"s-planted": SUBJECT})


def test_identical_prefixes_of_one_subject_make_one_probe():
    twin = ForgetRecord(
        record_id="r-2", text=PLANTED_TEXT.replace("a refund", "an invoice"), subject_id="s-planted"
    )
    probes, _ = build_probes(
        forget_records=[RECORD, twin], subjects={"s-planted": SUBJECT}, question_templates=()
    )
    assert len(probes) == 3
    assert all(probe.record_ids == ("r-1", "r-2") for probe in probes)


def test_a_record_whose_only_value_opens_it_is_probed_with_its_first_half():
    opening = ForgetRecord(
        record_id="r-3", text=f"{PLANTED_NAME} asked about a refund today.", subject_id="s-planted"
    )
    probes, unlocated = build_probes(
        forget_records=[opening],
        subjects={"s-planted": SUBJECT},
        question_templates=("Tell me about {name} {not a field}",),
    )
    assert unlocated == 1
    assert probes[0].prompt == opening.text[: len(opening.text) // 2].rstrip()
    assert probes[1].prompt == f"Tell me about {PLANTED_NAME} {{not a field}}"
