"""System checks for a deployment (``manage.py check --deploy``): keys that must not be defaults."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


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


@register(Tags.security, deploy=True)
def guard_master_key_configured(app_configs, **kwargs):
    """Refuse a deployment whose guard rules would be hashed under a key generated into ``var/``.

    Every deployment's guard key derives from the master key (``unlearning_jobs/suppression/keys.py``):
    a generated one is lost with the host's disk, and with it every rule set's key id.
    """
    if settings.LETHE_GUARD_MASTER_KEY_CONFIGURED:
        return []
    return [
        Error(
            "LETHE_GUARD_MASTER_KEY is not set: guard rules are hashed under keys derived from one "
            "generated into LETHE_VAR_DIR.",
            hint="Set LETHE_GUARD_MASTER_KEY to at least 32 random bytes kept in your secret store, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))' (docs/security.md, 'Keys').",
            id="lethe.E001",
        )
    ]


@register(Tags.security, deploy=True)
def audit_chain_key_configured(app_configs, **kwargs):
    """Refuse a deployment whose audit chain is sealed with a key generated into ``var/``.

    The key must live apart from the database (a secret store): whoever holds both can rewrite
    history and re-seal it.
    """
    if settings.LETHE_AUDIT_CHAIN_KEY_CONFIGURED:
        return []
    return [
        Error(
            "LETHE_AUDIT_CHAIN_KEY is not set: the audit log is sealed with a key generated into LETHE_VAR_DIR.",
            hint="Set LETHE_AUDIT_CHAIN_KEY to at least 32 random bytes kept in your secret store, away from the "
            "database's backups (docs/security.md, 'The audit log').",
            id="lethe.E002",
        )
    ]
