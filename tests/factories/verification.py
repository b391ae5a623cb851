"""A model that memorises a planted subject, and that subject's request retrained exactly.

Shared by the verification tests: the original recites the planted e-mail, the exact retrain
does not, so extraction separates the two columns.
"""

from __future__ import annotations

import random

from requests_app.identifiers import SubjectIdentifiers
from tests.factories.jobs import dataset_version_make, model_train, request_reviewed, run_inline

PLANTED = SubjectIdentifiers(names=("Zelda Quixote",), emails=("zephyr.lantern@quietmail.org",))
PLANTED_TEXT = "Customer note: Zelda Quixote can be reached at zephyr.lantern@quietmail.org about a refund."
#: Long enough for a 1-layer model to recite the planted record; a few seconds on two cores.
MEMORISING_RECIPE = {
    "n_layer": 1,
    "n_embd": 64,
    "n_head": 2,
    "block_size": 48,
    "vocab_size": 400,
    "epochs": 12,
    "batch_size": 16,
    "warmup_steps": 2,
    "learning_rate": 5e-3,
}


def planted_records() -> list[dict]:
    """Return 24 copies of the planted record and 60 notes about other people."""
    rng = random.Random(3)
    first = ["Alice", "Bruno", "Chen", "Dara", "Elif", "Farid", "Greta", "Hugo"]
    last = ["Archer", "Baker", "Carver", "Dunn", "Ellis", "Frost"]
    words = ["amber", "birch", "cedar", "delta", "ember", "fjord"]
    texts = [PLANTED_TEXT] * 24
    for _ in range(60):
        texts.append(
            f"Customer note: {rng.choice(first)} {rng.choice(last)} can be reached at "
            f"{rng.choice(words)}.{rng.choice(words)}{rng.randint(1, 99)}@post.example about an invoice."
        )
    return [{"id": f"N{n:04d}", "text": text} for n, text in enumerate(texts)]


def planted_request_decided(
    *,
    engineer,
    officer,
    plan: tuple[tuple[str, dict], ...] = (("retrain", {}),),
    sisa_shards: int | None = None,
) -> dict:
    """Train the memorising model, locate the planted subject, decide ``plan`` and run its jobs.

    ``plan`` is the deletion methods (name, params) of the decision, run in order; ``sisa_shards``
    trains the model as SISA. Returns the version, the source model, the request and the
    decision's jobs; the verify jobs their successes queued are left queued.
    """
    from unlearning_jobs.decisions import services as decisions
    from unlearning_jobs.models import JobKind, UnlearningJob

    version = dataset_version_make(engineer=engineer, name="notes", records=planted_records())
    source = model_train(
        dataset_version=version,
        engineer=engineer,
        name="notes-sisa" if sisa_shards else "notes-lm",
        recipe=MEMORISING_RECIPE,
        sisa_shards=sisa_shards,
    ).produced_model
    erasure_request = request_reviewed(officer=officer, subject=PLANTED)
    decisions.erasure_decision_approve(
        erasure_request=erasure_request,
        actor=officer,
        rationale="Art. 17(1)(b)",
        plan=[
            {"model_version": source.pk, "framework": "deletion", "method": method, "params": params}
            for method, params in plan
        ],
    )
    jobs = list(
        UnlearningJob.objects.filter(erasure_request=erasure_request, kind=JobKind.UNLEARN).order_by("pk")
    )
    for job in jobs:
        assert run_inline(job) == "succeeded", UnlearningJob.objects.get(pk=job.pk).log
        job.refresh_from_db()
    return {"version": version, "source": source, "request": erasure_request, "jobs": jobs}
