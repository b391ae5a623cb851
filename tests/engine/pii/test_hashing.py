"""Keyed hashing: one value, one hash under one key; nothing without the key."""

from __future__ import annotations

import pytest

from unlearning_jobs.engine.pii.entities import EntityType, entity_type_from_presidio
from unlearning_jobs.engine.pii.hashing import HashingKeyError, KeyedHasher
from unlearning_jobs.engine.pii.normalise import normalise_email, normalise_phone


def test_same_normalised_value_gives_same_hash(hasher):
    first = hasher.hash(EntityType.EMAIL, normalise_email("John.Smith@Example.com"))
    second = hasher.hash("EMAIL", normalise_email(" john.smith@example.COM "))
    assert first == second
    assert len(first) == 64 and int(first, 16) >= 0


def test_phone_written_two_ways_hashes_the_same(hasher):
    assert hasher.hash(EntityType.PHONE, normalise_phone("+44 20 7946 0958")) == hasher.hash(
        EntityType.PHONE, normalise_phone("020 7946 0958", "GB")
    )


def test_different_key_gives_different_hash(hasher):
    other = KeyedHasher(key=b"another-key-0123456789abcdef!!!!", key_id="test-key-2")
    assert hasher.hash(EntityType.EMAIL, "a@b.example") != other.hash(EntityType.EMAIL, "a@b.example")


def test_entity_type_is_part_of_the_message(hasher):
    assert hasher.hash(EntityType.PERSON, "paris") != hasher.hash(EntityType.LOCATION, "paris")


def test_hash_and_hasher_repr_hold_no_raw_value_or_key(hasher):
    digest = hasher.hash(EntityType.EMAIL, "john.smith@example.com")
    assert "john" not in digest
    assert "lethe-test-key" not in repr(hasher)
    assert "test-key-1" in repr(hasher)


@pytest.mark.parametrize(
    ("key", "key_id", "message"),
    [
        (b"short", "k", "at least 16"),
        ("not-bytes-0123456789", "k", "must be bytes"),
        (b"x" * 32, " ", "key id"),
    ],
)
def test_unusable_keys_are_refused(key, key_id, message):
    with pytest.raises(HashingKeyError, match=message):
        KeyedHasher(key=key, key_id=key_id)


def test_unknown_entity_type_and_empty_value_are_refused(hasher):
    with pytest.raises(ValueError):
        hasher.hash("SHOE_SIZE", "42")
    with pytest.raises(ValueError, match="empty"):
        hasher.hash(EntityType.EMAIL, "")


def test_presidio_labels_map_onto_lethe_entity_types():
    assert entity_type_from_presidio("EMAIL_ADDRESS") is EntityType.EMAIL
    assert entity_type_from_presidio("PHONE_NUMBER") is EntityType.PHONE
    assert entity_type_from_presidio("LOCATION") is EntityType.LOCATION
    with pytest.raises(ValueError, match="UK_NHS"):
        entity_type_from_presidio("UK_NHS")
