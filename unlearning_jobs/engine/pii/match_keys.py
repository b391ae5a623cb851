"""Match keys: what a person's identifiers look like in text, whatever a NER model detects.

Presidio finds what its recognisers and the spaCy model tag. A record can still hold a person's
identifier that nobody tagged: "JOHN SMITH", "j.smith (at) example dot com", "030/1234567",
"HAUPTSTR. 5", "acct#0045-21". Match keys close that gap without reading the text again at
search time and without storing it: the record side scans every record with cheap,
detection-free rules and emits, per identifier kind, canonical *keys*; the request side turns
each identifier the officer typed into the same keys. Both are hashed with the index's key
(``KeyedHasher``) under a versioned prefix, so the index gains rows of keyed hashes only, and the
matcher's existing hash lookup finds them.

Per kind (``docs/pii.md``, "Match keys"):

* e-mail: the address case-folded, found through ``mailto:``, angle brackets and the common
  obfuscations ("(at)", "[at]", " at ", "(dot)", " dot "); Gmail's dots and the sub-address
  ("+tag") of providers that document it are dropped on both sides;
* phone: the national significant number, from any run of 7-15 digits in any notation: an
  international form gives it through ``phonenumbers``; a national form gives its digits with
  and without one trunk prefix (0, or NANP's 1). No region needs to be known or valid;
* account id: a letter prefix (synonyms folded by ``account_prefixes``), then the digits
  without separators or leading zeros; and the digits alone, for a request that gives no prefix;
* postal address: a house number with the longest word of the street's name, where a street
  type (a word, "Str.", or a German or Dutch compound suffix) stands within four words;
* name: every pair of adjacent name-like words, and every pair one word apart (a middle name),
  in sorted order; the request asks for given + family name, its initial, nicknames and
  "Family, Given" alike. A name stays a name: it never makes a candidate strong.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import phonenumbers

from .entities import EntityType
from .normalise import _EXTRA_FOLDS, nickname_equivalents

#: Version of the key construction; part of every hashed key, recorded with each index.
MATCH_KEY_VERSION = "k1"
RECOGNISER = "lethe-match-keys"

#: What the search covers per kind, for the search coverage record and the report.
SEARCHED_FORMS: dict[str, tuple[str, ...]] = {
    EntityType.EMAIL.value: (
        "any case", "mailto: and angle brackets", "obfuscated (at)/[at]/' at ', (dot)/[dot]/' dot '",
        "Gmail dots and +tags, and +tags of providers that document sub-addressing"),
    EntityType.PHONE.value: (
        "international (+ or 00) and national forms", "with or without trunk prefix",
        "any separators, brackets, slashes", "extensions ignored", "no valid region needed"),
    EntityType.ACCOUNT_ID.value: (
        "any case and separators", "leading zeros dropped", "prefix synonyms", "digits alone"),
    EntityType.ADDRESS.value: (
        "house number before or after the street", "accents and case folded", "across line breaks",
        "abbreviated street types (EN, FR, DE, ES, IT, NL)", "postcode and city in any order"),
    EntityType.PERSON.value: (
        "any case and accents", "'Family, Given'", "initial with family name", "nicknames",
        "a middle name present only in the record", "hyphenated or spaced double names"),
}

#: Default prefix synonyms of account ids: ``canonical: (spellings…)``; others are kept as written.
DEFAULT_ACCOUNT_PREFIXES: dict[str, tuple[str, ...]] = {
    "ACC": ("ACC", "ACCT", "ACCNT", "ACCOUNT", "AC", "ACCNO", "ACCTNO"),
    "CUST": ("CUST", "CUSTOMER", "CUS", "CUSTNO", "CLIENT", "CLT", "CID"),
    "MEM": ("MEM", "MEMBER", "MBR", "MEMB"),
}


@dataclass(frozen=True)
class MatchKey:
    """One key found in a record (``start``/``end`` its span) or derived from an identifier."""

    entity_type: EntityType
    key: str
    start: int = 0
    end: int = 0
    variant: bool = False

    def hashed_text(self) -> str:
        """Return the string that is hashed: the key under its version (never stored)."""
        return f"{MATCH_KEY_VERSION}:{self.key}"


def _fold_token(token: str) -> str:
    decomposed = unicodedata.normalize("NFKD", token.translate(_EXTRA_FOLDS))
    return "".join(c for c in decomposed if not unicodedata.combining(c) and c.isalnum()).casefold()


# --- e-mail --------------------------------------------------------------------------------------

_AT = r"(?:\s*@\s*|\s*[(\[{<]\s*at\s*[)\]}>]\s*|\s+at\s+)"
_DOT = r"(?:\.|\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\s+dot\s+)"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?"
_LOCAL_WORD = r"[A-Za-z0-9_%+'-]+"
_EMAIL_RE = re.compile(
    rf"(?<![\w.%+-])(?P<local>{_LOCAL_WORD}(?:{_DOT}{_LOCAL_WORD})*){_AT}"
    rf"(?P<domain>{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}[A-Za-z]{{2,24}})(?![\w-])",
    re.IGNORECASE,
)
_DOT_SPLIT = re.compile(_DOT, re.IGNORECASE)
_DOTS_IGNORED = frozenset({"gmail.com", "googlemail.com"})
_SUBADDRESSED = frozenset({"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com",
                           "icloud.com", "me.com", "fastmail.com", "proton.me", "protonmail.com"})


def _email_key(local: str, domain: str) -> str:
    local = ".".join(_DOT_SPLIT.split(local.strip())).casefold()
    domain = ".".join(_DOT_SPLIT.split(domain.strip())).casefold()
    if domain == "googlemail.com":
        domain = "gmail.com"
    if domain in _SUBADDRESSED:
        local = local.split("+", 1)[0]
    if domain in _DOTS_IGNORED:
        local = local.replace(".", "")
    return f"E:{local}@{domain}"


def email_keys(text: str) -> list[MatchKey]:
    """Return the e-mail keys in ``text``: every address, plain or obfuscated."""
    return [MatchKey(EntityType.EMAIL, _email_key(m["local"], m["domain"]), m.start(), m.end())
            for m in _EMAIL_RE.finditer(text)]


def email_identifier_keys(value: str) -> list[MatchKey]:
    """Return the keys of an e-mail address as a person gave it."""
    cleaned = value.strip()
    if cleaned.lower().startswith("mailto:"):
        cleaned = cleaned[7:]
    return [MatchKey(key.entity_type, key.key) for key in email_keys(cleaned.strip(" <>"))][:1]


# --- phone ---------------------------------------------------------------------------------------

_PHONE_RUN_RE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d\s().\-/\u2013]{5,24}\d(?![\w])")
_MIN_DIGITS, _MAX_DIGITS = 7, 15


def _national_keys(digits: str) -> set[str]:
    keys = {digits}
    if digits.startswith("0") and not digits.startswith("00"):
        keys.add(digits[1:])
    if len(digits) == 11 and digits.startswith("1"):
        keys.add(digits[1:])
    return {key for key in keys if len(key) >= _MIN_DIGITS}


def _phone_run_keys(run: str) -> set[str]:
    digits = re.sub(r"\D", "", run)
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS + 2:
        return set()
    stripped = run.strip()
    if stripped.startswith("+") or (stripped.startswith("00") and len(digits) > 10):
        text = "+" + stripped[2:] if stripped.startswith("00") else stripped
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            return set()
        national = phonenumbers.national_significant_number(number)
        return {national} if len(national) >= _MIN_DIGITS else set()
    return _national_keys(digits)


def phone_keys(text: str) -> list[MatchKey]:
    """Return the phone keys in ``text``: national significant numbers of every digit run."""
    found = []
    for match in _PHONE_RUN_RE.finditer(text):
        for key in sorted(_phone_run_keys(match.group(0))):
            found.append(MatchKey(EntityType.PHONE, f"P:{key}", match.start(), match.end()))
    return found


def phone_identifier_keys(value: str) -> list[MatchKey]:
    """Return the keys of a phone number as a person gave it, valid in some region or not."""
    keys = _phone_run_keys(value.split("ext")[0].split(" x")[0])
    return [MatchKey(EntityType.PHONE, f"P:{key}", variant=index > 0) for index, key in enumerate(sorted(keys))]


# --- account ids ---------------------------------------------------------------------------------

_ACCOUNT_RE = re.compile(
    r"(?<![A-Za-z0-9])(?P<prefix>[A-Za-z]{2,10})(?P<gap>\s*(?:no\.?|number|nr\.?)?\s*[#:\-_./]?\s*#?\s*)"
    r"(?P<number>\d(?:[\d]|[\s\-./](?=\d)){2,20})(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def _looks_like_account(match: re.Match, table: Mapping[str, str]) -> bool:
    """An id's prefix is a known one, written in capitals, or joined to its number ("ab-1234").

    "on 020 7946 0958" or "order 1234" are words before numbers, not account ids.
    """
    prefix = match["prefix"]
    return prefix.upper() in table or prefix.isupper() or (bool(match["gap"]) and not match["gap"].isspace()
                                                           and " " not in match["gap"])


def _prefix_table(prefixes: Mapping[str, Iterable[str]] | None) -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, spellings in (prefixes or DEFAULT_ACCOUNT_PREFIXES).items():
        for spelling in (canonical, *spellings):
            table[re.sub(r"[^A-Z]", "", spelling.upper())] = canonical.upper()
    return table


def _account_key_pair(prefix: str, number: str, table: Mapping[str, str]) -> tuple[str, str] | None:
    digits = re.sub(r"\D", "", number).lstrip("0")
    if len(digits) < 3:
        return None
    canonical = table.get(prefix.upper(), prefix.upper())
    return f"A:{canonical}:{digits}", f"A:*:{digits}"


def account_keys(text: str, *, prefixes: Mapping[str, Iterable[str]] | None = None) -> list[MatchKey]:
    """Return the account-id keys in ``text``: each prefixed number, and its digits alone."""
    table = _prefix_table(prefixes)
    found = []
    for match in _ACCOUNT_RE.finditer(text):
        if not _looks_like_account(match, table):
            continue
        pair = _account_key_pair(match["prefix"], match["number"], table)
        if pair:
            found.extend(MatchKey(EntityType.ACCOUNT_ID, key, match.start(), match.end()) for key in pair)
    return found


def account_identifier_keys(value: str, *, prefixes: Mapping[str, Iterable[str]] | None = None) -> list[MatchKey]:
    """Return the keys of an account id as given: with its prefix, or its digits when it has none."""
    table = _prefix_table(prefixes)
    match = _ACCOUNT_RE.search(value)
    if match:
        pair = _account_key_pair(match["prefix"], match["number"], table)
        return [MatchKey(EntityType.ACCOUNT_ID, pair[0])] if pair else []
    digits = re.sub(r"\D", "", value).lstrip("0")
    return [MatchKey(EntityType.ACCOUNT_ID, f"A:*:{digits}")] if len(digits) >= 5 else []


# --- tokens (addresses and names) ----------------------------------------------------------------

_TOKEN_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W\d_]+)?")
_POSSESSIVE_RE = re.compile(r"['\u2019]s$", re.IGNORECASE)


@dataclass(frozen=True)
class _Token:
    folded: str
    start: int
    end: int
    line_break_before: bool
    initial: bool = False  # one letter in capitals or before a full stop: "J." or "J"


def _tokens(text: str) -> list[_Token]:
    tokens = []
    previous_end = 0
    for match in _TOKEN_RE.finditer(text):
        raw = _POSSESSIVE_RE.sub("", match.group(0))
        folded = _fold_token(raw)
        if folded:
            gap = text[previous_end:match.start()]
            initial = len(raw) == 1 and (raw.isupper() or text[match.end():match.end() + 1] == ".")
            tokens.append(_Token(folded, match.start(), match.end(), "\n" in gap, initial))
        previous_end = match.end()
    return tokens


# --- postal addresses ----------------------------------------------------------------------------

_STREET_WORDS = frozenset("""
street st road rd avenue ave av avda avenida lane ln drive dr court ct place pl square sq terrace
ter tce crescent cres close cl way boulevard blvd bd bld parkway pkwy highway hwy row gardens gdns
grove hill park walk mews rue chemin allee impasse quai route cours strasse str weg platz allee
gasse ring damm ufer calle c paseo plaza camino carrera carretera via viale piazza corso vicolo
largo straat laan plein gracht kade singel dijk steeg
""".split())
_STREET_SUFFIXES = ("strasse", "straat", "str", "weg", "platz", "allee", "gasse", "laan", "plein",
                    "gracht", "kade", "dijk", "ring", "damm")
_ADDRESS_STOPWORDS = frozenset("""
the of and de la le les du des del della dello di da do dos das van der den het von am an im zum
zur y e et und flat apt apartment unit suite floor no nr house
""".split())
_HOUSE_NUMBER_RE = re.compile(r"^\d{1,5}[a-z]?$")
_WINDOW = 4


def _street_core(token: str) -> tuple[str | None, bool]:
    """Return ``(core word or None, is a street marker)`` for one folded token."""
    if token in _STREET_WORDS:
        return None, True
    for suffix in _STREET_SUFFIXES:
        if token.endswith(suffix) and len(token) >= len(suffix) + 3:
            return token[: -len(suffix)], True
    if token.isalpha() and len(token) >= 3 and token not in _ADDRESS_STOPWORDS:
        return token, False
    return None, False


def address_keys(text: str) -> list[MatchKey]:
    """Return the address keys in ``text``: house number + street word, near a street type."""
    tokens = _tokens(text)
    cores = [_street_core(token.folded) for token in tokens]
    found: dict[str, MatchKey] = {}
    for i, token in enumerate(tokens):
        if not _HOUSE_NUMBER_RE.match(token.folded):
            continue
        low, high = max(0, i - _WINDOW), min(len(tokens), i + _WINDOW + 1)
        if not any(cores[j][1] for j in range(low, high)):
            continue
        for j in range(low, high):
            core = cores[j][0]
            if core and j != i:
                key = f"S:{token.folded}|{core}"
                span = (min(token.start, tokens[j].start), max(token.end, tokens[j].end))
                found.setdefault(key, MatchKey(EntityType.ADDRESS, key, *span))
    return list(found.values())


def address_identifier_keys(value: str) -> list[MatchKey]:
    """Return the key of a postal address as given: its house number and its street's longest word.

    The street is the part of the address (between commas or line breaks) that holds a street
    type, or else the first part with a house number; the city and postcode are not needed.
    """
    parts = [part for part in re.split(r"[,;\n]+", value) if part.strip()]
    scored = []
    for index, part in enumerate(parts):
        tokens = [token.folded for token in _tokens(part)]
        numbers = [token for token in tokens if _HOUSE_NUMBER_RE.match(token)]
        cores = [_street_core(token) for token in tokens]
        if not numbers:
            continue
        has_marker = any(marker for _, marker in cores)
        words = [core for core, _ in cores if core]
        if words:
            scored.append((0 if has_marker else 1, index, numbers, words))
    if not scored:
        return []
    _, _, numbers, words = min(scored)
    # A house number with a letter ("221B") is the number; a postcode-length run is not.
    number = next((n for n in numbers if len(n) <= 4), numbers[0])
    longest = max(words, key=lambda word: (len(word), word))
    # A variant: the key is a street and house number, not a whole address (not duplicate evidence).
    return [MatchKey(EntityType.ADDRESS, f"S:{number}|{longest}", variant=True)]


# --- names ---------------------------------------------------------------------------------------

_NAME_STOPWORDS = frozenset("""
the a an and or of to in on at for by with from as is are was were be been it its this that these
those my your our his her their me we you he she they i hi hello dear thanks thank regards best
please mr mrs ms miss dr prof sir madam order ticket account customer phone email mail address
street road re fw fwd subject date from sent to cc bcc ref no number call calls called said says
van von der den de la le del da di dos das du des y e et und
""".split())
_NAME_PARTICLES = frozenset("van von der den de la le del della da di dos das du des ter ten".split())


def _name_word(token: _Token) -> bool:
    if len(token.folded) == 1:
        return token.initial and token.folded.isalpha()
    return token.folded.isalpha() and token.folded not in _NAME_STOPWORDS


def name_keys(text: str) -> list[MatchKey]:
    """Return the name keys in ``text``: sorted pairs of adjacent and next-but-one name-like words."""
    tokens = [token for token in _tokens(text) if token.folded not in _NAME_PARTICLES]
    found: dict[str, MatchKey] = {}
    for i, token in enumerate(tokens):
        if not _name_word(token):
            continue
        for j in (i + 1, i + 2):
            if j >= len(tokens) or tokens[j].line_break_before or not _name_word(tokens[j]):
                continue
            first, second = sorted((token.folded, tokens[j].folded))
            key = f"N:{first}|{second}"
            found.setdefault(key, MatchKey(EntityType.PERSON, key, token.start, tokens[j].end))
    return list(found.values())


def _name_parts(value: str) -> tuple[list[str], list[str]]:
    """Return ``(given names, family names)`` of a name as typed, "Family, Given" understood."""
    if "," in value:
        family_part, _, given_part = value.partition(",")
    else:
        family_part, given_part = "", value
    given = [t.folded for t in _tokens(given_part) if t.folded not in _NAME_PARTICLES]
    family = [t.folded for t in _tokens(family_part) if t.folded not in _NAME_PARTICLES]
    given = [t for t in given if t not in {"mr", "mrs", "ms", "miss", "dr", "prof", "sir"}]
    if not family and len(given) >= 2:
        given, family = given[:-1], given[-1:]
    return given, family


def name_identifier_keys(value: str) -> list[MatchKey]:
    """Return the keys that find a name as given: exact given + family, then the variants."""
    given, family = _name_parts(value)
    if not given or not family:
        return []
    first = given[0]
    keys: dict[str, bool] = {}

    def add(a: str, b: str, variant: bool) -> None:
        if a and b:
            low, high = sorted((a, b))
            key = f"N:{low}|{high}"
            keys[key] = keys.get(key, True) and variant

    for surname in dict.fromkeys((family[-1], family[0])):
        add(first, surname, variant=surname != family[-1])
        add(first[0], surname, variant=True)  # "J. Smith"
        for nickname in nickname_equivalents(first):
            add(nickname, surname, variant=True)
    for middle in given[1:]:
        add(middle, family[-1], variant=True)  # known by a middle name
    return [MatchKey(EntityType.PERSON, key, variant=variant) for key, variant in keys.items()]


# --- everything at once --------------------------------------------------------------------------


def record_match_keys(text: str, *, account_prefixes: Mapping[str, Iterable[str]] | None = None) -> list[MatchKey]:
    """Return every match key of a record's text, de-duplicated per (kind, key)."""
    emails = email_keys(text)
    # The rest is read with the e-mail addresses blanked out (same length, so spans hold): the
    # words of "john.smith@example.com" are not a name, nor "2023" in it a house number.
    rest = text
    for key in emails:
        rest = rest[:key.start] + " " * (key.end - key.start) + rest[key.end:]
    found: dict[tuple[EntityType, str], MatchKey] = {}
    for key in (*emails, *phone_keys(rest), *account_keys(rest, prefixes=account_prefixes),
                *address_keys(rest), *name_keys(rest)):
        found.setdefault((key.entity_type, key.key), key)
    return list(found.values())


def identifier_match_keys(entity_type: EntityType | str, value: str, *,
                          account_prefixes: Mapping[str, Iterable[str]] | None = None) -> list[MatchKey]:
    """Return the match keys of one identifier a request gives, of the given kind."""
    kind = EntityType(entity_type)
    if kind is EntityType.EMAIL:
        return email_identifier_keys(value)
    if kind is EntityType.PHONE:
        return phone_identifier_keys(value)
    if kind is EntityType.ACCOUNT_ID:
        return account_identifier_keys(value, prefixes=account_prefixes)
    if kind is EntityType.ADDRESS:
        return address_identifier_keys(value)
    if kind is EntityType.PERSON:
        return name_identifier_keys(value)
    return []
