"""Pages of output suppression: the deployments, their rule-set versions, and a guarded try-out form.

Thin: read through selectors, write through ``suppression`` and ``guard_runtime`` services.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from compliance.api import MAX_DATABASE_ID
from unlearning_jobs.engine.pii.entities import EntityType
from unlearning_jobs.models import Deployment, ModelVersion
from unlearning_jobs.suppression import guard as guard_runtime
from unlearning_jobs.suppression import services as suppression


class DeploymentReadMixin(PermissionPageMixin):
    def has_permission(self):
        return suppression.user_may_read_deployments(self.request.user)


def _errors(error: ValidationError) -> dict:
    return error.message_dict if hasattr(error, "error_dict") else {"general": error.messages}


class DeploymentListView(DeploymentReadMixin, TemplateView):
    """Every deployment with its active rules; engineers create one for a model version here."""

    template_name = "unlearning_jobs/deployment_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            deployments=suppression.deployment_list(),
            model_versions=ModelVersion.objects.order_by("-pk"),
            entity_types=[kind.value for kind in EntityType],
            can_operate=self.request.user.has_perm(roles.OPERATE_JOBS),
            errors=kwargs.get("errors", {}),
        )
        return context

    def post(self, request):
        if not request.user.has_perm(roles.OPERATE_JOBS):
            raise PermissionDenied
        chosen = request.POST.get("model_version", "")
        version = None
        if chosen.isascii() and chosen.isdecimal() and int(chosen) <= MAX_DATABASE_ID:
            version = ModelVersion.objects.filter(pk=int(chosen)).first()
        if version is None:
            return self.render_to_response(
                self.get_context_data(errors={"model_version": ["Choose a registered model version."]}),
                status=400,
            )
        policy = {
            "mode": request.POST.get("mode", "redact"),
            "entity_types": request.POST.getlist("entity_types") or [k.value for k in EntityType],
        }
        try:
            deployment = suppression.deployment_create(
                name=request.POST.get("name", ""), model_version=version, policy=policy, actor=request.user
            )
        except ValidationError as error:
            return self.render_to_response(self.get_context_data(errors=_errors(error)), status=400)
        return redirect(deployment)


class DeploymentDetailView(DeploymentReadMixin, TemplateView):
    """One deployment: policy, rule-set versions with counts and fingerprints, export, try-out form."""

    template_name = "unlearning_jobs/deployment_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        deployment = get_object_or_404(
            Deployment.objects.select_related("model_version", "active_rule_set"), pk=self.kwargs["pk"]
        )
        context.update(
            deployment=deployment,
            rule_sets=deployment.rule_sets.select_related("erasure_request"),
            can_generate=suppression.user_may_generate(self.request.user),
            max_new_tokens=guard_runtime.MAX_NEW_TOKENS,
            result=kwargs.get("result"),
            prompt=kwargs.get("prompt", ""),
            errors=kwargs.get("errors", {}),
        )
        return context

    def post(self, request, pk: int):
        if not suppression.user_may_generate(request.user):
            raise PermissionDenied
        deployment = get_object_or_404(Deployment, pk=pk)
        prompt = request.POST.get("prompt", "")
        try:
            tokens = int(request.POST.get("max_new_tokens") or 32)
            result = guard_runtime.guarded_generate(
                deployment=deployment, prompt=prompt, max_new_tokens=tokens, actor=request.user
            )
        except ValueError:
            return self.render_to_response(
                self.get_context_data(errors={"max_new_tokens": ["Give a whole number."]}, prompt=prompt),
                status=400,
            )
        except ValidationError as error:
            return self.render_to_response(
                self.get_context_data(errors=_errors(error), prompt=prompt), status=400
            )
        return self.render_to_response(self.get_context_data(result=result, prompt=prompt))
