"""Forms of an identifier that exact normal forms miss: digits in words, misspellings, partial values.

Why a module of its own: each of these widens what a rule matches, so each is bounded by what
keeps other people out, and those bounds are easier to read and test in one place.

* **Digits in words.** A phone dictated in words ("oh two oh, seven nine four six ...", "double
  seven", German "null eins", French pairs "zéro six quarante-deux") is read back into digits;
  the run must hold at least seven digits, which ordinary prose does not.
* **Misspellings.** A name with one keystroke wrong in one of its words meets the rule without
  a scan of the rules, under a keystroke model rather than any edit: a *dropped* letter
  ("Pemberon": the rule keeps the pair with each word cut by one letter), a *doubled* letter
  ("Pembertton"), two *swapped* neighbours ("Micheal") or a *neighbouring key* on a QWERTY
  keyboard ("Pemberyon") are undone on the text's side and looked up against the rule's exact
  pair. Any other edit is refused, because real names one letter apart mostly differ so
  (Harrington/Herrington, Whitfield/Whitefield, O'Connor/O'Conner: a vowel for another or an
  added letter). Bounds: only words of five letters or more, never the first letter, only
  capitalised words in text, and never a text word that is itself a known name (Clark is not a
  misspelt Clarke: it is another family); the filter also drops a name whose text carries
  another e-mail, phone or address.
* **Partial values.** An e-mail's local part written alone ("write to jane.doe87") when it is
  distinctive: six characters or more, with a digit or separator or at least nine letters, and
  neither a known name nor a generic mailbox ("info", "contact"). Inside a whole address with
  another domain it is never matched: that mailbox is someone else's. With its provider but no
  top-level domain ("dmilne at gmail", "jmenard@free") any local part counts: the pair names
  one mailbox, and the same name at another provider does not meet it.

Every form is hashed with the index's key like every other rule; nothing here keeps a value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..pii.known_names import is_known_name
from ..pii.normalise import NormalisationError, normalise_name

__all__ = [
    "FUZZY_PREFIX",
    "FUZZY_DELETION_PREFIX",
    "FUZZY_WORD_PREFIX",
    "KEYBOARD_NEIGHBOURS",
    "LOCAL_PREFIX",
    "MAILBOX_PREFIX",
    "PHONE_TAIL_PREFIX",
    "SPELT_NAME_PREFIX",
    "JOINED_NAME_PREFIX",
    "joined_name_form",
    "MIN_SPELT_NAME_LETTERS",
    "TOWN_PREFIX",
    "MIN_FUZZY_WORD",
    "MIN_LETTERS_LOCAL",
    "deletions",
    "fuzzy_pair_forms",
    "keystroke_repairs",
    "local_part_form",
    "mailbox_form",
    "mailbox_key",
    "phone_tail_form",
    "phone_tail_key",
    "spelt_name_form",
    "spelt_name_keys",
    "spelt_digit_runs",
    "text_fuzzy_keys",
    "original_position",
    "with_house_numbers_in_digits",
]

FUZZY_PREFIX = "fuzzy:"
#: A name pair with one letter dropped from one word: kept apart from exact pairs so that a
#: repaired text word (one keystroke undone) never meets a cut rule word (a second edit).
FUZZY_DELETION_PREFIX = "fuzzy-:"
#: A word of a name pair, alone: never a match, only a gate before trying repairs.
FUZZY_WORD_PREFIX = "fuzzy-word:"
LOCAL_PREFIX = "local:"
MAILBOX_PREFIX = "mailbox:"
#: A phone's last four digits: never a match on their own (thousands share them), only what
#: tells a suppressed person's name from a namesake's beside "the number ending 0958".
PHONE_TAIL_PREFIX = "tail:"
#: A word of what follows an address's street (town, postcode letters, region, country): never
#: a match, only what tells "115 Main Street, Cork" from "115 Main Street, Galway".
TOWN_PREFIX = "town:"
#: The letters of an e-mail address's local part ("katherine.whitfield91" → katherinewhitfield):
#: never a match on their own, only what, beside a phone's last digits of the same subject,
#: says that the name a text gives ("KATHERINE WHITFIELD", "Pemberton, Robert" for "rpemberton")
#: is theirs though the request never gave a name.
SPELT_NAME_PREFIX = "spelt-name:"
#: The letters of a name's words run together ("doloresibanezruiz"): met by a text's run of
#: words that begins with the name's given name and spells the same letters with a space moved,
#: lost or added inside the rest ("Dolores IbáñezR uiz", "Sanne van 'tH of", "Sanne vander
#: Berg"). The given name must be written whole, so a moved space never makes another person
#: of it ("Anne Wing" is no Ann Ewing: "anne" is no word of that name).
JOINED_NAME_PREFIX = "joined:"
#: Fewest letters a joined name must have: "janli" could be many things.
MIN_JOINED_LETTERS = 10
#: Fewest letters a local part must have to spell a name: "rpemberton" (initial and family
#: name) has 10, "jdoe" 4 (initial and a short family name that many share).
MIN_SPELT_NAME_LETTERS = 6
#: Shortest local part of letters only that is matched written alone ("harrietpemberton"):
#: shorter ones ("rhunt", "pjohnson") are initial + family name, which many people share.
MIN_LETTERS_LOCAL = 9
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
#: The words a run of spelt digits can begin with (digits aside): at any other word none does.
_RUN_OPENERS = (
    frozenset(_DIGIT_WORDS)
    | frozenset(_REPEAT)
    | frozenset(_FR_TENS)
    | frozenset(_FR_TEENS)
    | {"quatre", "dix"}
)
_RUN_GAP = re.compile(r"[\s,.\-/()]{0,3}")

_GENERIC_MAILBOXES = frozenset(
    """
    info contact admin office sales support hello mail service kontakt bureau help noreply
    no-reply webmaster postmaster billing accounts enquiries inquiries team reception
    """.split()
)
_LOCAL = re.compile(r"[a-z0-9][a-z0-9._%+\-]*[a-z0-9]")


def deletions(word: str) -> set[str]:
    """Return ``word`` with one letter removed at each position but the first."""
    return {word[:i] + word[i + 1 :] for i in range(1, len(word))}


def fuzzy_pair_forms(given: str, family: str) -> set[str]:
    """Return the rule forms that meet "given family" with one keystroke wrong in one word.

    ``fuzzy:`` + the token-sorted exact pair (met by a text word a keystroke is undone in), and
    ``fuzzy-:`` + the pair with one letter dropped from a word of at least ``MIN_FUZZY_WORD``
    letters (met by a text word that lost that letter).
    """
    forms: set[str] = set()
    if not given.isalpha() or not family.isalpha():
        return forms
    low, high = sorted((given, family))
    forms.add(f"{FUZZY_PREFIX}{low} {high}")
    # Each word alone, under a prefix no text window is hashed with: a text pair is worth
    # repairing only if its other word is one of these (one lookup instead of forty).
    forms.update({f"{FUZZY_WORD_PREFIX}{given}", f"{FUZZY_WORD_PREFIX}{family}"})
    for word, other in ((given, family), (family, given)):
        if len(word) < MIN_FUZZY_WORD:
            continue
        for variant in deletions(word):
            low, high = sorted((variant, other))
            forms.add(f"{FUZZY_DELETION_PREFIX}{low} {high}")
    return forms


#: QWERTY rows and their stagger: keys whose centres lie within about one key width are
#: neighbours (left, right, and the touching keys of the rows above and below).
_KEY_ROWS = (("qwertyuiop", 0.0), ("asdfghjkl", 0.5), ("zxcvbnm", 1.0))


def _keyboard_neighbours() -> dict[str, str]:
    places = {
        key: (row, column + offset)
        for row, (keys, offset) in enumerate(_KEY_ROWS)
        for column, key in enumerate(keys)
    }
    return {
        key: "".join(
            other
            for other, (row2, x2) in places.items()
            if other != key and (row2 - row) ** 2 + (x2 - x) ** 2 <= 1.3
        )
        for key, (row, x) in places.items()
    }


KEYBOARD_NEIGHBOURS: dict[str, str] = _keyboard_neighbours()


def keystroke_repairs(word: str) -> set[str]:
    """Return ``word`` with one keystroke undone: a doubled letter made single, two neighbours
    swapped back, or a letter replaced by a key next to it. The first letter is never touched."""
    repairs: set[str] = set()
    for i in range(1, len(word)):
        if i > 1 and word[i] == word[i - 1]:
            repairs.add(word[:i] + word[i + 1 :])
        if i + 1 < len(word) and word[i] != word[i + 1]:
            repairs.add(word[:i] + word[i + 1] + word[i] + word[i + 2 :])
        for key in KEYBOARD_NEIGHBOURS.get(word[i], ""):
            repairs.add(word[:i] + key + word[i + 1 :])
    repairs.discard(word)
    return repairs


def text_fuzzy_keys(word: str, other: str) -> list[str]:
    """Return the keys a text's pair ``word other`` is looked up under, ``word`` the suspect:
    the pair as written against the rules' cut pairs, and each keystroke repair against the
    rules' exact pairs."""
    low, high = sorted((word, other))
    keys = [f"{FUZZY_DELETION_PREFIX}{low} {high}"]
    for variant in sorted(keystroke_repairs(word)):
        low, high = sorted((variant, other))
        keys.append(f"{FUZZY_PREFIX}{low} {high}")
    return keys


def local_part_form(email_normalised: str) -> str | None:
    """Return the rule form of an address's local part, or None where it is not distinctive."""
    local = email_normalised.rsplit("@", 1)[0].casefold()
    if not _LOCAL.fullmatch(local) or len(local) < 6 or local in _GENERIC_MAILBOXES:
        return None
    letters_only = local.isalpha()
    if letters_only and (len(local) < MIN_LETTERS_LOCAL or is_known_name(local)):
        return None
    return LOCAL_PREFIX + local


def mailbox_form(email_normalised: str) -> str | None:
    """Return the rule form of "local part at provider" ("dmilne at gmail"): the local part and
    the first label of the domain, or None for a generic mailbox."""
    local, _, domain = email_normalised.casefold().rpartition("@")
    provider = domain.split(".", 1)[0]
    if not local or not provider or local in _GENERIC_MAILBOXES:
        return None
    return f"{MAILBOX_PREFIX}{local}@{provider}"


def mailbox_key(local: str, provider: str) -> str:
    """Return the key a text's "local at provider" is looked up under."""
    return f"{MAILBOX_PREFIX}{local.casefold().strip('.-_')}@{provider.casefold()}"


def phone_tail_form(phone: str) -> str | None:
    """Return the rule form of a phone's last four digits, or None for a value without them."""
    digits = re.sub(r"\D", "", phone)
    return f"{PHONE_TAIL_PREFIX}{digits[-4:]}" if len(digits) >= 7 else None


def phone_tail_key(digits: str) -> str:
    """Return the key a text's "ending 0958" is looked up under."""
    return f"{PHONE_TAIL_PREFIX}{digits}"


def joined_name_form(words: Sequence[str]) -> str | None:
    """Return the joined form of a name's folded words, or None for one word or a short name."""
    if len(words) < 2:
        return None
    letters = "".join(re.sub(r"[^a-z]", "", word) for word in words)
    return JOINED_NAME_PREFIX + letters if len(letters) >= MIN_JOINED_LETTERS else None


def _name_letters(word: str) -> str:
    """Return a word folded as name tokens are, letters only ("O'Keefe" → okeefe, "Weiß" → weiss)."""
    try:
        return re.sub(r"[^a-z]", "", normalise_name(word))
    except NormalisationError:
        return ""


def spelt_name_form(email_normalised: str) -> str | None:
    """Return the rule form of the name an address's local part may spell, or None.

    The local part's letters, folded, without digits, separators or a "+tag"
    ("Jurgen.Weiss+shop@web.de" → jurgenweiss); None for a generic mailbox ("info", "support")
    or fewer than ``MIN_SPELT_NAME_LETTERS`` letters.
    """
    local = email_normalised.rsplit("@", 1)[0].casefold().split("+", 1)[0]
    if local in _GENERIC_MAILBOXES:
        return None
    letters = "".join(_name_letters(part) for part in re.split(r"[\W_\d]+", local) if part)
    if len(letters) < MIN_SPELT_NAME_LETTERS:
        return None
    return SPELT_NAME_PREFIX + letters


def spelt_name_keys(given: Sequence[str], family: Sequence[str]) -> set[str]:
    """Return the keys a text's name is looked up under as a spelt name.

    ``given`` and ``family`` are the name's words as written (["Renée"], ["MacKenzie"];
    ["Robert"], ["Pemberton"] from "Pemberton, Robert"). Local parts spell a name in order
    ("petertrenor"), family name first ("mackenzierenee") or as initial and family name
    ("rpemberton"); particles and hyphenated parts are kept ("jacobusvanderberg").
    """
    given_letters = [_name_letters(word) for word in given]
    family_letters = [_name_letters(word) for word in family]
    if not given_letters or not family_letters or not all(given_letters + family_letters):
        return set()
    spellings = {
        "".join(given_letters + family_letters),
        "".join(family_letters + given_letters),
        given_letters[0][0] + "".join(family_letters),
    }
    return {SPELT_NAME_PREFIX + letters for letters in spellings if len(letters) >= MIN_SPELT_NAME_LETTERS}


def local_part_key(candidate: str) -> str | None:
    """Return the key a text's candidate local part is looked up under, or None."""
    local = candidate.casefold().strip(".-_")
    if len(local) < 6 or not _LOCAL.fullmatch(local):
        return None
    return LOCAL_PREFIX + local


_EN_UNITS = "one two three four five six seven eight nine".split()
_EN_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_EN_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_EN_NUMBER_VALUES = {
    **{word: index + 1 for index, word in enumerate(_EN_UNITS)},
    **{word: index + 10 for index, word in enumerate(_EN_TEENS)},
    **{word: (index + 2) * 10 for index, word in enumerate(_EN_TENS)},
}
#: A house number in English words before a capitalised word ("forty-one Wattle Avenue").
_HOUSE_NUMBER_WORDS = re.compile(
    r"\b(?:("
    + "|".join(_EN_TENS)
    + r")(?:[-\s]("
    + "|".join(_EN_UNITS)
    + r"))?|("
    + "|".join(_EN_TEENS + _EN_UNITS)
    + r"))(?=\s+[A-Z])",
    re.IGNORECASE,
)


def with_house_numbers_in_digits(text: str) -> tuple[str, list[tuple[int, int, int, int]]] | None:
    """Return ``text`` with English number words before a capitalised word written in digits
    ("forty-one Wattle Avenue" → "41 Wattle Avenue") and each replacement as ``(start, end)`` in
    the new text and in ``text``; or None when there is none. Only the address detectors read
    the new text: a number word alone is no address, a street type must follow."""
    pieces: list[str] = []
    replaced: list[tuple[int, int, int, int]] = []
    position = shift = 0
    for match in _HOUSE_NUMBER_WORDS.finditer(text):
        tens, unit, single = (group.lower() if group else None for group in match.groups())
        value = (
            _EN_NUMBER_VALUES[single]
            if single
            else _EN_NUMBER_VALUES[tens] + (_EN_NUMBER_VALUES[unit] if unit else 0)
        )
        digits = str(value)
        pieces.append(text[position : match.start()])
        start = match.start() + shift
        replaced.append((start, start + len(digits), match.start(), match.end()))
        pieces.append(digits)
        shift += len(digits) - (match.end() - match.start())
        position = match.end()
    if not replaced:
        return None
    pieces.append(text[position:])
    return "".join(pieces), replaced


def original_position(position: int, replaced: list[tuple[int, int, int, int]], *, end: bool = False) -> int:
    """Return where ``position`` of a text from ``with_house_numbers_in_digits`` lies in the original."""
    offset = 0
    for new_start, new_end, old_start, old_end in replaced:
        if position < new_start:
            break
        if position < new_end or (end and position == new_end):
            return old_end if end else old_start
        offset = old_end - new_end
    return position + offset


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
    if follow in _FR_UNITS and not used_as_eighty(words, i + used):
        # "vingt quatre-vingt-dix" is 20 90, not 24 followed by 20 and 10.
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
        if words[i] not in _RUN_OPENERS and not words[i].isdigit():
            i += 1  # prose: most words open no run, and the loop below would only say so
            continue
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
