"""The audit log's hash chain: canonical form of an event, recording, verification.

Each event stores the SHA-256 of the previous event and its own hash over its canonical JSON and
that previous hash, so changing, removing or reordering any row breaks the chain from that row on.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from django.db import connection, transaction

GENESIS_HASH = "0" * 64
# Any constant works; it only has to be the same for every writer of the chain.
AUDIT_CHAIN_LOCK_ID = 0x1E7E_A0D1


def canonical_json(value) -> str:
    """Return the one JSON text of ``value`` that every writer and verifier produces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def format_timestamp(moment: datetime) -> str:
    """Return an ISO 8601 UTC timestamp with microseconds, the form hashed into the chain."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(*, sequence: int, occurred_at: datetime, actor_label: str, action: str,
               object_type: str, object_id: str, details: dict, previous_hash: str) -> str:
    """Return the SHA-256 that seals one event to its predecessor."""
    body = canonical_json(
        {
            "sequence": sequence,
            "occurred_at": format_timestamp(occurred_at),
            "actor": actor_label,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "details": details,
            "previous_hash": previous_hash,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _lock_chain() -> None:
    """Serialise appends so two transactions never extend the same head.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: writes are already serialised by the
    database lock taken at BEGIN IMMEDIATE (see settings), so nothing more is needed.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK_ID])


def audit_event_record(*, actor, action: str, target=None, object_type: str = "",
                       object_id: str = "", details: dict | None = None):
    """Append one event to the audit log, inside the caller's transaction.

    ``actor`` is a user or None (the system: beat tasks, workers). ``target`` is a model instance
    whose type and primary key are recorded. ``details`` must hold no raw personal data: pass
    masked values or keyed hashes.
    """
    from django.utils import timezone as dj_timezone

    from compliance.models import AuditEvent

    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or str(target.pk)
    details = json.loads(canonical_json(details or {}))
    actor_label = actor.get_username() if actor is not None else "system"
    with transaction.atomic():
        _lock_chain()
        head = AuditEvent.objects.order_by("-sequence").only("sequence", "entry_hash").first()
        sequence = head.sequence + 1 if head else 1
        previous_hash = head.entry_hash if head else GENESIS_HASH
        occurred_at = dj_timezone.now()
        entry_hash = event_hash(
            sequence=sequence, occurred_at=occurred_at, actor_label=actor_label, action=action,
            object_type=object_type, object_id=str(object_id), details=details,
            previous_hash=previous_hash,
        )
        return AuditEvent.objects.create(
            sequence=sequence, occurred_at=occurred_at, actor=actor, actor_label=actor_label,
            action=action, object_type=object_type, object_id=str(object_id), details=details,
            previous_hash=previous_hash, entry_hash=entry_hash,
        )


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    events_checked: int
    head_hash: str
    first_bad_sequence: int | None = None
    reason: str = ""


def audit_chain_verify() -> ChainVerification:
    """Recompute every event's hash in order; report the first row that does not fit."""
    from compliance.models import AuditEvent

    previous_hash = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000):
        if event.sequence != expected_sequence:
            return ChainVerification(False, checked, previous_hash, event.sequence,
                                     f"sequence {expected_sequence} is missing")
        if event.previous_hash != previous_hash:
            return ChainVerification(False, checked, previous_hash, event.sequence,
                                     "previous_hash does not match the preceding event")
        recomputed = event_hash(
            sequence=event.sequence, occurred_at=event.occurred_at, actor_label=event.actor_label,
            action=event.action, object_type=event.object_type, object_id=event.object_id,
            details=event.details, previous_hash=event.previous_hash,
        )
        if recomputed != event.entry_hash:
            return ChainVerification(False, checked, previous_hash, event.sequence,
                                     "the event's content does not match its hash")
        previous_hash = event.entry_hash
        expected_sequence += 1
        checked += 1
    return ChainVerification(True, checked, previous_hash)
