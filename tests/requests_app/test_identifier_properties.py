"""Property tests of a subject's identifiers: cleaning, keyed hashes, masking, encryption.

Whatever text an officer or an API client sends as identifiers, cleaning either accepts it or
answers a ``ValidationError`` that names each bad value by its position, never by its value;
what leaves the module (hashes, masks, ciphertext) never carries the raw value.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from requests_app.identifiers import (
    IDENTIFIER_ENTITY_TYPES,
    SubjectIdentifiers,
    identifier_hashes,
    identifiers_decrypt,
    identifiers_encrypt,
    mask_account_id,
    mask_address,
    mask_email,
    mask_name,
    mask_phone,
    pii_hasher,
    search_term_hashes,
    subject_identifiers_clean,
)

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
#: Marks a drawn value so that it can be looked for in messages without matching their own words.
MARKER = "\u2042"

IDENTIFIER_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "John Smith",
            "María García-López",
            "john.smith@example.com",
            "mailto:<a@b.co>",
            "020 7946 0958",
            "+34 612 345 678",
            "12 Baker St, London",
            "ACC-123456",
            "A1",
            "<script>alert(1)</script>",
            "'; DROP TABLE requests_app_erasurerequest; --",
            "../../etc/passwd",
            "a\x00b",
            "\u202eevil",
            " ",
            "",
        ]
    ),
)
SUBJECT = st.fixed_dictionaries(
    {name: st.lists(IDENTIFIER_TEXT, max_size=3) for name in IDENTIFIER_ENTITY_TYPES}
)


def _clean(lists: dict):
    return subject_identifiers_clean(SubjectIdentifiers.from_lists(**lists), phone_region="GB")


@PROPERTY_SETTINGS
@given(lists=SUBJECT)
def test_cleaning_any_identifiers_accepts_them_or_says_which_position_is_wrong(lists):
    try:
        cleaned = _clean(lists)
    except ValidationError as error:
        assert set(error.message_dict) <= {*IDENTIFIER_ENTITY_TYPES, "subject"}
        assert all(messages for messages in error.message_dict.values())
        return
    assert cleaned.subject.total() >= 1
    for name, values in cleaned.subject.as_lists().items():
        assert len(values) == len(cleaned.normalised[name]) == len(set(cleaned.normalised[name]))
        assert all(value == value.strip() and value for value in values)


@PROPERTY_SETTINGS
@given(
    lists=st.fixed_dictionaries(
        {
            name: st.lists(st.text(max_size=30).map(lambda text: f"{MARKER}{text}{MARKER}"), max_size=2)
            for name in IDENTIFIER_ENTITY_TYPES
        }
    )
)
def test_an_error_message_never_quotes_the_value(lists):
    try:
        _clean(lists)
    except ValidationError as error:
        for messages in error.message_dict.values():
            assert not any(MARKER in message for message in messages), messages


@PROPERTY_SETTINGS
@given(lists=SUBJECT)
@example(
    lists={
        "names": [],
        "emails": ["deadbeef@example.com"],
        "phones": [],
        "addresses": [],
        "account_ids": ["CAFE-F00D-1234"],
    }
)
def test_keyed_hashes_are_fixed_length_hex_and_hold_no_identifier(lists):
    try:
        cleaned = _clean(lists)
    except ValidationError:
        return
    hashes = identifier_hashes(cleaned, hasher=pii_hasher())
    assert hashes == identifier_hashes(cleaned, hasher=pii_hasher()), "hashing is deterministic"
    raw_values = [value for values in cleaned.subject.as_lists().values() for value in values]
    folded_values = [value for values in cleaned.normalised.values() for value in values]
    for identifier_hash in hashes:
        assert HEX_DIGEST.match(identifier_hash.digest)
        for value in raw_values + folded_values:
            # A digest is hex: it can hold a value only if the value is hex itself.
            assert value.casefold() not in identifier_hash.digest or re.fullmatch(
                r"[0-9a-f]*", value.casefold()
            )


@PROPERTY_SETTINGS
@given(term=IDENTIFIER_TEXT)
def test_a_search_term_never_raises_and_gives_only_keyed_hashes(term):
    for candidate in search_term_hashes(term, hasher=pii_hasher(), phone_region="GB"):
        assert HEX_DIGEST.match(candidate.digest)


@PROPERTY_SETTINGS
@given(value=IDENTIFIER_TEXT)
def test_masking_never_raises_and_never_shows_a_whole_valid_identifier(value):
    masks = {
        "names": mask_name(value),
        "emails": mask_email(value),
        "phones": mask_phone(value, phone_region="GB"),
        "addresses": mask_address(value),
        "account_ids": mask_account_id(value),
    }
    stripped = value.strip()
    if all(len(word) < 2 for word in stripped.replace(",", " ").split()):
        return  # nothing but initials, which a mask shows by design
    for kind, masked in masks.items():
        try:
            _clean({**{name: [] for name in IDENTIFIER_ENTITY_TYPES}, kind: [value]})
        except ValidationError:
            continue
        assert stripped not in masked, (kind, masked)


@PROPERTY_SETTINGS
@given(account_id=st.text(alphabet="ABCDEFGHIJ0123456789-", min_size=3, max_size=24))
def test_a_masked_account_id_shows_at_most_half_of_its_characters(account_id):
    visible = [char for char in mask_account_id(account_id) if char != "*"]
    assert len(visible) <= len(account_id.strip()) // 2


@PROPERTY_SETTINGS
@given(
    lists=st.fixed_dictionaries(
        {name: st.lists(st.text(max_size=40), max_size=3) for name in IDENTIFIER_ENTITY_TYPES}
    )
)
def test_encryption_round_trips_any_text_and_the_token_holds_none_of_it(lists):
    subject = SubjectIdentifiers.from_lists(**lists)
    token = identifiers_encrypt(subject)
    assert identifiers_decrypt(token) == subject
    for values in lists.values():
        for value in values:
            assert len(value) < 4 or value not in token
