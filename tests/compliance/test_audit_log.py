"""The audit log's hash chain: intact after real work, broken by any tampering, append-only."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from compliance.audit import GENESIS_HASH, audit_chain_verify, audit_chain_verify_incremental
from compliance.models import AuditEvent
from requests_app import services
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import IdentityMethod
from tests.conftest import REPO_ROOT, _database_url_for


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def some_history(officer):
    """A few events written by the services, as in real use."""
    erasure_request = services.erasure_request_create(
        subject=SubjectIdentifiers(names=("Grace Hopper",), emails=("grace@example.org",)),
        legal_ground="art17_1_b",
        actor=officer,
    )
    services.erasure_request_verify_identity(
        erasure_request=erasure_request, actor=officer, method=IdentityMethod.EMAIL_LINK
    )
    services.erasure_request_start_locating(erasure_request=erasure_request, actor=officer)
    return list(AuditEvent.objects.order_by("sequence"))


def _require_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("The append-only trigger and session_replication_role are PostgreSQL's.")


def _tamper(sql: str, params: list) -> None:
    """Change the table behind the trigger's back, as a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def test_chain_of_real_events_verifies_and_prints_the_head(some_history, capsys):
    result = audit_chain_verify()
    assert result.ok and result.events_checked == len(some_history) >= 6
    assert result.head_hash == some_history[-1].entry_hash
    assert some_history[0].previous_hash == GENESIS_HASH
    assert all(b.previous_hash == a.entry_hash for a, b in zip(some_history, some_history[1:]))
    call_command("verify_audit_log")
    assert f"head {result.head_hash}" in capsys.readouterr().out


def test_changing_one_rows_details_breaks_the_chain_at_that_row(some_history):
    _require_postgresql()
    victim = some_history[-2]
    _tamper(
        "UPDATE compliance_auditevent SET details = %s WHERE sequence = %s",
        ['{"reference": "ER-2026-999999"}', victim.sequence],
    )
    result = audit_chain_verify()
    assert not result.ok and result.first_bad_sequence == victim.sequence
    assert "content does not match" in result.reason
    with pytest.raises(CommandError, match=f"broken at event #{victim.sequence}"):
        call_command("verify_audit_log")


def test_rewriting_a_row_with_a_fresh_hash_breaks_the_next_link(some_history):
    _require_postgresql()
    victim = some_history[2]
    _tamper(
        "UPDATE compliance_auditevent SET actor_label = 'someone-else', entry_hash = %s WHERE sequence = %s",
        ["f" * 64, victim.sequence],
    )
    result = audit_chain_verify()
    assert not result.ok and result.first_bad_sequence == victim.sequence


def test_deleting_a_row_is_detected(some_history):
    _require_postgresql()
    victim = some_history[3]
    _tamper("DELETE FROM compliance_auditevent WHERE sequence = %s", [victim.sequence])
    result = audit_chain_verify()
    assert not result.ok and result.first_bad_sequence == victim.sequence + 1
    assert f"sequence {victim.sequence} is missing" in result.reason


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE compliance_auditevent SET action = 'forged' WHERE sequence = %s",
        "DELETE FROM compliance_auditevent WHERE sequence = %s",
    ],
)
def test_plain_update_and_delete_are_refused_by_the_trigger(some_history, sql):
    _require_postgresql()
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [some_history[0].sequence])
    assert AuditEvent.objects.get(sequence=some_history[0].sequence).action == some_history[0].action
    assert audit_chain_verify().ok


def test_the_orm_refuses_to_change_or_delete_events(some_history):
    event = some_history[0]
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    event.action = "forged"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


@pytest.mark.django_db(transaction=True)
def test_verify_audit_log_command_exit_status(officer):
    """Run the command as an operator would: exit 0 with the head, non-zero naming the row."""
    _require_postgresql()
    services.erasure_request_create(
        subject=SubjectIdentifiers(names=("Grace Hopper",)), legal_ground="art17_1_b", actor=officer
    )
    env = dict(os.environ, DATABASE_URL=_database_url_for(connection.settings_dict))

    def run():
        return subprocess.run(
            [sys.executable, "manage.py", "verify_audit_log"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    intact = run()
    head = audit_chain_verify().head_hash
    assert intact.returncode == 0 and f"head {head}" in intact.stdout, intact.stderr
    last = AuditEvent.objects.order_by("-sequence").first()
    _tamper("UPDATE compliance_auditevent SET object_id = 'x' WHERE sequence = %s", [last.sequence])
    broken = run()
    assert broken.returncode != 0
    assert f"broken at event #{last.sequence}" in broken.stderr


# --- incremental verification (the auditor's pages) ----------------------------------------------


def _head():
    from compliance.models import AuditChainHead

    return AuditChainHead.objects.get()


def _more_history(officer, count: int) -> None:
    for n in range(count):
        services.erasure_request_create(
            subject=SubjectIdentifiers(names=(f"Person {n}",)), legal_ground="art17_1_b", actor=officer
        )


def test_incremental_check_verifies_everything_once_and_a_new_event_extends_the_head(some_history, officer):
    first = audit_chain_verify_incremental()
    assert first.ok and first.verified_before == 0 and first.events_checked == len(some_history)
    assert (_head().sequence, _head().entry_hash) == (some_history[-1].sequence, some_history[-1].entry_hash)

    _more_history(officer, 1)
    last = AuditEvent.objects.order_by("-sequence").first()
    second = audit_chain_verify_incremental()
    assert second.ok and second.verified_before == some_history[-1].sequence
    assert second.events_checked == last.sequence and second.head_hash == last.entry_hash
    assert (_head().sequence, _head().entry_hash) == (last.sequence, last.entry_hash)


def test_incremental_check_reads_only_the_events_after_the_verified_head(some_history, officer):
    audit_chain_verify_incremental()
    _more_history(officer, 3)
    with CaptureQueriesContext(connection) as captured:
        result = audit_chain_verify_incremental()
    assert result.ok
    reads = [q["sql"] for q in captured.captured_queries if "compliance_auditevent" in q["sql"]]
    assert len(reads) == 1 and '"sequence" >= ' in reads[0], reads


def test_incremental_check_reports_a_tampered_event_after_the_verified_head(some_history, officer):
    _require_postgresql()
    audit_chain_verify_incremental()
    head_sequence = _head().sequence
    _more_history(officer, 2)
    victim = AuditEvent.objects.order_by("-sequence")[1]
    assert victim.sequence > head_sequence
    _tamper("UPDATE compliance_auditevent SET object_id = 'x' WHERE sequence = %s", [victim.sequence])
    result = audit_chain_verify_incremental()
    assert not result.ok and result.first_bad_sequence == victim.sequence
    assert "content does not match" in result.reason
    # The head moved to the last good event and no further: the next check still finds the break.
    assert _head().sequence == victim.sequence - 1
    assert audit_chain_verify_incremental().first_bad_sequence == victim.sequence


def test_incremental_check_reports_a_changed_verified_head(some_history):
    _require_postgresql()
    audit_chain_verify_incremental()
    _tamper("UPDATE compliance_auditevent SET action = 'forged' WHERE sequence = %s", [_head().sequence])
    result = audit_chain_verify_incremental()
    assert not result.ok and result.first_bad_sequence == some_history[-1].sequence


def test_a_row_changed_before_the_head_is_found_by_the_full_check_and_then_shown_by_the_pages(some_history):
    _require_postgresql()
    audit_chain_verify_incremental()
    victim = some_history[1]
    _tamper(
        "UPDATE compliance_auditevent SET actor_label = 'someone-else' WHERE sequence = %s", [victim.sequence]
    )
    # The incremental check trusts what it verified before: only the full walk reads row 2 again.
    assert audit_chain_verify_incremental().ok
    with pytest.raises(CommandError, match=f"broken at event #{victim.sequence}"):
        call_command("verify_audit_log")
    after = audit_chain_verify_incremental()
    assert not after.ok and after.first_bad_sequence == victim.sequence


def test_auditor_request_page_verifies_incrementally_in_queries_that_do_not_grow_with_events(
    client, auditor, officer, some_history
):
    from django.urls import reverse

    from requests_app.models import ErasureRequest

    erasure_request = ErasureRequest.objects.get()
    url = reverse("compliance:request", args=[erasure_request.pk])
    client.force_login(auditor)
    client.get(url)  # first visit: verifies the whole chain once, and stores its head

    def count():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        return len(captured.captured_queries), response.content.decode()

    # Each count is of a visit after new events: the head moves forward (one UPDATE) both times.
    _more_history(officer, 1)
    few, _ = count()
    _more_history(officer, 40)
    many, html = count()
    assert many <= few, (few, many)
    last = AuditEvent.objects.order_by("-sequence").first()
    assert f"all {last.sequence} events" in html and last.entry_hash in html
    assert _head().sequence == last.sequence


def test_a_draft_report_checks_the_chain_from_the_head_and_the_full_check_finds_what_it_trusts(some_history):
    """A draft is rendered on every view, so it checks incrementally; issuing walks the whole chain."""
    from compliance.reports.sections import report_section_audit_chain
    from compliance.reports.selectors import report_draft_body
    from requests_app.models import ErasureRequest

    _require_postgresql()
    erasure_request = ErasureRequest.objects.get()
    audit_chain_verify_incremental()
    victim = some_history[1]
    _tamper(
        "UPDATE compliance_auditevent SET actor_label = 'someone-else' WHERE sequence = %s", [victim.sequence]
    )
    draft = report_draft_body(erasure_request=erasure_request)["audit_chain"]
    assert draft["verified"] is True and draft["events_checked"] == len(some_history)
    full = report_section_audit_chain(erasure_request)
    assert full["verified"] is False and full["first_bad_sequence"] == victim.sequence
    # The full check moved the verified head back: the next draft shows the break too.
    assert (
        report_draft_body(erasure_request=erasure_request)["audit_chain"]["first_bad_sequence"]
        == victim.sequence
    )


# --- the keyed chain, TRUNCATE, and the application's role (issue 17) ---------------------------


def _rewrite_from(sequence: int, *, seal_key: bytes | None = None) -> None:
    """Rewrite every event from ``sequence`` on and recompute the whole chain after it, as someone
    with write access to the table would; re-seal it only when given the chain key."""
    from compliance.audit import _recompute, chain_key_id, chain_mac

    events = list(AuditEvent.objects.filter(sequence__gte=sequence - 1).order_by("sequence"))
    previous_hash = events[0].previous_hash if sequence == 1 else events[0].entry_hash
    for event in events[1:] if sequence > 1 else events:
        event.actor_label = "someone-else"
        event.previous_hash = previous_hash
        event.entry_hash = _recompute(event)
        mac = chain_mac(event.entry_hash, seal_key) if seal_key else event.entry_mac
        key_id = chain_key_id(seal_key) if seal_key else event.mac_key_id
        _tamper(
            "UPDATE compliance_auditevent SET actor_label = %s, previous_hash = %s, entry_hash = %s, "
            "entry_mac = %s, mac_key_id = %s WHERE sequence = %s",
            [event.actor_label, event.previous_hash, event.entry_hash, mac, key_id, event.sequence],
        )
        previous_hash = event.entry_hash


def test_a_rewrite_from_a_row_onward_no_longer_verifies_without_the_chain_key(some_history, settings):
    _require_postgresql()
    victim = some_history[2]
    _rewrite_from(victim.sequence)

    result = audit_chain_verify()
    # Every link and every hash is consistent again; only the seal gives the rewrite away.
    assert not result.ok and result.first_bad_sequence == victim.sequence
    assert "seal (HMAC) does not match" in result.reason
    with pytest.raises(CommandError, match=f"broken at event #{victim.sequence}"):
        call_command("verify_audit_log")
    # The check is the key and nothing else: a forger who has it re-seals the rewrite.
    _rewrite_from(victim.sequence, seal_key=settings.LETHE_AUDIT_CHAIN_KEY)
    assert audit_chain_verify().ok
    _rewrite_from(victim.sequence, seal_key=b"a-guessed-key-that-is-not-the-chain-key-0123")
    assert "not sealed with a known audit chain key" in audit_chain_verify().reason


def test_events_sealed_with_a_retired_chain_key_still_verify(some_history, settings, officer):
    old_key = settings.LETHE_AUDIT_CHAIN_KEY
    settings.LETHE_AUDIT_CHAIN_KEY = b"the-next-audit-chain-key-after-rotation-0123456789"
    assert "not sealed with a known" in audit_chain_verify().reason
    settings.LETHE_AUDIT_CHAIN_RETIRED_KEYS = [old_key]
    services.erasure_request_create(
        subject=SubjectIdentifiers(names=("Ada Byron",), emails=("ada@example.org",)),
        legal_ground="art17_1_b",
        actor=officer,
    )
    events = list(AuditEvent.objects.order_by("sequence"))
    assert len({event.mac_key_id for event in events}) == 2
    assert audit_chain_verify().ok


def test_truncate_is_refused_unless_the_test_databases_flush_asks(some_history):
    _require_postgresql()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), current_setting('lethe.allow_audit_truncate', true)")
        name, allowed = cursor.fetchone()
    assert name.startswith("test_") and allowed == "on"  # how the suite's flush empties the table
    with connection.cursor() as cursor:
        cursor.execute("SET lethe.allow_audit_truncate = 'off'")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign-key checks: the trigger answers
        try:
            with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic():
                cursor.execute("TRUNCATE compliance_auditevent CASCADE")
        finally:
            cursor.execute("RESET lethe.allow_audit_truncate")
    assert AuditEvent.objects.count() == len(some_history)
    assert audit_chain_verify().ok


def test_the_application_role_that_does_not_own_the_table_can_only_append(some_history, officer):
    """The documented production setup (docs/security.md): migrations as the owner, the app as a
    role with SELECT and INSERT on the audit table only. That role can neither change, empty nor
    unprotect the table, and it can still write events."""
    _require_postgresql()
    role = f"lethe_app_{os.getpid()}"
    with connection.cursor() as cursor:
        # Inside the test's transaction: the role and its grants are rolled back with it.
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON compliance_auditevent FROM {role}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        cursor.execute(f"SET ROLE {role}")
        try:
            for sql in (
                "ALTER TABLE compliance_auditevent DISABLE TRIGGER compliance_auditevent_append_only",
                "DROP TRIGGER compliance_auditevent_no_truncate ON compliance_auditevent",
                "TRUNCATE compliance_auditevent CASCADE",
                "UPDATE compliance_auditevent SET action = 'forged'",
                "DELETE FROM compliance_auditevent",
                "SET session_replication_role = replica",
            ):
                with pytest.raises(DatabaseError, match="owner|permission denied"), transaction.atomic():
                    cursor.execute(sql)
            services.erasure_request_create(
                subject=SubjectIdentifiers(names=("Lin Qiao",), emails=("lin@example.org",)),
                legal_ground="art17_1_b",
                actor=officer,
            )
        finally:
            cursor.execute("RESET ROLE")
    assert AuditEvent.objects.count() > len(some_history)
    assert audit_chain_verify().ok
