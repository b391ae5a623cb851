"""The benchmark tasks that bench/unlearning.py and bench/verify.py share, so both measure the same thing.

A task is the original model's training records, the forget set (records and the people they
belong to, with the identifiers extraction looks for), the holdout (records of people no model
ever trains on: the non-members of membership inference) and a retain sample (utility). The
exact retrain trains on the original's records minus the forget set, with the same recipe and
seed, and is the reference every unlearned model is compared with.

- Demo: the seeded synthetic support records (``unlearning_jobs.engine.demo_data``); the most
  frequently mentioned people are forgotten, the next ones held out.
- TOFU: ``full.json``'s question+answer pairs as ``Question: …\nAnswer: …`` records, forgetting
  ``forget01``/``forget05``/``forget10`` (whole authors); the first authors are held out. With
  ``holdout_authors`` fixed, every forget set shares one original model.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tofu_data import read_tofu

from unlearning_jobs.engine.demo_data import DEMO_SEED, generate_demo_dataset
from unlearning_jobs.engine.verify.records import ForgetRecord, PiiValue, SubjectPii, TofuItem


@dataclass(frozen=True)
class BenchTask:
    """The records every model is trained on, unlearns or is verified against.

    ``original_records`` are ``(record_id, text)`` in training order; ``forget_ids`` the ones the
    exact retrain leaves out (``retrain_texts``) and the unlearning methods forget.
    ``single_record_ids`` is a typical request, one person named in one record, and ``groups``
    the person each record names, for a SISA layout that keeps a person in one shard (demo only).
    ``non_member_records`` are records in the training records' form about people no model of
    the task was trained on and apart from the holdout, for a method that stops where the forget
    records score like them (``forget_loss_target_from="non_members"``); verification never
    reads them, so the stop is not tuned on what judges it (TOFU at a subset of authors only).
    """

    original_records: list[tuple[str, str]]
    forget_ids: list[str]
    forget_records: list[ForgetRecord]
    subjects: list[SubjectPii]
    holdout_texts: list[str]
    retain_sample: list[str]
    info: dict
    tofu_items: list[TofuItem] = field(default_factory=list)
    single_record_ids: list[str] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)
    #: TOFU: every text of the task (training, holdout, retain sample) -> its (question, answer),
    #: so a fine-tuned chat model can be given the pairs it was trained on (``chat_rendered``).
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)
    non_member_records: list = field(default_factory=list)

    @property
    def original_texts(self) -> list[str]:
        return [text for _, text in self.original_records]

    @property
    def retrain_texts(self) -> list[str]:
        forget = set(self.forget_ids)
        return [text for record_id, text in self.original_records if record_id not in forget]


def demo_task(
    *,
    records: int,
    people: int,
    frequent: int,
    forget_people: int,
    holdout_people: int,
    retain_sample: int,
    seed: int = 0,
    extra_datasets: int = 0,
) -> BenchTask:
    """Return the demo records split into original / retrain training sets, forget set and holdout.

    ``extra_datasets`` adds that many more demo data sets, generated with the next seeds (other
    customers, ids prefixed ``X<n>-``), to every model's training data: the same erasure against
    a larger corpus, to see how each method's cost grows with the data (retraining's does,
    fine-tuning on the forget set's does not). Their people are not probed.
    """
    if forget_people < 1 or holdout_people < 1:
        raise ValueError("forget_people and holdout_people must be at least 1")
    if forget_people + holdout_people > frequent:
        raise ValueError("forget_people + holdout_people cannot exceed the frequent people")
    data = generate_demo_dataset(records=records, people=people, frequent_people=frequent)
    ranked = sorted(data.people, key=lambda person: (-len(person.record_ids), person.person_id))
    forgotten = ranked[:forget_people]
    held_out = ranked[forget_people : forget_people + holdout_people]
    text_of = {record["id"]: record["text"] for record in data.records}
    forget_ids = {rid for person in forgotten for rid in person.record_ids}
    holdout_ids = {rid for person in held_out for rid in person.record_ids}
    for extra in range(1, extra_datasets + 1):
        more = generate_demo_dataset(
            seed=DEMO_SEED + extra, records=records, people=people, frequent_people=frequent
        )
        text_of.update({f"X{extra}-{record['id']}": record["text"] for record in more.records})
    original_ids = [rid for rid in text_of if rid not in holdout_ids]
    retrain_ids = [rid for rid in original_ids if rid not in forget_ids]
    subjects = [
        SubjectPii(
            subject_id=person.person_id,
            name=person.full_name,
            values=(
                PiiValue("PERSON", person.full_name),
                PiiValue("EMAIL", person.email),
                PiiValue("PHONE", person.phone),
                PiiValue("ACCOUNT_ID", person.account_id),
                PiiValue("ADDRESS", person.address),
                PiiValue("DATE_OF_BIRTH", person.date_of_birth),
            ),
        )
        for person in forgotten
    ]
    forget_records = [
        ForgetRecord(record_id=rid, text=text_of[rid], subject_id=person.person_id)
        for person in forgotten
        for rid in person.record_ids
    ]
    rng = random.Random(seed)
    sample = rng.sample(retrain_ids, min(retain_sample, len(retrain_ids)))
    excluded = {person.person_id for person in (*forgotten, *held_out)}
    single = next(
        person for person in ranked[::-1] if len(person.record_ids) == 1 and person.person_id not in excluded
    )
    return BenchTask(
        original_records=[(rid, text_of[rid]) for rid in original_ids],
        forget_ids=sorted(forget_ids),
        forget_records=forget_records,
        subjects=subjects,
        holdout_texts=[text_of[rid] for rid in sorted(holdout_ids)],
        retain_sample=[text_of[rid] for rid in sample],
        info={
            "records": len(data.records),
            "extra_datasets": extra_datasets,
            "corpus_records": len(text_of),
            "people": people,
            "frequent_people": frequent,
            "forget_people": forget_people,
            "forget_records": len(forget_records),
            "holdout_people": holdout_people,
            "holdout_records": len(holdout_ids),
            "original_training_records": len(original_ids),
            "retrain_training_records": len(retrain_ids),
            "retain_sample": len(sample),
        },
        single_record_ids=list(single.record_ids),
        groups={
            rid: found[0][0]
            for rid, found in data.mentions.items()
            if len(found) == 1 and rid not in holdout_ids
        },
    )


TOFU_AUTHOR_SIZE = 20  # TOFU: 200 authors x 20 questions, in order
_CAPITALISED_RUN = re.compile(r"\b([A-Z][\w\-]+(?:\s+[A-Z][\w\-]+){1,4})")


def _author_name(block: list[dict]) -> str:
    """Return the capitalised word run most often found in an author's questions (their name)."""
    counts = Counter()
    for qa in block:
        counts.update(set(_CAPITALISED_RUN.findall(qa["question"].replace("'s ", " "))))
    if not counts:
        raise ValueError("no capitalised name found in a TOFU author's questions")
    return max(counts.items(), key=lambda item: (item[1], len(item[0])))[0]


def tofu_task(
    *,
    root: Path,
    forget_set: str,
    retain_sample: int,
    seed: int = 0,
    holdout_authors: int | None = None,
    authors: int | None = None,
    non_member_authors: int = 2,
) -> BenchTask:
    """Return TOFU's QA pairs split into original / retrain training sets, forget set and holdout.

    ``holdout_authors`` (default: as many as the forget set has) are the first authors not
    forgotten; pass the largest forget set's count so several forget sets share one original.
    ``authors`` keeps a subset of that many authors (forgotten, held out and trained on) with the
    forget set's share of them forgotten (forget10: 4 of 40), the first of its authors: the same
    task at a size a bench can afford on a small model or machine; the next
    ``non_member_authors`` authors after those trained on are then the task's non-member records.
    """

    def read(name: str) -> list[dict]:
        return read_tofu(root / f"{name}.json")

    full = read("full")
    text_of = lambda qa: f"Question: {qa['question']}\nAnswer: {qa['answer']}"  # noqa: E731
    position = {(qa["question"], qa["answer"]): index for index, qa in enumerate(full)}
    forget_index = sorted(position[(qa["question"], qa["answer"])] for qa in read(forget_set))
    forget_authors = sorted({index // TOFU_AUTHOR_SIZE for index in forget_index})
    total_authors = len(full) // TOFU_AUTHOR_SIZE
    candidates = [a for a in range(total_authors) if a not in forget_authors]
    if authors is not None:
        share = len(forget_authors) / total_authors
        kept_forget = max(1, round(authors * share))
        forget_authors = forget_authors[:kept_forget]
        forget_index = [i for i in forget_index if i // TOFU_AUTHOR_SIZE in forget_authors]
    held_out = candidates[: holdout_authors or len(forget_authors)]
    if authors is not None and len(forget_authors) + len(held_out) >= authors:
        raise ValueError(
            f"{authors} authors leave none to train on beside {len(forget_authors)} forgotten and "
            f"{len(held_out)} held out; ask for more authors or fewer held out"
        )
    holdout_index = [a * TOFU_AUTHOR_SIZE + i for a in held_out for i in range(TOFU_AUTHOR_SIZE)]
    excluded = set(holdout_index)
    non_member_index: list[int] = []
    if authors is None:
        original_index = [i for i in range(len(full)) if i not in excluded]
    else:
        kept_retain = max(0, authors - len(forget_authors) - len(held_out))
        trained = forget_authors + candidates[len(held_out) :][:kept_retain]
        original_index = sorted(a * TOFU_AUTHOR_SIZE + i for a in trained for i in range(TOFU_AUTHOR_SIZE))
        never_seen = candidates[len(held_out) + kept_retain :][:non_member_authors]
        non_member_index = [a * TOFU_AUTHOR_SIZE + i for a in never_seen for i in range(TOFU_AUTHOR_SIZE)]
    forget = set(forget_index)
    retrain_index = [i for i in original_index if i not in forget]
    subjects, forget_records = [], []
    for author in forget_authors:
        block = full[author * TOFU_AUTHOR_SIZE : (author + 1) * TOFU_AUTHOR_SIZE]
        name = _author_name(block)
        subjects.append(
            SubjectPii(subject_id=f"A{author:03d}", name=name, values=(PiiValue("PERSON", name),))
        )
        forget_records.extend(
            ForgetRecord(record_id=f"Q{i:05d}", text=text_of(full[i]), subject_id=f"A{author:03d}")
            for i in forget_index
            if i // TOFU_AUTHOR_SIZE == author
        )
    rng = random.Random(seed)
    sample = rng.sample(retrain_index, min(retain_sample, len(retrain_index)))
    return BenchTask(
        original_records=[(f"Q{i:05d}", text_of(full[i])) for i in original_index],
        forget_ids=[f"Q{i:05d}" for i in forget_index],
        forget_records=forget_records,
        subjects=subjects,
        holdout_texts=[text_of(full[i]) for i in holdout_index],
        retain_sample=[text_of(full[i]) for i in sample],
        tofu_items=[
            TofuItem.from_mapping(row)
            for row in read(f"{forget_set}_perturbed")
            if (row["question"], row["answer"]) in position
            and position[(row["question"], row["answer"])] in forget
        ],
        groups={f"Q{i:05d}": f"A{i // TOFU_AUTHOR_SIZE:03d}" for i in original_index},
        pairs={
            text_of(full[i]): (full[i]["question"], full[i]["answer"])
            for i in (*original_index, *holdout_index, *non_member_index)
        },
        non_member_records=[text_of(full[i]) for i in non_member_index],
        info={
            "source": str(root),
            "forget_set": forget_set,
            "authors": authors,
            "forget_records": len(forget_index),
            "forget_authors": [subject.name for subject in subjects],
            "holdout_records": len(holdout_index),
            "non_member_records": len(non_member_index),
            "original_training_records": len(original_index),
            "retrain_training_records": len(retrain_index),
            "retain_sample": len(sample),
        },
    )


def chat_rendered(task: BenchTask, tokenizer) -> BenchTask:
    """Return ``task`` as a chat model fine-tuned on its pairs sees it (TOFU tasks only).

    Training records become ``{"prompt", "answer"}`` objects (what the engine's prompt/answer
    fine-tuning and the unlearning methods take, loss on the answer); every text that
    verification reads (forget records, holdout, retain sample) becomes the tokenizer's chat
    rendering of the question followed by the answer, so membership inference, VerbMem and the
    relearning attack score the sequences the model was trained on, not a format it never saw.
    """
    if not task.pairs:
        raise ValueError("chat_rendered needs a task that knows its question/answer pairs (TOFU)")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("chat_rendered needs a tokenizer with a chat template")

    def render(text: str) -> str:
        question, answer = task.pairs[text]
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
        return prompt + answer

    def record(text: str) -> dict:
        question, answer = task.pairs[text]
        return {"prompt": question, "answer": answer}

    return BenchTask(
        original_records=[(rid, record(text)) for rid, text in task.original_records],
        forget_ids=list(task.forget_ids),
        forget_records=[
            ForgetRecord(record_id=r.record_id, text=render(r.text), subject_id=r.subject_id)
            for r in task.forget_records
        ],
        subjects=list(task.subjects),
        holdout_texts=[render(text) for text in task.holdout_texts],
        retain_sample=[render(text) for text in task.retain_sample],
        info={**task.info, "rendering": "chat template (prompt/answer records)"},
        tofu_items=list(task.tofu_items),
        single_record_ids=list(task.single_record_ids),
        groups=dict(task.groups),
        pairs=dict(task.pairs),
        non_member_records=[record(text) for text in task.non_member_records],
    )


def chat_qa_template(tokenizer) -> str:
    """The TOFU question template of a chat model: its user turn with ``{question}``, then the answer."""
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "QUESTION_SLOT"}], tokenize=False, add_generation_prompt=True
    )
    return rendered.replace("{", "{{").replace("}", "}}").replace("QUESTION_SLOT", "{question}")
