"""Project-level pages: the role-based landing redirect, the auditor's pages (read-only), metrics."""

from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from compliance.audit import audit_chain_verify_incremental
from compliance.metrics import LetheCollector, metrics_access_allowed
from compliance.models import AuditEvent
from compliance.reports.selectors import audit_report_newest, audit_report_versions, auditor_request_rows
from compliance.start_panel import ROLES, start_panel_dismiss, start_panel_for
from requests_app.models import ErasureRequest

# As many as the officer's list: rendering rows is most of the page's time (docs/performance.md,
# "Pages and API under load").
AUDITOR_REQUESTS_PER_PAGE = 50


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
    """Every request with its status, deadline outcome, frameworks applied and report; the latest events."""

    permission_required = roles.VIEW_AUDIT_LOG
    template_name = "compliance/auditor_home.html"

    def get_context_data(self, **kwargs):

        context = super().get_context_data(**kwargs)
        paginator = Paginator(
            ErasureRequest.objects.order_by("-received_at", "-pk"), AUDITOR_REQUESTS_PER_PAGE
        )
        page = paginator.get_page(self.request.GET.get("page"))
        context["page"] = page
        context["rows"] = auditor_request_rows(queryset=page.object_list)
        context["recent_events"] = AuditEvent.objects.order_by("-sequence")[:20]
        newest = audit_report_newest()
        if newest is not None:
            next_text = f"Open the report of {newest.erasure_request.reference} and verify it"
            next_url = reverse("compliance:report", kwargs={"pk": newest.erasure_request_id})
        else:
            next_text, next_url = "Verify a report you were sent", reverse("compliance:verify")
        context["start_panel"] = start_panel_for(
            self.request.session, "auditor", next_text=next_text, next_url=next_url
        )
        return context


class AuditorRequestView(PermissionPageMixin, TemplateView):
    """One request for the auditor: its audit log with the chain's verification, and its reports."""

    permission_required = roles.VIEW_AUDIT_LOG
    template_name = "compliance/auditor_request.html"

    def get_context_data(self, **kwargs):

        context = super().get_context_data(**kwargs)
        erasure_request = get_object_or_404(ErasureRequest, pk=self.kwargs["pk"])
        events = list(
            AuditEvent.objects.filter(
                object_type=erasure_request._meta.label_lower, object_id=str(erasure_request.pk)
            ).order_by("sequence")
        )
        report_ids = list(erasure_request.audit_reports.values_list("pk", flat=True))
        report_events = list(
            AuditEvent.objects.filter(
                object_type="compliance.auditreport", object_id__in=[str(pk) for pk in report_ids]
            ).order_by("sequence")
        )
        # Only the events since the last verified head: the full walk is verify_audit_log's.
        chain = audit_chain_verify_incremental()
        broken_at = chain.first_bad_sequence
        context.update(
            {
                "erasure_request": erasure_request,
                "row": auditor_request_rows(queryset=[erasure_request])[0],
                "events": [
                    (event, broken_at is not None and event.sequence >= broken_at) for event in events
                ],
                "report_events": report_events,
                "chain": chain,
                "versions": audit_report_versions(erasure_request=erasure_request),
            }
        )
        return context


class StartPanelDismissView(LoginRequiredMixin, View):
    """Hide a role's start panel for the rest of the session; back to the page it was on."""

    def post(self, request):
        role = request.POST.get("role", "")
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = reverse("home")
        if role not in ROLES:
            if not role:
                return redirect(back)
            return HttpResponseBadRequest("Unknown start panel.")
        start_panel_dismiss(request.session, role)
        return redirect(back)


@require_GET
def metrics(request):
    """Prometheus's text format, for a scraper holding LETHE_METRICS_TOKEN or an engineer's session."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    allowed = metrics_access_allowed(request)
    if allowed is None:
        response = HttpResponse(
            "Metrics need a bearer token or an engineer's login.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="lethe-metrics"'
        return response
    if not allowed:
        return HttpResponse(
            "Not allowed to read the metrics.\n", status=403, content_type="text/plain; charset=utf-8"
        )
    # A registry per scrape: nothing of a previous scrape, or of another worker process, is reused.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LetheCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
