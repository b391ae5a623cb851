"""Scan training records for personal data and keep only keyed hashes of what was found.

The output of a scan is what the PII index stores: per record, each finding's entity type, span,
score, recogniser and the HMAC of its normalised value (for names also of the token-sorted
name). Raw values never leave this module.

Speed comes from doing less work per record, not from looking at fewer records:

* spaCy runs only the components NER needs, over large batches, with the NER's decoding loop
  driven from Python and its dense layers on numpy's BLAS (see ``ner.py`` for why each is
  faster and gives the same entities; ``ScanSettings.python_decoder`` and ``numpy_gemm`` turn
  them off);
* Presidio's recognisers then run on the precomputed NLP artifacts;
* ``ScanPool`` spreads chunks over processes that each load the engine once.

The one behavioural difference from calling ``AnalyzerEngine.analyze`` on each text is that
Presidio's lemma-based context boost is not applied (no lemmatizer runs): it can only raise
scores and every recogniser's base score is above the threshold, so it changes recorded scores,
not which values are found (the benchmark's spans were identical to ``analyze``'s).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from .analyzer import AnalyzerSettings, analyzer_configuration, build_analyzer
from .entities import PRESIDIO_TO_ENTITY, EntityType
from .hashing import KeyedHasher
from .match_keys import (
    DEFAULT_ACCOUNT_PREFIXES,
    MATCH_KEY_DERIVATION,
    MATCH_KEY_VERSION,
    finding_count_label,
    record_match_keys,
)
from .match_keys import RECOGNISER as MATCH_KEY_RECOGNISER
from .ner import ner_components, pipe_entities, use_numpy_gemm
from .normalise import (
    NormalisationError,
    name_token_sorted,
    normalise_phone,
    normalise_value,
)
from .readers import SourceRecord

__all__ = [
    "Finding",
    "RecordFindings",
    "ScanSettings",
    "ScanEngine",
    "ScanInputError",
    "check_record_lengths",
    "ScanPoolError",
    "ScanPool",
    "findings_from_results",
    "get_scan_engine",
    "scan_records",
    "scan_chunk_parallel",
    "scan_configuration",
    "limit_blas_threads",
    "count_findings",
]

logger = logging.getLogger(__name__)

#: Entities found by the NER model; dropped where they overlap a pattern-based finding (spaCy
#: tags "ACC-123456" as a place and street names as people).
_NER_ENTITIES = frozenset({EntityType.PERSON, EntityType.LOCATION})


class ScanInputError(ValueError):
    """A record cannot be scanned as given (for example, its text is longer than allowed)."""


class ScanPoolError(RuntimeError):
    """Worker processes cannot be started here (inside a daemonic process such as a Celery child)."""


@dataclass(frozen=True)
class Finding:
    """One personal-data value found in a record, as the index stores it: never the value."""

    entity_type: str
    start: int
    end: int
    score: float
    recogniser: str
    value_hash: str
    sorted_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the finding as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class RecordFindings:
    """The findings of one record, and how many values were dropped as unnormalisable."""

    record_id: str
    line_no: int
    findings: tuple[Finding, ...]
    dropped: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the record's findings as JSON-ready data."""
        return {
            "record_id": self.record_id,
            "line_no": self.line_no,
            "findings": [finding.as_dict() for finding in self.findings],
            "dropped": self.dropped,
        }


@dataclass(frozen=True)
class ScanSettings:
    """How a scan runs; ``analyzer`` decides what it finds, the rest only how fast.

    ``default_region`` reads phone numbers written without a country code; when a number is not
    valid there, the analyzer's phone regions are tried in order (the recogniser found it
    valid in one of them).
    """

    analyzer: AnalyzerSettings = field(default_factory=AnalyzerSettings)
    default_region: str = "GB"
    batch_size: int = 256
    numpy_gemm: bool = True
    python_decoder: bool = True
    blas_threads: int | None = 1
    max_text_chars: int = 1_000_000
    #: Detection-free match keys (``match_keys.py``) besides what Presidio finds.
    match_keys: bool = True
    #: Account-id prefix synonyms for match keys, ``((canonical, (spelling, …)), …)``; None: defaults.
    account_prefixes: tuple[tuple[str, tuple[str, ...]], ...] | None = None

    def account_prefix_table(self) -> dict[str, tuple[str, ...]] | None:
        return dict(self.account_prefixes) if self.account_prefixes else None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if self.max_text_chars < 1:
            raise ValueError(f"max text length must be at least 1, got {self.max_text_chars}")
        if self.blas_threads is not None and self.blas_threads < 1:
            raise ValueError(f"BLAS threads must be at least 1, got {self.blas_threads}")
        if len(self.default_region) != 2 or not self.default_region.isalpha():
            raise ValueError(f"default region must be an ISO 3166 alpha-2 code, got {self.default_region!r}")


#: Score recorded with a match-key finding: a rule matched, no model was asked.
MATCH_KEY_SCORE = 0.6


def scan_configuration(settings: ScanSettings | None = None) -> dict:
    """Return the analyzer configuration plus the scan's own settings, to store with an index."""
    settings = settings or ScanSettings()
    configuration = analyzer_configuration(settings.analyzer)
    configuration["scan"] = {
        "default_region": settings.default_region,
        "ner_components_only": True,
        "numpy_gemm": settings.numpy_gemm,
        "python_decoder": settings.python_decoder,
        "context_enhancement": False,
        "hash": "HMAC-SHA256 of '<ENTITY_TYPE>:<normalised value>'",
        "match_keys": (
            {
                "version": MATCH_KEY_VERSION,
                "derivation": MATCH_KEY_DERIVATION,
                "recogniser": MATCH_KEY_RECOGNISER,
                "hash": f"HMAC-SHA256 of '<ENTITY_TYPE>:{MATCH_KEY_VERSION}:<key>'",
                "account_prefixes": settings.account_prefix_table() or DEFAULT_ACCOUNT_PREFIXES,
            }
            if settings.match_keys
            else None
        ),
    }
    return configuration


def match_key_findings(text: str, *, hasher: KeyedHasher, account_prefixes=None) -> tuple[Finding, ...]:
    """Return the record's match keys (``match_keys.py``) as findings: keyed hashes and spans only."""
    return tuple(
        Finding(
            entity_type=key.entity_type.value,
            start=key.start,
            end=key.end,
            score=MATCH_KEY_SCORE,
            recogniser=MATCH_KEY_RECOGNISER,
            value_hash=hasher.hash(key.entity_type, key.hashed_text()),
            sorted_hash=None,
        )
        for key in record_match_keys(text, account_prefixes=account_prefixes)
    )


def limit_blas_threads(threads: int) -> bool:
    """Set numpy's OpenBLAS thread count; return False where the library does not allow it.

    Scans are parallel across processes; a BLAS pool per process on top of that only makes
    the processes fight for the same cores.
    """
    import ctypes

    import numpy  # noqa: F401  (loads the BLAS library whose symbols are looked up below)

    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            libraries = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return False
    for library in sorted(libraries):
        handle = ctypes.CDLL(library)
        for symbol in (
            "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_",
            "openblas_set_num_threads",
        ):
            setter = getattr(handle, symbol, None)
            if setter is not None:
                setter(int(threads))
                return True
    logger.debug("pii_scan.blas_threads_not_set", extra={"libraries": sorted(libraries)})
    return False


def check_record_lengths(records: Sequence[SourceRecord], *, max_chars: int) -> None:
    """Raise ``ScanInputError`` naming the first record longer than ``max_chars``."""
    for record in records:
        if len(record.text) > max_chars:
            raise ScanInputError(
                f"record {record.record_id!r} (line {record.line_no}) has "
                f"{len(record.text)} characters; the scan accepts at most {max_chars}: split "
                "the record or raise ScanSettings.max_text_chars"
            )


class ScanEngine:
    """A loaded Presidio analyzer plus the lean spaCy pipeline; build one per process.

    Building loads the spaCy model (seconds); ``get_scan_engine`` caches one per settings.
    """

    def __init__(self, settings: ScanSettings) -> None:
        self.settings = settings
        if settings.blas_threads is not None:
            limit_blas_threads(settings.blas_threads)
        self.analyzer = build_analyzer(settings.analyzer)
        self.language = settings.analyzer.language
        self.nlp = self.analyzer.nlp_engine.get_nlp(self.language)
        self.nlp.max_length = max(self.nlp.max_length, settings.max_text_chars + 1)
        self.ner_components = ner_components(self.nlp)
        if settings.numpy_gemm:
            use_numpy_gemm(self.nlp, self.ner_components)
        self.entities = list(settings.analyzer.entities)
        self.recognisers = self.analyzer.registry.get_recognizers(
            language=self.language, entities=self.entities
        )
        for recogniser in self.recognisers:
            if not recogniser.is_loaded:
                recogniser.load()
                recogniser.is_loaded = True

    def recognise(self, text: str, nlp_artifacts) -> list:
        """Return the analyzer's recognisers' results for ``text``, as ``analyze`` filters them.

        Same recognisers, same score threshold, same ``remove_duplicates`` as
        ``AnalyzerEngine.analyze``, without its per-call registry lookup and context step (see
        the module docstring for why the context boost is left out).
        """
        from presidio_analyzer import EntityRecognizer

        results = []
        for recogniser in self.recognisers:
            found = recogniser.analyze(text=text, entities=self.entities, nlp_artifacts=nlp_artifacts)
            if found:
                results.extend(found)
        threshold = self.settings.analyzer.score_threshold
        return EntityRecognizer.remove_duplicates([r for r in results if r.score >= threshold])

    def analyze_batch(self, texts: Sequence[str]) -> Iterator[list]:
        """Yield Presidio's results for each text, running spaCy once over the whole batch.

        The NLP artifacts hold only the mapped entities: no lemmas or token offsets, which only
        Presidio's context boost reads, and building them costs more than the recognisers.
        """
        from presidio_analyzer.nlp_engine import NlpArtifacts
        from spacy.tokens import Span

        nlp_engine = self.analyzer.nlp_engine
        ner_configuration = nlp_engine.ner_model_configuration
        mapping = ner_configuration.model_to_presidio_entity_mapping
        ignored = set(ner_configuration.labels_to_ignore)
        score = ner_configuration.default_score
        with self.nlp.select_pipes(enable=self.ner_components):
            if self.settings.python_decoder:
                docs = pipe_entities(
                    self.nlp,
                    texts,
                    components=self.ner_components,
                    batch_size=self.settings.batch_size,
                )
            else:
                docs = self.nlp.pipe(texts, batch_size=self.settings.batch_size)
            for text, doc in zip(texts, docs, strict=True):
                entities = [
                    Span(doc, ent.start, ent.end, label=mapping[ent.label_])
                    for ent in doc.ents
                    if ent.label_ in mapping
                    and ent.label_ not in ignored
                    and mapping[ent.label_] not in ignored
                ]
                nlp_artifacts = NlpArtifacts(
                    entities=entities,
                    tokens=None,
                    tokens_indices=[],
                    lemmas=[],
                    nlp_engine=None,
                    language=self.language,
                    scores=[score] * len(entities),
                )
                yield self.recognise(text, nlp_artifacts)

    def scan(self, records: Iterable[SourceRecord], *, hasher: KeyedHasher) -> list[RecordFindings]:
        """Return the hashed findings of each record, in order.

        A text that occurs more than once (boilerplate lines, copied records) is analysed once:
        the analysis depends on nothing but the text.
        """
        records = list(records)
        check_record_lengths(records, max_chars=self.settings.max_text_chars)
        unique_texts = list(dict.fromkeys(record.text for record in records))
        by_text = {}
        for text, results in zip(unique_texts, self.analyze_batch(unique_texts), strict=True):
            findings, dropped = findings_from_results(
                text,
                results,
                hasher=hasher,
                default_region=self.settings.default_region,
                phone_regions=self.settings.analyzer.phone_regions,
            )
            if self.settings.match_keys:
                findings += match_key_findings(
                    text, hasher=hasher, account_prefixes=self.settings.account_prefix_table()
                )
            by_text[text] = (findings, dropped)
        out: list[RecordFindings] = []
        for record in records:
            findings, dropped = by_text[record.text]
            out.append(
                RecordFindings(
                    record_id=record.record_id,
                    line_no=record.line_no,
                    findings=findings,
                    dropped=dropped,
                )
            )
        return out


@lru_cache(maxsize=4)
def get_scan_engine(settings: ScanSettings | None = None) -> ScanEngine:
    """Return this process's engine for ``settings``, building it on first use."""
    return ScanEngine(settings or ScanSettings())


def _normalise_phone_any(value: str, regions: Sequence[str]) -> str:
    for region in regions:
        try:
            return normalise_phone(value, region)
        except NormalisationError:
            continue
    raise NormalisationError(f"phone number is not valid in any of {list(regions)}")


def findings_from_results(
    text: str,
    results: Iterable,
    *,
    hasher: KeyedHasher,
    default_region: str = "GB",
    phone_regions: Sequence[str] = ("GB", "US"),
) -> tuple[tuple[Finding, ...], int]:
    """Turn Presidio results for ``text`` into hashed findings; return them and a drop count.

    Used both by the scan and by anything comparing with a plain ``AnalyzerEngine.analyze``
    loop, so both sides hash identically. Labels Lethe does not index are ignored; NER spans
    overlapping a pattern finding are dropped; values that fail normalisation (an invalid
    phone number, a name of punctuation) are counted, not raised.
    """
    typed = []
    for result in results:
        kind = PRESIDIO_TO_ENTITY.get(result.entity_type)
        if kind is not None:
            typed.append((kind, result))
    pattern_spans = [(r.start, r.end) for kind, r in typed if kind not in _NER_ENTITIES]
    regions = [default_region, *(r for r in phone_regions if r != default_region)]
    findings: dict[tuple[str, int, int], Finding] = {}
    dropped = 0
    for kind, result in typed:
        if kind in _NER_ENTITIES and any(
            result.start < end and start < result.end for start, end in pattern_spans
        ):
            continue
        value = text[result.start : result.end]
        try:
            if kind is EntityType.PHONE:
                normalised = _normalise_phone_any(value, regions)
            else:
                normalised = normalise_value(kind, value, default_region=default_region)
            sorted_hash = hasher.hash(kind, name_token_sorted(value)) if kind is EntityType.PERSON else None
        except NormalisationError:
            dropped += 1
            continue
        metadata = result.recognition_metadata or {}
        finding = Finding(
            entity_type=kind.value,
            start=result.start,
            end=result.end,
            score=round(float(result.score), 4),
            recogniser=str(metadata.get("recognizer_name", "")),
            value_hash=hasher.hash(kind, normalised),
            sorted_hash=sorted_hash,
        )
        key = (finding.entity_type, finding.start, finding.end)
        if key not in findings or findings[key].score < finding.score:
            findings[key] = finding
    ordered = sorted(findings.values(), key=lambda f: (f.start, f.end, f.entity_type))
    return tuple(ordered), dropped


def scan_records(
    records: Iterable[SourceRecord],
    *,
    hasher: KeyedHasher,
    settings: ScanSettings | None = None,
    engine: ScanEngine | None = None,
) -> list[RecordFindings]:
    """Scan ``records`` in this process and return their hashed findings, in order.

    ``engine`` defaults to this process's cached engine for ``settings``; pass one to reuse an
    engine built elsewhere (a Celery worker's, a test fixture's).
    """
    engine = engine or get_scan_engine(settings or ScanSettings())
    return engine.scan(records, hasher=hasher)


# --- parallel scanning ------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(settings: ScanSettings, hasher: KeyedHasher) -> None:
    _WORKER["engine"] = get_scan_engine(settings)
    _WORKER["hasher"] = hasher


def _scan_chunk(chunk: list[tuple[str, str, int]]) -> tuple[list[RecordFindings], float]:
    started = time.process_time()
    records = [SourceRecord(record_id=r, text=t, line_no=n) for r, t, n in chunk]
    findings = _WORKER["engine"].scan(records, hasher=_WORKER["hasher"])
    return findings, time.process_time() - started


def _ready(_: int) -> int:
    return os.getpid()


class ScanPool:
    """Worker processes that each hold a loaded engine, for scanning many chunks in parallel.

    Use as a context manager. Processes are forked where the platform allows, so an engine
    already loaded in the parent is shared instead of loaded again. Not usable inside a
    daemonic process (a Celery prefork child): there, run ``scan_records`` per chunk task.
    """

    def __init__(
        self,
        *,
        hasher: KeyedHasher,
        settings: ScanSettings | None = None,
        processes: int = 2,
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        if multiprocessing.current_process().daemon:
            raise ScanPoolError(
                "a ScanPool cannot start worker processes inside a daemonic process (a Celery "
                "prefork child): call scan_records for each chunk instead"
            )
        self.settings = settings or ScanSettings()
        self.processes = processes
        #: CPU seconds the workers spent scanning, summed over chunks (for benchmarks).
        self.cpu_seconds = 0.0
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self._pool = context.Pool(processes, initializer=_init_worker, initargs=(self.settings, hasher))

    def __enter__(self) -> ScanPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wait_ready(self) -> None:
        """Block until the workers have loaded their engines (so timings exclude loading)."""
        self._pool.map(_ready, range(self.processes * 4), chunksize=1)

    def scan(self, records: Iterable[SourceRecord], *, chunk_size: int = 250) -> list[RecordFindings]:
        """Scan ``records`` across the workers; return the findings in the records' order."""
        if chunk_size < 1:
            raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
        chunks: list[list[tuple[str, str, int]]] = []
        current: list[tuple[str, str, int]] = []
        for record in records:
            current.append((record.record_id, record.text, record.line_no))
            if len(current) >= chunk_size:
                chunks.append(current)
                current = []
        if current:
            chunks.append(current)
        out: list[RecordFindings] = []
        for findings, cpu_seconds in self._pool.imap(_scan_chunk, chunks):
            out.extend(findings)
            self.cpu_seconds += cpu_seconds
        return out

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.close()
        self._pool.join()


def scan_chunk_parallel(
    records: Iterable[SourceRecord],
    *,
    hasher: KeyedHasher,
    settings: ScanSettings | None = None,
    processes: int = 2,
    chunk_size: int = 250,
) -> list[RecordFindings]:
    """Scan ``records`` with ``processes`` worker processes; return findings in order.

    Starts and stops a ``ScanPool``; to scan many chunks, keep one ``ScanPool`` open instead.
    """
    with ScanPool(hasher=hasher, settings=settings, processes=processes) as pool:
        return pool.scan(records, chunk_size=chunk_size)


def count_findings(results: Iterable[RecordFindings]) -> dict[str, int]:
    """Return how many findings of each entity type ``results`` hold (for progress and logs);
    match keys are counted together under ``MATCH_KEYS``."""
    counts: Counter[str] = Counter()
    for record in results:
        counts.update(finding_count_label(f.entity_type, f.recogniser) for f in record.findings)
    return dict(counts)
