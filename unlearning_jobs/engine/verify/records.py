"""Describe what verification is given: forget records, the subject's PII values, TOFU items.

These are plain frozen dataclasses so the Django side can build them from its own rows (or from
JSON with the ``from_mapping`` constructors) without the engine knowing about Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from unlearning_jobs.engine.pii.entities import EntityType

__all__ = [
    "PiiValue",
    "PiiSpan",
    "SubjectPii",
    "ForgetRecord",
    "TofuItem",
    "coerce_subjects",
    "coerce_forget_records",
    "coerce_tofu_items",
]


@dataclass(frozen=True)
class PiiValue:
    """One personal-data value of a data subject, as the request or the index holds it."""

    kind: EntityType
    value: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _entity_type(self.kind))
        if not isinstance(self.value, str) or not self.value.strip():
            raise ValueError(f"a {self.kind.value} PII value must be a non-empty string")

    @classmethod
    def from_mapping(cls, data: Mapping) -> PiiValue:
        """Build from ``{"kind": "EMAIL", "value": "..."}`` (``type`` is accepted for ``kind``)."""
        kind = data.get("kind", data.get("type"))
        if kind is None or "value" not in data:
            raise ValueError("a PII value mapping needs 'kind' (or 'type') and 'value'")
        return cls(kind=kind, value=data["value"])


@dataclass(frozen=True)
class PiiSpan:
    """Where a PII value sits in a record's text: ``text[start:end]``, end exclusive."""

    start: int
    end: int
    kind: EntityType

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _entity_type(self.kind))
        if not (isinstance(self.start, int) and isinstance(self.end, int)):
            raise ValueError("a PII span's start and end must be integers")
        if self.start < 0 or self.end <= self.start:
            raise ValueError(f"a PII span needs 0 <= start < end, got {self.start}..{self.end}")

    @classmethod
    def from_mapping(cls, data: Mapping) -> PiiSpan:
        """Build from ``{"start": 8, "end": 20, "kind": "PERSON"}``."""
        try:
            return cls(start=data["start"], end=data["end"], kind=data.get("kind", data.get("type")))
        except KeyError as error:
            raise ValueError(f"a PII span mapping lacks {error.args[0]!r}") from None


@dataclass(frozen=True)
class SubjectPii:
    """A data subject's identifiers: the values whose reappearance in a completion is a leak.

    ``name`` is used to build the templated questions ("What is <name>'s e-mail address?"); the
    name itself is also a PII value when it is listed in ``values``.
    """

    subject_id: str
    values: tuple[PiiValue, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.subject_id, str) or not self.subject_id:
            raise ValueError("subject_id must be a non-empty string")
        values = tuple(
            value if isinstance(value, PiiValue) else PiiValue.from_mapping(value) for value in self.values
        )
        if not values:
            raise ValueError(f"subject {self.subject_id!r} has no PII values to look for")
        object.__setattr__(self, "values", values)
        if self.name is None:
            names = [value.value for value in values if value.kind is EntityType.PERSON]
            object.__setattr__(self, "name", names[0] if names else None)

    @classmethod
    def from_mapping(cls, data: Mapping) -> SubjectPii:
        """Build from ``{"subject_id": "s1", "name": "...", "values": [{"kind":…, "value":…}]}``."""
        if "subject_id" not in data or "values" not in data:
            raise ValueError("a subject mapping needs 'subject_id' and 'values'")
        return cls(
            subject_id=str(data["subject_id"]),
            values=tuple(data["values"]),
            name=data.get("name"),
        )


@dataclass(frozen=True)
class ForgetRecord:
    """A training record that an erasure removes, with the subject it belongs to.

    ``spans`` locate the PII values in ``text`` (from the index); when it is empty, extraction
    finds the subject's values in the text itself.
    """

    record_id: str
    text: str
    subject_id: str
    spans: tuple[PiiSpan, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise ValueError(f"forget record {self.record_id!r} has no text")
        spans = tuple(
            span if isinstance(span, PiiSpan) else PiiSpan.from_mapping(span) for span in self.spans
        )
        for span in spans:
            if span.end > len(self.text):
                raise ValueError(
                    f"forget record {self.record_id!r}: span {span.start}..{span.end} runs past "
                    f"the end of its text ({len(self.text)} characters)"
                )
        object.__setattr__(self, "spans", tuple(sorted(spans, key=lambda s: (s.start, s.end))))

    @classmethod
    def from_mapping(cls, data: Mapping) -> ForgetRecord:
        """Build from ``{"record_id": …, "text": …, "subject_id": …, "spans": [...]}``."""
        missing = [key for key in ("record_id", "text", "subject_id") if key not in data]
        if missing:
            raise ValueError(f"a forget record mapping lacks {missing}")
        return cls(
            record_id=str(data["record_id"]),
            text=data["text"],
            subject_id=str(data["subject_id"]),
            spans=tuple(data.get("spans", ())),
        )


@dataclass(frozen=True)
class TofuItem:
    """One TOFU question with its paraphrased answer and perturbed (wrong) answers.

    ``paraphrased_question`` (TOFU's ``*_perturbed.json`` ships one) is what the robustness
    section's paraphrase probes ask; None where the data has none.
    """

    question: str
    answer: str
    paraphrased_answer: str
    perturbed_answers: tuple[str, ...]
    paraphrased_question: str | None = None

    def __post_init__(self) -> None:
        perturbed = tuple(self.perturbed_answers)
        if not perturbed:
            raise ValueError("a TOFU item needs at least one perturbed answer")
        object.__setattr__(self, "perturbed_answers", perturbed)

    @classmethod
    def from_mapping(cls, data: Mapping) -> TofuItem:
        """Build from a row of TOFU's ``*_perturbed.json`` (``perturbed_answer`` is a list)."""
        missing = [
            key for key in ("question", "answer", "paraphrased_answer", "perturbed_answer") if key not in data
        ]
        if missing:
            raise ValueError(f"a TOFU perturbed row lacks {missing}")
        perturbed = data["perturbed_answer"]
        if isinstance(perturbed, str):
            perturbed = [perturbed]
        return cls(
            question=data["question"],
            answer=data["answer"],
            paraphrased_answer=data["paraphrased_answer"],
            perturbed_answers=tuple(perturbed),
            paraphrased_question=data.get("paraphrased_question"),
        )


def coerce_subjects(subjects: Iterable[SubjectPii | Mapping]) -> dict[str, SubjectPii]:
    """Return subjects keyed by id, building dataclasses from mappings; refuse duplicate ids."""
    result: dict[str, SubjectPii] = {}
    for item in subjects:
        subject = item if isinstance(item, SubjectPii) else SubjectPii.from_mapping(item)
        if subject.subject_id in result:
            raise ValueError(f"subject {subject.subject_id!r} is given twice")
        result[subject.subject_id] = subject
    return result


def coerce_forget_records(records: Iterable[ForgetRecord | Mapping]) -> list[ForgetRecord]:
    """Return forget records as dataclasses, building them from mappings where needed."""
    return [
        record if isinstance(record, ForgetRecord) else ForgetRecord.from_mapping(record)
        for record in records
    ]


def coerce_tofu_items(items: Sequence[TofuItem | Mapping]) -> list[TofuItem]:
    """Return TOFU items as dataclasses, building them from perturbed-file rows where needed."""
    return [item if isinstance(item, TofuItem) else TofuItem.from_mapping(item) for item in items]


def _entity_type(kind: object) -> EntityType:
    try:
        return EntityType(str(kind).upper())
    except ValueError:
        raise ValueError(
            f"unknown PII kind {kind!r}; expected one of {[member.value for member in EntityType]}"
        ) from None
