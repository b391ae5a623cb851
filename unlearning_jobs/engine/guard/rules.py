"""Turn an erased subject's identifiers into suppression rules that hold keyed hashes only.

A rule is an entity type, the index's keyed hash of one normalised form of a value, and an
opaque reference to the subject (an erasure request id, never a name). Each value contributes
every form under which the guard may meet it in text: a name its variants (initials, nicknames,
family name first) each in order and token-sorted, an address its full form and its street
part with and without what follows. A ``RuleSet`` is the versioned set a deployment enforces,
with its policy; it exports to JSON so another serving stack can apply the same rules.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..pii.entities import EntityType
from ..pii.hashing import KeyedHasher
from ..pii.match_keys import address_keys, identifier_match_keys, typed_street_identifier_keys
from ..pii.normalise import (
    NormalisationError,
    is_name_particle,
    is_particle_spelling,
    name_spellings,
    name_variants,
    nickname_equivalents,
    normalise_account_id,
    normalise_address,
    normalise_date_of_birth,
    normalise_email,
    normalise_location,
    normalise_name,
    normalise_phone,
)
from .detect import MAX_ADDRESS_TOKENS, STREET_WORDS, is_house_number
from .digest import KeyedDigest
from .policy import GuardPolicy
from .variants import (
    FUZZY_WORD_PREFIX,
    TOWN_PREFIX,
    fuzzy_pair_forms,
    joined_name_form,
    local_part_form,
    mailbox_form,
    phone_tail_form,
    spelt_name_form,
)

__all__ = [
    "SuppressionRule",
    "RuleSet",
    "rules_from_identifiers",
    "RULE_LISTS",
    "RECORD_LINKED_TYPES",
    "RECORD_QUASI_TYPES",
    "name_forms",
    "address_forms",
    "export_rules",
    "rule_set_as_dict",
    "load_rules",
    "key_check",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "STREET_WORDS",
]

EXPORT_FORMAT = "lethe-guard-rules"
EXPORT_VERSION = 1
_HASH_DESCRIPTION = "HMAC-SHA256 of '<ENTITY_TYPE>:<normalised value>', hex"
_KEY_CHECK_MESSAGE = b"lethe-guard-rules key check v1"

#: The keyword of ``rules_from_identifiers`` that takes values of each entity type.
RULE_LISTS = {
    "PERSON": "names",
    "EMAIL": "emails",
    "PHONE": "phones",
    "ADDRESS": "addresses",
    "ACCOUNT_ID": "account_ids",
    "LOCATION": "locations",
    "DATE_OF_BIRTH": "dates_of_birth",
}
#: What a person's confirmed records add to their rules. Quasi-identifiers (their city, their
#: birth date) from every record: the guard acts on them only beside the person's own name or
#: identifier. Names and direct identifiers only when linked to the person (``pii.linking``): a
#: record about the subject also holds an agent's name, the shop's switchboard or a neighbour's
#: address, which the person's other records do not repeat.
RECORD_QUASI_TYPES = ("LOCATION", "DATE_OF_BIRTH")
RECORD_LINKED_TYPES = ("PERSON", "EMAIL", "PHONE", "ADDRESS", "ACCOUNT_ID")

_HASH = re.compile(r"[0-9a-f]{64}")
#: Subject references are opaque ids; spaces and "@" are refused so a name or an e-mail address
#: cannot be used as one by mistake.
_SUBJECT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")

_ADDRESS_SEGMENT = re.compile(r"[,;\n]+")
#: Words that begin a unit, not a street: "Flat 3" is no street written number last.
_UNIT_WORDS = frozenset(
    "flat apartment unit suite floor room building house number box po block level".split()
)


@dataclass(frozen=True, slots=True)
class SuppressionRule:
    """One keyed hash the guard suppresses, its entity type and the subject it belongs to."""

    entity_type: EntityType
    value_hash: str
    subject_ref: str

    def __post_init__(self) -> None:
        if type(self.entity_type) is not EntityType:
            try:
                object.__setattr__(self, "entity_type", EntityType(self.entity_type))
            except ValueError:
                raise ValueError(f"unknown entity type {self.entity_type!r}") from None
        if not isinstance(self.value_hash, str) or not _HASH.fullmatch(self.value_hash):
            raise ValueError("rule hash must be 64 lower-case hex characters (HMAC-SHA256)")
        if not isinstance(self.subject_ref, str) or not _SUBJECT_REF.fullmatch(self.subject_ref):
            raise ValueError(
                "subject_ref must be an opaque id of letters, digits and '._:-' (at most 128 "
                "characters), such as an erasure request id; never a name or e-mail address"
            )


def name_forms(name: str) -> set[str]:
    """Return the normalised forms of a name the rules hold: each variant, in order and sorted.

    The index hashes names in order (``value_hash``) and token-sorted (``sorted_hash``); the
    guard hashes the sorted form of each window of text, so one lookup covers every word order.
    Forms with an initial are kept in order (and family name first) instead, because sorting
    them would confuse "Lucas J." with "J. Lucas". Every spelling of the name counts
    (``name_spellings``: "Meyer-Luedenscheidt" for "Meyer-Lüdenscheidt").
    """
    return set().union(*(_spelling_forms(spelling) for spelling in name_spellings(name)))


def _spelling_forms(name: str) -> set[str]:
    tokens = normalise_name(name).split()
    # A particle is no name of its own: "Jacobus van" or "Conferma da" (the NER's reading of an
    # Italian form's "Conferma da ...") is one word, and would act on every Jacobus; "Di Stefano"
    # alone is a family name; "Hoa Le" is two words.
    written = _written_words(name)
    last = len(tokens) - 1
    named = [
        token
        for k, token in enumerate(tokens)
        if not is_name_particle(written.get(token, token), ends_name=k == last)
    ]
    if len(named) < 2:
        raise ValueError("a one-word name would suppress everyone who shares it; give the full name")
    given_tokens, family, full_family = _name_parts(name, tokens, written)
    middles = tokens[len(given_tokens) : len(tokens) - len(family)]
    variants = name_variants(name, all_spellings=False)  # name_forms goes through the spellings
    if len(family) > 1:
        # name_variants reads a hyphenated family name ("Smith-Jones" → "smith jones") as a
        # middle name plus a family name, and would suppress every "William Jones".
        variants = {v for v in variants if _holds_in_order(v.split(), family)}
    initials = [middle[0] for middle in middles]
    # An initial is the given name's own: "S. Hoffmann" is no form of Alexander Hoffmann, though
    # "Sandy" is one of his nicknames (an initial is weak enough without a nickname's letter).
    initial = tokens[0][0]
    for given in nickname_equivalents(tokens[0]):
        variants.update(
            {" ".join([given, *family]), " ".join([initial, *family]), " ".join([*family, given])}
        )
        if middles:
            variants.update(
                {
                    " ".join([given, *middles, *family]),
                    " ".join([given, *initials, *family]),
                    " ".join([initial, *initials, *family]),
                }
            )
        if full_family != family:
            variants.update(
                {
                    " ".join([given, *full_family]),
                    " ".join([initial, *full_family]),
                    " ".join([*full_family, given]),
                }
            )
        # "Lucas Barroso" for "Lucas Barroso Jara": the first of two family names (never a part
        # of a hyphenated given name: "Jean-Pierre" alone is nobody's full name).
        variants.update(
            f"{given} {middle}"
            for middle in middles[len(given_tokens) - 1 :]
            if len(middle) > 1 and not is_particle_spelling(written.get(middle, middle))
        )
        # "Lucia D." for "Lucia De Luca", "Íñigo I." for "Íñigo Ibáñez Ruiz": the given name and
        # the initial of any later word, since which word starts the family name varies.
        variants.update(f"{given} {word[0]}" for word in tokens[len(given_tokens) :])
        if len(given_tokens) > 1 and given == tokens[0]:
            # A hyphenated given name in full: "Marie-Claire L." for "Marie-Claire Le Gall".
            variants.update(" ".join([*given_tokens, word[0]]) for word in tokens[len(given_tokens) :])
        # "G. Núñez Sánchez", "J. van den Broek": the initial and every later word.
        variants.add(" ".join([initial, *tokens[len(given_tokens) :]]))
    variants = {v for v in variants if not set(v.split()) <= set(given_tokens)}
    forms: set[str] = set()
    for variant in variants:
        words = variant.split()
        forms.add(variant)
        if any(len(word) == 1 for word in words):
            # Sorting would make "lucas j" (Lucas J.) equal "j lucas" (J. Lucas, another
            # person): forms with an initial keep their order, plus family name first where
            # it is spelt out ("Jara, L.").
            split = len(words)
            while split > 0 and len(words[split - 1]) > 1:
                split -= 1
            if split < len(words):
                forms.add(" ".join(words[split:] + words[:split]))
        else:
            forms.add(" ".join(sorted(words)))
    return forms


def _name_parts(
    name: str, tokens: list[str], written: dict[str, str]
) -> tuple[list[str], list[str], list[str]]:
    """Return a name's given tokens, family tokens, and family tokens with the particles before them.

    The particles before the family name are part of it ("van der Berg", "Ó Briain", "'t
    Hart"): "Sanne van der Berg" is a form of "Sanne Jan van der Berg".
    """
    family = _family_tokens(name)
    if not family or len(family) >= len(tokens) or tokens[-len(family) :] != family:
        family = tokens[-1:]
    given_tokens = _given_tokens(name, tokens)
    full_family = list(family)
    while len(given_tokens) + len(full_family) < len(tokens) and (
        is_particle_spelling(written.get(tokens[-len(full_family) - 1], ""))
    ):
        full_family.insert(0, tokens[-len(full_family) - 1])
    return given_tokens, family, full_family


def joined_forms(name: str) -> set[str]:
    """Return the forms that meet the name written with a space moved, lost or added after its
    given name (``variants.JOINED_NAME_PREFIX``), and the gate the text's first word must pass.

    For every spelling: the whole name's letters run together, and the given name's with the
    family name's and its particles ("Sanne vander Berg" for Sanne Jan van der Berg).
    """
    forms: set[str] = set()
    for spelling in name_spellings(name):
        tokens = normalise_name(spelling).split()
        if len(tokens) < 2:
            continue
        given_tokens, _family, full_family = _name_parts(spelling, tokens, _written_words(spelling))
        joined = {joined_name_form(tokens), joined_name_form(given_tokens + full_family)} - {None}
        if joined:
            forms |= joined
            # Only a run of words opening with a word of a suppressed name is joined up.
            forms.add(FUZZY_WORD_PREFIX + tokens[0])
    return forms


_HYPHENATED = re.compile(r"[^\W\d_]+(?:[-\u2010\u2011][^\W\d_]+)+")


def _given_tokens(name: str, tokens: list[str]) -> list[str]:
    """Return the normalised tokens of the given name: a hyphenated one ("Jean-Pierre") whole."""
    for word in _HYPHENATED.findall(name):
        try:
            parts = normalise_name(word).split()
        except NormalisationError:
            continue
        if len(parts) < len(tokens) and tokens[: len(parts)] == parts:
            return parts
    return tokens[:1]


def _written_words(name: str) -> dict[str, str]:
    """Return each normalised word of ``name`` with how it is written ("van": "van", "van": "Văn"),
    the first spelling of each: whether a word is a particle depends on its case and accents."""
    written: dict[str, str] = {}
    for word in name.replace(",", " ").split():
        try:
            normalised = normalise_name(word).split()
        except NormalisationError:
            continue
        if len(normalised) == 1:
            written.setdefault(normalised[0], word)
    return written


def _holds_in_order(words: list[str], part: list[str]) -> bool:
    return any(words[i : i + len(part)] == part for i in range(len(words) - len(part) + 1))


def _family_tokens(name: str) -> list[str]:
    """Return the normalised tokens of the family name: the last word, or what precedes a comma."""
    text = name.strip()
    part = text.split(",")[0] if text.count(",") == 1 else text
    words = part.split()
    if not words:
        return []
    try:
        return normalise_name(words[-1]).split()
    except NormalisationError:
        return []


def _address_tokens(address: str) -> tuple[list[str], set[int]]:
    """Return the normalised tokens of ``address`` and the indices where its segments start."""
    tokens: list[str] = []
    starts: set[int] = set()
    for segment in _ADDRESS_SEGMENT.split(address):
        try:
            words = normalise_address(segment).split()
        except NormalisationError:
            continue
        starts.add(len(tokens))
        tokens.extend(words)
    if tokens != normalise_address(address).split():
        return normalise_address(address).split(), {0}
    return tokens, starts


def _town_words(address: str) -> set[str]:
    """Return the words of the segments after an address's house number (town, postcode
    letters, region, country), normalised: what a text must not contradict for a match on the
    street alone to stand."""
    segments = [segment for segment in _ADDRESS_SEGMENT.split(address) if segment.strip()]
    numbered = next(
        (index for index, segment in enumerate(segments) if any(w.isdigit() for w in segment.split())),
        None,
    )
    if numbered is None:
        return set()
    words: set[str] = set()
    for segment in segments[numbered + 1 :]:
        try:
            words.update(word for word in normalise_address(segment).split() if word.isalpha())
        except NormalisationError:
            continue
    return words


def address_forms(address: str) -> set[str]:
    """Return the normalised forms of a postal address the rules hold.

    The whole address; from each house number, the street up to its street word or the end of
    a segment and what follows up to each later segment end ("12 baker street", "12 baker street
    london"); and for addresses written street first ("Beckergasse 8, 1010 Wien"), the segment up
    to the number and up to the next segment end. A house number followed by a single word
    ("12345 wien", a postcode and a city) is never a form on its own: many people share it.
    """
    full = normalise_address(address)
    tokens, starts = _address_tokens(address)
    ends = {start for start in starts if start} | {len(tokens)}
    forms = {full}
    # The house number is in the first segment that holds a number and is not a flat or floor
    # ("Flat 3, 14 Harrow Drive"); a number in a later segment is a postcode ("Vondelstraat 389,
    # 9775 CL Groningen": "9775 cl" is no street, though "cl" abbreviates "close").
    ordered = sorted(starts)
    numbered = [
        start
        for start, stop in zip(ordered, [*ordered[1:], len(tokens)])
        if any(is_house_number(token) for token in tokens[start:stop]) and tokens[start] not in _UNIT_WORDS
    ]
    last_street = ([*ordered[1:], len(tokens)][ordered.index(numbered[0])]) if numbered else len(tokens)
    for index, token in enumerate(tokens):
        if not is_house_number(token) or index >= last_street:
            continue
        if index + 1 < len(tokens) and tokens[index + 1].isalpha():
            for end in range(index + 3, min(len(tokens), index + MAX_ADDRESS_TOKENS) + 1):
                if end in ends or tokens[end - 1] in STREET_WORDS:
                    forms.add(" ".join(tokens[index:end]))
        segment_start = max((start for start in starts if start <= index), default=0)
        if (
            segment_start < index
            and index - segment_start <= 4
            and tokens[segment_start].isalpha()
            and tokens[segment_start] not in _UNIT_WORDS
        ):
            for end in range(index + 1, min(len(tokens), index + 4) + 1):
                if end == index + 1 or end in ends:
                    forms.add(" ".join(tokens[segment_start:end]))
    # A part of the address is a form only where it holds a street, as locating reads one (a
    # house number beside a street word): "dublin 2", "45000 orleans france" or "wi 53707" are
    # a postal district, a postcode and city, a state and ZIP, which thousands share.
    return {form for form in forms if form == full or address_keys(form)}


def _folded_pair(key: str) -> set[str]:
    """Return a name key's two words ("N:anna|muller") as a set, for comparing with forms."""
    return set(key[2:].split("|"))


@lru_cache(maxsize=8)
def _digest_for(hasher: KeyedHasher) -> KeyedDigest:
    return KeyedDigest(hasher)


def _normalised(label: str, values: Sequence[str], normalise) -> Iterable[tuple[int, str]]:
    if isinstance(values, str):
        raise ValueError(f"{label} must be a list of strings, not one string")
    for index, value in enumerate(values):
        try:
            yield index, normalise(value)
        except NormalisationError as error:
            raise ValueError(f"{label}[{index}]: {error}") from None


def rules_from_identifiers(
    *,
    hasher: KeyedHasher,
    subject_ref: str,
    names: Sequence[str] = (),
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    addresses: Sequence[str] = (),
    account_ids: Sequence[str] = (),
    locations: Sequence[str] = (),
    dates_of_birth: Sequence[str] = (),
    default_region: str = "GB",
) -> tuple[SuppressionRule, ...]:
    """Return one subject's rules: the keyed hash of every form of every identifier, no value.

    ``locations`` (city, region) and ``dates_of_birth`` are quasi-identifiers: the guard acts on
    them only beside a name or direct identifier of the same subject. A malformed value raises
    ``ValueError`` naming the list and position, because silently dropping it would leave that
    value unsuppressed.
    """
    digest = _digest_for(hasher)
    pairs: dict[tuple[EntityType, str], None] = {}

    def add(kind: EntityType, normalised: str) -> None:
        pairs[(kind, digest(kind, normalised))] = None

    def add_match_keys(kind: EntityType, value: str) -> int:
        # Locating's detection-free keys of the same value, hashed as the PII index hashes
        # them, so the guard meets every written form locating finds.
        keys = identifier_match_keys(kind, value)
        if kind is EntityType.PERSON:
            # Locating's variant "middle name + family name" is weak evidence there and would
            # act on everyone of a double family name here ("García Márquez" alone): a key
            # made of the name's later words only is left out.
            later = set(normalise_name(value).split()[1:])
            # Which pairs are this person's name is the guard's forms' call ("William Jones"
            # is not "William Smith-Jones"); how text is folded onto a pair (transliteration,
            # a middle name between) is locating's.
            pairs = [set(words) for form in name_forms(value) if len(words := form.split()) == 2]
            # A pair with an initial is left to the guard's in-order windows: locating's keys
            # read "Christopher Cooper. A" as Christopher A. with a middle name between.
            keys = [
                key
                for key in keys
                if not (key.variant and _folded_pair(key.key) <= later)
                and _folded_pair(key.key) in pairs
                and min(len(word) for word in _folded_pair(key.key)) > 1
            ]
        for key in keys:
            add(kind, key.hashed_text())
        return len(keys)

    for index, name in enumerate([names] if isinstance(names, str) else names):
        try:
            forms = name_forms(name)
        except ValueError as error:
            raise ValueError(f"names[{index}]: {error}") from None
        for form in forms | joined_forms(name):
            add(EntityType.PERSON, form)
        add_match_keys(EntityType.PERSON, name)
        # Misspellings are forgiven in the name's two-word forms (given and family name, given
        # and first family name, nickname and family name), never in a one-word part.
        name_pairs = {tuple(form.split()) for form in forms if len(form.split()) == 2}
        for spelling in name_spellings(name):
            family = _family_tokens(spelling)
            if len(family) > 1:
                # A hyphenated family name: its two halves and the given name beside the first,
                # as text steps from word to word ("Geertruida de Jong-Smit",
                # "Meyer-Lüdenscheidt" and "Meyer-Luedenscheidt").
                given_tokens = _given_tokens(spelling, normalise_name(spelling).split())
                name_pairs |= {(given_tokens[-1], family[0]), (family[-2], family[-1])}
        for words in name_pairs:
            if min(map(len, words)) > 1:
                for fuzzy in fuzzy_pair_forms(*words):
                    add(EntityType.PERSON, fuzzy)
    for _, value in _normalised("emails", emails, normalise_email):
        add(EntityType.EMAIL, value)
        add_match_keys(EntityType.EMAIL, value)
        local = local_part_form(value)
        if local is not None:
            add(EntityType.EMAIL, local)
        mailbox = mailbox_form(value)
        if mailbox is not None:
            add(EntityType.EMAIL, mailbox)
        # The name the local part spells, looked up among the text's names: never a match by
        # itself, only beside the same subject's phone ending (the guard's ``find``).
        spelt = spelt_name_form(value)
        if spelt is not None:
            add(EntityType.PERSON, spelt)
    if isinstance(phones, str):
        raise ValueError("phones must be a list of strings, not one string")
    for index, phone in enumerate(phones):
        tail = phone_tail_form(phone)
        if tail is not None:
            add(EntityType.PHONE, tail)
        try:
            add(EntityType.PHONE, normalise_phone(phone, default_region))
        except NormalisationError as error:
            # A number no region calls valid can still be written in records and answers:
            # locating's keys (its national digits) suppress it; only with none is it refused.
            if not add_match_keys(EntityType.PHONE, phone):
                raise ValueError(f"phones[{index}]: {error}") from None
            continue
        add_match_keys(EntityType.PHONE, phone)
    for index, address in enumerate([addresses] if isinstance(addresses, str) else addresses):
        try:
            for form in address_forms(address):
                add(EntityType.ADDRESS, form)
        except NormalisationError as error:
            raise ValueError(f"addresses[{index}]: {error}") from None
        for word in _town_words(address):
            add(EntityType.ADDRESS, TOWN_PREFIX + word)
        # Locating's house number and street word, with the street's type class: meets the
        # street abbreviated in any of locating's languages ("Kalverstr. 17", "C/ Mayor, 13").
        for key in typed_street_identifier_keys(address):
            add(EntityType.ADDRESS, key.hashed_text())
    for _, value in _normalised("account_ids", account_ids, normalise_account_id):
        add(EntityType.ACCOUNT_ID, value)
    for _, value in _normalised("locations", locations, normalise_location):
        add(EntityType.LOCATION, value)
    day_first = default_region.upper() != "US"
    for _, value in _normalised(
        "dates_of_birth", dates_of_birth, lambda v: normalise_date_of_birth(v, day_first=day_first)
    ):
        add(EntityType.DATE_OF_BIRTH, value)
    if not pairs:
        raise ValueError("no identifiers given: a subject's rules need at least one value")
    return tuple(SuppressionRule(kind, value_hash, subject_ref) for kind, value_hash in pairs)


@dataclass(frozen=True)
class RuleSet:
    """The versioned rules a deployment enforces, the id of the key they were hashed under, and
    the policy that says what to do on a match."""

    key_id: str
    version: int
    rules: tuple[SuppressionRule, ...]
    policy: GuardPolicy = field(default_factory=GuardPolicy)

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not self.key_id.strip():
            raise ValueError("key_id must be a non-empty string naming the hashing key")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"rule set version must be an integer >= 1, got {self.version!r}")
        rules = tuple(self.rules)
        if any(type(rule) is not SuppressionRule for rule in rules):
            raise ValueError("rules must be SuppressionRule instances")
        object.__setattr__(self, "rules", rules)
        if not isinstance(self.policy, GuardPolicy):
            raise ValueError(f"policy must be a GuardPolicy, got {type(self.policy).__name__}")

    def subjects(self) -> frozenset[str]:
        """Return the references of the subjects the rules suppress."""
        return frozenset(rule.subject_ref for rule in self.rules)

    def counts(self) -> dict[str, int]:
        """Return the number of rules per entity type (for audit events and reports)."""
        return dict(sorted(Counter(rule.entity_type.value for rule in self.rules).items()))

    def table(self, entity_types: Iterable[EntityType] | None = None) -> dict[str, tuple[str, ...]]:
        """Return hash → subject references for the rules of ``entity_types`` (default: all).

        The tuple of a subject's references is shared by all its hashes, so 100k subjects cost
        one small tuple each, not one per rule.
        """
        wanted = None if entity_types is None else frozenset(entity_types)
        singles: dict[str, tuple[str, ...]] = {}
        shared: dict[str, dict[str, None]] = {}
        table: dict[str, tuple[str, ...]] = {}
        for rule in self.rules:
            if wanted is not None and rule.entity_type not in wanted:
                continue
            value_hash, ref = rule.value_hash, rule.subject_ref
            current = table.get(value_hash)
            if current is None:
                single = singles.get(ref)
                if single is None:
                    single = singles[ref] = (ref,)
                table[value_hash] = single
            elif value_hash in shared:
                shared[value_hash][ref] = None
            elif current[0] != ref:
                # A value many subjects share (a city): collect its subjects in a dict, since
                # growing a tuple one subject at a time would be quadratic.
                shared[value_hash] = {current[0]: None, ref: None}
        for value_hash, refs in shared.items():
            table[value_hash] = tuple(refs)
        return table

    def fingerprint(self) -> str:
        """Return a SHA-256 of the rules, version, key id and policy, for audit events."""
        payload = _payload(self, key_check_value=None)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def key_check(hasher: KeyedHasher) -> str:
    """Return a value that proves which key hashed the rules without revealing the key.

    It is the HMAC of a fixed message under the key, so an importer holding the right key
    recomputes it, and a wrong key fails with a clear error instead of matching nothing.
    """
    return hmac.new(bytes(hasher.key), _KEY_CHECK_MESSAGE, hashlib.sha256).hexdigest()


def _payload(rule_set: RuleSet, *, key_check_value: str | None) -> dict[str, Any]:
    ordered = sorted(
        rule_set.rules, key=lambda rule: (rule.subject_ref, rule.entity_type.value, rule.value_hash)
    )
    payload: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "key_id": rule_set.key_id,
        "hash": _HASH_DESCRIPTION,
        "rule_set_version": rule_set.version,
        "policy": rule_set.policy.as_dict(),
        "rules": [
            {"type": rule.entity_type.value, "hash": rule.value_hash, "subject": rule.subject_ref}
            for rule in ordered
        ],
    }
    if key_check_value is not None:
        payload["key_check"] = key_check_value
    return payload


def rule_set_as_dict(rule_set: RuleSet, *, hasher: KeyedHasher) -> dict[str, Any]:
    """Return the rule set as the JSON-ready export document (see ``docs/guard.md``)."""
    if hasher.key_id != rule_set.key_id:
        raise ValueError(f"the rules were hashed under key {rule_set.key_id!r}, not {hasher.key_id!r}")
    return _payload(rule_set, key_check_value=key_check(hasher))


def export_rules(rule_set: RuleSet, *, hasher: KeyedHasher) -> str:
    """Return the rule set as JSON text for another serving stack: hashes, types, key id."""
    return json.dumps(rule_set_as_dict(rule_set, hasher=hasher), ensure_ascii=False, indent=1)


def load_rules(data: str | bytes | Mapping[str, Any], *, hasher: KeyedHasher | None = None) -> RuleSet:
    """Return the rule set an export holds; raise ``ValueError`` saying what is wrong with it.

    With ``hasher``, also check that it is the key the rules were hashed under (key id and key
    check), since rules under another key would match nothing.
    """
    if isinstance(data, (str, bytes, bytearray)):
        try:
            document = json.loads(data)
        except json.JSONDecodeError as error:
            raise ValueError(f"guard rules are not valid JSON: {error}") from None
    else:
        document = data
    if not isinstance(document, Mapping):
        raise ValueError("guard rules must be a JSON object")
    if document.get("format") != EXPORT_FORMAT:
        raise ValueError(f"not a guard rule export: 'format' must be {EXPORT_FORMAT!r}")
    if document.get("version") != EXPORT_VERSION:
        raise ValueError(
            f"unsupported guard rule export version {document.get('version')!r}; "
            f"this Lethe reads version {EXPORT_VERSION}"
        )
    for key in ("key_id", "rules", "policy"):
        if key not in document:
            raise ValueError(f"guard rule export lacks {key!r}")
    key_id = document["key_id"]
    if hasher is not None:
        if hasher.key_id != key_id:
            raise ValueError(f"the rules were hashed under key {key_id!r}, not {hasher.key_id!r}")
        if "key_check" in document and not hmac.compare_digest(str(document["key_check"]), key_check(hasher)):
            raise ValueError(f"the key given is not the key {key_id!r} the rules were hashed under")
    raw_rules = document["rules"]
    if not isinstance(raw_rules, list):
        raise ValueError("'rules' must be a list")
    rules = []
    for index, raw in enumerate(raw_rules):
        if not isinstance(raw, Mapping) or set(raw) != {"type", "hash", "subject"}:
            raise ValueError(f"rules[{index}] must be an object with 'type', 'hash' and 'subject'")
        try:
            rules.append(SuppressionRule(raw["type"], raw["hash"], raw["subject"]))
        except ValueError as error:
            raise ValueError(f"rules[{index}]: {error}") from None
    try:
        policy = GuardPolicy.from_dict(document["policy"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"policy: {error}") from None
    return RuleSet(
        key_id=key_id,
        version=document.get("rule_set_version", 1),
        rules=tuple(rules),
        policy=policy,
    )
