"""Property tests of normalisation: on any text a normaliser either answers or says why, and its
answer is a fixed point, so the index, a request and the guard hash one person's value alike.

Hypothesis draws arbitrary Unicode (control characters, NUL, combining marks, other scripts) and
text shaped like each kind of identifier. A normaliser that raised anything but
``NormalisationError`` would crash a whole scan chunk; one that was not idempotent would hash
a value differently depending on how often it had been folded.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from unlearning_jobs.engine.pii.normalise import (
    NormalisationError,
    name_variants,
    normalise_account_id,
    normalise_address,
    normalise_date_of_birth,
    normalise_email,
    normalise_location,
    normalise_name,
    normalise_phone,
)

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

#: Any text at all, including surrogate-free control characters and NUL.
ANY_TEXT = st.text(max_size=80)
#: Text built from the pieces identifiers are made of, so the interesting branches are reached.
PIECES = st.sampled_from(
    [
        "John",
        "Smith",
        "O'Brien",
        "Jean-Luc",
        "María",
        "Ødegård",
        "Mr",
        "Dr",
        "Jr",
        "PhD",
        ",",
        " ",
        "'s",
        "@",
        ".",
        "example",
        "com",
        "mailto:",
        "<",
        ">",
        ")",
        "+44",
        "020",
        "7946",
        "0958",
        "(0)",
        "-",
        "12",
        "Baker",
        "St",
        "Rd",
        "ACC",
        "123-456",
        "#",
        "/",
        "\t",
        "\x00",
        "\u200b",
        "\u0301",
        "ß",
        "İ",
        "ﬁ",
        "Ǆ",
        "ᏸ",
        "١٢",
        "²",
    ]
)
SHAPED_TEXT = st.lists(PIECES, max_size=8).map("".join)
TEXT = st.one_of(ANY_TEXT, SHAPED_TEXT)

NORMALISERS = {
    "name": normalise_name,
    "email": normalise_email,
    "phone": lambda value: normalise_phone(value, "GB"),
    "address": normalise_address,
    "account_id": normalise_account_id,
    "date_of_birth": normalise_date_of_birth,
    "location": normalise_location,
}


@pytest.mark.parametrize("kind", sorted(NORMALISERS))
@PROPERTY_SETTINGS
@given(value=TEXT)
def test_a_normaliser_answers_or_raises_normalisation_error_on_any_text(kind, value):
    normalise = NORMALISERS[kind]
    try:
        folded = normalise(value)
    except NormalisationError as error:
        assert str(error), "a refusal says what was wrong"
        return
    assert isinstance(folded, str) and folded == folded.strip() and folded


@pytest.mark.parametrize("kind", sorted(NORMALISERS))
@PROPERTY_SETTINGS
@given(value=TEXT)
@example(value="mailto:mailto:a@b.co")
@example(value="<mailto:a@b.co>")
def test_a_normalised_value_is_a_fixed_point(kind, value):
    normalise = NORMALISERS[kind]
    try:
        folded = normalise(value)
    except NormalisationError:
        return
    assert normalise(folded) == folded


@PROPERTY_SETTINGS
@given(value=TEXT)
def test_a_normalised_value_holds_no_control_character(value):
    """NUL and other control characters never reach a hash or the database from a name or address."""
    for normalise in (
        normalise_name,
        normalise_address,
        normalise_location,
        normalise_email,
        normalise_account_id,
    ):
        try:
            folded = normalise(value)
        except NormalisationError:
            continue
        assert not any(ord(char) < 32 or ord(char) == 127 for char in folded), (normalise.__name__, folded)


@PROPERTY_SETTINGS
@given(value=TEXT)
def test_every_name_variant_is_a_fixed_point_of_the_name_normaliser(value):
    try:
        variants = name_variants(value)
    except NormalisationError:
        return
    assert normalise_name(value) in variants
    for variant in variants:
        assert normalise_name(variant) == variant
