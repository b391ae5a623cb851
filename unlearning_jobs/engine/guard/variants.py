"""Forms of an identifier that exact normal forms miss: digits in words, misspellings, partial values.

Why a module of its own: each of these widens what a rule matches, so each is bounded by what
keeps other people out, and those bounds are easier to read and test in one place.

* **Digits in words.** A phone dictated in words ("oh two oh, seven nine four six ...", "double
  seven", German "null eins", French pairs "zéro six quarante-deux") is read back into digits;
  the run must hold at least seven digits, which ordinary prose does not.
* **Misspellings.** A name with one keystroke wrong in one of its words ("Pembertton",
  "Micheal") meets the rule's *deletion neighbourhood* (SymSpell): the rule keeps the keyed hash
  of the name pair with each word cut by one letter, the text hashes its pair likewise, and a
  dropped, doubled, neighbouring or swapped letter meets one of them, with no scan of the rules.
  Bounds: only words of five letters or more, never the first letter, only capitalised words in
  text, and never a text word that is itself a known name (Clark is not a misspelt Clarke: it is
  another family); the filter also drops a name whose text carries another e-mail or phone.
* **Partial values.** An e-mail's local part written alone ("write to jane.doe87", "jane.doe87
  at gmail") when it is distinctive: six characters or more, with a digit or separator or at
  least nine letters, and neither a known name nor a generic mailbox ("info", "contact").
  Inside a whole address with another domain it is never matched: that mailbox is someone else's.

Every form is hashed with the index's key like every other rule; nothing here keeps a value.
"""

from __future__ import annotations

import importlib
import re
from functools import lru_cache

__all__ = [
    "FUZZY_PREFIX",
    "LOCAL_PREFIX",
    "MIN_FUZZY_WORD",
    "deletions",
    "fuzzy_pair_forms",
    "is_known_name",
    "local_part_form",
    "spelt_digit_runs",
]

FUZZY_PREFIX = "fuzzy:"
LOCAL_PREFIX = "local:"
#: Shortest name word a misspelling is forgiven in: "Jon" and "Jan" are different names.
MIN_FUZZY_WORD = 5
_MIN_SPELT_DIGITS = 7

_DIGIT_WORDS: dict[str, str] = {}
for _language in (
    "zero one two three four five six seven eight nine",
    "null eins zwei drei vier fünf sechs sieben acht neun",
    "zéro un deux trois quatre cinq six sept huit neuf",
    "cero uno dos tres cuatro cinco seis siete ocho nueve",
    "zero uno due tre quattro cinque sei sette otto nove",
    "nul een twee drie vier vijf zes zeven acht negen",
):
    for _digit, _word in enumerate(_language.split()):
        _DIGIT_WORDS.setdefault(_word, str(_digit))
_DIGIT_WORDS.update({"oh": "0", "o": "0", "nought": "0", "zwo": "2", "fuenf": "5", "zero": "0", "zeró": "0"})
_DIGIT_WORDS["zero"] = "0"
_REPEAT = {"double": 2, "triple": 3}
# French reads numbers in pairs: teens and tens, joined by hyphens or "et".
_FR_TEENS = {
    "dix": 10,
    "onze": 11,
    "douze": 12,
    "treize": 13,
    "quatorze": 14,
    "quinze": 15,
    "seize": 16,
}
_FR_TENS = {"vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60}
_FR_UNITS = {w: int(d) for w, d in zip("un deux trois quatre cinq six sept huit neuf".split(), range(1, 10))}
_SPELT_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_RUN_GAP = re.compile(r"[\s,.\-/()]{0,3}")

_GENERIC_MAILBOXES = frozenset(
    """
    info contact admin office sales support hello mail service kontakt bureau help noreply
    no-reply webmaster postmaster billing accounts enquiries inquiries team reception
    """.split()
)
_LOCAL = re.compile(r"[a-z0-9][a-z0-9._%+\-]*[a-z0-9]")

#: Faker locales whose name lists say which words are people's names (Faker is a runtime
#: requirement already; its lists are data, not generated values).
_NAME_LOCALES = (
    "en_US en_GB en_IE en_IN en_NZ de_DE de_AT de_CH fr_FR fr_CH es_ES es_MX it_IT nl_NL nl_BE "
    "pt_PT pt_BR pl_PL sv_SE da_DK no_NO fi_FI cs_CZ hu_HU ro_RO tr_TR ga_IE"
).split()


@lru_cache(maxsize=1)
def _known_names() -> frozenset[str]:
    """Return given and family names in use, folded as name tokens are (lower case, no accents)."""
    from ..pii.normalise import NormalisationError, normalise_name

    names: set[str] = set()
    for locale in _NAME_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ModuleNotFoundError:
            # A Faker release without this locale: the list is shorter, never wrong.
            continue
        for attribute in ("first_names", "first_names_male", "first_names_female", "last_names"):
            for name in getattr(provider, attribute, ()):
                try:
                    folded = normalise_name(name)
                except NormalisationError:
                    continue
                names.update(folded.split())
    return frozenset(names)


def is_known_name(folded_word: str) -> bool:
    """Return whether a folded word is a given or family name people bear."""
    return folded_word in _known_names()


def deletions(word: str) -> set[str]:
    """Return ``word`` with one letter removed at each position but the first."""
    return {word[:i] + word[i + 1 :] for i in range(1, len(word))}


def fuzzy_pair_forms(given: str, family: str) -> set[str]:
    """Return the rule forms that meet "given family" with one keystroke wrong in one word.

    Each is ``fuzzy:`` + the token-sorted pair with one word replaced by itself or one of its
    deletions, for words of at least ``MIN_FUZZY_WORD`` letters.
    """
    forms: set[str] = set()
    for word, other in ((given, family), (family, given)):
        if len(word) < MIN_FUZZY_WORD or not word.isalpha() or not other.isalpha():
            continue
        for variant in {word} | deletions(word):
            low, high = sorted((variant, other))
            forms.add(f"{FUZZY_PREFIX}{low} {high}")
    return forms


def text_fuzzy_keys(word: str, other: str) -> list[str]:
    """Return the keys a text's pair ``word other`` is looked up under, ``word`` the suspect."""
    keys = []
    for variant in (word, *deletions(word)):
        low, high = sorted((variant, other))
        keys.append(f"{FUZZY_PREFIX}{low} {high}")
    return keys


def local_part_form(email_normalised: str) -> str | None:
    """Return the rule form of an address's local part, or None where it is not distinctive."""
    local = email_normalised.rsplit("@", 1)[0].casefold()
    if not _LOCAL.fullmatch(local) or len(local) < 6 or local in _GENERIC_MAILBOXES:
        return None
    letters_only = local.isalpha()
    if letters_only and (len(local) < 9 or is_known_name(local)):
        return None
    return LOCAL_PREFIX + local


def local_part_key(candidate: str) -> str | None:
    """Return the key a text's candidate local part is looked up under, or None."""
    local = candidate.casefold().strip(".-_")
    if len(local) < 6 or not _LOCAL.fullmatch(local):
        return None
    return LOCAL_PREFIX + local


def _french_pair(words: list[str], i: int) -> tuple[str, int] | None:
    """Read a French number of 0-99 at ``words[i]``; return its digits and the words used."""
    word = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    after = words[i + 2] if i + 2 < len(words) else ""
    if word == "quatre" and nxt in ("vingt", "vingts"):
        base, used = 80, 2
        follow, follow2 = after, words[i + 3] if i + 3 < len(words) else ""
    elif word in _FR_TENS:
        base, used = _FR_TENS[word], 1
        follow, follow2 = nxt, after
    elif word == "dix" and nxt in ("sept", "huit", "neuf"):
        return str(10 + _FR_UNITS[nxt]), 2
    elif word in _FR_TEENS:
        return str(_FR_TEENS[word]), 1
    else:
        return None
    if follow == "et" and follow2 in ("un", "onze"):
        return str(base + (1 if follow2 == "un" else 11)), used + 2
    if base in (60, 80) and follow == "dix" and follow2 in ("sept", "huit", "neuf"):
        return str(base + 10 + _FR_UNITS[follow2]), used + 2
    if base in (60, 80) and follow in _FR_TEENS:
        return str(base + _FR_TEENS[follow]), used + 1
    if base in (60, 80) and follow == "dix":
        return str(base + 10), used + 1
    if follow in _FR_UNITS:
        return str(base + _FR_UNITS[follow]), used + 1
    return str(base), used


def used_as_eighty(words: list[str], i: int) -> bool:
    """Return whether "quatre" at ``i`` opens "quatre-vingt" (80), not the digit 4."""
    return words[i] == "quatre" and i + 1 < len(words) and words[i + 1] in ("vingt", "vingts")


def spelt_digit_runs(text: str) -> list[tuple[int, int, str]]:
    """Return ``(start, end, digits)`` for each run of number words and digits of 7+ digits.

    A run needs at least one number word (plain digit runs are the phone detector's) and may
    mix words and digit groups ("zero seven seven zero zero 900806").
    """
    lowered = text.lower()
    tokens = [(m.start(), m.end(), m.group()) for m in _SPELT_TOKEN.finditer(lowered)]
    if not any(token in _DIGIT_WORDS or token in _FR_TENS for _, _, token in tokens):
        return []
    words = [token for _, _, token in tokens]
    runs: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        digits, start, end, spelt, j = "", tokens[i][0], tokens[i][1], False, i
        while j < len(tokens):
            if j > i and not _RUN_GAP.fullmatch(lowered[tokens[j - 1][1] : tokens[j][0]]):
                break
            word = words[j]
            pair = _french_pair(words, j)
            if word in _REPEAT and j + 1 < len(tokens) and words[j + 1] in _DIGIT_WORDS:
                digits += _DIGIT_WORDS[words[j + 1]] * _REPEAT[word]
                used, spelt = 2, True
            elif pair is not None and (word not in _FR_UNITS or used_as_eighty(words, j)):
                digits += pair[0]
                used, spelt = pair[1], True
            elif word in _DIGIT_WORDS:
                if word in ("o", "un", "een", "uno") and not digits:
                    break  # "a", "one" opening a sentence: a run starts at a surer word
                digits += _DIGIT_WORDS[word]
                used, spelt = 1, True
            elif word.isdigit():
                digits += word
                used = 1
            else:
                break
            end = tokens[j + used - 1][1]
            j += used
        if spelt and len(digits) >= _MIN_SPELT_DIGITS:
            runs.append((start, end, digits))
        i = max(j, i + 1)
    return runs
