"""Every list page and list endpoint reads a page of rows in a fixed number of queries (no N+1).

Each test builds two rows of what the page lists (with their related objects, through the
services as real use does), counts the queries of one GET, adds eight rows more and counts
again: the count must not grow with the rows. Each also checks that the rows are on the page,
so that a flat count never comes from an empty one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from requests_app import services as request_services
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import LegalGround
from tests.factories.jobs import (
    data_dir,  # noqa: F401  (fixture)
    dataset_version_make,
    tiny_records,
)
from tests.requests_app.conftest import take_step
from unlearning_jobs.datasets.storage import record_id_hash
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import JobStatus, UnlearningJob

pytestmark = [pytest.mark.django_db]

SMALL, LARGE = 2, 10
#: Queries a page may add when it has more rows, whatever their number (none so far).
SLACK = 0


@pytest.fixture(autouse=True)
def _quiet_settings(settings):
    # Succeeded unlearning jobs of a request would queue verification jobs: more rows than built.
    settings.LETHE_VERIFY_AUTO = False


# --- counting ------------------------------------------------------------------------------------


@dataclass
class Counted:
    queries: int
    response: object
    sql: list[str]


def _count(call) -> Counted:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == 200, getattr(response, "content", b"")[:2000]
    return Counted(len(captured.captured_queries), response, [q["sql"] for q in captured.captured_queries])


def _assert_flat(name: str, small: Counted, large: Counted) -> None:
    print(f"\nQUERIES {name}: {SMALL} rows {small.queries}, {LARGE} rows {large.queries}")
    assert large.queries <= small.queries + SLACK, (
        f"{name}: {small.queries} queries with {SMALL} rows, {large.queries} with {LARGE}:\n"
        + "\n".join(large.sql)
    )


def _measure(name: str, call, build_more) -> tuple[Counted, Counted]:
    """Warm up, count with the rows built so far, ``build_more()``, count again; compare."""
    call()  # one-time work (content types, permission caches of this process) is not per row
    small = _count(call)
    build_more()
    large = _count(call)
    _assert_flat(name, small, large)
    return small, large


def _page(client, user, url, method="get", **data):
    client.force_login(user)
    return lambda: getattr(client, method)(url, data)


def _api(user, url, method="get", data=None):
    client = APIClient()
    client.force_authenticate(user)
    return lambda: getattr(client, method)(url, data, format="json")


def _html(counted: Counted) -> str:
    return counted.response.content.decode()


# --- builders (through the services) -------------------------------------------------------------


def _subject(n: int) -> SubjectIdentifiers:
    # Every other request shares an e-mail with the one before, so it is flagged as its duplicate.
    return SubjectIdentifiers(
        names=(f"Person Number{n}",),
        emails=(f"person{n - n % 2}@example.org",),
        account_ids=(f"ACC-{100000 + n}",),
    )


def _requests(officer, start: int, count: int, *, steps=("verify_identity",)):
    made = []
    for n in range(start, start + count):
        erasure_request = request_services.erasure_request_create(
            subject=_subject(n),
            legal_ground=LegalGround.CONSENT_WITHDRAWN,
            actor=officer,
            assigned_officer=officer if n % 3 else None,
        )
        for step in steps[: n % (len(steps) + 1)]:
            erasure_request = take_step(step, erasure_request, officer)
        made.append(erasure_request)
    return made


def _request_in_review(officer, n: int):
    erasure_request = request_services.erasure_request_create(
        subject=_subject(n), legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer
    )
    for step in ("verify_identity", "start_locating", "submit_for_review"):
        erasure_request = take_step(step, erasure_request, officer)
    return erasure_request


def _model(*, engineer, dataset_version, name: str, parent=None):
    """A model version made by a training job, as a worker records it (no weights are read)."""
    job = jobs.train_job_create(dataset_version=dataset_version, actor=engineer, name=name, enqueue=False)
    claimed = jobs.job_claim(job_id=job.pk, worker="trainer@host")
    produced = jobs.ProducedModel(
        name=name,
        path=Path("/nonexistent/models") / f"{name}-job{job.pk}",
        weights_sha256=f"{job.pk:064x}",
        kind="hf",
        recipe={"n_layer": 1},
        dataset_version=dataset_version,
        parent=parent,
    )
    done = jobs.job_succeed(job_id=job.pk, attempt=claimed.attempts, metrics={"loss": 1.0}, produced=produced)
    return done.produced_model


@dataclass
class JobScene:
    dataset_version: object
    engineer: object
    officer: object
    jobs: list
    models: list
    requests: list
    workers: list

    def add(self, count: int) -> None:
        """Add ``count`` unlearning jobs, each for its own request on its own model: one queued,
        one running on its own worker (with a heartbeat), one failed, in turn."""
        from unlearning_jobs.workers.services import worker_heartbeat_record

        records = list(self.dataset_version.records.values_list("pk", flat=True)[:3])
        for _ in range(count):
            n = len(self.jobs)
            parent = self.models[-1] if self.models else None
            model = _model(
                engineer=self.engineer, dataset_version=self.dataset_version, name=f"model-{n}", parent=parent
            )
            erasure_request = _requests(self.officer, 1000 + n, 1)[0]
            job = jobs.job_create(
                kind="unlearn",
                actor=self.engineer,
                framework="deletion",
                method="gradient_ascent",
                params={},
                source_model=model,
                dataset_version=self.dataset_version,
                erasure_request=erasure_request,
                forget_record_pks=records,
                enqueue=False,
            )
            worker = f"gpu-{n}@host"
            worker_heartbeat_record(
                hostname=worker,
                queues=["gpu"],
                pid=4000 + n,
                device={
                    "type": "cuda",
                    "name": "NVIDIA H100",
                    "memory_total_bytes": 80 << 30,
                    "memory_free_bytes": 60 << 30,
                },
            )
            if n % 3 in (1, 2):
                claimed = jobs.job_claim(job_id=job.pk, worker=worker)
                if n % 3 == 2:
                    jobs.job_fail(
                        job_id=job.pk,
                        attempt=claimed.attempts,
                        error="RuntimeError: CUDA error",
                        error_type="RuntimeError",
                    )
            self.jobs.append(job)
            self.models.append(model)
            self.requests.append(erasure_request)
            self.workers.append(worker)


@pytest.fixture
def job_scene(data_dir, engineer, officer):  # noqa: F811
    scene = JobScene(
        dataset_version=dataset_version_make(engineer=engineer, index=False),
        engineer=engineer,
        officer=officer,
        jobs=[],
        models=[],
        requests=[],
        workers=[],
    )
    scene.add(SMALL)
    return scene


# --- erasure requests: the officer's lists and the API -----------------------------------------------


def _request_rows(html: str, requests) -> None:
    for erasure_request in requests:
        assert f'data-reference="{erasure_request.reference}"' in html


def test_officer_home_lists_open_requests_in_fixed_queries(client, officer):
    made = _requests(officer, 0, SMALL)
    more = []
    small, large = _measure(
        "officer home /requests/",
        _page(client, officer, reverse("requests_app:home")),
        lambda: more.extend(_requests(officer, SMALL, LARGE - SMALL)),
    )
    _request_rows(_html(small), made)
    _request_rows(_html(large), made + more)
    assert "duplicate of" in _html(large)


def test_request_list_lists_every_request_in_fixed_queries(client, officer, auditor):
    made = _requests(officer, 0, SMALL, steps=("verify_identity", "reject"))
    more = []
    small, large = _measure(
        "request list /requests/all/",
        _page(client, auditor, reverse("requests_app:list")),
        lambda: more.extend(_requests(officer, SMALL, LARGE - SMALL, steps=("verify_identity", "reject"))),
    )
    _request_rows(_html(large), made + more)


def test_request_search_page_lists_its_matches_in_fixed_queries(client, officer):
    made = _requests(officer, 0, SMALL)
    more = []
    small, large = _measure(
        "request search POST /requests/all/",
        _page(client, officer, reverse("requests_app:list"), "post", q="person0@example.org"),
        lambda: more.extend(
            request_services.erasure_request_create(
                subject=SubjectIdentifiers(names=(f"Other {n}",), emails=("person0@example.org",)),
                legal_ground=LegalGround.CONSENT_WITHDRAWN,
                actor=officer,
            )
            for n in range(LARGE - SMALL)
        ),
    )
    _request_rows(_html(large), made + more)


def test_requests_api_lists_requests_in_fixed_queries(officer, auditor):
    made = _requests(officer, 0, SMALL)
    small, large = _measure(
        "GET /api/v1/requests/",
        _api(auditor, "/api/v1/requests/"),
        lambda: made.extend(_requests(officer, SMALL, LARGE - SMALL)),
    )
    assert small.response.data["count"] == SMALL and large.response.data["count"] == LARGE
    results = large.response.data["results"]
    assert {row["reference"] for row in results} == {r.reference for r in made}
    assert any(row["duplicate_of"] for row in results) and any(row["assigned_officer"] for row in results)


def test_requests_search_api_lists_its_matches_in_fixed_queries(officer, auditor):
    made = _requests(officer, 0, SMALL)

    def more():
        for n in range(LARGE - SMALL):
            made.append(
                request_services.erasure_request_create(
                    subject=SubjectIdentifiers(names=(f"Other {n}",), emails=("person0@example.org",)),
                    legal_ground=LegalGround.CONSENT_WITHDRAWN,
                    actor=officer,
                )
            )

    small, large = _measure(
        "POST /api/v1/requests/search/",
        _api(auditor, "/api/v1/requests/search/", "post", {"q": "person0@example.org"}),
        more,
    )
    assert len(small.response.data) == SMALL and len(large.response.data) == LARGE


def test_request_events_api_lists_the_timeline_in_fixed_queries(officer, auditor):
    erasure_request = _requests(officer, 0, 1)[0]

    def reassign(times):
        nonlocal erasure_request
        for n in range(times):
            erasure_request = request_services.erasure_request_assign(
                erasure_request=erasure_request, actor=officer, officer=None if n % 2 == 0 else officer
            )

    url = f"/api/v1/requests/{erasure_request.pk}/events/"
    small, large = _measure(
        "GET /api/v1/requests/<id>/events/", _api(auditor, url), lambda: reassign(LARGE - SMALL)
    )
    assert len(large.response.data) >= len(small.response.data) + LARGE - SMALL


# --- review --------------------------------------------------------------------------------------------


def test_review_queue_lists_requests_in_review_in_fixed_queries(client, officer):
    made = [_request_in_review(officer, n) for n in range(SMALL)]
    small, large = _measure(
        "review queue /requests/review/",
        _page(client, officer, reverse("review:queue")),
        lambda: made.extend(_request_in_review(officer, n) for n in range(SMALL, LARGE)),
    )
    for erasure_request in made:
        assert erasure_request.reference in _html(large)


ADA = SubjectIdentifiers(names=("Ada Quill",), emails=("ada.quill@example.org",))


def _ada_records(prefix: str, count: int) -> list[dict]:
    """``count`` records with Ada's e-mail, and a few without anybody's."""
    records = [
        {
            "id": f"{prefix}{n:03d}",
            "text": f"Ticket {prefix}{n}: contact Ada Quill at ada.quill@example.org about parcel {n}.",
        }
        for n in range(count)
    ]
    filler = [r for r in tiny_records() if "@" not in r["text"]][:4]
    return records + [{"id": f"{prefix}F{n}", "text": r["text"]} for n, r in enumerate(filler)]


def _locate(erasure_request, officer):
    from requests_app.matching.services import erasure_request_locate, locate_run_execute
    from unlearning_jobs.models import SearchCoverage

    if erasure_request.status != "locating":
        erasure_request = erasure_request_locate(erasure_request=erasure_request, actor=officer)
    coverage = SearchCoverage.objects.filter(erasure_request=erasure_request).order_by("-pk").first()
    assert locate_run_execute(coverage_id=coverage.pk) == "reviewing"
    erasure_request.refresh_from_db()
    return erasure_request


@pytest.fixture
def review_scene(data_dir, engineer, officer):  # noqa: F811
    """A request in review with 2 candidates; ``more()`` indexes 8 more of its records and searches again."""
    from unlearning_jobs.models import MatchCandidate

    dataset_version_make(engineer=engineer, name="tickets-a", records=_ada_records("A", SMALL))
    erasure_request = request_services.erasure_request_create(
        subject=ADA, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer
    )
    erasure_request = take_step("verify_identity", erasure_request, officer)
    erasure_request = _locate(take_step("start_locating", erasure_request, officer), officer)
    assert MatchCandidate.objects.filter(erasure_request=erasure_request).count() == SMALL

    def more():
        dataset_version_make(engineer=engineer, name="tickets-b", records=_ada_records("B", LARGE - SMALL))
        _locate(erasure_request, officer)
        assert MatchCandidate.objects.filter(erasure_request=erasure_request).count() == LARGE

    return erasure_request, more


def test_review_page_shows_candidates_in_fixed_queries(client, officer, review_scene):
    erasure_request, more = review_scene
    small, large = _measure(
        "review page /requests/<id>/review/",
        _page(client, officer, reverse("review:detail", args=[erasure_request.pk])),
        more,
    )
    assert _html(small).count('class="candidate ') == SMALL
    assert _html(large).count('class="candidate ') == LARGE
    assert 'data-record="A000"' in _html(large) and 'data-record="B007"' in _html(large)


def test_matches_api_lists_candidates_in_fixed_queries(officer, auditor, review_scene):
    erasure_request, more = review_scene
    small, large = _measure(
        "GET /api/v1/requests/<id>/matches/",
        _api(auditor, f"/api/v1/requests/{erasure_request.pk}/matches/"),
        more,
    )
    assert len(small.response.data["results"]) == SMALL
    # An auditor gets records by their keyed hash, never their ids (docs/security.md, "Record ids").
    hashes = {row["record_id_hash"] for row in large.response.data["results"]}
    assert hashes >= {record_id_hash("A000"), record_id_hash("B007")}
    assert len(large.response.data["results"]) == LARGE


def _measure_pair(name: str, call_small, call_large) -> tuple[Counted, Counted]:
    """Like ``_measure`` for pages of one object (a request) that hold SMALL and LARGE rows."""
    call_small()
    call_large()
    small, large = _count(call_small), _count(call_large)
    _assert_flat(name, small, large)
    return small, large


@pytest.fixture
def decided(data_dir, engineer, officer):  # noqa: F811
    """Two requests for Ada, approved with a plan of SMALL and of LARGE decisions (one per model version)."""
    from requests_app.matching.review import match_candidates_confirm_above
    from unlearning_jobs.decisions.services import erasure_decision_approve

    version = dataset_version_make(engineer=engineer, name="tickets-a", records=_ada_records("A", 3))
    models = []
    for n in range(LARGE):
        models.append(
            _model(
                engineer=engineer,
                dataset_version=version,
                name=f"decided-{n}",
                parent=models[-1] if models else None,
            )
        )
    approved = []
    for count in (SMALL, LARGE):
        erasure_request = request_services.erasure_request_create(
            subject=ADA, legal_ground=LegalGround.CONSENT_WITHDRAWN, actor=officer
        )
        erasure_request = _locate(
            take_step("start_locating", take_step("verify_identity", erasure_request, officer), officer),
            officer,
        )
        match_candidates_confirm_above(erasure_request=erasure_request, actor=officer, score=0.0)
        plan = [
            {"model_version": model.pk, "framework": "deletion", "method": "gradient_ascent", "params": {}}
            for model in models[:count]
        ]
        decisions = erasure_decision_approve(
            erasure_request=erasure_request,
            actor=officer,
            rationale="Consent withdrawn (Art. 17(1)(b)).",
            plan=plan,
        )
        assert len(decisions) == count
        approved.append(erasure_request)
    return approved


def test_decisions_api_lists_decisions_and_jobs_in_fixed_queries(auditor, decided):
    few, many = decided
    small, large = _measure_pair(
        "GET /api/v1/requests/<id>/decisions/",
        _api(auditor, f"/api/v1/requests/{few.pk}/decisions/"),
        _api(auditor, f"/api/v1/requests/{many.pk}/decisions/"),
    )
    assert len(small.response.data["decisions"]) == SMALL and len(small.response.data["jobs"]) == SMALL
    assert len(large.response.data["decisions"]) == LARGE and len(large.response.data["jobs"]) == LARGE
    assert {job["request_reference"] for job in large.response.data["jobs"]} == {many.reference}
    assert all(len(decision["jobs"]) == 1 for decision in large.response.data["decisions"])


def test_decision_page_lists_decisions_and_jobs_in_fixed_queries(client, auditor, decided):
    few, many = decided
    client.force_login(auditor)
    small, large = _measure_pair(
        "decision page /requests/<id>/decision/",
        lambda: client.get(reverse("erasure-decision", args=[few.pk])),
        lambda: client.get(reverse("erasure-decision", args=[many.pk])),
    )
    for job in UnlearningJob.objects.filter(erasure_request=many):
        assert f"#{job.pk}</a>" in _html(large)
    assert _html(large).count("decided-") >= LARGE


# --- jobs, workers, models -----------------------------------------------------------------------------


def test_job_list_page_lists_jobs_in_fixed_queries(client, engineer, job_scene):
    small, large = _measure(
        "job list /jobs/all/",
        _page(client, engineer, reverse("unlearning_jobs:job-list")),
        lambda: job_scene.add(LARGE - SMALL),
    )
    html = _html(large)
    for job, erasure_request, model in zip(job_scene.jobs, job_scene.requests, job_scene.models):
        assert reverse("unlearning_jobs:job-detail", args=[job.pk]) in html
        assert erasure_request.reference in html and model.name in html


def test_job_list_page_for_auditors_lists_request_jobs_in_fixed_queries(client, auditor, job_scene):
    small, large = _measure(
        "job list /jobs/all/ (auditor)",
        _page(client, auditor, reverse("unlearning_jobs:job-list")),
        lambda: job_scene.add(LARGE - SMALL),
    )
    for job in job_scene.jobs:
        assert reverse("unlearning_jobs:job-detail", args=[job.pk]) in _html(large)


def test_engineer_queue_and_workers_page_in_fixed_queries(client, engineer, job_scene):
    small, large = _measure(
        "job queue and workers /jobs/",
        _page(client, engineer, reverse("unlearning_jobs:home")),
        lambda: job_scene.add(LARGE - SMALL),
    )
    html = _html(large)
    for job, erasure_request, worker in zip(job_scene.jobs, job_scene.requests, job_scene.workers):
        assert f'data-job-id="{job.pk}"' in html and erasure_request.reference in html
        assert worker in html
    running = [job for job in UnlearningJob.objects.filter(status=JobStatus.RUNNING, kind="unlearn")]
    assert running and all(f"#{job.pk} gradient_ascent" in html for job in running)


def test_jobs_api_lists_jobs_in_fixed_queries(engineer, auditor, job_scene):
    small, large = _measure(
        "GET /api/v1/jobs/", _api(engineer, "/api/v1/jobs/"), lambda: job_scene.add(LARGE - SMALL)
    )
    rows = large.response.data["results"]
    assert {row["id"] for row in rows} >= {job.pk for job in job_scene.jobs}
    assert {row["request_reference"] for row in rows} >= {r.reference for r in job_scene.requests}


def test_jobs_api_for_auditors_lists_request_jobs_in_fixed_queries(auditor, job_scene):
    small, large = _measure(
        "GET /api/v1/jobs/ (auditor)", _api(auditor, "/api/v1/jobs/"), lambda: job_scene.add(LARGE - SMALL)
    )
    assert {row["id"] for row in large.response.data["results"]} == {job.pk for job in job_scene.jobs}


def test_model_list_page_lists_model_versions_in_fixed_queries(client, officer, job_scene):
    small, large = _measure(
        "model list /jobs/models/",
        _page(client, officer, reverse("unlearning_jobs:model-list")),
        lambda: job_scene.add(LARGE - SMALL),
    )
    html = _html(large)
    for model in job_scene.models:
        assert reverse("unlearning_jobs:model-detail", args=[model.pk]) in html
        assert f"job #{model.produced_by_job_id}" in html


def test_models_api_lists_model_versions_in_fixed_queries(officer, job_scene):
    small, large = _measure(
        "GET /api/v1/models/", _api(officer, "/api/v1/models/"), lambda: job_scene.add(LARGE - SMALL)
    )
    rows = large.response.data["results"]
    assert {row["id"] for row in rows} == {model.pk for model in job_scene.models}
    assert all(row["created_by"] == "engineer" for row in rows)


def test_deployment_list_page_in_fixed_queries(client, engineer, job_scene):
    from unlearning_jobs.suppression.services import deployment_create

    def deploy(models):
        for model in models:
            deployment_create(
                name=f"deploy-{model.pk}", model_version=model, policy={"mode": "redact"}, actor=engineer
            )

    deploy(job_scene.models)

    def more():
        job_scene.add(LARGE - SMALL)
        deploy(job_scene.models[SMALL:])

    small, large = _measure(
        "deployment list /jobs/deployments/",
        _page(client, engineer, reverse("unlearning_jobs:deployment-list")),
        more,
    )
    for model in job_scene.models:
        assert f"deploy-{model.pk}" in _html(large)


# --- data sets -----------------------------------------------------------------------------------------


def _datasets(engineer, start: int, count: int) -> list:
    """``count`` data sets, unindexed (no Presidio needed); every other one with a second version."""
    made = []
    for n in range(start, start + count):
        records = [{"id": f"D{n}-{i}", "text": f"Data set {n} record {i}."} for i in range(3)]
        version = dataset_version_make(engineer=engineer, name=f"set-{n}", records=records, index=False)
        if n % 2:
            version = dataset_version_make(
                engineer=engineer, name=f"set-{n}", records=records[:2], index=False
            )
        made.append(version.dataset)
    return made


def test_dataset_list_page_in_fixed_queries(client, engineer, data_dir):  # noqa: F811
    made = _datasets(engineer, 0, SMALL)
    small, large = _measure(
        "data set list /datasets/",
        _page(client, engineer, reverse("datasets:list")),
        lambda: made.extend(_datasets(engineer, SMALL, LARGE - SMALL)),
    )
    for dataset in made:
        assert reverse("datasets:detail", args=[dataset.pk]) in _html(large)


def test_datasets_api_lists_data_sets_and_versions_in_fixed_queries(engineer, data_dir):  # noqa: F811
    made = _datasets(engineer, 0, SMALL)
    small, large = _measure(
        "GET /api/v1/datasets/",
        _api(engineer, "/api/v1/datasets/"),
        lambda: made.extend(_datasets(engineer, SMALL, LARGE - SMALL)),
    )
    rows = {row["name"]: row for row in large.response.data}
    assert set(rows) == {dataset.name for dataset in made}
    assert [v["number"] for v in rows["set-1"]["versions"]] == [2, 1]
    assert rows["set-1"]["versions"][0]["progress"]["chunks_total"] == 1
    assert rows["set-1"]["versions"][0]["registered_by"] == "engineer"


def test_dataset_page_lists_its_versions_in_fixed_queries(client, engineer, data_dir):  # noqa: F811
    def versions(start, count):
        for n in range(start, start + count):
            last = dataset_version_make(
                engineer=engineer,
                name="growing",
                index=False,
                records=[{"id": f"G{i}", "text": f"Record {i}."} for i in range(n + 1)],
            )
        return last.dataset

    dataset = versions(0, SMALL)
    small, large = _measure(
        "data set page /datasets/<id>/ (versions)",
        _page(client, engineer, reverse("datasets:detail", args=[dataset.pk])),
        lambda: versions(SMALL, LARGE - SMALL),
    )
    assert _html(small).count('class="version"') == SMALL
    assert _html(large).count('class="version"') == LARGE


# --- the auditor's pages -------------------------------------------------------------------------------


def _closed_with_report(officer, n: int):
    from compliance.reports.services import audit_report_issue

    erasure_request = _requests(officer, n, 1, steps=())[0]
    erasure_request = take_step("reject", erasure_request, officer)
    return audit_report_issue(erasure_request=erasure_request, actor=officer).erasure_request


def test_auditor_home_lists_requests_and_reports_in_fixed_queries(client, auditor, officer, job_scene):
    """Open requests with jobs (frameworks from the providers) and closed ones with an issued report."""

    def succeed_jobs():
        for job in UnlearningJob.objects.filter(kind="unlearn", status=JobStatus.QUEUED):
            claimed = jobs.job_claim(job_id=job.pk, worker="w@host")
            jobs.job_succeed(job_id=job.pk, attempt=claimed.attempts, metrics={}, produced=None)

    closed = [_closed_with_report(officer, 500)]
    succeed_jobs()

    def more():
        job_scene.add(LARGE - SMALL)
        succeed_jobs()
        closed.extend(_closed_with_report(officer, 501 + n) for n in range(3))

    small, large = _measure("auditor home /audit/", _page(client, auditor, reverse("compliance:home")), more)
    html = _html(large)
    for erasure_request in job_scene.requests + closed:
        assert reverse("compliance:request", args=[erasure_request.pk]) in html
    # The frameworks still come from each request's own jobs (read for all of them at once).
    succeeded = UnlearningJob.objects.filter(kind="unlearn", status=JobStatus.SUCCEEDED).count()
    assert succeeded >= 2 and html.count('<span class="badge">Deletion</span>') == succeeded
    assert html.count(">v1</a>") == len(closed)


def test_register_page_reads_each_requests_jobs_in_fixed_queries(client, auditor, officer, job_scene):
    """Requests without a report take their frameworks from their jobs: read for all rows at once."""

    def succeed_jobs():
        for job in UnlearningJob.objects.filter(kind="unlearn", status=JobStatus.QUEUED):
            claimed = jobs.job_claim(job_id=job.pk, worker="w@host")
            jobs.job_succeed(job_id=job.pk, attempt=claimed.attempts, metrics={}, produced=None)

    succeed_jobs()

    def more():
        job_scene.add(LARGE - SMALL)
        succeed_jobs()

    small, large = _measure(
        "register /audit/register/?from=…",
        _page(client, auditor, reverse("compliance:register") + "?from=2000-01-01"),
        more,
    )
    html = _html(large)
    for erasure_request in job_scene.requests:
        assert erasure_request.reference in html
    # Each request's frameworks still come from its own jobs (those that succeeded).
    succeeded = UnlearningJob.objects.filter(kind="unlearn", status=JobStatus.SUCCEEDED).count()
    assert succeeded >= 2 and html.count("<td>deletion</td>") == succeeded


@pytest.fixture
def report_versions(officer):
    """A rejected request with ``SMALL`` issued report versions; ``more()`` issues the rest."""
    from compliance.reports.services import audit_report_issue

    erasure_request = _closed_with_report(officer, 0)

    def issue(count):
        for n in range(count):
            audit_report_issue(erasure_request=erasure_request, actor=officer, reason=f"Correction {n}.")

    issue(SMALL - 1)
    return erasure_request, lambda: issue(LARGE - SMALL)


def test_auditor_request_page_lists_events_and_versions_in_fixed_queries(client, auditor, report_versions):
    from compliance.audit import audit_event_record

    erasure_request, more = report_versions
    call = _page(client, auditor, reverse("compliance:request", args=[erasure_request.pk]))
    call()
    # The page verifies the events after the chain's verified head and moves the head (one
    # UPDATE) when there are any: an unrelated event makes the first count include that too.
    audit_event_record(actor=None, action="test.unrelated", object_type="test", object_id="1")
    small = _count(call)
    more()
    large = _count(call)
    _assert_flat("auditor request /audit/requests/<id>/ (audit log, versions)", small, large)
    html = _html(large)
    assert all(f"?version={n}" in html for n in range(1, LARGE + 1))
    assert html.count("audit_report.issued") == LARGE


def test_report_page_lists_versions_in_fixed_queries(client, auditor, report_versions):
    erasure_request, more = report_versions
    small, large = _measure(
        "report page /audit/requests/<id>/report/",
        _page(client, auditor, reverse("compliance:report", args=[erasure_request.pk])),
        more,
    )
    assert all(f'href="?version={n}"' in _html(large) for n in range(1, LARGE + 1))


def test_report_versions_api_in_fixed_queries(auditor, report_versions):
    erasure_request, more = report_versions
    small, large = _measure(
        "GET /api/v1/requests/<id>/reports/",
        _api(auditor, f"/api/v1/requests/{erasure_request.pk}/reports/"),
        more,
    )
    assert [row["version"] for row in small.response.data] == [2, 1]
    assert [row["version"] for row in large.response.data] == list(range(LARGE, 0, -1))
    assert [row["supersedes"] for row in large.response.data] == [*range(LARGE - 1, 0, -1), None]
