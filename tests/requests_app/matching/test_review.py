"""The officer's review: decisions as audit events, the forget set, what approval needs, the API."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from compliance.models import AuditEvent
from requests_app import services
from requests_app.identifiers import SubjectIdentifiers
from requests_app.matching import review
from tests.factories.datasets import (
    WILLIAM_RECORDS,
    register_and_index,
    request_in_review,
    write_jsonl,
)
from unlearning_jobs.datasets.services import dataset_version_derive
from unlearning_jobs.datasets.storage import record_id_hash
from unlearning_jobs.models import MatchCandidate

pytestmark = pytest.mark.django_db


@pytest.fixture
def william_version(settings, tmp_path):
    settings.LETHE_DATA_DIR = tmp_path / "data"
    return register_and_index(
        name="support", path=write_jsonl(tmp_path / "data" / "w.jsonl", WILLIAM_RECORDS)
    )


def _status(erasure_request) -> dict[str, str]:
    return dict(
        MatchCandidate.objects.filter(erasure_request=erasure_request).values_list(
            "record__record_id", "status"
        )
    )


def test_each_decision_is_an_audit_event_with_hashes_tier_and_score_only(william_version, officer):
    erasure_request = request_in_review(officer)

    result = review.match_candidates_decide(
        erasure_request=erasure_request,
        actor=officer,
        confirm=["S1", "S2"],
        reject=["N3"],
        note="checked the text",
    )
    assert (result.confirmed, result.rejected, result.unchanged) == (2, 1, 0)
    again = review.match_candidates_decide(erasure_request=erasure_request, actor=officer, confirm=["S1"])
    assert (again.confirmed, again.unchanged) == (0, 1)
    above = review.match_candidates_confirm_above(erasure_request=erasure_request, actor=officer, score=0.8)
    assert above.confirmed == 1  # S3; S1 and S2 were confirmed already

    status = _status(erasure_request)
    assert {k for k, v in status.items() if v == "confirmed"} == {"S1", "S2", "S3"}
    assert status["N3"] == "rejected" and status["N1"] == "pending"
    events = list(
        AuditEvent.objects.filter(action__startswith="erasure_request.candidate_").order_by("sequence")
    )
    assert [e.action.rsplit("_", 1)[1] for e in events] == ["confirmed", "confirmed", "rejected", "confirmed"]
    first = events[0].details
    assert (
        first["record_id_hash"] == record_id_hash("S1") and first["tier"] == "strong" and first["score"] > 0.8
    )
    assert events[-1].details["rule"] == "confirm_above 0.8"
    assert all(e.object_id == str(erasure_request.pk) and e.actor == officer for e in events)
    text = str([e.details for e in events]).lower()
    assert "turner" not in text and "s1" not in text.replace(record_id_hash("S1"), "")


def test_decisions_are_refused_outside_review_and_for_unknown_records(william_version, officer, auditor):
    erasure_request = request_in_review(officer)
    with pytest.raises(review.ReviewError, match="Not candidates of"):
        review.match_candidates_decide(erasure_request=erasure_request, actor=officer, confirm=["X1"])
    with pytest.raises(review.ReviewError, match="both confirmed and rejected"):
        review.match_candidates_decide(
            erasure_request=erasure_request, actor=officer, confirm=["S1"], reject=["S1"]
        )
    with pytest.raises(services.ActionNotPermitted):
        review.match_candidates_decide(erasure_request=erasure_request, actor=auditor, confirm=["S1"])
    services.erasure_request_withdraw(erasure_request=erasure_request, actor=officer)
    with pytest.raises(services.TransitionNotAllowed, match="only while it is in review"):
        review.match_candidates_decide(erasure_request=erasure_request, actor=officer, confirm=["S1"])
    assert set(_status(erasure_request).values()) == {"pending"}


def test_approval_waits_for_strong_candidates_then_the_confirmed_records_are_the_forget_set(
    william_version, officer
):
    erasure_request = request_in_review(officer)
    with pytest.raises(services.TransitionNotAllowed, match="3 strong candidate record"):
        services.erasure_request_approve(erasure_request=erasure_request, actor=officer)

    review.match_candidates_decide(
        erasure_request=erasure_request, actor=officer, confirm=["S1", "S3", "Q1"], reject=["S2"]
    )
    approved = services.erasure_request_approve(erasure_request=erasure_request, actor=officer)
    assert approved.status == "approved"

    forget = review.forget_set_for_request(erasure_request)
    assert [r.record_id for r in forget] == ["S1", "S3", "Q1"]
    assert all(r.version == william_version for r in forget)
    derived = dataset_version_derive(
        version=william_version, remove=forget[:1], actor=None, reason="test", erasure_request=erasure_request
    )
    assert [r.record_id for r in review.forget_set_for_request(erasure_request, version=derived)] == [
        "S3",
        "Q1",
    ]


def test_a_search_that_found_nothing_is_acknowledged_before_approval(william_version, officer):
    nobody = request_in_review(
        officer, subject=SubjectIdentifiers(names=("Zed Nobody",), emails=("zed@x.org",))
    )
    with pytest.raises(services.TransitionNotAllowed, match="no record is confirmed"):
        services.erasure_request_approve(erasure_request=nobody, actor=officer)
    with pytest.raises(review.ReviewError, match="Say why"):
        review.review_nothing_found_acknowledge(erasure_request=nobody, actor=officer, note=" ")
    review.review_nothing_found_acknowledge(
        erasure_request=nobody,
        actor=officer,
        note="Searched every indexed data set; no record of the person.",
    )
    assert services.erasure_request_approve(erasure_request=nobody, actor=officer).status == "approved"
    assert AuditEvent.objects.filter(action="erasure_request.nothing_found_acknowledged").count() == 1


def test_approval_is_not_held_back_where_nothing_was_ever_indexed(officer):
    from tests.requests_app.conftest import JOHN

    erasure_request = services.erasure_request_create(subject=JOHN, legal_ground="art17_1_b", actor=officer)
    for step in ("verify_identity", "start_locating", "submit_for_review"):
        from tests.requests_app.conftest import take_step

        erasure_request = take_step(step, erasure_request, officer)
    assert review.review_approval_refusal(erasure_request) is None


def test_the_report_section_names_records_by_keyed_hash_and_lists_the_coverage(william_version, officer):
    erasure_request = request_in_review(officer)
    review.match_candidates_decide(
        erasure_request=erasure_request, actor=officer, confirm=["S1", "S2"], reject=["N1"]
    )

    section = review.report_records_section(erasure_request)

    assert section["search_coverage"][0]["dataset"] == "support"
    assert section["search_coverage"][0]["records_indexed"] == 10
    assert section["candidates"] == [
        {
            "dataset": "support",
            "dataset_version": 1,
            "found": 8,
            "confirmed": 2,
            "rejected": 1,
            "pending": 5,
            "by_tier": {"strong": 3, "name": 3, "quasi": 2},
        }
    ]
    assert {r["record_id_hash"] for r in section["confirmed_records"]} == {
        record_id_hash("S1"),
        record_id_hash("S2"),
    }
    assert "turner" not in str(section).lower() and "482913" not in str(section)


# --- API ------------------------------------------------------------------------------------------


def test_the_api_locates_lists_matches_and_records_decisions(
    william_version, officer, auditor, django_capture_on_commit_callbacks
):
    from requests_app.matching.services import locate_run_execute
    from unlearning_jobs.models import SearchCoverage

    erasure_request = services.erasure_request_create(
        subject=SubjectIdentifiers(
            names=("William Turner",),
            emails=("william.turner@example.com",),
            phones=("07911 123456",),
            account_ids=("ACC-482913",),
        ),
        legal_ground="art17_1_b",
        actor=officer,
    )
    services.erasure_request_verify_identity(
        erasure_request=erasure_request, actor=officer, method="email_link"
    )
    client = APIClient()
    client.force_authenticate(officer)
    pk = erasure_request.pk

    with django_capture_on_commit_callbacks() as callbacks:
        located = client.post(
            f"/api/v1/requests/{pk}/actions/locate/", {"note": "from the ticket"}, format="json"
        )
    assert located.status_code == 200 and located.data["status"] == "locating" and len(callbacks) == 1
    assert locate_run_execute(coverage_id=SearchCoverage.objects.get(erasure_request_id=pk).pk) == "reviewing"

    matches = client.get(f"/api/v1/requests/{pk}/matches/").data
    assert matches["search"]["status"] == "done" and len(matches["results"]) == 8
    first = matches["results"][0]
    assert set(first) >= {"record_id", "dataset", "dataset_version", "score", "tier", "evidence", "status"}
    assert (first["tier"], first["dataset"], first["dataset_version"], first["status"]) == (
        "strong",
        "support",
        1,
        "pending",
    )
    key = next(m["key"] for m in matches["results"] if m["record_id"] == "N3")

    both = client.post(
        f"/api/v1/requests/{pk}/matches/review/", {"confirm": ["S1"], "confirm_above": 0.5}, format="json"
    )
    assert both.status_code == 400
    unknown = client.post(f"/api/v1/requests/{pk}/matches/review/", {"confirm": ["nope"]}, format="json")
    assert unknown.status_code == 400 and "Not candidates" in str(unknown.data)
    decided = client.post(
        f"/api/v1/requests/{pk}/matches/review/", {"confirm": ["S1"], "reject": [key]}, format="json"
    )
    assert decided.status_code == 200 and (decided.data["confirmed"], decided.data["rejected"]) == (1, 1)
    above = client.post(f"/api/v1/requests/{pk}/matches/review/", {"confirm_above": 0.8}, format="json")
    assert above.data["confirmed"] == 2 and above.data["summary"]["approval_refusal"] is None

    client.force_authenticate(auditor)
    assert client.get(f"/api/v1/requests/{pk}/matches/").status_code == 200
    assert (
        client.post(f"/api/v1/requests/{pk}/matches/review/", {"confirm": ["S2"]}, format="json").status_code
        == 403
    )
    assert client.post(f"/api/v1/requests/{pk}/actions/locate/", {}, format="json").status_code == 403


def test_the_locate_action_refuses_a_request_whose_identity_is_not_verified(william_version, officer):
    erasure_request = services.erasure_request_create(
        subject=SubjectIdentifiers(names=("William Turner",)), legal_ground="art17_1_b", actor=officer
    )
    client = APIClient()
    client.force_authenticate(officer)
    response = client.post(f"/api/v1/requests/{erasure_request.pk}/actions/locate/", {}, format="json")
    assert response.status_code == 409 and "identity" in response.data["detail"]


# --- pages ----------------------------------------------------------------------------------------


def test_the_review_page_shows_text_with_highlights_and_takes_decisions(
    client, william_version, officer, auditor
):
    from django.urls import reverse

    erasure_request = request_in_review(officer)
    client.force_login(officer)
    page = client.get(reverse("review:detail", args=[erasure_request.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<mark class="match" title="EMAIL">william.turner@example.com' in html
    assert '<mark class="pii" title="PERSON">Mary Jones' not in html  # X1 is no candidate
    assert html.index('id="tier-strong"') < html.index('id="tier-name"') < html.index('id="tier-quasi"')
    s1 = MatchCandidate.objects.get(erasure_request=erasure_request, record__record_id="S1")
    response = client.post(
        reverse("review:decide", args=[erasure_request.pk]), {"candidate": s1.pk, "decision": "confirm"}
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#candidate-{s1.pk}")
    s1.refresh_from_db()
    assert s1.status == "confirmed"
    client.post(reverse("review:confirm-above", args=[erasure_request.pk]), {"score": "0.8"})
    assert _status(erasure_request)["S2"] == "confirmed"
    queue = client.get(reverse("review:queue")).content.decode()
    assert erasure_request.reference in queue

    client.force_login(auditor)
    assert client.get(reverse("review:detail", args=[erasure_request.pk])).status_code == 403
