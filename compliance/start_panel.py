"""The start panel on each role's home page: what the role does in Lethe and one thing to try next.

A person dismisses it with a POST (``StartPanelDismissView``); the choice is kept in their session,
per role, so it stays dismissed until they log out. What to try next is chosen by the home view
from the requests and jobs there are (the demo story fills them): this module only holds the
texts and the session's memory, and imports nothing of the apps.
"""

from __future__ import annotations

from dataclasses import dataclass

SESSION_KEY = "lethe_start_panels_dismissed"

#: Per role: the panel's heading and what the role does in Lethe.
ROLE_TEXTS = {
    "officer": (
        "You are the privacy officer",
        "You record each erasure request, verify the person's identity, review the training "
        "records Lethe located for them, decide per model how they are erased (deletion, output "
        "or latent suppression), and complete the request with its signed report, within the "
        "deadline of Art. 12(3).",
    ),
    "auditor": (
        "You are the auditor",
        "You read every request, its audit log and its signed report, and check that a report is "
        "genuine and unchanged: it says what was done, with what measured effect, and what it "
        "does not guarantee. Nothing you do here changes anything.",
    ),
    "engineer": (
        "You are the ML engineer",
        "You run what the officers decide: unlearning, guards and their verification run as jobs "
        "on the cpu and gpu workers. You watch the queue, the workers and the models, and retry, "
        "cancel or kill a job that needs it.",
    ),
}
ROLES = tuple(ROLE_TEXTS)


@dataclass(frozen=True)
class StartPanel:
    role: str
    title: str
    what: str
    next_text: str
    next_url: str


def start_panel_dismissed(session, role: str) -> bool:
    """Return whether the person dismissed the role's panel in this session."""
    return role in session.get(SESSION_KEY, [])


def start_panel_dismiss(session, role: str) -> None:
    """Remember in the session that the person dismissed the role's panel."""
    if role not in ROLE_TEXTS:
        raise ValueError(f"unknown start panel {role!r}")
    dismissed = list(session.get(SESSION_KEY, []))
    if role not in dismissed:
        session[SESSION_KEY] = [*dismissed, role]


def start_panel_for(session, role: str, *, next_text: str, next_url: str) -> StartPanel | None:
    """Return the role's panel with its next step, or None when the person dismissed it."""
    if start_panel_dismissed(session, role):
        return None
    title, what = ROLE_TEXTS[role]
    return StartPanel(role=role, title=title, what=what, next_text=next_text, next_url=next_url)
