"""Pages for jobs, model versions and the officer's decision.

Engineers operate (retry, cancel, change a queued job's parameters, register models, train);
officers read job state and decide requests; auditors read the jobs of requests and change
nothing. Views only translate between HTTP and the services.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from compliance import roles
from compliance.access import PermissionPageMixin
from requests_app.models import ErasureRequest
from unlearning_jobs.decisions import services as decisions
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import (
    DatasetVersion,
    Framework,
    JobStatus,
    ModelVersion,
    UnlearningJob,
)
from unlearning_jobs.registry import services as model_registry

LOG_TAIL_CHARS = 6000
JOB_ACTIONS = {"retry": jobs.job_retry, "cancel": jobs.job_cancel, "kill": jobs.job_kill}


class JobReadMixin(PermissionPageMixin):
    """Let in whoever may read job state: engineers and officers, and auditors for requests' jobs."""

    def has_permission(self):
        return jobs.user_may_view_jobs(self.request.user)


def _job_or_404(user, pk: int) -> UnlearningJob:
    return get_object_or_404(jobs.job_list_for(user=user), pk=pk)


def job_state(job: UnlearningJob) -> dict:
    """Return what the job page shows and refreshes: status, progress, log tail, metrics, result."""
    produced = job.produced_model
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": job.get_status_display(),
        "progress": {
            "done": job.progress_done,
            "total": job.progress_total,
            "fraction": job.progress_fraction,
        },
        "device": job.device,
        "worker": job.worker,
        "attempts": job.attempts,
        "cancel_requested": job.cancel_requested,
        "compute_seconds": round(job.compute_seconds, 1),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "progress_at": job.progress_at.isoformat() if job.progress_at else None,
        "phase": job.phase,
        "phase_display": job.get_phase_display() if job.phase else "",
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "stalled_at": job.stalled_at.isoformat() if job.stalled_at else None,
        "last_log_line": jobs.job_last_log_line(job),
        "error": job.error,
        "log_tail": job.log[-LOG_TAIL_CHARS:],
        "metrics": job.metrics,
        "produced_model": (
            {
                "id": produced.pk,
                "name": produced.name,
                "url": produced.get_absolute_url(),
                "weights_sha256": produced.weights_sha256,
            }
            if produced
            else None
        ),
    }


# --- the queue --------------------------------------------------------------------------------------


class JobListView(JobReadMixin, TemplateView):
    """Every job the user may read, newest first, filtered by status."""

    template_name = "unlearning_jobs/job_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        status = self.request.GET.get("status", "")
        queryset = jobs.job_list_for(user=self.request.user)
        if status in JobStatus.values:
            queryset = queryset.filter(status=status)
        page = Paginator(queryset, 50).get_page(self.request.GET.get("page"))
        context.update(
            page=page,
            jobs=page.object_list,
            status=status,
            statuses=JobStatus.choices,
            can_operate=self.request.user.has_perm(roles.OPERATE_JOBS),
        )
        return context


class JobDetailView(JobReadMixin, TemplateView):
    """One job with live progress, its log tail, metrics, result and the engineer's buttons."""

    template_name = "unlearning_jobs/job_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = _job_or_404(self.request.user, self.kwargs["pk"])
        user = self.request.user
        can_operate = user.has_perm(roles.OPERATE_JOBS)
        context.update(
            job=job,
            state=job_state(job),
            can_operate=can_operate,
            can_retry=can_operate and job.status in jobs.RETRYABLE_STATUSES,
            can_cancel=can_operate and job.status in jobs.CANCELLABLE_STATUSES and not job.cancel_requested,
            can_kill=can_operate and job.status == JobStatus.RUNNING,
            can_edit_params=can_operate and job.status == JobStatus.QUEUED,
            params_text=json.dumps(job.params, indent=2, sort_keys=True),
            metrics_text=json.dumps(job.metrics, indent=2, sort_keys=True),
            params_errors=kwargs.get("params_errors", []),
            forget_count=len(job.forget_record_pks),
            can_see_request=bool(job.erasure_request_id and user.has_perm(roles.VIEW_REQUESTS)),
        )
        if "params_text" in kwargs:
            context["params_text"] = kwargs["params_text"]
        return context


class JobStateJsonView(JobReadMixin, View):
    """The job's state as JSON, polled by the job page every second or two."""

    def get(self, request, pk: int):
        response = JsonResponse(job_state(_job_or_404(request.user, pk)))
        response["Cache-Control"] = "no-store"
        return response


class JobActionView(PermissionPageMixin, View):
    """Retry or cancel a job from its page (POST only)."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]

    def post(self, request, pk: int, action: str):
        service = JOB_ACTIONS.get(action)
        if service is None:
            raise Http404("No such action.")
        job = get_object_or_404(UnlearningJob, pk=pk)
        try:
            job = service(job=job, actor=request.user)
        except jobs.JobError as error:
            messages.error(request, " ".join(error.messages))
        else:
            done = {
                "retry": "queued again",
                "cancel": (
                    "asked to stop at its next step" if job.status == JobStatus.RUNNING else "cancelled"
                ),
                "kill": "killed and queued again; it resumes from its last checkpoint",
            }[action]
            messages.success(request, f"Job #{job.pk} {done}.")
        return redirect(job)


class JobParamsView(PermissionPageMixin, View):
    """Change the method parameters of a queued job (POST only)."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]

    def post(self, request, pk: int):
        job = get_object_or_404(UnlearningJob, pk=pk)
        text = request.POST.get("params", "")
        try:
            params = json.loads(text or "{}")
            if not isinstance(params, dict):
                raise ValueError("the parameters must be a JSON object")
        except ValueError as error:
            return self._again(request, pk, text, [f"Not valid JSON: {error}"])
        try:
            jobs.job_params_update(job=job, actor=request.user, params=params)
        except jobs.JobError as error:
            return self._again(request, pk, text, error.messages)
        messages.success(request, f"Job #{job.pk}: parameters changed.")
        return redirect(job)

    def _again(self, request, pk, text, errors):
        view = JobDetailView()
        view.setup(request, pk=pk)
        context = view.get_context_data(params_errors=errors, params_text=text)
        return view.render_to_response(context, status=400)


# --- model versions ------------------------------------------------------------------------------------


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
        )
        return context


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


class TrainJobCreateView(PermissionPageMixin, View):
    """Queue a training job on a data-set version (POST only)."""

    permission_required = roles.OPERATE_JOBS
    http_method_names = ["post"]

    def post(self, request):
        values = {
            key: request.POST.get(key, "") for key in ("dataset_version", "name", "epochs", "sisa_shards")
        }
        dataset_version = DatasetVersion.objects.filter(pk=_int(values["dataset_version"])).first()
        errors: dict[str, list[str]] = {}
        if dataset_version is None:
            errors["dataset_version"] = ["Choose a data-set version."]
        else:
            recipe = {"epochs": _int(values["epochs"])} if values["epochs"] else {}
            try:
                job = jobs.train_job_create(
                    dataset_version=dataset_version,
                    actor=request.user,
                    name=values["name"] or "model",
                    recipe=recipe,
                    sisa_shards=_int(values["sisa_shards"]) if values["sisa_shards"] else None,
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


class ModelDetailView(JobReadMixin, TemplateView):
    """One model version: checksum, data, lineage, recipe, the jobs that read and made it."""

    template_name = "unlearning_jobs/model_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        version = get_object_or_404(model_registry.model_version_list(), pk=self.kwargs["pk"])
        visible = jobs.job_list_for(user=self.request.user)
        context.update(
            version=version,
            recipe_text=json.dumps(version.recipe, indent=2, sort_keys=True),
            children=version.children.order_by("pk"),
            jobs_reading=visible.filter(source_model=version).order_by("-pk")[:50],
            decisions=version.erasure_decisions.select_related("erasure_request").order_by("-pk")[:50],
            can_see_requests=self.request.user.has_perm(roles.VIEW_REQUESTS),
        )
        return context


# --- the officer's decision ------------------------------------------------------------------------------


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
        from requests_app.services import Action, transition_refusal

        with decisions.deciding():
            refusal = transition_refusal(erasure_request=erasure_request, action=Action.APPROVE)
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
        from requests_app.services import ActionNotPermitted, TransitionNotAllowed

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
