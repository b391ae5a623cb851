"""Build erasure requests through the services, in any state of their life."""

from __future__ import annotations

import pytest

from requests_app import services
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import IdentityMethod, LegalGround, RejectionGround, RequestStatus

JOHN = SubjectIdentifiers(
    names=("John Smith", "Johnny Smith"),
    emails=("John.Smith@Example.com",),
    phones=("020 7946 0456",),
    addresses=("12 Baker St, London NW1 6XE",),
    account_ids=("ACC-123456",),
)

# The steps that take a new request to each status, in order.
PATH_TO: dict[str, list[str]] = {
    RequestStatus.RECEIVED: [],
    RequestStatus.IDENTITY_VERIFICATION: ["verify_identity"],
    RequestStatus.LOCATING: ["verify_identity", "start_locating"],
    RequestStatus.REVIEW: ["verify_identity", "start_locating", "submit_for_review"],
    RequestStatus.APPROVED: ["verify_identity", "start_locating", "submit_for_review", "approve"],
    RequestStatus.EXECUTING: [
        "verify_identity",
        "start_locating",
        "submit_for_review",
        "approve",
        "start_executing",
    ],
    RequestStatus.VERIFYING: [
        "verify_identity",
        "start_locating",
        "submit_for_review",
        "approve",
        "start_executing",
        "start_verifying",
    ],
    RequestStatus.COMPLETED: [
        "verify_identity",
        "start_locating",
        "submit_for_review",
        "approve",
        "start_executing",
        "start_verifying",
        "complete",
    ],
    RequestStatus.REJECTED: ["reject"],
    RequestStatus.WITHDRAWN: ["withdraw"],
}


def take_step(step: str, erasure_request, actor):
    """Run one life-cycle step with plausible arguments; return the updated request."""
    if step == "verify_identity":
        return services.erasure_request_verify_identity(
            erasure_request=erasure_request, actor=actor, method=IdentityMethod.EMAIL_LINK
        )
    if step == "reject":
        return services.erasure_request_reject(
            erasure_request=erasure_request,
            actor=actor,
            ground=RejectionGround.LEGAL_CLAIMS,
            explanation="Needed to defend a pending claim.",
        )
    return getattr(services, f"erasure_request_{step}")(erasure_request=erasure_request, actor=actor)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Hash the demo users' passwords cheaply: PBKDF2's cost is for production, not for tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_request(officer):
    """Return a function that records a request (John Smith unless told otherwise)."""

    def make(*, subject: SubjectIdentifiers = JOHN, **overrides):
        kwargs = {"legal_ground": LegalGround.CONSENT_WITHDRAWN, "actor": officer}
        kwargs.update(overrides)
        return services.erasure_request_create(subject=subject, **kwargs)

    return make


@pytest.fixture
def request_in(make_request, officer):
    """Return a function that makes a request and walks it to ``status`` through the services."""

    def build(status: str, **create_kwargs):
        erasure_request = make_request(**create_kwargs)
        for step in PATH_TO[status]:
            erasure_request = take_step(step, erasure_request, officer)
        assert erasure_request.status == status
        return erasure_request

    return build
