"""Lethe's roles, as Django groups with permissions.

A role is a group; what it may do is a set of permissions. Views and API classes check
permissions, never group names, so an administrator can grant one permission to one person
without inventing a role.
"""

from __future__ import annotations

from django.db.models import TextChoices


class Role(TextChoices):
    PRIVACY_OFFICER = "privacy_officer", "Privacy officer"
    AUDITOR = "auditor", "Auditor"
    ENGINEER = "engineer", "ML engineer"


# Permission codenames are "app_label.codename"; they are declared in the models' Meta.
VIEW_REQUESTS = "requests_app.view_erasurerequest"
MANAGE_REQUESTS = "requests_app.manage_erasure_requests"
REVEAL_IDENTIFIERS = "requests_app.reveal_identifiers"
VIEW_AUDIT_LOG = "compliance.view_auditevent"
DOWNLOAD_REPORTS = "compliance.download_reports"
VIEW_JOBS = "unlearning_jobs.view_workerheartbeat"
OPERATE_JOBS = "unlearning_jobs.operate_jobs"

ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.PRIVACY_OFFICER: (VIEW_REQUESTS, MANAGE_REQUESTS, REVEAL_IDENTIFIERS, VIEW_JOBS),
    Role.AUDITOR: (VIEW_REQUESTS, VIEW_AUDIT_LOG, DOWNLOAD_REPORTS),
    Role.ENGINEER: (VIEW_JOBS, OPERATE_JOBS),
}

# Where each role lands after logging in, in order of precedence for a person with several roles.
ROLE_HOME_URL_NAMES: dict[Role, str] = {
    Role.PRIVACY_OFFICER: "requests_app:home",
    Role.AUDITOR: "compliance:home",
    Role.ENGINEER: "unlearning_jobs:home",
}


def user_roles(user) -> list[Role]:
    """Return the user's roles in precedence order (officer, auditor, engineer)."""
    if not user.is_authenticated:
        return []
    names = set(user.groups.values_list("name", flat=True))
    return [role for role in Role if role.value in names]


def roles_sync(sender=None, **kwargs) -> None:
    """Create each role's group and give it exactly its permissions; safe to run repeatedly.

    Connected to ``post_migrate``; permissions of apps migrated later are picked up on their own
    ``post_migrate``, so at the end of ``migrate`` every group is complete.
    """
    from django.contrib.auth.models import Group, Permission

    for role, perm_names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        wanted = []
        for perm_name in perm_names:
            app_label, codename = perm_name.split(".", 1)
            perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:
                wanted.append(perm)
        group.permissions.add(*wanted)


def actor_may(actor, *permissions: str, system: bool = False) -> bool:
    """Return whether ``actor`` may act with any one of ``permissions``.

    The one check every service makes before it changes anything. ``actor`` None is the system
    (a task, a hook of another stage): it may act only where the caller says ``system=True``.
    An inactive account may do nothing, whatever its permissions.
    """
    if actor is None:
        return system
    return bool(actor.is_active and any(actor.has_perm(permission) for permission in permissions))


def actor_name(actor) -> str:
    """Return who acted, for a refusal's message: the username, or "the system" for None."""
    return actor.get_username() if actor is not None else "the system"
