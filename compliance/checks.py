"""System checks for a deployment (``manage.py check --deploy``): keys that must not be defaults."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def report_signing_key_configured(app_configs, **kwargs):
    """Warn when reports are signed with a key generated into ``var/`` rather than one the operator set.

    A generated key works, but it lives on one host's disk: lose it, or run two web hosts with two
    different ones, and reports signed with it can no longer be verified by their key id.
    """
    if settings.LETHE_REPORT_SIGNING_PRIVATE_KEY_CONFIGURED:
        return []
    return [
        Warning(
            "Reports are signed with an Ed25519 key generated into LETHE_VAR_DIR.",
            hint="Set LETHE_REPORT_SIGNING_PRIVATE_KEY_FILE (or LETHE_REPORT_SIGNING_PRIVATE_KEY) to a key kept in "
            "your secret store and shared by every web host (docs/reports.md, 'Signatures').",
            id="lethe.W001",
        )
    ]
