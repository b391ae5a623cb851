"""Seed the demo: one user per role, the synthetic data set and its ground truth.

Idempotent: what exists is left as it is, so re-running changes nothing.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from compliance.audit import audit_event_record
from compliance.roles import Role, roles_sync

DEMO_USERS = {"officer": Role.PRIVACY_OFFICER, "auditor": Role.AUDITOR, "engineer": Role.ENGINEER}


@dataclass
class DemoSeedResult:
    created_users: list[str] = field(default_factory=list)
    password: str | None = None  # set only when users were created now
    records_path: Path | None = None
    ground_truth_path: Path | None = None
    dataset_created: bool = False
    record_count: int = 0


def demo_paths(data_dir: Path) -> tuple[Path, Path]:
    """Return where the demo records and their ground truth live."""
    demo_dir = data_dir / "demo"
    return demo_dir / "support_tickets.jsonl", demo_dir / "support_tickets.ground_truth.json"


def demo_users_seed(*, password: str | None) -> tuple[list[str], str | None]:
    """Create the missing demo users in their role groups; return who was created and the password."""
    roles_sync()
    user_model = get_user_model()
    missing = [name for name in DEMO_USERS if not user_model.objects.filter(username=name).exists()]
    if not missing:
        return [], None
    password = password or secrets.token_urlsafe(12)
    with transaction.atomic():
        for username in missing:
            role = DEMO_USERS[username]
            user = user_model.objects.create_user(username=username, password=password,
                                                  email=f"{username}@lethe.invalid")
            user.groups.add(Group.objects.get(name=role.value))
            audit_event_record(actor=None, action="user.created", target=user,
                               details={"username": username, "role": role.value, "source": "seed_demo"})
    return missing, password


def demo_dataset_seed(*, data_dir: Path) -> tuple[Path, Path, bool, int]:
    """Write the demo records and ground truth unless both are already there."""
    from unlearning_jobs.engine.demo_data import generate_demo_dataset, write_demo_dataset

    records_path, ground_truth_path = demo_paths(data_dir)
    if records_path.exists() and ground_truth_path.exists():
        with records_path.open(encoding="utf-8") as handle:
            count = sum(1 for line in handle if line.strip())
        return records_path, ground_truth_path, False, count
    dataset = generate_demo_dataset()
    write_demo_dataset(dataset, records_path=records_path, ground_truth_path=ground_truth_path)
    return records_path, ground_truth_path, True, len(dataset.records)


def demo_seed(*, password: str | None = None, data_dir: Path | None = None) -> DemoSeedResult:
    """Seed everything the demo needs; return what was created this time."""
    data_dir = Path(data_dir or settings.LETHE_DATA_DIR)
    result = DemoSeedResult()
    result.created_users, result.password = demo_users_seed(password=password or settings.LETHE_DEMO_PASSWORD)
    (result.records_path, result.ground_truth_path, result.dataset_created,
     result.record_count) = demo_dataset_seed(data_dir=data_dir)
    return result
