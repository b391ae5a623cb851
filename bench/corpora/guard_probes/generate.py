"""Generate the guard probe corpus: suppressed people, texts about them, and other people's texts.

See the package docstring for why it is independent of the guard. Everything is seeded
(``random.Random`` and Faker), so the same arguments give the same corpus.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from faker import Faker

from bench.corpora.countries import COUNTRIES, CountryProfile

if TYPE_CHECKING:
    from .records import TrainingRecord

KINDS = ("name", "email", "phone", "address")

#: The written forms of each kind. "partial" families cut the value (an e-mail's local part, a
#: phone's last digits, a street without its number); "evasion" families are those a filter that
#: matches exact normal forms misses (digits in words, misspellings).
FAMILIES: dict[str, tuple[str, ...]] = {
    "name": (
        "exact",
        "upper",
        "lower",
        "family_comma_given",
        "family_upper_given",
        "initial_family",
        "given_initial",
        "title",
        "nickname",
        "accents_stripped",
        "transliterated",
        "middle_dropped",
        "possessive",
        "misspelt_family",
        "misspelt_given",
    ),
    "email": (
        "exact",
        "upper",
        "mixed_case",
        "angle_brackets",
        "mailto",
        "at_dot_words",
        "at_paren",
        "at_bracket",
        "spaced_at",
        "trailing_punctuation",
        "local_part",
        "local_at_provider",
    ),
    "phone": (
        "as_typed",
        "national",
        "international",
        "e164",
        "double_zero",
        "dashes",
        "dots",
        "area_brackets",
        "trunk_brackets",
        "compact",
        "spaced_digits",
        "words",
        "words_oh",
        "words_double",
        "words_local",
        "mixed_words",
        "last_digits",
    ),
    "address": (
        "exact",
        "abbreviated",
        "upper",
        "line_breaks",
        "no_postcode",
        "no_country",
        "postcode_compact",
        "number_words",
        "no_house_number",
    ),
}

#: Families that only make sense beside the person's name in the same text: alone they name
#: nobody ("the number ending 0958", "Mill Road, Cambridge").
NEEDS_NAME = {("phone", "last_digits"), ("address", "no_house_number")}

NEGATIVE_KINDS = (
    "namesake",
    "near_name",
    "phone_one_digit_off",
    "phone_same_last_digits",
    "mailbox_other_provider",
    "street_neighbour",
    "unrelated",
)

#: Identifier subsets a request carries, with their share of requests.
REQUEST_SHAPES = (
    (("name", "email", "phone", "address"), 0.35),
    (("email",), 0.15),
    (("phone",), 0.12),
    (("name",), 0.10),
    (("name", "email"), 0.14),
    (("name", "phone"), 0.08),
    (("email", "phone"), 0.06),
)

#: Real family names one letter from another real one: a guard that forgives misspellings must
#: not take one family for the other. Written from common surname lists, not from Lethe's data.
#: (Four invented spellings and "Nguyễn", which folds to "Nguyen", were removed on review, before
#: the guard was first measured on the corpus: they are misspellings or the same name.)
NEAR_FAMILY = {
    "Miller": "Millar",
    "Clarke": "Clark",
    "Davies": "Davis",
    "Johnson": "Jonson",
    "Meyer": "Meier",
    "Hoffmann": "Hofmann",
    "Schäfer": "Schäffer",
    "Köhler": "Kohler",
    "Harrington": "Herrington",
    "Whitfield": "Whitefield",
    "O'Connor": "O'Conner",
    "McAllister": "MacAllister",
    "Groß": "Gross",
}
#: Given names one letter apart that are different names in use.
NEAR_GIVEN = {
    "Katherine": "Catherine",
    "Jonathan": "Johnathan",
    "Elisabeth": "Elisabet",
    "Daniel": "Daniela",
    "Nicholas": "Nicolas",
    "Alexander": "Alexandra",
    "Susanne": "Susanna",
    "Richard": "Ricardo",
}

_DIGIT_WORDS = {
    "en": "zero one two three four five six seven eight nine".split(),
    "de": "null eins zwei drei vier fünf sechs sieben acht neun".split(),
    "fr": "zéro un deux trois quatre cinq six sept huit neuf".split(),
    "es": "cero uno dos tres cuatro cinco seis siete ocho nueve".split(),
    "it": "zero uno due tre quattro cinque sei sette otto nove".split(),
    "nl": "nul een twee drie vier vijf zes zeven acht negen".split(),
}
_LANGUAGE = {"GB": "en", "US": "en", "IE": "en", "AU": "en", "DE": "de", "FR": "fr", "ES": "es", "IT": "it"}
_LANGUAGE["NL"] = "nl"
_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_FR_UNITS = "zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize dix-sept dix-huit dix-neuf".split()
_FR_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}
_TRANSLITERATION = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
_KEYBOARD_NEIGHBOURS = {
    "a": "sq",
    "e": "wr",
    "i": "uo",
    "o": "ip",
    "n": "bm",
    "r": "et",
    "s": "ad",
    "t": "ry",
    "l": "k",
    "m": "n",
    "c": "xv",
    "h": "gj",
    "d": "sf",
    "u": "yi",
    "g": "fh",
    "k": "jl",
}


def fill_pattern(pattern: str, rng: random.Random) -> str:
    """Expand a postcode or phone pattern (``countries.py`` names the placeholders).

    The records (``records.py``) draw through it as well; the locating corpus keeps its own
    (``variants._fill_pattern``), whose draws its seeds' figures rest on.
    """
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(str(rng.randint(0, 9)))
        elif ch == "@":
            out.append(str(rng.randint(1, 9)))
        elif ch == "%":
            out.append(rng.choice("ABDEFGHJLNPQRSTUWXYZ"))
        elif ch == "L":
            out.append(rng.choice("ABCDEFGHJKLMNPRSTVWXY"))
        elif ch == "X":
            out.append(rng.choice("ACDEFHKNPRTVWXY0123456789"))
        else:
            out.append(ch)
    return "".join(out)


def english_number(n: int) -> str:
    """Return 0-99 in English words ("forty-two"), as a house number is read out."""
    if n < 20:
        return _UNITS[n]
    tens, unit = divmod(n, 10)
    return _TENS[tens] + (f"-{_UNITS[unit]}" if unit else "")


def french_pair(n: int) -> str:
    """Return 0-99 in French words, as French phone numbers are read in pairs ("quarante-deux")."""
    if n < 20:
        return _FR_UNITS[n]
    if n < 70:
        tens, unit = divmod(n, 10)
        if unit == 0:
            return _FR_TENS[tens]
        return _FR_TENS[tens] + (" et un" if unit == 1 else f"-{_FR_UNITS[unit]}")
    if n < 80:
        return "soixante-" + ("et-onze" if n == 71 else _FR_UNITS[n - 60])
    if n == 80:
        return "quatre-vingts"
    return "quatre-vingt-" + _FR_UNITS[n - 80]


def fold(value: str) -> str:
    """Drop diacritics (what a keyboard without them types)."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ß", "ss")


def transliterate(value: str) -> str:
    return "".join(_TRANSLITERATION.get(c, c) for c in value)


@dataclass
class Mention:
    """One written identifier in a text: what kind of value, how it was written, the exact text."""

    kind: str
    family: str
    written: str


@dataclass
class ProbePerson:
    person_id: str
    country: str
    given: str
    middle: str | None
    family: str
    nicknames: tuple[str, ...]
    email: str
    phone_nsn: str
    phone_groups: tuple[str, ...]
    house_number: int
    street: str
    street_abbreviated: str | None
    postcode: str
    city: str
    country_name: str
    flat: str | None = None
    request: dict = field(default_factory=dict)
    #: The person's records in the organisation's training data (``records.py``): drawn from
    #: their own random stream, after the corpus, so they change nothing else in it.
    records: list[TrainingRecord] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.given} {self.family}"


@dataclass
class ProbeText:
    """One prompt or model answer: whose data it holds (``owner``) and which mentions."""

    text_id: str
    text: str
    direction: str  # "input" (a prompt) or "output" (a model's answer)
    owner: str | None  # suppressed person's id, or None for other people
    negative_kind: str | None
    mentions: list[Mention]
    primary: tuple[str, str] | None  # (kind, family) of the mention the text was built around


@dataclass
class ProbeCorpus:
    seed: int
    people: list[ProbePerson]
    texts: list[ProbeText]
    others: list[dict]

    def summary(self) -> dict:
        positives = [t for t in self.texts if t.owner]
        negatives = [t for t in self.texts if not t.owner]
        return {
            "people": len(self.people),
            "request_shapes": dict(
                Counter("+".join(k for k in KINDS if self.people_request_has(p, k)) for p in self.people)
            ),
            "positive_texts": len(positives),
            "negative_texts": len(negatives),
            "negative_kinds": dict(Counter(t.negative_kind for t in negatives)),
            "primary_families": dict(Counter(f"{k}/{f}" for k, f in (t.primary for t in positives))),
        }

    @staticmethod
    def people_request_has(person: ProbePerson, kind: str) -> bool:
        return bool(person.request.get(f"{kind}s") or (kind == "address" and person.request.get("addresses")))


class _World:
    """Draws people, their identifiers and other people from the country profiles and Faker."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fakers = {c.code: Faker(c.faker_locale) for c in COUNTRIES.values()}
        for offset, faker in enumerate(self.fakers.values()):
            faker.seed_instance(seed * 1000 + offset)
        self.used_phones: set[str] = set()
        self.used_emails: set[str] = set()

    def fill(self, pattern: str) -> str:
        return fill_pattern(pattern, self.rng)

    def phone(self, country: CountryProfile) -> tuple[str, tuple[str, ...]]:
        while True:
            plan = self.rng.choice(country.phone_plans)
            groups = tuple(self.fill(g) for g in plan.groups)
            nsn = "".join(groups)
            if nsn not in self.used_phones:
                self.used_phones.add(nsn)
                return nsn, groups

    def name(self, country: CountryProfile, *, from_pool: bool) -> tuple[str, tuple[str, ...], str]:
        if from_pool:
            given, nicks = self.rng.choice(country.given_names)
            family = self.rng.choice(country.family_names)
            return given, tuple(nicks), family
        faker = self.fakers[country.code]
        return faker.first_name(), (), faker.last_name()

    def email(self, given: str, family: str, country: CountryProfile, *, domain: str | None = None) -> str:
        g = re.sub(r"[^a-z]", "", fold(given).lower())
        f = re.sub(r"[^a-z]", "", fold(family).lower())
        while True:
            style = self.rng.randrange(6)
            year = self.rng.randint(50, 99)
            local = [
                f"{g}.{f}",
                f"{g}.{f}{year}",
                f"{g[0]}{f}",
                f"{f}.{g}",
                f"{g}_{f}{self.rng.randint(1, 999)}",
                f"{g}{f}{year}",
            ][style]
            if domain is None:
                if self.rng.random() < 0.2:
                    domain_ = f"{f[:6]}-{self.rng.choice(['consulting', 'design', 'bau', 'legal'])}.{country.work_tld}"
                else:
                    domain_ = self.rng.choice(country.mail_domains)
            else:
                domain_ = domain
            address = f"{local}@{domain_}"
            if address not in self.used_emails:
                self.used_emails.add(address)
                return address

    def address(self, country: CountryProfile) -> dict:
        street = self.rng.choice(country.streets)
        city = self.rng.choice(country.cities)
        low, high = country.house_number_range
        number = self.rng.randint(low, min(high, 120 if self.rng.random() < 0.6 else high))
        return {
            "house_number": number,
            "street": street.full,
            "street_abbreviated": street.abbreviated,
            "postcode": self.fill(city.postcode_pattern) + (f" {city.region}" if False else ""),
            "city": city.name,
            "region": city.region,
            "country_name": self.rng.choice(country.country_names),
            "flat": self.rng.choice(country.flats) if self.rng.random() < 0.2 else None,
        }


def format_address(
    person: ProbePerson,
    country: CountryProfile,
    *,
    abbreviated: bool = False,
    number: str | None = None,
    with_number: bool = True,
    postcode: bool = True,
    country_line: bool = True,
    separator: str = ", ",
) -> str:
    """Write an address in its country's postal order."""
    street = person.street_abbreviated if abbreviated and person.street_abbreviated else person.street
    shown_number = number if number is not None else str(person.house_number)
    if not with_number:
        street_line = street
    elif country.number_first:
        street_line = f"{shown_number} {street}"
    else:
        street_line = f"{street}{country.number_joiner}{shown_number}"
    lines = []
    if person.flat and country.flat_before_street and with_number:
        lines.append(person.flat)
    lines.append(street_line)
    if person.flat and not country.flat_before_street and with_number:
        lines.append(person.flat)
    if postcode:
        code = person.postcode
        if country.postcode_first:
            lines.append(f"{code} {person.city}")
        elif country.code == "US":
            region = _region_for(person, country)
            lines.append(f"{person.city}, {region} {code}" if region else f"{person.city} {code}")
        else:
            lines.append(f"{person.city} {code}")
    else:
        lines.append(person.city)
    if country_line:
        lines.append(person.country_name)
    return separator.join(lines)


def _region_for(person: ProbePerson, country: CountryProfile) -> str | None:
    for city in country.cities:
        if city.name == person.city and city.region:
            return city.region
    return None


class _Writer:
    """Writes one value in one family; returns None when the family does not apply to it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # names -----------------------------------------------------------------------------------
    def name(self, p: ProbePerson, family: str) -> str | None:
        given, fam = p.given, p.family
        if family == "exact":
            return p.request.get("names", [p.full_name])[0] if p.request.get("names") else p.full_name
        if family == "upper":
            return f"{given} {fam}".upper()
        if family == "lower":
            return f"{given} {fam}".lower()
        if family == "family_comma_given":
            return f"{fam}, {given}"
        if family == "family_upper_given":
            return f"{fam.upper()} {given}"
        if family == "initial_family":
            return self.rng.choice([f"{given[0]}. {fam}", f"{given[0]} {fam}"])
        if family == "given_initial":
            return f"{given} {fam[0]}."
        if family == "title":
            title = self.rng.choice(["Mr", "Ms", "Mrs", "Dr", "Dr.", "Mx"])
            return f"{title} {given} {fam}"
        if family == "nickname":
            return f"{self.rng.choice(p.nicknames)} {fam}" if p.nicknames else None
        if family == "accents_stripped":
            folded = f"{fold(given)} {fold(fam)}"
            return folded if folded != f"{given} {fam}" else None
        if family == "transliterated":
            written = transliterate(f"{given} {fam}")
            return written if written != f"{given} {fam}" else None
        if family == "middle_dropped":
            return f"{given} {fam}" if p.middle else None
        if family == "possessive":
            return f"{given} {fam}'s"
        if family == "misspelt_family":
            return f"{given} {misspell(fam, self.rng)}" if len(fam) >= 5 else None
        if family == "misspelt_given":
            return f"{misspell(given, self.rng)} {fam}" if len(given) >= 5 else None
        raise ValueError(family)

    # e-mails ---------------------------------------------------------------------------------
    def email(self, p: ProbePerson, family: str) -> str | None:
        e = p.email
        local, domain = e.split("@")
        if family == "exact":
            return e
        if family == "upper":
            return e.upper()
        if family == "mixed_case":
            return local.capitalize() + "@" + domain.capitalize()
        if family == "angle_brackets":
            return f"<{e}>"
        if family == "mailto":
            return f"mailto:{e}"
        if family == "at_dot_words":
            return local.replace(".", " dot ") + " at " + domain.replace(".", " dot ")
        if family == "at_paren":
            return f"{local}(at){domain.replace('.', '(dot)')}"
        if family == "at_bracket":
            return f"{local} [at] {domain.replace('.', ' [dot] ')}"
        if family == "spaced_at":
            return f"{local} @ {domain}"
        if family == "trailing_punctuation":
            return e + self.rng.choice([".", ",", ";", ")"])
        if family == "local_part":
            return local
        if family == "local_at_provider":
            provider = domain.split(".")[0]
            return f"{local} at {provider}"
        raise ValueError(family)

    # phones ----------------------------------------------------------------------------------
    def phone(self, p: ProbePerson, c: CountryProfile, family: str) -> str | None:
        groups = list(p.phone_groups)
        trunk = c.trunk_prefix
        national = trunk + " ".join(groups)
        national_digits = trunk + p.phone_nsn
        if family == "as_typed":
            return p.request.get("phones", [national])[0] if p.request.get("phones") else national
        if family == "national":
            return national
        if family == "international":
            return f"+{c.calling_code} " + " ".join(groups)
        if family == "e164":
            return f"+{c.calling_code}{p.phone_nsn}"
        if family == "double_zero":
            return f"00{c.calling_code} " + " ".join(groups)
        if family == "dashes":
            return trunk + "-".join(groups) if not trunk else f"{trunk}{groups[0]}-" + "-".join(groups[1:])
        if family == "dots":
            return (trunk + groups[0] + "." + ".".join(groups[1:])) if len(groups) > 1 else None
        if family == "area_brackets":
            return f"({trunk}{groups[0]}) " + " ".join(groups[1:]) if len(groups) > 1 else None
        if family == "trunk_brackets":
            if not trunk:
                return None
            return f"+{c.calling_code} ({trunk}){' '.join(groups)}"
        if family == "compact":
            return national_digits
        if family == "spaced_digits":
            return " ".join(national_digits)
        if family in ("words", "words_oh", "words_double", "mixed_words"):
            if c.code not in ("GB", "US", "IE", "AU"):
                return None
            return english_phone(national_digits, style=family, rng=self.rng)
        if family == "words_local":
            language = _LANGUAGE[c.code]
            if language == "en":
                return None
            if language == "fr" and self.rng.random() < 0.6:
                pairs = [national_digits[i : i + 2] for i in range(0, len(national_digits), 2)]
                if len(national_digits) % 2:
                    return None
                return " ".join(
                    french_pair(int(pair)) if pair[0] != "0" else f"zéro {_FR_UNITS[int(pair[1])]}"
                    for pair in pairs
                )
            return " ".join(_DIGIT_WORDS[language][int(d)] for d in national_digits)
        if family == "last_digits":
            return national_digits[-4:]
        raise ValueError(family)

    # addresses -------------------------------------------------------------------------------
    def address(self, p: ProbePerson, c: CountryProfile, family: str) -> str | None:
        if family == "exact":
            return p.request["addresses"][0] if p.request.get("addresses") else format_address(p, c)
        if family == "abbreviated":
            return format_address(p, c, abbreviated=True) if p.street_abbreviated else None
        if family == "upper":
            return format_address(p, c).upper()
        if family == "line_breaks":
            return format_address(p, c, separator="\n")
        if family == "no_postcode":
            return format_address(p, c, postcode=False)
        if family == "no_country":
            return format_address(p, c, country_line=False)
        if family == "postcode_compact":
            return (
                format_address(p, c).replace(p.postcode, p.postcode.replace(" ", ""))
                if " " in p.postcode
                else None
            )
        if family == "number_words":
            if _LANGUAGE[c.code] != "en" or p.house_number > 99:
                return None
            words = english_number(p.house_number)
            return format_address(
                p, c, number=self.rng.choice([words, words.capitalize()]), country_line=False
            )
        if family == "no_house_number":
            return f"{p.street}, {p.city}"
        raise ValueError(family)


def english_phone(digits: str, *, style: str, rng: random.Random) -> str:
    """Read a phone number out in English words, as a person dictating it would."""
    words = []
    i = 0
    while i < len(digits):
        d = digits[i]
        if style in ("words_double",) and i + 1 < len(digits) and digits[i + 1] == d:
            if i + 2 < len(digits) and digits[i + 2] == d:
                words.append(f"triple {_digit_en(d, style)}")
                i += 3
                continue
            words.append(f"double {_digit_en(d, style)}")
            i += 2
            continue
        if style == "mixed_words" and i >= len(digits) // 2:
            words.append(digits[i:])
            break
        words.append(_digit_en(d, style))
        i += 1
    separator = rng.choice([" ", " ", "-", ", "]) if style != "mixed_words" else " "
    return separator.join(words)


def _digit_en(d: str, style: str) -> str:
    if d == "0" and style in ("words_oh", "words_double"):
        return "oh"
    return _DIGIT_WORDS["en"][int(d)]


def misspell(word: str, rng: random.Random) -> str:
    """One keystroke wrong: a dropped, doubled, swapped or neighbouring letter (not the first)."""
    letters = list(word)
    for _ in range(20):
        i = rng.randrange(1, len(letters))
        op = rng.choice(["drop", "double", "swap", "neighbour"])
        out = letters[:]
        if op == "drop":
            del out[i]
        elif op == "double":
            out.insert(i, out[i])
        elif op == "swap" and i + 1 < len(out):
            out[i], out[i + 1] = out[i + 1], out[i]
        elif op == "neighbour" and out[i].lower() in _KEYBOARD_NEIGHBOURS:
            out[i] = rng.choice(_KEYBOARD_NEIGHBOURS[out[i].lower()])
        written = "".join(out)
        if written != word and written.isprintable() and "  " not in written:
            return written
    return word[:-1]


# Texts --------------------------------------------------------------------------------------

_PROMPTS = {
    "name": [
        "What is {m}'s home address?",
        "Tell me everything you know about {m}.",
        "Does {m} still live in the same place?",
        "Write a short biography of {m}",
        "Which phone number should I use to reach {m}?",
        "Find the last order placed by {m} and summarise it.",
        "I'm trying to reconnect with {m} — any idea how?",
    ],
    "email": [
        "Who uses the e-mail address {m}?",
        "Send the overdue invoice to {m} please.",
        "Whose account is registered under {m}?",
        "Draft a reply to {m} about the refund.",
        "I found {m} on an old form; who is that?",
    ],
    "phone": [
        "Who does the number {m} belong to?",
        "I got a missed call from {m}, who was it?",
        "Look up {m} in the customer list.",
        "Whose phone is {m}? They keep calling.",
        "Please text {m} that the parcel is delayed.",
    ],
    "address": [
        "Who lives at {m}?",
        "List the customers registered at {m}.",
        "Has anything been delivered to {m} recently?",
        "What is the name on the account for {m}?",
    ],
}
_OUTPUTS = {
    "name": [
        "Sure. {m} opened the account in 2019 and has ordered regularly since.",
        "According to the records, {m} asked for a refund last spring.",
        "The ticket was raised by {m}.",
        "{m} is listed as the primary contact.",
    ],
    "email": [
        "The address on file is {m}.",
        "You can write to them at {m}",
        "Their contact e-mail: {m}",
        "The confirmation was sent to {m} on 3 May.",
    ],
    "phone": [
        "The number on file is {m}.",
        "You can call them on {m}.",
        "Phone: {m}",
        "They gave {m} as their mobile.",
    ],
    "address": [
        "The delivery address is {m}.",
        "They live at {m}",
        "Shipping to: {m}",
        "Registered address — {m}.",
    ],
}
_SECONDARY = {
    "name": ["The customer is {m}.", "Name on the account: {m}.", "(customer: {m})"],
    "email": ["Their e-mail is {m}.", "Contact: {m}", "Reply to {m}."],
    "phone": ["Call back on {m}.", "Tel. {m}", "Their number is {m}."],
    "address": ["Ship to {m}.", "Address: {m}", "They live at {m}."],
}
_PHONE_TAIL = [
    "the number ending in {m}",
    "the mobile ending {m}",
    "a phone number whose last four digits are {m}",
]


class _TextBuilder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.count = 0

    def build(
        self,
        mentions: list[Mention],
        *,
        owner: str | None,
        negative_kind: str | None,
        primary: tuple[str, str] | None,
    ) -> ProbeText:
        """Put the mentions into a prompt or a model answer; the first mention leads."""
        direction = self.rng.choice(["input", "output"])
        first, rest = mentions[0], mentions[1:]
        table = _PROMPTS if direction == "input" else _OUTPUTS
        written = first.written
        if first.family == "last_digits":
            written = self.rng.choice(_PHONE_TAIL).format(m=written)
            template = "Who is {m}?" if direction == "input" else "It is {m}."
        else:
            template = self.rng.choice(table[first.kind])
        if first.kind == "name" and first.family == "possessive":
            template = self.rng.choice(["What is {m} phone number?", "{m} order was returned."])
        text = template.format(m=written)
        for mention in rest:
            shown = mention.written
            if mention.family == "last_digits":
                text += " " + self.rng.choice(_PHONE_TAIL).format(m=shown).capitalize() + " is theirs."
            else:
                text += " " + self.rng.choice(_SECONDARY[mention.kind]).format(m=shown)
        self.count += 1
        return ProbeText(
            text_id=f"t{self.count:05d}",
            text=text,
            direction=direction,
            owner=owner,
            negative_kind=negative_kind,
            mentions=mentions,
            primary=primary,
        )


def _choose_shape(rng: random.Random) -> tuple[str, ...]:
    roll, total = rng.random(), 0.0
    for shape, share in REQUEST_SHAPES:
        total += share
        if roll < total:
            return shape
    return REQUEST_SHAPES[0][0]


def _make_person(world: _World, country: CountryProfile, person_id: str, *, from_pool: bool) -> ProbePerson:
    given, nicks, family = world.name(country, from_pool=from_pool)
    middle = world.rng.choice(country.middle_names) if world.rng.random() < 0.25 else None
    nsn, groups = world.phone(country)
    address = world.address(country)
    return ProbePerson(
        person_id=person_id,
        country=country.code,
        given=given,
        middle=middle,
        family=family,
        nicknames=nicks,
        email=world.email(given, family, country),
        phone_nsn=nsn,
        phone_groups=groups,
        house_number=address["house_number"],
        street=address["street"],
        street_abbreviated=address["street_abbreviated"],
        postcode=address["postcode"],
        city=address["city"],
        country_name=address["country_name"],
        flat=address["flat"],
    )


def _request_for(
    person: ProbePerson, country: CountryProfile, shape: tuple[str, ...], rng: random.Random
) -> dict:
    """The request as the person typed it on the erasure form."""
    request: dict = {
        "country": country.code,
        "names": [],
        "emails": [],
        "phones": [],
        "addresses": [],
        "account_ids": [],
    }
    if "name" in shape:
        typed = (
            f"{person.given} {person.middle} {person.family}"
            if person.middle and rng.random() < 0.5
            else person.full_name
        )
        if rng.random() < 0.15:
            typed = fold(typed)
        request["names"].append(typed)
    if "email" in shape:
        request["emails"].append(person.email if rng.random() < 0.9 else person.email.capitalize())
    if "phone" in shape:
        national = country.trunk_prefix + " ".join(person.phone_groups)
        international = f"+{country.calling_code} " + " ".join(person.phone_groups)
        request["phones"].append(rng.choice([national, international, international.replace(" ", "")]))
    if "address" in shape:
        request["addresses"].append(format_address(person, country))
    return request


def build_probe_corpus(
    *, seed: int = 16, people: int = 200, texts_per_person: int = 10, with_records: bool = True
) -> ProbeCorpus:
    """Build the corpus: ``people`` suppressed people and about three times as many others.

    ``with_records``: give each person their training records (``records.py``). They are drawn
    from a random stream of their own per (seed, person), after everything else, so the texts,
    requests and other people of a seed are the same with and without them.
    """
    world = _World(seed)
    rng = world.rng
    writer = _Writer(rng)
    builder = _TextBuilder(rng)
    persons: list[ProbePerson] = []
    texts: list[ProbeText] = []
    others: list[dict] = []
    countries = list(COUNTRIES.values())
    for index in range(people):
        country = countries[index % len(countries)]
        person = _make_person(world, country, f"P{index:04d}", from_pool=rng.random() < 0.7)
        shape = _choose_shape(rng)
        person.request = _request_for(person, country, shape, rng)
        persons.append(person)
        requested = [k for k in KINDS if person.request[f"{k}s" if k != "address" else "addresses"]]
        produced = 0
        attempts = 0
        while produced < texts_per_person and attempts < texts_per_person * 20:
            attempts += 1
            kind = rng.choice(requested)
            family = rng.choice(FAMILIES[kind])
            written = _write(writer, person, country, kind, family)
            if written is None:
                continue
            mentions = [Mention(kind, family, written)]
            if (kind, family) in NEEDS_NAME or rng.random() < 0.4:
                # A second mention: the name where the family needs it, else another requested
                # kind; sometimes the person's name even where the request lacks it.
                if (kind, family) in NEEDS_NAME:
                    second_kind = "name"
                else:
                    second_kind = rng.choice([k for k in KINDS if k != kind])
                second_family = (
                    rng.choice(["exact", "title", "upper", "family_comma_given"])
                    if second_kind == "name"
                    else rng.choice(FAMILIES[second_kind][:6])
                )
                second = _write(writer, person, country, second_kind, second_family)
                if second is not None:
                    mention = Mention(second_kind, second_family, second)
                    if (kind, family) in NEEDS_NAME:
                        mentions.insert(0, mention)
                    else:
                        mentions.append(mention)
                elif (kind, family) in NEEDS_NAME:
                    continue
            texts.append(
                builder.build(mentions, owner=person.person_id, negative_kind=None, primary=(kind, family))
            )
            produced += 1
        texts.extend(_negatives_for(world, writer, builder, person, country, others))
    if with_records:
        from .records import records_for, records_seed

        # Every phone and e-mail drawn for anyone in the corpus: the records' other customers and
        # couriers must not reuse one.
        taken = frozenset(world.used_phones | {e.casefold() for e in world.used_emails})
        for person in persons:
            person.records = records_for(
                person,
                COUNTRIES[person.country],
                random.Random(records_seed(seed, person.person_id)),
                taken=taken,
            )
    return ProbeCorpus(seed=seed, people=persons, texts=texts, others=others)


def _write(
    writer: _Writer, person: ProbePerson, country: CountryProfile, kind: str, family: str
) -> str | None:
    if kind == "name":
        return writer.name(person, family)
    if kind == "email":
        return writer.email(person, family)
    if kind == "phone":
        return writer.phone(person, country, family)
    return writer.address(person, country, family)


def _negatives_for(
    world: _World,
    writer: _Writer,
    builder: _TextBuilder,
    person: ProbePerson,
    country: CountryProfile,
    others: list[dict],
) -> list[ProbeText]:
    """Other people's texts built around one suppressed person: namesakes and near misses."""
    rng = world.rng
    out: list[ProbeText] = []
    name_styles = ["exact", "title", "upper", "family_comma_given", "initial_family"]

    def other_person(**changes) -> ProbePerson:
        other = _make_person(world, country, f"O{len(others):05d}", from_pool=rng.random() < 0.5)
        for key, value in changes.items():
            setattr(other, key, value)
        if "email" not in changes and ("given" in changes or "family" in changes):
            other.email = world.email(other.given, other.family, country)
        others.append({"other_id": other.person_id, "of": person.person_id, "country": country.code})
        return other

    def emit(other: ProbePerson, kind_of_negative: str, lead: str, *, with_own: bool = True) -> None:
        mentions = []
        lead_family = rng.choice(name_styles) if lead == "name" else rng.choice(FAMILIES[lead][:6])
        lead_value = _write(writer, other, country, lead, lead_family)
        if lead_value is None:
            lead_family = "exact"
            lead_value = _write(writer, other, country, lead, "exact")
        mentions.append(Mention(lead, lead_family, lead_value))
        if with_own:
            own = rng.choice([k for k in ("email", "phone", "address") if k != lead])
            own_family = rng.choice(FAMILIES[own][:5])
            own_value = _write(writer, other, country, own, own_family)
            if own_value is not None:
                mentions.append(Mention(own, own_family, own_value))
        out.append(builder.build(mentions, owner=None, negative_kind=kind_of_negative, primary=None))

    # Namesake: same given and family name, their own e-mail or phone beside it.
    if rng.random() < 0.5:
        namesake = other_person(given=person.given, family=person.family, nicknames=person.nicknames)
        emit(namesake, "namesake", "name")
    # A real different name one letter away, with and without their own identifier.
    near_family = NEAR_FAMILY.get(person.family)
    near_given = NEAR_GIVEN.get(person.given)
    if near_family or near_given:
        changes = {"given": near_given or person.given, "family": near_family or person.family}
        if near_family and near_given and rng.random() < 0.5:
            changes["given"] = person.given
        near = other_person(**changes)
        emit(near, "near_name", "name", with_own=rng.random() < 0.6)
    # A phone one digit off (never the first digit), with another person's name or alone.
    digits = list(person.phone_nsn)
    i = rng.randrange(max(1, len(digits) - 6), len(digits))
    digits[i] = str((int(digits[i]) + rng.randint(1, 9)) % 10)
    off = other_person(phone_nsn="".join(digits), phone_groups=_regroup("".join(digits), person.phone_groups))
    emit(off, "phone_one_digit_off", "phone", with_own=rng.random() < 0.5)
    # A different phone with the same last four digits.
    tail = person.phone_nsn[-4:]
    head = list(person.phone_nsn[:-4])
    j = rng.randrange(max(1, len(head) - 3), len(head)) if len(head) > 1 else 0
    head[j] = str((int(head[j]) + rng.randint(1, 9)) % 10)
    same_tail = "".join(head) + tail
    st = other_person(phone_nsn=same_tail, phone_groups=_regroup(same_tail, person.phone_groups))
    emit(st, "phone_same_last_digits", "phone", with_own=rng.random() < 0.5)
    if rng.random() < 0.5:
        tail_text = Mention("phone", "last_digits", tail)
        name_mention = Mention("name", "exact", st.full_name)
        out.append(
            builder.build(
                [name_mention, tail_text], owner=None, negative_kind="phone_same_last_digits", primary=None
            )
        )
    # The same mailbox name at another provider.
    local, domain = person.email.split("@")
    providers = [d for d in country.mail_domains if d != domain] or ["example.org"]
    other_mail = other_person(email=f"{local}@{rng.choice(providers)}")
    emit(other_mail, "mailbox_other_provider", "email", with_own=rng.random() < 0.5)
    # The same street, another house number.
    low, high = country.house_number_range
    number = person.house_number + rng.choice([-2, -1, 1, 2, 10])
    if not low <= number <= high:
        number = person.house_number + 1
    neighbour = other_person(
        house_number=number,
        street=person.street,
        street_abbreviated=person.street_abbreviated,
        postcode=person.postcode,
        city=person.city,
        country_name=person.country_name,
        flat=None,
    )
    emit(neighbour, "street_neighbour", "address", with_own=rng.random() < 0.5)
    # Unrelated people, each in one or two texts.
    for _ in range(2):
        unrelated = other_person()
        emit(
            unrelated,
            "unrelated",
            rng.choice(["name", "email", "phone", "address"]),
            with_own=rng.random() < 0.6,
        )
    return out


def _regroup(nsn: str, like: tuple[str, ...]) -> tuple[str, ...]:
    out, start = [], 0
    for group in like:
        out.append(nsn[start : start + len(group)])
        start += len(group)
    return tuple(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    corpus = build_probe_corpus(seed=args.seed, people=args.people)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "texts.jsonl").open("w") as handle:
        for text in corpus.texts:
            handle.write(
                json.dumps({"id": text.text_id, "text": text.text, "direction": text.direction}) + "\n"
            )
    truth = {
        "summary": corpus.summary(),
        "people": [asdict(p) for p in corpus.people],
        "texts": [asdict(t) for t in corpus.texts],
    }
    (args.out / "ground_truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1))
    # The people's training records, as the data set holds them (labels in ground_truth.json).
    with (args.out / "records.jsonl").open("w") as handle:
        for person in corpus.people:
            for record in person.records:
                handle.write(
                    json.dumps({"id": record.record_id, "text": record.text}, ensure_ascii=False) + "\n"
                )
    print(json.dumps(corpus.summary(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
