"""Find spans of a text whose keyed hash is in a rule table, in one pass whatever the table's size.

Every candidate span (an e-mail, a phone-like digit run, a window of words that may be a name,
an address or an account id) is normalised as the PII index normalises values, hashed with the
index's key, and looked up with ``hash in table``. Nothing iterates over the rules, so a
deployment with 100,000 suppressed subjects costs the same per response as one with ten; the
cost grows only with the length of the text.

Format variants meet the rules' normal forms here:

* e-mails in any case, with spaces around "@", and written as "john dot smith at example dot
  com" or "john(at)example(dot)com";
* phones with spaces, dashes, dots or brackets, "+44", "0044", "(0)" or a national "0";
* names in any case, with or without accents, in any order ("Smith, John"), by initial ("J.
  Smith", "Smith, J.") or nickname ("Bill" for "William"): the rules hold the token-sorted form
  of every variant, so one hash of the sorted window covers every order (windows with an
  initial are hashed in order, so "J. Lucas" is not "Lucas J.");
* addresses in any case, with abbreviations ("St", "Rd") and any commas or line breaks;
* account ids with or without separators ("ACC-123456", "acc 123456").
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterator
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata

from ..pii.entities import EntityType
from ..pii.known_names import is_known_name
from ..pii.match_keys import (
    email_keys,
    house_number_address_spans,
    name_keys,
    phone_keys,
    typed_street_keys,
)
from ..pii.normalise import (
    NAME_PARTICLES,
    NormalisationError,
    is_particle_spelling,
    normalise_account_id,
    normalise_address,
    normalise_date_of_birth,
    normalise_email,
    normalise_name,
)
from .digest import KeyedDigest
from .variants import (
    FUZZY_PREFIX,
    FUZZY_WORD_PREFIX,
    MIN_FUZZY_WORD,
    MIN_LETTERS_LOCAL,
    TOWN_PREFIX,
    joined_name_form,
    local_part_key,
    mailbox_key,
    original_position,
    phone_tail_key,
    spelt_digit_runs,
    spelt_name_keys,
    text_fuzzy_keys,
    with_house_numbers_in_digits,
)

__all__ = [
    "Detection",
    "Detector",
    "PreparedText",
    "MAX_NAME_TOKENS",
    "MAX_ADDRESS_TOKENS",
    "STOPWORDS",
    "STREET_WORDS",
    "is_house_number",
    "phone_forms",
]

#: Longest name window: longer names are still found through their shorter variants
#: ("maria lopez" for "Maria del Carmen Garcia Lopez").
MAX_NAME_TOKENS = 4
#: Longest address window hashed from a house number onwards.
MAX_ADDRESS_TOKENS = 12
_MAX_LOCATION_TOKENS = 3

#: Function words that are neither given names nor surnames: a name window holding one is
#: skipped, which removes most windows of ordinary prose before any hashing. Single letters are
#: absent on purpose (initials: "A. Smith").
STOPWORDS: frozenset[str] = frozenset(
    """
    about above after again against all also am an and any are as at be because been before
    being below between both but by can cannot could did do does doing done down during each
    either else ever every for from further had has have having he her here hers herself him
    himself his how however if in into is it its itself just let me more most much must my
    myself no nor not now of off on once only or other our ours ourselves out over own please
    same she should since so some such than thank thanks that the their theirs them themselves
    then there these they this those though through thus to too under until up upon us very
    was we were what whatever when where whether which while who whom whose why with within
    without would yes yet you your yours yourself yourselves
    email mail phone number address account tel mobile call contact
    """.split()
)

#: Street-type words after ``normalise_address`` (the street recogniser's suffixes, expanded).
STREET_WORDS: frozenset[str] = frozenset(
    """
    street road avenue lane drive court place square boulevard way close crescent gardens
    grove terrace parkway highway hill row walk mews park circle trail green parade rise view
    """.split()
)

_COMBINING = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_WORD = rf"(?:[^\W_]|[{_COMBINING}])+"
#: A word: letters and digits (with combining accents), apostrophes inside ("O'Brien").
_TOKEN = re.compile(rf"{_WORD}(?:['\u2019\u02bc]{_WORD})*")
#: Between the words of a name: spaces, commas, dots, hyphens, and the apostrophe of a Dutch
#: particle ("van 't Hof", "G. 't Hart", where the word read is "t"), also where a hurried
#: hand puts it after the letter ("van t' Hof").
_NAME_GAP = re.compile(r"[\s,.\-_]{1,3}|[,.]?\s['\u2019\u02bc]|['\u2019\u02bc]\s")
_APOSTROPHES = ("'", "\u2019", "\u02bc")
_ADDRESS_GAP = re.compile(r"[\s,.\-/;:]{1,4}")
_ACCOUNT_GAP = re.compile(r"[\s\-_./:#]{1,2}")
_SPACE = re.compile(r"[ \t]{1,2}")
_DIGIT = re.compile(r"\d")
_YEAR = re.compile(r"\d{4}")
_WORD_KINDS = frozenset({EntityType.PERSON, EntityType.ADDRESS, EntityType.ACCOUNT_ID, EntityType.LOCATION})
_HOUSE_NUMBER = re.compile(r"\d{1,5}[a-z]?")
#: A house number as written in text: no leading zero, which phone and account digits have.
_TEXT_HOUSE_NUMBER = re.compile(r"[1-9]\d{0,4}[A-Za-z]?")

_AT = r"(?:\s*@\s*|\s*[(\[{]\s*at\s*[)\]}]\s*|\s+at\s+)"
_DOT = r"(?:\.|\s*[(\[{]\s*dot\s*[)\]}]\s*|\s+dot\s+)"
_LOCAL_ATOM = r"[A-Za-z0-9_%+\-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
#: An "@" or its obfuscations; e-mails are grown outwards from each one, so a text without any
#: costs one scan.
_AT_ANYWHERE = re.compile(_AT, re.IGNORECASE)
_DOMAIN = re.compile(rf"{_LABEL}(?:{_DOT}{_LABEL})+", re.IGNORECASE)
_LOCAL_AT_END = re.compile(rf"(?<![A-Za-z0-9_%+\-.])(?:{_LOCAL_ATOM}{_DOT})*{_LOCAL_ATOM}\Z", re.IGNORECASE)
_DOT_SEPARATOR = re.compile(_DOT, re.IGNORECASE)
_LOCAL_REACH = 128

#: A digit run with the separators phone numbers are written with.
_PHONE = re.compile(r"(?<![\w+])(?:\+|\(\+)?\(?\d[\d \t\-().\/]{5,24}\d(?!\w)")
_PHONE_GROUP = re.compile(r"\+?\(?\d+\)?")
_TRUNK_IN_BRACKETS = re.compile(r"\(\s*0\s*\)")
_NON_DIGIT = re.compile(r"\D")
#: A local part written alone ("jane.doe87"): letters, digits and . _ % + - inside.
_LOCAL_CANDIDATE = re.compile(r"(?<![\w.%+\-@])[A-Za-z0-9][A-Za-z0-9._%+\-]{4,62}[A-Za-z0-9](?![\w@])")
#: Around a house number, the text that locating's address keys read (six words either side).
_ADDRESS_REACH = 80
#: "local at provider" with no top-level domain after it ("dmilne at gmail", "jmenard@free").
_MAILBOX_LOCAL = re.compile(r"(?<![\w.%+\-@])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,62}[A-Za-z0-9]\Z")
_MAILBOX_PROVIDER = re.compile(
    r"([A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)(?![\w\-]|\s*(?:\.|[(\[]?\s*dot\b)\s*[A-Za-z])",
    re.IGNORECASE,
)
#: A phone's last digits as people cite them ("the number ending in 0958", "whose last four
#: digits are 0958"): English phrasing only.
_PHONE_TAIL = re.compile(
    r"\b(?:end(?:s|ing)(?:\s+(?:in|with))?|last\s+(?:four|4)\s+digits(?:\s+(?:are|of|is))?)"
    r"\s*:?\s*(\d{4})(?![\w])",
    re.IGNORECASE,
)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE = re.compile(
    r"\b(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}"
    r"|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r",?\s+\d{4}"
    r"|" + _MONTH + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4})\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Detection:
    """A span of the text whose normalised value hashed to a key of the rule table."""

    entity_type: EntityType
    start: int
    end: int
    value_hash: str


def is_house_number(normalised_token: str) -> bool:
    """Return whether an address token can be a house number ("12", "221b")."""
    return _HOUSE_NUMBER.fullmatch(normalised_token) is not None


@lru_cache(maxsize=64)
def _region_prefixes(region: str) -> tuple[str, str, str]:
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        raise ValueError(f"phone region {region!r} is unknown to phonenumbers")
    international = metadata.international_prefix or ""
    if not international.isdigit():
        international = metadata.preferred_international_prefix or "00"
    country_code = str(phonenumbers.country_code_for_region(region))
    return country_code, metadata.national_prefix or "", international


def phone_forms(value: str, regions: tuple[str, ...]) -> set[str]:
    """Return the E.164 forms ``value`` can stand for in any of ``regions``.

    ``normalise_phone`` (phonenumbers) takes 40–90 µs a call; this reads the country code and
    national and international prefixes from phonenumbers' metadata and costs a few µs, so every
    digit run of a response can be tried in every region. It does not judge validity: a form
    that is not a real number simply matches no rule, because rules hold valid numbers only.
    """
    compact = _TRUNK_IN_BRACKETS.sub("", value)
    digits = _NON_DIGIT.sub("", compact)
    if not 7 <= len(digits) <= 17:
        return set()
    if compact.lstrip("( ").startswith("+"):
        return {"+" + digits} if len(digits) <= 15 else set()
    forms: set[str] = set()
    for region in regions:
        country_code, national, international = _region_prefixes(region)
        if digits.startswith(international):
            forms.add("+" + digits[len(international) :])
            continue
        local = digits[len(national) :] if national and digits.startswith(national) else digits
        forms.add(f"+{country_code}{local}")
        if digits.startswith(country_code):
            forms.add("+" + digits)
    return {form for form in forms if 8 <= len(form) <= 16}


def _fold_name_token(token: str) -> str:
    """Return the token as ``normalise_name`` folds it; ASCII words skip the Unicode work."""
    if token.isascii() and token.isalnum():
        return token.lower()
    try:
        return normalise_name(token)
    except NormalisationError:
        return ""


def _name_end(token: tuple[int, int, str]) -> int:
    """Return where a name ending in ``token`` ends, leaving a possessive "'s" in the text."""
    _, end, text = token
    return end - 2 if len(text) > 2 and text[-2] in "'\u2019\u02bc" and text[-1] in "sS" else end


def _foreign_phone(run: str) -> bool:
    """Return whether a digit run is surely a phone number: "+" or "0" and nine digits or more,
    or nine digits in three groups or more. Order and account numbers rarely look so; a run that is a phone
    but matched no rule is someone else's number."""
    digits = len(_NON_DIGIT.sub("", run))
    lead = run.lstrip("( ")[:1]
    return (lead in "+0" and digits >= 9) or (digits >= 9 and len(run.split()) >= 3)


def _initial_opens_a_name(words: "_Words", index: int, usable: list[bool]) -> bool:
    """Return whether the word at ``index``, one capital letter alone, is followed after a plain
    space (no full stop) by a capitalised name word: then it is a particle ("Ó Dálaigh") or a
    middle initial ("Jane D Smith") of a longer name, not the initial of a family name ending
    the name. A particle written as a word ("Maarten 't Hart") is not a capital letter alone."""
    following = index + 1
    letter = words.tokens[index][2]
    return (
        len(letter) == 1
        and letter.isupper()
        and following < words.count
        and words.kinds[index][3]
        and usable[following]
        and _capitalised(words.tokens[following][2])
    )


def _capitalised(token: str) -> bool:
    return token[:1].isupper() and token[:1].isalpha()


def _in_zones(position: int, zones) -> bool:
    return any(start <= position < end for start, end in zones)


def _capitalised_runs(words: "_Words", zones) -> Iterator[tuple[int, int]]:
    """Yield the first and last index of each run of two or more capitalised words (particles
    inside), joined by name gaps and outside ``zones``: where names are written in text."""
    tokens, count, kinds = words.tokens, words.count, words.kinds
    i = 0
    while i < count:
        if not _capitalised(tokens[i][2]) or _in_zones(tokens[i][0], zones):
            i += 1
            continue
        j = i
        while (
            j + 1 < count
            and kinds[j][0]
            and not _in_zones(tokens[j + 1][0], zones)
            and (_capitalised(tokens[j + 1][2]) or is_particle_spelling(tokens[j + 1][2]))
        ):
            j += 1
        if j > i:
            yield i, j
        i = j + 1


_SEGMENT_BREAK = re.compile(r"[,;\n]")
_SENTENCE_END = re.compile(r"[.?!](?:\s|$)|[?!]")
#: Words that open a flat, floor or building part after a street, not a place.
_UNIT_WORDS = frozenset(
    "flat apt app appt apartment unit suite floor int interno scala piano bajo piso planta "
    "puerta whg wohnung etage og hinterhaus vorderhaus bus box".split()
)


def _following_segments(text: str, end: int, count: int = 2) -> Iterator[str]:
    """Yield up to ``count`` segments after the segment break that follows ``end`` within its
    sentence; nothing when the sentence ends first."""
    sentence = _SENTENCE_END.search(text, end)
    limit = sentence.start() if sentence else len(text)
    position = end
    for _ in range(count):
        brk = _SEGMENT_BREAK.search(text, position, limit)
        if brk is None:
            return
        nxt = _SEGMENT_BREAK.search(text, brk.end(), limit)
        stop = nxt.start() if nxt else limit
        yield text[brk.end() : stop]
        if nxt is None:
            return
        position = nxt.start()


def _fold_address_token(token: str) -> str:
    try:
        return normalise_address(token)
    except NormalisationError:
        return ""


@lru_cache(maxsize=512)
def _gap_kind(gap: str) -> tuple[bool, bool, bool, bool]:
    """Return whether a gap between two words may join them in a name, an address, an account
    id, and whether it is a plain space. Gaps are punctuation and spaces, never personal data."""
    return (
        _NAME_GAP.fullmatch(gap) is not None,
        _ADDRESS_GAP.fullmatch(gap) is not None,
        _ACCOUNT_GAP.fullmatch(gap) is not None,
        _SPACE.fullmatch(gap) is not None,
    )


class _Words:
    """The words of one text with what every detector needs of them, computed once."""

    __slots__ = ("tokens", "count", "gaps", "kinds", "has_digit", "_folded")

    def __init__(self, text: str) -> None:
        self.tokens = [(*m.span(), m.group()) for m in _TOKEN.finditer(text)]
        self.count = count = len(self.tokens)
        tokens = self.tokens
        self.gaps = [text[tokens[i][1] : tokens[i + 1][0]] for i in range(count - 1)]
        self.kinds = [
            _gap_kind(gap) if len(gap) <= 4 else (False, False, False, False) for gap in self.gaps
        ] + [(False, False, False, False)]
        self.gaps.append("")
        self.has_digit = [_DIGIT.search(token) is not None for _, _, token in tokens]
        self._folded: list[str] | None = None

    @property
    def folded(self) -> list[str]:
        """Each word as a name is folded, once per text (name windows, quasi-identifiers, misspellings)."""
        if self._folded is None:
            self._folded = [_fold_name_token(token) for _, _, token in self.tokens]
        return self._folded


class PreparedText:
    """A text whose words are split on first use and kept for the next search of it."""

    __slots__ = ("text", "_words")

    def __init__(self, text: str) -> None:
        self.text = text
        self._words: _Words | None = None

    @property
    def words(self) -> _Words:
        if self._words is None:
            self._words = _Words(self.text)
        return self._words


class Detector:
    """Find rule hits in texts for a set of entity types; build one per guard and reuse it."""

    def __init__(
        self,
        *,
        digest: KeyedDigest,
        entity_types: frozenset[EntityType],
        phone_regions: tuple[str, ...] = ("GB", "US"),
        account_id_patterns: tuple[str, ...] = (),
    ) -> None:
        if not isinstance(digest, KeyedDigest):
            raise ValueError(f"digest must be a KeyedDigest, got {type(digest).__name__}")
        self.entity_types = frozenset(EntityType(kind) for kind in entity_types)
        self.phone_regions = tuple(phone_regions)
        if not self.phone_regions:
            raise ValueError("at least one phone region is required")
        for region in self.phone_regions:
            _region_prefixes(region)
        self._day_first = self.phone_regions[0] != "US"
        try:
            self._account_patterns = tuple(
                re.compile(pattern, re.IGNORECASE) for pattern in account_id_patterns
            )
        except re.error as error:
            raise ValueError(f"an account id pattern is not a valid regex: {error}") from None
        self._hash = {kind: digest.for_type(kind) for kind in EntityType}

    def prepare(self, text: str) -> "PreparedText":
        """Return ``text`` with its words split once, for several ``find`` calls on it."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        return PreparedText(text)

    def find(
        self,
        text: "str | PreparedText",
        table: Container[str],
        *,
        kinds: frozenset[EntityType] | None = None,
        foreign: set[EntityType] | None = None,
        tails: list[Detection] | None = None,
        spelt: list[Detection] | None = None,
    ) -> list[Detection]:
        """Return every span of ``text`` whose hash is in ``table``, sorted by position.

        ``kinds`` narrows the search to some of the detector's entity types (the guard looks
        for quasi-identifiers only once a subject is present). ``foreign``, when given, gains
        EMAIL, PHONE or ADDRESS where the text holds an e-mail address, a phone number or a
        postal address (a house number beside a street) that matched no rule: someone's, not a
        suppressed subject's (the guard uses it to tell namesakes). ``tails``, when given, gains
        each phone's last digits the text cites ("the number ending 0958"), and ``spelt``, when
        given and the text cites some, each name in it that spells a rule's e-mail local part
        ("KATHERINE WHITFIELD" for katherinewhitfield91@…): neither is a match by itself.
        """
        prepared = text if isinstance(text, PreparedText) else self.prepare(text)
        raw = prepared.text
        kinds = self.entity_types if kinds is None else self.entity_types & kinds
        hits: list[Detection] = []
        zones: list[tuple[int, int]] = []
        if kinds & {EntityType.EMAIL, EntityType.PERSON}:
            # Locating's e-mail keys: every address, plain or obfuscated. Their spans are also
            # where no name is read ("jane.doe@other.org" names the mailbox, not Jane Doe).
            found = email_keys(raw) if ("@" in raw or " at " in raw or "(at)" in raw or "[at]" in raw) else []
            # "Smith-Jones at Bill.Smith@Example.com": the " at " spelling can make an address of
            # the words before a real one; a span running into an "@" is not an address.
            found = [key for key in found if raw[key.end : key.end + 1] != "@"]
            zones = [(key.start, key.end) for key in found]
            if EntityType.EMAIL in kinds:
                own = list(self._emails(raw, table))
                hits.extend(own)
                hits.extend(self._keyed(EntityType.EMAIL, found, table))
                hits.extend(self._local_parts(raw, zones, table))
                hits.extend(self._mailboxes(raw, table))
                if foreign is not None and any(
                    not any(h.start < end and start < h.end for h in hits) for start, end in zones
                ):
                    foreign.add(EntityType.EMAIL)
        if EntityType.PHONE in kinds:
            phone_hits = list(self._phones(raw, table))
            phone_hits.extend(self._keyed(EntityType.PHONE, phone_keys(raw), table))
            phone_hits.extend(self._spelt_phones(raw, table))
            hits.extend(phone_hits)
            if foreign is not None:
                for match in _PHONE.finditer(raw):
                    if _foreign_phone(match.group()) and not any(
                        h.start < match.end() and match.start() < h.end for h in phone_hits
                    ):
                        foreign.add(EntityType.PHONE)
                        break
            if tails is not None:
                digest = self._hash[EntityType.PHONE]
                cited = [
                    Detection(EntityType.PHONE, m.start(1), m.end(1), digest(phone_tail_key(m.group(1))))
                    for m in _PHONE_TAIL.finditer(raw)
                ]
                tails.extend(cited)
                if cited and spelt is not None and EntityType.PERSON in kinds:
                    spelt.extend(self._spelt_names(prepared.words, table, zones))
        if EntityType.DATE_OF_BIRTH in kinds and _YEAR.search(raw):
            hits.extend(self._dates(raw, table))
        if kinds & _WORD_KINDS:
            words = prepared.words
            if EntityType.PERSON in kinds or EntityType.LOCATION in kinds:
                hits.extend(self._names(words, table, kinds, zones))
            if EntityType.PERSON in kinds:
                hits.extend(self._shared_names(raw, words, table, zones))
                hits.extend(self._joined_names(words, table, zones))
            if EntityType.ADDRESS in kinds:
                address_hits = list(self._addresses(words, table))
                address_hits.extend(self._worded_addresses(raw, table))
                named = any(hit.entity_type is EntityType.PERSON for hit in hits)
                address_hits.extend(
                    self._shared_addresses(raw, words, table, foreign, address_hits, spare_names=named)
                )
                hits.extend(address_hits)
            if EntityType.ACCOUNT_ID in kinds:
                hits.extend(self._account_ids(words, table))
        if EntityType.ACCOUNT_ID in kinds and self._account_patterns:
            hits.extend(self._account_patterns_found(raw, table))
        hits.sort(key=lambda hit: (hit.start, hit.end, hit.entity_type))
        return hits

    # --- locating's match keys and the wider forms (variants.py) --------------------------

    def _keyed(self, kind: EntityType, keys, table: Container[str]) -> Iterator[Detection]:
        """Look up locating's match keys, hashed as the PII index hashes them."""
        digest = self._hash[kind]
        for key in keys:
            value_hash = digest(key.hashed_text())
            if value_hash in table:
                yield Detection(kind, key.start, key.end, value_hash)

    def _local_parts(
        self, text: str, zones: list[tuple[int, int]], table: Container[str]
    ) -> Iterator[Detection]:
        """An e-mail's local part written alone; never one inside a whole address."""
        digest = self._hash[EntityType.EMAIL]
        # A zone's local part is someone's mailbox; its "domain" may be a bare local part that
        # the " at " spelling took for one ("write to them at jane.doe87").
        locals_ = []
        for z_start, z_end in zones:
            at = _AT_ANYWHERE.search(text, z_start, z_end)
            locals_.append((z_start, at.start() if at else z_end))
        for match in _LOCAL_CANDIDATE.finditer(text):
            start, end = match.span()
            candidate = match.group()
            if candidate.isalpha() and len(candidate) < MIN_LETTERS_LOCAL:
                continue  # no rule holds a short letters-only local part: prose words end here
            if any(z_start <= start < z_end for z_start, z_end in locals_):
                continue
            key = local_part_key(candidate)
            if key is not None and (value_hash := digest(key)) in table:
                yield Detection(EntityType.EMAIL, start, end, value_hash)

    def _worded_addresses(self, text: str, table: Container[str]) -> Iterator[Detection]:
        """A house number in English words before its street ("forty-one Wattle Avenue"), read
        by locating's typed street keys on the text with the number in digits."""
        rewritten = with_house_numbers_in_digits(text)
        if rewritten is None:
            return
        digits_text, replaced = rewritten
        digest = self._hash[EntityType.ADDRESS]
        seen: set[str] = set()
        # Only the street that follows each number word is read, not the whole text again.
        for new_start, _, _, _ in replaced:
            low = new_start
            for key in typed_street_keys(digits_text[low : low + _ADDRESS_REACH]):
                value_hash = digest(key.hashed_text())
                if value_hash in table and value_hash not in seen:
                    seen.add(value_hash)
                    start = original_position(low + key.start, replaced)
                    end = original_position(low + key.end, replaced, end=True)
                    yield Detection(EntityType.ADDRESS, start, end, value_hash)

    def _mailboxes(self, text: str, table: Container[str]) -> Iterator[Detection]:
        """A local part with its provider and no top-level domain ("dmilne at gmail"), read at
        each "@" or "at" so that "write to them at dmilne at gmail" is not lost to "them"."""
        if "@" not in text and " at " not in text.lower() and "(at)" not in text and "[at]" not in text:
            return
        digest = self._hash[EntityType.EMAIL]
        for at in _AT_ANYWHERE.finditer(text):
            local = _MAILBOX_LOCAL.search(text, max(0, at.start() - _LOCAL_REACH), at.start())
            provider = _MAILBOX_PROVIDER.match(text, at.end())
            if local is None or provider is None:
                continue
            value_hash = digest(mailbox_key(local.group(), provider.group(1)))
            if value_hash in table:
                yield Detection(EntityType.EMAIL, local.start(), provider.end(1), value_hash)

    def _spelt_phones(self, text: str, table: Container[str]) -> Iterator[Detection]:
        """Phones dictated in words ("oh two oh seven ...", "double seven", "zéro six")."""
        digest = self._hash[EntityType.PHONE]
        for start, end, digits in spelt_digit_runs(text):
            hashes = [digest(form) for form in phone_forms(digits, self.phone_regions)]
            hashes += [digest(key.hashed_text()) for key in phone_keys(digits)]
            hit = next((value_hash for value_hash in hashes if value_hash in table), None)
            if hit is not None:
                yield Detection(EntityType.PHONE, start, end, hit)

    def _shared_names(
        self, text: str, words: _Words, table: Container[str], zones: list[tuple[int, int]]
    ) -> Iterator[Detection]:
        """Locating's name keys, and misspelt names, on runs of capitalised words.

        Names in text are capitalised (lower-case ones are the windows' business); reading only
        runs of two or more capitalised words keeps this to a few words per response.
        """
        digest = self._hash[EntityType.PERSON]
        tokens = words.tokens
        for i, j in _capitalised_runs(words, zones):
            start, end = tokens[i][0], tokens[j][1]
            for key in name_keys(text[start:end]):
                value_hash = digest(key.hashed_text())
                if value_hash in table:
                    yield Detection(EntityType.PERSON, start + key.start, start + key.end, value_hash)
            yield from self._fuzzy_names(words, i, j, table)

    def _joined_names(
        self, words: _Words, table: Container[str], zones: list[tuple[int, int]]
    ) -> Iterator[Detection]:
        """A name with a space moved, lost or added after its given name ("Dolores IbáñezR uiz",
        "Sanne vander Berg"): a capitalised word of a suppressed name, then the words after it
        (any case, name gaps between) whose letters run together as the whole name's do."""
        digest = self._hash[EntityType.PERSON]
        tokens, count, kinds, folded = words.tokens, words.count, words.kinds, words.folded
        for i in range(count - 1):
            first = folded[i]
            if not (first.isalpha() and _capitalised(tokens[i][2])) or _in_zones(tokens[i][0], zones):
                continue
            if digest(FUZZY_WORD_PREFIX + first) not in table:
                continue  # no suppressed name begins with this word
            parts = [first]
            for j in range(i + 1, min(i + MAX_NAME_TOKENS + 1, count)):
                if not kinds[j - 1][0] or _in_zones(tokens[j][0], zones):
                    break
                parts.append(folded[j])
                form = joined_name_form(parts)
                if form is not None and (value_hash := digest(form)) in table:
                    yield Detection(EntityType.PERSON, tokens[i][0], _name_end(tokens[j]), value_hash)
                    break

    def _spelt_names(
        self, words: _Words, table: Container[str], zones: list[tuple[int, int]]
    ) -> Iterator[Detection]:
        """Names on runs of capitalised words whose letters spell a rule's e-mail local part.

        Read only where the text cites a phone's last digits: the pair is what identifies
        (``Guard`` keeps a spelt name only beside a tail of the same subject). A span's family
        name is what precedes a comma ("Pemberton, Robert"), else its words from the first
        particle on ("Jacobus van der Berg"), else its last word.
        """
        digest = self._hash[EntityType.PERSON]
        tokens = words.tokens
        for i, j in _capitalised_runs(words, zones):
            for first in range(i, j):
                if not _capitalised(tokens[first][2]):
                    continue
                for last in range(first + 1, min(first + MAX_NAME_TOKENS, j + 1)):
                    written = [token for _, _, token in tokens[first : last + 1]]
                    comma = next((k for k in range(first, last) if "," in words.gaps[k]), None)
                    if comma is not None:
                        split = comma - first + 1
                        given, family = written[split:], written[:split]
                    else:
                        split = next(
                            (k for k in range(1, len(written)) if is_particle_spelling(written[k])),
                            len(written) - 1,
                        )
                        given, family = written[:split], written[split:]
                    # Every spelling that is a rule: "Katherine Whitfield" spells both
                    # katherinewhitfield91@… and whitfield.katherine@…, two people's.
                    for key in sorted(spelt_name_keys(given, family)):
                        value_hash = digest(key)
                        if value_hash in table:
                            yield Detection(
                                EntityType.PERSON, tokens[first][0], _name_end(tokens[last]), value_hash
                            )

    def _fuzzy_names(
        self, words: _Words, first: int, last: int, table: Container[str]
    ) -> Iterator[Detection]:
        """Capitalised pairs with one keystroke wrong in one word (not a known name); particles
        and initials between them are stepped over ("Caterina Di Sefano", "Michhael Ó Briain")."""
        digest = self._hash[EntityType.PERSON]
        tokens, folded = words.tokens, words.folded
        content = [
            (k, word)
            for k in range(first, last + 1)
            if len(word := folded[k]) > 1 and word not in NAME_PARTICLES
        ]
        for (k_a, a), (k_b, b) in zip(content, content[1:]):
            if not (a.isalpha() and b.isalpha()) or a in STOPWORDS or b in STOPWORDS:
                continue
            if digest(f"{FUZZY_PREFIX}{min(a, b)} {max(a, b)}") in table:
                continue  # a suppressed name as written is no one's misspelling
            for suspect, other in ((a, b), (b, a)):
                if len(suspect) < MIN_FUZZY_WORD - 1 or is_known_name(suspect):
                    continue
                if digest(FUZZY_WORD_PREFIX + other) not in table:
                    continue  # the other word is in no suppressed name: nothing to repair towards
                hit = next(
                    (h for key in text_fuzzy_keys(suspect, other) if (h := digest(key)) in table), None
                )
                if hit is not None:
                    start, end = tokens[k_a][0], _name_end(tokens[k_b])
                    yield Detection(EntityType.PERSON, start, end, hit)
                    break

    def _shared_addresses(
        self,
        text: str,
        words: _Words,
        table: Container[str],
        foreign: set[EntityType] | None = None,
        found: list[Detection] = (),
        spare_names: bool = True,
    ) -> Iterator[Detection]:
        """Locating's address keys (house number + street word), read around each number.

        With ``foreign`` and ``spare_names`` (a name was matched, which another person's
        address may contradict), an address that no hit in ``found`` or here overlaps adds
        ADDRESS: someone else's postal address is in the text.
        """
        if not any(words.has_digit):
            return
        digest = self._hash[EntityType.ADDRESS]
        windows: list[list[int]] = []
        for index, (start, end, token) in enumerate(words.tokens):
            if not words.has_digit[index] or len(token) > 6:
                continue
            low, high = max(0, start - _ADDRESS_REACH), min(len(text), end + _ADDRESS_REACH)
            if windows and low <= windows[-1][1]:
                windows[-1][1] = high
            else:
                windows.append([low, high])
        hit_spans = [(d.start, d.end) for d in found]
        # Typed street keys only: locating's untyped "S:" keys are never rules (they would take
        # "12 Baker Road" for "12 Baker Street").
        for low, high in windows:
            for key in typed_street_keys(text[low:high]):
                value_hash = digest(key.hashed_text())
                if value_hash in table:
                    hit_spans.append((low + key.start, low + key.end))
                    yield Detection(EntityType.ADDRESS, low + key.start, low + key.end, value_hash)
        if foreign is not None and EntityType.ADDRESS not in foreign and spare_names:
            # Someone's postal address that no rule matched: a house number beside its street,
            # read in the same windows around the numbers (a street is a few words from its number).
            spans = [
                (low + start, low + end)
                for low, high in windows
                for start, end in house_number_address_spans(text[low:high])
            ]
            if any(
                not any(h_start < end and start < h_end for h_start, h_end in hit_spans)
                for start, end in spans
            ):
                foreign.add(EntityType.ADDRESS)

    def town_hashes(self, text: str, end: int) -> list[str] | None:
        """Return the keyed hashes of the place words that follow an address ending at ``end``
        (the capitalised words of the next segment after a comma, semicolon or line break, unit
        segments such as "Apt. 12" stepped over), or None when none follows in the sentence.

        The guard drops a match on a street alone whose subject's address holds none of them:
        "115 Main Street, Galway" is not "115 Main Street, Cork".
        """
        digest = self._hash[EntityType.ADDRESS]
        for segment in _following_segments(text, end):
            tokens = _TOKEN.findall(segment)
            if not tokens or not (tokens[0][0].isupper() or tokens[0][0].isdigit()):
                return None  # prose or a label ("and signed for", "account: ..."), no place
            words = [
                word
                for word in (_fold_address_token(token) for token in tokens if token[0].isupper())
                if word.isalpha() and word not in _UNIT_WORDS
            ]
            if words:
                return [digest(TOWN_PREFIX + word) for word in words]
        return None

    # --- e-mails, phones, dates ----------------------------------------------------------

    def _emails(self, text: str, table: Container[str]) -> Iterator[Detection]:
        digest = self._hash[EntityType.EMAIL]
        seen: set[str] = set()
        for at in _AT_ANYWHERE.finditer(text):
            domain = _DOMAIN.match(text, at.end())
            if domain is None:
                continue
            window = max(0, at.start() - _LOCAL_REACH)
            local = _LOCAL_AT_END.search(text, window, at.start())
            if local is None:
                continue
            dots = list(_DOT_SEPARATOR.finditer(text, domain.start(), domain.end()))
            # The domain may run on into the next sentence ("...example.com.Then"): try it
            # whole, then without its last labels, keeping at least two.
            for end in [domain.end(), *(dot.start() for dot in reversed(dots[1:]))]:
                plain = (
                    _DOT_SEPARATOR.sub(".", text[local.start() : local.end()])
                    + "@"
                    + _DOT_SEPARATOR.sub(".", text[domain.start() : end])
                )
                try:
                    normalised = normalise_email(plain)
                except NormalisationError:
                    continue
                if normalised in seen:
                    continue
                seen.add(normalised)
                value_hash = digest(normalised)
                if value_hash in table:
                    yield Detection(EntityType.EMAIL, local.start(), end, value_hash)
                    break

    def _phones(self, text: str, table: Container[str]) -> Iterator[Detection]:
        digest = self._hash[EntityType.PHONE]
        regions = self.phone_regions
        for match in _PHONE.finditer(text):
            candidate = match.group()
            offset = match.start()
            groups = list(_PHONE_GROUP.finditer(candidate))
            # A greedy run may join a number to digits beside it ("07911 123456 2024"): try the
            # whole run, then it without trailing groups, then without leading groups.
            windows = [(0, len(groups))]
            windows += [(0, end) for end in range(len(groups) - 1, 0, -1)]
            windows += [(start, len(groups)) for start in range(1, len(groups))]
            for first, last in windows:
                start, end = groups[first].start(), groups[last - 1].end()
                hit = next(
                    (
                        value_hash
                        for form in phone_forms(candidate[start:end], regions)
                        if (value_hash := digest(form)) in table
                    ),
                    None,
                )
                if hit is not None:
                    yield Detection(EntityType.PHONE, offset + start, offset + end, hit)
                    break

    def _dates(self, text: str, table: Container[str]) -> Iterator[Detection]:
        digest = self._hash[EntityType.DATE_OF_BIRTH]
        for match in _DATE.finditer(text):
            try:
                normalised = normalise_date_of_birth(match.group(), day_first=self._day_first)
            except NormalisationError:
                continue
            value_hash = digest(normalised)
            if value_hash in table:
                yield Detection(EntityType.DATE_OF_BIRTH, match.start(), match.end(), value_hash)

    def _account_patterns_found(self, text: str, table: Container[str]) -> Iterator[Detection]:
        digest = self._hash[EntityType.ACCOUNT_ID]
        for pattern in self._account_patterns:
            for match in pattern.finditer(text):
                try:
                    normalised = normalise_account_id(match.group())
                except NormalisationError:
                    continue
                value_hash = digest(normalised)
                if value_hash in table:
                    yield Detection(EntityType.ACCOUNT_ID, match.start(), match.end(), value_hash)

    # --- word windows --------------------------------------------------------------------

    def _names(
        self,
        words: _Words,
        table: Container[str],
        kinds: frozenset[EntityType],
        zones: list[tuple[int, int]] = (),
    ) -> Iterator[Detection]:
        person = self._hash[EntityType.PERSON] if EntityType.PERSON in kinds else None
        location = self._hash[EntityType.LOCATION] if EntityType.LOCATION in kinds else None
        tokens, count, kinds = words.tokens, words.count, words.kinds
        folded = words.folded
        usable = [
            word.isalpha() and word not in STOPWORDS and not (zones and _in_zones(token[0], zones))
            for word, token in zip(folded, tokens)
        ]
        initial = [len(word) == 1 for word in folded]
        seen: dict[tuple[bool, str], str] = {}
        for i in range(count):
            if not usable[i]:
                continue
            capitalised = location is not None and tokens[i][2][:1].isupper()
            if person is None and not capitalised:
                continue  # quasi-identifiers alone: a place name starts with a capital
            # A letter after an apostrophe opens a family name ("'t Hart"): it is a particle, not
            # a given name's initial, so no name starts there (a family name alone is nobody's
            # full name, and "t hart" is what "T. Hart" hashes to, for a Truus 't Hart).
            opens_family = initial[i] and i > 0 and words.gaps[i - 1].endswith(_APOSTROPHES)
            end = i
            for size in range(1, MAX_NAME_TOKENS + 1):
                if size > 1:
                    if not kinds[end][0] or not usable[end + 1]:
                        break
                    end += 1
                # "SAMANTHA Ó DÁLAIGH", "Jane D Smith": a last letter that opens the next name
                # word (a particle, a middle initial) is not a family name's initial.
                if (
                    person is not None
                    and size > 1
                    and not opens_family
                    and not (initial[end] and _initial_opens_a_name(words, end, usable))
                ):
                    if any(initial[i : end + 1]):
                        key = " ".join(folded[i : end + 1])
                    elif size == 2:
                        first, second = folded[i], folded[end]
                        key = f"{first} {second}" if first <= second else f"{second} {first}"
                    else:
                        key = " ".join(sorted(folded[i : end + 1]))
                    value_hash = seen.get((True, key))
                    if value_hash is None:
                        value_hash = seen[(True, key)] = person(key)
                    if value_hash in table:
                        yield Detection(EntityType.PERSON, tokens[i][0], _name_end(tokens[end]), value_hash)
                if capitalised and size <= _MAX_LOCATION_TOKENS:
                    key = " ".join(folded[i : end + 1])
                    value_hash = seen.get((False, key))
                    if value_hash is None:
                        value_hash = seen[(False, key)] = location(key)
                    if value_hash in table:
                        yield Detection(EntityType.LOCATION, tokens[i][0], _name_end(tokens[end]), value_hash)

    def _addresses(self, words: _Words, table: Container[str]) -> Iterator[Detection]:
        tokens, count, kinds = words.tokens, words.count, words.kinds
        anchors = [
            i for i in range(count) if words.has_digit[i] and _TEXT_HOUSE_NUMBER.fullmatch(tokens[i][2])
        ]
        if not anchors:
            return
        digest = self._hash[EntityType.ADDRESS]
        folded: dict[int, str] = {}

        def word(index: int) -> str:
            if index not in folded:
                folded[index] = _fold_address_token(tokens[index][2])
            return folded[index]

        def can_end(index: int) -> bool:
            """Return whether an address may end at token ``index``: at a street word, before
            punctuation or a line break, before a function word, or at the end of the text."""
            return (
                index + 1 >= count
                or not kinds[index][3]
                or word(index) in STREET_WORDS
                or tokens[index + 1][2].lower() in STOPWORDS
            )

        seen: set[tuple[int, int]] = set()
        for anchor in anchors:
            windows = []
            end = anchor
            while end + 1 < count and end - anchor + 1 < MAX_ADDRESS_TOKENS and kinds[end][1]:
                end += 1
                if can_end(end):
                    windows.append((anchor, end))
            before = anchor - 1
            if (
                before >= 0
                and kinds[before][1]
                and tokens[before][2].isalpha()
                and (tokens[before][2].lower() not in STOPWORDS)
            ):
                # Street first, number after ("Beckergasse 8, 1010 Wien").
                first = before
                while (
                    first > anchor - 4
                    and first > 0
                    and kinds[first - 1][1]
                    and tokens[first - 1][2].isalpha()
                ):
                    first -= 1
                ends = [anchor]
                tail = anchor
                while tail < anchor + 3 and tail + 1 < count and kinds[tail][1]:
                    tail += 1
                    if can_end(tail):
                        ends.append(tail)
                windows += [(start, stop) for start in range(first, anchor) for stop in ends]
            best: tuple[int, int, str] | None = None
            for start, stop in windows:
                if (start, stop) in seen:
                    continue
                seen.add((start, stop))
                parts = [word(index) for index in range(start, stop + 1)]
                if not all(parts):
                    continue
                value_hash = digest(" ".join(parts))
                if value_hash in table and (best is None or stop - start > best[1] - best[0]):
                    best = (start, stop, value_hash)
            if best is not None:
                yield Detection(EntityType.ADDRESS, tokens[best[0]][0], tokens[best[1]][1], best[2])

    def _account_ids(self, words: _Words, table: Container[str]) -> Iterator[Detection]:
        has_digit = words.has_digit
        if not any(has_digit):
            return
        tokens, count, kinds, gaps = words.tokens, words.count, words.kinds, words.gaps
        digest = self._hash[EntityType.ACCOUNT_ID]

        def joins(index: int) -> bool:
            """Return whether token ``index`` and the next can be parts of one account id:
            across "-", "/", "." and the like always; across a space only between digit groups
            ("1234 5678") or after a short prefix ("ACC 123456")."""
            if index + 1 >= count or not kinds[index][2]:
                return False
            if not gaps[index].isspace():
                return True
            if not has_digit[index + 1]:
                return False
            return has_digit[index] or (len(tokens[index][2]) <= 4 and tokens[index][2].isalpha())

        seen: set[tuple[int, int]] = set()
        for centre in (i for i in range(count) if has_digit[i]):
            first = centre
            while first > centre - 2 and first > 0 and joins(first - 1):
                first -= 1
            last = centre
            while last < centre + 2 and joins(last):
                last += 1
            for start in range(first, centre + 1):
                for end in range(centre, min(last, start + 2) + 1):
                    if (start, end) in seen:
                        continue
                    seen.add((start, end))
                    value = "".join(tokens[index][2] for index in range(start, end + 1))
                    if len(value) < 3 or not value.isascii() or not value.isalnum():
                        continue
                    value_hash = digest(value.upper())
                    if value_hash in table:
                        yield Detection(EntityType.ACCOUNT_ID, tokens[start][0], tokens[end][1], value_hash)
