"""The officer's decision page: per model version in scope, a framework, a method and why."""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from requests_app.models import ErasureRequest
from requests_app.services import ActionNotPermitted, TransitionNotAllowed
from unlearning_jobs.decisions import services as decisions
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.jobs.views import job_state
from unlearning_jobs.models import (
    Framework,
)
from unlearning_jobs.registry import services as model_registry

DECISION_FRAMEWORKS = (Framework.DELETION, Framework.OUTPUT_SUPPRESSION, Framework.LATENT_SUPPRESSION)


def _decision_rows(erasure_request, post=None, item_errors=None, plan_index=None):
    """Return one row per model version in scope with its choices (from POST when re-shown)."""
    methods_by_framework = {}
    for plan_method in decisions.plan_methods():
        methods_by_framework.setdefault(plan_method.framework, []).append(plan_method)
    rows = []
    for version in model_registry.model_versions_in_scope(erasure_request=erasure_request):
        prefix = f"m{version.pk}"
        choices = []
        for framework in DECISION_FRAMEWORKS:
            key = f"{prefix}-{framework.value}"
            chosen = post.get(f"{key}-method", "") if post is not None else ""
            params = post.get(f"{key}-params", "") if post is not None else ""
            index = (plan_index or {}).get((version.pk, framework.value))
            errors = (item_errors or [])[index] if index is not None and item_errors else {}
            choices.append(
                {
                    "framework": framework,
                    "key": key,
                    "chosen": chosen,
                    "params": params,
                    "methods": methods_by_framework.get(framework.value, []),
                    "errors": [
                        f"{name.replace('_', ' ')}: {message}" if name != "non_field_errors" else message
                        for name, messages_ in errors.items()
                        for message in messages_
                    ],
                }
            )
        rows.append({"version": version, "choices": choices})
    return rows


class ErasureDecisionView(PermissionPageMixin, TemplateView):
    """The officer's decision on a reviewed request, and afterwards its decisions and jobs.

    GET: officers and auditors; POST: officers. One row per model version in scope, a method per
    framework (none, or one), its parameters as JSON (empty: the method's defaults), and the
    legal rationale for all of them.
    """

    permission_required = roles.VIEW_REQUESTS
    template_name = "unlearning_jobs/decision.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        erasure_request = get_object_or_404(ErasureRequest, pk=self.kwargs["pk"])
        user = self.request.user
        refusal = decisions.decision_refusal(erasure_request=erasure_request)
        context.update(
            erasure_request=erasure_request,
            decisions=decisions.request_decisions(erasure_request=erasure_request),
            request_jobs=[
                (job, job_state(job)) for job in jobs.request_jobs(erasure_request=erasure_request)
            ],
            can_decide=user.has_perm(roles.MANAGE_REQUESTS) and refusal is None,
            refusal=refusal,
            rows=kwargs.get("rows") or _decision_rows(erasure_request),
            rationale=kwargs.get("rationale", ""),
            field_errors=kwargs.get("field_errors", {}),
            plan_methods=decisions.plan_methods(),
            can_see_jobs=jobs.user_may_view_jobs(user),
            now=timezone.now(),
        )
        return context

    def post(self, request, pk: int):

        if not request.user.has_perm(roles.MANAGE_REQUESTS):
            return self.handle_no_permission()
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        rationale = request.POST.get("rationale", "")
        plan, plan_index, parse_errors = [], {}, {}
        for version in model_registry.model_versions_in_scope(erasure_request=erasure_request):
            for framework in DECISION_FRAMEWORKS:
                key = f"m{version.pk}-{framework.value}"
                method = request.POST.get(f"{key}-method", "")
                if not method:
                    continue
                text = request.POST.get(f"{key}-params", "").strip()
                try:
                    params = json.loads(text) if text else {}
                except ValueError as error:
                    parse_errors[(version.pk, framework.value)] = {"params": [f"Not valid JSON: {error}"]}
                    params = {}
                plan_index[(version.pk, framework.value)] = len(plan)
                plan.append(
                    {
                        "model_version": version.pk,
                        "framework": framework.value,
                        "method": method,
                        "params": params,
                    }
                )
        field_errors: dict = {}
        item_errors: list[dict] = [{} for _ in plan]
        for key, errors in parse_errors.items():
            item_errors[plan_index[key]] = errors
        if not plan:
            field_errors["plan"] = ["Choose at least one method for a model version."]
        status = 400
        if not field_errors and not any(item_errors):
            try:
                decisions.erasure_decision_approve(
                    erasure_request=erasure_request, actor=request.user, rationale=rationale, plan=plan
                )
            except decisions.DecisionPlanError as error:
                field_errors, item_errors = error.field_errors, error.item_errors
            except TransitionNotAllowed as error:
                field_errors, status = {"request": error.messages}, 409
            except ActionNotPermitted:
                return self.handle_no_permission()
            else:
                messages.success(request, f"{erasure_request.reference}: decision recorded.")
                return redirect(reverse("erasure-decision", kwargs={"pk": pk}))
        context = self.get_context_data(
            rows=_decision_rows(
                erasure_request, post=request.POST, item_errors=item_errors, plan_index=plan_index
            ),
            rationale=rationale,
            field_errors=field_errors,
        )
        return self.render_to_response(context, status=status)
