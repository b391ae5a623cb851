"""Run a ``verify`` job: assemble the engine's inputs from the database, measure, store.

Every column of a request's comparison is measured on the same texts, chosen from the
*original* model's training list (``lethe_training_records.txt`` or its SISA layout), so that
PrivLeak and the utility ratios compare like with like:

- forget records: the job's frozen forget set (the officer's confirmed records), less those the
  original was never trained on (held out by its training job: a model cannot reveal membership
  of, or recite, a record it never saw, so counting them among the members would pull every
  membership and VerbMem row towards a pass); all of them when it was trained on none;
- members kept (retain sample): a seeded sample of the original's training records not in the
  forget set, at most ``LETHE_VERIFY_RETAIN_SAMPLE``;
- non-members (holdout): records of the same data-set version the original was *not* trained on
  (held out by the recipe, or held back by the re-ingestion guard before it was trained), less
  the few an unlearning run may stop on (``jobs.records.non_member_stop_records``: a run is not
  judged on the records it stopped on);
- from both samples, once chosen, the records the guard holds back *now* are dropped (another
  erased person's records are measured on for no one); the run's ``samples_digest`` names the
  records measured, and only runs of equal digests are compared. When there are fewer than
  ``LETHE_VERIFY_MIN_HOLDOUT``, synthetic records from the demo generator with a seed of their own
  make up the number: people no model has seen, but of the demo's distribution, not necessarily
  the data set's, so the AUCs are then a weaker signal (the run's ``sample_sizes`` says so);
- the subject's PII: the request's identifiers, decrypted in memory for the extraction check and
  never stored or logged; the engine masks every example before it reaches a row.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from django.conf import settings

from requests_app.identifiers import identifiers_decrypt
from requests_app.models import ErasureRequest
from unlearning_jobs.datasets.reingestion import dataset_version_held_back_record_ids
from unlearning_jobs.datasets.storage import dataset_version_iter_texts
from unlearning_jobs.jobs.records import (
    forget_never_trained,
    model_training_ids,
    non_member_stop_records,
    records_texts,
    retain_sample_pairs,
)
from unlearning_jobs.jobs.runner import JobOutcome
from unlearning_jobs.models import DatasetRecord, JobPhase, ModelVersion
from unlearning_jobs.registry.services import model_weights_verify
from unlearning_jobs.verification.services import verification_run_record

logger = logging.getLogger(__name__)

#: Seed of the retain sample and of the synthetic holdout, apart from the demo data's own seed.
SAMPLE_SEED = 20240917
SYNTHETIC_HOLDOUT_SEED = 7919


def _subject_pii(erasure_request) -> list[dict]:
    """Return the subject's identifiers as the engine's ``SubjectPii``; raise when there are none.

    Without values the extraction check could not find anything and would pass by default, so a
    purged or empty identifier set fails the job instead.
    """

    if erasure_request is None or not erasure_request.identifiers_encrypted:
        raise ValueError(
            "the request's identifiers are not available (purged or never given): "
            "extraction cannot be checked"
        )
    subject = identifiers_decrypt(erasure_request.identifiers_encrypted)
    kinds = {
        "emails": "EMAIL",
        "phones": "PHONE",
        "names": "PERSON",
        "addresses": "ADDRESS",
        "account_ids": "ACCOUNT_ID",
    }
    values = [
        {"kind": kinds[name], "value": value}
        for name, items in subject.as_lists().items()
        for value in items
        if value.strip()
    ]
    if not values:
        raise ValueError("the request has no identifiers to look for: extraction cannot be checked")
    return [
        {
            "subject_id": erasure_request.reference,
            "name": subject.names[0] if subject.names else None,
            "values": values,
        }
    ]


def _synthetic_holdout(count: int) -> list[str]:
    from unlearning_jobs.engine.demo_data import generate_demo_dataset

    people = max(10, count // 4)
    demo = generate_demo_dataset(
        seed=SYNTHETIC_HOLDOUT_SEED, people=people, records=max(people, count), frequent_people=min(5, people)
    )
    return [record["text"] for record in demo.records[:count]]


def samples_digest(*, forget_ids, holdout_ids, synthetic: int, retain_ids) -> str:
    """Return a digest of the records a run measures on (ids only), to tell runs that compare.

    Two runs of a request compare like with like only when they measured the same forget,
    holdout and retain records; ``verification.services`` compares runs of equal digests only.
    """
    chosen = {
        "forget": sorted(forget_ids),
        "holdout": list(holdout_ids),
        "holdout_synthetic": synthetic,
        "retain": list(retain_ids),
    }
    return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode("utf-8")).hexdigest()


def verification_inputs(*, forget_record_pks, original: ModelVersion, dataset_version=None) -> dict:
    """Return forget records, holdout and retain texts, and their sizes and origin, for one request.

    The holdout and retain samples are chosen from what never changes (the version's records, the
    original's training list, the frozen forget set), then the records the re-ingestion guard
    holds back are dropped from them: another erased person's records are measured on for no one.
    Choosing first keeps every other record where it was, so a hold-back changes a request's
    samples only where it takes a record out of them (``samples_digest`` tells).
    """

    forget = records_texts(
        DatasetRecord.objects.filter(pk__in=forget_record_pks).order_by("version_id", "ordinal")
    )
    if not forget:
        raise ValueError("the job's forget set is empty: nothing to verify")
    version = dataset_version or original.dataset_version or forget[0][0].version
    forget_ids = {record.record_id for record, _ in forget if record.version_id == version.pk}
    trained = model_training_ids(Path(original.path))
    pairs = [(record.record_id, text) for record, text in dataset_version_iter_texts(version=version)]
    if trained is None:
        trained_set = {record_id for record_id, _ in pairs}
        source = "the whole data-set version (the original names no training list)"
    else:
        trained_set = set(trained)
        source = "records of the data-set version the original was not trained on"
    members = [(record_id, text) for record_id, text in pairs if record_id in trained_set]
    never_trained = forget_never_trained(forget, version=version, trained_ids=trained_set)
    measured_forget = [pair for pair in forget if pair[0].pk not in never_trained] or forget
    forget_source = (
        f"the forget set less {len(never_trained)} record(s) the original was never trained on"
        if len(measured_forget) < len(forget)
        else "the whole forget set" + (", none of which the original was trained on" if never_trained else "")
    )
    for_stop = {
        record.record_id
        for record in non_member_stop_records(version, trained_ids=trained, forget_ids=forget_ids)
    }
    if for_stop:
        source += f", less the {len(for_stop)} an unlearning run may stop on"
    held_back = dataset_version_held_back_record_ids(version) - forget_ids
    chosen_holdout = [
        (record_id, text)
        for record_id, text in pairs
        if record_id not in trained_set and record_id not in forget_ids and record_id not in for_stop
    ][: settings.LETHE_VERIFY_MAX_HOLDOUT]
    holdout_pairs = [pair for pair in chosen_holdout if pair[0] not in held_back]
    if len(holdout_pairs) < len(chosen_holdout):
        source += f", less {len(chosen_holdout) - len(holdout_pairs)} held back for an erasure"
    holdout = [text for _, text in holdout_pairs]
    synthetic = 0
    if len(holdout) < settings.LETHE_VERIFY_MIN_HOLDOUT:
        synthetic = settings.LETHE_VERIFY_MIN_HOLDOUT - len(holdout)
        holdout += _synthetic_holdout(synthetic)
        source += f", plus {synthetic} synthetic demo records (seed {SYNTHETIC_HOLDOUT_SEED})"
    chosen_retain = retain_sample_pairs(
        members, exclude=forget_ids, size=settings.LETHE_VERIFY_RETAIN_SAMPLE, seed=SAMPLE_SEED
    )
    retain_pairs = [pair for pair in chosen_retain if pair[0] not in held_back]
    if not retain_pairs:
        raise ValueError("no retained records to measure utility on")
    records = [
        {"record_id": record.record_id, "text": text, "subject_id": None} for record, text in measured_forget
    ]
    return {
        "forget_records": records,
        "holdout_texts": holdout,
        "retain_texts": [text for _, text in retain_pairs],
        "sample_sizes": {
            "forget": len(records),
            "forget_never_trained": len(never_trained),
            "forget_source": forget_source,
            "holdout": len(holdout),
            "holdout_synthetic": synthetic,
            "holdout_source": source,
            "holdout_kept_for_stop": len(for_stop),
            "retain": len(retain_pairs),
            "held_back_left_out": {
                "holdout": len(chosen_holdout) - len(holdout_pairs),
                "retain": len(chosen_retain) - len(retain_pairs),
            },
            "samples_digest": samples_digest(
                forget_ids={record["record_id"] for record in records},
                holdout_ids=[record_id for record_id, _ in holdout_pairs],
                synthetic=synthetic,
                retain_ids=[record_id for record_id, _ in retain_pairs],
            ),
            "dataset_version_id": version.pk,
        },
    }


def robustness_settings():
    """Return the engine's ``RobustnessSettings`` from ``LETHE_VERIFY_ROBUSTNESS_*``; None when off.

    Every verify job (original, exact retrain, produced model) uses the same settings, seed
    included, so the attacked and measured records are the same in every column and the recovery
    rows can compare them.
    """
    from unlearning_jobs.engine.verify.robustness import RobustnessSettings

    if not settings.LETHE_VERIFY_ROBUSTNESS:
        return None
    return RobustnessSettings(
        attacks=tuple(settings.LETHE_VERIFY_ROBUSTNESS_ATTACKS),
        attack_fraction=settings.LETHE_VERIFY_ROBUSTNESS_ATTACK_FRACTION,
        relearn_steps=settings.LETHE_VERIFY_ROBUSTNESS_RELEARN_STEPS,
        relearn_learning_rate=settings.LETHE_VERIFY_ROBUSTNESS_RELEARN_LEARNING_RATE,
        quantization_bits=tuple(settings.LETHE_VERIFY_ROBUSTNESS_QUANTIZATION_BITS),
        max_eval_records=settings.LETHE_VERIFY_ROBUSTNESS_MAX_EVAL_RECORDS,
        max_eval_items=settings.LETHE_VERIFY_ROBUSTNESS_MAX_EVAL_ITEMS,
        seed=settings.LETHE_VERIFY_ROBUSTNESS_SEED,
    )


def run_verify_job(context):
    """Measure the job's model on its request's texts with the engine, store the run and its rows."""
    from unlearning_jobs.engine.models import load_causal_lm
    from unlearning_jobs.engine.training import TrainingCancelled
    from unlearning_jobs.engine.verify.suite import measure_model
    from unlearning_jobs.engine.verify.thresholds import resolve_thresholds

    job = context.job
    params = job.params
    resolve_thresholds(settings.LETHE_VERIFY_THRESHOLDS)  # a typo fails before any model is loaded
    robustness = robustness_settings()  # so does a bad robustness setting
    if job.source_model is None:
        raise ValueError("a verify job needs the model version to verify")
    erasure_request = (
        ErasureRequest.objects.filter(pk=params.get("erasure_request_id")).first()
        if params.get("erasure_request_id")
        else None
    )
    original = ModelVersion.objects.get(pk=params.get("original_model_id") or job.source_model_id)
    subjects = _subject_pii(erasure_request)
    inputs = verification_inputs(
        forget_record_pks=job.forget_record_pks, original=original, dataset_version=job.dataset_version
    )
    for record in inputs["forget_records"]:
        record["subject_id"] = subjects[0]["subject_id"]
    sizes = inputs.pop("sample_sizes")
    context.device_record()
    context.log(
        f"verifying {job.source_model} as {params['role']}: {sizes['forget']} forget ({sizes['forget_source']}), "
        f"{sizes['holdout']} holdout ({sizes['holdout_synthetic']} synthetic), {sizes['retain']} retain texts"
    )
    context.phase(JobPhase.LOADING_MODEL)
    model_weights_verify(job.source_model)
    model, tokenizer = load_causal_lm(job.source_model.path, device=context.device)
    device = next(model.parameters()).device
    stages = {"extraction": 0, "verbmem": 1, "membership": 2, "utility_retain": 3, "tofu": 4, "robustness": 5}

    def progress(stage: str, done: int, total: int) -> None:
        position = stages.get(stage, 4)
        context.progress(position * 100 + (100 * done // max(total, 1)), 100 * len(stages))
        if context.should_stop():
            raise TrainingCancelled(step=position, total=len(stages))

    if robustness is not None:
        context.log(
            f"robustness: {', '.join(robustness.attacks)}; relearning {robustness.relearn_steps} steps on "
            f"{robustness.attack_fraction:.0%} of the forget records; {'/'.join(map(str, robustness.quantization_bits))}-bit"
        )
    measurements = measure_model(
        model=model,
        tokenizer=tokenizer,
        device=device,
        subject_pii=subjects,
        progress=progress,
        robustness=robustness,
        **inputs,
    )
    del model
    run = verification_run_record(job=job, measurements=measurements, sample_sizes=sizes)
    failed = [row.metric for row in run.results.all() if not row.passed]
    context.log(f"verification run #{run.pk}: {'passed' if run.passed else 'FAILED: ' + ', '.join(failed)}")
    return JobOutcome(
        metrics={
            "verification_run_id": run.pk,
            "role": run.role,
            "passed": run.passed,
            "complete": run.complete,
            "failed_metrics": failed,
            "sample_sizes": sizes,
        },
        device=str(device),
    )
