"""The audit log's hash chain: canonical form of an event, recording, verification.

Each event stores the SHA-256 of the previous event and its own hash over its canonical JSON and
that previous hash, so changing, removing or reordering any row breaks the chain from that row on.
A plain hash chain can be recomputed by whoever rewrites it, so each event's hash is also sealed
with an HMAC under the audit chain key (``LETHE_AUDIT_CHAIN_KEY``), which the database never
holds: a rewrite from any row onward verifies only for someone who also has the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from django.conf import settings
from django.db import connection, transaction

from compliance.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
# Any constant works; it only has to be the same for every writer of the chain.
AUDIT_CHAIN_LOCK_ID = 0x1E7E_A0D1


def canonical_json(value) -> str:
    """Return the one JSON text of ``value`` that every writer and verifier produces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def format_timestamp(moment: datetime) -> str:
    """Return an ISO 8601 UTC timestamp with microseconds, the form hashed into the chain."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    sequence: int,
    occurred_at: datetime,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    details: dict,
    previous_hash: str,
) -> str:
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


def chain_key_id(key: bytes) -> str:
    """Return the name stored beside each seal: a fingerprint of the key that reveals nothing."""
    return "audit-hmac:" + hashlib.sha256(b"lethe.key-id:" + key).hexdigest()[:12]


def chain_mac(entry_hash: str, key: bytes) -> str:
    """Return the seal of one event: HMAC-SHA256 of its chain hash under the audit chain key."""
    return hmac.new(key, b"lethe.audit-chain.v1:" + entry_hash.encode("ascii"), hashlib.sha256).hexdigest()


def chain_keys() -> dict[str, bytes]:
    """Return ``{key id: key}`` of the current and the retired audit chain keys."""
    keys = [settings.LETHE_AUDIT_CHAIN_KEY, *settings.LETHE_AUDIT_CHAIN_RETIRED_KEYS]
    return {chain_key_id(key): key for key in keys}


def _lock_chain() -> None:
    """Serialise appends so two transactions never extend the same head.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: writes are already serialised by the
    database lock taken at BEGIN IMMEDIATE (see settings), so nothing more is needed.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK_ID])


def audit_event_record(
    *,
    actor,
    action: str,
    target=None,
    object_type: str = "",
    object_id: str = "",
    details: dict | None = None,
):
    """Append one event to the audit log, inside the caller's transaction.

    ``actor`` is a user or None (the system: beat tasks, workers). ``target`` is a model instance
    whose type and primary key are recorded. ``details`` must hold no raw personal data: pass
    masked values or keyed hashes.
    """
    from django.utils import timezone as dj_timezone

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
            sequence=sequence,
            occurred_at=occurred_at,
            actor_label=actor_label,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            details=details,
            previous_hash=previous_hash,
        )
        key = settings.LETHE_AUDIT_CHAIN_KEY
        return AuditEvent.objects.create(
            sequence=sequence,
            occurred_at=occurred_at,
            actor=actor,
            actor_label=actor_label,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            details=details,
            previous_hash=previous_hash,
            entry_hash=entry_hash,
            entry_mac=chain_mac(entry_hash, key),
            mac_key_id=chain_key_id(key),
        )


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    events_checked: int
    head_hash: str
    first_bad_sequence: int | None = None
    reason: str = ""
    #: The sequence that this check trusted as already verified (0: it read the whole chain).
    verified_before: int = 0


#: The one row of compliance.AuditChainHead.
CHAIN_HEAD_PK = 1


def _seal_fault(event, keys: dict[str, bytes]) -> str | None:
    """Return why the event's HMAC seal does not hold, or None when it does."""
    key = keys.get(event.mac_key_id)
    if key is None:
        return (
            "the event is not sealed with a known audit chain key"
            if event.mac_key_id
            else "the event carries no seal (HMAC) of the audit chain key"
        )
    if not hmac.compare_digest(event.entry_mac, chain_mac(event.entry_hash, key)):
        return "the event's seal (HMAC) does not match its hash: it was written without the chain key"
    return None


def _verify_rows(
    events, *, previous_hash: str, expected_sequence: int, checked: int, verified_before: int = 0
) -> ChainVerification:
    """Walk ``events`` in sequence order from ``expected_sequence``, each sealed to ``previous_hash``."""
    keys = chain_keys()
    for event in events:
        if event.sequence != expected_sequence:
            return ChainVerification(
                False,
                checked,
                previous_hash,
                event.sequence,
                f"sequence {expected_sequence} is missing",
                verified_before,
            )
        if event.previous_hash != previous_hash:
            return ChainVerification(
                False,
                checked,
                previous_hash,
                event.sequence,
                "previous_hash does not match the preceding event",
                verified_before,
            )
        if _recompute(event) != event.entry_hash:
            return ChainVerification(
                False,
                checked,
                previous_hash,
                event.sequence,
                "the event's content does not match its hash",
                verified_before,
            )
        if (fault := _seal_fault(event, keys)) is not None:
            return ChainVerification(False, checked, previous_hash, event.sequence, fault, verified_before)
        previous_hash = event.entry_hash
        expected_sequence += 1
        checked += 1
    return ChainVerification(True, checked, previous_hash, verified_before=verified_before)


def _recompute(event) -> str:
    return event_hash(
        sequence=event.sequence,
        occurred_at=event.occurred_at,
        actor_label=event.actor_label,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        details=event.details,
        previous_hash=event.previous_hash,
    )


def _chain_head_save(
    *, sequence: int, entry_hash: str, forward_only: bool, replacing: tuple[int, str] | None = None
) -> None:
    """Store the verified head.

    ``forward_only`` never moves it back (a concurrent check got further); ``replacing`` moves it
    only from the head this check started from, so that a check which began before a full check
    moved the head back to a break cannot carry it past the break again.
    """
    from django.utils import timezone as dj_timezone

    now = dj_timezone.now()
    heads = AuditChainHead.objects.filter(pk=CHAIN_HEAD_PK)
    if forward_only:
        heads = heads.filter(sequence__lt=sequence)
    if replacing is not None:
        heads = heads.filter(sequence=replacing[0], entry_hash=replacing[1])
    if heads.update(sequence=sequence, entry_hash=entry_hash, verified_at=now):
        return
    # No row yet (a fresh database), or one already further or moved by another check: insert
    # only in the first case.
    AuditChainHead.objects.bulk_create(
        [AuditChainHead(pk=CHAIN_HEAD_PK, sequence=sequence, entry_hash=entry_hash, verified_at=now)],
        ignore_conflicts=True,
    )


def audit_chain_verify() -> ChainVerification:
    """Recompute every event's hash in order; report the first row that does not fit.

    The full check, for ``manage.py verify_audit_log`` and issued reports. It also resets the
    verified head that :func:`audit_chain_verify_incremental` starts from: to the last event when
    the chain is intact, to the last good event before a break when it is not, so that the pages
    show a break that only the full check could find.
    """

    result = _verify_rows(
        AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000),
        previous_hash=GENESIS_HASH,
        expected_sequence=1,
        checked=0,
    )
    # Sequences are contiguous from 1 up to the last good event, so its sequence is the count.
    _chain_head_save(sequence=result.events_checked, entry_hash=result.head_hash, forward_only=result.ok)
    return result


def audit_chain_verify_incremental() -> ChainVerification:
    """Verify the events after the stored verified head, and move the head to the last of them.

    Reads the head event itself again (its hash must still be the one verified) and every event
    after it: a change to a row after the head, or to the head, is reported as the full check
    would report it; a change to a row before the head is left to the full check.
    ``events_checked`` counts every event verified so far, by this check or earlier ones.
    """

    head = AuditChainHead.objects.filter(pk=CHAIN_HEAD_PK).first()
    if head is None or head.sequence <= 0:
        result = _verify_rows(
            AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000),
            previous_hash=GENESIS_HASH,
            expected_sequence=1,
            checked=0,
        )
    else:
        events = (
            AuditEvent.objects.filter(sequence__gte=head.sequence)
            .order_by("sequence")
            .iterator(chunk_size=2000)
        )
        first = next(events, None)
        if first is None or first.sequence != head.sequence:
            return ChainVerification(
                False,
                head.sequence - 1,
                "",
                head.sequence,
                f"sequence {head.sequence}, the verified head, is missing",
                head.sequence,
            )
        if (
            first.entry_hash != head.entry_hash
            or _recompute(first) != first.entry_hash
            or _seal_fault(first, chain_keys()) is not None
        ):
            return ChainVerification(
                False,
                head.sequence - 1,
                first.previous_hash,
                head.sequence,
                "the verified head event no longer matches its verified hash",
                head.sequence,
            )
        result = _verify_rows(
            events,
            previous_hash=head.entry_hash,
            expected_sequence=head.sequence + 1,
            checked=head.sequence,
            verified_before=head.sequence,
        )
        if result.ok and result.events_checked == head.sequence:
            return result  # nothing new since the last check: no write
    if result.events_checked:
        _chain_head_save(
            sequence=result.events_checked,
            entry_hash=result.head_hash,
            forward_only=True,
            replacing=(head.sequence, head.entry_hash) if head is not None else None,
        )
    return result
