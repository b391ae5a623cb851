"""Admin registrations: read-only lists; changes go through the services, which write the audit log."""

from django.contrib import admin

from unlearning_jobs.models import DerivedDataStore, DerivedEntry


class DerivedEntryInline(admin.TabularInline):
    model = DerivedEntry
    fields = ("subject_key_hash", "record_key_hash", "description", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DerivedDataStore)
class DerivedDataStoreAdmin(admin.ModelAdmin):
    """Read-only: a store is registered on the derived-stores page, the API or
    ``manage.py register_derived_store`` (each an audit event); its entries go when a request's
    latent suppression deletes them."""

    list_display = ("name", "kind", "owner", "location", "dataset", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "owner", "location")
    inlines = (DerivedEntryInline,)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
