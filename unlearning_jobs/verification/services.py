"""Verification in the application: verify jobs, stored runs and rows, comparison, hooks.

A request's models are compared side by side: the *original* (the model the erasure started
from, the baseline), the *reference* (an exact retrain without the records, when the request has
one) and each model an unlearning job *produced*. Every one is measured by a ``verify`` job on the
``gpu`` queue (``verification_runner``); the measurements are stored, and the rows are judged by
the engine's ``assess_measurements`` against the original and the reference, again whenever one of
them finishes later, so the order in which the jobs end does not matter.

``passed`` is always the engine's decision on the unrounded value; nothing here recomputes it.
A verify job names its request twice: in ``params["erasure_request_id"]``, which its runner and
the comparison read, and in the job's ``erasure_request`` column, so that it is listed with the
request's jobs (the queue, the API's ``request`` filter). The jobs carrying out the officer's
decision are those with a ``decision``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from requests_app.models import ErasureRequest
from unlearning_jobs.engine.method_catalogue import is_exact
from unlearning_jobs.jobs.services import job_create
from unlearning_jobs.models import (
    ACTIVE_JOB_STATUSES,
    JobKind,
    JobStatus,
    ModelVersion,
    UnlearningJob,
    VerificationResult,
    VerificationRole,
    VerificationRun,
)

logger = logging.getLogger(__name__)

VERIFY_METHOD = "verify"
#: Statuses of a verify (or decision) job that hold a request back from completion.
BLOCKING_STATUSES = (*ACTIVE_JOB_STATUSES, JobStatus.FAILED)
#: Columns of the side-by-side comparison, in the order a reader compares them.
ROLE_ORDER = (VerificationRole.ORIGINAL, VerificationRole.REFERENCE, VerificationRole.PRODUCED)
#: ``details["section"]`` of the rows of the robustness section (relearning, quantization, paraphrase).
ROBUSTNESS_SECTION = "robustness"


# --- parameters -------------------------------------------------------------------------------------


def verify_params_validate(method: str, params: Mapping[str, Any] | None) -> dict:
    """Return a verify job's parameters cleaned; raise ``ValueError`` naming the field.

    ``role`` says which column of the comparison the model is; ``original_model_id`` the model
    the request's erasure started from (its training list decides members and non-members, the
    same for every column); ``erasure_request_id`` and ``for_job_id`` where the job comes from;
    ``remeasure_on``, on a re-measurement only, the samples digest it was queued for.
    """
    if method != VERIFY_METHOD:
        raise ValueError(f"a verify job's method must be {VERIFY_METHOD!r}, got {method!r}")
    params = dict(params or {})
    unknown = set(params) - {"role", "erasure_request_id", "for_job_id", "original_model_id", "remeasure_on"}
    if unknown:
        raise ValueError(f"unknown verify parameters: {sorted(unknown)}")
    role = params.get("role")
    if role not in VerificationRole.values:
        raise ValueError(f"role must be one of {VerificationRole.values}, got {role!r}")
    cleaned = {"role": role}
    for key in ("erasure_request_id", "for_job_id", "original_model_id"):
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{key} must be a positive integer or null, got {value!r}")
        cleaned[key] = value
    if "remeasure_on" in params:
        digest = params["remeasure_on"]
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"remeasure_on must be a samples digest (64 hex digits), got {digest!r}")
        cleaned["remeasure_on"] = digest
    return cleaned


# --- creating verify jobs -----------------------------------------------------------------------------


def verify_jobs_of_request(erasure_request_id: int):
    """Return the verify jobs made for a request, oldest first."""
    return UnlearningJob.objects.filter(
        kind=JobKind.VERIFY, params__erasure_request_id=erasure_request_id
    ).order_by("pk")


def verification_job_create(
    *,
    model_version: ModelVersion,
    role: str,
    erasure_request_id: int | None,
    forget_record_pks,
    original_model: ModelVersion,
    dataset_version=None,
    for_job: UnlearningJob | None = None,
    actor=None,
    enqueue: bool = True,
    remeasure_on: str | None = None,
) -> UnlearningJob:
    """Queue a verify job of ``model_version`` in ``role``, or return the one already made.

    Idempotent per request, model and role (a cancelled one is replaced), so a success hook that
    runs twice, or two jobs of one request sharing an original, make one baseline. A
    re-measurement (``remeasure_on``: the samples digest the model must be measured on again,
    ``verification_remeasure_stale_runs``) is idempotent per digest instead.
    """

    existing = UnlearningJob.objects.filter(
        kind=JobKind.VERIFY,
        source_model=model_version,
        params__role=role,
        params__erasure_request_id=erasure_request_id,
    ).exclude(status=JobStatus.CANCELLED)
    if remeasure_on is not None:
        existing = existing.filter(params__remeasure_on=remeasure_on)
    existing = existing.order_by("pk").first()
    if existing is not None:
        return existing
    extra = {"remeasure_on": remeasure_on} if remeasure_on is not None else {}
    return job_create(
        kind=JobKind.VERIFY.value,
        actor=actor,
        erasure_request=ErasureRequest.objects.filter(pk=erasure_request_id).first()
        if erasure_request_id
        else None,
        method=VERIFY_METHOD,
        source_model=model_version,
        dataset_version=dataset_version,
        forget_record_pks=forget_record_pks,
        enqueue=enqueue,
        params={
            "role": role,
            "erasure_request_id": erasure_request_id,
            "for_job_id": for_job.pk if for_job else None,
            "original_model_id": original_model.pk,
            **extra,
        },
    )


def verification_jobs_for_unlearning_job(job: UnlearningJob) -> list[UnlearningJob]:
    """Queue the verifications a succeeded unlearning job calls for; return them.

    The baseline on the job's source model (once per request and model: the weights are
    immutable, so measuring them now or before the job gives the same numbers) and the produced
    model, as the request's exact-retrain reference when the method is exact (``retrain``, and
    ``sisa``, which retrains the affected shards of a SISA model exactly). Registered
    as a success hook of jobs, so the jobs exist exactly when the success does.
    """
    if (
        not settings.LETHE_VERIFY_AUTO
        or job.kind != JobKind.UNLEARN
        or job.erasure_request_id is None
        or job.source_model_id is None
        or job.status != JobStatus.SUCCEEDED
    ):
        return []
    common = {
        "erasure_request_id": job.erasure_request_id,
        "forget_record_pks": job.forget_record_pks,
        "original_model": job.source_model,
        "dataset_version": job.dataset_version,
        "for_job": job,
    }
    made = [
        verification_job_create(
            model_version=job.source_model, role=VerificationRole.ORIGINAL.value, **common
        )
    ]
    if job.produced_model_id is not None:
        role = VerificationRole.REFERENCE if is_exact(job.method) else VerificationRole.PRODUCED
        made.append(verification_job_create(model_version=job.produced_model, role=role.value, **common))
    logger.info("verification.jobs_queued", extra={"job_id": job.pk, "verify_job_ids": [j.pk for j in made]})
    return made


# --- storing and judging ----------------------------------------------------------------------------


def _thresholds_used() -> dict:
    from unlearning_jobs.engine.verify.thresholds import resolve_thresholds

    return {
        metric: threshold.as_dict()
        for metric, threshold in resolve_thresholds(settings.LETHE_VERIFY_THRESHOLDS).items()
    }


def _result_of(run: VerificationRun | None):
    from unlearning_jobs.engine.verify.report import VerificationResult as EngineResult

    if run is None or not run.measurements:
        return None
    return EngineResult(rows=(), skipped=(), measurements=run.measurements)


def samples_digest_of(run: VerificationRun) -> str | None:
    """Return the digest of the records ``run`` measured on (None for runs stored before it was kept)."""
    return (run.sample_sizes or {}).get("samples_digest")


def _request_runs(run: VerificationRun):
    """Return the measured runs of ``run``'s request on the same original model, newest first."""
    return (
        VerificationRun.objects.filter(
            erasure_request_id=run.erasure_request_id,
            job__params__original_model_id=run.job.params.get("original_model_id"),
        )
        .exclude(measurements={})
        .select_related("job", "model_version")
        .order_by("-pk")
    )


def _comparison_runs(run: VerificationRun) -> tuple[VerificationRun | None, VerificationRun | None]:
    """Return the newest original and reference runs measured on the same records as ``run``.

    Runs of one request are compared only when their samples digests are equal: a run measured
    before a record of its samples was held back for another erasure is compared with nothing
    until it is measured again (``verification_remeasure_stale_runs``).
    """
    if run.erasure_request_id is None:
        return None, None
    same = [other for other in _request_runs(run) if samples_digest_of(other) == samples_digest_of(run)]
    original = next((other for other in same if other.role == VerificationRole.ORIGINAL), None)
    reference = next((other for other in same if other.role == VerificationRole.REFERENCE), None)
    return original, reference


def _waiting_for_remeasurement(run: VerificationRun) -> list[dict]:
    """Return skipped items naming the request's runs ``run`` cannot be compared with (other records)."""
    compared_with = {
        VerificationRole.ORIGINAL: (),
        VerificationRole.REFERENCE: (VerificationRole.ORIGINAL,),
        VerificationRole.PRODUCED: (VerificationRole.ORIGINAL, VerificationRole.REFERENCE),
    }[run.role]
    if run.erasure_request_id is None or not compared_with:
        return []
    others = [
        other
        for other in verification_runs_current(_request_runs(run))
        if other.role in compared_with and samples_digest_of(other) != samples_digest_of(run)
    ]
    return [
        {
            "metric": f"comparison_with_{other.role}",
            "reason": (
                f"the {other.get_role_display().lower()} run #{other.pk} was measured on other records "
                "(a record of the samples was held back for an erasure, or released, in between); "
                "the one measured on the older records is measured again, and the two are compared "
                "when that ends"
            ),
        }
        for other in others
    ]


def verification_runs_current(runs) -> list[VerificationRun]:
    """Return the runs no later run of the same request, model, role and original supersedes, by pk.

    A model is measured more than once for one request only when a re-measurement was queued
    (``verification_remeasure_stale_runs``); the newest is its claim, and pages, the API and the
    report show that one. A run without a request is never superseded.
    """
    newest: dict[tuple, VerificationRun] = {}
    for run in sorted(runs, key=lambda run: run.pk):
        if run.erasure_request_id is None:
            key: tuple = ("job", run.job_id)
        else:
            key = (
                run.erasure_request_id,
                run.model_version_id,
                run.role,
                run.job.params.get("original_model_id"),
            )
        newest[key] = run
    return sorted(newest.values(), key=lambda run: run.pk)


def verification_remeasure_stale_runs(run: VerificationRun) -> list[UnlearningJob]:
    """Queue a new measurement of each of the request's models last measured on other records.

    The records a request's models are measured on change only when the guard holds back (or an
    officer releases) a record of its samples between two of its verify jobs. The samples of the
    measurement started last are the current ones; every other model of the request whose newest
    run measured other records is measured again (idempotent per digest), so that each column is
    compared like with like again. Returns the jobs queued or found.
    """
    if run.erasure_request_id is None or samples_digest_of(run) is None:
        return []
    current_runs = verification_runs_current(_request_runs(run))
    latest = max(current_runs, key=lambda other: (other.job.started_at or other.created_at, other.pk))
    digest = samples_digest_of(latest)
    stale = [other for other in current_runs if samples_digest_of(other) != digest]
    if not stale:
        return []
    original_model = ModelVersion.objects.get(pk=run.job.params.get("original_model_id"))
    made = []
    for other in stale:
        for_job = UnlearningJob.objects.filter(pk=other.job.params.get("for_job_id")).first()
        made.append(
            verification_job_create(
                model_version=other.model_version,
                role=other.role,
                erasure_request_id=run.erasure_request_id,
                forget_record_pks=other.job.forget_record_pks,
                original_model=original_model,
                dataset_version=other.job.dataset_version,
                for_job=for_job,
                remeasure_on=digest,
            )
        )
    logger.info(
        "verification.remeasure_queued",
        extra={"verification_run_id": run.pk, "verify_job_ids": [job.pk for job in made]},
    )
    return made


def _robustness_rows(run: VerificationRun, result) -> tuple[list, list[dict]]:
    """Return the robustness section's rows to store and the skipped items to list, for ``run``.

    A measured row carries its section and the engine's statement of what a pass does and does
    not show (``details["limits"]``). For a model an unlearning job produced, every robustness
    row the engine could not judge (no original or retrain measured on the same records, or the
    section switched off) is stored as a row of its own, not measured and therefore failed, so
    that it is counted, shown and must be accepted like any other fail. The original and the
    retrain are the scale of recovery, not claims: what they could not judge is only listed.
    """
    from unlearning_jobs.engine.verify.report import ResultRow, make_row
    from unlearning_jobs.engine.verify.robustness import LIMITS
    from unlearning_jobs.engine.verify.thresholds import resolve_thresholds

    section = result.robustness or {}
    limits = {**LIMITS, **section.get("limits", {})}
    rows = []
    for data in section.get("rows", []):
        row = ResultRow.from_dict(data)
        details = {**row.details, "section": ROBUSTNESS_SECTION, "limits": limits.get(row.metric, "")}
        rows.append(dataclasses.replace(row, details=details))
    skipped = [{**item, "section": ROBUSTNESS_SECTION} for item in section.get("skipped", [])]
    if run.role != VerificationRole.PRODUCED:
        return rows, skipped
    if not section:
        bits = settings.LETHE_VERIFY_ROBUSTNESS_QUANTIZATION_BITS
        skipped = [
            {"metric": metric, "reason": "robustness was not measured (LETHE_VERIFY_ROBUSTNESS is off)"}
            for metric in (
                "relearning_recovery",
                *(f"quantization_{b}bit_recovery" for b in bits),
                "paraphrase_extraction_rate",
            )
        ]
    thresholds = resolve_thresholds(settings.LETHE_VERIFY_THRESHOLDS)
    listed: list[dict] = []
    measured = {row.metric for row in rows}
    for item in skipped:
        metric = item["metric"]
        if metric not in thresholds or metric in measured:
            listed.append({**item, "section": ROBUSTNESS_SECTION})
            continue
        measured.add(metric)
        rows.append(
            make_row(
                value=None,
                threshold=thresholds[metric],
                n_samples=0,
                details={
                    "section": ROBUSTNESS_SECTION,
                    "skipped": item.get("reason", "not measured"),
                    "limits": limits.get(metric, ""),
                },
            )
        )
    return rows, listed


def verification_run_assess(*, run: VerificationRun, plot: bool = True) -> VerificationRun:
    """Judge a run's stored measurements against its original and reference; store the rows.

    The original run is judged alone (nothing to compare with: the engine lists the ratios and
    PrivLeak as skipped); the reference against the original; a produced model against both. The
    rows are replaced as a whole, so a run always shows one consistent judgement. The robustness
    section's rows follow the others (``details["section"] == "robustness"``); the run passes only
    when every row of both passed.
    """
    from unlearning_jobs.engine.verify.suite import assess_measurements

    original, reference = _comparison_runs(run)
    use_original = original if run.role != VerificationRole.ORIGINAL else None
    use_reference = reference if run.role == VerificationRole.PRODUCED else None
    thresholds = settings.LETHE_VERIFY_THRESHOLDS
    result = assess_measurements(
        measurements=run.measurements,
        reference_results=_result_of(use_reference),
        original_results=_result_of(use_original),
        thresholds=thresholds,
    )
    robustness_rows, robustness_skipped = _robustness_rows(run, result)
    rows = list(result.rows) + robustness_rows
    synthetic = (run.sample_sizes or {}).get("holdout_synthetic") or 0
    with transaction.atomic():
        run = VerificationRun.objects.select_for_update().get(pk=run.pk)
        run.results.all().delete()
        VerificationResult.objects.bulk_create(
            [
                VerificationResult(
                    run=run,
                    position=position,
                    metric=row.metric,
                    value=row.value,
                    threshold=row.threshold,
                    comparator=row.comparator,
                    center=row.center,
                    condition=row.condition[:120],
                    passed=row.passed,
                    n_samples=row.n_samples,
                    details=_with_nonmember_origin(row.as_dict()["details"], synthetic=synthetic),
                )
                for position, row in enumerate(rows)
            ]
        )
        run.reference_model = use_reference.model_version if use_reference else None
        run.thresholds = _thresholds_used()
        run.skipped = (
            [dict(item) for item in result.skipped] + robustness_skipped + _waiting_for_remeasurement(run)
        )
        run.passed = bool(rows) and all(row.passed for row in rows)
        run.complete = not run.skipped
        run.assessed_at = timezone.now()
        if plot:
            run.plot_svg, run.plot_png_base64 = _plot(run, original=use_original, reference=use_reference)
        run.save()
    return run


def _with_nonmember_origin(details: dict, *, synthetic: int) -> dict:
    """Return a membership row's details with how many of its non-members were synthetic.

    When the data set has too few records the original was not trained on, the runner makes up
    the non-members with demo-generator records (``runner.verification_inputs``). A membership
    row measured on them says so itself, wherever it is shown (page, API, report), because on a
    data set not written by that generator its AUC can reflect the difference in writing rather
    than membership (``docs/verification.md``).
    """
    if "tpr_at_fpr" not in details:
        return details
    return {**details, "n_nonmembers_synthetic": synthetic}


def _plot(run: VerificationRun, *, original, reference) -> tuple[str, str]:
    """Return the membership-score plot (SVG text, PNG base64) of the run beside its comparisons."""
    import base64
    import tempfile
    from pathlib import Path

    from unlearning_jobs.engine.verify.plot import plot_membership_distributions

    panels = {}
    for label, other in (("original", original), ("retrain reference", reference)):
        if other is not None:
            panels[label] = {"measurements": other.measurements}
    panels[f"{run.get_role_display().split(' (')[0].lower()} (#{run.model_version_id})"] = {
        "measurements": run.measurements
    }
    with tempfile.TemporaryDirectory(prefix="lethe-verify-plot-") as folder:
        svg, png = plot_membership_distributions(results=panels, path=Path(folder) / "membership")
        return svg.read_text(encoding="utf-8"), base64.b64encode(png.read_bytes()).decode("ascii")


def verification_run_record(*, job: UnlearningJob, measurements: dict, sample_sizes: dict) -> VerificationRun:
    """Store what a verify job measured, judge it, and judge again the request's runs that compare with it.

    Idempotent per job (a retried attempt replaces its own run).
    """
    params = job.params
    run, _created = VerificationRun.objects.update_or_create(
        job=job,
        defaults={
            "model_version": job.source_model,
            "erasure_request_id": params.get("erasure_request_id"),
            "role": params["role"],
            "measurements": measurements,
            "sample_sizes": sample_sizes,
        },
    )
    run = verification_run_assess(run=run)
    if run.role != VerificationRole.PRODUCED and run.erasure_request_id is not None:
        # A later original or reference changes what the other runs of the request compare with.
        for other in VerificationRun.objects.filter(erasure_request_id=run.erasure_request_id).exclude(
            pk=run.pk
        ):
            if other.role != VerificationRole.ORIGINAL and other.measurements:
                verification_run_assess(run=other)
    verification_remeasure_stale_runs(run)
    return run


# --- reading ------------------------------------------------------------------------------------------


def _column(run: VerificationRun) -> dict:
    return {
        "run": run,
        "role": run.role,
        "role_display": run.get_role_display(),
        "model": run.model_version,
        "job_id": run.job_id,
        "passed": run.passed,
        "complete": run.complete,
        "results": {result.metric: result for result in run.results.all()},
    }


def verification_comparison(*, erasure_request_id: int | None = None, runs=None) -> dict:
    """Return the side-by-side table: columns original, reference, produced; rows metric × model."""
    if runs is None:
        runs = VerificationRun.objects.filter(erasure_request_id=erasure_request_id)
    runs = sorted(
        verification_runs_current(runs.select_related("model_version", "job").prefetch_related("results")),
        key=lambda run: (ROLE_ORDER.index(run.role), run.pk),
    )
    columns = [_column(run) for run in runs]
    metrics: list[str] = []
    robustness: dict[str, str] = {}
    for column in columns:
        for metric, result in column["results"].items():
            if metric not in metrics:
                metrics.append(metric)
            if (result.details or {}).get("section") == ROBUSTNESS_SECTION:
                robustness[metric] = robustness.get(metric) or result.details.get("limits", "")
    rows = [
        {
            "metric": metric,
            "cells": [column["results"].get(metric) for column in columns],
            "section": ROBUSTNESS_SECTION if metric in robustness else "",
            "limits": robustness.get(metric, ""),
        }
        for metric in metrics
    ]
    return {
        "columns": columns,
        "rows": [row for row in rows if not row["section"]],
        "robustness_rows": [row for row in rows if row["section"]],
    }


def _number(value) -> str:
    return "not measured" if value is None else f"{value:.3g}"


def _interval(pair) -> str:
    if not pair or len(pair) != 2 or None in pair:
        return ""
    return f" (95 % CI {pair[0]:.3g}–{pair[1]:.3g})"


def low_fpr_text(details: Mapping | None) -> str:
    """Return a membership row's TPR at 1 % and 0.1 % FPR with their bootstrap intervals, as text.

    Empty for a row that is not a membership row. A TPR the run did not measure (older runs)
    reads "not measured", never 0; with fewer non-members than 1/FPR the row says the FPR was
    resolved only to 1/non-members, as the engine computed it.
    """
    details = details or {}
    if "tpr_at_fpr" not in details:
        return ""
    tprs = details.get("tpr_at_fpr") or {}
    intervals = details.get("confidence_intervals") or {}
    parts = [
        f"TPR at {label} FPR {_number(tprs.get(key))}{_interval(intervals.get(f'tpr@{key}'))}"
        for key, label in (("0.01", "1 %"), ("0.001", "0.1 %"))
    ]
    text = "; ".join(parts)
    if intervals.get("auc"):
        text += f"; AUC{_interval(intervals['auc'])}"
    members, nonmembers = details.get("n_members"), details.get("n_nonmembers")
    if members is not None and nonmembers is not None:
        text += f"; {members} members, {nonmembers} non-members"
        if details.get("n_nonmembers_synthetic"):
            text += (
                f" ({details['n_nonmembers_synthetic']} of them synthetic demo-generator records, "
                "not the data set's)"
            )
    resolution = details.get("fpr_resolution")
    if resolution and resolution > 0.001:
        text += f"; FPR resolved to {resolution:.3g} only"
    if details.get("n_bootstrap"):
        text += f"; {details['n_bootstrap']} bootstrap resamples"
    return text


def verification_for_job(job: UnlearningJob) -> dict:
    """Return what the job page shows: the comparison of the job's request and the job's own plot.

    For a verify job, its run; for an unlearning job, the run of the model it produced.
    """
    if job.kind == JobKind.VERIFY:
        run = VerificationRun.objects.filter(job=job).first()
        request_id = job.params.get("erasure_request_id")
    else:
        run = (
            VerificationRun.objects.filter(
                job__params__for_job_id=job.pk, model_version_id=job.produced_model_id
            )
            .order_by("-pk")
            .first()
            if job.produced_model_id
            else None
        )
        request_id = job.erasure_request_id
    comparison = (
        verification_comparison(erasure_request_id=request_id)
        if request_id
        else verification_comparison(runs=VerificationRun.objects.filter(pk=run.pk if run else None))
    )
    return {
        "run": run,
        "comparison": comparison,
        "erasure_request_id": request_id,
        "jobs": list(verify_jobs_of_request(request_id)) if request_id else [],
    }


def run_as_dict(run: VerificationRun) -> dict:
    """Return a run and its rows as JSON for the API (no personal data: examples are masked)."""
    return {
        "id": run.pk,
        "job_id": run.job_id,
        "role": run.role,
        "model_version_id": run.model_version_id,
        "model_version": run.model_version.name,
        "erasure_request_id": run.erasure_request_id,
        "reference_model_id": run.reference_model_id,
        "passed": run.passed,
        "complete": run.complete,
        "thresholds": run.thresholds,
        "sample_sizes": run.sample_sizes,
        "skipped": run.skipped,
        "created_at": run.created_at,
        "assessed_at": run.assessed_at,
        "has_plot": bool(run.plot_svg),
        "results": [
            {
                "metric": r.metric,
                "section": (r.details or {}).get("section") or "verification",
                "value": r.value,
                "threshold": r.threshold,
                "comparator": r.comparator,
                "center": r.center,
                "condition": r.condition,
                "passed": r.passed,
                "n_samples": r.n_samples,
                "details": r.details,
            }
            for r in run.results.all()
        ],
    }


# --- the request workflow and its report -------------------------------------------------------------


def request_verification_unfinished_refusal(erasure_request) -> str | None:
    """Return why a request cannot complete while a job or verification of it is unfinished, or None.

    Queued, running and failed jobs (decision jobs and verify jobs) hold it back, named; a failed
    one must be retried or cancelled, so that a completed request never hides a missing check.
    """
    pending = list(
        UnlearningJob.objects.filter(erasure_request=erasure_request, status__in=BLOCKING_STATUSES).order_by(
            "pk"
        )
    )
    # Verify jobs made before they named their request in the column are found by their parameters.
    pending += list(
        verify_jobs_of_request(erasure_request.pk)
        .filter(status__in=BLOCKING_STATUSES)
        .exclude(pk__in=[job.pk for job in pending])
    )
    if not pending:
        return None
    named = ", ".join(f"#{job.pk} ({job.kind}, {job.status})" for job in pending[:8])
    more = f" and {len(pending) - 8} more" if len(pending) > 8 else ""
    return (
        f"{erasure_request.reference}: {len(pending)} job(s) or verification(s) have not finished: "
        f"{named}{more}; wait for them, or retry or cancel them first."
    )


def verification_for_report(erasure_request) -> dict:
    """Return the request's verification rows and plots for its audit report, ``passed`` as stored."""
    results, figures = [], []
    runs = verification_runs_current(
        VerificationRun.objects.filter(erasure_request=erasure_request)
        .select_related("model_version", "reference_model", "job")
        .prefetch_related("results")
    )
    for run in runs:
        subject = f"{run.get_role_display()}: {run.model_version.name} (#{run.model_version_id})"
        reference = (
            f"{run.reference_model.name} (#{run.reference_model_id})" if run.reference_model_id else None
        )
        for row in run.results.all():
            details = row.details or {}
            item = {
                "subject": subject,
                "job_id": run.job_id,
                "role": run.role,
                "section": details.get("section") or "verification",
                "metric": row.metric,
                "value": row.value,
                "threshold": row.threshold,
                "comparator": row.comparator,
                "condition": row.condition,
                "passed": row.passed,
                "n_samples": row.n_samples,
                "reference": reference,
            }
            if details.get("skipped"):
                item["not_measured_because"] = details["skipped"]
            if details.get("limits"):
                item["limits"] = details["limits"]
            if "tpr_at_fpr" in details:
                item["membership"] = {
                    key: details.get(key)
                    for key in (
                        "tpr_at_fpr",
                        "confidence_intervals",
                        "n_members",
                        "n_nonmembers",
                        "n_nonmembers_synthetic",
                        "fpr_resolution",
                        "n_bootstrap",
                    )
                }
                item["low_fpr_text"] = low_fpr_text(details)
            results.append(item)
        if run.role != VerificationRole.ORIGINAL and run.plot_png_base64:
            figures.append(
                {
                    "title": f"Membership scores, forget vs holdout — {subject}",
                    "caption": "Min-K%++ scores of the forget records against held-out records; "
                    "after a successful erasure the two overlap as they do for the retrain.",
                    "png_base64": run.plot_png_base64,
                }
            )
    return {"results": results, "figures": figures}
