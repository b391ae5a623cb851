"""The methods an officer may choose: the engine's new methods under the right framework, with
their presets, accepted by the decision's validators, shown on the decision page and run as jobs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories.jobs import (  # noqa: F401  (fixtures)
    data_dir,
    fast_jobs,
    model_train,
    request_reviewed,
    run_inline,
    tickets,
)
from unlearning_jobs.decisions import methods
from unlearning_jobs.decisions import services as decisions
from unlearning_jobs.models import DatasetVersion, JobKind, UnlearningJob

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]

#: A few steps of each method on the tiny model: enough to run the job end to end.
QUICK = {"max_steps": 2, "eval_every": 1, "batch_size": 2, "retain_batch_size": 2, "retain_eval_size": 4}


def test_refusal_is_output_suppression_and_the_other_new_methods_are_deletion():
    offered = {(m.framework, m.method): m for m in methods.plan_methods()}
    assert ("output_suppression", "refusal") in offered and ("deletion", "refusal") not in offered
    for name in ("npo", "simnpo", "rmu"):
        assert ("deletion", name) in offered and ("output_suppression", name) not in offered
    refusal = offered[("output_suppression", "refusal")]
    assert refusal.job_kind == JobKind.UNLEARN.value and refusal.changes_weights
    assert not offered[("output_suppression", "guard")].changes_weights
    presets = dict(offered[("deletion", "npo")].presets)
    assert "beta=0.1" in presets["reference"] and "learning_rate=1e-05" in presets["reference"]
    assert "layer=7" in dict(offered[("deletion", "rmu")].presets)["reference"]
    # The validators accept the presets and the adapter, and refuse what the engine refuses.
    assert offered[("deletion", "npo")].validate({"preset": "reference"})["beta"] == 0.1
    assert offered[("deletion", "simnpo")].validate({"adapter": "lora"})["adapter"] == "lora"
    with pytest.raises(ValueError, match="preset"):
        offered[("deletion", "rmu")].validate({"preset": "published"})


def test_the_decision_page_lists_each_method_with_its_presets(client, officer, tickets):
    erasure_request = request_reviewed(officer=officer)
    client.force_login(officer)
    page = client.get(reverse("erasure-decision", kwargs={"pk": erasure_request.pk}))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-method="refusal" data-framework="output_suppression"' in html
    for name in ("npo", "simnpo", "rmu"):
        assert f'data-method="{name}" data-framework="deletion"' in html
    assert '{"preset": "reference"}' in html.replace("&quot;", '"')


def test_refusal_runs_from_a_decision_as_output_suppression_and_leaves_the_data_set_alone(
    officer, engineer, tickets
):
    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    erasure_request = request_reviewed(officer=officer)
    versions_before = DatasetVersion.objects.count()
    plan = [
        {
            "model_version": source.pk,
            "framework": "output_suppression",
            "method": "refusal",
            "params": {**QUICK, "objective": "sft"},
        },
        {
            "model_version": source.pk,
            "framework": "deletion",
            "method": "npo",
            "params": {**QUICK, "preset": "reference"},
        },
    ]
    refused = [{**plan[0], "framework": "deletion"}]
    with pytest.raises(decisions.DecisionPlanError) as raised:
        decisions.erasure_decision_approve(
            erasure_request=erasure_request, actor=officer, rationale="r", plan=refused
        )
    assert "refusal" in raised.value.item_errors[0]["method"][0]

    decisions.erasure_decision_approve(
        erasure_request=erasure_request, actor=officer, rationale="Art. 17(1)(a)", plan=plan
    )
    refusal = UnlearningJob.objects.get(erasure_request=erasure_request, method="refusal")
    npo = UnlearningJob.objects.get(erasure_request=erasure_request, method="npo")
    assert (refusal.kind, refusal.framework) == ("unlearn", "output_suppression")
    assert refusal.forget_record_pks and refusal.forget_record_pks == npo.forget_record_pks
    assert npo.params["preset"] == "reference" and npo.params["beta"] == 0.1
    assert run_inline(refusal) == "succeeded", UnlearningJob.objects.get(pk=refusal.pk).log
    refusal.refresh_from_db()
    assert refusal.produced_model is not None and refusal.produced_dataset_version is None
    # Suppression deletes nothing: no data-set version without the records was made for it.
    assert DatasetVersion.objects.count() == versions_before


def test_a_saliency_masked_npo_runs_from_a_decision_and_records_how_much_it_could_move(
    officer, engineer, tickets
):
    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    erasure_request = request_reviewed(officer=officer)
    offered = {(m.framework, m.method): m for m in methods.plan_methods()}
    with pytest.raises(ValueError, match=r"NpoParams\.salient_fraction.*weight_decay 0"):
        offered[("deletion", "npo")].validate({"salient_fraction": 0.01, "weight_decay": 0.01})
    plan = [
        {
            "model_version": source.pk,
            "framework": "deletion",
            "method": "npo",
            "params": {
                **QUICK,
                "learning_rate": 1e-2,
                "salient_fraction": 0.02,
                "max_retain_loss_increase": None,
            },
        }
    ]
    decisions.erasure_decision_approve(
        erasure_request=erasure_request, actor=officer, rationale="Art. 17(1)(a)", plan=plan
    )
    job = UnlearningJob.objects.get(erasure_request=erasure_request, method="npo")
    assert job.params["salient_fraction"] == 0.02
    assert run_inline(job) == "succeeded", UnlearningJob.objects.get(pk=job.pk).log
    job.refresh_from_db()
    assert job.produced_model is not None
    assert 0 < job.metrics["salient_rows"] < job.metrics["salient_rows_of"]
    assert job.metrics["salient_fraction"] == 0.02


def test_a_quantization_aware_run_goes_from_a_decision_to_a_job_that_records_the_rounded_loss(
    officer, engineer, tickets
):
    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    erasure_request = request_reviewed(officer=officer)
    offered = {(m.framework, m.method): m for m in methods.plan_methods()}
    with pytest.raises(ValueError, match=r"NpoParams\.quantized_forget_bits: npo's forget term"):
        offered[("deletion", "npo")].validate({"quantized_forget_bits": 4, "adapter": "lora"})
    with pytest.raises(ValueError, match=r"GradientDifferenceParams\.quantized_forget_bits: must be one of"):
        offered[("deletion", "gradient_difference")].validate({"quantized_forget_bits": 5})
    plan = [
        {
            "model_version": source.pk,
            "framework": "deletion",
            "method": "gradient_difference",
            "params": {**QUICK, "quantized_forget_bits": 4, "quantized_forget_group_size": 16},
        }
    ]
    decisions.erasure_decision_approve(
        erasure_request=erasure_request, actor=officer, rationale="Art. 17(1)(a)", plan=plan
    )
    job = UnlearningJob.objects.get(erasure_request=erasure_request, method="gradient_difference")
    assert run_inline(job) == "succeeded", UnlearningJob.objects.get(pk=job.pk).log
    job.refresh_from_db()
    assert job.produced_model is not None
    assert job.metrics["quantized_forget_bits"] == 4
    history = job.metrics["quantized_forget_history"]
    assert len(history) >= 2 and history[-1][1] == pytest.approx(job.metrics["quantized_forget_loss_after"])
