"""The officer's decision: plan validation per item, decisions and jobs in one transaction, request flow."""

from __future__ import annotations

import pytest

from compliance.models import AuditEvent
from requests_app import services as request_services
from requests_app.models import RequestStatus
from tests.factories.jobs import (  # noqa: F401  (fixtures)
    TINY_APPROX,
    data_dir,
    fast_jobs,
    model_train,
    request_reviewed,
    run_inline,
    tickets,
)
from unlearning_jobs.decisions import services as decisions
from unlearning_jobs.models import ErasureDecision, JobStatus, ModelVersion, UnlearningJob

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]


@pytest.fixture
def source(tickets, engineer):
    return model_train(dataset_version=tickets, engineer=engineer).produced_model


@pytest.fixture
def reviewed(officer, tickets):
    return request_reviewed(officer=officer)


def _item(model, method="gradient_difference", framework="deletion", params=None):
    return {"model_version": model.pk, "framework": framework, "method": method, "params": params or {}}


def test_a_bad_plan_reports_every_item_and_saves_nothing(reviewed, source, officer, data_dir):
    external = ModelVersion.objects.create(name="outside", path=str(data_dir / "x"), weights_sha256="1" * 64)
    plan = [
        _item(source, params={"learning_rate": 5}),  # out of range
        _item(source, method="forget_everything"),  # no such method
        {"model_version": 999_999, "framework": "deletion", "method": "retrain"},
        _item(source, framework="telepathy"),
        _item(external, method="retrain"),  # exact needs the training data
        _item(source, method="sisa"),  # not a SISA model
        _item(source, method="npo", params={"bogus": 1}),
        _item(source, framework="output_suppression", method="guard", params={"mode": "shout"}),
        _item(source, method="retrain"),  # fine
    ]
    events = AuditEvent.objects.count()

    with pytest.raises(decisions.DecisionPlanError) as raised:
        decisions.erasure_decision_approve(erasure_request=reviewed, actor=officer, rationale="", plan=plan)

    error = raised.value
    assert "rationale" in error.field_errors
    items = error.item_errors
    assert "GradientDifferenceParams.learning_rate" in items[0]["params"][0]
    assert "forget_everything" in items[1]["method"][0] and "retrain" in items[1]["method"][0]
    assert "No model version has id 999999" in items[2]["model_version"][0]
    assert "framework" in items[3]
    assert "registered without its data-set version" in items[4]["model_version"][0]
    assert "not a SISA ensemble" in items[5]["method"][0]
    assert "unknown field(s) bogus" in items[6]["params"][0]
    assert "mode" in items[7]["params"][0]
    assert items[8] == {}
    assert error.as_api_errors()["plan"][8] == {}
    reviewed.refresh_from_db()
    assert reviewed.status == RequestStatus.REVIEW
    assert not ErasureDecision.objects.exists() and not UnlearningJob.objects.filter(kind="unlearn").exists()
    assert AuditEvent.objects.count() == events


def test_a_model_outside_the_scope_is_refused(officer, source, tickets):
    erasure_request = request_reviewed(officer=officer)
    request_services.ErasureRequest.objects.filter(pk=erasure_request.pk).update(
        scope_all=False, scope_model_version_ids=[source.pk + 1000]
    )
    erasure_request.refresh_from_db()
    with pytest.raises(decisions.DecisionPlanError) as raised:
        decisions.erasure_decision_approve(
            erasure_request=erasure_request, actor=officer, rationale="Art. 17(1)(b)", plan=[_item(source)]
        )
    assert "not in the request's scope" in raised.value.item_errors[0]["model_version"][0]


@pytest.fixture
def method_without_runner(monkeypatch):
    """A suppression method whose stage has no runner yet: its decisions are recorded without a job."""
    from unlearning_jobs.decisions import methods

    future = methods.PlanMethod(
        framework="output_suppression",
        method="future_filter",
        validate=lambda params: dict(params or {}),
        job_kind=None,
        summary="a filter the suppression stage has not built yet",
    )
    offered = methods._all_methods()
    monkeypatch.setattr(methods, "_all_methods", lambda: (*offered, future))
    yield "future_filter"


def test_approval_stores_decisions_queues_jobs_and_starts_executing(
    reviewed, source, officer, tickets, method_without_runner, django_capture_on_commit_callbacks
):
    plan = [
        _item(source, params={"max_steps": 4}),
        _item(source, method="retrain"),
        _item(
            source, framework="output_suppression", method=method_without_runner, params={"mode": "refuse"}
        ),
    ]

    with django_capture_on_commit_callbacks() as callbacks:
        made = decisions.erasure_decision_approve(
            erasure_request=reviewed,
            actor=officer,
            rationale="Consent withdrawn; no other ground (Art. 17(1)(b)).",
            plan=plan,
        )

    reviewed.refresh_from_db()
    assert reviewed.status == RequestStatus.EXECUTING
    assert [(d.framework, d.method) for d in made] == [
        ("deletion", "gradient_difference"),
        ("deletion", "retrain"),
        ("output_suppression", "future_filter"),
    ]
    assert made[0].params["max_steps"] == 4 and made[0].params["retain_weight"] == 3.0  # defaults filled in
    assert made[2].params["mode"] == "refuse" and made[2].job_note and not made[2].jobs.exists()
    jobs = list(UnlearningJob.objects.filter(erasure_request=reviewed).order_by("pk"))
    assert [(j.method, j.decision_id, j.status) for j in jobs] == [
        ("gradient_difference", made[0].pk, "queued"),
        ("retrain", made[1].pk, "queued"),
    ]
    forget = jobs[0].forget_record_pks
    assert len(forget) == 12 and all(j.forget_record_pks == forget for j in jobs)
    assert jobs[0].dataset_version == tickets and jobs[0].source_model == source
    assert len([c for c in callbacks if "send" in getattr(c, "__qualname__", "")]) == 2
    timeline = list(
        AuditEvent.objects.filter(
            object_type="requests_app.erasurerequest", object_id=str(reviewed.pk)
        ).values_list("action", flat=True)
    )
    assert timeline[-2:] == ["erasure_request.approved", "erasure_request.execution_started"]
    recorded = AuditEvent.objects.filter(action="erasure_decision.recorded")
    assert recorded.count() == 3 and all(e.actor == officer for e in recorded)
    with pytest.raises(request_services.TransitionNotAllowed):
        decisions.erasure_decision_approve(
            erasure_request=reviewed, actor=officer, rationale="again", plan=plan
        )


def test_the_request_moves_to_verifying_when_its_last_decision_job_succeeds(
    reviewed, source, officer, engineer
):
    decisions.erasure_decision_approve(
        erasure_request=reviewed,
        actor=officer,
        rationale="Art. 17(1)(b)",
        plan=[_item(source, params=TINY_APPROX), _item(source, method="gradient_ascent", params=TINY_APPROX)],
    )
    first, second = UnlearningJob.objects.filter(erasure_request=reviewed).order_by("pk")

    assert run_inline(first) == "succeeded"
    reviewed.refresh_from_db()
    assert reviewed.status == RequestStatus.EXECUTING
    refusal = request_services.transition_refusal(erasure_request=reviewed, action="start_verifying")
    assert refusal and f"#{second.pk}" in refusal

    assert run_inline(second) == "succeeded"
    reviewed.refresh_from_db()
    assert reviewed.status == RequestStatus.VERIFYING
    event = AuditEvent.objects.filter(
        action="erasure_request.verification_started", object_id=str(reviewed.pk)
    ).get()
    assert event.actor is None and sorted(event.details["jobs_succeeded"]) == [first.pk, second.pk]


def test_a_failed_decision_job_holds_the_request_until_it_is_retried_or_given_up(
    reviewed, source, officer, engineer
):
    from unlearning_jobs.jobs import services as job_services

    decisions.erasure_decision_approve(
        erasure_request=reviewed,
        actor=officer,
        rationale="Art. 17(1)(b)",
        plan=[_item(source, params=TINY_APPROX)],
    )
    job = UnlearningJob.objects.get(erasure_request=reviewed)
    claimed = job_services.job_claim(job_id=job.pk, worker="w@h")
    job_services.job_fail(job_id=job.pk, attempt=claimed.attempts, error="x", error_type="RuntimeError")
    reviewed.refresh_from_db()
    assert reviewed.status == RequestStatus.EXECUTING

    job_services.job_cancel(job=job, actor=engineer)  # given up: nothing succeeded, the officer decides
    reviewed.refresh_from_db()
    assert (
        reviewed.status == RequestStatus.EXECUTING
        and UnlearningJob.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    )


SUCCEEDED_JOBS_SEEN: list = []


def record_succeeded_job(job) -> None:
    """A success hook listed by the test below: what it sees of the job, inside the transaction."""
    SUCCEEDED_JOBS_SEEN.append((job.pk, job.status, job.produced_model_id is not None))


def test_success_hooks_run_in_the_success_transaction(reviewed, source, officer, settings):
    settings.LETHE_JOB_SUCCEEDED_HOOKS = [
        *settings.LETHE_JOB_SUCCEEDED_HOOKS,
        f"{__name__}.record_succeeded_job",
    ]
    SUCCEEDED_JOBS_SEEN.clear()
    decisions.erasure_decision_approve(
        erasure_request=reviewed,
        actor=officer,
        rationale="Art. 17(1)(b)",
        plan=[_item(source, params=TINY_APPROX)],
    )
    job = UnlearningJob.objects.get(erasure_request=reviewed)
    run_inline(job)
    assert SUCCEEDED_JOBS_SEEN == [(job.pk, "succeeded", True)]


def test_the_report_sections_list_decisions_and_jobs_without_record_text(reviewed, source, officer):
    from compliance.reports.sections import report_section_decisions, report_section_jobs

    decisions.erasure_decision_approve(
        erasure_request=reviewed,
        actor=officer,
        rationale="Art. 17(1)(b)",
        plan=[_item(source, params=TINY_APPROX)],
    )
    run_inline(UnlearningJob.objects.get(erasure_request=reviewed))

    decided = report_section_decisions(reviewed)["decisions"]
    ran = report_section_jobs(reviewed)["jobs"]
    assert decided[0]["frameworks"] == ["deletion"] and decided[0]["methods"] == ["gradient_difference"]
    assert ran[0]["status"] == "succeeded" and ran[0]["weights_sha256_in"] == source.weights_sha256
    assert (
        len(ran[0]["weights_sha256_out"]) == 64
        and ran[0]["parameters"]["max_steps"] == TINY_APPROX["max_steps"]
    )
    shown = str(decided).lower() + str(ran).lower()
    assert "quill" not in shown and "ada quill" not in shown and "0011" not in shown
