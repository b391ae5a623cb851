"""The benchmark task definitions that bench/unlearning.py and bench/verify.py share."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import tasks  # noqa: E402


@pytest.fixture(scope="module")
def demo():
    return tasks.demo_task(
        records=400, people=60, frequent=10, forget_people=2, holdout_people=2, retain_sample=50
    )


def test_demo_retrain_set_is_the_original_without_exactly_the_forget_records(demo):
    original_ids = [rid for rid, _ in demo.original_records]
    forget = set(demo.forget_ids)
    assert forget <= set(original_ids)
    assert {r.record_id for r in demo.forget_records} == forget
    assert demo.retrain_texts == [text for rid, text in demo.original_records if rid not in forget]
    assert len(demo.retrain_texts) == len(original_ids) - len(forget)


def test_demo_holdout_people_are_in_no_training_set(demo):
    training = set(demo.original_texts)
    assert demo.holdout_texts and not training & set(demo.holdout_texts)
    assert set(demo.retain_sample) <= set(demo.retrain_texts)


def test_demo_single_record_request_is_one_kept_record_of_someone_else(demo):
    assert len(demo.single_record_ids) == 1
    assert demo.single_record_ids[0] in {rid for rid, _ in demo.original_records}
    assert demo.single_record_ids[0] not in set(demo.forget_ids)


def test_tofu_forget_sets_share_one_original_with_a_fixed_holdout(tofu_dir):
    small = tasks.tofu_task(root=tofu_dir, forget_set="forget01", retain_sample=10, holdout_authors=3)
    large = tasks.tofu_task(root=tofu_dir, forget_set="forget10", retain_sample=10, holdout_authors=3)
    assert small.original_records == large.original_records
    assert len(small.forget_ids) == 20 and len(large.forget_ids) == 60
    assert set(small.forget_ids) <= set(large.forget_ids)
    assert small.holdout_texts == large.holdout_texts and len(small.holdout_texts) == 60
    assert not set(small.holdout_texts) & set(small.original_texts)
    assert [subject.name for subject in small.subjects] == ["Jonas Pike"]
    assert len(small.tofu_items) == 20
    default = tasks.tofu_task(root=tofu_dir, forget_set="forget01", retain_sample=10)
    assert len(default.holdout_texts) == 20


def test_demo_groups_name_the_person_of_each_training_record(demo):
    training = {rid for rid, _ in demo.original_records}
    assert demo.groups and set(demo.groups) <= training
    forgotten = {r.subject_id for r in demo.forget_records}
    assert {demo.groups[rid] for rid in demo.forget_ids if rid in demo.groups} == forgotten


def test_extra_datasets_grow_the_corpus_and_leave_the_erasure_alone(demo):
    bigger = tasks.demo_task(
        records=400,
        people=60,
        frequent=10,
        forget_people=2,
        holdout_people=2,
        retain_sample=50,
        extra_datasets=2,
    )
    assert bigger.forget_ids == demo.forget_ids and bigger.holdout_texts == demo.holdout_texts
    assert bigger.original_records[: len(demo.original_records)] == demo.original_records
    extra = [rid for rid, _ in bigger.original_records[len(demo.original_records) :]]
    assert extra and {rid.split("-")[0] for rid in extra} == {"X1", "X2"}
    assert bigger.info["corpus_records"] == len(bigger.original_records) + len(bigger.holdout_texts)


def test_tofu_author_subset_keeps_the_forget_share_and_trains_on_the_rest(tofu_dir):
    # 10 authors, forget10 = the last 3 (30 %): a 7-author subset forgets round(2.1) = 2 of them.
    task = tasks.tofu_task(root=tofu_dir, forget_set="forget10", retain_sample=10, authors=7)
    trained_authors = {rid for rid in task.groups.values()}
    assert len(trained_authors) == 5  # 7 - 2 held out (as many as forgotten)
    assert len(task.forget_ids) == 40 and set(task.forget_ids) <= {rid for rid, _ in task.original_records}
    assert [subject.name for subject in task.subjects] == ["Hugo Wren", "Ines Fable"]
    assert len(task.tofu_items) == 40  # only the kept forget authors' questions
    assert len(task.holdout_texts) == 40 and not set(task.holdout_texts) & set(task.original_texts)
    with pytest.raises(ValueError, match="leave none to train on"):
        tasks.tofu_task(root=tofu_dir, forget_set="forget10", retain_sample=10, authors=2)


class _ChatTokenizer:
    chat_template = "user: ... assistant: ..."

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")


def test_chat_rendering_gives_pairs_to_train_and_chat_texts_to_verify(tofu_dir):
    task = tasks.tofu_task(root=tofu_dir, forget_set="forget01", retain_sample=10, holdout_authors=2)
    chat = tasks.chat_rendered(task, _ChatTokenizer())
    rid, record = chat.original_records[0]
    assert rid == task.original_records[0][0]
    assert record == {"prompt": "What did Cora Vane write in year 0?", "answer": "Cora wrote book 0."}
    first = chat.forget_records[0]
    assert first.text == "<user>What did Jonas Pike write in year 0?</user><assistant>Jonas wrote book 0."
    assert first.record_id == task.forget_records[0].record_id
    assert all(text.startswith("<user>") for text in chat.holdout_texts + chat.retain_sample)
    template = tasks.chat_qa_template(_ChatTokenizer())
    assert template.format(question="Q?") == "<user>Q?</user><assistant>"
    with pytest.raises(ValueError, match="question/answer pairs"):
        tasks.chat_rendered(
            tasks.demo_task(
                records=100, people=20, frequent=6, forget_people=1, holdout_people=1, retain_sample=5
            ),
            _ChatTokenizer(),
        )
