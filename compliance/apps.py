from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance: audit log and reports"

    def ready(self):
        from django.db.models.signals import post_migrate

        from compliance import checks  # noqa: F401  (registers the deployment checks)
        from compliance.roles import roles_sync

        # Every app's permissions must exist before groups get them, so run after each app.
        post_migrate.connect(roles_sync, dispatch_uid="compliance.roles_sync")
