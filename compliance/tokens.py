"""API tokens: made with an expiry, shown once, stored as a SHA-256, checked on every call.

Replaces DRF's ``TokenAuthentication``, which stores tokens in clear and never expires them. The
header is unchanged (``Authorization: Token <token>``). A token lasts ``LETHE_API_TOKEN_DAYS``
days unless made with another lifetime; an expired or revoked token is a 401 that says so.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from compliance.audit import audit_event_record
from compliance.models import ApiToken

TOKEN_PREFIX = "lethe_"
KEYWORD = "Token"


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def api_token_row(*, user, name: str = "", days: int | None = None) -> tuple[ApiToken, str]:
    """Store a new token's SHA-256 for ``user``; return the row and the token. No audit event:
    callers are ``api_token_create`` and test factories that count the rows a call writes."""
    days = settings.LETHE_API_TOKEN_DAYS if days is None else int(days)
    if days < 1:
        raise ValueError("A token lasts at least one day.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=(name or "").strip()[:100],
        key_sha256=token_sha256(raw),
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        expires_at=timezone.now() + timedelta(days=days),
    )
    return token, raw


def api_token_create(*, user, actor, name: str = "", days: int | None = None) -> tuple[ApiToken, str]:
    """Make a token for ``user``; return the stored row and the token, which is never stored.

    ``days`` defaults to ``LETHE_API_TOKEN_DAYS``. The creation is an audit event (without the token).
    """
    with transaction.atomic():
        token, raw = api_token_row(user=user, name=name, days=days)
        audit_event_record(
            actor=actor,
            action="api_token.created",
            target=token,
            details={
                "user_id": user.pk,
                "name": token.name,
                "prefix": token.prefix,
                "expires_at": token.expires_at,
            },
        )
    return token, raw


def api_token_revoke(*, token: ApiToken, actor) -> ApiToken:
    """Revoke ``token`` now (an audit event); a revoked token never authenticates again."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        token.refresh_from_db()
        if updated:
            audit_event_record(
                actor=actor,
                action="api_token.revoked",
                target=token,
                details={"user_id": token.user_id, "prefix": token.prefix},
            )
    return token


class HashedTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <token>``: looked up by its SHA-256; expired and revoked tokens refused."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: give 'Token <token>'.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = ApiToken.objects.select_related("user").filter(key_sha256=token_sha256(raw)).first()
        if token is None or token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed(
                "The token has expired: make a new one (manage.py create_api_token)."
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        return token.user, token

    def authenticate_header(self, request):
        return KEYWORD


class HashedTokenScheme(OpenApiAuthenticationExtension):
    """The schema's description of the token header (as drf-spectacular describes DRF's own)."""

    target_class = "compliance.tokens.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'An API token with the prefix "Token" (manage.py create_api_token); tokens expire.',
        }
