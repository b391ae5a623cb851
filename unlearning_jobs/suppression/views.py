"""Pages of output suppression: the deployments, their rule-set versions, and a guarded try-out form.

Thin: read through selectors, write through ``suppression`` and ``guard_runtime`` services.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from compliance.api import MAX_DATABASE_ID
from unlearning_jobs.engine.pii.entities import EntityType
from unlearning_jobs.models import Dataset, Deployment, DerivedDataKind, ModelVersion
from unlearning_jobs.registry.services import ModelWeightsChanged
from unlearning_jobs.suppression import guard as guard_runtime
from unlearning_jobs.suppression import latent
from unlearning_jobs.suppression import services as suppression

MAX_RECORD_KEYS_UPLOAD_BYTES = 16 * 1024 * 1024


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
        except ModelWeightsChanged as error:
            return self.render_to_response(
                self.get_context_data(errors={"general": [str(error)]}, prompt=prompt), status=409
            )
        return self.render_to_response(self.get_context_data(result=result, prompt=prompt))


def _record_keys_from_text(text: str) -> list[str]:
    """Return the record ids of a pasted list: one per line, or separated by commas."""
    return [part.strip() for line in (text or "").splitlines() for part in line.split(",") if part.strip()]


class DerivedStoreListView(DeploymentReadMixin, TemplateView):
    """The derived-data stores (embeddings, caches, feature tables, retrieval indexes, profiles)
    latent suppression reaches; engineers register one here with the record ids it was built from."""

    template_name = "unlearning_jobs/derived_store_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            stores=latent.derived_stores_list(),
            kinds=DerivedDataKind.choices,
            datasets=Dataset.objects.order_by("name"),
            can_operate=self.request.user.has_perm(roles.OPERATE_JOBS),
            errors=kwargs.get("errors", {}),
            form=kwargs.get("form", {}),
        )
        return context

    def post(self, request):
        if not request.user.has_perm(roles.OPERATE_JOBS):
            raise PermissionDenied
        chosen = request.POST.get("dataset", "")
        dataset = None
        if chosen:
            if chosen.isascii() and chosen.isdecimal() and int(chosen) <= MAX_DATABASE_ID:
                dataset = Dataset.objects.filter(pk=int(chosen)).first()
            if dataset is None:
                errors = {"dataset": ["Choose a registered data set."]}
                return self.render_to_response(
                    self.get_context_data(errors=errors, form=request.POST), status=400
                )
        upload = request.FILES.get("record_keys_file")
        text = request.POST.get("record_keys", "")
        if upload is not None:
            if upload.size > MAX_RECORD_KEYS_UPLOAD_BYTES:
                errors = {"record_keys": ["The file of record ids is larger than 16 MiB."]}
                return self.render_to_response(
                    self.get_context_data(errors=errors, form=request.POST), status=400
                )
            text += "\n" + upload.read().decode("utf-8", errors="replace")
        try:
            store = latent.derived_store_register(
                name=request.POST.get("name", ""),
                kind=request.POST.get("kind", ""),
                location=request.POST.get("location", ""),
                owner=request.POST.get("owner", ""),
                dataset=dataset,
                record_keys=_record_keys_from_text(text),
                actor=request.user,
            )
        except ValidationError as error:
            return self.render_to_response(
                self.get_context_data(errors=_errors(error), form=request.POST), status=400
            )
        messages.success(
            request, f"Derived-data store {store.name} registered with {store.entries.count()} record keys."
        )
        return redirect("unlearning_jobs:derived-store-list")
