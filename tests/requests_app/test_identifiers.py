"""Identifiers: validated, encrypted at rest, hashed like the index, masked, revealed on record."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from compliance.models import AuditEvent
from requests_app import services
from requests_app.identifiers import (
    IdentifierDecryptionError,
    SubjectIdentifiers,
    identifiers_decrypt,
    mask_account_id,
    mask_address,
    mask_email,
    mask_name,
    mask_phone,
    pii_hasher,
)
from requests_app.models import ErasureRequest, SubjectIdentifierHash
from requests_app.selectors import erasure_request_identifiers_masked
from requests_app.services import ActionNotPermitted, ErasureRequestError
from unlearning_jobs.engine.pii.hashing import EntityType, KeyedHasher
from unlearning_jobs.engine.pii.normalise import normalise_email, normalise_name, normalise_phone

RAW_VALUES = [
    "John.Smith@Example.com",
    "john.smith@example.com",
    "John Smith",
    "Baker St",
    "2079460456",
    "ACC-123456",
    "ACC123456",
]


def _table_text(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
        return "\n".join(repr(row) for row in cursor.fetchall())


def test_raw_identifiers_are_not_in_the_database_tables(make_request, officer):
    erasure_request = make_request()
    services.erasure_request_reveal_identifiers(
        erasure_request=erasure_request, actor=officer, reason="Reply to the person"
    )
    for table in (
        "requests_app_erasurerequest",
        "requests_app_subjectidentifierhash",
        "compliance_auditevent",
    ):
        text = _table_text(table)
        for raw in RAW_VALUES:
            assert raw.lower() not in text.lower(), f"{raw!r} found in {table}"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT identifiers_encrypted FROM requests_app_erasurerequest WHERE id = %s",
            [erasure_request.pk],
        )
        [column] = cursor.fetchone()
    assert column.startswith("gAAAAA")  # a Fernet token
    assert identifiers_decrypt(column).emails == ("John.Smith@Example.com",)


def test_stored_hashes_are_the_pii_engines_keyed_hashes_of_the_normalised_values(make_request, settings):
    erasure_request = make_request()
    engine_hasher = KeyedHasher(key=settings.LETHE_PII_HASH_KEY, key_id=settings.LETHE_PII_HASH_KEY_ID)
    stored = {(h.entity_type, h.digest, h.is_variant) for h in erasure_request.identifier_hashes.all()}
    expected_primary = {
        (
            EntityType.EMAIL.value,
            engine_hasher.hash(EntityType.EMAIL, normalise_email("john.smith@example.com")),
        ),
        (EntityType.PHONE.value, engine_hasher.hash(EntityType.PHONE, normalise_phone("+44 20 7946 0456"))),
        (EntityType.PERSON.value, engine_hasher.hash(EntityType.PERSON, normalise_name("SMITH, John"))),
        (EntityType.ACCOUNT_ID.value, engine_hasher.hash(EntityType.ACCOUNT_ID, "ACC123456")),
    }
    assert expected_primary <= {(t, d) for t, d, variant in stored if not variant}
    nickname = engine_hasher.hash(EntityType.PERSON, "jon smith")
    assert (EntityType.PERSON.value, nickname, True) in stored
    assert {h.key_id for h in erasure_request.identifier_hashes.all()} == {settings.LETHE_PII_HASH_KEY_ID}


def test_hash_key_is_derived_from_the_secret_key_unless_set(settings):
    from compliance.env import pii_hash_key, pii_hash_key_id

    derived = pii_hash_key(None, secret_key="one-secret")
    assert derived == pii_hash_key("", secret_key="one-secret") != pii_hash_key(None, secret_key="two")
    assert (
        pii_hash_key("an explicit key of 32 bytes....", secret_key="x") == b"an explicit key of 32 bytes...."
    )
    assert pii_hash_key_id(None, key=derived) != pii_hash_key_id(None, key=b"another key 123456")
    assert pii_hash_key_id("index-2026", key=derived) == "index-2026"
    assert pii_hasher().key_id == settings.LETHE_PII_HASH_KEY_ID


@pytest.mark.parametrize(
    "mask,value,expected",
    [
        (mask_email, "john.smith@example.com", "j***@example.com"),
        (mask_name, "John Smith", "J*** S****"),
        (mask_account_id, "ACC-123456", "*******456"),
        (mask_address, "12 Baker St, London", "1* B**** S* L*****"),
    ],
)
def test_masks_show_only_a_hint(mask, value, expected):
    assert mask(value) == expected


def test_phone_mask_keeps_the_country_code_and_last_three_digits():
    assert mask_phone("020 7946 0456", phone_region="GB") == "+44 **** ***456"
    assert mask_phone("+1 202-555-0143", phone_region="GB") == "+1 **** ***143"


def test_masked_identifiers_of_a_request(make_request):
    masked = erasure_request_identifiers_masked(erasure_request=make_request())
    assert masked == {
        "names": ["J*** S****", "J***** S****"],
        "emails": ["J***@Example.com"],
        "phones": ["+44 **** ***456"],
        "addresses": ["1* B**** S* L***** N** 6**"],
        "account_ids": ["*******456"],
    }


def test_reveal_returns_clear_values_and_is_audited_without_them(make_request, officer):
    erasure_request = make_request()
    subject = services.erasure_request_reveal_identifiers(
        erasure_request=erasure_request, actor=officer, reason="Draft the reply"
    )
    assert subject.emails == ("John.Smith@Example.com",) and subject.names[0] == "John Smith"
    event = AuditEvent.objects.filter(action="erasure_request.identifiers_revealed").get()
    assert event.actor == officer
    assert event.details["identifier_counts"]["emails"] == 1
    assert event.details["reason"] == "Draft the reply"
    assert "John" not in str(event.details)


@pytest.mark.parametrize("username", ["auditor", "engineer"])
def test_only_officers_may_reveal(make_request, role_users, username):
    erasure_request = make_request()
    with pytest.raises(ActionNotPermitted):
        services.erasure_request_reveal_identifiers(
            erasure_request=erasure_request, actor=role_users[username]
        )
    assert not AuditEvent.objects.filter(action="erasure_request.identifiers_revealed").exists()


@pytest.mark.parametrize(
    "subject,field,fragment",
    [
        (SubjectIdentifiers(emails=("john.smith@",)), "emails", "E-mail 1: e-mail address is malformed"),
        (SubjectIdentifiers(emails=("ok@example.com", "two@@example.com")), "emails", "E-mail 2"),
        (SubjectIdentifiers(emails=("john smith@example.com",)), "emails", "malformed"),
        (
            SubjectIdentifiers(phones=("12345",)),
            "phones",
            "Phone number 1: a phone number has 7 to 17 digits",
        ),
        (SubjectIdentifiers(phones=("call me maybe",)), "phones", "Phone number 1"),
        (SubjectIdentifiers(), "subject", "at least one identifier"),
        (SubjectIdentifiers(names=("   ",)), "names", "Name 1 is empty"),
        (SubjectIdentifiers(names=("J" * 201,)), "names", "201 characters long"),
        (SubjectIdentifiers(emails=(("a" * 250) + "@example.com",)), "emails", "at most 254"),
        (SubjectIdentifiers(addresses=("x" * 501,)), "addresses", "at most 500"),
        (SubjectIdentifiers(account_ids=("A1",)), "account_ids", "shorter than 3"),
        (SubjectIdentifiers(names=tuple(f"Person {i}" for i in range(21))), "names", "at most 20"),
    ],
)
def test_bad_identifiers_are_refused_on_their_field_and_nothing_is_saved(
    make_request, subject, field, fragment
):
    with pytest.raises(ErasureRequestError) as refused:
        make_request(subject=subject)
    messages = refused.value.message_dict[field]
    assert any(fragment in message for message in messages), messages
    assert not ErasureRequest.objects.exists()
    assert not SubjectIdentifierHash.objects.exists()
    assert not AuditEvent.objects.filter(action="erasure_request.created").exists()


def test_error_messages_do_not_repeat_the_bad_value(make_request):
    with pytest.raises(ErasureRequestError) as refused:
        make_request(subject=SubjectIdentifiers(emails=("secret.person@",), phones=("+44 1234",)))
    assert "secret.person" not in str(refused.value.message_dict)
    assert "1234" not in str(refused.value.message_dict)


def test_phone_region_setting_decides_numbers_without_a_country_code(make_request, settings):
    settings.LETHE_PHONE_REGION = "US"
    erasure_request = make_request(subject=SubjectIdentifiers(phones=("(202) 555-0143",)))
    digest = pii_hasher().hash(EntityType.PHONE, "+12025550143")
    assert erasure_request.identifier_hashes.filter(entity_type="PHONE", digest=digest).exists()
    # Not valid in the organisation's region nor in just one other: kept as given, searched by its digits.
    settings.LETHE_PHONE_REGION = "GB"
    settings.LETHE_PHONE_REGIONS = ["GB"]
    as_given = make_request(subject=SubjectIdentifiers(phones=("(202) 555-0143",)))
    assert not as_given.identifier_hashes.filter(entity_type="PHONE", digest=digest).exists()
    key = pii_hasher().hash(EntityType.PHONE, "k1:P:2025550143")
    assert as_given.identifier_hashes.filter(entity_type="PHONE", digest=key).exists()
    from requests_app.services import subject_identifiers_warnings

    (warning,) = subject_identifiers_warnings(SubjectIdentifiers(phones=("(202) 555-0143",)))
    assert "kept as given" in warning and "555" not in warning


def test_duplicate_values_in_one_list_are_kept_once(make_request):
    erasure_request = make_request(
        subject=SubjectIdentifiers(emails=("a.b@example.com", " A.B@example.com "))
    )
    assert erasure_request.identifier_hashes.filter(entity_type="EMAIL", is_variant=False).count() == 1


def test_key_rotation_reencrypts_every_request_under_the_new_first_key(make_request, settings):
    old_key = settings.LETHE_IDENTIFIER_KEYS[0]
    first, second = make_request(), make_request(subject=SubjectIdentifiers(names=("Ada Lovelace",)))
    new_key = Fernet.generate_key().decode()
    settings.LETHE_IDENTIFIER_KEYS = [new_key, old_key]
    # Both keys configured: old rows still read, new rows are written under the new key.
    assert (
        identifiers_decrypt(ErasureRequest.objects.get(pk=first.pk).identifiers_encrypted).names[0]
        == "John Smith"
    )
    call_command("rotate_identifier_keys")
    settings.LETHE_IDENTIFIER_KEYS = [new_key]
    for original in (first, second):
        token = ErasureRequest.objects.get(pk=original.pk).identifiers_encrypted
        assert Fernet(new_key).decrypt(token.encode())
    assert identifiers_decrypt(ErasureRequest.objects.get(pk=second.pk).identifiers_encrypted).names == (
        "Ada Lovelace",
    )
    event = AuditEvent.objects.get(action="erasure_request.identifier_keys_rotated")
    assert event.details["requests_reencrypted"] == 2


def test_removing_a_key_before_rotation_fails_loudly(make_request, settings):
    erasure_request = make_request()
    settings.LETHE_IDENTIFIER_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(IdentifierDecryptionError, match="rotate_identifier_keys"):
        identifiers_decrypt(ErasureRequest.objects.get(pk=erasure_request.pk).identifiers_encrypted)
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("rotate_identifier_keys")


def test_identifier_keys_come_from_the_environment_or_a_private_file(tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    from compliance.env import identifier_keys

    generated = identifier_keys(None, var_dir=tmp_path)
    assert identifier_keys("", var_dir=tmp_path) == generated and len(generated) == 1
    assert oct((tmp_path / "identifier_keys").stat().st_mode & 0o777) == "0o600"
    one, two = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert identifier_keys(f"{one}, {two}", var_dir=tmp_path) == [one, two]
    with pytest.raises(ImproperlyConfigured, match="key 2 is not a Fernet key"):
        identifier_keys(f"{one},not-a-key", var_dir=tmp_path)
