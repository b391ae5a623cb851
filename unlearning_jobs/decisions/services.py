"""The officer's erasure decision: per model version in scope, a framework, a method, and why.

``erasure_decision_approve`` validates the whole plan before anything is written and reports
every bad item at once; then, in one transaction, it approves the request (the workflow's own
service), stores one ``ErasureDecision`` per item, creates the jobs of the items whose framework
has a runner, and moves the request to executing when a job was queued.

Which methods each framework offers is ``decisions/methods.py``: deletion offers the engine's
unlearning methods (``engine.methods.METHODS``) with their own parameter classes; output and
latent suppression offer the methods of the stage that runs them. A method without a job kind
(or whose kind has no runner listed in ``settings.LETHE_JOB_KINDS``) is recorded as a decision
without a job, and the decision says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from compliance import roles
from compliance.audit import audit_event_record
from requests_app.matching.review import forget_set_for_request
from requests_app.services import (
    Action,
    ActionNotPermitted,
    TransitionNotAllowed,
    erasure_request_approve,
    erasure_request_start_executing,
    transition_checks,
    transition_state_refusal,
)
from unlearning_jobs.decisions.methods import PlanMethod, plan_method_for, plan_methods
from unlearning_jobs.jobs.kinds import job_kind_runnable
from unlearning_jobs.jobs.services import job_create
from unlearning_jobs.models import DatasetRecord, ErasureDecision, Framework, ModelVersion, UnlearningJob
from unlearning_jobs.registry.services import model_versions_in_scope

logger = logging.getLogger(__name__)

MAX_RATIONALE_LENGTH = 2000
MAX_PLAN_ITEMS = 50


class DecisionPlanError(ValidationError):
    """The decision cannot be recorded as given; nothing was written.

    ``field_errors`` holds errors of the decision as a whole (``rationale``, ``plan``);
    ``item_errors`` one dict of field errors per plan item, empty for a good item.
    """

    def __init__(self, *, field_errors: dict[str, list[str]], item_errors: list[dict[str, list[str]]]):
        self.field_errors = field_errors
        self.item_errors = item_errors
        flat = dict(field_errors)
        for index, errors in enumerate(item_errors):
            for name, messages in errors.items():
                flat[f"plan[{index}].{name}"] = messages
        super().__init__(flat)

    def as_api_errors(self) -> dict:
        """Return the errors shaped like the request body: ``plan`` is a list aligned with its items."""
        body: dict[str, Any] = {name: list(messages) for name, messages in self.field_errors.items()}
        if any(self.item_errors):
            body["plan"] = [dict(errors) for errors in self.item_errors]
        return body


def _runnable(plan_method: PlanMethod) -> bool:
    return plan_method.job_kind is not None and job_kind_runnable(plan_method.job_kind)


# --- validation -----------------------------------------------------------------------------------


@dataclass
class _Item:
    model_version: ModelVersion
    plan_method: PlanMethod
    params: dict
    forget_record_pks: list[int]


def _model_version_of(value, *, in_scope: set[int]) -> tuple[ModelVersion | None, str | None]:
    if isinstance(value, ModelVersion):
        value = value.pk
    if isinstance(value, bool) or not isinstance(value, int):
        return None, "Give the id of a registered model version."
    version = ModelVersion.objects.select_related("dataset_version").filter(pk=value).first()
    if version is None:
        return None, f"No model version has id {value}."
    if version.pk not in in_scope:
        return None, f"Model version {version} is not in the request's scope."
    return version, None


def _forget_for(
    erasure_request, version: ModelVersion, plan_method: PlanMethod
) -> tuple[list[int], str | None]:
    """Return the forget records (DatasetRecord ids) a job on ``version`` works on, or why there are none."""

    confirmed = forget_set_for_request(erasure_request)
    if not confirmed:
        return [], "The request has no confirmed records: review the located records first."
    if version.dataset_version_id is not None:
        in_training = forget_set_for_request(erasure_request, version=version.dataset_version)
        if in_training:
            return [record.pk for record in in_training], None
        if plan_method.needs_training_data:
            return [], (
                f"None of the confirmed records is in {version.dataset_version}, the data this model "
                "was trained on: there is nothing to retrain without."
            )
    elif plan_method.needs_training_data:
        return [], (
            f"{plan_method.method} retrains from the model's training data, and {version} was "
            "registered without its data-set version: choose an approximate method or suppression."
        )
    return [record.pk for record in confirmed], None


def decision_plan_validate(
    *, erasure_request, rationale: str, plan: Sequence[Mapping]
) -> tuple[str, list[_Item]]:
    """Return the cleaned rationale and plan items, or raise ``DecisionPlanError`` with every problem."""

    field_errors: dict[str, list[str]] = {}
    rationale = (rationale or "").strip()
    if not isinstance(plan, (list, tuple)):
        raise DecisionPlanError(field_errors={"plan": ["The plan must be a list of items."]}, item_errors=[])
    if plan and not rationale:
        field_errors["rationale"] = ["Give the legal rationale of the decision."]
    if len(rationale) > MAX_RATIONALE_LENGTH:
        field_errors["rationale"] = [
            f"The rationale is {len(rationale)} characters long; at most {MAX_RATIONALE_LENGTH} are accepted."
        ]
    if len(plan) > MAX_PLAN_ITEMS:
        field_errors["plan"] = [f"At most {MAX_PLAN_ITEMS} plan items are accepted."]
        raise DecisionPlanError(field_errors=field_errors, item_errors=[])
    in_scope = set(model_versions_in_scope(erasure_request=erasure_request).values_list("pk", flat=True))
    items: list[_Item] = []
    item_errors: list[dict[str, list[str]]] = []
    seen: set[tuple[int, str, str]] = set()
    for raw in plan:
        errors: dict[str, list[str]] = {}
        item_errors.append(errors)
        if not isinstance(raw, Mapping):
            errors["non_field_errors"] = ["Each plan item must be an object."]
            continue
        unknown = sorted(set(raw) - {"model_version", "framework", "method", "params"})
        if unknown:
            errors["non_field_errors"] = [f"Unknown field(s): {', '.join(unknown)}."]
        version, problem = _model_version_of(raw.get("model_version"), in_scope=in_scope)
        if problem:
            errors["model_version"] = [problem]
        framework, method = raw.get("framework"), raw.get("method")
        if framework not in Framework.values:
            errors["framework"] = [f"Choose one of: {', '.join(Framework.values)}."]
            continue
        plan_method = plan_method_for(framework, method) if isinstance(method, str) else None
        if plan_method is None:
            offered = [m.method for m in plan_methods() if m.framework == framework]
            errors["method"] = [
                f"{method!r} is not a method of {framework}; choose one of: {', '.join(offered)}."
            ]
            continue
        try:
            params = plan_method.validate(raw.get("params"))
        except (TypeError, ValueError) as error:
            errors["params"] = [str(error)]
            continue
        if version is None:
            continue
        key = (version.pk, framework, method)
        if key in seen:
            errors["non_field_errors"] = ["The same model version, framework and method appear twice."]
            continue
        seen.add(key)
        forget: list[int] = []
        if plan_method.changes_weights:
            # Deletion, and refusal tuning under output suppression: both change the weights on
            # the confirmed records, so both need them (and the same rules on SISA ensembles).
            forget, problem = _forget_for(erasure_request, version, plan_method)
            if problem:
                errors["model_version"] = [problem]
                continue
            if method == "sisa" and version.kind != "sisa":
                errors["method"] = [
                    f"{version} is not a SISA ensemble; sisa unlearning needs one (use retrain)."
                ]
                continue
            if version.kind == "sisa" and not plan_method.needs_training_data:
                errors["method"] = [
                    f"{version} is a SISA ensemble; use sisa or retrain, which keep it exact."
                ]
                continue
        if not errors:
            items.append(
                _Item(model_version=version, plan_method=plan_method, params=params, forget_record_pks=forget)
            )
    if field_errors or any(item_errors):
        raise DecisionPlanError(field_errors=field_errors, item_errors=item_errors)
    return rationale, items


# --- the service ----------------------------------------------------------------------------------


def erasure_decision_approve(
    *, erasure_request, actor, rationale: str, plan: Sequence[Mapping]
) -> list[ErasureDecision]:
    """Approve the request with its plan: store the decisions and queue their jobs, or change nothing.

    ``plan`` items are ``{"model_version": id, "framework": ..., "method": ..., "params": {...}}``.
    An empty plan approves without model work (the records' removal alone, or nothing to run).
    When at least one job is queued the request moves on to executing, by the system.
    """

    if not roles.actor_may(actor, roles.MANAGE_REQUESTS):
        who = roles.actor_name(actor)
        raise ActionNotPermitted(f"{who} may not decide erasure requests.")
    return _erasure_decision_approve(
        erasure_request=erasure_request, actor=actor, rationale=rationale, plan=plan
    )


def _erasure_decision_approve(
    *, erasure_request, actor, rationale: str, plan: Sequence[Mapping]
) -> list[ErasureDecision]:

    refusal = decision_refusal(erasure_request=erasure_request)
    if refusal:
        raise TransitionNotAllowed(refusal)
    rationale, items = decision_plan_validate(erasure_request=erasure_request, rationale=rationale, plan=plan)
    now = timezone.now()
    jobs: list[UnlearningJob] = []
    with transaction.atomic():
        # The decisions are written first so that the approval's own precondition
        # (``approval_without_decisions_refusal``) sees them; a refused approval rolls them back.
        decisions: list[ErasureDecision] = []
        for position, item in enumerate(items):
            plan_method = item.plan_method
            runnable = _runnable(plan_method)
            decisions.append(
                ErasureDecision.objects.create(
                    erasure_request=erasure_request,
                    position=position,
                    model_version=item.model_version,
                    framework=plan_method.framework,
                    method=plan_method.method,
                    params=item.params,
                    rationale=rationale,
                    decided_by=actor,
                    decided_at=now,
                    job_note=""
                    if runnable
                    else (
                        f"No job runs {plan_method.framework.replace('_', ' ')} yet: the decision is recorded "
                        "and is carried out when its stage is in place."
                    ),
                )
            )
        erasure_request_approve(erasure_request=erasure_request, actor=actor, note=rationale)
        for decision, item in zip(decisions, items):
            plan_method = item.plan_method
            runnable = _runnable(plan_method)
            audit_event_record(
                actor=actor,
                action="erasure_decision.recorded",
                target=decision,
                details={
                    "erasure_request_id": erasure_request.pk,
                    "reference": erasure_request.reference,
                    "model_version_id": item.model_version.pk,
                    "weights_sha256": item.model_version.weights_sha256,
                    "framework": plan_method.framework,
                    "method": plan_method.method,
                    "params": item.params,
                    "rationale": rationale,
                    "job": runnable,
                    "forget_records": len(item.forget_record_pks),
                },
            )
            if runnable:
                version = item.model_version
                dataset_version = version.dataset_version
                if dataset_version is None and item.forget_record_pks:
                    dataset_version = DatasetRecord.objects.get(pk=item.forget_record_pks[0]).version
                jobs.append(
                    job_create(
                        kind=plan_method.job_kind,
                        actor=actor,
                        erasure_request=erasure_request,
                        decision=decision,
                        framework=plan_method.framework,
                        method=plan_method.method,
                        params=item.params,
                        source_model=version,
                        dataset_version=dataset_version,
                        forget_record_pks=item.forget_record_pks,
                    )
                )
        if jobs:
            erasure_request_start_executing(
                erasure_request=erasure_request,
                actor=None,
                note=f"{len(jobs)} job(s) queued.",
                details={"jobs": [job.pk for job in jobs]},
            )
    logger.info(
        "erasure_decision.approved",
        extra={"erasure_request_id": erasure_request.pk, "decisions": len(decisions), "jobs": len(jobs)},
    )
    erasure_request.refresh_from_db()
    return decisions


def decision_refusal(*, erasure_request) -> str | None:
    """Return why the request cannot be decided now, or None.

    Every check of "approve" (``settings.LETHE_TRANSITION_CHECKS``) but the one that asks for a
    decision, which the decision being recorded satisfies: the request's status and identity,
    and the review of what was located.
    """
    refusal = transition_state_refusal(erasure_request=erasure_request, action=Action.APPROVE)
    if refusal:
        return refusal
    for check in transition_checks(Action.APPROVE):
        if check is approval_without_decisions_refusal:
            continue
        message = check(erasure_request)
        if message:
            return message
    return None


def approval_without_decisions_refusal(erasure_request) -> str | None:
    """Return why a request cannot be approved without a decision while a model is in scope.

    Registered as a precondition of "approve": approving is where the frameworks and methods are
    chosen and the jobs created (SPEC §2), so a bare approval of a request whose scope holds a
    model version would leave the model untouched with nothing to show for it. A request whose
    scope holds no model version (data sets only) may still be approved plainly.
    """
    if erasure_request.scope_all:
        models_in_scope = ModelVersion.objects.exists()
    else:
        models_in_scope = ModelVersion.objects.filter(pk__in=erasure_request.scope_model_version_ids).exists()
    if not models_in_scope or ErasureDecision.objects.filter(erasure_request=erasure_request).exists():
        return None
    return (
        "A model version is in this request's scope: approve it on the decision page (or the API "
        "with a plan), choosing a framework and method per model version with a rationale, so "
        "that approving creates the jobs."
    )


def request_decisions(*, erasure_request) -> list[ErasureDecision]:
    """Return the request's decisions in plan order, with their model versions and jobs."""
    return list(
        ErasureDecision.objects.filter(erasure_request=erasure_request)
        .select_related("model_version", "decided_by")
        .prefetch_related("jobs")
        .order_by("position", "pk")
    )


def decisions_for_report(erasure_request) -> dict:
    """Return the request's decisions for its audit report: per model version, what and why."""
    items = []
    for decision in request_decisions(erasure_request=erasure_request):
        version = decision.model_version
        items.append(
            {
                "target": f"model version {version.name} (#{version.pk}, weights SHA-256 {version.weights_sha256})",
                "frameworks": [decision.framework],
                "methods": [decision.method],
                "rationale": decision.rationale,
                "decided_by": decision.decided_by.get_username(),
                "decided_at": decision.decided_at,
                **({"note": decision.job_note} if decision.job_note else {}),
            }
        )
    return {"decisions": items}
