"""Normalisation: the same person's value must fold to the same string however it is written."""

from __future__ import annotations

import pytest

from unlearning_jobs.engine.pii.normalise import (
    NormalisationError,
    name_spellings,
    name_token_sorted,
    name_variants,
    nickname_equivalents,
    nickname_table,
    normalise_account_id,
    normalise_address,
    normalise_date_of_birth,
    normalise_email,
    normalise_location,
    normalise_name,
    normalise_phone,
    normalise_value,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 20 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("(020) 7946-0958", "GB", "+442079460958"),
        ("0044 20 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", "US", "+442079460958"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("+1 415 555 2671", "GB", "+14155552671"),
        ("07911 123456", "GB", "+447911123456"),
    ],
)
def test_phone_numbers_in_any_format_normalise_to_e164(raw, region, expected):
    assert normalise_phone(raw, region) == expected


def test_phone_default_region_is_gb():
    assert normalise_phone("020 7946 0958") == "+442079460958"


@pytest.mark.parametrize("raw", ["12345", "not a phone", "020 7946 0958 0958 0958", ""])
def test_invalid_phone_numbers_are_refused(raw):
    with pytest.raises(NormalisationError):
        normalise_phone(raw, "GB")


def test_national_number_without_country_code_depends_on_region():
    with pytest.raises(ValueError, match="not a valid number"):
        normalise_phone("(415) 555-2671", "GB")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John.Smith@Example.COM", "john.smith@example.com"),
        ("  john.smith@example.com  ", "john.smith@example.com"),
        ("<John.Smith@example.com>", "john.smith@example.com"),
        ("mailto:John@Example.org", "john@example.org"),
        ("john@example.co.uk.", "john@example.co.uk"),
    ],
)
def test_emails_are_stripped_and_case_folded(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "john.smith",
        "john@",
        "@example.com",
        "a@b@example.com",
        "john@example",
        "jo hn@example.com",
        "john@example..com",
    ],
)
def test_malformed_emails_raise_a_clear_value_error(raw):
    with pytest.raises(ValueError, match="e-mail address is malformed"):
        normalise_email(raw)


def test_names_are_case_and_accent_folded():
    assert normalise_name("José Müller") == normalise_name("jose muller") == "jose muller"
    assert normalise_name("  ZOË   Ørsted ") == "zoe orsted"
    assert normalise_name("Łukasz Gößmann") == "lukasz gossmann"


def test_family_name_first_with_comma_is_reordered():
    assert normalise_name("Smith, John") == "john smith"
    assert normalise_name("Smith, John A.") == "john a smith"


def test_titles_suffixes_punctuation_and_possessives_are_dropped():
    assert normalise_name("Dr. John Smith") == "john smith"
    assert normalise_name("John Smith, Jr.") == "john smith"
    assert normalise_name("Seán O'Brien") == "sean obrien"
    assert normalise_name("Jean-Luc Picard") == "jean luc picard"
    assert normalise_name("Jaime Vasquez's") == "jaime vasquez"


def test_name_of_only_punctuation_is_refused():
    with pytest.raises(NormalisationError, match="no letters"):
        normalise_name("--- !!")


def test_token_sorted_name_ignores_order():
    assert name_token_sorted("John Smith") == name_token_sorted("Smith John") == "john smith"
    assert name_token_sorted("Smith, John") == "john smith"


def test_name_variants_include_initials_order_and_missing_middle_names():
    variants = name_variants("John Adam Smith")
    for expected in (
        "john adam smith",
        "adam john smith",
        "j smith",
        "john s",
        "john smith",
        "smith john",
        "j a smith",
        "john a smith",
    ):
        assert expected in variants


def test_initials_are_the_given_names_own_never_a_nicknames():
    # Sandy, Lex and Xander are Alexander's nicknames; "S. Hoffmann" is somebody else.
    variants = name_variants("Alexander Hoffmann")
    assert {"a hoffmann", "sandy hoffmann", "alex hoffmann"} <= variants
    assert not {"s hoffmann", "l hoffmann", "x hoffmann"} & variants


def test_nicknames_are_variants_both_ways():
    assert "bill smith" in name_variants("William Smith")
    assert "william smith" in name_variants("Bill Smith")
    assert "liz taylor" in name_variants("Elizabeth Taylor")
    assert "bob jones" in name_variants("Robert Jones")


def test_every_variant_is_already_normalised():
    for variant in name_variants("José María Smith-Jones"):
        assert normalise_name(variant) == variant


def test_nickname_table_is_shipped_and_large():
    table = nickname_table()
    assert len(table) >= 300
    assert {"bill", "william", "will", "liam"} <= nickname_equivalents("Bill")
    assert nickname_equivalents("Xyzzy") == {"xyzzy"}


def test_nickname_table_knows_continental_and_irish_forms_but_no_english_word():
    assert {"paco", "curro", "francisco"} <= nickname_equivalents("Paco")
    assert {"beppe", "giuseppe"} <= nickname_equivalents("Giuseppe")
    assert {"franzi", "franziska"} <= nickname_equivalents("Franziska")
    assert {"brid", "bridget"} <= nickname_equivalents("Bríd")
    assert {"kasia", "katarzyna"} <= nickname_equivalents("Katarzyna")
    assert {"alex", "alexandre"} <= nickname_equivalents("Alexandre")
    assert {"luca", "gianluca"} <= nickname_equivalents("Gianluca")
    assert {"jan", "hans", "johannes"} <= nickname_equivalents("Johannes")
    # Dutch "Joke" (Johanna) and "Lies" (Elisabeth), Italian "Ale" and "Vale" are English words:
    # a text saying "joke" or "ale" beside a family name must not become a form of the name.
    assert not {"joke", "lies", "memo", "vale", "ale"} & set(nickname_table())


def test_addresses_fold_case_punctuation_and_abbreviations():
    assert normalise_address("12 Baker St., London") == normalise_address("12 baker street london")
    assert normalise_address("5 Kings Rd") == "5 kings road"
    assert normalise_address("1600 Pennsylvania Ave NW") == "1600 pennsylvania avenue northwest"


def test_account_ids_drop_separators_and_case():
    assert normalise_account_id("acc-123 456") == normalise_account_id("ACC123456") == "ACC123456"
    with pytest.raises(NormalisationError):
        normalise_account_id("a!")


@pytest.mark.parametrize(
    "raw",
    [
        "1985-03-12",
        "12/03/1985",
        "12 March 1985",
        "12th of March, 1985",
        "March 12, 1985",
        "the 12th of March in the year 1985",
    ],
)
def test_dates_of_birth_normalise_to_iso(raw):
    assert normalise_date_of_birth(raw) == "1985-03-12"


def test_date_order_follows_day_first():
    assert normalise_date_of_birth("03/04/1985", day_first=False) == "1985-03-04"
    with pytest.raises(NormalisationError, match="does not exist"):
        normalise_date_of_birth("31/02/1985")


def test_locations_fold_like_names():
    assert normalise_location("São Paulo") == "sao paulo"
    assert normalise_location("the United States") == "united states"


def test_normalise_value_dispatches_by_entity_type():
    assert normalise_value("EMAIL", "A@B.example") == "a@b.example"
    assert normalise_value("PHONE", "(415) 555-2671", default_region="US") == "+14155552671"
    with pytest.raises(ValueError):
        normalise_value("SHOE_SIZE", "42")


def test_hyphenated_family_name_is_one_unit_in_variants():
    variants = name_variants("William Smith-Jones")
    assert "william smith jones" in variants and "bill smith jones" in variants
    # Dropping half of a hyphenated surname would make every William Jones a match.
    assert "william jones" not in variants and "william smith" not in variants
    assert "william jones" not in name_variants("Smith-Jones, William")


def test_a_name_with_umlauts_has_its_spelling_with_them_written_out():
    assert name_spellings("Jürgen Köhler") == ("Jürgen Köhler", "Juergen Koehler")
    assert name_spellings("Håkon Sørensen") == ("Håkon Sørensen", "Haakon Soerensen")
    # Decomposed input ("u" + combining diaeresis) is the same name.
    assert name_spellings("Ju\u0308rgen Ko\u0308hler")[1] == "Juergen Koehler"
    # Only that direction: "Manuel" is no "Manül", and a name without those letters has one spelling.
    assert name_spellings("Manuel Koehler") == ("Manuel Koehler",)
    variants = name_variants("Jürgen Köhler")
    assert {"jurgen kohler", "juergen koehler", "j koehler", "koehler juergen"} <= variants
    assert "juergen kohler" not in variants  # spellings are not mixed word by word
