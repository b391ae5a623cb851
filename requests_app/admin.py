from django.contrib import admin

from requests_app.models import ErasureRequest


@admin.register(ErasureRequest)
class ErasureRequestAdmin(admin.ModelAdmin):
    """Read-only: a request changes only through its services, which write the audit log."""

    list_display = ("reference", "status", "received_at", "due_at", "assigned_officer")
    list_filter = ("status", "legal_ground", "channel")
    search_fields = ("reference",)
    exclude = ("identifiers_encrypted",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
