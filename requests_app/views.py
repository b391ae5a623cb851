"""Pages for privacy officers."""
from django.utils import timezone
from django.views.generic import ListView

from compliance import roles
from compliance.access import PermissionPageMixin
from requests_app.models import ErasureRequest


class OfficerHomeView(PermissionPageMixin, ListView):
    """Open requests, the nearest deadline first, so what is due is seen at once."""

    permission_required = roles.MANAGE_REQUESTS
    template_name = "requests_app/officer_home.html"
    context_object_name = "open_requests"

    def get_queryset(self):
        return ErasureRequest.objects.open().order_by("due_at").select_related("assigned_officer")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["now"] = timezone.now()
        return context
