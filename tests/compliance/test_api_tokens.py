"""API tokens are stored as SHA-256 only, shown once, and expire."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from compliance.models import ApiToken, AuditEvent
from compliance.tokens import api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db


def _get(token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/requests/")


def test_the_database_holds_no_raw_token(officer):
    out = StringIO()
    call_command("create_api_token", "officer", "--name", "sync", stdout=out, stderr=StringIO())
    raw = out.getvalue().strip()
    assert raw.startswith("lethe_") and len(raw) > 40
    assert _get(raw).status_code == 200

    # Every text column of every table: the token is nowhere, its SHA-256 is.
    with connection.cursor() as cursor:
        found = []
        for table in connection.introspection.table_names(cursor):
            columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                found += [(table, col) for col, value in zip(columns, row, strict=True) if raw in str(value)]
    assert found == []
    stored = ApiToken.objects.get(user=officer)
    assert stored.prefix == raw[:12] and stored.key_sha256 != raw and len(stored.key_sha256) == 64
    assert AuditEvent.objects.filter(action="api_token.created", object_id=str(stored.pk)).exists()


def test_a_token_expires(officer, settings):
    token, raw = api_token_create(user=officer, actor=None, days=1)
    assert abs(token.expires_at - (timezone.now() + timedelta(days=1))) < timedelta(minutes=1)
    assert _get(raw).status_code == 200

    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = _get(raw)
    assert expired.status_code == 401 and expired["WWW-Authenticate"] == "Token"
    assert expired.json() == {
        "detail": "The token has expired: make a new one (manage.py create_api_token).",
        "code": "authentication_failed",
    }
    settings.LETHE_API_TOKEN_DAYS = 7
    default, _ = api_token_create(user=officer, actor=None)
    assert timedelta(days=6, hours=23) < default.expires_at - timezone.now() <= timedelta(days=7)


def test_a_revoked_or_unknown_token_is_refused(officer):
    token, raw = api_token_create(user=officer, actor=None)
    api_token_revoke(token=token, actor=officer)
    assert _get(raw).status_code == 401
    assert _get("lethe_" + "x" * 43).status_code == 401
    assert AuditEvent.objects.filter(action="api_token.revoked", actor=officer).count() == 1
