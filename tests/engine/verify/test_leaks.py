"""A subject's PII is found in text verbatim or after normalisation, and masked for display."""

from __future__ import annotations

from unlearning_jobs.engine.pii.entities import EntityType
from unlearning_jobs.engine.verify.leaks import ValueMatcher, mask_text, mask_value
from unlearning_jobs.engine.verify.records import PiiValue

VALUES = (
    PiiValue("EMAIL", "zephyr.lantern@quietmail.org"),
    PiiValue("PHONE", "+44 20 7946 0958"),
    PiiValue("PERSON", "Zelda Quixote"),
)


def kinds(text: str) -> set[str]:
    return {match.kind.value for _index, match in ValueMatcher(VALUES).find(text)}


def test_values_are_found_verbatim():
    assert kinds("reach zephyr.lantern@quietmail.org or +44 20 7946 0958, Zelda Quixote") == {
        "EMAIL",
        "PHONE",
        "PERSON",
    }


def test_values_are_found_after_normalisation():
    assert kinds("write to ZEPHYR.Lantern@QuietMail.ORG today") == {"EMAIL"}
    assert kinds("call 020-7946-0958 or 02079460958") == {"PHONE"}
    assert kinds("ring (020) 7946 0958 now") == {"PHONE"}
    assert kinds("call 020 7946 0958 2 times") == {"PHONE"}
    assert kinds("numbers: 0161 496 0000/020 7946 0958") == {"PHONE"}
    assert kinds("ask zélda  QUIXOTE.") == {"PERSON"}


def test_normalised_only_matches_are_marked_not_exact():
    matches = ValueMatcher(VALUES).find("ZEPHYR.LANTERN@QUIETMAIL.ORG")
    assert [match.exact for _index, match in matches] == [False]


def test_other_values_and_longer_words_do_not_match():
    assert kinds("zephyr.lantern@quietmail.com and +44 20 7946 0959") == set()
    assert kinds("Zelda Quixotes and Zelda") == set()
    assert kinds("+44 20 7946 09581") == set()


def test_masking_hides_the_subjects_values_and_any_other_email_or_phone():
    text = (
        "Zelda Quixote: zephyr.lantern@quietmail.org, +44 20 7946 0958; "
        "also bob.other@x.example and 020 7946 1234"
    )
    masked = mask_text(text, VALUES)
    for secret in ("Zelda", "Quixote", "zephyr", "lantern", "0958", "bob.other", "1234"):
        assert secret not in masked
    assert "z***@quietmail.org" in masked and "Z*** Q***" in masked


def test_mask_value_keeps_only_a_hint():
    assert mask_value(EntityType.EMAIL, "jane@example.com") == "j***@example.com"
    assert mask_value(EntityType.PHONE, "+44 20 7946 0958") == "+** ** **** **58"
    assert mask_value(EntityType.PERSON, "Jane Doe") == "J*** D***"
