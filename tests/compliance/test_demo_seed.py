"""seed_demo is idempotent and its ground truth matches its records."""

import hashlib
import json

from django.contrib.auth import get_user_model
from django.core.management import call_command

from compliance.demo import demo_paths


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_seed_demo_twice_changes_nothing(db, settings, tmp_path, capsys):
    settings.LETHE_DATA_DIR = tmp_path
    settings.LETHE_DEMO_PASSWORD = "demo-pass-123"
    call_command("seed_demo", "--no-model")
    records_path, truth_path = demo_paths(tmp_path)
    users = {u.username: (u.pk, u.password) for u in get_user_model().objects.all()}
    digests = (_digest(records_path), _digest(truth_path))

    call_command("seed_demo", "--no-model")
    second_output = capsys.readouterr().out
    assert "already exist" in second_output and "already present" in second_output
    assert {u.username: (u.pk, u.password) for u in get_user_model().objects.all()} == users
    assert (_digest(records_path), _digest(truth_path)) == digests
    assert set(users) == {"officer", "auditor", "engineer"}
    assert get_user_model().objects.get(username="officer").check_password("demo-pass-123")

    # The data set was registered and indexed once, with findings, and not again.
    from unlearning_jobs.models import DatasetVersion, DatasetVersionStatus, PiiFinding

    version = DatasetVersion.objects.get(dataset__name="demo-support-tickets")
    assert version.status == DatasetVersionStatus.INDEXED
    assert version.record_count == sum(1 for _ in records_path.open())
    assert PiiFinding.objects.filter(version=version).count() > version.record_count


def test_ground_truth_matches_the_records(db, settings, tmp_path):
    settings.LETHE_DATA_DIR = tmp_path
    call_command("seed_demo", "--no-index")
    records_path, truth_path = demo_paths(tmp_path)
    records = {}
    for line in records_path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        records[record["id"]] = record["text"]
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    people = {p["person_id"]: p for p in truth["people"]}

    assert 2000 <= len(records) <= 5000 and 200 <= len(people) <= 500
    assert set(truth["records"]) == set(records)
    counts = sorted(len(p["record_ids"]) for p in people.values())
    assert counts[0] == 1 and counts[-1] >= 20  # some in one record, some in many
    for record_id, mentions in truth["records"].items():
        text = records[record_id]
        for mention in mentions:
            person = people[mention["person_id"]]
            assert record_id in person["record_ids"]
            if mention["how"] == "direct":
                assert f"{person['first_name']} {person['last_name']}" in text
                assert any(
                    v in text
                    for v in (person["email"], person["phone"], person["address"], person["account_id"])
                )
            elif mention["how"] == "name":
                assert person["last_name"] in text
            else:
                assert person["date_of_birth"] in text and person["city"] in text
        if not mentions:
            assert not any(p["email"] in text or p["last_name"] in text for p in people.values())
