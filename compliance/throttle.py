"""Sign-in throttling: failed passwords counted per username and client address in Django's cache.

DRF's throttles guard the API (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``); the login page is a
plain Django form, so it has this small counter instead of django-axes (whose middleware and
authentication backend broke the existing sign-in). After ``LETHE_LOGIN_MAX_FAILURES`` wrong
passwords for one username from one address within ``LETHE_LOGIN_WINDOW_SECONDS``, every
further attempt, right or wrong, is refused until the window has passed; a right password before
that clears the count. ``LETHE_LOGIN_MAX_FAILURES_PER_ADDRESS`` bounds one address across all
usernames (password spraying). Counting per username and address, not per username alone, keeps
an attacker from locking a person out from elsewhere.

The cache must be shared by every web process (``LETHE_CACHE_URL``, docs/security.md): with the
per-process default each process counts on its own.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


def client_address(request) -> str:
    """Return the caller's address as DRF's throttles see it (``NUM_PROXIES`` trusted proxies)."""
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded:
        addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
        if addresses:
            return addresses[-min(int(proxies), len(addresses))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(*parts: str) -> str:
    # Hashed: cache keys must be short and printable, and a username is not a cache key's business.
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"lethe:login-failures:{digest}"


def _keys(request, username: str) -> list[tuple[str, int]]:
    address = client_address(request)
    return [
        (_key("user+address", (username or "").strip().lower(), address), settings.LETHE_LOGIN_MAX_FAILURES),
        (_key("address", address), settings.LETHE_LOGIN_MAX_FAILURES_PER_ADDRESS),
    ]


def _until_key(key: str) -> str:
    return key + ":until"


def login_attempt_refusal(request, username: str) -> str | None:
    """Count a sign-in attempt before its password is checked; return why it is refused, or None.

    The count goes up first and atomically (``cache.incr``), so parallel attempts cannot all slip
    under the limit before any of them is counted; a right password takes its attempt back
    (``login_success``). Refused attempts are not checked at all, right or wrong.
    """
    window = settings.LETHE_LOGIN_WINDOW_SECONDS
    now = time.time()
    refused_until = None
    for key, limit in _keys(request, username):
        if cache.add(key, 0, timeout=window):
            cache.set(_until_key(key), now + window, timeout=window)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: this attempt starts a new window
            cache.set(key, 1, timeout=window)
            cache.set(_until_key(key), now + window, timeout=window)
            count = 1
        if count > limit:
            until = cache.get(_until_key(key)) or now + window
            refused_until = max(refused_until or 0, until)
    if refused_until is None:
        return None
    wait = max(1, math.ceil(refused_until - now))
    logger.warning("login.throttled", extra={"retry_after_seconds": wait})
    minutes = math.ceil(wait / 60)
    return (
        "Too many failed sign-ins for this account from your address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def login_success(request, username: str) -> None:
    """Forget the username's failures from this address, and give the address its attempt back."""
    (user_key, _), (address_key, _) = _keys(request, username)
    cache.delete_many([user_key, _until_key(user_key)])
    try:
        cache.decr(address_key)
    except ValueError:  # the address's window has ended meanwhile: nothing to give back
        return
