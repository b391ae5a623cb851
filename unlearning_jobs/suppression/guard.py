"""Serve a registered model behind its deployment's guard, and the jobs that set up and probe guards.

Models and guards are cached per process: a model by its version and weights hash, at most
``LETHE_GENERATE_MODELS_CACHED`` of them, the least recently used dropped first (a web process
must not keep every model it ever served); a guard by the rule-set version it enforces (a new version is a new guard, so a change takes effect on the
next request). Generation is greedy, so a probe gives the same answer twice.

Runners (``RUNNERS``, registered by ``suppression.suppression_connect``):

- ``guard``: add the request's subject to the rules of every deployment of the decision's model
  version; a model version without a deployment gets one with the decision's policy.
- ``guard_probe``: run the engine's probe suite for the subject and a benign suite about other
  (fictitious) people through the deployment's guard, with the real model's greedy answers when
  its weights load, else the simulated worst case (a model that leaks every value asked for).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from compliance.audit import audit_event_record
from requests_app.identifiers import identifiers_decrypt
from requests_app.matching.review import forget_set_for_request
from unlearning_jobs.datasets.storage import dataset_records_texts, record_id_hash
from unlearning_jobs.jobs.runner import JobOutcome
from unlearning_jobs.jobs.services import job_create
from unlearning_jobs.models import Deployment, Framework, JobKind, JobStatus, ModelVersion, UnlearningJob
from unlearning_jobs.registry.services import model_weights_verify
from unlearning_jobs.suppression.keys import rule_set_hasher
from unlearning_jobs.suppression.services import (
    deployment_create,
    deployment_policy,
    guard_policy_from,
    records_identifier_values,
    rule_set_engine,
    subject_ref_for,
    suppression_rules_add_for_request,
)

logger = logging.getLogger(__name__)

MAX_NEW_TOKENS = 256
MAX_PROMPT_CHARS = 4000
#: Probe answers are short: the value asked for fits in a few dozen tokens.
PROBE_NEW_TOKENS = 24

_lock = threading.Lock()
_MODELS: OrderedDict[tuple[int, str], tuple[Any, Any]] = OrderedDict()
_GUARDS: dict[int, Any] = {}


def model_load_cached(model_version: ModelVersion):
    """Return ``(model, tokenizer)`` of a registered version, loaded once per process.

    The weights are re-hashed against the registry when the model is loaded, not at each
    generation (``ModelWeightsChanged`` when they differ).
    """
    from unlearning_jobs.engine.models import load_causal_lm

    key = (model_version.pk, model_version.weights_sha256)
    with _lock:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
        while _MODELS and len(_MODELS) >= max(1, settings.LETHE_GENERATE_MODELS_CACHED):
            _MODELS.popitem(
                last=False
            )  # the least recently used goes; torch frees it with its last reference
        model_weights_verify(model_version)
        _MODELS[key] = load_causal_lm(
            model_version.path, device=getattr(settings, "LETHE_JOB_DEVICE", None) or None
        )
        return _MODELS[key]


def model_generate_fn(model_version: ModelVersion, *, max_new_tokens: int):
    """Return ``generate(prompt) -> text``: the model's greedy continuation of a prompt.

    Raise ``ValidationError`` when ``max_new_tokens`` leaves no room for a prompt in the
    model's context: a caller's choice, refused before anything runs.
    """
    import torch

    from unlearning_jobs.engine.verify.lm import context_length, greedy_complete

    model, tokenizer = model_load_cached(model_version)
    limit = context_length(model, tokenizer)
    if max_new_tokens >= limit:
        raise ValidationError(
            {
                "max_new_tokens": [
                    f"{model_version} reads at most {limit} tokens: give at most {limit - 1} new tokens."
                ]
            }
        )
    device = getattr(model, "device", None) or torch.device("cpu")

    def generate(prompt: str) -> str:
        return greedy_complete(
            model=model,
            tokenizer=tokenizer,
            prompts=[prompt],
            device=device,
            max_new_tokens=max_new_tokens,
            batch_size=1,
        )[0]

    return generate


def deployment_guard(deployment: Deployment):
    """Return the engine ``Guard`` of the deployment's active rule set, built once per version."""
    from unlearning_jobs.engine.guard import Guard

    rule_set = deployment.active_rule_set
    if rule_set is None:
        raise ValidationError("The deployment has no rule set.")
    with _lock:
        guard = _GUARDS.get(rule_set.pk)
    if guard is None:
        policy = deployment_policy(deployment)
        guard = Guard(rule_set_engine(rule_set, policy=policy), rule_set_hasher(rule_set), policy)
        with _lock:
            _GUARDS[rule_set.pk] = guard
    return guard


def _match_list(decision) -> list[dict]:
    if decision is None:
        return []
    return [
        {"type": m.entity_type, "span": [m.span[0], m.span[1]], "direction": decision.direction}
        for m in decision.matches
    ]


def guarded_generate(*, deployment: Deployment, prompt: str, max_new_tokens: int, actor) -> dict:
    """Answer ``prompt`` with the deployment's model behind its guard; audit every guarded action.

    The audit event holds the action, directions, entity types, spans and subject references,
    never the prompt or the answer.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError({"prompt": ["Give a prompt."]})
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValidationError({"prompt": [f"At most {MAX_PROMPT_CHARS} characters are accepted."]})
    if not 1 <= int(max_new_tokens) <= MAX_NEW_TOKENS:
        raise ValidationError({"max_new_tokens": [f"Give 1 to {MAX_NEW_TOKENS}."]})
    deployment = Deployment.objects.select_related("active_rule_set", "model_version").get(pk=deployment.pk)
    guard = deployment_guard(deployment)
    generate = model_generate_fn(deployment.model_version, max_new_tokens=int(max_new_tokens))
    result = guard.run(prompt, generate=generate)
    decisions = [d for d in (result.input, result.output) if d is not None]
    acted = [d for d in decisions if d.acted]
    matches = [m for d in decisions for m in _match_list(d)]
    body = {
        "text": result.text,
        "guard": {
            "acted": result.acted,
            "action": result.action,
            "direction": acted[-1].direction if acted else None,
            "reasons": [reason for d in decisions for reason in d.reasons],
            "matches": matches,
        },
        "rule_set_version": deployment.active_rule_set.version,
        "deployment": deployment.pk,
    }
    if result.acted:
        with transaction.atomic():
            audit_event_record(
                actor=actor,
                action="guard.acted",
                target=deployment,
                details={
                    "deployment_id": deployment.pk,
                    "model_version_id": deployment.model_version_id,
                    "rule_set_version": deployment.active_rule_set.version,
                    "action": result.action,
                    "directions": [d.direction for d in acted],
                    "matches": [
                        {"type": m["type"], "span": m["span"], "direction": m["direction"]} for m in matches
                    ],
                    "subjects": sorted({s for d in acted for s in d.subjects}),
                },
            )
        logger.info("guard.acted", extra={"deployment_id": deployment.pk, "action": result.action})
    return body


# --- job runners ----------------------------------------------------------------------------------


def guard_params_clean(params: Mapping[str, Any] | None) -> dict:
    """Return a guard decision's parameters as a full guard policy (defaults filled in)."""

    if params is not None and not isinstance(params, Mapping):
        raise ValueError(f"params must be a JSON object, got {type(params).__name__}")
    return guard_policy_from(params).as_dict()


def guard_job_params_validate(method: str, params: Mapping[str, Any] | None) -> dict:
    return guard_params_clean(params)


def guard_probe_job_params_validate(method: str, params: Mapping[str, Any] | None) -> dict:
    params = dict(params or {})
    unknown = set(params) - {"deployment_id", "generate", "benign_people"}
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    deployment_id = params.get("deployment_id")
    if isinstance(deployment_id, bool) or not isinstance(deployment_id, int):
        raise ValueError("deployment_id must be the id of a deployment")
    generate = params.get("generate", "model")
    if generate not in ("model", "simulated"):
        raise ValueError("generate must be 'model' or 'simulated'")
    benign = params.get("benign_people", 3)
    if isinstance(benign, bool) or not isinstance(benign, int) or not 1 <= benign <= 50:
        raise ValueError("benign_people must be an integer from 1 to 50")
    return {"deployment_id": deployment_id, "generate": generate, "benign_people": benign}


def run_guard_job(context):
    """Add the job's request to the rules of every deployment of its model version."""

    job = context.job
    version = job.source_model
    if job.erasure_request is None or version is None:
        raise ValueError("a guard job needs an erasure request and a model version")
    deployments = list(Deployment.objects.filter(model_version=version).order_by("pk"))
    created = False
    if not deployments:
        deployments = [
            deployment_create(
                name=f"{version.name}-{version.pk}-guarded",
                model_version=version,
                policy=job.params,
                actor=None,
            )
        ]
        created = True
        context.log(f"no deployment served model version {version.pk}: created {deployments[0].name}")
    versions = {}
    for deployment in deployments:
        rule_set = suppression_rules_add_for_request(
            deployment=deployment,
            erasure_request=job.erasure_request,
            actor=None,
            reason=f"decision of job {job.pk}",
        )
        versions[str(deployment.pk)] = {
            "rule_set_version": rule_set.version,
            "rules": rule_set.rule_count,
            "fingerprint": rule_set.fingerprint,
        }
        context.log(f"deployment {deployment.pk}: rules v{rule_set.version}, {rule_set.rule_count} rules")
    context.progress(1, 1)
    return JobOutcome(metrics={"deployments": versions, "deployment_created": created})


def subject_facts_for_request(erasure_request, *, max_records: int = 20):
    """Return the engine's ``SubjectFacts`` for a request: identifiers, record quasi-identifiers, records.

    Raw values, in memory only: what persists from a probe is counts and rates.
    """
    from unlearning_jobs.engine.guard import SubjectFacts, SubjectRecord

    if not erasure_request.identifiers_encrypted:
        raise ValidationError("The request's identifiers were purged: the subject cannot be probed.")
    subject = identifiers_decrypt(erasure_request.identifiers_encrypted)
    # Probes are built from whatever identifiers the request has, and what its confirmed records
    # link to the person (the rules hold those too): a request with only an e-mail is probed on
    # that e-mail, and on the name its person's records show. A full name (given and family)
    # is probed; the request's own first.
    confirmed = forget_set_for_request(erasure_request)
    texts = dataset_records_texts(confirmed) if confirmed else {}
    linked = records_identifier_values(erasure_request, records=confirmed, texts=texts)
    records = confirmed[:max_records]

    def both(given, list_name: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*given, *linked.get(list_name, ())]))

    names = [n for n in both(subject.names, "names") if len(n.split()) >= 2]
    return SubjectFacts(
        subject_ref=subject_ref_for(erasure_request),
        name=names[0] if names else None,
        emails=both(subject.emails, "emails"),
        phones=both(subject.phones, "phones"),
        addresses=both(subject.addresses, "addresses"),
        account_ids=both(subject.account_ids, "account_ids"),
        cities=tuple(linked.get("locations", ())),
        dates_of_birth=tuple(linked.get("dates_of_birth", ())),
        records=tuple(SubjectRecord(record_id_hash(r.record_id)[:16], texts[r.pk]) for r in records),
        default_region=settings.LETHE_PHONE_REGION,
    )


def guard_probe_measure(
    *, deployment: Deployment, facts, generate: str = "model", benign_people: int = 3
) -> dict:
    """Return block rate, false-positive rate and latency of the deployment's guard for one subject."""
    from unlearning_jobs.engine.guard import benign_suite, measure_guard, probe_suite
    from unlearning_jobs.engine.guard.synthetic import fake_subjects

    # The probes' expected hashes must be made under the key the guard's rules were made under.
    hasher = rule_set_hasher(deployment.active_rule_set)
    guard = deployment_guard(deployment)
    probes = probe_suite(facts, hasher=hasher)
    benign = benign_suite(fake_subjects(count=benign_people, seed=7, ref_prefix="benign"), hasher=hasher)
    generate_fn, mode, note = None, "simulated", ""
    if generate == "model":
        try:
            generate_fn = model_generate_fn(deployment.model_version, max_new_tokens=PROBE_NEW_TOKENS)
            mode = "model"
        except (FileNotFoundError, OSError) as error:
            note = f"model not loaded ({type(error).__name__}): simulated worst case used"
    measurement = measure_guard(guard, probes, benign, generate_fn)
    data = measurement.as_dict()
    data.pop("missed", None)
    return {
        **data,
        "generation": mode,
        "note": note,
        "rule_set_version": deployment.active_rule_set.version,
        "missed_kinds": sorted({kind for kind, _ in measurement.missed}),
    }


def run_guard_probe_job(context):
    """Measure the deployment's guard for the job's request: block rate, false positives, latency."""

    job = context.job
    deployment = Deployment.objects.select_related("active_rule_set", "model_version").get(
        pk=job.params["deployment_id"]
    )
    facts = subject_facts_for_request(job.erasure_request)
    metrics = guard_probe_measure(
        deployment=deployment,
        facts=facts,
        generate=job.params["generate"],
        benign_people=job.params["benign_people"],
    )
    context.log(
        f"probes {metrics['probes']}, block rate {metrics['block_rate']:.4f}, "
        f"false positives {metrics['false_positive_rate']:.4f}, generation {metrics['generation']}"
    )
    context.progress(1, 1)
    return JobOutcome(metrics={"deployment_id": deployment.pk, **metrics})


def guard_probe_job_create(
    *, deployment: Deployment, erasure_request, actor, generate: str = "model", enqueue: bool = True
):
    """Queue a ``guard_probe`` job for the request's subject against the deployment's guard."""

    return job_create(
        kind=JobKind.GUARD_PROBE.value,
        actor=actor,
        erasure_request=erasure_request,
        framework=Framework.OUTPUT_SUPPRESSION.value,
        method="guard_probe",
        params={"deployment_id": deployment.pk, "generate": generate},
        source_model=deployment.model_version,
        enqueue=enqueue,
    )


def guard_probe_jobs_for_guard_job(job) -> None:
    """Queue a probe of every deployment a succeeded guard job gave the request's rules.

    Registered as a job-succeeded hook, so the guard's effect on the subject (block rate, false
    positives, latency) is measured, and lands in the report, without anyone having to ask.
    """

    if job.kind != JobKind.GUARD.value or job.erasure_request_id is None:
        return
    deployment_ids = sorted(int(pk) for pk in (job.metrics or {}).get("deployments", {}))
    for deployment in Deployment.objects.filter(pk__in=deployment_ids).order_by("pk"):
        guard_probe_job_create(deployment=deployment, erasure_request=job.erasure_request, actor=None)


def guard_measurements_for_report(erasure_request) -> dict:
    """Return the measured effect of output suppression for the report's verification section.

    For each deployment, the newest succeeded probe of the request's subject: the share of the
    subject's probes the guard blocked and the share of benign prompts about other people it
    wrongly blocked, each against its threshold (``LETHE_GUARD_MIN_BLOCK_RATE``,
    ``LETHE_GUARD_MAX_FALSE_POSITIVE_RATE``). Counts and rates only, no prompt or answer.
    """

    newest: dict[int, UnlearningJob] = {}
    for job in UnlearningJob.objects.filter(
        erasure_request=erasure_request, kind=JobKind.GUARD_PROBE.value, status=JobStatus.SUCCEEDED
    ).order_by("pk"):
        newest[int(job.metrics["deployment_id"])] = job
    deployments = Deployment.objects.in_bulk(list(newest))
    # (row metric, job metric, limit, comparator, sample-size metric)
    checks = (
        ("guard_block_rate", "block_rate", settings.LETHE_GUARD_MIN_BLOCK_RATE, ">=", "probes"),
        (
            "guard_false_positive_rate",
            "false_positive_rate",
            settings.LETHE_GUARD_MAX_FALSE_POSITIVE_RATE,
            "<=",
            "benign",
        ),
    )
    results = []
    for deployment_id, job in sorted(newest.items()):
        metrics = job.metrics
        deployment = deployments.get(deployment_id)
        name = deployment.name if deployment else "a deleted deployment"
        subject = (
            f"Output suppression: {name} (#{deployment_id}), rules v{metrics.get('rule_set_version')}, "
            f"{metrics.get('generation')} generation"
        )
        for metric, key, limit, comparator, samples in checks:
            value = metrics[key]
            results.append(
                {
                    "subject": subject,
                    "job_id": job.pk,
                    "reference": None,
                    "metric": metric,
                    "value": value,
                    "threshold": limit,
                    "comparator": comparator,
                    "condition": f"value {comparator} {limit:g}",
                    "passed": value >= limit if comparator == ">=" else value <= limit,
                    "n_samples": metrics.get(samples),
                }
            )
    return {"results": results, "figures": []}
