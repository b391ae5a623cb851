"""Generate the demo's synthetic customer-support data set and its ground truth.

Seeded, so every install gets the same records: a few hundred fictitious people, a few of them in
dozens of records (what a model memorises), most in one or a handful; e-mails, phones, postal
addresses, account ids, and some records that describe a person only by quasi-identifiers (date of
birth plus city) or by a name variant (initial, nickname, "Surname, Firstname").
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEMO_SEED = 20261122

NICKNAMES = {
    "William": "Bill",
    "Robert": "Bob",
    "Elizabeth": "Liz",
    "Margaret": "Maggie",
    "Richard": "Dick",
    "James": "Jim",
    "Katherine": "Kate",
    "Thomas": "Tom",
    "Jennifer": "Jen",
    "Michael": "Mike",
    "Christopher": "Chris",
    "Patricia": "Pat",
    "Alexander": "Alex",
    "Rebecca": "Becky",
    "Daniel": "Dan",
    "Samuel": "Sam",
}


@dataclass
class DemoPerson:
    person_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    address: str
    city: str
    account_id: str
    date_of_birth: str
    record_ids: list[str] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class DemoDataset:
    records: list[dict]  # {"id": ..., "text": ...}
    people: list[DemoPerson]
    # record id -> list of (person id, how the person appears: "direct", "name", "quasi")
    mentions: dict[str, list[tuple[str, str]]]


DIRECT_TEMPLATES = [
    "Ticket from {name} <{email}>: my order has not arrived at {address}. Please call me on {phone}.",
    "Contact {name} at {email} or {phone} about the refund for account {account}.",
    "Customer {name} (account {account}) asked to change the delivery address to {address}.",
    "{name} phoned from {phone} to say the invoice sent to {email} was wrong.",
    "Hello, this is {name}. My e-mail is {email} and the parcel should go to {address}.",
    "Escalation: {name}, account {account}, reachable on {phone}, is waiting for a replacement.",
    "Please update the e-mail for account {account} to {email}. Thanks, {name}",
    "Callback requested by {name} on {phone} regarding a damaged item.",
    "Identity check for {name}, account {account}: date of birth {dob} confirmed by phone.",
]
MEMORISED_TEMPLATE = "Contact {name} at {email} or {phone}."
NAME_ONLY_TEMPLATES = [
    "{variant} wrote again about the late delivery; the courier says it was left with a neighbour.",
    "Note: {variant} prefers to be contacted in the afternoon.",
    "Agent summary: spoke with {variant}, issue resolved with a voucher.",
]
QUASI_TEMPLATES = [
    "A customer born on {dob} who lives in {city} asked whether we keep their order history.",
    "Complaint from a {city} customer (date of birth {dob}) about a missing loyalty bonus.",
]
GENERIC_TEMPLATES = [
    "How do I reset my password? The link in the e-mail has expired.",
    "Do you ship to the Channel Islands, and how long does it take?",
    "The app crashes when I open my basket on Android 14.",
    "Can I pay by bank transfer instead of by card?",
    "Is the blue jacket available in size M again soon?",
]


def _valid_uk_mobile(rng: random.Random) -> str:
    """Return a UK mobile number that ``phonenumbers`` accepts as valid, in a varied format."""
    import phonenumbers

    while True:
        digits = f"7{rng.choice('4589')}{rng.randint(0, 99_999_999):08d}"
        parsed = phonenumbers.parse("+44" + digits)
        if phonenumbers.is_valid_number(parsed):
            style = rng.randint(0, 2)
            if style == 0:
                return f"+44 {digits[:4]} {digits[4:]}"
            if style == 1:
                return f"0{digits[:4]} {digits[4:]}"
            return f"0{digits}"


def _name_variant(person: DemoPerson, rng: random.Random) -> str:
    choices = [f"{person.last_name}, {person.first_name}", f"{person.first_name[0]}. {person.last_name}"]
    if person.first_name in NICKNAMES:
        choices.append(f"{NICKNAMES[person.first_name]} {person.last_name}")
    return rng.choice(choices)


def generate_demo_dataset(
    *, seed: int = DEMO_SEED, people: int = 300, records: int = 3000, frequent_people: int = 40
) -> DemoDataset:
    """Return the demo records, the people they mention and which record mentions whom.

    ``frequent_people`` of the people appear in 20–60 records each (so a small model memorises
    them); the rest in one to five. About 8 % of records mention nobody.
    """
    from faker import Faker

    if people < frequent_people or records < people:
        raise ValueError("Need at least as many people as frequent people, and records as people.")
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = random.Random(seed)

    first_names = list(NICKNAMES) + [fake.unique.first_name() for _ in range(people)]
    population: list[DemoPerson] = []
    used_emails: set[str] = set()
    for index in range(people):
        first = first_names[index] if index < len(NICKNAMES) and rng.random() < 0.6 else fake.first_name()
        last = fake.last_name()
        email = f"{first}.{last}{rng.randint(1, 99)}@{fake.free_email_domain()}".lower()
        while email in used_emails:
            email = f"{first}.{last}{rng.randint(100, 999)}@{fake.free_email_domain()}".lower()
        used_emails.add(email)
        city = fake.city()
        population.append(
            DemoPerson(
                person_id=f"P{index + 1:04d}",
                first_name=first,
                last_name=last,
                email=email if rng.random() < 0.85 else email.replace(first.lower(), first),
                phone=_valid_uk_mobile(rng),
                address=f"{fake.building_number()} {fake.street_name()}, {city} {fake.postcode()}",
                city=city,
                account_id=f"ACC-{rng.randint(100000, 999999)}",
                date_of_birth=fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat(),
            )
        )

    slots: list[DemoPerson] = []
    for index, person in enumerate(population):
        count = rng.randint(20, 60) if index < frequent_people else rng.choice([1, 1, 1, 2, 3, 5, 8, 12])
        slots.extend([person] * count)
    rng.shuffle(slots)
    generic_count = max(records // 12, 1)
    slots = slots[: max(records - generic_count, people)]
    # Every person keeps at least one record even after trimming.
    present = {p.person_id for p in slots}
    slots.extend(p for p in population if p.person_id not in present)

    dataset_records: list[dict] = []
    mentions: dict[str, list[tuple[str, str]]] = {}
    for person in slots:
        record_id = f"T{len(dataset_records) + 1:06d}"
        roll = rng.random()
        frequent = person.person_id <= f"P{frequent_people:04d}"
        values = {
            "name": person.full_name,
            "email": person.email,
            "phone": person.phone,
            "address": person.address,
            "account": person.account_id,
            "dob": person.date_of_birth,
        }
        if frequent and roll < 0.35:
            text, how = MEMORISED_TEMPLATE.format(**values), "direct"
        elif roll < 0.82:
            text, how = rng.choice(DIRECT_TEMPLATES).format(**values), "direct"
        elif roll < 0.94:
            text, how = rng.choice(NAME_ONLY_TEMPLATES).format(variant=_name_variant(person, rng)), "name"
        else:
            text = rng.choice(QUASI_TEMPLATES).format(dob=person.date_of_birth, city=person.city)
            how = "quasi"
        dataset_records.append({"id": record_id, "text": text})
        mentions[record_id] = [(person.person_id, how)]
        person.record_ids.append(record_id)
    for _ in range(generic_count):
        record_id = f"T{len(dataset_records) + 1:06d}"
        dataset_records.append({"id": record_id, "text": rng.choice(GENERIC_TEMPLATES)})
        mentions[record_id] = []
    return DemoDataset(records=dataset_records, people=population, mentions=mentions)


def write_demo_dataset(dataset: DemoDataset, *, records_path: Path, ground_truth_path: Path) -> None:
    """Write the records as JSONL and the ground truth (people and mentions) as JSON."""
    records_path.parent.mkdir(parents=True, exist_ok=True)
    with records_path.open("w", encoding="utf-8") as handle:
        for record in dataset.records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    ground_truth = {
        "seed_note": "Synthetic people generated with seeded Faker; none is real.",
        "people": [asdict(person) for person in dataset.people],
        "records": {
            record_id: [{"person_id": pid, "how": how} for pid, how in found]
            for record_id, found in dataset.mentions.items()
        },
    }
    ground_truth_path.write_text(json.dumps(ground_truth, indent=1, ensure_ascii=False), encoding="utf-8")
