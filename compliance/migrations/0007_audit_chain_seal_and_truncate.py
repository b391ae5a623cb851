"""Seal every audit event with an HMAC of the audit chain key, and refuse TRUNCATE on PostgreSQL.

Events written before this migration are sealed here, under the key configured when it runs:
history up to now is anchored as it stands (it was as open to rewriting before as it is now),
and from here on a rewrite needs the key, which the database never holds.

The append-only trigger of 0002 refuses UPDATE and DELETE row by row; TRUNCATE bypasses row
triggers, so a statement trigger refuses it too. Django's test runner empties tables between
transactional tests with TRUNCATE: only in a database whose name starts with ``test_`` (the
prefix Django gives test databases, which the application's role cannot rename) and whose
setting ``lethe.allow_audit_truncate`` is ``on`` is it let through. This migration turns that
setting on for a ``test_`` database only; in production the name check refuses TRUNCATE whatever
a session sets (docs/security.md, "The audit log").
"""

import hashlib
import hmac

from django.db import migrations, models

TRUNCATE_SQL = r"""
CREATE OR REPLACE FUNCTION compliance_auditevent_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_database() LIKE 'test\_%'
       AND current_setting('lethe.allow_audit_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'compliance_auditevent is append-only: TRUNCATE refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS compliance_auditevent_no_truncate ON compliance_auditevent;
CREATE TRIGGER compliance_auditevent_no_truncate
    BEFORE TRUNCATE ON compliance_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_auditevent_refuse_truncate();
"""

DROP_TRUNCATE_SQL = """
DROP TRIGGER IF EXISTS compliance_auditevent_no_truncate ON compliance_auditevent;
DROP FUNCTION IF EXISTS compliance_auditevent_refuse_truncate();
"""


def _seal(entry_hash: str, key: bytes) -> str:
    # The same as compliance.audit.chain_mac, written out: a migration keeps its own copy.
    return hmac.new(key, b"lethe.audit-chain.v1:" + entry_hash.encode("ascii"), hashlib.sha256).hexdigest()


def seal_existing_events(apps, schema_editor):
    from django.conf import settings

    key = settings.LETHE_AUDIT_CHAIN_KEY
    key_id = "audit-hmac:" + hashlib.sha256(b"lethe.key-id:" + key).hexdigest()[:12]
    connection = schema_editor.connection
    postgresql = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, entry_hash FROM compliance_auditevent WHERE entry_mac = ''")
        rows = cursor.fetchall()
        if not rows:
            return
        if postgresql:  # the migration runs as the table's owner, who may switch its trigger off
            cursor.execute(
                "ALTER TABLE compliance_auditevent DISABLE TRIGGER compliance_auditevent_append_only"
            )
        cursor.executemany(
            "UPDATE compliance_auditevent SET entry_mac = %s, mac_key_id = %s WHERE id = %s",
            [(_seal(entry_hash, key), key_id, pk) for pk, entry_hash in rows],
        )
        if postgresql:
            cursor.execute(
                "ALTER TABLE compliance_auditevent ENABLE TRIGGER compliance_auditevent_append_only"
            )


def refuse_truncate(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    schema_editor.execute(TRUNCATE_SQL, params=None)
    name = connection.settings_dict["NAME"]
    if name.startswith("test_"):
        quoted = connection.ops.quote_name(name)
        schema_editor.execute(f"ALTER DATABASE {quoted} SET lethe.allow_audit_truncate = 'on'", params=None)
        schema_editor.execute("SET lethe.allow_audit_truncate = 'on'", params=None)


def allow_truncate(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRUNCATE_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0006_api_token")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="entry_mac",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="mac_key_id",
            field=models.CharField(blank=True, default="", max_length=40),
        ),
        migrations.RunPython(seal_existing_events, migrations.RunPython.noop),
        migrations.RunPython(refuse_truncate, allow_truncate),
    ]
