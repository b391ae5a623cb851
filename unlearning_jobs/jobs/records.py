"""The records a job works on: what a model was trained on, a job's forget set, a retain sample.

Shared by the frameworks (deletion retrains without the forget set, verification measures on it),
so it sits in the jobs layer below both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from unlearning_jobs.datasets.reingestion import dataset_version_training_records
from unlearning_jobs.datasets.storage import dataset_records_texts, dataset_version_iter_texts
from unlearning_jobs.models import (
    DatasetRecord,
    DatasetVersion,
    ModelVersion,
    UnlearningJob,
)

#: Written beside the weights of every model a training job makes: the ids of the records it was
#: trained on, in training order. Exact unlearning reads it, so that "the training set minus the
#: forget set" means exactly that even after the re-ingestion guard has flagged records since.
TRAINING_RECORDS_FILE = "lethe_training_records.txt"

#: At most this many non-member records set an approximate method's forget-loss target
#: (``forget_loss_target_from="non_members"``); at most half of a version's non-members.
NON_MEMBER_STOP_RECORDS = 64

#: A data set whose two text fields are one of these and then one of ``ANSWER_FIELDS`` holds
#: prompt/answer pairs (TOFU, instruction data): fine-tuning takes the loss on the answer only.
PROMPT_FIELDS = ("prompt", "question", "instruction", "input", "query")
ANSWER_FIELDS = ("answer", "response", "output", "completion")


def dataset_version_training_pairs(version: DatasetVersion) -> list[tuple[str, str]]:
    """Return ``(record_id, text)`` of the records the version offers for training, in order.

    Records the re-ingestion guard holds back are left out, so a person erased earlier never
    re-enters a model through a new copy of the data.
    """

    records = dataset_version_training_records(version)
    return [
        (record.record_id, text)
        for record, text in dataset_version_iter_texts(version=version, records=records)
    ]


def dataset_version_holds_prompt_answer(version: DatasetVersion) -> bool:
    """Return whether the version's records are prompt/answer pairs (two text fields, prompt first)."""
    fields = [str(field).lower() for field in version.text_fields or []]
    return len(fields) == 2 and fields[0] in PROMPT_FIELDS and fields[1] in ANSWER_FIELDS


def finetune_records(pairs: Sequence[tuple[str, str]], *, record_format: str) -> list[tuple[str, object]]:
    """Return ``(record_id, record)`` for the engine's fine-tuning: the text, or a prompt/answer pair.

    A record of a prompt/answer data set is stored as its two fields joined by a newline
    (``engine.pii.readers``); it is split at the first newline, so a prompt that itself holds a
    newline is split there. The same rule runs for the fine-tune and for its exact re-fine-tune,
    so deletion stays exact either way.
    """
    if record_format != "prompt_answer":
        return list(pairs)
    return [(record_id, prompt_answer_record(text)) for record_id, text in pairs]


def prompt_answer_record(text: str) -> dict[str, str]:
    """Split a stored prompt/answer record (its two fields joined by a newline) back into the pair."""
    prompt, _, answer = text.partition("\n")
    return {"prompt": prompt, "answer": answer}


def unlearning_records(texts: Sequence[str], *, record_format: str | None) -> list:
    """Return the records an approximate method unlearns or keeps, in the form the model learnt them.

    A model fine-tuned on prompt/answer pairs learnt each answer after its prompt, in the chat
    template, with the loss on the answer only; unlearning the joined text instead would push
    down a sequence the model never saw and leave the answer the prompt elicits. Pairs go to the
    method as ``{"prompt", "answer"}`` so its loss is on the answer tokens, as the fine-tune's was.
    """
    if record_format != "prompt_answer":
        return list(texts)
    return [prompt_answer_record(text) for text in texts]


def model_record_format(recipe: dict) -> str | None:
    """Return the record format a fine-tuned model's recipe names (``text`` or ``prompt_answer``), or None."""
    for key in ("params", "finetune"):
        section = recipe.get(key)
        if isinstance(section, dict) and section.get("format"):
            return str(section["format"])
    return recipe.get("record_format")


def model_training_ids(model_dir: Path) -> list[str] | None:
    """Return the record ids a model was trained on, from its record list or SISA layout, or None."""
    listed = model_dir / TRAINING_RECORDS_FILE
    if listed.is_file():
        return [line for line in listed.read_text(encoding="utf-8").splitlines() if line]
    manifest = model_dir / "sisa.json"
    if manifest.is_file():
        from unlearning_jobs.engine.training.sisa import SisaLayout, read_manifest

        return SisaLayout.from_dict(read_manifest(model_dir)["layout"]).record_ids()
    return None


def source_training_pairs(
    *, source: ModelVersion, version: DatasetVersion, forget: Sequence[DatasetRecord]
) -> list[tuple[str, str]]:
    """Return ``(record_id, text)`` of what ``source`` was trained on, forget records included, in order.

    A model a Lethe job trained names its records (``lethe_training_records.txt`` or its SISA
    layout). For a model registered with its data-set version but no such list, the version's
    trainable records are taken, plus the forget records the guard has held back since approval.
    """

    ids = model_training_ids(Path(source.path))
    if ids is not None:
        wanted = set(ids)
        pairs = [
            (record.record_id, text)
            for record, text in dataset_version_iter_texts(version=version)
            if record.record_id in wanted
        ]
        missing = len(wanted) - len(pairs)
        if missing:
            raise ValueError(
                f"{missing} record(s) the model was trained on are not in {version}: "
                "it is not the version the model was trained on"
            )
        return pairs
    allowed = set(dataset_version_training_records(version).values_list("pk", flat=True))
    allowed |= {record.pk for record in forget if record.version_id == version.pk}
    return [
        (record.record_id, text)
        for record, text in dataset_version_iter_texts(version=version)
        if record.pk in allowed
    ]


def forget_never_trained(
    forget: Iterable[tuple[DatasetRecord, str]], *, version: DatasetVersion | None, trained_ids: Iterable[str]
) -> set[int]:
    """Return the pks of the forget records of ``version`` that a model was never trained on.

    A training job's ``holdout_fraction`` splits per record, so a person can have records on both
    sides. A record the model never saw is a non-member whoever it names: verification does not
    count it among the members, and an approximate run does not push it down. Empty without a
    version (a model registered without its training data names nothing).
    """
    if version is None:
        return set()
    trained = set(trained_ids)
    return {
        record.pk
        for record, _ in forget
        if record.version_id == version.pk and record.record_id not in trained
    }


def records_texts(records: Iterable[DatasetRecord]) -> list[tuple[DatasetRecord, str]]:
    """Return ``(record, text)`` for the given records, read from their versions' stored copies."""

    records = list(records)
    texts = dataset_records_texts(records)
    return [(record, texts[record.pk]) for record in records]


def forget_records_for_job(job: UnlearningJob) -> list[DatasetRecord]:
    """Return the job's frozen forget set as records, in a stable order."""
    return list(DatasetRecord.objects.filter(pk__in=job.forget_record_pks).order_by("version_id", "ordinal"))


def retain_sample(pairs: Sequence[tuple[str, str]], *, exclude: set[str], size: int, seed: int) -> list[str]:
    """Return the texts of up to ``size`` records not in ``exclude``, a seeded sample in data order."""
    return [text for _, text in retain_sample_pairs(pairs, exclude=exclude, size=size, seed=seed)]


def retain_sample_pairs(
    pairs: Sequence[tuple[str, str]], *, exclude: set[str], size: int, seed: int
) -> list[tuple[str, str]]:
    """Return ``retain_sample``'s choice as ``(record_id, text)`` pairs."""
    from unlearning_jobs.engine.methods.base import sample_indices

    kept = [pair for pair in pairs if pair[0] not in exclude]
    return [kept[i] for i in sample_indices(len(kept), size=size, seed=seed)]


#: Largest share of a version's records a training job may hold out.
MAX_HOLDOUT_FRACTION = 0.5


def training_holdout_split(
    pairs: Sequence[tuple[str, str]], *, fraction: float
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Return ``(trained, held_out)``: the records a training job trains on, and those it never sees.

    A record is held out when a hash of its id falls in the lowest ``fraction`` of the range, so
    the choice needs no stored state, is the same in every version that holds the record, and
    an exact retrain (which reads the trained list) keeps it out as well. Held-out records are
    what verification measures membership against (real non-members of the data's own
    distribution, instead of synthetic ones) and what an unlearning run may stop on. The split is
    per record: a person with several records may have some on each side.
    """
    if not 0 <= fraction <= MAX_HOLDOUT_FRACTION:
        raise ValueError(f"holdout_fraction must be between 0 and {MAX_HOLDOUT_FRACTION}, got {fraction}")
    trained, held_out = [], []
    for pair in pairs:
        digest = hashlib.sha256(f"lethe-training-holdout:{pair[0]}".encode()).digest()
        (held_out if int.from_bytes(digest[:8], "big") < fraction * 2**64 else trained).append(pair)
    return trained, held_out


def non_member_stop_records(
    version: DatasetVersion, *, trained_ids: Iterable[str] | None, forget_ids: Iterable[str]
) -> list[DatasetRecord]:
    """Return the version's non-member records an unlearning run may stop on, in order.

    Non-members are records of the version the model was not trained on (``trained_ids``; None:
    it names no list, so every record counts as trained on and there are none), outside the
    forget set. The last ``NON_MEMBER_STOP_RECORDS`` of them, at most half, are chosen, and
    verification leaves exactly these out of its holdout (``verification_inputs``), so a run
    that stops where the forget records score like non-members is judged on other non-members
    than the ones it stopped on. The run itself reads only those of them the re-ingestion guard
    lets through (``non_member_stop_records_offered``: an erased person's records are used for
    nothing).

    The choice reads only what never changes (the version's records, the model's training list,
    the job's frozen forget set), so the job and its verification runs later make the same one
    even when the guard holds records back or an officer releases them in between; choosing
    among the records offered at the time would shift the window and could hand verification a
    record the run stopped on. Chosen from ids alone: no text is read.
    """

    if trained_ids is None:
        return []
    trained, forget = set(trained_ids), set(forget_ids)
    pool = [
        pk
        for pk, record_id in version.records.order_by("ordinal").values_list("pk", "record_id")
        if record_id not in trained and record_id not in forget
    ]
    chosen = pool[len(pool) - min(NON_MEMBER_STOP_RECORDS, len(pool) // 2) :]
    return list(DatasetRecord.objects.filter(pk__in=chosen).order_by("ordinal"))


def non_member_stop_records_offered(
    version: DatasetVersion, *, trained_ids: Iterable[str] | None, forget_ids: Iterable[str]
) -> list[DatasetRecord]:
    """Return what an unlearning run stops on: ``non_member_stop_records`` less those held back."""
    chosen = non_member_stop_records(version, trained_ids=trained_ids, forget_ids=forget_ids)
    return list(dataset_version_training_records(version).filter(pk__in=[record.pk for record in chosen]))
