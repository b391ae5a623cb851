"""Chromium loads every main page under Lethe's Content Security Policy without a single violation."""

from __future__ import annotations

import pytest

from tests.conftest import browser_login
from tests.factories.jobs import *  # noqa: F401,F403  (fixtures)
from tests.factories.jobs import model_train, request_reviewed
from unlearning_jobs.suppression import services as suppression

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("fast_jobs")]

#: Record every violation the page reports, before any of its own scripts run.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def watched(page):
    """The page, with CSP violations collected from the console and from the DOM event."""
    console: list[str] = []
    page.on(
        "console",
        lambda message: (
            console.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    page.add_init_script(RECORD_VIOLATIONS)
    page.csp_console = console
    return page


def _visit(page, path: str, *, wait_for: str = "main, #swagger-ui") -> list[str]:
    response = page.goto(path)
    assert response is not None and response.status == 200, f"{path}: {response.status if response else None}"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(wait_for)
    page.wait_for_timeout(300)  # let htmx and late styles load
    return page.evaluate("window.__cspViolations")


def test_the_main_pages_pass_the_csp(watched, tickets, officer, engineer, auditor, role_users):
    reviewed = request_reviewed(officer=officer)
    model = model_train(dataset_version=tickets, engineer=engineer).produced_model
    deployment = suppression.deployment_create(
        name="chat", model_version=model, policy={"mode": "redact"}, actor=engineer
    )
    pages = {
        "officer": [
            "/requests/",
            "/requests/all/",
            "/requests/new/",
            f"/requests/{reviewed.pk}/",
            "/requests/review/",
            f"/requests/{reviewed.pk}/review/",
            f"/requests/{reviewed.pk}/decision/",
            "/api/v1/docs/",
        ],
        "engineer": [
            "/jobs/",
            "/jobs/all/",
            "/datasets/",
            f"/datasets/{tickets.dataset_id}/",
            "/jobs/models/",
            f"/jobs/models/{model.pk}/",
            "/jobs/deployments/",
            f"/jobs/deployments/{deployment.pk}/",
        ],
        "auditor": [
            "/audit/",
            f"/audit/requests/{reviewed.pk}/",
            f"/audit/requests/{reviewed.pk}/report/",
            "/audit/register/",
            "/audit/verify/",
        ],
    }
    violations = {path: found for path in ["/login/"] if (found := _visit(watched, path))}
    for role, paths in pages.items():
        browser_login(watched, role)
        for path in paths:
            found = _visit(watched, path, wait_for=".swagger-ui .info" if "docs" in path else "main")
            if found:
                violations[path] = found
        watched.context.clear_cookies()

    assert violations == {}
    assert watched.csp_console == []


def test_an_inline_script_is_refused(watched, role_users):
    """The policy is live: a script injected inline into a page does not run, and is reported."""
    _visit(watched, "/login/")
    ran = watched.evaluate(
        """() => { const s = document.createElement("script"); s.textContent = "window.__ran = 1";
                  document.body.appendChild(s); return window.__ran === 1; }"""
    )
    watched.wait_for_timeout(200)
    assert ran is False
    assert any("script-src" in v for v in watched.evaluate("window.__cspViolations"))
