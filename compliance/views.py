"""Project-level pages: the role-based landing redirect and the auditor's home."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.generic import TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from compliance.models import AuditEvent


@login_required
def home(request):
    """Send each person to their role's home page; explain when they have no role yet."""
    user_roles = roles.user_roles(request.user)
    if user_roles:
        return redirect(roles.ROLE_HOME_URL_NAMES[user_roles[0]])
    if request.user.is_staff:
        return redirect("admin:index")
    return render(request, "compliance/no_role.html", status=403)


class AuditorHomeView(PermissionPageMixin, TemplateView):
    """The auditor's landing page: requests and their reports, and the latest audit events."""

    permission_required = roles.VIEW_AUDIT_LOG
    template_name = "compliance/auditor_home.html"

    def get_context_data(self, **kwargs):
        from requests_app.models import ErasureRequest

        context = super().get_context_data(**kwargs)
        context["requests"] = ErasureRequest.objects.order_by("-received_at")[:50]
        context["recent_events"] = AuditEvent.objects.order_by("-sequence")[:20]
        return context
