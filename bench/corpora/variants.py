"""An independent corpus of erasure requests and the training records that mention them.

Why this exists: a matcher measured on the data its own demo generator wrote will look perfect,
because the generator writes identifiers the way the matcher expects. Real records are written by
agents, couriers, web forms, CRMs and the people themselves, each in their own way. This module
writes such records from the conventions in ``countries.py`` and from how people really type, and
labels every mention of a requested identifier with its kind and *variant family* (how it differs
from what the person typed on the erasure form). It was written without reading Lethe's matching,
normalisation or recogniser code, or its demo generator.

Each person gets:
- a request (names, e-mails, phones, addresses, account ids, country) as typed on a form;
- "strong" records that carry at least one of their e-mails, phones, addresses or account ids,
  usually with their name, each mention in a variant form;
- "name-only" records that mention only their name;
- sometimes namesakes (the same name, or the same given and family name with another middle
  name) whose records carry the namesake's own identifiers and are NOT the person's.
Distractor records mention other people only; some are near misses of a requested person (the
same street with another house number, a phone one digit off, the same mailbox at another
provider, an account number one digit off).

The ``heldout`` split is built from a different seed stream, with partly different templates,
more namesakes, more near misses and more combined address variants, so that tuning on ``main``
can be checked on data nobody tuned on.

Usage: ``python -m bench.corpora.variants --out DIR --people 60 --seed 13 --split main``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import string
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from faker import Faker

from bench.corpora.countries import COUNTRIES, SORTING_PARTICLES, CountryProfile, PhonePlan, Street

SPLITS = ("main", "heldout")
KINDS = ("name", "email", "phone", "address", "account_id")
STRONG_KINDS = ("email", "phone", "address", "account_id")

# The families each kind is written in; the README explains each one.
FAMILIES: dict[str, tuple[str, ...]] = {
    "name": (
        "exact",
        "upper",
        "lower",
        "family_comma_given",
        "family_upper_first",
        "initial_family",
        "given_initial",
        "nickname",
        "middle_in_record_only",
        "middle_omitted",
        "middle_form_changed",
        "accents_stripped",
        "accents_added",
        "transliterated",
        "hyphen_space",
        "apostrophe_variant",
        "possessive",
    ),
    "email": (
        "exact",
        "upper",
        "mixed_case",
        "mailto",
        "angle_brackets",
        "at_paren",
        "at_bracket_dot",
        "at_dot_words",
        "trailing_punctuation",
        "gmail_dots",
        "plus_tag",
    ),
    "phone": (
        "exact",
        "reverse_form",
        "area_brackets",
        "international_trunk_brackets",
        "slashes",
        "dashes",
        "dots",
        "no_separators",
        "e164_compact",
        "double_zero",
        "extension",
    ),
    "address": (
        "exact",
        "number_swapped",
        "upper",
        "accents_stripped",
        "transliterated",
        "line_breaks",
        "postcode_city_swapped",
        "street_type_abbreviated",
        "street_type_expanded",
        "country_missing",
        "postcode_missing",
        "flat_line_added",
        "flat_line_dropped",
        "postcode_compact",
        "combined",
    ),
    "account_id": (
        "exact",
        "other_case",
        "no_separator",
        "space_separator",
        "other_separator",
        "leading_zeros_dropped",
        "zero_padded",
        "labelled_number",
        "hash_number",
    ),
}

# Families a name-only record may use: ones that keep the whole given and family name, so that a
# name alone is still evidence of the person (initials and nicknames alone are not).
NAME_ONLY_FAMILIES = (
    "exact",
    "upper",
    "lower",
    "family_comma_given",
    "family_upper_first",
    "accents_stripped",
    "accents_added",
    "transliterated",
    "hyphen_space",
    "apostrophe_variant",
    "middle_in_record_only",
)

# Families only a few identifiers can have (a middle name left off the form, umlauts, a Gmail
# address): drawn two or three times as often where they apply, so each is measured on enough
# occurrences. Umlauts (transliterated) are in only part of the German names and addresses.
RARE_FAMILIES: dict[str, int] = {
    "middle_in_record_only": 2,
    "accents_added": 2,
    "transliterated": 3,
    "hyphen_space": 2,
    "apostrophe_variant": 2,
    "gmail_dots": 2,
    "plus_tag": 2,
    "slashes": 2,
    "street_type_expanded": 2,
    "flat_line_added": 2,
    "flat_line_dropped": 2,
    "leading_zeros_dropped": 2,
    "zero_padded": 2,
    "accents_stripped": 2,
}

# A record's text is built before its id is known; the CLI and ground truth use these tiers.
TIER_STRONG, TIER_NAME_ONLY, TIER_NAMESAKE, TIER_DISTRACTOR = "strong", "name_only", "namesake", "distractor"


# --------------------------------------------------------------------------------------------
# Text folding, as people and systems do it to names and addresses.
# --------------------------------------------------------------------------------------------

_NON_DECOMPOSING = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
    }
)
_GERMAN_TRANSLITERATION = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)


def strip_accents(text: str) -> str:
    """Drop diacritics the way an ASCII-only keyboard or system does: José -> Jose, Weiß -> Weiss."""
    text = text.translate(_NON_DECOMPOSING)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def transliterate(text: str) -> str:
    """German convention for umlauts without the letters: Müller -> Mueller, then strip the rest."""
    return strip_accents(text.translate(_GERMAN_TRANSLITERATION))


def _fill_pattern(rng: random.Random, pattern: str) -> str:
    """Expand a postcode or phone pattern (see countries.py for the placeholders)."""
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(rng.choice(string.digits))
        elif ch == "@":
            out.append(rng.choice("123456789"))
        elif ch == "%":
            out.append(rng.choice("ABDEFGHJLNPQRSTUWXYZ"))
        elif ch == "X":
            out.append(rng.choice("ACDEFHKNPRTVWXY0123456789"))
        elif ch == "L":
            out.append(rng.choice("ABCEGHJKLMNPRTVWXZ"))
        else:
            out.append(ch)
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Identities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonName:
    """A name as the person's documents spell it, and how they typed it on the erasure form.

    ``request_middle`` is "none" (left off the form), "full" or "initial"; ``request_ascii`` means
    the form was typed without diacritics although the records spell them.
    """

    given: str
    middle: str | None
    family: str
    nicknames: tuple[str, ...] = ()
    request_middle: str = "none"
    request_ascii: bool = False

    def parts(
        self, *, middle: str | None = "request", ascii_only: bool | None = None
    ) -> tuple[str, str | None, str]:
        """(given, middle-as-written or None, family) in the request's spelling unless told otherwise."""
        fold = self.request_ascii if ascii_only is None else ascii_only
        mode = self.request_middle if middle == "request" else middle
        written_middle = None
        if self.middle and mode == "full":
            written_middle = self.middle
        elif self.middle and mode == "initial":
            written_middle = self.middle[0] + "."
        given, family = self.given, self.family
        if fold:
            given, family = strip_accents(given), strip_accents(family)
            written_middle = strip_accents(written_middle) if written_middle else None
        return given, written_middle, family

    def request_text(self) -> str:
        return " ".join(p for p in self.parts() if p)

    def canonical_text(self) -> str:
        """As the person's own documents write it (with diacritics), middle as on the form."""
        return " ".join(p for p in self.parts(ascii_only=False) if p)


@dataclass(frozen=True)
class PhoneNumber:
    country: str
    calling_code: str
    trunk_prefix: str
    groups: tuple[str, ...]
    landline: bool

    @property
    def digits(self) -> str:
        return "".join(self.groups)


@dataclass(frozen=True)
class PhoneEntry:
    number: PhoneNumber
    request_form: str  # "international" or "national"
    request_text: str


@dataclass(frozen=True)
class PostalAddress:
    country: str
    number: str
    street: Street
    flat: str | None
    postcode: str
    city: str
    region: str | None
    country_name: str


@dataclass(frozen=True)
class AddressStyle:
    """How one writer lays an address out; the request has one, each variant changes some fields."""

    number_first: bool
    abbreviated: bool
    with_flat: bool
    postcode_first: bool
    with_country: bool = True
    with_postcode: bool = True
    compact_postcode: bool = False
    separator: str = ", "
    case: str = "as_is"
    folding: str = "none"


@dataclass(frozen=True)
class AddressEntry:
    address: PostalAddress
    request_style: AddressStyle

    @property
    def request_text(self) -> str:
        return render_address(self.address, self.request_style)


@dataclass(frozen=True)
class AccountFormat:
    """An organisation's account-id format: ``ACC-004521``, ``CUST 88213``, ``acct#7731-22``."""

    organisation: str
    prefix: str
    separator: str
    zero_pad_width: int
    digits_range: tuple[int, int]
    split_tail: int = 0


ACCOUNT_FORMATS = (
    AccountFormat("Northwind Retail", "ACC", "-", 6, (1, 99999)),
    AccountFormat("Brightline Energy", "CUST", " ", 0, (10000, 99999)),
    AccountFormat("Kestrel Telecom", "acct", "#", 0, (100000, 999999), split_tail=2),
    AccountFormat("Halden Versand", "KD", "-", 8, (1000, 999999)),
    AccountFormat("Mercato Online", "CLI", "/", 7, (100, 99999)),
    AccountFormat("Polder Verzekeringen", "POL", "-", 0, (1000000, 9999999)),
)


@dataclass(frozen=True)
class AccountEntry:
    fmt: AccountFormat
    value: int
    request_text: str
    country: str = "GB"  # whose language the labels in front of a bare number are in

    @property
    def digits(self) -> str:
        """The number part as the organisation's system prints it (padding, inner hyphen)."""
        text = str(self.value).zfill(self.fmt.zero_pad_width) if self.fmt.zero_pad_width else str(self.value)
        if self.fmt.split_tail:
            text = text[: -self.fmt.split_tail] + "-" + text[-self.fmt.split_tail :]
        return text

    @property
    def system_text(self) -> str:
        return f"{self.fmt.prefix}{self.fmt.separator}{self.digits}"


@dataclass
class Identity:
    """A person (requested, namesake or distractor) and every identifier they are known by."""

    identity_id: str
    country: str
    name: PersonName
    emails: list[str]
    phones: list[PhoneEntry]
    address: AddressEntry
    account: AccountEntry

    def request(self) -> dict:
        return {
            "names": [self.name.request_text()],
            "emails": list(self.emails),
            "phones": [p.request_text for p in self.phones],
            "addresses": [self.address.request_text],
            "account_ids": [self.account.request_text],
            "country": self.country,
        }


# --------------------------------------------------------------------------------------------
# Rendering identifiers in variant families. Each renderer returns None where the family does not
# apply to that identifier (no accents to strip, no middle name, no flat...).
# --------------------------------------------------------------------------------------------


def _join(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


def _split_particles(family: str) -> tuple[str, str]:
    """("van der", "Berg") for Dutch/German sorting; ("", family) when there is no particle."""
    words = family.split(" ")
    particles = []
    while len(words) > 1 and words[0] in SORTING_PARTICLES:
        particles.append(words.pop(0))
    return " ".join(particles), " ".join(words)


def _initials(given: str, dotted: bool) -> str:
    """J. for John, J.-P. for Jean-Pierre, M.J. for María José."""
    sep = "." if dotted else ""
    if "-" in given:
        return "-".join(p[0] + sep for p in given.split("-"))
    return "".join(p[0] + sep for p in given.split(" "))


# First words of a family name that belong to it and are never hyphenated to it.
_NAME_PREFIXES = frozenset(
    {"O", "Ni", "Mac", "Mc", "Nic", "De", "Di", "Da", "Del", "Lo", "La", "Le", "Van", "Von", "St.", "San"}
)


def _name_exact(rng, n: PersonName):
    return n.request_text()


def _name_upper(rng, n):
    return n.request_text().upper()


def _name_lower(rng, n):
    return n.request_text().lower()


def _name_family_comma_given(rng, n):
    given, middle, family = n.parts()
    particle, core = _split_particles(family)
    if particle and rng.random() < 0.6:
        return f"{core}, {_join(given, middle)} {particle}"
    return f"{family}, {_join(given, middle)}"


def _name_family_upper_first(rng, n):
    given, middle, family = n.parts()
    return f"{family.upper()} {_join(given, middle)}"


def _name_initial_family(rng, n):
    given, middle, family = n.parts()
    dotted = rng.random() < 0.6
    initials = _initials(given, dotted)
    if middle and rng.random() < 0.5:
        initials += ("" if dotted else " ") + middle[0] + ("." if dotted else "")
    return f"{initials} {family}"


def _name_given_initial(rng, n):
    given, _, family = n.parts()
    _, core = _split_particles(family)
    return f"{given} {core[0].upper()}."


def _name_nickname(rng, n):
    if not n.nicknames:
        return None
    _, _, family = n.parts()
    nickname = rng.choice(n.nicknames)
    return f"{strip_accents(nickname) if n.request_ascii else nickname} {family}"


def _name_middle_in_record_only(rng, n):
    if not n.middle or n.request_middle != "none":
        return None
    return _join(*n.parts(middle=rng.choice(["full", "full", "initial"])))


def _name_middle_omitted(rng, n):
    if not n.middle or n.request_middle == "none":
        return None
    return _join(*n.parts(middle="none"))


def _name_middle_form_changed(rng, n):
    if not n.middle or n.request_middle == "none":
        return None
    return _join(*n.parts(middle="initial" if n.request_middle == "full" else "full"))


def _name_accents_stripped(rng, n):
    text = strip_accents(n.request_text())
    return text if text != n.request_text() else None


def _name_accents_added(rng, n):
    if not n.request_ascii:
        return None
    text = n.canonical_text()
    return text if text != n.request_text() else None


def _name_transliterated(rng, n):
    canonical = n.canonical_text()
    text = transliterate(canonical)
    return text if text not in (strip_accents(canonical), n.request_text()) else None


def _name_hyphen_space(rng, n):
    given, middle, family = n.parts()
    if "-" in family:
        return _join(given, middle, family.replace("-", " "))
    words = family.split(" ")
    if (
        len(words) == 2
        and all(w[:1].isupper() for w in words)
        and strip_accents(words[0]) not in _NAME_PREFIXES
    ):
        return _join(given, middle, "-".join(words))  # García Márquez -> García-Márquez, not De-Luca
    if "-" in given:
        return _join(given.replace("-", " "), middle, family)
    return None


def _name_apostrophe_variant(rng, n):
    """O'Neill as O’Neill, ONeill, O Neill or O´Neill; 't Hart as ’t Hart or t Hart."""
    text = n.request_text()
    if "'" not in text:
        return None
    inside_word = re.search(r"\w'", text) is not None
    return text.replace("'", rng.choice(["’", "", " ", "´"] if inside_word else ["’", "", "´"]))


def _name_possessive(rng, n):
    text = n.request_text()
    apostrophe = rng.choice(["'", "'", "’"])
    return text + (apostrophe if text.endswith("s") else apostrophe + "s")


NAME_RENDERERS: dict[str, Callable] = {
    "exact": _name_exact,
    "upper": _name_upper,
    "lower": _name_lower,
    "family_comma_given": _name_family_comma_given,
    "family_upper_first": _name_family_upper_first,
    "initial_family": _name_initial_family,
    "given_initial": _name_given_initial,
    "nickname": _name_nickname,
    "middle_in_record_only": _name_middle_in_record_only,
    "middle_omitted": _name_middle_omitted,
    "middle_form_changed": _name_middle_form_changed,
    "accents_stripped": _name_accents_stripped,
    "accents_added": _name_accents_added,
    "transliterated": _name_transliterated,
    "hyphen_space": _name_hyphen_space,
    "apostrophe_variant": _name_apostrophe_variant,
    "possessive": _name_possessive,
}

GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


class EmailAddress(str):
    """An e-mail address that remembers where the given name ends in a dotless local part, so a
    variant can put the dot where a person would (fredericndiaye -> frederic.ndiaye)."""

    name_boundary: int | None

    def __new__(cls, text: str, name_boundary: int | None = None):
        address = super().__new__(cls, text)
        address.name_boundary = name_boundary
        return address


PLUS_ADDRESSING_DOMAINS = GMAIL_DOMAINS + ("outlook.com", "hotmail.com", "icloud.com")


def _email_exact(rng, e):
    return e


def _email_upper(rng, e):
    return e.upper()


def _email_mixed_case(rng, e):
    local, domain = e.split("@")
    styled_local = ".".join(p[:1].upper() + p[1:] for p in local.split("."))
    styled_domain = domain[:1].upper() + domain[1:] if rng.random() < 0.5 else domain
    text = f"{styled_local}@{styled_domain}"
    return text if text not in (e, e.upper()) else None


def _email_mailto(rng, e):
    return "mailto:" + e


def _email_angle_brackets(rng, e):
    return f"<{e}>"


def _email_at_paren(rng, e):
    local, domain = e.split("@")
    return local + rng.choice(["(at)", "(AT)", " (at) ", "(@)"]) + domain


def _email_at_bracket_dot(rng, e):
    local, domain = e.split("@")
    return f"{local} [at] " + domain.replace(".", " [dot] ")


def _email_at_dot_words(rng, e):
    local, domain = e.split("@")
    if rng.random() < 0.3:
        local = local.replace(".", " dot ")
    return f"{local} at " + domain.replace(".", " dot ")


def _email_trailing_punctuation(rng, e):
    return e + rng.choice([".", ",", ";", ":", "!", "?"])


def _email_gmail_dots(rng, e):
    """Google documents that dots in a Gmail address do not matter: jon.miller <-> jonmiller."""
    local, domain = e.split("@")
    if domain not in GMAIL_DOMAINS:
        return None
    if "." in local:
        return local.replace(".", "") + "@" + domain
    boundary = getattr(e, "name_boundary", None)
    if not boundary:
        return None
    return local[:boundary] + "." + local[boundary:] + "@" + domain


def _email_plus_tag(rng, e):
    """Sub-addressing the provider documents: name+shop@gmail.com reaches name@gmail.com."""
    local, domain = e.split("@")
    if domain not in PLUS_ADDRESSING_DOMAINS:
        return None
    return f"{local}+{rng.choice(['shop', 'newsletter', 'orders', 'amazon', '2024', 'spam'])}@{domain}"


EMAIL_RENDERERS: dict[str, Callable] = {
    "exact": _email_exact,
    "upper": _email_upper,
    "mixed_case": _email_mixed_case,
    "mailto": _email_mailto,
    "angle_brackets": _email_angle_brackets,
    "at_paren": _email_at_paren,
    "at_bracket_dot": _email_at_bracket_dot,
    "at_dot_words": _email_at_dot_words,
    "trailing_punctuation": _email_trailing_punctuation,
    "gmail_dots": _email_gmail_dots,
    "plus_tag": _email_plus_tag,
}


def phone_national(p: PhoneNumber) -> str:
    """The national form as the country writes it: 020 7946 0958, (415) 234-5678, 91 234 56 78."""
    if p.calling_code == "1":
        return f"({p.groups[0]}) {p.groups[1]}-{p.groups[2]}"
    return " ".join((p.trunk_prefix + p.groups[0],) + p.groups[1:])


def phone_international(p: PhoneNumber) -> str:
    return f"+{p.calling_code} " + " ".join(p.groups)


def phone_form_of(text: str) -> str:
    """Whether a written phone carries the country code (international) or not (national)."""
    stripped = text.removeprefix("tel:")
    return "international" if stripped.startswith(("+", "00")) else "national"


def _phone_exact(rng, ph: PhoneEntry):
    return ph.request_text


def _phone_reverse_form(rng, ph):
    p = ph.number
    return phone_international(p) if ph.request_form == "national" else phone_national(p)


def _phone_area_brackets(rng, ph):
    p = ph.number
    if not p.landline or p.country == "ES":
        return None
    if p.calling_code == "1":
        area, exchange, line = p.groups
        return rng.choice(
            [
                f"({area}){exchange}-{line}",
                f"({area}) {exchange} {line}",
                f"({area}) {exchange}{line}",
                f"({area}) {exchange}-{line}",
            ]
        )
    rest = p.groups[1:]
    joined = " ".join(rest) if rng.random() < 0.6 else "".join(rest)
    return f"({p.trunk_prefix}{p.groups[0]}) {joined}"


def _phone_international_trunk_brackets(rng, ph):
    p = ph.number
    if p.trunk_prefix != "0":
        return None
    rest = " ".join(p.groups[1:])
    return rng.choice(
        [
            f"+{p.calling_code} (0){p.groups[0]} {rest}",
            f"+{p.calling_code} (0) {p.groups[0]} {rest}",
            f"+{p.calling_code}(0){p.groups[0]} {rest}",
        ]
    )


def _phone_slashes(rng, ph):
    """German (and Italian) habit: area code, slash, subscriber number: 030/12345678."""
    p = ph.number
    if p.country not in ("DE", "IT"):
        return None
    sep = rng.choice(["/", " / "])
    return f"{p.trunk_prefix}{p.groups[0]}{sep}{''.join(p.groups[1:])}"


def _phone_dashes(rng, ph):
    p = ph.number
    if rng.random() < 0.35:
        return f"+{p.calling_code}-" + "-".join(p.groups)
    if rng.random() < 0.5:
        return f"{p.trunk_prefix}{p.groups[0]}-" + "".join(p.groups[1:])
    return "-".join((p.trunk_prefix + p.groups[0],) + p.groups[1:])


def _phone_dots(rng, ph):
    p = ph.number
    return ".".join((p.trunk_prefix + p.groups[0],) + p.groups[1:])


def _phone_no_separators(rng, ph):
    p = ph.number
    return p.trunk_prefix + p.digits


def _phone_e164_compact(rng, ph):
    p = ph.number
    return ("tel:" if rng.random() < 0.2 else "") + f"+{p.calling_code}{p.digits}"


def _phone_double_zero(rng, ph):
    p = ph.number
    if rng.random() < 0.3:
        return f"00{p.calling_code}{p.digits}"
    return f"00{p.calling_code} " + " ".join(p.groups)


def _phone_extension(rng, ph):
    p = ph.number
    extension = str(rng.randint(2, 999))
    if p.country == "DE" and rng.random() < 0.5:
        # DIN 5008 writes the extension after a hyphen: 030 1234567-23.
        base = phone_national(p) if rng.random() < 0.6 else phone_international(p)
        return f"{base}-{extension}"
    if rng.random() < 0.5:
        base = ph.request_text
    else:
        base = phone_national(p) if rng.random() < 0.5 else phone_international(p)
    return base + rng.choice(
        [
            f" ext. {extension}",
            f" x{extension}",
            f" ext {extension}",
            f" Ext. {extension}",
            f" (ext. {extension})",
            f" extn {extension}",
        ]
    )


PHONE_RENDERERS: dict[str, Callable] = {
    "exact": _phone_exact,
    "reverse_form": _phone_reverse_form,
    "area_brackets": _phone_area_brackets,
    "international_trunk_brackets": _phone_international_trunk_brackets,
    "slashes": _phone_slashes,
    "dashes": _phone_dashes,
    "dots": _phone_dots,
    "no_separators": _phone_no_separators,
    "e164_compact": _phone_e164_compact,
    "double_zero": _phone_double_zero,
    "extension": _phone_extension,
}


def render_address(a: PostalAddress, style: AddressStyle) -> str:
    """Lay an address out in ``style``: the one function every address family goes through."""
    profile = COUNTRIES[a.country]
    street = a.street.abbreviated if style.abbreviated and a.street.abbreviated else a.street.full
    number = a.number
    flat_line = None
    if style.with_flat and a.flat:
        if a.country == "NL":
            number = number + a.flat  # Dutch flats are house-number suffixes: 123-2, 123 II, 123hs
        else:
            flat_line = a.flat
    if style.number_first:
        street_line = f"{number} {street}"
    else:
        street_line = f"{street}{profile.number_joiner}{number}"
    postcode = a.postcode.replace(" ", "") if style.compact_postcode else a.postcode
    if not style.with_postcode:
        postcode = ""
    if a.country == "US":
        city_line = (
            f"{postcode} {a.city}, {a.region}" if style.postcode_first else f"{a.city}, {a.region} {postcode}"
        )
    elif a.country == "AU":
        city_line = (
            f"{postcode} {a.city} {a.region}" if style.postcode_first else f"{a.city} {a.region} {postcode}"
        )
    elif a.country == "IT":
        city_line = (
            f"{postcode} {a.city} {a.region}" if style.postcode_first else f"{a.city} {a.region} {postcode}"
        )
    elif a.country == "IE":
        city_line = f"{postcode}, {a.city}" if style.postcode_first else f"{a.city}, {postcode}"
    else:
        city_line = f"{postcode} {a.city}" if style.postcode_first else f"{a.city} {postcode}"
    city_line = city_line.strip(" ,")
    lines = []
    if flat_line and profile.flat_before_street:
        lines.append(flat_line)
    lines.append(street_line)
    if flat_line and not profile.flat_before_street:
        lines.append(flat_line)
    lines.append(city_line)
    if style.with_country:
        lines.append(a.country_name)
    text = style.separator.join(lines)
    if style.case == "upper":
        text = text.upper()
    if style.folding == "strip":
        text = strip_accents(text)
    elif style.folding == "translit":
        text = transliterate(text)
    return text


def _address_deltas(entry: AddressEntry) -> dict[str, dict]:
    """Each single address family as a change to the request's style."""
    s = entry.request_style
    return {
        "number_swapped": {"number_first": not s.number_first},
        "upper": {"case": "upper"},
        "accents_stripped": {"folding": "strip"},
        "transliterated": {"folding": "translit"},
        "line_breaks": {"separator": "\n"},
        "postcode_city_swapped": {"postcode_first": not s.postcode_first},
        "street_type_abbreviated": {"abbreviated": True} if not s.abbreviated else None,
        "street_type_expanded": {"abbreviated": False} if s.abbreviated else None,
        "country_missing": {"with_country": False},
        "postcode_missing": {"with_postcode": False},
        "flat_line_added": {"with_flat": True} if not s.with_flat else None,
        "flat_line_dropped": {"with_flat": False} if s.with_flat else None,
        "postcode_compact": {"compact_postcode": True},
    }


# The families "combined" draws from: the changes a shipping label or a scanned letter stacks.
_COMBINABLE = (
    "number_swapped",
    "upper",
    "accents_stripped",
    "line_breaks",
    "postcode_city_swapped",
    "street_type_abbreviated",
    "country_missing",
    "flat_line_added",
    "postcode_compact",
)


def _address_variant(rng, entry: AddressEntry, family: str):
    """Returns (text, parts) or None. ``parts`` names the families a "combined" variant stacks."""
    request = entry.request_text
    if family == "exact":
        return request, None
    deltas = _address_deltas(entry)
    if family == "combined":
        usable = [
            f
            for f in _COMBINABLE
            if deltas.get(f)
            and render_address(entry.address, dataclasses.replace(entry.request_style, **deltas[f]))
            != request
        ]
        if len(usable) < 2:
            return None
        parts = sorted(rng.sample(usable, rng.choice([2, 2, 3])))
        if "accents_stripped" in parts and "upper" in parts and rng.random() < 0.5:
            parts.remove("accents_stripped")
        merged = {}
        for part in parts:
            merged.update(deltas[part])
        text = render_address(entry.address, dataclasses.replace(entry.request_style, **merged))
        return (text, parts) if text != request else None
    delta = deltas.get(family)
    if not delta:
        return None
    text = render_address(entry.address, dataclasses.replace(entry.request_style, **delta))
    if text == request:
        return None
    if family == "transliterated" and text == render_address(
        entry.address, dataclasses.replace(entry.request_style, folding="strip")
    ):
        return None
    return text, None


_SEPARATORS = re.compile(r"[^0-9A-Za-z]+")


def _account_exact(rng, a: AccountEntry):
    return a.request_text


def _account_other_case(rng, a):
    text = a.request_text
    options = {text.lower(), text.upper(), text[:1].upper() + text[1:].lower()} - {text}
    return rng.choice(sorted(options)) if options else None


def _account_no_separator(rng, a):
    text = _SEPARATORS.sub("", a.request_text)
    return text if text != a.request_text else None


def _account_space_separator(rng, a):
    text = _SEPARATORS.sub(" ", a.request_text)
    return text if text != a.request_text else None


def _account_other_separator(rng, a):
    used = set(_SEPARATORS.findall(a.request_text))
    choices = [s for s in ("-", "_", ".", "/") if s not in used]
    return _SEPARATORS.sub(rng.choice(choices), a.request_text) if choices and used else None


def _account_leading_zeros_dropped(rng, a):
    fmt = a.fmt
    if not fmt.zero_pad_width or a.digits == a.digits.lstrip("0") or a.request_text != a.system_text:
        return None
    return f"{fmt.prefix}{fmt.separator}{a.digits.lstrip('0')}"


def _account_zero_padded(rng, a):
    """The system's padded form, where the person typed the number without its leading zeros."""
    if a.request_text.lower() == a.system_text.lower() or not a.fmt.zero_pad_width:
        return None
    return a.system_text


def _account_labelled_number(rng, a):
    label = rng.choice(COUNTRIES[a.country].account_labels)
    digits = a.digits if rng.random() < 0.75 else a.digits.lstrip("0")
    return f"{label} {digits}"


def _account_hash_number(rng, a):
    return "#" + a.digits


ACCOUNT_RENDERERS: dict[str, Callable] = {
    "exact": _account_exact,
    "other_case": _account_other_case,
    "no_separator": _account_no_separator,
    "space_separator": _account_space_separator,
    "other_separator": _account_other_separator,
    "leading_zeros_dropped": _account_leading_zeros_dropped,
    "zero_padded": _account_zero_padded,
    "labelled_number": _account_labelled_number,
    "hash_number": _account_hash_number,
}


# --------------------------------------------------------------------------------------------
# Record templates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """One kind of record. ``single_line`` forbids line breaks inside an address (log lines, JSON,
    tab-separated rows); ``forbid`` lists families that would read wrongly in a slot (an e-mail
    already inside angle brackets)."""

    record_type: str
    text: str
    splits: tuple[str, ...] = SPLITS
    countries: tuple[str, ...] | None = None
    single_line: bool = False
    forbid: frozenset = frozenset()

    @property
    def identifier_slots(self) -> list[str]:
        return [
            slot
            for slot in ("name", "name_possessive", "email", "phone", "address", "account_id")
            if "${" + slot + "}" in self.text
        ]

    @property
    def strong_slots(self) -> list[str]:
        return [slot for slot in self.identifier_slots if slot in STRONG_KINDS]


_NO_BRACKETED_EMAIL = frozenset(
    {
        ("email", "angle_brackets"),
        ("email", "mailto"),
        ("email", "trailing_punctuation"),
        ("email", "at_dot_words"),
        ("email", "at_bracket_dot"),
    }
)

STRONG_TEMPLATES: tuple[Template, ...] = (
    Template(
        "support_ticket",
        "Ticket ${ticket} | opened ${date} | priority: normal\nCustomer: ${name}\n"
        "Email: ${email}\nIssue: parcel for order ${order} has not arrived. Customer asked us to check the "
        "delivery address on file:\n"
        "${address}\nAssigned: ${agent}",
    ),
    Template(
        "chat_transcript",
        "[${time}] ${agent_first} (Support): Hi, thanks for waiting. How can I help?\n"
        "[${time2}] Visitor: hi its ${name}, my number is ${phone} and i still havent got the refund for "
        "${order}\n"
        "[${time3}] ${agent_first} (Support): Sorry about that, let me pull up the order.",
    ),
    Template(
        "crm_note",
        "CRM note ${date}: called ${name} back on ${phone} re billing. Wants invoices sent to "
        "${email} "
        "from now on. Customer record ${account_id} flagged for goodwill credit of ${amount}.",
    ),
    Template(
        "shipping_log",
        '${date} ${time} DISPATCH carrier=${courier} trk=${tracking} consignee="${name}" '
        'addr="${address}" tel=${phone} status=LABEL_PRINTED',
        single_line=True,
    ),
    Template(
        "form_dump",
        "--- contact form submission ${datetime} ---\nfull_name: ${name}\nemail: ${email}\n"
        "phone: ${phone}\naddress: ${address}\ncustomer_no: ${account_id}\n"
        "message: Please update my details, I moved.",
    ),
    Template(
        "email_signature",
        "Thanks again for sorting this out so quickly.\n\nBest regards,\n${name}\n${address}\n"
        "M: ${phone}\nE: ${email}",
    ),
    Template("csv_export", '${date},${account_id},"${name}",${email},${phone},"${address}",${amount},active'),
    Template(
        "email_header",
        "From: ${name} <${email}>\nTo: help@${company_domain}\nSubject: Re: order ${order}\n\n"
        "Hello, I still have not had a reply to my last two messages.",
        forbid=_NO_BRACKETED_EMAIL,
    ),
    Template(
        "call_transcript",
        "Agent: Can I take your full name please?\nCaller: Yes it's ${name}.\n"
        "Agent: And the number on the account?\nCaller: ${phone}\n"
        "Agent: Lovely. And the first line of your address and postcode?\n"
        "Caller: ${address}\nAgent: Thank you, you're verified.",
    ),
    Template(
        "invoice",
        "INVOICE ${invoice}   Date: ${date}\nBill to:\n${name}\n${address}\n"
        "Customer ID: ${account_id}\n"
        "Total due: ${amount}\nPayment terms: 30 days",
    ),
    Template(
        "returns_note",
        "Return authorised for ${name} (${email}). Prepaid label sent; courier collection from "
        "${address} on ${date}.",
        forbid=frozenset({("email", "trailing_punctuation")}),
    ),
    Template(
        "complaint",
        "hello, i am writing about ${account_id} - you keep ringing me on ${phone} even "
        "tho i asked you to stop months ago. sort it out please\n${name}",
    ),
    Template(
        "sms_log",
        '${datetime} SMS OUT to=${phone} body="Your parcel ${tracking} is out for delivery today"',
        single_line=True,
    ),
    Template(
        "app_log",
        '${datetime} INFO auth.login success user=${email} ip=${ip} ua="Mozilla/5.0"',
        single_line=True,
        forbid=frozenset({("email", "at_dot_words"), ("email", "at_bracket_dot")}),
    ),
    Template(
        "delivery_exception",
        "DELIVERY EXCEPTION ${date}\nConsignee: ${name}\nAddress: ${address}\n"
        "Reason: nobody home, card left. Contact number on label ${phone} rang out.",
    ),
    Template(
        "kyc_note",
        "KYC check passed for ${account_id}: name ${name} matches the passport; address ${address} "
        "confirmed by utility bill dated ${date}.",
    ),
    Template(
        "unsubscribe",
        "Unsubscribe request received from ${email} on ${date} via the footer link.",
        forbid=frozenset({("email", "trailing_punctuation")}),
    ),
    Template(
        "merge_note",
        "Merged duplicate profiles into ${account_id}. Kept e-mail ${email} and phone ${phone}; "
        "old profile archived by ${agent}.",
    ),
    Template(
        "escalation",
        "Escalating ${name_possessive} refund (order ${order}), pending 3 weeks. Rang twice from "
        "${phone} and wrote to us from ${email} twice.",
    ),
    Template(
        "address_change",
        "Address change for ${account_id} requested ${date}.\nNew address:\n${address}\n"
        "Confirmation sent to ${email}",
    ),
    Template(
        "marketing_list",
        "${email};${name};opt_in=yes;source=${source};${date}",
        single_line=True,
        forbid=frozenset({("email", "trailing_punctuation")}),
    ),
    Template(
        "driver_note",
        "Driver note: left with neighbour at ${address}, customer ${name} informed by text to ${phone}",
    ),
    Template(
        "de_kundennotiz",
        "Kundenservice-Notiz vom ${date}: Rückruf an ${name} unter ${phone}. "
        "Neue Lieferadresse:\n"
        "${address}\nKundennummer: ${account_id}",
        countries=("DE",),
    ),
    Template(
        "de_brief",
        "Sehr geehrte Damen und Herren,\nbitte ändern Sie meine E-Mail-Adresse auf ${email}\n"
        "Mit freundlichen Grüßen\n${name}\n${address}",
        countries=("DE",),
    ),
    Template(
        "fr_note",
        "Note client du ${date} : ${name} a appelé depuis le ${phone}. "
        "Adresse de livraison : ${address}. "
        "Réf. client ${account_id}.",
        countries=("FR",),
    ),
    Template(
        "fr_courriel",
        "Bonjour,\nMerci de m'écrire désormais à ${email} et non plus à l'ancienne adresse.\n"
        "Cordialement,\n${name}\nTél. ${phone}",
        countries=("FR",),
    ),
    Template(
        "es_incidencia",
        "Incidencia ${ticket}: el cliente ${name} (tel. ${phone}) indica que el pedido "
        "${order} no ha "
        "llegado a ${address}. Se reenvía.",
        countries=("ES",),
    ),
    Template(
        "it_nota",
        "Nota del ${date}: ${name} ha chiamato dal ${phone}; indirizzo di spedizione ${address}; "
        "codice cliente ${account_id}.",
        countries=("IT",),
    ),
    Template(
        "nl_notitie",
        "Notitie ${date}: ${name} belde vanaf ${phone}. Nieuw adres: ${address}. Klant ${account_id}.",
        countries=("NL",),
    ),
    # Templates only the held-out split uses: other systems, other layouts.
    Template(
        "json_event",
        '{"event": "profile_update", "customer": {"name": "${name}", '
        '"mail": "${email}", '
        '"tel": "${phone}"}, "ts": "${datetime}"}',
        splits=("heldout",),
        single_line=True,
    ),
    Template(
        "quoted_reply",
        "On ${date} ${agent} wrote:\n> Could you confirm your account number?\n\n"
        "Sure it's ${account_id}, and you can also call me on ${phone}\n\n-- \n${name}",
        splits=("heldout",),
    ),
    Template(
        "voicemail",
        "Voicemail from ${phone} (0:${seconds}) transcribed: hi this is ${name} calling about "
        "${account_id} uh could someone ring me back thanks",
        splits=("heldout",),
    ),
    Template(
        "tsv_row",
        "${account_id}\t${name}\t${email}\t${phone}\t${address}\t${date}",
        splits=("heldout",),
        single_line=True,
    ),
    Template(
        "courier_manifest",
        "CONSIGNEE: ${name} | ${address} | PH ${phone} | PCS 1 | WT 2.4KG",
        splits=("heldout",),
        single_line=True,
    ),
    Template(
        "fraud_review",
        "Possible account takeover on ${account_id}: login e-mail changed from ${email} to "
        "${other_email} from a new device. Customer ${name} reached on ${phone} confirmed it was NOT them.",
        splits=("heldout",),
    ),
    Template(
        "scanned_letter",
        "[OCR p.1] ${name}\n${address}\n\nDear Sir or Madam,\nI no longer wish to receive "
        "catalogues. My reference is ${account_id}.\nYours faithfully",
        splits=("heldout",),
    ),
    Template(
        "helpdesk_macro",
        "Hi there, we've updated the contact e-mail on your profile to ${email} as requested. "
        "If this wasn't you, reply to this message. — ${agent}",
        splits=("heldout",),
    ),
)

NAME_ONLY_TEMPLATES: tuple[Template, ...] = (
    Template(
        "meeting_notes",
        "Meeting notes ${date}: ${name} attended the product feedback session and liked the new checkout.",
    ),
    Template(
        "prize_draw", "Congratulations to ${name}, winner of the ${month} prize draw at our ${city} store!"
    ),
    Template("review", 'Review posted ${date} by ${name}: "Arrived on time, well packed." 5 stars.'),
    Template(
        "returned_mail", "Letter returned to sender ${date}: addressee ${name} not known at this address."
    ),
    Template("staff_rota", "Rota week ${week}: ${name} covering the early shift Mon/Tue, ${agent} on lates."),
    Template("cc_note", "${name} was copied on the complaint thread about the ${product}; no action needed."),
    Template(
        "photo_caption", "Photo caption: ${name} at the opening of the ${city} branch.", splits=("heldout",)
    ),
    Template("referral", "Referral bonus paid: ${name} referred a friend in ${month}.", splits=("heldout",)),
)

# Wrapping of a name-only mention when the possessive family is drawn.
NAME_ONLY_POSSESSIVE = Template(
    "thanks_note", "Please pass on ${name_possessive} thanks to the ${city} team."
)


# --------------------------------------------------------------------------------------------
# Building identities
# --------------------------------------------------------------------------------------------


class _Registry:
    """Keeps identifiers unique across everyone in the corpus, so a label is never ambiguous."""

    def __init__(self) -> None:
        self.used: set[tuple] = set()

    def claim(self, *key) -> bool:
        if key in self.used:
            return False
        self.used.add(key)
        return True

    def taken(self, *key) -> bool:
        return key in self.used


def _name_key(given: str, family: str) -> tuple[str, str]:
    return strip_accents(given).casefold(), strip_accents(family).casefold().replace("-", " ").replace(
        "'", ""
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", strip_accents(text).lower())


def _make_emails(
    rng: random.Random,
    profile: CountryProfile,
    name: PersonName,
    faker: Faker,
    registry: _Registry,
    count: int,
) -> list[str]:
    given = _slug(name.given.split("-")[0].split(" ")[0])
    family_words = [w for w in name.family.replace("-", " ").split(" ") if w]
    family_full = _slug("".join(family_words))
    if family_words[0].lower() in SORTING_PARTICLES:
        family_first = _slug(family_words[-1])  # van der Berg -> berg
    elif strip_accents(family_words[0]) in _NAME_PREFIXES:
        family_first = _slug("".join(family_words[:2]))  # Mac Giolla Phádraig -> macgiolla
    else:
        family_first = _slug(family_words[0])  # García Márquez -> garcia
    emails: list[str] = []
    attempts = 0
    while len(emails) < count and attempts < 200:
        attempts += 1
        family = family_full if rng.random() < 0.6 else family_first
        local, boundary = rng.choice(
            [
                (f"{given}.{family}", None),
                (f"{given[0]}{family}", 1),
                (f"{given}{family}", len(given)),
                (f"{family}.{given}", None),
                (f"{given}_{family}{rng.randint(70, 99)}", None),
                (f"{given}.{family}{rng.randint(1, 99)}", None),
                (f"{given[0]}.{family}", None),
            ]
        )
        if emails or rng.random() < 0.75:
            domain = rng.choice(profile.mail_domains)
        else:
            domain = f"{_slug(faker.company())[:18]}.{profile.work_tld}"
        if emails and domain == emails[0].split("@")[1]:
            domain = f"{_slug(faker.company())[:18]}.{profile.work_tld}"
        if domain in GMAIL_DOMAINS:
            local = local.replace("_", ".")  # Gmail allows letters, digits and dots only
        email = EmailAddress(f"{local}@{domain}", boundary)
        if registry.claim("email", email.casefold()):
            emails.append(email)
    return emails


def _make_phone(
    rng: random.Random,
    profile: CountryProfile,
    registry: _Registry,
    *,
    landline: bool | None = None,
    request_form: str | None = None,
) -> PhoneEntry:
    plans = [p for p in profile.phone_plans if landline is None or p.landline == landline] or list(
        profile.phone_plans
    )
    while True:
        plan: PhonePlan = rng.choice(plans)
        groups = tuple(_fill_pattern(rng, g) for g in plan.groups)
        if registry.claim("phone", "".join(groups)):
            break
    number = PhoneNumber(profile.code, profile.calling_code, profile.trunk_prefix, groups, plan.landline)
    form = request_form or rng.choice(["international", "national", "national"])
    if form == "international":
        text = phone_international(number)
    elif number.calling_code == "1":
        text = rng.choice([phone_national(number), f"{groups[0]}-{groups[1]}-{groups[2]}"])
    else:
        text = phone_national(number)
    return PhoneEntry(number, form, text)


def _make_address(
    rng: random.Random,
    profile: CountryProfile,
    registry: _Registry,
    *,
    street: Street | None = None,
    city=None,
    postcode: str | None = None,
) -> AddressEntry:
    while True:
        chosen_street = street or rng.choice(profile.streets)
        chosen_city = city or rng.choice(profile.cities)
        number = str(rng.randint(*profile.house_number_range))
        if profile.code == "DE" and rng.random() < 0.15:
            number += rng.choice("abc")
        if profile.code == "FR" and rng.random() < 0.1:
            number += " bis"
        code = postcode or _fill_pattern(rng, chosen_city.postcode_pattern)
        if registry.claim("address", profile.code, chosen_street.full, number, chosen_city.name):
            break
    flat = rng.choice(profile.flats) if rng.random() < 0.5 else None
    address = PostalAddress(
        profile.code,
        number,
        chosen_street,
        flat,
        code,
        chosen_city.name,
        chosen_city.region,
        rng.choice(profile.country_names),
    )
    style = AddressStyle(
        number_first=profile.number_first,
        abbreviated=bool(chosen_street.abbreviated) and rng.random() < 0.2,
        with_flat=bool(flat) and rng.random() < 0.5,
        postcode_first=profile.postcode_first,
    )
    return AddressEntry(address, style)


def _make_account(
    rng: random.Random,
    registry: _Registry,
    country: str,
    fmt: AccountFormat | None = None,
    value: int | None = None,
) -> AccountEntry:
    fmt = fmt or rng.choice(ACCOUNT_FORMATS)
    while True:
        chosen = value if value is not None else rng.randint(*fmt.digits_range)
        if registry.claim("account", str(chosen)):
            break
        value = None
    entry = AccountEntry(fmt, chosen, "", country)
    roll = rng.random()
    request = entry.system_text
    if fmt.zero_pad_width and entry.digits != entry.digits.lstrip("0") and roll < 0.4:
        request = (
            f"{fmt.prefix}{fmt.separator}{entry.digits.lstrip('0')}"  # typed from memory, zeros left off
        )
    elif roll > 0.85:
        request = request.lower() if request != request.lower() else request.upper()
    return dataclasses.replace(entry, request_text=request)


def _make_name(rng: random.Random, profile: CountryProfile, registry: _Registry) -> PersonName:
    for _ in range(500):
        given, nicknames = rng.choice(profile.given_names)
        family = rng.choice(profile.family_names)
        if not registry.claim("name", *_name_key(given, family)):
            continue
        registry.claim("initial_name", strip_accents(given)[0].casefold(), _name_key(given, family)[1])
        for nickname in nicknames:
            registry.claim("nickname", *_name_key(nickname, family))
        middle = rng.choice(profile.middle_names) if rng.random() < 0.5 else None
        request_middle = rng.choice(["full", "initial", "none", "none"]) if middle else "none"
        accented = strip_accents(given + family) != given + family
        return PersonName(given, middle, family, nicknames, request_middle, accented and rng.random() < 0.35)
    raise RuntimeError(f"ran out of distinct names for {profile.code}")


def _make_identity(
    identity_id: str,
    rng: random.Random,
    profile: CountryProfile,
    faker: Faker,
    registry: _Registry,
    name: PersonName,
) -> Identity:
    emails = _make_emails(rng, profile, name, faker, registry, 2 if rng.random() < 0.4 else 1)
    phones = [_make_phone(rng, profile, registry)]
    if rng.random() < 0.4:
        phones.append(_make_phone(rng, profile, registry, landline=not phones[0].number.landline))
    return Identity(
        identity_id,
        profile.code,
        name,
        emails,
        phones,
        _make_address(rng, profile, registry),
        _make_account(rng, registry, profile.code),
    )


def _distractor_name(rng: random.Random, faker: Faker, registry: _Registry) -> PersonName:
    """A Faker name that shares neither the full name, a nickname form nor initial+family with a
    requested person, so a name mention in a distractor is never one of theirs."""
    for _ in range(200):
        given, family = faker.first_name(), faker.last_name()
        key = _name_key(given, family)
        if (
            registry.taken("name", *key)
            or registry.taken("nickname", *key)
            or registry.taken("initial_name", key[0][:1], key[1])
        ):
            continue
        return PersonName(given, None, family)
    raise RuntimeError("no free distractor name")


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


@dataclass
class Occurrence:
    kind: str
    family: str
    text_as_written: str
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "family": self.family,
            "text_as_written": self.text_as_written,
            **self.extra,
        }


@dataclass
class Record:
    text: str
    record_type: str
    tier: str
    owner_id: str | None  # the requested person the record belongs to (strong, name-only) or mimics
    occurrences: list[Occurrence]
    record_id: str = ""
    namesake_id: str | None = None
    namesake_kind: str | None = None
    near_miss: dict | None = None


@dataclass
class Corpus:
    seed: int
    split: str
    people: list[Identity]
    namesakes: dict[str, list[tuple[Identity, str]]]
    records: list[Record]

    def jsonl_rows(self) -> list[dict]:
        return [{"id": r.record_id, "text": r.text} for r in self.records]

    def ground_truth(self) -> dict:
        by_owner: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        distractors = []
        for r in self.records:
            entry = {
                "record_id": r.record_id,
                "record_type": r.record_type,
                "occurrences": [o.as_dict() for o in r.occurrences],
            }
            if r.tier == TIER_STRONG:
                by_owner[r.owner_id]["records"].append(entry)
            elif r.tier == TIER_NAME_ONLY:
                by_owner[r.owner_id]["name_only_records"].append(entry)
            elif r.tier == TIER_NAMESAKE:
                entry.update(namesake_id=r.namesake_id, namesake_kind=r.namesake_kind)
                by_owner[r.owner_id]["namesake_records"].append(entry)
            else:
                distractors.append(
                    {"record_id": r.record_id, "record_type": r.record_type, "near_miss": r.near_miss}
                )
        people = []
        for person in self.people:
            owned = by_owner[person.identity_id]
            people.append(
                {
                    "person_id": person.identity_id,
                    "country": person.country,
                    "request": person.request(),
                    "records": owned["records"],
                    "name_only_records": owned["name_only_records"],
                    "namesake_records": owned["namesake_records"],
                }
            )
        return {
            "seed": self.seed,
            "split": self.split,
            "summary": self.summary(),
            "people": people,
            "distractor_records": distractors,
        }

    def summary(self) -> dict:
        per_family: dict[str, Counter] = {kind: Counter() for kind in KINDS}
        phone_forms: dict[str, Counter] = defaultdict(Counter)
        combined_parts: Counter = Counter()
        for r in self.records:
            if r.tier not in (TIER_STRONG, TIER_NAME_ONLY):
                continue
            for o in r.occurrences:
                per_family[o.kind][o.family] += 1
                if o.kind == "phone":
                    phone_forms[o.family][o.extra["form"]] += 1
                if o.extra.get("parts"):
                    combined_parts.update(o.extra["parts"])
        tiers = Counter(r.tier for r in self.records)
        return {
            "people": len(self.people),
            "records": len(self.records),
            "records_by_tier": {
                t: tiers.get(t, 0) for t in (TIER_STRONG, TIER_NAME_ONLY, TIER_NAMESAKE, TIER_DISTRACTOR)
            },
            "near_miss_records": sum(1 for r in self.records if r.near_miss),
            "namesakes": sum(len(v) for v in self.namesakes.values()),
            "countries": dict(sorted(Counter(p.country for p in self.people).items())),
            "occurrences_by_kind": {k: sum(per_family[k].values()) for k in KINDS},
            "occurrences_by_kind_and_family": {
                k: {f: per_family[k].get(f, 0) for f in FAMILIES[k]} for k in KINDS
            },
            "phone_forms_by_family": {f: dict(sorted(c.items())) for f, c in sorted(phone_forms.items())},
            "address_combined_parts": dict(sorted(combined_parts.items())),
        }

    def write(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / "records.jsonl", "w", encoding="utf-8") as fh:
            for row in self.jsonl_rows():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        with open(out_dir / "ground_truth.json", "w", encoding="utf-8") as fh:
            json.dump(self.ground_truth(), fh, ensure_ascii=False, indent=1)
            fh.write("\n")


class _FamilyCycle:
    """Hands out a person's applicable families round-robin in shuffled order, so every family
    shows up for every person who can have it, rather than whatever a weighted draw favours."""

    def __init__(self, rng: random.Random, families: list[str]):
        self.rng = rng
        self.families = families
        self.queue: list[str] = []

    def take(self, allowed: Callable[[str], bool]) -> str:
        for refill in (False, True, True):
            if refill:
                batch = list(self.families)
                self.rng.shuffle(batch)
                self.queue.extend(batch)
            for i, family in enumerate(self.queue):
                if allowed(family):
                    return self.queue.pop(i)
        return "exact"


@dataclass
class _SplitSettings:
    strong_records: tuple[int, int]
    name_only_records: tuple[int, int]
    namesake_share: float
    middle_namesake_share: float
    namesake_records: tuple[int, int]
    distractor_ratio: float
    near_misses_per_person: tuple[int, int]
    heldout_template_share: float
    combined_weight: int


SPLIT_SETTINGS = {
    "main": _SplitSettings((18, 26), (2, 4), 0.30, 0.15, (3, 5), 0.30, (0, 2), 0.0, 1),
    "heldout": _SplitSettings((18, 26), (3, 5), 0.45, 0.25, (3, 6), 0.30, (1, 3), 0.45, 3),
}


_MONTH_ABBREVIATIONS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class _Writer:
    """Writes one split's records; holds the seeded generators so the build is deterministic."""

    def __init__(self, seed: int, split: str):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        self.seed, self.split = seed, split
        self.settings = SPLIT_SETTINGS[split]
        # A string seed is hashed with SHA-512 by random.seed: stable across runs and PYTHONHASHSEED.
        self.rng = random.Random(f"lethe-variant-corpus:{split}:{seed}")
        self.registry = _Registry()
        self.fakers: dict[str, Faker] = {}
        self.cycles: dict[tuple, _FamilyCycle] = {}
        self.strong_templates = [t for t in STRONG_TEMPLATES if split in t.splits]
        self.split_only = [t for t in self.strong_templates if t.splits == (split,)]
        self.name_only_templates = [t for t in NAME_ONLY_TEMPLATES if split in t.splits]

    def faker(self, locale: str) -> Faker:
        if locale not in self.fakers:
            fake = Faker(locale)
            fake.seed_instance(self.rng.randrange(2**32))
            self.fakers[locale] = fake
        return self.fakers[locale]

    # -- fillers ------------------------------------------------------------------------------
    def _free_number(self, low: int, high: int) -> str:
        while True:
            value = self.rng.randint(low, high)
            if not self.registry.taken("account", str(value)) and not self.registry.taken(
                "phone", str(value)
            ):
                self.registry.claim("account", str(value))  # no account id created later may reuse it
                return str(value)

    def fillers(self, country: str) -> dict[str, str]:
        rng = self.rng
        year, month, day = rng.choice([2022, 2023, 2024]), rng.randint(1, 12), rng.randint(1, 28)
        hour, minute = rng.randint(7, 21), rng.randint(0, 59)
        date = rng.choice(
            [
                f"{year}-{month:02d}-{day:02d}",
                f"{day:02d}/{month:02d}/{year}",
                f"{day}.{month}.{year}",
                f"{day} {_MONTH_ABBREVIATIONS[month - 1]} {year}",
            ]
        )
        agent = self.faker("en_GB")
        agent_name = _distractor_name(rng, agent, self.registry)
        company = self.faker(COUNTRIES[country].faker_locale).company()
        return {
            "date": date,
            "time": f"{hour:02d}:{minute:02d}",
            "time2": f"{hour:02d}:{min(minute + 1, 59):02d}",
            "time3": f"{hour:02d}:{min(minute + 3, 59):02d}",
            "datetime": f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{rng.randint(0, 59):02d}Z",
            "ticket": "T-" + self._free_number(1000000, 9999999),
            "order": "ORD-" + self._free_number(10000000, 99999999),
            "invoice": f"INV/{year}/" + self._free_number(100000000, 999999999),
            "tracking": (
                rng.choice(["JD", "1Z", "RR"])
                + self._free_number(10**11, 10**12 - 1)
                + rng.choice(["GB", "DE", "US", "NL"])
            ),
            "agent": f"{agent_name.given} {agent_name.family}",
            "agent_first": agent_name.given,
            "company_domain": _slug(company)[:18] + ".com",
            "amount": rng.choice(["£", "€", "$"]) + f"{rng.randint(5, 900)}.{rng.randint(0, 99):02d}",
            "courier": rng.choice(["DPD", "DHL", "UPS", "Royal Mail", "PostNL", "Hermes", "GLS", "Correos"]),
            "ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "source": rng.choice(["checkout", "footer", "popup", "import-2023"]),
            "month": ["January", "March", "May", "July", "September", "November"][rng.randint(0, 5)],
            "city": rng.choice(["Leeds", "Utrecht", "Lyon", "Porto", "Graz", "Cork"]),
            "week": str(rng.randint(1, 52)),
            "product": rng.choice(["air fryer", "standing desk", "router", "kettle", "e-bike battery"]),
            "seconds": f"{rng.randint(10, 59)}",
            "other_email": "",
        }

    # -- rendering ----------------------------------------------------------------------------
    def _cycle(self, identity: Identity, kind: str, index: int, families: list[str]) -> _FamilyCycle:
        key = (identity.identity_id, kind, index)
        if key not in self.cycles:
            self.cycles[key] = _FamilyCycle(self.rng, families)
        return self.cycles[key]

    def _applicable(self, kind: str, value, families: tuple[str, ...]) -> list[str]:
        """Families that render something different from the request for this identifier."""
        probe = random.Random(0)
        result = []
        for family in families:
            if family == "possessive":
                continue  # only the possessive slot writes it
            if family == "combined":
                weight = self.settings.combined_weight
                if _address_variant(probe, value, family):
                    result.extend([family] * weight)
                continue
            rendered = self._render(probe, kind, value, family)
            if rendered is not None:
                result.extend([family] * RARE_FAMILIES.get(family, 1))
        return result

    @staticmethod
    def _render(rng: random.Random, kind: str, value, family: str):
        """(text, extra) for one identifier in one family, or None where the family does not apply."""
        if kind == "address":
            result = _address_variant(rng, value, family)
            if result is None:
                return None
            text, parts = result
            return text, ({"parts": parts} if parts else {})
        renderers = {
            "name": NAME_RENDERERS,
            "email": EMAIL_RENDERERS,
            "phone": PHONE_RENDERERS,
            "account_id": ACCOUNT_RENDERERS,
        }[kind]
        text = renderers[family](rng, value)
        if text is None:
            return None
        request = {
            "name": lambda v: v.request_text(),
            "email": lambda v: v,
            "phone": lambda v: v.request_text,
            "account_id": lambda v: v.request_text,
        }[kind](value)
        if family != "exact" and text == request:
            return None
        extra = {"form": phone_form_of(text)} if kind == "phone" else {}
        return text, extra

    def _values(self, identity: Identity, kind: str) -> list:
        return {
            "name": [identity.name],
            "email": identity.emails,
            "phone": identity.phones,
            "address": [identity.address],
            "account_id": [identity.account],
        }[kind]

    def _mention(
        self, identity: Identity, kind: str, template: Template, *, families: tuple[str, ...] | None = None
    ) -> Occurrence:
        values = self._values(identity, kind)
        index = self.rng.randrange(len(values))
        value = values[index]
        pool = families or FAMILIES[kind]
        cycle = self._cycle(
            identity,
            kind if families is None else kind + ":restricted",
            index,
            self._applicable(kind, value, pool),
        )

        def allowed(family: str) -> bool:
            if (kind, family) in template.forbid:
                return False
            # A log line or JSON value cannot hold a line break; "combined" is retried below if it drew one.
            return not (kind == "address" and template.single_line and family == "line_breaks")

        for _ in range(4):
            family = cycle.take(allowed)
            rendered = self._render(self.rng, kind, value, family)
            if rendered is None:
                continue
            text, extra = rendered
            if kind == "address" and template.single_line and "\n" in text:
                continue
            return Occurrence(kind, family, text, extra)
        text, extra = self._render(self.rng, kind, value, "exact")
        return Occurrence(kind, "exact", text, extra)

    def _possessive(self, identity: Identity) -> Occurrence:
        return Occurrence("name", "possessive", _name_possessive(self.rng, identity.name))

    def _fill(
        self,
        template: Template,
        identity: Identity,
        *,
        name_families: tuple[str, ...] | None = None,
        country: str | None = None,
    ) -> tuple[str, list[Occurrence]]:
        slots = self.fillers(country or identity.country)
        occurrences: list[Occurrence] = []
        for slot in template.identifier_slots:
            if slot == "name_possessive":
                occ = self._possessive(identity)
            elif slot == "name":
                occ = self._mention(identity, "name", template, families=name_families)
            else:
                occ = self._mention(identity, slot, template)
            slots[slot] = occ.text_as_written
            occurrences.append(occ)
        if "${other_email}" in template.text:
            other = _distractor_name(self.rng, self.faker("en_GB"), self.registry)
            slots["other_email"] = _make_emails(
                self.rng, COUNTRIES["GB"], other, self.faker("en_GB"), self.registry, 1
            )[0]
        return string.Template(template.text).substitute(slots), occurrences

    def _pick_template(self, country: str) -> Template:
        if self.split_only and self.rng.random() < self.settings.heldout_template_share:
            return self.rng.choice(self.split_only)
        local = [t for t in self.strong_templates if t.countries and country in t.countries]
        if local and self.rng.random() < 0.2:
            return self.rng.choice(local)
        return self.rng.choice([t for t in self.strong_templates if not t.countries])

    # -- building -----------------------------------------------------------------------------
    def build(self, people: int) -> Corpus:
        rng = self.rng
        codes = list(COUNTRIES)
        persons: list[Identity] = []
        for i in range(people):
            profile = COUNTRIES[codes[i % len(codes)]]
            name = _make_name(rng, profile, self.registry)
            persons.append(
                _make_identity(
                    f"person-{i + 1:03d}", rng, profile, self.faker(profile.faker_locale), self.registry, name
                )
            )
        namesakes = self._make_namesakes(persons)

        records: list[Record] = []
        for person in persons:
            for _ in range(rng.randint(*self.settings.strong_records)):
                template = self._pick_template(person.country)
                text, occurrences = self._fill(template, person)
                records.append(
                    Record(text, template.record_type, TIER_STRONG, person.identity_id, occurrences)
                )
            for _ in range(rng.randint(*self.settings.name_only_records)):
                if rng.random() < 0.12:
                    template = NAME_ONLY_POSSESSIVE
                else:
                    template = rng.choice(self.name_only_templates)
                text, occurrences = self._fill(template, person, name_families=NAME_ONLY_FAMILIES)
                records.append(
                    Record(text, template.record_type, TIER_NAME_ONLY, person.identity_id, occurrences)
                )
            for namesake, namesake_kind in namesakes[person.identity_id]:
                for _ in range(rng.randint(*self.settings.namesake_records)):
                    template = self._pick_namesake_template(namesake.country)
                    text, occurrences = self._fill(
                        template, namesake, name_families=("exact", "upper", "family_comma_given")
                    )
                    names_only = [o for o in occurrences if o.kind == "name"]
                    records.append(
                        Record(
                            text,
                            template.record_type,
                            TIER_NAMESAKE,
                            person.identity_id,
                            names_only,
                            namesake_id=namesake.identity_id,
                            namesake_kind=namesake_kind,
                        )
                    )
        records.extend(self._distractors(persons, len(records)))

        rng.shuffle(records)
        for i, record in enumerate(records):
            record.record_id = f"rec-{i + 1:06d}"
        return Corpus(self.seed, self.split, persons, namesakes, records)

    def _pick_namesake_template(self, country: str) -> Template:
        """A namesake record always carries the namesake's own strong identifier next to the name."""
        while True:
            template = self._pick_template(country)
            if "name" in template.identifier_slots and template.strong_slots:
                return template

    def _make_namesakes(self, persons: list[Identity]) -> dict[str, list[tuple[Identity, str]]]:
        """Other people with the person's exact name, or the same given and family name but another
        middle name; their identifiers are their own, and some share the person's mail local part."""
        result: dict[str, list[tuple[Identity, str]]] = {p.identity_id: [] for p in persons}
        counter = 0
        for person in persons:
            kinds = []
            if self.rng.random() < self.settings.namesake_share:
                kinds.append("exact_name")
            if self.rng.random() < self.settings.middle_namesake_share:
                kinds.append("other_middle_name")
            for kind in kinds:
                counter += 1
                profile = COUNTRIES[person.country]
                if kind == "exact_name":
                    name = person.name
                else:
                    middles = [m for m in profile.middle_names if m != person.name.middle]
                    name = dataclasses.replace(
                        person.name,
                        middle=self.rng.choice(middles),
                        request_middle=self.rng.choice(["full", "initial"]),
                    )
                namesake = _make_identity(
                    f"namesake-{counter:03d}",
                    self.rng,
                    profile,
                    self.faker(profile.faker_locale),
                    self.registry,
                    name,
                )
                result[person.identity_id].append((namesake, kind))
        return result

    def _distractors(self, persons: list[Identity], owned_records: int) -> list[Record]:
        rng = self.rng
        records: list[Record] = []
        target = int(owned_records * self.settings.distractor_ratio)
        while len(records) < target:
            profile = COUNTRIES[rng.choice(list(COUNTRIES))]
            fake = self.faker(profile.faker_locale)
            identity = _make_identity(
                f"distractor-{len(records)}",
                rng,
                profile,
                fake,
                self.registry,
                _distractor_name(rng, fake, self.registry),
            )
            template = self._pick_template(profile.code)
            text, _ = self._fill(template, identity)
            records.append(Record(text, template.record_type, TIER_DISTRACTOR, None, []))
        for person in persons:
            for _ in range(rng.randint(*self.settings.near_misses_per_person)):
                records.append(self._near_miss(person))
        return records

    def _near_miss(self, person: Identity) -> Record:
        """A record about someone else whose identifier differs from the person's by one detail."""
        rng = self.rng
        profile = COUNTRIES[person.country]
        fake = self.faker(profile.faker_locale)
        other = _make_identity(
            f"near-miss-{person.identity_id}-{rng.randrange(10**6)}",
            rng,
            profile,
            fake,
            self.registry,
            _distractor_name(rng, fake, self.registry),
        )
        kind = rng.choice(STRONG_KINDS)
        if kind == "email":
            local = person.emails[0].split("@")[0]
            own_domain = person.emails[0].split("@")[1]
            domains = [d for d in profile.mail_domains + ("proton.me", "mail.com") if d != own_domain]
            for domain in domains:
                if self.registry.claim("email", f"{local}@{domain}".casefold()):
                    other.emails[0] = f"{local}@{domain}"
                    break
            detail = other.emails[0]
            other.emails = other.emails[:1]
        elif kind == "phone":
            mine = person.phones[0]
            groups = list(mine.number.groups)
            while True:
                last = groups[-1]
                candidate = groups[:-1] + [last[:-1] + str((int(last[-1]) + rng.randint(1, 9)) % 10)]
                if self.registry.claim("phone", "".join(candidate)):
                    break
            number = dataclasses.replace(mine.number, groups=tuple(candidate))
            text = (
                phone_international(number)
                if mine.request_form == "international"
                else phone_national(number)
            )
            other.phones = [PhoneEntry(number, mine.request_form, text)]
            detail = text
        elif kind == "address":
            mine = person.address.address
            city = next(c for c in profile.cities if c.name == mine.city)
            other.address = _make_address(
                rng, profile, self.registry, street=mine.street, city=city, postcode=mine.postcode
            )
            detail = other.address.request_text
        else:
            mine = person.account
            digits = str(mine.value)
            position = rng.randrange(len(digits))
            while True:
                replacement = rng.choice([d for d in string.digits if d != digits[position]])
                candidate = digits[:position] + replacement + digits[position + 1 :]
                if candidate[0] != "0" and self.registry.claim("account", str(int(candidate))):
                    break
            account = AccountEntry(mine.fmt, int(candidate), "", mine.country)
            other.account = dataclasses.replace(account, request_text=account.system_text)
            detail = other.account.system_text
        while True:
            template = self._pick_template(profile.code)
            slot = "account_id" if kind == "account_id" else kind
            if slot in template.identifier_slots:
                break
        text, occurrences = self._fill(template, other)
        return Record(
            text,
            template.record_type,
            TIER_DISTRACTOR,
            None,
            [],
            near_miss={"of_person": person.identity_id, "kind": kind, "identifier": detail},
        )


def build_corpus(seed: int, people: int, split: str = "main") -> Corpus:
    """Build the corpus for ``seed`` and ``split``; the same arguments give the same corpus."""
    return _Writer(seed, split).build(people)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="directory for records.jsonl and ground_truth.json"
    )
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--split", choices=SPLITS, default="main")
    args = parser.parse_args(argv)
    corpus = build_corpus(args.seed, args.people, args.split)
    corpus.write(args.out)
    summary = corpus.summary()
    print(
        f"{args.split} seed {args.seed}: {summary['people']} people, {summary['records']} records "
        f"{summary['records_by_tier']} -> {args.out}"
    )
    for kind in KINDS:
        families = summary["occurrences_by_kind_and_family"][kind]
        print(
            f"  {kind:<10} {summary['occurrences_by_kind'][kind]:>5}  "
            + ", ".join(f"{f} {n}" for f, n in families.items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
