"""Output suppression on the Django side: rules, versions, the guarded endpoint, roles, probe jobs."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from compliance.models import AuditEvent
from tests.factories.jobs import *  # noqa: F401,F403
from tests.factories.jobs import model_train, request_reviewed, run_inline
from unlearning_jobs.decisions import services as decisions
from unlearning_jobs.models import Deployment, SuppressionRule, SuppressionRuleSet, UnlearningJob
from unlearning_jobs.suppression import services as suppression
from unlearning_jobs.suppression.guard import guard_probe_job_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]

RAW = ("ada.quill@example.org", "Ada Quill", "ada quill", "+44 20 7946 0011", "quill ada")


@pytest.fixture
def model(tickets, engineer):
    return model_train(dataset_version=tickets, engineer=engineer).produced_model


@pytest.fixture
def reviewed(officer, tickets):
    return request_reviewed(officer=officer)


@pytest.fixture
def deployment(model, engineer):
    return suppression.deployment_create(
        name="chat", model_version=model, policy={"mode": "redact"}, actor=engineer
    )


def _client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_rules_hold_no_raw_pii_and_every_change_is_a_new_audited_version(
    deployment, reviewed, officer, engineer
):
    added = suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer
    )

    # One e-mail, up to four forms: normalised, locating's key, its local part, "local at provider".
    assert added.version == 2 and added.rule_count > 0 and 1 <= added.counts["EMAIL"] <= 4
    stored = list(
        SuppressionRule.objects.filter(rule_set=added).values_list("entity_type", "value_hash", "subject_ref")
    )
    dump = json.dumps(stored).lower() + json.dumps(suppression.deployment_rules_export(deployment)).lower()
    for raw in RAW:
        assert raw.lower() not in dump
    assert {ref for _, _, ref in stored} == {reviewed.reference}
    export = suppression.deployment_rules_export(deployment)
    assert export["format"] == "lethe-guard-rules" and export["rule_set_version"] == 2 and export["key_id"]

    again = suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer
    )
    assert again.pk == added.pk  # nothing changed: no new version
    removed = suppression.suppression_rules_remove_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer, reason="request withdrawn"
    )
    assert removed.version == 3 and removed.rule_count == 0
    assert SuppressionRule.objects.filter(rule_set=added).count() == added.rule_count  # v2 kept as it was
    actions = list(
        AuditEvent.objects.filter(action__startswith="suppression_rules.").values_list("action", flat=True)
    )
    assert actions == [
        "suppression_rules.versioned",
        "suppression_rules.added",
        "suppression_rules.unchanged",
        "suppression_rules.removed",
    ]
    details = json.dumps(list(AuditEvent.objects.values_list("details", flat=True))).lower()
    assert "ada.quill@example.org" not in details and "ada quill" not in details
    assert [rs.version for rs in SuppressionRuleSet.objects.filter(deployment=deployment)] == [3, 2, 1]


def test_the_generate_endpoint_applies_the_guard_and_records_it(
    deployment, reviewed, officer, engineer, model
):
    suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer
    )
    url = f"/api/v1/models/{model.pk}/generate"

    answer = _client(engineer).post(
        url, {"prompt": "Write to ADA.QUILL@EXAMPLE.ORG about", "max_new_tokens": 8}, format="json"
    )

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (
        body["guard"]["acted"]
        and body["guard"]["action"] == "redact"
        and body["guard"]["direction"] == "input"
    )
    assert {"type": "EMAIL", "span": [9, 30], "direction": "input"} in body["guard"]["matches"]
    assert body["rule_set_version"] == 2 and "ada.quill" not in body["text"].lower()
    event = AuditEvent.objects.get(action="guard.acted")
    assert (
        event.details["subjects"] == [reviewed.reference] and "ada" not in json.dumps(event.details).lower()
    )

    clean = _client(officer).post(
        url, {"prompt": "Refunds are processed", "max_new_tokens": 4}, format="json"
    )
    assert clean.status_code == 200 and clean.json()["guard"]["acted"] is False
    assert AuditEvent.objects.filter(action="guard.acted").count() == 1
    too_long = _client(engineer).post(url, {"prompt": "x", "max_new_tokens": 999}, format="json")
    assert too_long.status_code == 400


def test_roles_auditors_read_rules_but_may_not_generate(deployment, auditor, engineer, officer, model):
    url = f"/api/v1/models/{model.pk}/generate"
    assert _client(auditor).post(url, {"prompt": "hello"}, format="json").status_code == 403
    for user in (auditor, engineer, officer):
        assert _client(user).get(f"/api/v1/deployments/{deployment.pk}/rules.json").status_code == 200
    assert APIClient().get(f"/api/v1/deployments/{deployment.pk}/rules.json").status_code in (401, 403)


def test_a_model_without_deployment_is_not_served_unguarded(model, engineer):
    answer = _client(engineer).post(f"/api/v1/models/{model.pk}/generate", {"prompt": "hi"}, format="json")
    assert answer.status_code == 409


def test_the_probe_job_stores_block_rate_false_positives_and_latency(deployment, reviewed, officer):
    suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer
    )
    for generate in ("simulated", "model"):
        job = guard_probe_job_create(
            deployment=deployment, erasure_request=reviewed, actor=officer, generate=generate, enqueue=False
        )
        assert run_inline(job) == "succeeded", job.log
        job.refresh_from_db()
        metrics = job.metrics
        assert metrics["generation"] == generate and metrics["probes"] > 10 and metrics["benign"] > 10
        assert metrics["block_rate"] == 1.0 and metrics["false_positive_rate"] <= 0.05
        assert 0 <= metrics["latency_ms_p50"] <= metrics["latency_ms_p95"]
        assert "ada.quill" not in json.dumps(metrics).lower()


def test_a_guard_decision_gives_the_models_deployment_the_rules_and_names_it_a_recipient(
    reviewed, officer, model
):
    made = decisions.erasure_decision_approve(
        erasure_request=reviewed,
        actor=officer,
        rationale="Consent withdrawn (Art. 17(1)(b)).",
        plan=[
            {
                "model_version": model.pk,
                "framework": "output_suppression",
                "method": "guard",
                "params": {"mode": "refuse"},
            }
        ],
    )
    job = UnlearningJob.objects.get(decision=made[0])
    assert job.kind == "guard"
    assert run_inline(job) == "succeeded"
    deployment = Deployment.objects.get(model_version=model)
    assert deployment.policy["mode"] == "refuse" and deployment.active_rule_set.subject_count == 1
    probe = UnlearningJob.objects.get(kind="guard_probe", erasure_request=reviewed)
    assert probe.params["deployment_id"] == deployment.pk and probe.status == "queued"
    assert run_inline(probe) == "succeeded", probe.log
    probe.refresh_from_db()
    assert probe.metrics["block_rate"] == 1.0 and probe.metrics["rule_set_version"] == 2
    from compliance.reports.providers import report_section_provided

    rows = {
        row["metric"]: row
        for row in report_section_provided(section="verification", erasure_request=reviewed)["results"]
        if row["metric"].startswith("guard_")
    }
    assert rows["guard_block_rate"]["value"] == 1.0 and rows["guard_block_rate"]["passed"] is True
    assert (
        rows["guard_block_rate"]["n_samples"] == probe.metrics["probes"]
        and deployment.name in rows["guard_block_rate"]["subject"]
    )
    assert rows["guard_false_positive_rate"]["passed"] is (probe.metrics["false_positive_rate"] <= 0.05)
    recipients = suppression.recipients_for_report(reviewed)["recipients"]
    assert [r["kind"] for r in recipients] == ["model_deployment"] and deployment.name in recipients[0][
        "name"
    ]


def test_deployment_pages_create_and_show_versions_and_try_the_guard(
    client, engineer, auditor, model, reviewed, officer
):
    client.force_login(engineer)
    created = client.post(
        reverse("unlearning_jobs:deployment-list"),
        {"name": "web", "model_version": model.pk, "mode": "refuse", "entity_types": ["PERSON", "EMAIL"]},
    )
    deployment = Deployment.objects.get(name="web")
    assert created.status_code == 302 and deployment.policy["entity_types"] == ["EMAIL", "PERSON"]
    suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=reviewed, actor=officer
    )
    page = client.post(
        deployment.get_absolute_url(), {"prompt": "Tell me about Ada Quill", "max_new_tokens": 4}
    )
    assert page.status_code == 200 and b"refuse" in page.content and b"v2" in page.content
    client.force_login(auditor)
    shown = client.get(deployment.get_absolute_url())
    assert shown.status_code == 200 and b"try-guarded-model" not in shown.content


def test_the_rules_hold_what_the_persons_confirmed_records_link_to_them(deployment, officer, tickets):
    """A request giving only Ada's e-mail: her records show her name and phone, and the rules hold them."""
    from requests_app.identifiers import SubjectIdentifiers
    from unlearning_jobs.suppression.guard import deployment_guard

    only_email = request_reviewed(
        officer=officer, subject=SubjectIdentifiers(emails=("ada.quill@example.org",))
    )
    added = suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=only_email, actor=officer
    )

    deployment.refresh_from_db()
    guard = deployment_guard(deployment)
    ref = suppression.subject_ref_for(only_email)
    # Ada's phone is in six of her confirmed records and in no one else's; her name in all twelve.
    assert ref in guard.check_output("You can reach her on 020 7946 0011.").subjects
    assert ref in guard.check_output("That was Ada Quill, I think.").subjects
    # Bram's number is in his own records only, never in Ada's: not hers, not suppressed.
    assert not guard.check_output("You can reach him on 020 7946 0022.").acted
    event = AuditEvent.objects.filter(action="suppression_rules.added").latest("pk")
    from_records = event.details["values_from_confirmed_records"]
    # One name and one phone; the e-mail is the request's own and adds nothing.
    assert from_records["names"] == 1 and from_records["phones"] == 1 and "emails" not in from_records
    assert added.counts["PHONE"] >= 1 and added.counts["PERSON"] >= 1
    # The values themselves are never stored: only keyed hashes and counts.
    assert "7946" not in json.dumps(event.details) and "quill" not in json.dumps(event.details).lower()
