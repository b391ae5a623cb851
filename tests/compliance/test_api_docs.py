"""The API's schema and its Swagger UI: signed-in users only, and no script from a CDN."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_anonymous_callers_get_neither_the_schema_nor_the_docs():
    anonymous = Client()
    assert anonymous.get("/api/v1/schema/").status_code == 401
    assert anonymous.get("/api/v1/docs/").status_code == 401


def test_the_docs_load_swagger_ui_from_the_pinned_local_copy(client, auditor):
    client.force_login(auditor)
    html = client.get("/api/v1/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn." not in html and "@latest" not in html
    assert client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").status_code == 200
