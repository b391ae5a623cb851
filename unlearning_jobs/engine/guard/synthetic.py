"""Generate fictitious people, their records and PII-bearing sentences for probes and benchmarks.

Seeded Faker in several locales (accents, street-first addresses), plus phone numbers built
until ``phonenumbers`` accepts them: Faker's own numbers are often invalid, and an invalid
number can be neither a rule nor a match. Nobody generated here is real.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Sequence

import phonenumbers

from .facts import SubjectFacts, SubjectRecord

__all__ = [
    "valid_phone",
    "fake_subjects",
    "pii_sentences",
    "DEFAULT_LOCALES",
]

DEFAULT_LOCALES = ("en_GB", "en_US", "de_DE", "fr_FR", "es_ES")
_US_AREA_CODES = (
    "202",
    "212",
    "213",
    "305",
    "312",
    "415",
    "503",
    "617",
    "646",
    "702",
    "718",
    "971",
)


def valid_phone(rng: random.Random, region: str) -> str:
    """Return a random phone number ``phonenumbers`` accepts for ``region`` ("GB" or "US")."""
    while True:
        if region == "GB":
            digits = f"7{rng.choice('4589')}{rng.randint(0, 99_999_999):08d}"
            text = f"0{digits[:4]} {digits[4:]}"
        elif region == "US":
            text = f"({rng.choice(_US_AREA_CODES)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
        else:
            raise ValueError(f"valid_phone generates GB or US numbers, not {region!r}")
        if phonenumbers.is_valid_number(phonenumbers.parse(text, region)):
            return text


def _ascii(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)).lower())


def fake_subjects(
    *, count: int, seed: int, locales: Sequence[str] = DEFAULT_LOCALES, ref_prefix: str = "subj"
) -> list[SubjectFacts]:
    """Return ``count`` seeded fictitious people, each with three records.

    The records are shaped so that a fact follows only from two of them: an order record ties
    the account to the postal address without the name, a contact record ties the name to the
    account and e-mail, a call record gives the phone.
    """
    from faker import Faker

    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    fakers = []
    for index, locale in enumerate(locales):
        fake = Faker(locale)
        fake.seed_instance(seed * 7919 + index)
        fakers.append(fake)
    rng = random.Random(seed)
    people: list[SubjectFacts] = []
    used_names: set[str] = set()
    while len(people) < count:
        fake = fakers[len(people) % len(fakers)]
        first, last = fake.first_name(), fake.last_name()
        name = f"{first} {last}"
        if name in used_names or len(name.split()) < 2 or len(first.split()) > 1:
            continue
        used_names.add(name)
        region = "US" if fake.locales[0] == "en_US" else "GB"
        street = fake.street_address().replace("\n", ", ")
        city = fake.city()
        address = f"{street}, {city} {fake.postcode()}"
        email = f"{_ascii(first)}.{_ascii(last)}{rng.randint(1, 99)}@{fake.free_email_domain()}"
        phone = valid_phone(rng, region)
        account = f"{rng.choice(('ACC', 'CUST'))}-{rng.randint(100000, 999999)}"
        dob = fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat()
        ref = f"{ref_prefix}-{seed}-{len(people):05d}"
        order = rng.randint(10000, 99999)
        records = (
            SubjectRecord(f"{ref}-r1", f"Order {order} for account {account} was delivered to {address}."),
            SubjectRecord(f"{ref}-r2", f"Contact {name} at {email} about account {account}."),
            SubjectRecord(f"{ref}-r3", f"{name} phoned from {phone} about order {order}."),
        )
        people.append(
            SubjectFacts(
                subject_ref=ref,
                name=name,
                emails=(email,),
                phones=(phone,),
                addresses=(address,),
                account_ids=(account,),
                cities=(city,),
                dates_of_birth=(dob,),
                records=records,
                default_region=region,
            )
        )
    return people


_SENTENCES = (
    "Please forward the invoice to {name} at {email}.",
    "{name} called from {phone} to ask about the delivery.",
    "The parcel for {name} should go to {address}.",
    "Account {account} belongs to {name}, who can be reached on {phone}.",
    "{surname_first} asked us to update the e-mail to {email_upper}.",
    "Our records show {initial} lives at {address}.",
    "You can write to {email_obfuscated} or ring {phone_dashed}.",
    "{name_lower} moved to {city} last year and opened account {account_lower}.",
    "The meeting with {name} is on Tuesday; her number is {phone_international}.",
    "{name} ({email}) asked whether the order to {address} had shipped.",
)


def pii_sentences(people: Sequence[SubjectFacts], *, seed: int, per_person: int = 4) -> list[str]:
    """Return sentences that carry the personal data of ``people`` in varied formats.

    Used as a false-positive corpus: none of these people is suppressed, so the guard should
    pass every sentence unchanged.
    """
    rng = random.Random(seed)
    sentences: list[str] = []
    for person in people:
        first, last = person.name.split()[0], person.name.split()[-1]
        phone = person.phones[0]
        parsed = phonenumbers.parse(phone, person.default_region)
        email = person.emails[0]
        local, domain = email.split("@")
        values = {
            "name": person.name,
            "name_lower": person.name.lower(),
            "surname_first": f"{last}, {first}",
            "initial": f"{first[0]}. {last}",
            "email": email,
            "email_upper": email.upper(),
            "email_obfuscated": f"{local.replace('.', ' dot ')} at {domain.replace('.', ' dot ')}",
            "phone": phone,
            "phone_dashed": re.sub(r"[ ()]+", "-", phone).strip("-"),
            "phone_international": phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL
            ),
            "address": person.addresses[0],
            "city": person.cities[0],
            "account": person.account_ids[0],
            "account_lower": person.account_ids[0].lower().replace("-", " "),
        }
        for template in rng.sample(_SENTENCES, k=min(per_person, len(_SENTENCES))):
            sentences.append(template.format(**values))
    return sentences
