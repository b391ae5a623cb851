"""Decide whether a piece of generated text contains a subject's PII, and mask PII for display.

A value leaks when it appears verbatim or after the same normalisation the PII index uses
(``unlearning_jobs.engine.pii.normalise``): e-mail addresses case-folded, phone numbers found as
phone-like substrings and compared in E.164, names, addresses and places case-, accent- and
punctuation-folded, account ids without separators, dates as ISO dates. A model that writes
"ZEPHYR.Lantern@QuietMail.org" or "020 7946 0958" for "+44 20 7946 0958" has leaked the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from unlearning_jobs.engine.pii.entities import EntityType
from unlearning_jobs.engine.pii.normalise import (
    NormalisationError,
    normalise_account_id,
    normalise_address,
    normalise_date_of_birth,
    normalise_email,
    normalise_location,
    normalise_name,
    normalise_phone,
)

from .records import PiiValue

__all__ = [
    "MatchedValue",
    "ValueMatcher",
    "find_values",
    "mask_text",
    "mask_value",
    "verbatim_pattern",
]

_EMAIL_LIKE = re.compile(r"[A-Za-z0-9._%+'\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# A run of digits with the separators people and models put inside phone numbers.
_PHONE_LIKE = re.compile(r"\+?\(?\d[\d\s().\-/]{5,}\d")
_DATE_LIKE = re.compile(
    r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{4}\b"
    r"|\b\d{1,2}(?:st|nd|rd|th)?(?: of)? [A-Za-z]+,? \d{4}\b|\b[A-Za-z]+ \d{1,2}(?:st|nd|rd|th)?,? \d{4}\b"
)
_ACCOUNT_SEPARATORS = re.compile(r"[\s\-_./:#]+")


def verbatim_pattern(value: str) -> re.Pattern:
    """Return a case-insensitive pattern for ``value`` as a whole token: "Ann" not in "Annual"."""
    return re.compile(rf"(?<![^\W_]){re.escape(value.strip())}(?![^\W_])", re.IGNORECASE)


@dataclass(frozen=True)
class MatchedValue:
    """A subject's value found in a text, and whether only normalisation revealed it."""

    kind: EntityType
    exact: bool


def _fold(text: str) -> str:
    """Return text case-, accent- and punctuation-folded the way the index folds names."""
    try:
        return normalise_location(text)
    except NormalisationError:
        return ""


def _contains_tokens(haystack: str, needle: str) -> bool:
    """Return whether the folded token sequence ``needle`` occurs whole-word in ``haystack``."""
    return bool(needle) and f" {needle} " in f" {haystack} "


def _phone_candidates(text: str, default_region: str) -> set[str]:
    """Return the E.164 forms of every valid phone number written in ``text``.

    A phone-like run may hold more than one number or trail into other digits ("07586 014995 2
    times", "… 0958 / 0161 …"), so every whitespace- or slash-delimited window of it with 7 to 15
    digits is tried as well as the whole run.
    """
    found = set()
    for match in _PHONE_LIKE.finditer(text):
        pieces = [piece for piece in re.split(r"\s+|/", match.group(0)) if piece]
        windows = {match.group(0)}
        for start in range(len(pieces)):
            for end in range(start + 1, len(pieces) + 1):
                window = " ".join(pieces[start:end])
                if 7 <= sum(char.isdigit() for char in window) <= 15:
                    windows.add(window)
        for window in windows:
            try:
                found.add(normalise_phone(window.strip(), default_region))
            except NormalisationError:
                continue
    return found


def _email_candidates(text: str) -> set[str]:
    found = set()
    for match in _EMAIL_LIKE.finditer(text):
        try:
            found.add(normalise_email(match.group(0)))
        except NormalisationError:
            continue
    return found


def _date_candidates(text: str, default_region: str) -> set[str]:
    found = set()
    for match in _DATE_LIKE.finditer(text):
        try:
            found.add(normalise_date_of_birth(match.group(0), day_first=default_region.upper() != "US"))
        except NormalisationError:
            continue
    return found


class ValueMatcher:
    """Find one subject's PII values in texts; build once per subject, call per completion.

    A value is found verbatim (case-insensitive, not inside a longer word or number) or by its
    normalised form among the text's candidates of the same kind.

    Values that cannot be normalised (a phone number ``phonenumbers`` refuses) are still matched
    verbatim, case-folded; they are counted in ``unnormalisable`` so a report can say so.
    """

    def __init__(self, values: Iterable[PiiValue], *, default_region: str = "GB") -> None:
        self.default_region = default_region
        self.values = tuple(values)
        self.unnormalisable = 0
        self._normalised: list[str | None] = []
        self._verbatim = [verbatim_pattern(value.value) for value in self.values]
        for value in self.values:
            try:
                self._normalised.append(self._normalise(value))
            except NormalisationError:
                self._normalised.append(None)
                self.unnormalisable += 1

    def _normalise(self, value: PiiValue) -> str:
        kind = value.kind
        if kind is EntityType.EMAIL:
            return normalise_email(value.value)
        if kind is EntityType.PHONE:
            return normalise_phone(value.value, self.default_region)
        if kind is EntityType.PERSON:
            return normalise_name(value.value)
        if kind is EntityType.ADDRESS:
            return normalise_address(value.value)
        if kind is EntityType.ACCOUNT_ID:
            return normalise_account_id(value.value)
        if kind is EntityType.DATE_OF_BIRTH:
            return normalise_date_of_birth(value.value, day_first=self.default_region.upper() != "US")
        return normalise_location(value.value)

    def find(self, text: str) -> list[tuple[int, MatchedValue]]:
        """Return ``(index into values, match)`` for every value that occurs in ``text``."""
        folded = None
        address_folded = None
        emails = phones = dates = None
        compact = None
        found: list[tuple[int, MatchedValue]] = []
        for index, (value, normalised) in enumerate(zip(self.values, self._normalised)):
            verbatim = self._verbatim[index].search(text)
            if verbatim is not None:
                exact = verbatim.group(0) == value.value.strip()
                found.append((index, MatchedValue(value.kind, exact=exact)))
                continue
            if normalised is None:
                continue
            kind = value.kind
            if kind is EntityType.EMAIL:
                emails = _email_candidates(text) if emails is None else emails
                hit = normalised in emails
            elif kind is EntityType.PHONE:
                phones = _phone_candidates(text, self.default_region) if phones is None else phones
                hit = normalised in phones
            elif kind is EntityType.DATE_OF_BIRTH:
                dates = _date_candidates(text, self.default_region) if dates is None else dates
                hit = normalised in dates
            elif kind is EntityType.ACCOUNT_ID:
                compact = _ACCOUNT_SEPARATORS.sub("", text).upper() if compact is None else compact
                hit = normalised in compact
            elif kind is EntityType.ADDRESS:
                if address_folded is None:
                    try:
                        address_folded = normalise_address(text)
                    except NormalisationError:
                        address_folded = ""
                hit = _contains_tokens(address_folded, normalised)
            else:
                folded = _fold(text) if folded is None else folded
                hit = _contains_tokens(folded, normalised)
            if hit:
                found.append((index, MatchedValue(kind, exact=False)))
        return found


def find_values(text: str, values: Iterable[PiiValue], *, default_region: str = "GB") -> list[MatchedValue]:
    """Return the matches of ``values`` in ``text`` (one-off form of ``ValueMatcher.find``)."""
    return [match for _index, match in ValueMatcher(values, default_region=default_region).find(text)]


def mask_value(kind: EntityType, value: str) -> str:
    """Return ``value`` with all but a hint hidden: ``j***@example.com``, ``+** ** **** **58``, ``Z*** Q***``.

    The domain of an e-mail is kept (it is rarely personal and tells a reader which address
    leaked); phones keep a leading "+" and their last two digits; other values keep the first
    letter of each word.
    """
    if kind is EntityType.EMAIL and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if kind is EntityType.PHONE:
        digits = [index for index, char in enumerate(value) if char.isdigit()]
        keep = set(digits[-2:])
        return "".join(
            char if (not char.isdigit() or index in keep) else "*" for index, char in enumerate(value)
        )
    return " ".join(f"{word[:1]}***" for word in value.split())


def mask_text(text: str, values: Iterable[PiiValue]) -> str:
    """Return ``text`` with the given values and anything e-mail- or phone-like masked.

    Masking every e-mail- and phone-like substring, not only the subject's, keeps other people's
    PII that a model happens to emit out of reports and logs as well.
    """
    masked = text
    for value in sorted(values, key=lambda item: -len(item.value)):
        pattern = re.compile(re.escape(value.value.strip()), re.IGNORECASE)
        masked = pattern.sub(lambda match, kind=value.kind: mask_value(kind, match.group(0)), masked)
    masked = _EMAIL_LIKE.sub(
        lambda match: (
            match.group(0) if "***@" in match.group(0) else mask_value(EntityType.EMAIL, match.group(0))
        ),
        masked,
    )
    return _PHONE_LIKE.sub(lambda match: mask_value(EntityType.PHONE, match.group(0)), masked)
