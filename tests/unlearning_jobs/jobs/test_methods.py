"""Every deletion method, end to end through a job on a tiny model on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from requests_app import services as request_services
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import ErasureRequest, LegalGround, RequestStatus
from tests.factories.jobs import (  # noqa: F401  (fixtures)
    TINY_APPROX,
    data_dir,
    fast_jobs,
    model_train,
    run_inline,
    tickets,
)
from unlearning_jobs.datasets import reingestion
from unlearning_jobs.datasets.storage import record_id_hash
from unlearning_jobs.engine.training.sisa import SisaLayout, read_manifest
from unlearning_jobs.jobs import services as jobs
from unlearning_jobs.models import JobStatus, ModelVersion, ReingestionHit, UnlearningJob

pytestmark = [pytest.mark.django_db, pytest.mark.slow, pytest.mark.usefixtures("fast_jobs")]

APPROXIMATE = {
    "gradient_ascent": {**TINY_APPROX, "learning_rate": 1e-3},
    "gradient_difference": {**TINY_APPROX, "learning_rate": 1e-3, "retain_weight": 1.0},
    "npo": {**TINY_APPROX, "learning_rate": 1e-3, "beta": 0.5, "retain_weight": 1.0},
}


def _ada_records(version):
    return list(
        version.records.filter(
            record_id__in=[r.record_id for r, text in _texts(version) if "Ada Quill" in text]
        ).order_by("ordinal")
    )


def _texts(version):
    from unlearning_jobs.datasets.storage import dataset_version_iter_texts

    return list(dataset_version_iter_texts(version=version))


def _unlearn_job(*, source, version, forget, method, params, engineer):
    """Create a deletion job of ``method`` on ``forget``, not queued."""
    return jobs.job_create(
        kind="unlearn",
        actor=engineer,
        framework="deletion",
        method=method,
        params=params,
        source_model=source,
        dataset_version=version,
        forget_record_pks=[r.pk for r in forget],
        enqueue=False,
    )


def _unlearn(*, source, version, forget, method, params, engineer):
    job = _unlearn_job(
        source=source, version=version, forget=forget, method=method, params=params, engineer=engineer
    )
    assert run_inline(job) == "succeeded", job.log
    job.refresh_from_db()
    return job


def _assert_derived_without(job, version, forget):
    derived = job.produced_dataset_version
    assert derived is not None and derived.parent == version
    assert derived.record_count == version.record_count - len(forget)
    kept = set(derived.records.values_list("record_id", flat=True))
    assert kept.isdisjoint({r.record_id for r in forget})
    manifest = derived.removed_manifest
    assert manifest["records_removed"] == len(forget)
    assert sorted(manifest["record_id_hashes"]) == sorted(record_id_hash(r.record_id) for r in forget)
    assert f"job #{job.pk}" in manifest["reason"]


@pytest.mark.parametrize("method", sorted(APPROXIMATE))
def test_approximate_method_raises_forget_loss_and_registers_a_child_version(method, tickets, engineer):
    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    forget = _ada_records(tickets)
    assert len(forget) == 12

    job = _unlearn(
        source=source,
        version=tickets,
        forget=forget,
        method=method,
        params=APPROXIMATE[method],
        engineer=engineer,
    )

    produced = job.produced_model
    assert produced.parent == source and produced.produced_by_job == job
    assert produced.weights_sha256 != source.weights_sha256
    # Statistical removal: the weights still descend from training on the records.
    assert produced.dataset_version == tickets
    assert job.metrics["guarantee"] == "statistical"
    assert job.metrics["forget_loss_after"] > job.metrics["forget_loss_before"]
    assert job.metrics["forget_records"] == 12 and job.progress_done == job.progress_total == 6
    assert all(job.params[key] == value for key, value in APPROXIMATE[method].items())
    _assert_derived_without(job, tickets, forget)
    listed = (Path(produced.path) / "lethe_training_records.txt").read_text().split()
    assert len(listed) == tickets.record_count - 12 and not set(listed) & {r.record_id for r in forget}
    stamp = json.loads((Path(produced.path) / "lethe_job.json").read_text())
    assert stamp["job_id"] == job.pk and "Ada" not in json.dumps(stamp)


def test_retrain_trains_on_exactly_the_data_without_the_forget_set(tickets, engineer):
    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    forget = _ada_records(tickets)

    job = _unlearn(
        source=source, version=tickets, forget=forget, method="retrain", params={}, engineer=engineer
    )

    assert job.status == JobStatus.SUCCEEDED
    assert job.metrics["excluded_records"] == 12 and job.metrics["forget_ids_not_in_data"] == 0
    assert job.metrics["trained_records"] == tickets.record_count - 12
    assert job.metrics["exact_recipe"] is True and job.metrics["guarantee"] == "exact"
    produced = job.produced_model
    assert (
        produced.dataset_version == job.produced_dataset_version
    )  # trained on the derived version's records
    assert produced.recipe == source.recipe
    _assert_derived_without(job, tickets, forget)
    # Retraining the derived version from scratch gives the same weights: retrain is exact.
    again = model_train(dataset_version=job.produced_dataset_version, engineer=engineer, name="again")
    assert again.produced_model.weights_sha256 == produced.weights_sha256


def _bram_holt_held_back(officer) -> set[str]:
    """Approve Bram Holt's erasure after training; return the ids of his four tickets the guard holds back
    (in the source's version and in any version derived from it since)."""
    bram = request_services.erasure_request_create(
        subject=SubjectIdentifiers(names=("Bram Holt",), emails=("bram.holt@example.net",)),
        legal_ground=LegalGround.CONSENT_WITHDRAWN,
        actor=officer,
    )
    ErasureRequest.objects.filter(pk=bram.pk).update(status=RequestStatus.APPROVED)
    # Four hits in each version holding them (a job may have derived one already).
    assert reingestion.reingestion_check_for_request(erasure_request=bram) >= 4
    held = set(
        ReingestionHit.objects.filter(erasure_request=bram).values_list("record__record_id", flat=True)
    )
    assert len(held) == 4
    return held


def test_a_retrain_leaves_out_what_the_guard_holds_back_for_another_erasure_since_the_source_was_trained(
    tickets, engineer, officer
):
    """Bram Holt's erasure is approved after the source was trained on his four tickets: Ada's
    retrain must not train on them again, and stays exactly what training the derived version
    (where the guard holds them back too) from scratch gives."""
    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    brams = _bram_holt_held_back(officer)
    forget = _ada_records(tickets)

    job = _unlearn(
        source=source, version=tickets, forget=forget, method="retrain", params={}, engineer=engineer
    )

    assert job.metrics["held_back_for_others_left_out"] == 4
    assert job.metrics["trained_records"] == tickets.record_count - 12 - 4
    assert "4 record(s) the source was trained on are held back for other erasures" in job.log
    listed = set((Path(job.produced_model.path) / "lethe_training_records.txt").read_text().split())
    assert not listed & brams and not listed & {record.record_id for record in forget}
    again = model_train(dataset_version=job.produced_dataset_version, engineer=engineer, name="again")
    assert again.produced_model.weights_sha256 == job.produced_model.weights_sha256

    # An approximate run regularises without them, and its list still names what its weights descend from.
    approximate = _unlearn(
        source=source,
        version=tickets,
        forget=forget,
        method="gradient_difference",
        params=APPROXIMATE["gradient_difference"],
        engineer=engineer,
    )
    assert approximate.metrics["held_back_for_others_left_out"] == 4
    listed = set((Path(approximate.produced_model.path) / "lethe_training_records.txt").read_text().split())
    assert brams <= listed and not listed & {record.record_id for record in forget}


def test_sisa_retrains_only_the_shards_that_held_the_records(tickets, engineer):
    source = model_train(
        dataset_version=tickets, engineer=engineer, name="sharded", sisa_shards=4
    ).produced_model
    assert source.kind == "sisa" and source.recipe["sisa"]["shards"] == 4
    one = _ada_records(tickets)[:1]  # one record: one shard

    job = _unlearn(source=source, version=tickets, forget=one, method="sisa", params={}, engineer=engineer)

    metrics = job.metrics
    assert metrics["shards_retrained"] and len(metrics["shards_retrained"]) == 1
    assert metrics["steps_ratio"] < 0.5
    produced = Path(job.produced_model.path)
    for shard in range(4):
        same = (produced / f"shard_{shard:02d}" / "model.safetensors").read_bytes() == (
            Path(source.path) / f"shard_{shard:02d}" / "model.safetensors"
        ).read_bytes()
        assert same == (shard not in metrics["shards_retrained"])
    assert (
        job.produced_model.kind == "sisa"
        and job.produced_model.dataset_version == job.produced_dataset_version
    )
    _assert_derived_without(job, tickets, one)


def test_a_retry_after_an_erasure_approved_meanwhile_starts_over_without_its_records(
    tickets, engineer, officer, monkeypatch
):
    """Ada's retrain is cancelled with checkpoints made on Bram Holt's tickets; his erasure is
    approved before the retry. The checkpoints no longer fit what the job trains on: the retry
    drops them and starts over (the previous code failed every retry on them), and the result
    is still exactly the derived version trained from scratch."""
    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    forget = _ada_records(tickets)
    job = _unlearn_job(
        source=source, version=tickets, forget=forget, method="retrain", params={}, engineer=engineer
    )
    checkpoints = jobs.job_checkpoint_dir(job.pk)
    original = jobs.job_stop_requested

    def stop_once_checkpointed(*, job_id, attempt):
        if any(checkpoints.glob("step-*")):
            UnlearningJob.objects.filter(pk=job_id).update(cancel_requested=True)
        return original(job_id=job_id, attempt=attempt)

    monkeypatch.setattr(jobs, "job_stop_requested", stop_once_checkpointed)
    assert run_inline(job) == "cancelled"
    monkeypatch.undo()
    assert any(checkpoints.iterdir())
    brams = _bram_holt_held_back(officer)

    job = jobs.job_retry(job=UnlearningJob.objects.get(pk=job.pk), actor=engineer)
    assert run_inline(job) == "succeeded", job.log
    job.refresh_from_db()
    assert "do not fit this attempt's inputs" in job.log and "starting again from the beginning" in job.log
    assert job.metrics["held_back_for_others_left_out"] == 4 and job.metrics["resumed_from_step"] is None
    listed = set((Path(job.produced_model.path) / "lethe_training_records.txt").read_text().split())
    assert not listed & brams
    again = model_train(dataset_version=job.produced_dataset_version, engineer=engineer, name="again")
    assert again.produced_model.weights_sha256 == job.produced_model.weights_sha256


def test_sisa_and_its_retrain_leave_out_what_the_guard_holds_back_for_another_erasure_where_they_retrain(
    tickets, engineer, officer
):
    """On a SISA source the kept shards and slice states were trained on Bram Holt's tickets, so
    they stay there; where Ada's job retrains, and in a retrain of every shard, they are left out."""
    source = model_train(
        dataset_version=tickets, engineer=engineer, name="sharded", sisa_shards=2
    ).produced_model
    brams = _bram_holt_held_back(officer)
    forget = _ada_records(tickets)
    # Ada's records sit in the first slice of both shards, so the job retrains every slice of
    # both: nothing of Bram's is in a kept state, and all four must be left out.
    layout = SisaLayout.from_dict(read_manifest(source.path)["layout"])
    where = layout.locate()
    assert {where[r.record_id] for r in forget} >= {(0, 0), (1, 0)}

    job = _unlearn(source=source, version=tickets, forget=forget, method="sisa", params={}, engineer=engineer)

    assert job.metrics["held_back_for_others_left_out"] == 4 and job.metrics["shards_retrained"] == [0, 1]
    assert "4 record(s) the source was trained on are held back for other erasures" in job.log
    remaining = set(SisaLayout.from_dict(read_manifest(job.produced_model.path)["layout"]).record_ids())
    assert not remaining & brams
    retrain = _unlearn(
        source=source, version=tickets, forget=forget, method="retrain", params={}, engineer=engineer
    )
    assert retrain.metrics["held_back_for_others_left_out"] == 4
    remaining = set(SisaLayout.from_dict(read_manifest(retrain.produced_model.path)["layout"]).record_ids())
    assert not remaining & brams and not remaining & {r.record_id for r in forget}


def test_two_jobs_on_one_version_for_one_request_share_the_derived_version(tickets, engineer, officer):
    from tests.factories.jobs import request_reviewed
    from unlearning_jobs.deletion.services import dataset_version_derive_for_job

    source = model_train(dataset_version=tickets, engineer=engineer).produced_model
    erasure_request = request_reviewed(officer=officer)
    forget = _ada_records(tickets)
    made = [
        jobs.job_create(
            kind="unlearn",
            actor=engineer,
            erasure_request=erasure_request,
            framework="deletion",
            method=method,
            params={},
            source_model=source,
            dataset_version=tickets,
            forget_record_pks=[r.pk for r in forget],
            enqueue=False,
        )
        for method in ("retrain", "gradient_ascent")
    ]

    derived = [dataset_version_derive_for_job(job=job) for job in made]

    assert (
        derived[0] == derived[1] and derived[0].removed_manifest["erasure_request_id"] == erasure_request.pk
    )
    assert dataset_version_derive_for_job(job=made[0]) == derived[0]  # a second attempt reuses it too
    assert ModelVersion.objects.count() == 1
