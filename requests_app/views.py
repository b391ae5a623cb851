"""Pages for privacy officers (read and write) and auditors (read only).

Views translate between HTTP and the services: a refused step re-renders the page with the
service's message on the form, with status 400 (bad input) or 409 (not allowed now), and
nothing has changed.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import DetailView, FormView, ListView

from compliance import roles
from compliance.access import PermissionPageMixin
from compliance.reports import acceptance
from compliance.reports import services as report_services
from compliance.start_panel import start_panel_for
from requests_app import forms, selectors, services
from requests_app.deadlines import deadline_line, latest_extended_due_at
from requests_app.identifiers import IDENTIFIER_LABELS, SubjectIdentifiers
from requests_app.models import ErasureRequest
from requests_app.services import Action

PAGE_SIZE = 50


class ErasureRequestListView(PermissionPageMixin, ListView):
    """Every request, filtered and searched, the nearest deadline first."""

    permission_required = roles.VIEW_REQUESTS
    template_name = "requests_app/request_list.html"
    context_object_name = "erasure_requests"
    paginate_by = PAGE_SIZE
    heading = "Erasure requests"
    empty_message = "No requests match."
    default_status = ""

    def post(self, request, *args, **kwargs):
        """Search: the term comes in a POST body so that it never lands in an access log's URL."""
        return self.get(request, *args, **kwargs)

    def filter_form(self) -> forms.ErasureRequestFilterForm:
        data = self.request.GET.copy()
        data.pop("q", None)
        if "status" not in data:
            data["status"] = self.default_status
        if self.request.method == "POST":
            data["q"] = self.request.POST.get("q", "")
        form = forms.ErasureRequestFilterForm(data)
        form.fields["due_soon"].label = f"Due in {settings.LETHE_DUE_SOON_DAYS} days"
        return form

    def get_paginate_by(self, queryset):
        # Search results are few and their term is not in the URL, so they come on one page.
        return None if self.request.method == "POST" else self.paginate_by

    def get_queryset(self):
        self.form = self.filter_form()
        cleaned = self.form.cleaned_data if self.form.is_valid() else {}
        filters = selectors.ErasureRequestFilters(
            status=cleaned.get("status", self.default_status),
            assignee=cleaned.get("assignee", ""),
            overdue=cleaned.get("overdue", False),
            due_soon=cleaned.get("due_soon", False),
            search=cleaned.get("q", ""),
        )
        return selectors.erasure_request_list(filters=filters, user=self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(
            filter_form=self.form,
            heading=self.heading,
            empty_message=self.empty_message,
            searching=bool(self.form.is_valid() and self.form.cleaned_data.get("q")),
            now=timezone.now(),
            due_soon_days=settings.LETHE_DUE_SOON_DAYS,
            query_without_page=query.urlencode(),
            can_manage=self.request.user.has_perm(roles.MANAGE_REQUESTS),
        )
        now = context["now"]
        for erasure_request in context["erasure_requests"]:
            erasure_request.deadline_line = deadline_line(
                received_at=erasure_request.received_at,
                first_due=erasure_request.first_due_at,
                extended_until=erasure_request.extended_until,
                closed_at=erasure_request.closed_at,
                now=now,
            )
        return context


class OfficerHomeView(ErasureRequestListView):
    """The officer's landing page: open requests, the nearest deadline first."""

    permission_required = roles.MANAGE_REQUESTS
    heading = "Open erasure requests"
    empty_message = "No open requests match."
    default_status = selectors.STATUS_FILTER_OPEN

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        to_review = selectors.erasure_request_next_to_review()
        if to_review is not None:
            next_text = f"Review the candidates of {to_review.reference}"
            next_url = reverse("review:detail", kwargs={"pk": to_review.pk})
        else:
            next_text, next_url = "Record a new request", reverse("requests_app:create")
        context["start_panel"] = start_panel_for(
            self.request.session, "officer", next_text=next_text, next_url=next_url
        )
        return context


class ErasureRequestCreateView(PermissionPageMixin, FormView):
    """Record a request received by e-mail, phone, letter or a form."""

    permission_required = roles.MANAGE_REQUESTS
    template_name = "requests_app/request_form.html"
    form_class = forms.ErasureRequestCreateForm

    def form_valid(self, form):
        data = form.cleaned_data
        subject = SubjectIdentifiers.from_lists(
            names=data["names"],
            emails=data["emails"],
            phones=data["phones"],
            addresses=data["addresses"],
            account_ids=data["account_ids"],
        )
        try:
            erasure_request = services.erasure_request_create(
                subject=subject,
                legal_ground=data["legal_ground"],
                actor=self.request.user,
                received_at=data["received_at"],
                channel=data["channel"],
                assigned_officer=data["assigned_officer"],
                scope_all=data["scope_all"],
                scope_dataset_ids=data["scope_dataset_ids"],
                scope_model_version_ids=data["scope_model_version_ids"],
            )
        except services.ErasureRequestError as error:
            forms.form_errors_from_service(form, error)
            return self.render_to_response(self.get_context_data(form=form), status=400)
        if erasure_request.duplicate_of_id:
            messages.warning(
                self.request,
                f"{erasure_request.reference} was recorded and flagged as a "
                f"possible duplicate of {erasure_request.duplicate_of.reference}.",
            )
        else:
            messages.success(self.request, f"{erasure_request.reference} was recorded.")
        for warning in services.subject_identifiers_warnings(subject):
            messages.warning(self.request, f"{erasure_request.reference}: {warning}")
        return redirect(erasure_request)

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)


# action (as in URLs, with dashes) → (Action, form class, label of its button)
PAGE_ACTIONS: dict[str, tuple[str, type, str]] = {
    "verify-identity": (Action.VERIFY_IDENTITY, forms.VerifyIdentityForm, "Record identity verification"),
    "start-locating": (Action.START_LOCATING, forms.NoteForm, "Start locating records"),
    "submit-for-review": (Action.SUBMIT_FOR_REVIEW, forms.NoteForm, "Submit for review"),
    "approve": (Action.APPROVE, forms.NoteForm, "Approve erasure"),
    "start-executing": (Action.START_EXECUTING, forms.NoteForm, "Start executing"),
    "start-verifying": (Action.START_VERIFYING, forms.NoteForm, "Start verifying"),
    "complete": (Action.COMPLETE, forms.CompleteForm, "Complete"),
    "extend": (Action.EXTEND_DEADLINE, forms.ExtendDeadlineForm, "Extend deadline"),
    "assign": (Action.ASSIGN, forms.AssignForm, "Assign"),
    "scope": (Action.SET_SCOPE, forms.ScopeForm, "Set scope"),
    "reject": (Action.REJECT, forms.RejectForm, "Reject"),
    "withdraw": (Action.WITHDRAW, forms.NoteForm, "Record withdrawal"),
    "reveal-identifiers": (Action.REVEAL_IDENTIFIERS, forms.RevealForm, "Reveal identifiers"),
}
ACTION_SLUGS = selectors.ACTION_SLUGS


def _run_action(action: str, *, erasure_request: ErasureRequest, actor, data: dict):
    """Call the service for ``action`` with the form's cleaned data; return what it returns."""
    target = {"erasure_request": erasure_request, "actor": actor}
    if action == Action.VERIFY_IDENTITY:
        return services.erasure_request_verify_identity(
            **target, method=data["method"], note=data["note"], verified_at=data["verified_at"]
        )
    if action == Action.EXTEND_DEADLINE:
        return services.erasure_request_extend_deadline(
            **target, until=data["until"], reason=data["reason"], notified_at=data["notified_at"]
        )
    if action == Action.REJECT:
        return services.erasure_request_reject(
            **target, ground=data["ground"], explanation=data["explanation"]
        )
    if action == Action.ASSIGN:
        return services.erasure_request_assign(**target, officer=data["officer"])
    if action == Action.SET_SCOPE:
        return services.erasure_request_set_scope(
            **target,
            scope_all=data["scope_all"],
            dataset_ids=data["scope_dataset_ids"],
            model_version_ids=data["scope_model_version_ids"],
        )
    if action == Action.REVEAL_IDENTIFIERS:
        return services.erasure_request_reveal_identifiers(**target, reason=data["reason"])
    simple = {
        Action.START_LOCATING: services.erasure_request_start_locating,
        Action.SUBMIT_FOR_REVIEW: services.erasure_request_submit_for_review,
        Action.APPROVE: services.erasure_request_approve,
        Action.START_EXECUTING: services.erasure_request_start_executing,
        Action.START_VERIFYING: services.erasure_request_start_verifying,
        Action.WITHDRAW: services.erasure_request_withdraw,
    }
    if action == Action.COMPLETE:
        return report_services.erasure_request_complete_with_report(
            **target, note=data["note"], acceptances=data.get("acceptances") or {}
        )
    return simple[action](**target, note=data["note"])


def _form_kwargs(action: str, erasure_request: ErasureRequest) -> dict:
    """Return what an action's form needs besides its data: completing lists the rows to accept."""
    if action == Action.COMPLETE:
        return {"failed_rows": acceptance.verification_failures_unaccepted(erasure_request)}
    return {}


def _initial_for(action: str, erasure_request: ErasureRequest) -> dict:
    if action == Action.ASSIGN:
        return {"officer": erasure_request.assigned_officer}
    if action == Action.SET_SCOPE:
        return {
            "scope_all": erasure_request.scope_all,
            "scope_dataset_ids": ", ".join(map(str, erasure_request.scope_dataset_ids)),
            "scope_model_version_ids": ", ".join(map(str, erasure_request.scope_model_version_ids)),
        }
    if action == Action.EXTEND_DEADLINE:
        latest = timezone.localtime(latest_extended_due_at(erasure_request.received_at))
        return {"until": latest.replace(second=0, microsecond=0)}
    return {}


class ErasureRequestDetailView(PermissionPageMixin, DetailView):
    """One request: deadline, identifiers (masked), identity, decisions, steps allowed now, timeline."""

    permission_required = roles.VIEW_REQUESTS
    template_name = "requests_app/request_detail.html"
    context_object_name = "erasure_request"
    queryset = ErasureRequest.objects.select_related(
        "assigned_officer", "identity_verified_by", "duplicate_of", "created_by"
    )

    def get_context_data(self, *, bound_action: str | None = None, bound_form=None, revealed=None, **kwargs):
        context = super().get_context_data(**kwargs)
        erasure_request = self.object
        user = self.request.user
        context["workflow_steps"] = selectors.erasure_request_workflow_steps(erasure_request=erasure_request)
        available = selectors.erasure_request_available_actions(erasure_request=erasure_request, user=user)
        action_forms = []
        for action in available:
            slug = ACTION_SLUGS[action]
            _, form_class, label = PAGE_ACTIONS[slug]
            form = (
                bound_form
                if action == bound_action
                else form_class(
                    initial=_initial_for(action, erasure_request),
                    prefix=slug,
                    **_form_kwargs(action, erasure_request),
                )
            )
            action_forms.append(
                {"slug": slug, "action": action, "label": label, "form": form, "open": action == bound_action}
            )
        masked = selectors.erasure_request_identifiers_masked(erasure_request=erasure_request)
        action_errors = []
        if bound_form is not None:
            for field_name, errors in bound_form.errors.items():
                field = bound_form.fields.get(field_name)
                prefix = f"{field.label or field_name.replace('_', ' ').capitalize()}: " if field else ""
                action_errors.extend(prefix + message for message in errors)
        context.update(
            action_errors=action_errors,
            action_forms=action_forms,
            reveal_form=next((f for f in action_forms if f["action"] == Action.REVEAL_IDENTIFIERS), None),
            identifier_rows=[
                {
                    "label": IDENTIFIER_LABELS[name][1],
                    "masked": (masked or {}).get(name, []),
                    "revealed": getattr(revealed, name) if revealed else None,
                }
                for name in IDENTIFIER_LABELS
            ],
            identifiers_purged=masked is None,
            revealed=revealed is not None,
            hash_counts=selectors.erasure_request_identifier_hash_counts(erasure_request=erasure_request),
            name_only=selectors.erasure_request_identified_by_name_only(erasure_request=erasure_request),
            overlapping=selectors.erasure_request_overlapping(erasure_request=erasure_request),
            timeline=selectors.erasure_request_timeline(erasure_request=erasure_request).select_related(
                "actor"
            ),
            now=timezone.now(),
            can_manage=user.has_perm(roles.MANAGE_REQUESTS),
        )
        return context


class ErasureRequestActionView(PermissionPageMixin, View):
    """Take one step on a request from its detail page (POST only)."""

    permission_required = roles.VIEW_REQUESTS
    http_method_names = ["post"]

    def has_permission(self):
        entry = PAGE_ACTIONS.get(self.kwargs["action"])
        if entry is None:
            raise Http404("No such action.")
        return self.request.user.has_perm(services.TRANSITIONS[entry[0]].permission)

    def post(self, request, pk: int, action: str):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        service_action, form_class, _ = PAGE_ACTIONS[action]
        form = form_class(request.POST, prefix=action, **_form_kwargs(service_action, erasure_request))
        status = 400
        if form.is_valid():
            try:
                result = _run_action(
                    service_action,
                    erasure_request=erasure_request,
                    actor=request.user,
                    data=form.cleaned_data,
                )
            except services.TransitionNotAllowed as error:
                forms.form_errors_from_service(form, error)
                status = 409
            except services.ErasureRequestError as error:
                forms.form_errors_from_service(form, error)
            else:
                if service_action == Action.REVEAL_IDENTIFIERS:
                    return self._render_detail(erasure_request, revealed=result, status=200)
                messages.success(
                    request, f"{erasure_request.reference}: {PAGE_ACTIONS[action][2].lower()} done."
                )
                return redirect(erasure_request)
        return self._render_detail(
            erasure_request, bound_action=service_action, bound_form=form, status=status
        )

    def _render_detail(self, erasure_request, *, status: int, **extra):
        detail = ErasureRequestDetailView()
        detail.setup(self.request, pk=erasure_request.pk)
        detail.object = ErasureRequest.objects.get(pk=erasure_request.pk)
        context = detail.get_context_data(object=detail.object, **extra)
        response = detail.render_to_response(context, status=status)
        # Revealed identifiers must not linger in a shared cache or the browser's history store.
        response["Cache-Control"] = "no-store"
        return response
