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

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from unlearning_jobs.engine.demo_data import DEMO_SEED, generate_demo_dataset
from unlearning_jobs.engine.verify.records import ForgetRecord, PiiValue, SubjectPii, TofuItem


@dataclass(frozen=True)
class BenchTask:
    """The records every model is trained on, unlearns or is verified against.

    ``original_records`` are ``(record_id, text)`` in training order; ``forget_ids`` the ones the
    exact retrain leaves out (``retrain_texts``) and the unlearning methods forget.
    ``single_record_ids`` is a typical request, one person named in one record, and ``groups``
    the person each record names, for a SISA layout that keeps a person in one shard (demo only).
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
    *, root: Path, forget_set: str, retain_sample: int, seed: int = 0, holdout_authors: int | None = None
) -> BenchTask:
    """Return TOFU's QA pairs split into original / retrain training sets, forget set and holdout.

    ``holdout_authors`` (default: as many as the forget set has) are the first authors not
    forgotten; pass the largest forget set's count so several forget sets share one original.
    """

    def read(name: str) -> list[dict]:
        with open(root / f"{name}.json", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    full = read("full")
    text_of = lambda qa: f"Question: {qa['question']}\nAnswer: {qa['answer']}"  # noqa: E731
    position = {(qa["question"], qa["answer"]): index for index, qa in enumerate(full)}
    forget_index = sorted(position[(qa["question"], qa["answer"])] for qa in read(forget_set))
    forget_authors = sorted({index // TOFU_AUTHOR_SIZE for index in forget_index})
    candidates = [a for a in range(len(full) // TOFU_AUTHOR_SIZE) if a not in forget_authors]
    held_out = candidates[: holdout_authors or len(forget_authors)]
    holdout_index = [a * TOFU_AUTHOR_SIZE + i for a in held_out for i in range(TOFU_AUTHOR_SIZE)]
    excluded = set(holdout_index)
    original_index = [i for i in range(len(full)) if i not in excluded]
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
        tofu_items=[TofuItem.from_mapping(row) for row in read(f"{forget_set}_perturbed")],
        info={
            "source": str(root),
            "forget_set": forget_set,
            "forget_records": len(forget_index),
            "forget_authors": [subject.name for subject in subjects],
            "holdout_records": len(holdout_index),
            "original_training_records": len(original_index),
            "retrain_training_records": len(retrain_index),
            "retain_sample": len(sample),
        },
    )
