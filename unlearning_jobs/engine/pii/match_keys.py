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
from functools import lru_cache

import phonenumbers

from .entities import EntityType
from .known_names import is_known_name
from .normalise import (
    EXTRA_FOLDS,
    NAME_PARTICLES,
    NAME_TITLES,
    is_name_particle,
    nickname_equivalents,
)

#: Version of the key construction; part of every hashed key, recorded with each index. Change
#: it only when a key string that was derived before would now mean something else.
MATCH_KEY_VERSION = "k1"
#: Generation of the record-side rules, recorded with each index. Raised when the rules find forms
#: that an index built with the earlier ones holds no key for, so a search can say which data-set
#: versions were indexed with fewer forms and should be indexed again. 2: Irish street words
#: ("Sráid an Mhuilinn"), typed street keys, "write to them at jane.doe@…" read as jane.doe's
#: address. 3: one particle list with the guard, matched as written ("Văn" is no "van"); a
#: capitalised particle that ends a name, or begins a two-word one, is a name ("Hoa Le", "Al Green";
#: ``normalise.is_name_particle``); a stop word spelt otherwise ("Mỹ", "Noé") or capitalised right
#: after a name ("Nguyen Van An", "Kevin Best") is a name word. 4: so is a capitalised stop word
#: that people bear as a name right before a name ("An Bùi", "Said Khan"; ``known_names``). Keys
#: derived before keep their meaning, so ``MATCH_KEY_VERSION`` stays.
MATCH_KEY_DERIVATION = 4
RECOGNISER = "lethe-match-keys"

#: What the search covers per kind, for the search coverage record and the report.
SEARCHED_FORMS: dict[str, tuple[str, ...]] = {
    EntityType.EMAIL.value: (
        "any case",
        "mailto: and angle brackets",
        "obfuscated (at)/[at]/' at ', (dot)/[dot]/' dot '",
        "Gmail dots and +tags, and +tags of providers that document sub-addressing",
    ),
    EntityType.PHONE.value: (
        "international (+ or 00) and national forms",
        "with or without trunk prefix",
        "any separators, brackets, slashes",
        "extensions ignored",
        "no valid region needed",
    ),
    EntityType.ACCOUNT_ID.value: (
        "any case and separators",
        "leading zeros dropped",
        "prefix synonyms",
        "digits alone",
    ),
    EntityType.ADDRESS.value: (
        "house number before or after the street",
        "accents and case folded",
        "across line breaks",
        "abbreviated street types (EN, FR, DE, ES, IT, NL)",
        "postcode and city in any order",
    ),
    EntityType.PERSON.value: (
        "any case and accents",
        "'Family, Given'",
        "initial with family name",
        "nicknames",
        "a middle name present only in the record",
        "hyphenated or spaced double names",
        "particles ('van der', 'bin') left out, but read as a name where one ends a name ('Hoa Le')",
    ),
}

#: Default prefix synonyms of account ids: ``canonical: (spellings…)``; others are kept as written.
DEFAULT_ACCOUNT_PREFIXES: dict[str, tuple[str, ...]] = {
    "ACC": ("ACC", "ACCT", "ACCNT", "ACCOUNT", "AC", "ACCNO", "ACCTNO"),
    "CUST": ("CUST", "CUSTOMER", "CUS", "CUSTNO", "CLIENT", "CLT", "CID"),
    "MEM": ("MEM", "MEMBER", "MBR", "MEMB"),
}


#: How progress and pages count match-key findings: together, apart from what was detected.
MATCH_KEYS_COUNT_LABEL = "MATCH_KEYS"


def finding_count_label(entity_type: str, recogniser: str) -> str:
    """Return the entity type a finding counts under, or ``MATCH_KEYS`` for a match key."""
    return MATCH_KEYS_COUNT_LABEL if recogniser == RECOGNISER else entity_type


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
    decomposed = unicodedata.normalize("NFKD", token.translate(EXTRA_FOLDS))
    return "".join(c for c in decomposed if not unicodedata.combining(c) and c.isalnum()).casefold()


# --- e-mail --------------------------------------------------------------------------------------

_AT = r"(?:\s*@\s*|\s*[(\[{<]\s*(?:at|@)\s*[)\]}>]\s*|\s+at\s+)"
_DOT = r"(?:\.|\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\s+dot\s+)"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?"
_LOCAL_WORD = r"[A-Za-z0-9_%+'-]+"
_EMAIL_RE = re.compile(
    rf"(?<![\w.%+-])(?P<local>{_LOCAL_WORD}(?:{_DOT}{_LOCAL_WORD})*){_AT}"
    # A "domain" followed by "@" is the local part of the next address ("write to them at
    # jane.doe@example.org" is not "them@jane.doe"): without the look-ahead the real address
    # would be swallowed and never keyed.
    rf"(?P<domain>{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}[A-Za-z]{{2,24}})(?![\w-]|\s*@)",
    re.IGNORECASE,
)
_DOT_SPLIT = re.compile(_DOT, re.IGNORECASE)
_DOTS_IGNORED = frozenset({"gmail.com", "googlemail.com"})
_SUBADDRESSED = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "icloud.com",
        "me.com",
        "fastmail.com",
        "proton.me",
        "protonmail.com",
    }
)


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
    return [
        MatchKey(EntityType.EMAIL, _email_key(m["local"], m["domain"]), m.start(), m.end())
        for m in _EMAIL_RE.finditer(text)
    ]


def email_identifier_keys(value: str) -> list[MatchKey]:
    """Return the keys of an e-mail address as a person gave it."""
    cleaned = value.strip()
    if cleaned.lower().startswith("mailto:"):
        cleaned = cleaned[7:]
    return [MatchKey(key.entity_type, key.key) for key in email_keys(cleaned.strip(" <>"))][:1]


# --- phone ---------------------------------------------------------------------------------------

# Separators inside a number: spaces, brackets, dots, dashes, slashes; never a tab or a line break,
# which end a field of a table or a line of a form.
_PHONE_RUN_RE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d \u00a0().\-/\u2013]{5,24}\d(?![\w])")
_MIN_DIGITS, _MAX_DIGITS = 7, 15


def _national_keys(digits: str) -> set[str]:
    keys = {digits}
    if digits.startswith("0") and not digits.startswith("00"):
        keys.add(digits[1:])
    if len(digits) == 11 and digits.startswith("1"):
        keys.add(digits[1:])
    return {key for key in keys if len(key) >= _MIN_DIGITS}


def _phone_run_keys(run: str) -> set[str]:
    keys = _phone_number_keys(run)
    # "0176 37762121-216": an extension after a hyphen; the number is the run without it.
    head, dash, tail = run.rpartition("-")
    if dash and tail.strip().isdigit() and len(tail.strip()) <= 5 and len(re.sub(r"\D", "", head)) >= 9:
        keys |= _phone_number_keys(head)
    return keys


def _phone_number_keys(run: str) -> set[str]:
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


def _balanced_run(run: str) -> str:
    """Cut a run at an unclosed bracket: "21 (0" of "…21 (0:17)" is not part of the number."""
    while run.count("(") > run.count(")"):
        run = run[: run.rindex("(")].rstrip()
    return run


def phone_keys(text: str) -> list[MatchKey]:
    """Return the phone keys in ``text``: national significant numbers of every digit run."""
    found = []
    for match in _PHONE_RUN_RE.finditer(text):
        for key in sorted(_phone_run_keys(_balanced_run(match.group(0)))):
            found.append(MatchKey(EntityType.PHONE, f"P:{key}", match.start(), match.end()))
    return found


def phone_identifier_keys(value: str) -> list[MatchKey]:
    """Return the keys of a phone number as a person gave it, valid in some region or not."""
    keys = _phone_run_keys(value.split("ext")[0].split(" x")[0])
    return [
        MatchKey(EntityType.PHONE, f"P:{key}", variant=index > 0) for index, key in enumerate(sorted(keys))
    ]


# --- account ids ---------------------------------------------------------------------------------

_ACCOUNT_RE = re.compile(
    r"(?<![A-Za-z0-9])(?P<prefix>[A-Za-z]{2,10})(?P<gap>\s*(?:no\.?|number|nr\.?)?\s*[#:\-_./]?\s*#?\s*)"
    r"(?P<number>\d(?:[\d]|[\s\-./_](?=\d)){2,20})(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# Records are read number first (a regex tried at every letter of a text is slow): each run of
# digits, then what stands just before it.
_NUMBER_RUN_RE = re.compile(r"(?<!\d)\d(?:[\d]|[\s\-./_](?=\d)){2,20}(?![A-Za-z0-9])")
_LOOK_BACK = 32
_PREFIX_BEFORE_RE = re.compile(
    r"(?<![A-Za-z0-9])(?P<prefix>[A-Za-z]{2,10})(?P<gap>\s*(?:no\.?|number|nr\.?)?\s*[#:\-_./]?\s*#?\s*)$",
    re.IGNORECASE,
)
# A number announced as an id without a prefix of its own: "#0069457", "Account no. 0069457",
# "Kd.-Nr. 039184", "n° client 00875859". Only its digits are a key, and only from five digits on.
_LABEL_BEFORE_RE = re.compile(
    r"(?:#|(?<![^\W\d_])[^\W\d_]*(?:nummer|nr)\.?|(?<![^\W\d_])(?:acc(?:oun)?t|acc|customer|client|cliente|"
    r"kunde|kd|konto|klant|member|membership|compte|cuenta|conto|ref(?:erence)?|id|no|n°|nº|"
    r"num(?:ber|ero|éro)?)\.?)[\s.:#°º-]*(?:(?:nr|no|n°|nº|number|client|kunde)\.?[\s.:#-]*)?$",
    re.IGNORECASE,
)
_MIN_BARE_DIGITS = 5


def _looks_like_account(match: re.Match, table: Mapping[str, str]) -> bool:
    """An id's prefix is a known one, written in capitals, or joined to its number ("ab-1234").

    Only then do its bare digits count too: "on 020 7946 0958" or "order 12345" are words before
    numbers, whose digits alone must not meet an account's.
    """
    prefix, gap = match["prefix"], match["gap"]
    return prefix.upper() in table or prefix.isupper() or not gap or " " not in gap


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
    return (f"A:{canonical}:{digits}",) + ((f"A:*:{digits}",) if len(digits) >= _MIN_BARE_DIGITS else ())


def account_keys(text: str, *, prefixes: Mapping[str, Iterable[str]] | None = None) -> list[MatchKey]:
    """Return the account-id keys in ``text``: each prefixed number, and its digits alone."""
    table = _prefix_table(prefixes)
    found = []
    for number in _NUMBER_RUN_RE.finditer(text):
        before = text[max(0, number.start() - _LOOK_BACK) : number.start()]
        prefixed = _PREFIX_BEFORE_RE.search(before)
        if prefixed:
            start = number.start() - len(before) + prefixed.start()
            pair = _account_key_pair(prefixed["prefix"], number.group(0), table)
            if pair and not _looks_like_account(prefixed, table):
                # "pol 7499026" may be an account of prefix POL, and "order 12345" is an order: the
                # prefixed key only, which finds nobody's account unless the prefixes agree.
                pair = pair[:1]
            found.extend(MatchKey(EntityType.ACCOUNT_ID, key, start, number.end()) for key in pair or ())
        labelled = _LABEL_BEFORE_RE.search(before)
        digits = re.sub(r"\D", "", number.group(0)).lstrip("0")
        if labelled and len(digits) >= _MIN_BARE_DIGITS:
            start = number.start() - len(before) + labelled.start()
            found.append(MatchKey(EntityType.ACCOUNT_ID, f"A:*:{digits}", start, number.end()))
    return found


def account_identifier_keys(
    value: str, *, prefixes: Mapping[str, Iterable[str]] | None = None
) -> list[MatchKey]:
    """Return the keys of an account id as given: with its prefix, or its digits when it has none."""
    table = _prefix_table(prefixes)
    match = _ACCOUNT_RE.search(value)
    if match:
        keys = _account_key_pair(match["prefix"], match["number"], table) or ()
        return [MatchKey(EntityType.ACCOUNT_ID, key, variant=index > 0) for index, key in enumerate(keys)]
    digits = re.sub(r"\D", "", value).lstrip("0")
    return [MatchKey(EntityType.ACCOUNT_ID, f"A:*:{digits}")] if len(digits) >= 5 else []


# --- tokens (addresses and names) ----------------------------------------------------------------

_APOSTROPHE_CLASS = "'\u2019\u2018\u00b4\u02bc`"
_TOKEN_RE = re.compile(rf"[^\W_]+(?:[{_APOSTROPHE_CLASS}][^\W\d_]+)?")
_POSSESSIVE_RE = re.compile(rf"[{_APOSTROPHE_CLASS}]s$", re.IGNORECASE)
# "Köhler" and "Koehler", "Königsallee" and "Koenigsallee": German transliteration, folded on both
# sides, and in every word list below ("rue" is read as "ru", "avenue" as "avenu").
_TRANSLITERATION_RE = re.compile(r"(?<=[a-z])([aou])e")


@lru_cache(maxsize=65536)
def _folded_word(raw: str) -> str:
    """Return a word case-, accent- and transliteration-folded (words repeat: cached)."""
    return _TRANSLITERATION_RE.sub(r"\1", _fold_token(raw))


def _transliterated(words: Iterable[str]) -> frozenset[str]:
    return frozenset(_TRANSLITERATION_RE.sub(r"\1", word) for word in words)


@dataclass(frozen=True)
class _Token:
    folded: str
    start: int
    end: int
    line_break_before: bool
    initial: bool = False  # one letter in capitals or before a full stop: "J." or "J"
    spaced_before: bool = False  # only spaces since the word before: "Van An", not "Van. An"


def _tokens(text: str) -> list[_Token]:
    tokens = []
    previous_end = 0
    for match in _TOKEN_RE.finditer(text):
        raw = _POSSESSIVE_RE.sub("", match.group(0))
        folded = _folded_word(raw)
        if folded:
            gap = text[previous_end : match.start()]
            initial = len(raw) == 1 and (raw.isupper() or text[match.end() : match.end() + 1] == ".")
            spaced = bool(tokens) and not gap.strip(" \t")
            tokens.append(_Token(folded, match.start(), match.end(), "\n" in gap, initial, spaced))
        previous_end = match.end()
    return tokens


# --- postal addresses ----------------------------------------------------------------------------

_STREET_WORDS = _transliterated(
    """
street st road rd avenue ave av avda avenida lane ln drive dr court ct place pl square sq terrace
ter tce crescent cres close cl way boulevard blvd bd bld bvd parkway pkwy highway hwy row gardens
gdns grove hill park walk mews parade pde esplanade circuit cct promenade quay wharf green rise
vale wynd gate broadway plaza trail pike alley loop bend crt mall
rue chemin ch allee impasse imp quai route rte cours faubourg fbg passage
strasse str weg platz pl allee gasse ring damm ufer chaussee markt
calle c cl paseo po plaza pza camino cno carrera carretera ctra ronda rda travesia all
via v viale vle piazza pza pzza p corso cso vicolo largo lgo
straat laan ln plein gracht kade singel dijk steeg markt
sraid bothar
""".split()
)
_STREET_SUFFIXES = tuple(
    sorted(
        _transliterated(
            (
                "strasse",
                "straat",
                "str",
                "weg",
                "platz",
                "pl",
                "allee",
                "gasse",
                "laan",
                "ln",
                "plein",
                "gracht",
                "kade",
                "dijk",
                "ring",
                "damm",
                "singel",
                "steeg",
                "markt",
                "ufer",
                "chaussee",
            )
        ),
        key=len,
        reverse=True,
    )
)
_ADDRESS_STOPWORDS = _transliterated(
    """
the of and de la le les du des del della dello di da do dos das van der den het von am an im zum
zur y e et und flat apt apartment unit suite floor no nr house jr sr st
north south east west n s e w ne nw se sw nord sud est ouest noord zuid oost west norte sur este oeste
""".split()
)
# Words before a number that make it a flat, floor or door, not the house number.
_FLAT_WORDS = _transliterated(
    "flat apt apartment unit suite floor fl whg wohnung int interno piso planta "
    "bajo puerta pta etage etg escalier esc bus app appt room rm".split()
)
_HOUSE_NUMBER_RE = re.compile(r"^\d{1,5}[a-z]{0,2}$")
_ABBREVIATION_DOT_RE = re.compile(r"(?<=[^\W\d_])\.(?=[^\W\d_])")  # "P.zza" is one word
_WINDOW = 6


@lru_cache(maxsize=65536)
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


def _house_number_key(number: str) -> str:
    """Return a house number without its letter ("47A" and "47" are read alike)."""
    return number.rstrip("abcdefghijklmnopqrstuvwxyz")


def _house_numbers(tokens: list[_Token]) -> list[int]:
    """Return the positions of tokens that can be a house number (not a flat or floor number)."""
    return [
        i
        for i, token in enumerate(tokens)
        if _HOUSE_NUMBER_RE.match(token.folded) and not (i and tokens[i - 1].folded in _FLAT_WORDS)
    ]


def address_keys(text: str) -> list[MatchKey]:
    """Return the address keys in ``text``: house number + street word, near a street type."""
    tokens = _tokens(_ABBREVIATION_DOT_RE.sub("", text))
    cores = [_street_core(token.folded) for token in tokens]
    found: dict[str, MatchKey] = {}
    for i in _house_numbers(tokens):
        token = tokens[i]
        low, high = max(0, i - _WINDOW), min(len(tokens), i + _WINDOW + 1)
        if not any(cores[j][1] for j in range(low, high)):
            continue
        for j in range(low, high):
            core = cores[j][0]
            if core and j != i:
                key = f"S:{_house_number_key(token.folded)}|{core}"
                span = (min(token.start, tokens[j].start), max(token.end, tokens[j].end))
                found.setdefault(key, MatchKey(EntityType.ADDRESS, key, *span))
    return list(found.values())


#: Street types by meaning, so that an abbreviation meets its word in any of the languages above
#: ("Kalverstr." and "Kalverstraat", "C/ Mayor" and "Calle Mayor", "Pde" and "Parade") while
#: "12 Baker Road" stays apart from "12 Baker Street" (``typed_street_keys``). A type not listed
#: is its own class.
_STREET_CLASSES = {
    word: kind
    for kind, words in {
        "street": "street st strasse str straat calle c via v rue",
        "road": "road rd route rte carretera ctra",
        "avenue": "avenue ave av avda avenida",
        "place": "place pl platz plaza pza piazza pzza p plein",
        "lane": "lane ln laan",
        "drive": "drive dr",
        "court": "court ct crt",
        "square": "square sq",
        "terrace": "terrace ter tce",
        "crescent": "crescent cres",
        "close": "close cl",
        "boulevard": "boulevard blvd bd bld bvd",
        "parkway": "parkway pkwy",
        "highway": "highway hwy",
        "gardens": "gardens gdns",
        "parade": "parade pde",
        "circuit": "circuit cct",
        "allee": "allee all",
        "impasse": "impasse imp",
        "chemin": "chemin ch",
        "faubourg": "faubourg fbg",
        "paseo": "paseo po",
        "camino": "camino cno",
        "ronda": "ronda rda",
        "viale": "viale vle",
        "corso": "corso cso",
        "largo": "largo lgo",
    }.items()
    for word in _transliterated(words.split())
}


def _street_class(folded: str) -> str:
    """Return the street type class of a folded street word or of a compound's suffix."""
    if folded in _STREET_CLASSES or folded in _STREET_WORDS:
        return _STREET_CLASSES.get(folded, folded)
    suffix = next((suffix for suffix in _STREET_SUFFIXES if folded.endswith(suffix)), folded)
    return _STREET_CLASSES.get(suffix, suffix)


def _undotted(text: str) -> tuple[str, list[int]]:
    """Return ``text`` with abbreviation dots removed ("P.zza") and where each was, to map the
    spans found in it back onto ``text``."""
    removed = [match.start() for match in _ABBREVIATION_DOT_RE.finditer(text)]
    return _ABBREVIATION_DOT_RE.sub("", text), removed


def _original(position: int, removed: list[int]) -> int:
    for index in removed:
        if index <= position:
            position += 1
        else:
            break
    return position


_TYPED_HOUSE_NUMBER_RE = re.compile(r"^\d{1,5}[a-z]?$")


def typed_street_keys(text: str) -> list[MatchKey]:
    """Return the typed street keys in ``text``: house number, street word and street type class.

    Like ``address_keys`` around each house number, but each street word is keyed with the class
    of the nearest street type ("T:17|kalver|street" for "Kalverstr. 17" and "Kalverstraat 17"),
    so a key names one street, not every street of that name.
    """
    clean, removed = _undotted(text)
    tokens = _tokens(clean)
    cores = [_street_core(token.folded) for token in tokens]
    found: dict[str, MatchKey] = {}
    # One letter after the number at most: "6SZ" of "M11 6SZ" is a postcode's inward code.
    for i in (i for i in _house_numbers(tokens) if _TYPED_HOUSE_NUMBER_RE.match(tokens[i].folded)):
        token = tokens[i]
        low, high = max(0, i - _WINDOW), min(len(tokens), i + _WINDOW + 1)
        markers = [j for j in range(low, high) if cores[j][1]]
        if not markers:
            continue
        for j in range(low, high):
            core = cores[j][0]
            if not core or j == i:
                continue
            marker = min(markers, key=lambda k: (abs(k - j), k))
            key = f"T:{_house_number_key(token.folded)}|{core}|{_street_class(tokens[marker].folded)}"
            start, end = min(token.start, tokens[j].start), max(token.end, tokens[j].end)
            found.setdefault(
                key,
                MatchKey(EntityType.ADDRESS, key, _original(start, removed), _original(end - 1, removed) + 1),
            )
    return list(found.values())


def house_number_address_spans(text: str) -> list[tuple[int, int]]:
    """Return the spans where a house number stands beside its street, as postal addresses are
    laid out: the number before a street type at most three words on ("12 Mill Road", "49 all.
    des Châtaigniers"), right after a compound street ("Goethestraße 3"), or after a street type
    that opens its street ("Calle Mayor, 32", "Piazza San Martino 17"), or after a comma that
    follows a street ending in its type ("Gran Vía, 7"). Narrower than
    ``address_keys``, which pairs any number with any word near a street type: "Shop Street,
    Dublin 2" holds no house number, nor "the account in 2019" beside "van Dijk"."""
    clean, removed = _undotted(text)
    tokens = _tokens(clean)
    cores = [_street_core(token.folded) for token in tokens]
    spans: list[tuple[int, int]] = []
    for i in (i for i in _house_numbers(tokens) if _TYPED_HOUSE_NUMBER_RE.match(tokens[i].folded)):
        first = last = None
        following = None
        for j in range(i + 1, min(len(tokens), i + 4)):
            if not clean[tokens[j - 1].end : tokens[j].start].isspace():
                break  # a street runs on from its number without punctuation
            if cores[j][1]:
                following = j
                break
        if following is not None:
            first, last = i, following
        elif i and cores[i - 1][1] and cores[i - 1][0]:
            first, last = i - 1, i
        else:
            for j in range(i - 1, max(-1, i - 5), -1):
                if cores[j][1] and cores[j][0] is None:
                    gap = clean[tokens[j - 1].end : tokens[j].start] if j else " "
                    opens = not j or not gap.isspace() or cores[j - 1][0] is None
                    if opens and j < i - 1:
                        first, last = j, i
                    elif (
                        j == i - 1
                        and not opens
                        and clean[tokens[j].end : tokens[i].start] == ", "
                        and cores[j - 1][0] is not None
                        and clean[tokens[i].end : tokens[i].end + 1] in ("", ",", ";", ".", "\n")
                    ):
                        # The street's name, then its type, a comma and the number that closes
                        # the segment: "Gran Vía, 7, 11006 Cádiz" (not "Shop Street, 2019 was").
                        first, last = j - 1, i
                    break
        if first is not None:
            spans.append(
                (_original(tokens[first].start, removed), _original(tokens[last].end - 1, removed) + 1)
            )
    return spans


def typed_street_identifier_keys(value: str) -> list[MatchKey]:
    """Return the typed street key of a postal address as given ("T:17|kalver|street"), or none
    when its street has no street type: the house number and street word of
    ``address_identifier_keys`` with the class of the street's type."""
    keys = address_identifier_keys(value)
    if not keys:
        return []
    number, word = keys[0].key[2:].split("|")
    parts = [part for part in re.split(r"[,;\n]+", _ABBREVIATION_DOT_RE.sub("", value)) if part.strip()]
    for part in parts:
        tokens = _tokens(part)
        cores = [_street_core(token.folded) for token in tokens]
        if any(core == word for core, _ in cores):
            markers = [token.folded for token, (_, marker) in zip(tokens, cores) if marker]
            if markers:
                return [
                    MatchKey(
                        EntityType.ADDRESS, f"T:{number}|{word}|{_street_class(markers[0])}", variant=True
                    )
                ]
    return []


def address_identifier_keys(value: str) -> list[MatchKey]:
    """Return the key of a postal address as given: its house number and its street's longest word.

    The street is the part of the address (between commas or line breaks) that holds a street
    type, or else the first part with a word and a house number; the house number is the one
    nearest to it, in the same part if it has one ("Calle de Alcalá, 9" has it in the next),
    never a flat or floor number. City and postcode are not needed.
    """
    parts = [part for part in re.split(r"[,;\n]+", _ABBREVIATION_DOT_RE.sub("", value)) if part.strip()]
    tokens: list[_Token] = []
    part_of: list[int] = []
    for index, part in enumerate(parts):
        for token in _tokens(part):
            tokens.append(token)
            part_of.append(index)
    cores = [_street_core(token.folded) for token in tokens]
    numbers = _house_numbers(tokens)
    if not numbers:
        return []
    markers = [i for i, (_, marker) in enumerate(cores) if marker]
    if markers:
        street_part = part_of[markers[0]]
        anchor = markers[0]
    else:
        candidates = [
            part_of[i] for i in numbers if any(c for (c, _), p in zip(cores, part_of) if p == part_of[i])
        ]
        if not candidates:
            return []
        street_part = candidates[0]
        anchor = next(i for i, p in enumerate(part_of) if p == street_part)
    words = [core for (core, _), p in zip(cores, part_of) if core and p == street_part]
    if not words:
        return []
    same_part = [i for i in numbers if part_of[i] == street_part]
    number = _house_number_key(tokens[min(same_part or numbers, key=lambda i: (abs(i - anchor), i))].folded)
    # The street's own name: the word of a compound ("Vlugt" of "Vlugtlaan") over a title
    # ("Burgemeester", often cut to "Burg."), else the longest word.
    compound = [core for (core, marker), p in zip(cores, part_of) if core and marker and p == street_part]
    longest = compound[0] if compound else max(words, key=lambda word: (len(word), word))
    # A variant: the key is a street and house number, not a whole address (not duplicate evidence).
    return [MatchKey(EntityType.ADDRESS, f"S:{number}|{longest}", variant=True)]


# --- names ---------------------------------------------------------------------------------------

_NAME_STOPWORD_SPELLINGS = frozenset(
    """
the a an and or of to in on at for by with from as is are was were be been it its this that these
those my your our his her their me we you he she they i hi hello dear thanks thank regards best
please mr mrs ms miss dr prof sir madam order ticket account customer phone email mail address
street road re fw fwd subject date from sent to cc bcc ref no number call calls called said says
e et und
""".split()
)
_NAME_STOPWORDS = _transliterated(_NAME_STOPWORD_SPELLINGS)


def _name_word(token: _Token) -> bool:
    if len(token.folded) == 1:
        return token.initial and token.folded.isalpha()
    return token.folded.isalpha() and token.folded not in _NAME_STOPWORDS


def _capitalised(text: str, token: _Token) -> bool:
    return text[token.start].isupper()


def _capitalised_name_word(text: str, token: _Token) -> bool:
    return _capitalised(text, token) and _name_word(token)


def _particle_in_text(text: str, tokens: list[_Token], k: int) -> bool:
    """Return whether ``tokens[k]`` joins a family name here: in running text a name's ends are
    where its capitalised words stop ("Daniel Del Rio" against "Hoa Le called")."""
    token = tokens[k]
    if token.folded not in NAME_PARTICLES or token.initial:  # "o. Brien" is an initial, "O'Brien" one word
        return False

    def name_word_at(i: int) -> bool:
        return (
            0 <= i < len(tokens)
            and not tokens[max(i, k)].line_break_before
            and _capitalised_name_word(text, tokens[i])
        )

    capitalised = _capitalised(text, token)
    if not is_name_particle(text[token.start : token.end], ends_name=not name_word_at(k + 1)):
        return False
    # A capitalised particle that begins a two-word name is its given name here ("Al Green"):
    # the request side reads it so (``_name_words``), and a review follows locating.
    return not (capitalised and not name_word_at(k - 1) and name_word_at(k + 1) and not name_word_at(k + 2))


def _name_words(text: str, tokens: list[_Token]) -> list[_Token]:
    """Return the tokens of a name as typed without its particles (the name is all of ``tokens``).

    A name that would be one word without them keeps a capitalised first word: "Al Green" is
    two names where "Sanne van der Berg" drops two particles."""
    last = len(tokens) - 1
    words = [
        token
        for k, token in enumerate(tokens)
        if token.initial or not is_name_particle(text[token.start : token.end], ends_name=k == last)
    ]
    if len(tokens) == 2 and words == tokens[1:] and _capitalised(text, tokens[0]):
        return tokens
    return words


def _name_like(text: str, tokens: list[_Token]) -> list[bool]:
    """Return which tokens are name-like: a word that is no stop word, or a stop word that is a
    name here: spelt otherwise ("Mỹ", "Tô" only fold to "my", "to"), capitalised straight after
    a capitalised name ("Nguyen Van An", "Mohamed Said", "Anna Best"), or capitalised straight
    before one when people bear it as a name ("An Bùi", "Said Khan"). Labels come before a name
    ("Customer John", "Dear John") and are nobody's name, so they stay stop words."""
    flags: list[bool] = []
    for k, token in enumerate(tokens):
        name_like = _name_word(token)
        if not name_like and len(token.folded) > 1 and token.folded in _NAME_STOPWORDS:
            written = unicodedata.normalize("NFC", text[token.start : token.end].lower())
            name_like = (
                written not in _NAME_STOPWORD_SPELLINGS
                or (
                    _capitalised(text, token)
                    and token.spaced_before
                    and flags[k - 1]
                    and _capitalised(text, tokens[k - 1])
                )
                or (
                    _capitalised(text, token)
                    and k + 1 < len(tokens)
                    and tokens[k + 1].spaced_before
                    and _capitalised_name_word(text, tokens[k + 1])
                    and is_known_name(token.folded)
                )
            )
        flags.append(name_like)
    return flags


def name_keys(text: str) -> list[MatchKey]:
    """Return the name keys in ``text``: sorted pairs of adjacent and next-but-one name-like words."""
    every = _tokens(text)
    tokens = [token for k, token in enumerate(every) if not _particle_in_text(text, every, k)]
    name_like = _name_like(text, tokens)
    found: dict[str, MatchKey] = {}
    for i, token in enumerate(tokens):
        if not name_like[i]:
            continue
        for j in (i + 1, i + 2):
            if j >= len(tokens) or tokens[j].line_break_before or not name_like[j]:
                continue
            first, second = sorted((token.folded, tokens[j].folded))
            key = f"N:{first}|{second}"
            found.setdefault(key, MatchKey(EntityType.PERSON, key, token.start, tokens[j].end))
    return list(found.values())


@dataclass(frozen=True)
class _NameParts:
    """A name as typed, in the parts the request's keys are made of."""

    given: list[str]  # given names, the first first (titles and particles left out)
    family: list[str]  # family-name words (particles left out)
    family_written: list[str]  # what follows the first given name, particles included ("di", "stefano")
    after_apostrophes: list[str]  # "orto" of "Dell'Orto", "connor" of "O'Connor"
    #: The first given name as written, folded but not transliterated: the nickname table's
    #: "michael" (for "mick"), which the key's transliteration makes "michal".
    first_given_written: str = ""


def _name_parts(value: str) -> _NameParts:
    """Return the parts of a name as typed, "Family, Given" understood."""
    if "," in value:
        family_text, _, given_text = value.partition(",")
        given_tokens = [t for t in _tokens(given_text) if t.folded not in NAME_TITLES]
        named = _name_words(given_text, given_tokens)
        words = [t.folded for t in named]
        first_written = given_text[named[0].start : named[0].end] if named else ""
        # The family part ends the name but does not begin it: "Van Der Berg, Sanne".
        family_tokens = _tokens(family_text)
        family = [
            t.folded
            for k, t in enumerate(family_tokens)
            if not is_name_particle(family_text[t.start : t.end], ends_name=k == len(family_tokens) - 1)
        ]
        family_written = [t.folded for t in _tokens(family_text)]
    else:
        tokens = [t for t in _tokens(value) if t.folded not in NAME_TITLES]
        family_text = value[tokens[1].start :] if len(tokens) > 1 else ""
        named = _name_words(value, tokens)
        words = [t.folded for t in named]
        first_written = value[named[0].start : named[0].end] if named else ""
        family = words[-1:] if len(words) >= 2 else []
        words = words[:-1] if family else words
        family_written = [t.folded for t in tokens[1:]]
    after = [part.split()[0] for part in re.split(rf"[{_APOSTROPHE_CLASS}]", family_text)[1:] if part.split()]
    return _NameParts(
        given=words,
        family=family,
        family_written=family_written,
        after_apostrophes=[_folded_word(part) for part in after],
        first_given_written=_fold_token(_POSSESSIVE_RE.sub("", first_written)),
    )


def name_identifier_keys(value: str) -> list[MatchKey]:
    """Return the keys that find a name as given: exact given + family, then the variants."""
    parts = _name_parts(value)
    given, family = parts.given, parts.family
    if not given or not family:
        return []
    first = given[0]
    nicknames = {_folded_word(name) for name in nickname_equivalents(parts.first_given_written or first)}
    keys: dict[str, bool] = {}

    def add(a: str, b: str, variant: bool) -> None:
        if a and b:
            low, high = sorted((a, b))
            key = f"N:{low}|{high}"
            keys[key] = keys.get(key, True) and variant

    # "Dell'Orto" is also written "Dell Orto", "O'Connor" "O Connor": the part after the apostrophe.
    surnames = dict.fromkeys(
        (family[-1], family[0], *(part for part in parts.after_apostrophes if len(part) >= 3))
    )
    for surname in surnames:
        add(first, surname, variant=surname != family[-1])
        add(first[0], surname, variant=True)  # "J. Smith"
        for nickname in nicknames:
            add(nickname, surname, variant=True)
        # Short forms made by cutting the name: "Steph" for Stephane, "Betta" for Elisabetta.
        for cut in {first[:n] for n in range(3, len(first))} | {first[-n:] for n in range(4, len(first))}:
            add(cut, surname, variant=True)
    for initial in {family[-1][0], family[0][0], *(word[0] for word in parts.family_written)}:
        add(first, initial, variant=True)  # "Robert M.", "Elisabetta D." for Di Stefano
    for middle in given[1:]:
        add(middle, family[-1], variant=True)  # known by a middle name
        # or the middle word is a first family name ("José García Márquez" is "José García", "José G.")
        add(first, middle, variant=True)
        add(first, middle[0], variant=True)
    return [MatchKey(EntityType.PERSON, key, variant=variant) for key, variant in keys.items()]


# --- everything at once --------------------------------------------------------------------------


def record_match_keys(
    text: str, *, account_prefixes: Mapping[str, Iterable[str]] | None = None
) -> list[MatchKey]:
    """Return every match key of a record's text, de-duplicated per (kind, key)."""
    emails = email_keys(text)
    # The rest is read with the e-mail addresses blanked out (same length, so spans hold): the
    # words of "john.smith@example.com" are not a name, nor "2023" in it a house number.
    rest = text
    for key in emails:
        rest = rest[: key.start] + " " * (key.end - key.start) + rest[key.end :]
    found: dict[tuple[EntityType, str], MatchKey] = {}
    for key in (
        *emails,
        *phone_keys(rest),
        *account_keys(rest, prefixes=account_prefixes),
        *address_keys(rest),
        *name_keys(rest),
    ):
        found.setdefault((key.entity_type, key.key), key)
    return list(found.values())


def identifier_match_keys(
    entity_type: EntityType | str, value: str, *, account_prefixes: Mapping[str, Iterable[str]] | None = None
) -> list[MatchKey]:
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
