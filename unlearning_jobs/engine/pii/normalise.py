"""Normalise personal-data values so that one person's value always hashes the same.

The index, a request's identifiers and the guardrails all pass values through these functions
before hashing (see ``hashing.py``); a difference of case, accent, spacing or format between the
training text and what the data subject typed must not hide a match. Every function raises
``ValueError`` (``NormalisationError``) with a message saying what was wrong, so callers can
drop a malformed value and count it instead of crashing a scan.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from functools import lru_cache
from importlib import resources

import phonenumbers

from .entities import EntityType

__all__ = [
    "NormalisationError",
    "normalise_email",
    "normalise_phone",
    "normalise_name",
    "name_token_sorted",
    "normalise_address",
    "normalise_account_id",
    "normalise_date_of_birth",
    "normalise_location",
    "normalise_value",
    "name_spellings",
    "name_variants",
    "nickname_equivalents",
    "nickname_table",
]


class NormalisationError(ValueError):
    """A value cannot be normalised (malformed e-mail, invalid phone number, empty name…)."""


#: Letters that NFKD does not decompose into a base letter plus a combining mark (shared with the
#: match keys, which fold the same letters).
EXTRA_FOLDS = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ß": "ss",
        "ı": "i",
    }
)
_APOSTROPHES = "'\u2019\u2018\u02bc`\u00b4"


def _fold(value: str) -> str:
    """Return ``value`` case- and accent-folded, with punctuation turned into single spaces.

    Apostrophes are dropped rather than spaced so that "O'Brien" and "OBrien" agree; every other
    character that is not a letter or digit separates tokens ("Jean-Luc" → "jean luc").
    """
    decomposed = unicodedata.normalize("NFKD", value.translate(EXTRA_FOLDS))
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char) or char in _APOSTROPHES:
            continue
        category = unicodedata.category(char)
        kept.append(char if category[0] in "LN" else " ")
    return " ".join("".join(kept).casefold().split())


def _require_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise NormalisationError(f"{what} must be a string, got {type(value).__name__}")
    stripped = value.strip()
    if not stripped:
        raise NormalisationError(f"{what} is empty")
    return stripped


# --- e-mail ---------------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.][^@\s]*\.[^@\s.]+$")


def normalise_email(value: str) -> str:
    """Return the e-mail address stripped and case-folded; raise ``NormalisationError`` if malformed.

    The whole address is case-folded, local part included: providers treat local parts
    case-insensitively in practice, and a subject who writes "John.Smith@" must match
    "john.smith@" in training text. A "mailto:" prefix, angle brackets and trailing sentence
    punctuation are tolerated because they surround addresses in free text.
    """
    text = _require_text(value, "e-mail address")
    # Peel the wrappers until none is left ("<mailto:…>" has two), so that the result is a fixed
    # point: normalising a normalised address must not change it, or its hash would differ.
    unwrapped = None
    while unwrapped != text:
        unwrapped = text
        if text.lower().startswith("mailto:"):
            text = text[len("mailto:") :]
        text = text.strip().strip("<>").rstrip(".,;:!?)").strip()
    folded = text.casefold()
    if any(ord(char) < 32 or ord(char) == 127 for char in folded):
        # a control character is never part of an address; it must not reach a hash either
        raise NormalisationError("e-mail address is malformed: it holds a control character")
    if folded.count("@") != 1 or not _EMAIL_RE.match(folded):
        raise NormalisationError(
            "e-mail address is malformed: expected one '@' between a local part and a dotted "
            "domain, with no spaces"
        )
    local, domain = folded.split("@")
    if ".." in domain or any(not label for label in domain.split(".")):
        raise NormalisationError("e-mail address is malformed: its domain has an empty label")
    return f"{local}@{domain}"


# --- phone ----------------------------------------------------------------------------------


def normalise_phone(value: str, default_region: str = "GB") -> str:
    """Return the phone number in E.164 ("+442079460958"); raise ``NormalisationError`` if invalid.

    ``default_region`` (ISO 3166 alpha-2) interprets numbers written without a country code, so
    "020 7946 0958" with "GB" and "+44 20 7946 0958" give the same value. Numbers that
    ``phonenumbers`` does not consider valid for their region are refused: hashing a
    half-parsed digit string would make false matches between unrelated people.
    """
    text = _require_text(value, "phone number")
    try:
        parsed = phonenumbers.parse(text, default_region.upper() if default_region else None)
    except phonenumbers.NumberParseException as error:
        raise NormalisationError(f"phone number cannot be parsed: {error}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise NormalisationError(f"phone number is not a valid number (default region {default_region!r})")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# --- names ----------------------------------------------------------------------------------

#: Titles left out of a name wherever it is read (locating's keys too: "Rev. John Smith" is John).
NAME_TITLES = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "professor",
        "sir",
        "dame",
        "madam",
        "mister",
        "rev",
        "fr",
    }
)
_SUFFIXES = frozenset({"jr", "jnr", "sr", "snr", "ii", "iii", "iv", "phd", "md", "esq"})
# spaCy sometimes includes the possessive in a PERSON span ("Vasquez's").
_POSSESSIVE = re.compile(r"['\u2019]s\b\s*$", re.IGNORECASE)


#: Words that join a family name to the word after them and are no name of their own there: "van
#: der Berg", "'t Hart", "Ó Briain", "Nic Giolla", "bin Salman", "García y López". One list for
#: locating's keys and the guard's forms and detection. Several are names as well ("Le", "Ni" and
#: "De" are family names): :func:`is_name_particle` says where each is which.
NAME_PARTICLES = frozenset(
    "van von der den de del della da di dos das du des la le lo ter ten y zu bin ibn al el t o ni nic ui st".split()
)


#: How particles are written, accents included ("Ó Briain", "Ní Bhriain"). A word that only folds
#: to one is a name: "Văn", "Vân" and "Lê" are Vietnamese names, not "van" and "le".
_PARTICLE_SPELLINGS = NAME_PARTICLES | {"ó", "ní", "uí"}


def is_particle_spelling(word: str) -> bool:
    """Return whether ``word`` as written (any case, accents kept) is spelt as a particle."""
    return unicodedata.normalize("NFC", word.strip(_APOSTROPHES).lower()) in _PARTICLE_SPELLINGS


def is_name_particle(written: str, *, ends_name: bool) -> bool:
    """Return whether a word of a name, as written, joins the family name rather than being a name.

    A particle written in lower case always does ("Jacobus van", the NER's "Conferma da");
    written with a capital it is a name where nothing of the name follows it ("Hoa Le", "Yan
    Ni", "Anna De"): a particle joins a word after it. Without that a request for Hoa Le had no
    name keys at all and the guard refused her name as one word. First in a name a capitalised
    particle stays one ("Di Stefano" and "De Luca" alone are family names, not two names), which
    also makes "Al Green" one word here: locating, which a review follows, reads that case
    itself (``match_keys``); the guard does not. A word spelt otherwise is never one ("Lê Văn
    Thành": :func:`is_particle_spelling`).
    """
    if not is_particle_spelling(written):
        return False
    return not (written.strip(_APOSTROPHES)[:1].isupper() and ends_name)


def normalise_name(value: str) -> str:
    """Return a person's name case- and accent-folded, in given-name-first order.

    "Smith, John" becomes "john smith": one comma is read as "family name, given names" unless
    what follows it is a suffix ("John Smith, Jr."). A trailing possessive ("Smith's") is
    dropped. Leading titles (Mr, Dr…) and trailing
    suffixes (Jr, PhD…) are dropped because the same person is written with and without them.
    """
    text = _POSSESSIVE.sub("", _require_text(value, "name"))
    parts = text.split(",")
    if len(parts) == 2:
        family, given = parts
        if _fold(given) and set(_fold(given).split()) <= _SUFFIXES:
            text = family
        elif _fold(family) and _fold(given):
            text = f"{given} {family}"
    tokens = _fold(text).split()
    while len(tokens) > 1 and tokens[0] in NAME_TITLES:
        tokens.pop(0)
    while len(tokens) > 1 and tokens[-1] in _SUFFIXES:
        tokens.pop()
    if not tokens:
        raise NormalisationError("name has no letters or digits")
    return " ".join(tokens)


def name_token_sorted(value: str) -> str:
    """Return the normalised name with its tokens sorted, so word order does not matter."""
    return " ".join(sorted(normalise_name(value).split()))


@lru_cache(maxsize=1)
def nickname_table() -> dict[str, frozenset[str]]:
    """Return, for each name in the shipped ``nicknames.csv``, the set of names equivalent to it.

    Two names are equivalent when one is a nickname of the other or both are nicknames of the
    same formal name ("bill" ~ "william" ~ "will" ~ "liam").
    """
    text = resources.files(__package__).joinpath("nicknames.csv").read_text(encoding="utf-8")
    rows = csv.reader(line for line in io.StringIO(text) if not line.startswith("#"))
    header = next(rows)
    if header != ["nickname", "formal"]:
        raise NormalisationError(f"nicknames.csv has an unexpected header {header!r}")
    groups: dict[str, set[str]] = {}
    for row in rows:
        nickname, formal = (cell.strip() for cell in row)
        groups.setdefault(formal, {formal}).add(nickname)
    table: dict[str, set[str]] = {}
    for members in groups.values():
        for name in members:
            table.setdefault(name, set()).update(members)
    return {name: frozenset(names) for name, names in table.items()}


def nickname_equivalents(given_name: str) -> frozenset[str]:
    """Return the normalised names equivalent to ``given_name`` (itself included)."""
    folded = _fold(given_name)
    return nickname_table().get(folded, frozenset({folded}))


_HYPHENATED_WORD = re.compile(r"[^\W\d_]+(?:[-\u2010\u2011][^\W\d_]+)+")


def _name_units(full_name: str, tokens: list[str]) -> list[str]:
    """Group ``tokens`` so that a hyphenated name ("Smith-Jones") stays one unit.

    Folding turns the hyphen into a space; without this, "William Smith-Jones" would yield the
    variant "william jones" (the hyphenated half read as a middle name dropped), and every
    William Jones would match the subject.
    """
    joined = [_fold(word).split() for word in _HYPHENATED_WORD.findall(full_name)]
    units: list[str] = []
    index = 0
    while index < len(tokens):
        for group in joined:
            if group and tokens[index : index + len(group)] == group:
                units.append(" ".join(group))
                index += len(group)
                break
        else:
            units.append(tokens[index])
            index += 1
    return units


#: Letters that German and Scandinavian names are also written with two of ("Lüdenscheidt" as
#: "Luedenscheidt", "Søren" as "Soeren", "Håkon" as "Haakon"): folding reads them as one letter
#: ("ludenscheidt"), so the spelling with the pair is a form of its own.
_WRITTEN_OUT = str.maketrans(
    {
        letter: pair if letter.islower() else pair.capitalize()
        for pair, letters in {"ae": "äÄ", "oe": "öÖøØ", "ue": "üÜ", "aa": "åÅ"}.items()
        for letter in letters
    }
)


def name_spellings(full_name: str) -> tuple[str, ...]:
    """Return ``full_name`` and, where it holds ä, ö, ü, ø or å, its spelling with them written
    out ("Meyer-Luedenscheidt"), which folding alone never reaches.

    Only this direction: a name written "Koehler" may be Köhler or a Koehler, and "Manuel" is no
    "Manül". Locating reads both directions on its own (``match_keys`` folds "oe" in every word
    of text and request alike); hashed forms need the spelling itself.
    """
    composed = unicodedata.normalize("NFC", full_name)
    written_out = composed.translate(_WRITTEN_OUT)
    return (full_name,) if written_out == composed else (full_name, written_out)


def name_variants(full_name: str, *, all_spellings: bool = True) -> set[str]:
    """Return normalised forms under which ``full_name`` may appear in training text.

    Includes: the name in order; tokens sorted; initials ("j smith", "john s", "j a smith"; the
    given name's initial only, never a nickname's);
    first and last without middle names; family name first ("smith john"); and each of these
    with the given name swapped for its nicknames or formal name ("bill smith" for "William
    Smith"); all of it for each of the name's spellings (``name_spellings``), or for the name as
    written alone with ``all_spellings=False`` (for a caller that goes through the spellings
    itself). Every variant is itself a fixed point of ``normalise_name`` so it can be hashed
    directly.
    """
    spellings = name_spellings(full_name) if all_spellings else (full_name,)
    return set().union(*(_spelling_variants(spelling) for spelling in spellings))


def _spelling_variants(full_name: str) -> set[str]:
    tokens = normalise_name(full_name).split()
    variants: set[str] = {" ".join(tokens), " ".join(sorted(tokens))}
    if len(tokens) == 1:
        variants.update(nickname_equivalents(tokens[0]))
        return _fixed_points(variants, tokens)
    units = _name_units(full_name, tokens)
    if len(units) == 1:
        return _fixed_points(variants, tokens)
    first, middles, last = units[0], units[1:-1], units[-1]
    # An initial is the given name's own: "s hoffmann" is no form of Alexander Hoffmann though
    # Sandy is one of his nicknames; an initial and a family name are weak enough as they are.
    initial = first[0]
    for given in nickname_equivalents(first):
        full = [given, *middles, last]
        variants.add(" ".join(full))
        variants.add(" ".join(sorted(full)))
        variants.add(f"{given} {last}")
        variants.add(f"{last} {given}")
        variants.add(f"{given} {last[0]}")
        variants.add(f"{initial} {last}")
        if middles:
            variants.add(" ".join([initial, *(m[0] for m in middles), last]))
            variants.add(" ".join([given, *(m[0] for m in middles), last]))
    return _fixed_points(variants, tokens)


def _fixed_points(variants: set[str], tokens: list[str]) -> set[str]:
    """Return the variants as the index would compute them for text written that way.

    A reordered variant can put a title or suffix where normalisation drops it ("0 mr" gives
    "mr 0", read as "0"; "jr a" sorted is "a jr", read as "a"): each is normalised until it no
    longer changes, and one word is kept only for a one-word name.
    """
    fixed = {_normalised_to_fixed_point(variant) for variant in variants}
    return {variant for variant in fixed if variant and (len(variant.split()) > 1 or len(tokens) == 1)}


def _normalised_to_fixed_point(name: str) -> str:
    """Return ``normalise_name`` applied until nothing changes, or "" when nothing of a name is left."""
    for _ in range(4):
        try:
            again = normalise_name(name)
        except NormalisationError:
            return ""
        if again == name:
            return name
        name = again
    return name


# --- addresses, account ids, dates, places --------------------------------------------------

_ADDRESS_ABBREVIATIONS = {
    "st": "street",
    "str": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "ln": "lane",
    "dr": "drive",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "blvd": "boulevard",
    "hwy": "highway",
    "pkwy": "parkway",
    "cres": "crescent",
    "cl": "close",
    "gdns": "gardens",
    "gr": "grove",
    "ter": "terrace",
    "terr": "terrace",
    "apt": "apartment",
    "ste": "suite",
    "fl": "floor",
    "bldg": "building",
    "mt": "mount",
    "n": "north",
    "s": "south",
    "e": "east",
    "w": "west",
    "ne": "northeast",
    "nw": "northwest",
    "se": "southeast",
    "sw": "southwest",
    "no": "number",
    "hse": "house",
    "rte": "route",
    "cir": "circle",
    "way": "way",
}


def normalise_address(value: str) -> str:
    """Return a postal address case-, accent- and punctuation-folded with abbreviations expanded.

    "12 Baker St., London" and "12 baker street london" agree. Abbreviations are expanded one
    way only (st → street) so both sides meet in the long form; "St" for "Saint" becomes
    "street" too, which is harmless because both sides are folded the same way.
    """
    text = _require_text(value, "address")
    tokens = [_ADDRESS_ABBREVIATIONS.get(token, token) for token in _fold(text).split()]
    if not tokens:
        raise NormalisationError("address has no letters or digits")
    return " ".join(tokens)


_ACCOUNT_SEPARATORS = re.compile(r"[\s\-_./:#]+")


def normalise_account_id(value: str) -> str:
    """Return an account id upper-cased with separators removed ("acc 123-456" → "ACC123456").

    Separators are dropped because customers and agents write the same id as "ACC-123456",
    "ACC 123456" or "acc123456".
    """
    text = _require_text(value, "account id")
    folded = _ACCOUNT_SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()
    if not folded.isalnum() or not folded.isascii():
        raise NormalisationError("account id may hold only letters, digits and separators")
    if len(folded) < 3:
        raise NormalisationError("account id is shorter than 3 characters")
    return folded


_MONTHS = {
    name: index
    for index, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_NUMERIC_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?(?: of)? ([a-z]+) (\d{4})$")
_MONTH_DAY_YEAR = re.compile(r"^([a-z]+) (\d{1,2})(?:st|nd|rd|th)? (\d{4})$")


def normalise_date_of_birth(value: str, *, day_first: bool = True) -> str:
    """Return a date as ISO "YYYY-MM-DD"; raise ``NormalisationError`` if it is not a real date.

    Accepts "1985-03-12", "12/03/1985", "12 March 1985", "12th of March, 1985" and
    "March 12, 1985" and "the 25th of February in the year 1958". ``day_first`` decides
    "03/04/1985" (True: 3 April, the UK reading).
    """
    text = _require_text(value, "date")
    compact = " ".join(text.casefold().replace(",", " ").split())
    compact = compact.removeprefix("the ").replace(" in the year ", " ")
    year = month = day = None
    if match := _ISO_DATE.match(compact):
        year, month, day = (int(part) for part in match.groups())
    elif match := _NUMERIC_DATE.match(compact):
        first, second, year = (int(part) for part in match.groups())
        day, month = (first, second) if day_first else (second, first)
    elif (match := _DAY_MONTH_YEAR.match(compact)) and match.group(2) in _MONTHS:
        day, month, year = int(match.group(1)), _MONTHS[match.group(2)], int(match.group(3))
    elif (match := _MONTH_DAY_YEAR.match(compact)) and match.group(1) in _MONTHS:
        month, day, year = _MONTHS[match.group(1)], int(match.group(2)), int(match.group(3))
    else:
        raise NormalisationError("date is not in a recognised format (e.g. 1985-03-12)")
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError as error:
        raise NormalisationError(f"date does not exist: {error}") from None


def normalise_location(value: str) -> str:
    """Return a place name (city, region) case-, accent- and punctuation-folded.

    A leading article is dropped: spaCy tags "the United States" and "United States" alike.
    """
    folded = _fold(_require_text(value, "location")).removeprefix("the ").strip()
    if not folded:
        raise NormalisationError("location has no letters or digits")
    return folded


def normalise_value(entity_type: EntityType | str, value: str, *, default_region: str = "GB") -> str:
    """Return ``value`` normalised by the rule for ``entity_type`` (names: in-order form)."""
    kind = EntityType(entity_type)
    if kind is EntityType.EMAIL:
        return normalise_email(value)
    if kind is EntityType.PHONE:
        return normalise_phone(value, default_region)
    if kind is EntityType.PERSON:
        return normalise_name(value)
    if kind is EntityType.ADDRESS:
        return normalise_address(value)
    if kind is EntityType.ACCOUNT_ID:
        return normalise_account_id(value)
    if kind is EntityType.DATE_OF_BIRTH:
        return normalise_date_of_birth(value, day_first=default_region.upper() != "US")
    return normalise_location(value)
