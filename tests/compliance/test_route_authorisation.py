"""Authorisation matrix: every URL pattern, every role and anonymous, each method its view answers.

The routes are read from Django's resolver, not listed by hand, so a route added anywhere in
the project fails this test until a row for it is added to ``EXPECTED`` below: whoever adds a
route decides, in one visible table, who may use it. Each call runs against real objects built
through the services (``api_world``), inside a savepoint that is rolled back, so no call sees
what another one changed and the order of the rows does not matter.

A POST carries an empty body: an allowed role gets past the permission check and is refused
for its input (400, or a page's 200 with form errors, or its redirect back), never a 403; a
role without the permission gets 403 (302 to the login page when anonymous, 401 on the API).
"""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories.api_world import admin_user, api_token, api_world  # noqa: F401  (fixtures)
from tests.factories.jobs import data_dir  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ROLES = ("anonymous", "officer", "auditor", "engineer", "admin")

#: Values for the named path segments other than ``pk`` (which comes from ``api_world``).
SEGMENT_VALUES = {"file_format": "json"}
#: Slug segments are walked with each value the views act on; an unknown value must be 404.
ACTION_VALUES = {
    "requests/<int:pk>/actions/<slug:action>/": ("withdraw", "reveal-identifiers", "no-such-action"),
    "jobs/<int:pk>/actions/<slug:action>/": ("cancel", "retry", "kill", "no-such-action"),
    "api/v1/jobs/<int:pk>/actions/<slug:action>/": ("cancel", "retry", "kill", "no-such-action"),
}
#: The Django admin is summarised by its prefix: these two pages stand for all of it.
ADMIN_PREFIX = "admin/"
ADMIN_SAMPLES = ("admin/", "admin/auth/user/")

# "METHOD route[ slug]": statuses for (anonymous, officer, auditor, engineer, admin).
# 302 for anonymous on a page is the redirect to the login page; the admin is a superuser.
EXPECTED: dict[str, tuple[int, int, int, int, int]] = {
    # --- sign-in and home
    "GET ": (302, 302, 302, 302, 302),
    "GET login/": (200, 200, 200, 200, 200),
    "POST login/": (200, 200, 200, 200, 200),
    "PUT login/": (200, 200, 200, 200, 200),
    "POST logout/": (302, 302, 302, 302, 302),
    "POST start-panel/dismiss/": (302, 302, 302, 302, 302),
    # --- auditor's pages and reports
    "GET audit/": (302, 403, 200, 403, 200),
    "GET audit/requests/<int:pk>/": (302, 403, 200, 403, 200),
    "GET audit/requests/<int:pk>/report/": (302, 200, 200, 403, 200),
    "GET audit/^requests/(?P<pk>[0-9]+)/report\\.(?P<file_format>json|pdf)$": (302, 200, 200, 403, 200),
    "POST audit/requests/<int:pk>/report/issue/": (302, 302, 403, 403, 302),
    "POST audit/requests/<int:pk>/report/complete/": (302, 302, 403, 403, 302),
    "GET audit/register/": (302, 403, 200, 403, 200),
    "GET audit/register.csv": (302, 403, 200, 403, 200),
    "GET audit/verify/": (302, 200, 200, 403, 200),
    "POST audit/verify/": (302, 400, 400, 403, 400),
    # --- officer's pages: requests, review, decision
    "GET requests/<int:pk>/decision/": (302, 200, 200, 403, 200),
    "POST requests/<int:pk>/decision/": (302, 400, 403, 403, 400),
    "GET requests/review/": (302, 200, 403, 403, 200),
    "GET requests/<int:pk>/review/": (302, 200, 403, 403, 200),
    "POST requests/<int:pk>/review/decide/": (302, 302, 403, 403, 302),
    "POST requests/<int:pk>/review/confirm-above/": (302, 302, 403, 403, 302),
    "POST requests/<int:pk>/review/nothing-found/": (302, 302, 403, 403, 302),
    "POST requests/<int:pk>/review/locate/": (302, 302, 403, 403, 302),
    "GET requests/": (302, 200, 403, 403, 200),
    "POST requests/": (302, 200, 403, 403, 200),
    "GET requests/all/": (302, 200, 200, 403, 200),
    "POST requests/all/": (302, 200, 200, 403, 200),
    "GET requests/new/": (302, 200, 403, 403, 200),
    "POST requests/new/": (302, 400, 403, 403, 400),
    "PUT requests/new/": (302, 400, 403, 403, 400),
    "GET requests/<int:pk>/": (302, 200, 200, 403, 200),
    "POST requests/<int:pk>/actions/<slug:action>/ withdraw": (302, 302, 403, 403, 302),
    "POST requests/<int:pk>/actions/<slug:action>/ reveal-identifiers": (302, 200, 403, 403, 200),
    "POST requests/<int:pk>/actions/<slug:action>/ no-such-action": (404, 404, 404, 404, 404),
    # --- data sets
    "GET datasets/": (302, 200, 403, 200, 200),
    "POST datasets/upload/": (302, 403, 403, 400, 400),
    "GET datasets/<int:pk>/": (302, 200, 403, 200, 200),
    "GET datasets/versions/<int:pk>/progress.json": (302, 200, 403, 200, 200),
    "POST datasets/versions/<int:pk>/resume/": (302, 403, 403, 302, 302),
    "POST datasets/hits/<int:pk>/override/": (302, 404, 403, 403, 404),
    # --- engineer's pages: jobs, models, deployments, verification
    "GET jobs/": (302, 403, 403, 200, 200),
    "POST jobs/probe/": (302, 403, 403, 302, 302),
    "GET jobs/<int:pk>/verification/": (302, 200, 404, 200, 200),
    "GET jobs/requests/<int:pk>/verification/": (302, 200, 200, 200, 200),
    "GET jobs/all/": (302, 200, 200, 200, 200),
    "GET jobs/<int:pk>/": (302, 200, 404, 200, 200),
    "GET jobs/<int:pk>/state.json": (302, 200, 404, 200, 200),
    "POST jobs/<int:pk>/actions/<slug:action>/ cancel": (302, 403, 403, 302, 302),
    "POST jobs/<int:pk>/actions/<slug:action>/ retry": (302, 403, 403, 302, 302),
    "POST jobs/<int:pk>/actions/<slug:action>/ kill": (302, 403, 403, 302, 302),
    "POST jobs/<int:pk>/actions/<slug:action>/ no-such-action": (302, 403, 403, 404, 404),
    "POST jobs/<int:pk>/params/": (302, 403, 403, 302, 302),
    "GET jobs/models/": (302, 200, 200, 200, 200),
    "POST jobs/models/register/": (302, 403, 403, 400, 400),
    "GET jobs/models/<int:pk>/": (302, 200, 200, 200, 200),
    "POST jobs/train/": (302, 403, 403, 400, 400),
    "POST jobs/models/import/": (302, 403, 403, 400, 400),
    "POST jobs/finetune/": (302, 403, 403, 400, 400),
    "GET jobs/deployments/": (302, 200, 200, 200, 200),
    "POST jobs/deployments/": (302, 403, 403, 400, 400),
    "GET jobs/deployments/<int:pk>/": (302, 200, 200, 200, 200),
    "POST jobs/deployments/<int:pk>/": (302, 400, 403, 400, 400),
    "GET jobs/derived-stores/": (302, 200, 200, 200, 200),
    "POST jobs/derived-stores/": (302, 403, 403, 400, 400),
    # --- operations
    "GET metrics": (401, 403, 403, 200, 200),
    # --- REST API
    "GET api/v1/jobs/<int:pk>/verification/": (401, 200, 404, 200, 200),
    "GET api/v1/requests/<int:pk>/verification/": (401, 200, 200, 200, 200),
    "POST api/v1/models/<int:pk>/generate": (401, 400, 403, 400, 400),
    "POST api/v1/models/<int:pk>/generate/": (401, 400, 403, 400, 400),
    "GET api/v1/deployments/<int:pk>/rules.json": (401, 200, 200, 200, 200),
    "GET api/v1/derived-stores/": (401, 200, 200, 200, 200),
    "POST api/v1/derived-stores/": (401, 403, 403, 400, 400),
    "GET api/v1/jobs/": (401, 200, 200, 200, 200),
    "POST api/v1/jobs/": (401, 403, 403, 400, 400),
    "GET api/v1/jobs/<int:pk>/": (401, 200, 404, 200, 200),
    "POST api/v1/jobs/<int:pk>/actions/<slug:action>/ cancel": (401, 403, 403, 200, 200),
    "POST api/v1/jobs/<int:pk>/actions/<slug:action>/ retry": (401, 403, 403, 409, 409),
    "POST api/v1/jobs/<int:pk>/actions/<slug:action>/ kill": (401, 403, 403, 409, 409),
    "POST api/v1/jobs/<int:pk>/actions/<slug:action>/ no-such-action": (401, 403, 403, 404, 404),
    "POST api/v1/jobs/<int:pk>/params/": (401, 403, 403, 400, 400),
    "GET api/v1/models/": (401, 200, 200, 200, 200),
    "POST api/v1/models/": (401, 403, 403, 400, 400),
    "GET api/v1/models/<int:pk>/": (401, 200, 200, 200, 200),
    "POST api/v1/requests/<int:pk>/actions/approve/": (401, 409, 403, 403, 409),
    "GET api/v1/requests/<int:pk>/decisions/": (401, 200, 200, 403, 200),
    "POST api/v1/requests/<int:pk>/actions/locate/": (401, 200, 403, 403, 200),
    "GET api/v1/requests/<int:pk>/matches/": (401, 200, 200, 403, 200),
    "POST api/v1/requests/<int:pk>/matches/review/": (401, 400, 403, 403, 400),
    "POST api/v1/requests/<int:pk>/matches/nothing-found/": (401, 400, 403, 403, 400),
    "GET api/v1/requests/": (401, 200, 200, 403, 200),
    "POST api/v1/requests/": (401, 400, 403, 403, 400),
    "POST api/v1/requests/search/": (401, 400, 400, 403, 400),
    "GET api/v1/requests/<int:pk>/": (401, 200, 200, 403, 200),
    "GET api/v1/requests/<int:pk>/events/": (401, 200, 200, 403, 200),
    "POST api/v1/requests/<int:pk>/actions/verify-identity/": (401, 400, 403, 403, 400),
    "POST api/v1/requests/<int:pk>/actions/start-locating/": (401, 200, 403, 403, 200),
    "POST api/v1/requests/<int:pk>/actions/submit-for-review/": (401, 409, 403, 403, 409),
    "POST api/v1/requests/<int:pk>/actions/start-executing/": (401, 409, 403, 403, 409),
    "POST api/v1/requests/<int:pk>/actions/start-verifying/": (401, 409, 403, 403, 409),
    "POST api/v1/requests/<int:pk>/actions/complete/": (401, 409, 403, 403, 409),
    "POST api/v1/requests/<int:pk>/actions/extend/": (401, 400, 403, 403, 400),
    "POST api/v1/requests/<int:pk>/actions/assign/": (401, 400, 403, 403, 400),
    "POST api/v1/requests/<int:pk>/actions/scope/": (401, 200, 403, 403, 200),
    "POST api/v1/requests/<int:pk>/actions/reject/": (401, 400, 403, 403, 400),
    "POST api/v1/requests/<int:pk>/actions/withdraw/": (401, 200, 403, 403, 200),
    "POST api/v1/requests/<int:pk>/actions/reveal-identifiers/": (401, 200, 403, 403, 200),
    "GET api/v1/datasets/": (401, 200, 403, 200, 200),
    "POST api/v1/datasets/": (401, 403, 403, 400, 400),
    "GET api/v1/datasets/<int:pk>/": (401, 200, 403, 200, 200),
    "POST api/v1/datasets/versions/<int:pk>/resume/": (401, 403, 403, 200, 200),
    "GET api/v1/requests/<int:pk>/report.json": (401, 200, 200, 403, 200),
    "GET api/v1/requests/<int:pk>/report.pdf": (401, 200, 200, 403, 200),
    "GET api/v1/requests/<int:pk>/reports/": (401, 200, 200, 403, 200),
    "POST api/v1/requests/<int:pk>/report/issue/": (401, 409, 403, 403, 409),
    "POST api/v1/requests/<int:pk>/report/complete/": (401, 409, 403, 403, 409),
    "POST api/v1/reports/verify/": (401, 400, 400, 403, 400),
    "GET api/v1/register.csv": (401, 403, 200, 403, 200),
    # --- API schema and docs; any other path under /api/ is a JSON 404
    "GET api/v1/reports/keys/": (200, 200, 200, 200, 200),
    "GET api/v1/schema/": (401, 200, 200, 200, 200),
    "GET api/v1/docs/": (401, 200, 200, 200, 200),
    "GET ^api/": (404, 404, 404, 404, 404),
    "POST ^api/": (404, 404, 404, 404, 404),
    "PUT ^api/": (404, 404, 404, 404, 404),
    "PATCH ^api/": (404, 404, 404, 404, 404),
    "DELETE ^api/": (404, 404, 404, 404, 404),
    # --- the Django admin, summarised by its prefix (ADMIN_SAMPLES)
    "GET admin/": (302, 302, 302, 302, 200),
    "GET admin/auth/user/": (302, 302, 302, 302, 200),
}


def _routes(resolver=None, prefix: str = ""):
    """Yield ``(route text, URLPattern)`` for every pattern, includes flattened."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        text = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry, text)
        elif isinstance(entry, URLPattern):
            yield text, entry


def _methods(pattern: URLPattern) -> list[str]:
    """Return the HTTP methods the pattern's view answers (GET for a plain function)."""
    view_class = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    if view_class is None:
        return ["GET"]
    allowed = getattr(view_class, "http_method_names", ["get"])
    return [
        m.upper()
        for m in ("get", "post", "put", "patch", "delete")
        if m in allowed and hasattr(view_class, m)
    ]


def _concrete_path(route: str, *, pk: int, slug: str | None) -> str:
    """Return the URL path for a route text, with its segments filled in."""

    def segment(name: str) -> str:
        if name == "pk":
            return str(pk)
        if name in SEGMENT_VALUES:
            return SEGMENT_VALUES[name]
        if slug is not None:
            return slug
        raise LookupError(f"No value for <{name}> in {route!r}: add it to SEGMENT_VALUES.")

    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda match: segment(match.group(1)), route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: segment(match.group(1)), path)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".")
    return "/" + path


def _calls(world):
    """Yield ``(table key, method, URL path)`` for every route and method to check.

    A pattern with the same route text as an earlier one is never reached (the resolver stops
    at the first): ``api/v1/requests/<int:pk>/actions/approve/`` of the decision API shadows the
    workflow's plain approval on purpose (compliance/api_urls.py), so it is walked once.
    """
    admin_done = False
    seen: set[str] = set()
    for route, pattern in _routes():
        if route in seen:
            continue
        seen.add(route)
        if route.startswith(ADMIN_PREFIX):
            if not admin_done:
                admin_done = True
                for sample in ADMIN_SAMPLES:
                    yield f"GET {sample}", "GET", "/" + sample
            continue
        pk = world.id_for(route) if "pk>" in route else 0
        for method in _methods(pattern):
            for slug in ACTION_VALUES.get(route, (None,)):
                key = f"{method} {route}" + (f" {slug}" if slug else "")
                yield key, method, _concrete_path(route, pk=pk, slug=slug)


def _status(client: Client, method: str, path: str, headers: dict) -> int:
    """Make one call inside a savepoint that is rolled back, and return its status.

    The client's cookies are put back too: ``POST logout/`` must not log the role out for the
    rows after it.
    """
    cookies = client.cookies
    client.cookies = cookies.__class__(cookies)
    with transaction.atomic():
        if method == "GET":
            response = client.get(path, headers=headers)
        elif path.startswith("/api/"):
            response = client.generic(method, path, "{}", content_type="application/json", headers=headers)
        else:
            response = client.generic(
                method, path, "", content_type="application/x-www-form-urlencoded", headers=headers
            )
        transaction.set_rollback(True)
    client.cookies = cookies
    return response.status_code


def _clients(role_users, admin_user):
    """Return ``{role: (client, headers for the API)}``: sessions for pages, tokens for the API."""
    users = {**role_users, "admin": admin_user}
    clients = {"anonymous": (Client(), {})}
    for role in ROLES[1:]:
        client = Client()
        client.force_login(users[role])
        clients[role] = (client, {"authorization": f"Token {api_token(users[role])}"})
    return clients


def test_every_route_answers_each_role_as_the_table_says(api_world, role_users, admin_user):
    clients = _clients(role_users, admin_user)
    observed: dict[str, tuple[int, ...]] = {}
    for key, method, path in _calls(api_world):
        statuses = []
        for role in ROLES:
            client, api_headers = clients[role]
            statuses.append(_status(client, method, path, api_headers if path.startswith("/api/") else {}))
        observed[key] = tuple(statuses)

    missing = [key for key in observed if key not in EXPECTED]
    gone = [key for key in EXPECTED if key not in observed]
    wrong = {
        key: (EXPECTED[key], got) for key, got in observed.items() if key in EXPECTED and EXPECTED[key] != got
    }
    report = []
    if missing:
        report.append(
            "Routes missing from EXPECTED (decide who may use them, then add these rows):\n"
            + "\n".join(f"    {key!r}: {observed[key]}," for key in missing)
        )
    if gone:
        report.append(
            "Rows of EXPECTED for routes that no longer exist (remove them):\n"
            + "\n".join(f"    {key!r}" for key in gone)
        )
    if wrong:
        report.append(
            f"Statuses differ from EXPECTED, as (expected, observed) for {ROLES}:\n"
            + "\n".join(f"    {key!r}: {pair}" for key, pair in wrong.items())
        )
    assert not report, "\n\n".join(report)


def test_a_route_not_in_the_table_is_named_in_the_failure(api_world):
    """The walk reads the resolver itself: every pattern, includes flattened, admin by its prefix."""
    keys = [key for key, _method, _path in _calls(api_world)]
    assert "GET api/v1/jobs/" in keys and "POST api/v1/requests/" in keys and "GET requests/new/" in keys
    assert sum(key.startswith(f"GET {ADMIN_PREFIX}") for key in keys) == len(ADMIN_SAMPLES)
    assert len(keys) == len(set(keys)), "two routes map to one row of the table"
