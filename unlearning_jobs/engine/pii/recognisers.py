"""Lethe's own Presidio recognisers: street addresses, account ids and dates of birth.

Presidio ships no recogniser for these, and a generic date recogniser would flag every date in
a support ticket: a date of birth is found only where the text says it is one ("born on…",
"DOB:"), and only the date itself is returned so its normalised form matches what the subject
gives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

__all__ = [
    "RegexGroupRecognizer",
    "street_address_recogniser",
    "account_id_recogniser",
    "date_of_birth_recogniser",
    "STREET_ADDRESS_PATTERN",
    "DEFAULT_ACCOUNT_ID_PATTERNS",
    "DATE_OF_BIRTH_PATTERN",
]

_STREET_SUFFIXES = (
    "street|st|road|rd|avenue|ave|lane|ln|drive|dr|court|ct|place|pl|square|sq|boulevard|"
    "blvd|way|close|crescent|cres|gardens|gdns|grove|terrace|parkway|pkwy|highway|hwy|hill|"
    "row|walk|mews|park|circle|trail|green|parade|rise|view"
)
#: A house number, one to four capitalised words and a street suffix: "221B Baker Street".
STREET_ADDRESS_PATTERN = (
    r"\b\d{1,5}[A-Za-z]?,?(?:\s+[A-Z][A-Za-z'\-]+){1,4}\s+(?i:" + _STREET_SUFFIXES + r")\b\.?"
)

#: Account ids as customer-support text writes them: "ACC-123456", "CUST-00042".
DEFAULT_ACCOUNT_ID_PATTERNS: tuple[str, ...] = (r"\b(?:ACC|CUST)-\d{4,12}\b",)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE = (
    r"\d{4}-\d{1,2}-\d{1,2}"
    r"|\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}"
    r"|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r",?\s+(?:in\s+the\s+year\s+)?\d{4}"
    r"|" + _MONTH + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}"
)
#: A date announced as a birth date; group 1 is the date alone.
DATE_OF_BIRTH_PATTERN = (
    r"(?i:\b(?:born(?:\s+on)?(?:\s+the)?|d\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|birthday)"
    r"(?:\s+(?:is|was))?\s*[:\-]?\s*)(?i:(" + _DATE + r"))"
)


class RegexGroupRecognizer(LocalRecognizer):
    """Report each match of a regex (or its group 1, when it has one) as one entity.

    Presidio's ``PatternRecognizer`` reports the whole match; Lethe needs the group alone for
    dates of birth, and a plain ``re.finditer`` is faster than Presidio's per-pattern machinery.
    """

    def __init__(
        self,
        *,
        name: str,
        entity: str,
        patterns: Sequence[str],
        score: float,
        flags: int = 0,
        supported_language: str = "en",
    ) -> None:
        if not patterns:
            raise ValueError(f"recogniser {name!r} needs at least one pattern")
        if not 0.0 < score <= 1.0:
            raise ValueError(f"recogniser {name!r} score must be in (0, 1], got {score}")
        self.patterns = tuple(patterns)
        self.score = score
        self._compiled = tuple(re.compile(pattern, flags) for pattern in self.patterns)
        super().__init__(
            supported_entities=[entity],
            supported_language=supported_language,
            name=name,
        )

    def load(self) -> None:
        """Compile nothing further: the patterns are compiled in ``__init__``."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Return one result per regex match, spanning group 1 where the pattern has one."""
        entity = self.supported_entities[0]
        if entities and entity not in entities:
            return []
        results: list[RecognizerResult] = []
        for compiled in self._compiled:
            group = 1 if compiled.groups else 0
            for match in compiled.finditer(text):
                start, end = match.span(group)
                results.append(
                    RecognizerResult(
                        entity_type=entity,
                        start=start,
                        end=end,
                        score=self.score,
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                        },
                    )
                )
        return results


def street_address_recogniser() -> RegexGroupRecognizer:
    """Return the street-address recogniser (entity ``STREET_ADDRESS``)."""
    return RegexGroupRecognizer(
        name="LetheStreetAddressRecognizer",
        entity="STREET_ADDRESS",
        patterns=(STREET_ADDRESS_PATTERN,),
        score=0.6,
    )


def account_id_recogniser(patterns: Sequence[str] = DEFAULT_ACCOUNT_ID_PATTERNS) -> RegexGroupRecognizer:
    """Return the account-id recogniser (entity ``ACCOUNT_ID``) for the given regexes."""
    return RegexGroupRecognizer(
        name="LetheAccountIdRecognizer", entity="ACCOUNT_ID", patterns=patterns, score=0.9
    )


def date_of_birth_recogniser() -> RegexGroupRecognizer:
    """Return the date-of-birth recogniser (entity ``DATE_OF_BIRTH``)."""
    return RegexGroupRecognizer(
        name="LetheDateOfBirthRecognizer",
        entity="DATE_OF_BIRTH",
        patterns=(DATE_OF_BIRTH_PATTERN,),
        score=0.85,
    )
