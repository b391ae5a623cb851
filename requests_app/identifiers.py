"""A data subject's identifiers: validation, encryption at rest, keyed hashes, masking.

Normalisation and hashing are the PII engine's (``unlearning_jobs.engine.pii``), so a request's
hashes are byte for byte those of the training-data index. Raw values exist only inside the
Fernet token and in memory; nothing here logs them, and error messages name an identifier by
its position, never by its value.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ValidationError

from compliance.text import control_character_found
from unlearning_jobs.engine.pii.hashing import DIRECT_IDENTIFIERS, EntityType, KeyedHasher
from unlearning_jobs.engine.pii.match_keys import identifier_match_keys
from unlearning_jobs.engine.pii.normalise import (
    NormalisationError,
    name_variants,
    normalise_account_id,
    normalise_address,
    normalise_email,
    normalise_name,
    normalise_phone,
)

# Which entity type each list of the subject holds, in the order forms and pages show them.
IDENTIFIER_ENTITY_TYPES: dict[str, EntityType] = {
    "names": EntityType.PERSON,
    "emails": EntityType.EMAIL,
    "phones": EntityType.PHONE,
    "addresses": EntityType.ADDRESS,
    "account_ids": EntityType.ACCOUNT_ID,
}
IDENTIFIER_LABELS: dict[str, tuple[str, str]] = {
    "names": ("Name", "Names and aliases"),
    "emails": ("E-mail", "E-mail addresses"),
    "phones": ("Phone number", "Phone numbers"),
    "addresses": ("Address", "Postal addresses"),
    "account_ids": ("Account id", "Account ids"),
}
# Longest accepted value per list (RFC 5321 bounds an address to 254 characters).
IDENTIFIER_MAX_LENGTHS: dict[str, int] = {
    "names": 200,
    "emails": 254,
    "phones": 40,
    "addresses": 500,
    "account_ids": 100,
}
MAX_IDENTIFIERS_PER_LIST = 20

# Identifier types that single out one person (the engine's direct identifiers), so a shared one
# makes two requests duplicates. A shared name alone does not: two different people are often
# called John Smith.
DUPLICATE_EVIDENCE_TYPES = DIRECT_IDENTIFIERS


def identified_by_names_only(entity_types) -> bool:
    """Return whether identifiers of these entity types are names alone (no direct identifier).

    A name cannot tell the person from a namesake: locating proposes every record with the name
    for review, and an output suppression acts on every namesake's text. The request page, the
    API and the signed report say so.
    """
    kinds = {str(kind) for kind in entity_types}
    return EntityType.PERSON.value in kinds and not kinds & {t.value for t in DUPLICATE_EVIDENCE_TYPES}


class IdentifierDecryptionError(RuntimeError):
    """The stored identifiers cannot be decrypted with any configured key."""


@dataclass(frozen=True)
class SubjectIdentifiers:
    """What identifies the data subject, as they or the officer wrote it (stripped)."""

    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    account_ids: tuple[str, ...] = ()

    @classmethod
    def from_lists(cls, **lists) -> "SubjectIdentifiers":
        """Build from lists of strings, one keyword per list name; unknown keywords are refused."""
        unknown = set(lists) - set(IDENTIFIER_ENTITY_TYPES)
        if unknown:
            raise TypeError(f"unknown identifier lists: {sorted(unknown)}")
        return cls(**{name: tuple(values or ()) for name, values in lists.items()})

    def as_lists(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in asdict(self).items()}

    def counts(self) -> dict[str, int]:
        """Return how many identifiers of each kind there are: safe for logs and audit details."""
        return {name: len(values) for name, values in asdict(self).items()}

    def total(self) -> int:
        return sum(self.counts().values())


@dataclass(frozen=True)
class IdentifierHash:
    entity_type: EntityType
    digest: str
    is_variant: bool = False


@dataclass
class CleanedIdentifiers:
    """Identifiers after validation, with the normalised form of each (same order)."""

    subject: SubjectIdentifiers
    normalised: dict[str, list[str]] = field(default_factory=dict)


#: Prefix of a phone kept as given: it validates in no region Lethe knows of (a warning, not a refusal).
PHONE_AS_GIVEN_PREFIX = "digits:"


def phone_as_given(value: str, *, phone_region: str) -> str:
    """Return a phone number in E.164 when it validates, else ``digits:<its digits>`` as given.

    A person gives their number as they know it; a number from a country or a numbering plan
    that ``phonenumbers`` does not validate is still theirs and is located by its digits (match
    keys), so it is recorded with a warning instead of refused. Fewer than 7 or more than 17
    digits is not a phone number.
    """
    regions = [phone_region, *(r for r in settings.LETHE_PHONE_REGIONS if r != phone_region)]
    readings = []
    for region in regions:
        try:
            readings.append(normalise_phone(value, region))
        except NormalisationError:
            continue
    # Valid in the organisation's region: that reading (written without a country code, a number
    # is valid in several plans: "030 1234567" in five of the default regions). Else the one
    # region it is valid in; else none is guessed and it is kept as given. Locating does not
    # depend on the guess: match keys search the digits in every form.
    if readings and (readings[0] == _e164_or_none(value, phone_region) or len(set(readings)) == 1):
        return readings[0]
    digits = "".join(char for char in value if char.isdigit())
    if not 7 <= len(digits) <= 17:
        raise NormalisationError("a phone number has 7 to 17 digits")
    return PHONE_AS_GIVEN_PREFIX + ("+" if value.strip().startswith(("+", "00")) else "") + digits


def _e164_or_none(value: str, region: str) -> str | None:
    try:
        return normalise_phone(value, region)
    except NormalisationError:
        return None


def identifier_warnings(cleaned: "CleanedIdentifiers") -> list[str]:
    """Return what the officer should know about accepted identifiers (never their values)."""
    return [
        f"Phone number {position} is valid in none, or in more than one, of "
        f"{', '.join(settings.LETHE_PHONE_REGIONS)} without a country code; it is kept as given and "
        "searched by its digits in every form."
        for position, folded in enumerate(cleaned.normalised.get("phones", []), start=1)
        if folded.startswith(PHONE_AS_GIVEN_PREFIX)
    ]


def _normalise_one(list_name: str, value: str, *, phone_region: str) -> str:
    if list_name == "names":
        return normalise_name(value)
    if list_name == "emails":
        return normalise_email(value)
    if list_name == "phones":
        return phone_as_given(value, phone_region=phone_region)
    if list_name == "addresses":
        return normalise_address(value)
    return normalise_account_id(value)


def subject_identifiers_clean(subject: SubjectIdentifiers, *, phone_region: str) -> CleanedIdentifiers:
    """Return the identifiers stripped, validated, normalised and de-duplicated.

    Raise ``ValidationError`` with one message list per identifier list ("emails": [...]) naming
    each bad value by position, and under "subject" when there is no identifier at all.
    """
    errors: dict[str, list[str]] = {}
    kept: dict[str, list[str]] = {}
    normalised: dict[str, list[str]] = {}
    for list_name in IDENTIFIER_ENTITY_TYPES:
        singular, plural = IDENTIFIER_LABELS[list_name]
        values = getattr(subject, list_name)
        max_length = IDENTIFIER_MAX_LENGTHS[list_name]
        kept[list_name], normalised[list_name] = [], []
        if len(values) > MAX_IDENTIFIERS_PER_LIST:
            errors.setdefault(list_name, []).append(
                f"{plural}: at most {MAX_IDENTIFIERS_PER_LIST} are accepted, {len(values)} were given."
            )
            continue
        for position, raw in enumerate(values, start=1):
            if not isinstance(raw, str):
                errors.setdefault(list_name, []).append(f"{singular} {position} is not text.")
                continue
            value = raw.strip()
            if not value:
                errors.setdefault(list_name, []).append(f"{singular} {position} is empty.")
                continue
            if control_character_found(value):
                errors.setdefault(list_name, []).append(
                    f"{singular} {position} holds a control character; remove it."
                )
                continue
            if len(value) > max_length:
                errors.setdefault(list_name, []).append(
                    f"{singular} {position} is {len(value)} characters long; at most {max_length} "
                    "are accepted."
                )
                continue
            try:
                folded = _normalise_one(list_name, value, phone_region=phone_region)
            except NormalisationError as error:
                errors.setdefault(list_name, []).append(f"{singular} {position}: {error}.")
                continue
            if folded in normalised[list_name]:
                continue
            kept[list_name].append(value)
            normalised[list_name].append(folded)
    if not errors and not any(kept.values()):
        errors["subject"] = [
            "Give at least one identifier of the person: a name, e-mail address, phone number, "
            "postal address or account id."
        ]
    if errors:
        raise ValidationError(errors)
    return CleanedIdentifiers(subject=SubjectIdentifiers.from_lists(**kept), normalised=normalised)


def pii_hasher() -> KeyedHasher:
    """Return the server's keyed hasher: the one the training-data index uses too."""
    return KeyedHasher(key=settings.LETHE_PII_HASH_KEY, key_id=settings.LETHE_PII_HASH_KEY_ID)


def identifier_hashes(cleaned: CleanedIdentifiers, *, hasher: KeyedHasher) -> list[IdentifierHash]:
    """Return the keyed hash of every normalised identifier, plus every variant of each name."""
    hashes: dict[tuple[EntityType, str], IdentifierHash] = {}
    for list_name, entity_type in IDENTIFIER_ENTITY_TYPES.items():
        for folded in cleaned.normalised.get(list_name, []):
            digest = hasher.hash(entity_type, folded)
            hashes[(entity_type, digest)] = IdentifierHash(entity_type, digest, is_variant=False)
    for name in cleaned.subject.names:
        for variant in sorted(name_variants(name)):
            digest = hasher.hash(EntityType.PERSON, variant)
            hashes.setdefault(
                (EntityType.PERSON, digest), IdentifierHash(EntityType.PERSON, digest, is_variant=True)
            )
    # Match keys: the same identifiers as the detection-free keys the index holds for every record.
    # Variants all: a key is a form of the identifier (a street and house number, a name pair),
    # not the identifier itself, so it never makes two requests duplicates nor a name "exact".
    for list_name, entity_type in IDENTIFIER_ENTITY_TYPES.items():
        for value in getattr(cleaned.subject, list_name):
            for key in identifier_match_keys(entity_type, value, account_prefixes=_account_prefixes()):
                digest = hasher.hash(entity_type, key.hashed_text())
                hashes.setdefault((entity_type, digest), IdentifierHash(entity_type, digest, is_variant=True))
    return list(hashes.values())


def _account_prefixes():
    prefixes = settings.LETHE_ACCOUNT_ID_PREFIXES
    return dict(prefixes) if prefixes else None


def search_term_hashes(term: str, *, hasher: KeyedHasher, phone_region: str) -> list[IdentifierHash]:
    """Return the hashes ``term`` would have as any kind of identifier it can be read as.

    A search box does not say what was typed, so the term is tried as an e-mail, a phone
    number, an account id, an address and a name; forms it cannot take are skipped.
    """
    candidates: list[IdentifierHash] = []
    for list_name, entity_type in IDENTIFIER_ENTITY_TYPES.items():
        try:
            folded = _normalise_one(list_name, term, phone_region=phone_region)
        except NormalisationError:
            continue
        candidates.append(IdentifierHash(entity_type, hasher.hash(entity_type, folded)))
        for key in identifier_match_keys(entity_type, term, account_prefixes=_account_prefixes()):
            candidates.append(
                IdentifierHash(entity_type, hasher.hash(entity_type, key.hashed_text()), is_variant=True)
            )
    return candidates


# --- encryption at rest ------------------------------------------------------------------------


def identifier_cipher() -> MultiFernet:
    """Return the cipher for identifiers: the first configured key encrypts, every key decrypts."""
    return MultiFernet([Fernet(key) for key in settings.LETHE_IDENTIFIER_KEYS])


def identifiers_encrypt(subject: SubjectIdentifiers) -> str:
    """Return ``subject`` as one Fernet token (authenticated encryption of its JSON)."""
    plaintext = json.dumps(subject.as_lists(), ensure_ascii=False, sort_keys=True).encode("utf-8")
    return identifier_cipher().encrypt(plaintext).decode("ascii")


def identifiers_decrypt(token: str) -> SubjectIdentifiers:
    """Return the identifiers in ``token``; raise ``IdentifierDecryptionError`` if no key opens it."""
    try:
        plaintext = identifier_cipher().decrypt(token.encode("ascii"))
    except InvalidToken:
        raise IdentifierDecryptionError(
            "The identifiers cannot be decrypted with any key in LETHE_IDENTIFIER_KEYS: was a key "
            "removed before rotate_identifier_keys re-encrypted every request?"
        ) from None
    return SubjectIdentifiers.from_lists(**json.loads(plaintext))


def identifiers_reencrypt(token: str) -> str:
    """Return ``token`` re-encrypted under the first key (what key rotation does to each row)."""
    try:
        return identifier_cipher().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise IdentifierDecryptionError(
            "A request's identifiers cannot be decrypted with any configured key; rotation stopped."
        ) from None


# --- masking -------------------------------------------------------------------------------------


def _mask_word(word: str) -> str:
    return word[:1] + "*" * (len(word) - 1)


def mask_name(value: str) -> str:
    """Return "J*** S****" for "John Smith": the initials and the length of each word."""
    return " ".join(_mask_word(word) for word in value.split())


def mask_email(value: str) -> str:
    """Return "j***@example.com": the first letter of the local part and the domain."""
    local, _, domain = value.strip().rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(value: str, *, phone_region: str) -> str:
    """Return "+44 **** ***456": the country code and the last three digits."""
    try:
        e164 = normalise_phone(value, phone_region)
    except NormalisationError:
        # Not a valid number: show its last digits only when they are a small part of it.
        digits = "".join(char for char in value if char.isdigit())
        return f"**** ***{digits[-3:] if len(digits) >= 7 else '***'}"
    country_code = phonenumbers.parse(e164).country_code
    return f"+{country_code} **** ***{e164[-3:]}"


def mask_address(value: str) -> str:
    """Return the address with every word cut to its first character ("1* B**** S*****")."""
    return " ".join(_mask_word(word) for word in value.replace(",", " ").split())


def mask_account_id(value: str) -> str:
    """Return the account id with all but its last three characters hidden ("*******812").

    A short id shows at most half of its characters: "ABC" would otherwise be shown whole.
    """
    stripped = value.strip()
    shown = min(3, len(stripped) // 2)
    return "*" * max(len(stripped) - shown, 3) + (stripped[-shown:] if shown else "")


def subject_identifiers_masked(subject: SubjectIdentifiers, *, phone_region: str) -> dict[str, list[str]]:
    """Return every identifier masked, list by list, for pages and API answers."""
    return {
        "names": [mask_name(value) for value in subject.names],
        "emails": [mask_email(value) for value in subject.emails],
        "phones": [mask_phone(value, phone_region=phone_region) for value in subject.phones],
        "addresses": [mask_address(value) for value in subject.addresses],
        "account_ids": [mask_account_id(value) for value in subject.account_ids],
    }
