"""Pages of the model registry: the versions, their lineage and recipe, and registering one."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.views import View
from django.views.generic import TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from unlearning_jobs.finetuning import services as finetuning
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.jobs.views import JobReadMixin
from unlearning_jobs.models import (
    DatasetVersion,
    ModelVersion,
)
from unlearning_jobs.registry import services as model_registry


class ModelListView(JobReadMixin, TemplateView):
    """The model registry, and the forms to register a checkpoint or train a model."""

    template_name = "unlearning_jobs/model_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            model_versions=model_registry.model_version_list(),
            dataset_versions=DatasetVersion.objects.select_related("dataset").order_by(
                "dataset__name", "-number"
            ),
            can_operate=self.request.user.has_perm(roles.OPERATE_JOBS),
            register_errors=kwargs.get("register_errors", {}),
            register_values=kwargs.get("register_values", {}),
            train_errors=kwargs.get("train_errors", {}),
            train_values=kwargs.get("train_values", {}),
            import_errors=kwargs.get("import_errors", {}),
            import_values=kwargs.get("import_values", {}),
            finetune_errors=kwargs.get("finetune_errors", {}),
            finetune_values=kwargs.get("finetune_values", {}),
            finetunable=model_registry.model_version_list().filter(kind__in=finetuning.FINETUNABLE_KINDS),
        )
        return context


def _model_list_with_errors(request, **form_state):
    view = ModelListView()
    view.setup(request)
    return view.render_to_response(view.get_context_data(**form_state), status=400)


class ModelImportView(PermissionPageMixin, View):
    """Queue the import of a .gguf file or a checkpoint directory as a base (POST only)."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]

    def post(self, request):
        values = {key: request.POST.get(key, "") for key in ("name", "path", "notes")}
        try:
            job = finetuning.model_import_job_create(
                name=values["name"], path=values["path"], actor=request.user, notes=values["notes"]
            )
        except ValidationError as error:
            return _model_list_with_errors(request, import_errors=error.message_dict, import_values=values)
        messages.success(
            request, f"Import job #{job.pk} queued; the base appears in the registry when it ends."
        )
        return redirect(job)


class FinetuneJobCreateView(PermissionPageMixin, View):
    """Queue a fine-tune of a base on a data-set version (POST only)."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]
    FIELDS = (
        "base_model",
        "dataset_version",
        "name",
        "adapter",
        "format",
        "epochs",
        "learning_rate",
        "lora_r",
        "sisa_shards",
        "holdout_fraction",
    )

    def post(self, request):
        values = {key: request.POST.get(key, "") for key in self.FIELDS}
        errors: dict[str, list[str]] = {}
        base = ModelVersion.objects.filter(pk=_int(values["base_model"])).first()
        dataset_version = DatasetVersion.objects.filter(pk=_int(values["dataset_version"])).first()
        if base is None:
            errors["base_model"] = ["Choose the model version to fine-tune."]
        if dataset_version is None:
            errors["dataset_version"] = ["Choose a data-set version."]
        params: dict = {"name": values["name"] or "fine-tune", "adapter": values["adapter"] or "lora"}
        if values["format"]:
            params["format"] = values["format"]
        for key, convert in (
            ("epochs", _int),
            ("lora_r", _int),
            ("sisa_shards", _int),
            ("learning_rate", _float),
            ("holdout_fraction", _float),
        ):
            if values[key]:
                params[key] = convert(values[key])
                if params[key] is None:
                    errors[key] = ["Give a number."]
        if not errors:
            try:
                job = finetuning.finetune_job_create(
                    base_model=base, dataset_version=dataset_version, params=params, actor=request.user
                )
            except ValidationError as error:
                errors = error.message_dict
            else:
                messages.success(request, f"Fine-tuning job #{job.pk} queued.")
                return redirect(job)
        return _model_list_with_errors(request, finetune_errors=errors, finetune_values=values)


class ModelRegisterView(PermissionPageMixin, View):
    """Register a checkpoint directory by path (POST only)."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]

    def post(self, request):
        values = {
            key: request.POST.get(key, "") for key in ("name", "path", "dataset_version", "parent", "notes")
        }
        errors: dict[str, list[str]] = {}
        dataset_version = parent = None
        if values["dataset_version"]:
            dataset_version = DatasetVersion.objects.filter(pk=_int(values["dataset_version"])).first()
            if dataset_version is None:
                errors["dataset_version"] = ["No such data-set version."]
        if values["parent"]:
            parent = ModelVersion.objects.filter(pk=_int(values["parent"])).first()
            if parent is None:
                errors["parent"] = ["No such model version."]
        if not errors:
            try:
                version = model_registry.model_version_register(
                    name=values["name"],
                    path=values["path"],
                    actor=request.user,
                    dataset_version=dataset_version,
                    parent=parent,
                    notes=values["notes"],
                )
            except model_registry.ModelRegistrationError as error:
                errors = error.message_dict
            else:
                messages.success(
                    request, f"{version} registered; weights SHA-256 {version.weights_sha256[:16]}…"
                )
                return redirect(version)
        view = ModelListView()
        view.setup(request)
        return view.render_to_response(
            view.get_context_data(register_errors=errors, register_values=values), status=400
        )


class ModelDetailView(JobReadMixin, TemplateView):
    """One model version: checksum, data, lineage, recipe, the jobs that read and made it."""

    template_name = "unlearning_jobs/model_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        version = get_object_or_404(model_registry.model_version_list(), pk=self.kwargs["pk"])
        visible = jobs.job_list_for(user=self.request.user)
        context.update(
            version=version,
            lineage=model_registry.model_version_lineage(version)[1:],
            base_model=model_registry.model_version_base(version),
            recipe_text=json.dumps(version.recipe, indent=2, sort_keys=True),
            children=version.children.order_by("pk"),
            jobs_reading=visible.filter(source_model=version).order_by("-pk")[:50],
            decisions=version.erasure_decisions.select_related("erasure_request").order_by("-pk")[:50],
            can_see_requests=self.request.user.has_perm(roles.VIEW_REQUESTS),
        )
        return context


class TrainJobCreateView(PermissionPageMixin, View):
    """Queue a training job on a data-set version (POST only)."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]

    def post(self, request):
        values = {
            key: request.POST.get(key, "")
            for key in ("dataset_version", "name", "epochs", "sisa_shards", "holdout_fraction")
        }
        dataset_version = DatasetVersion.objects.filter(pk=_int(values["dataset_version"])).first()
        errors: dict[str, list[str]] = {}
        holdout = _float(values["holdout_fraction"]) if values["holdout_fraction"] else 0.0
        if holdout is None:
            errors["holdout_fraction"] = ["Give a number."]
        if dataset_version is None:
            errors["dataset_version"] = ["Choose a data-set version."]
        if not errors:
            recipe = {"epochs": _int(values["epochs"])} if values["epochs"] else {}
            try:
                job = jobs.train_job_create(
                    dataset_version=dataset_version,
                    actor=request.user,
                    name=values["name"] or "model",
                    recipe=recipe,
                    sisa_shards=_int(values["sisa_shards"]) if values["sisa_shards"] else None,
                    holdout_fraction=holdout,
                )
            except ValidationError as error:
                errors = error.message_dict
            else:
                messages.success(request, f"Training job #{job.pk} queued.")
                return redirect(job)
        view = ModelListView()
        view.setup(request)
        return view.render_to_response(
            view.get_context_data(train_errors=errors, train_values=values), status=400
        )


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
