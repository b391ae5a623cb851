"""Records held back for another erasure: measured on for no one, and a request's columns still
compared like with like when a hold-back lands between two of its verify jobs.

The memorising model of ``tests.factories.verification``; another person's erasure holds back records of
the original's retain sample between the baseline's and the exact retrain's verification.
"""

from __future__ import annotations

import pytest

from requests_app.identifiers import SubjectIdentifiers
from tests.factories.jobs import *  # noqa: F401,F403
from tests.factories.jobs import request_reviewed, run_inline
from tests.factories.verification import planted_request_decided
from unlearning_jobs.models import JobKind, ReingestionHit, UnlearningJob, VerificationRun
from unlearning_jobs.verification.runner import verification_inputs
from unlearning_jobs.verification.services import (
    verification_comparison,
    verification_for_report,
    verify_jobs_of_request,
)

pytestmark = pytest.mark.django_db

OTHER = SubjectIdentifiers(names=("Ottilie Brandvold",), emails=("ottilie.brandvold@fjordpost.example",))


@pytest.fixture
def retrained(data_dir, fast_jobs, engineer, officer, settings):
    """The planted subject's request decided as an exact retrain and run; its verify jobs queued."""
    settings.LETHE_VERIFY_MIN_HOLDOUT = 12
    settings.LETHE_VERIFY_RETAIN_SAMPLE = 24
    decided = planted_request_decided(engineer=engineer, officer=officer)
    return {**decided, "retrain": decided["jobs"][0]}


def _hold_back(version, records, erasure_request):
    return [
        ReingestionHit.objects.create(
            version=version, record=record, erasure_request=erasure_request, entity_types=["EMAIL"]
        )
        for record in records
    ]


def test_records_held_back_leave_the_samples_and_change_the_digest_only_where_they_were_in_them(
    retrained, officer
):
    version, source, forget = (
        retrained["version"],
        retrained["source"],
        retrained["retrain"].forget_record_pks,
    )
    other = request_reviewed(officer=officer, subject=OTHER)
    before = verification_inputs(forget_record_pks=forget, original=source)["sample_sizes"]
    assert before["held_back_left_out"] == {"holdout": 0, "retain": 0} and before["retain"] == 24

    outside, inside = None, None
    for record in version.records.exclude(pk__in=forget).order_by("ordinal"):
        (hit,) = _hold_back(version, [record], other)
        sizes = verification_inputs(forget_record_pks=forget, original=source)["sample_sizes"]
        if sizes["samples_digest"] == before["samples_digest"]:
            assert sizes["held_back_left_out"] == {"holdout": 0, "retain": 0}
            outside = outside or record
        else:
            # The record was in the retain sample: it is dropped, nothing takes its place.
            assert sizes["held_back_left_out"] == {"holdout": 0, "retain": 1} and sizes["retain"] == 23
            inside = inside or (record, hit)
        if outside and inside:
            break
        hit.delete()
    assert outside is not None and inside is not None

    # Released by an officer, the record is measured on again, exactly as before.
    record, hit = inside
    hit.overridden_at = hit.found_at
    hit.save(update_fields=["overridden_at"])
    assert verification_inputs(forget_record_pks=forget, original=source)["sample_sizes"] == before
    # The request's own records (its forget set) are held back for it since its approval, and are
    # still what it is verified on.
    own = ReingestionHit.objects.filter(erasure_request=retrained["request"], overridden_at__isnull=True)
    assert set(own.values_list("record_id", flat=True)) == set(forget)
    assert before["forget"] == len(forget)


def test_a_hold_back_between_two_verify_jobs_compares_nothing_until_the_baseline_is_measured_again(
    retrained, officer, client
):
    version, erasure_request = retrained["version"], retrained["request"]
    original_job, reference_job = verify_jobs_of_request(erasure_request.pk)
    assert run_inline(original_job) == "succeeded"
    # Another person's erasure holds back half of the records the original was trained on.
    other = request_reviewed(officer=officer, subject=OTHER)
    members = version.records.exclude(pk__in=retrained["retrain"].forget_record_pks).order_by("ordinal")
    _hold_back(version, list(members)[30:], other)
    assert run_inline(reference_job) == "succeeded", UnlearningJob.objects.get(pk=reference_job.pk).log

    first_original = VerificationRun.objects.get(job=original_job)
    reference = VerificationRun.objects.get(job=reference_job)
    assert reference.sample_sizes["held_back_left_out"]["retain"] > 0
    assert reference.sample_sizes["samples_digest"] != first_original.sample_sizes["samples_digest"]
    # Not compared with a baseline measured on other records: the ratios are not measured, and the
    # run says why and is not complete.
    assert not reference.results.filter(metric="utility_ratio_retain").exists()
    skipped = {item["metric"]: item["reason"] for item in reference.skipped}
    assert "utility_ratio_*" in skipped and reference.complete is False
    assert f"run #{first_original.pk} was measured on other records" in skipped["comparison_with_original"]

    # The baseline is queued again, once, on the reference's records.
    remeasure = UnlearningJob.objects.get(kind=JobKind.VERIFY, params__remeasure_on__isnull=False)
    assert remeasure.source_model_id == retrained["source"].pk and remeasure.params["role"] == "original"
    assert remeasure.params["remeasure_on"] == reference.sample_sizes["samples_digest"]
    assert list(verify_jobs_of_request(erasure_request.pk)) == [original_job, reference_job, remeasure]
    assert run_inline(remeasure) == "succeeded"

    second_original = VerificationRun.objects.get(job=remeasure)
    assert second_original.sample_sizes["samples_digest"] == reference.sample_sizes["samples_digest"]
    reference.refresh_from_db()
    ratio = reference.results.get(metric="utility_ratio_retain")
    assert ratio.value is not None and ratio.n_samples == reference.sample_sizes["retain"]
    assert not any(item["metric"].startswith("comparison_with_") for item in reference.skipped)
    assert UnlearningJob.objects.filter(kind=JobKind.VERIFY).count() == 3  # nothing more queued

    # Pages and the report show the newest run of each model; the API lists both, marked.
    comparison = verification_comparison(erasure_request_id=erasure_request.pk)
    assert [column["run"].pk for column in comparison["columns"]] == [second_original.pk, reference.pk]
    report_jobs = {row["job_id"] for row in verification_for_report(erasure_request)["results"]}
    assert report_jobs == {remeasure.pk, reference_job.pk}
    client.force_login(officer)
    runs = client.get(f"/api/v1/requests/{erasure_request.pk}/verification/").json()["runs"]
    assert [(run["id"], run["current"]) for run in runs] == [
        (first_original.pk, False),
        (reference.pk, True),
        (second_original.pk, True),
    ]
