"""Pages for data sets: the registry, upload, a data set's versions with live indexing progress,
resuming an index, and the re-ingestion guard's flags with the officer's override.

Engineers register and resume (``operate_jobs``); officers and engineers read (the job
queue's read permission); only officers let a flagged record back in.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.generic import DetailView, TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from compliance.uploads import upload_refusal
from unlearning_jobs.datasets import indexing, reingestion
from unlearning_jobs.datasets import services as datasets
from unlearning_jobs.engine.pii.readers import DatasetFormat
from unlearning_jobs.models import Dataset, DatasetVersion, DatasetVersionStatus, ReingestionHit

FORMAT_CHOICES = [("", "From the file name")] + [(f.value, f.value) for f in DatasetFormat]


class DatasetUploadForm(forms.Form):
    name = forms.CharField(
        max_length=datasets.MAX_NAME_LENGTH,
        label="Data set",
        help_text="A new name creates the data set; an existing one gets a new version.",
    )
    file = forms.FileField(
        label="File", help_text="JSON Lines, JSON, CSV, Parquet or plain text (one record a line)."
    )
    format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False)
    text_field = forms.CharField(
        max_length=400,
        initial="text",
        label="Text field",
        help_text="Several fields are joined by new lines: question,answer",
    )
    id_field = forms.CharField(
        max_length=200,
        required=False,
        label="Id field",
        help_text="Empty: each record's id is the SHA-256 of its text.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class OverrideForm(forms.Form):
    reason = forms.CharField(
        max_length=reingestion.MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why may this record be used for training again?",
    )


def _form_errors(form: forms.Form, error: ValidationError) -> None:
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field_name, field_messages in error.message_dict.items():
        form.add_error(field_name if field_name in form.fields else None, field_messages)


class DatasetListView(PermissionPageMixin, TemplateView):
    """Every data set with its newest version, and the upload form for engineers."""

    permission_required = roles.VIEW_JOBS
    template_name = "unlearning_jobs/dataset_list.html"

    def get_context_data(self, *, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        rows = []
        for dataset in datasets.dataset_list():
            versions = list(dataset.versions.all())
            rows.append(
                {"dataset": dataset, "latest": versions[0] if versions else None, "versions": len(versions)}
            )
        can_register = self.request.user.has_perm(roles.OPERATE_JOBS)
        context.update(
            rows=rows,
            can_register=can_register,
            form=form or (DatasetUploadForm() if can_register else None),
            upload_limit=settings.LETHE_UPLOAD_MAX_BYTES,
        )
        return context


class DatasetUploadView(PermissionPageMixin, View):
    """Register an uploaded file as a new version; a refused file leaves nothing behind."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]

    def post(self, request):
        form = DatasetUploadForm(request.POST, request.FILES)
        if refusal := upload_refusal(request):
            form.is_valid()
            form.errors.pop("file", None)
            form.add_error("file", refusal)
        elif form.is_valid():
            data = form.cleaned_data
            try:
                version = datasets.dataset_version_register_upload(
                    name=data["name"],
                    upload=data["file"],
                    actor=request.user,
                    format=data["format"] or None,
                    text_field=data["text_field"],
                    id_field=data["id_field"] or None,
                    description=data["description"],
                )
            except ValidationError as error:
                _form_errors(form, error)
            else:
                messages.success(
                    request, f"{version} registered: {version.record_count} records; indexing started."
                )
                return redirect(version.dataset)
        view = DatasetListView()
        view.setup(request)
        return render(request, DatasetListView.template_name, view.get_context_data(form=form), status=400)


class DatasetDetailView(PermissionPageMixin, DetailView):
    """A data set's versions: progress, counts, configuration, manifest, and guard flags."""

    permission_required = roles.VIEW_JOBS
    template_name = "unlearning_jobs/dataset_detail.html"
    model = Dataset
    context_object_name = "dataset"

    def get_context_data(self, *, override_forms=None, **kwargs):
        context = super().get_context_data(**kwargs)
        override_forms = override_forms or {}
        versions = []
        listed = list(self.object.versions.select_related("parent", "registered_by").order_by("-number"))
        progress = indexing.dataset_versions_progress(listed)
        hits_by_version = reingestion.dataset_versions_reingestion_hits(listed)
        for version in listed:
            hits = hits_by_version[version.pk]
            versions.append(
                {
                    "version": version,
                    "progress": progress[version.pk],
                    "configuration": _configuration_rows(version.index_configuration),
                    "hits": [
                        {
                            "hit": hit,
                            "form": override_forms.get(hit.pk) or OverrideForm(prefix=f"hit{hit.pk}"),
                        }
                        for hit in hits
                    ],
                    "blocked": sum(1 for hit in hits if not hit.overridden),
                    "resumable": version.status != DatasetVersionStatus.INDEXED,
                    # whether its section refreshes itself (htmx) until indexing ends
                    "live": version.status not in indexing.VERSION_SETTLED_STATUSES,
                }
            )
        context.update(
            versions=versions,
            can_operate=self.request.user.has_perm(roles.OPERATE_JOBS),
            can_override=self.request.user.has_perm(roles.MANAGE_REQUESTS),
        )
        return context


def _configuration_rows(configuration: dict) -> list[tuple[str, str]]:
    if not configuration:
        return []
    model = configuration.get("spacy_model", {})
    versions = configuration.get("versions", {})
    return [
        ("spaCy model", f"{model.get('name')} {model.get('version')} (NER F {model.get('ents_f')})"),
        ("Recognisers", ", ".join(configuration.get("recognisers", []))),
        ("Entities", ", ".join(configuration.get("entities", []))),
        ("Score threshold", str(configuration.get("score_threshold"))),
        ("Phone region", str(configuration.get("scan", {}).get("default_region"))),
        ("Presidio / spaCy", f"{versions.get('presidio_analyzer')} / {versions.get('spacy')}"),
        ("Hash key id", str(configuration.get("hash_key_id"))),
    ]


class DatasetVersionProgressView(PermissionPageMixin, View):
    """The version's progress as JSON, polled by the data-set page while it indexes."""

    permission_required = roles.VIEW_JOBS

    def get(self, request, pk: int):
        version = get_object_or_404(DatasetVersion, pk=pk)
        response = JsonResponse(indexing.dataset_version_progress(version))
        response["Cache-Control"] = "no-store"
        return response


class DatasetVersionResumeView(PermissionPageMixin, View):
    """Queue a version's unfinished chunks again (after a worker crash or a failure)."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]

    def post(self, request, pk: int):
        version = get_object_or_404(DatasetVersion, pk=pk)
        queued = indexing.dataset_version_index_resume(version=version, actor=request.user)
        if queued:
            messages.success(request, f"{version}: {len(queued)} unfinished chunk(s) queued again.")
        else:
            messages.info(request, f"{version}: nothing to resume.")
        return redirect(version.dataset)


class ReingestionOverrideView(PermissionPageMixin, View):
    """Let one flagged record back into the records offered for training, with a reason."""

    permission_required = roles.MANAGE_REQUESTS
    http_method_names = ["post"]

    def post(self, request, pk: int):
        hit = get_object_or_404(ReingestionHit.objects.select_related("version__dataset"), pk=pk)
        form = OverrideForm(request.POST, prefix=f"hit{hit.pk}")
        if form.is_valid():
            try:
                reingestion.reingestion_hit_override(
                    hit=hit, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except reingestion.ReingestionOverrideError as error:
                form.add_error("reason", str(error))
            else:
                messages.success(request, f"The record is offered for training again in {hit.version}.")
                return redirect(hit.version.dataset)
        view = DatasetDetailView()
        view.setup(request, pk=hit.version.dataset_id)
        view.object = hit.version.dataset
        context = view.get_context_data(object=view.object, override_forms={hit.pk: form})
        return render(request, DatasetDetailView.template_name, context, status=400)
