"""The demo story: once the demo model has trained, an organisation at work on its requests.

Six requests about people of the demo data set, each walked by the demo officer through the
same services a person uses (so every step is in the audit log), to a different stage:

=============  ==========================================================================
part           where it stops
=============  ==========================================================================
completed      located, reviewed, decided (approximate unlearning and output suppression),
               the jobs run and verified, completed with its signed report
review         located; candidates wait for the officer's review
identity       received; the person's identity is not verified yet
overdue        identity verified 38 days ago, never located: past its one-month deadline
rejected       refused under Art. 17(3)(e) (legal claims)
extension      deadline extended by two months (Art. 12(3)); candidates wait for review
=============  ==========================================================================

``demo_story_advance`` moves each part as far as it can go now and returns; it is idempotent, so
it runs as often as anything may have changed: after the demo model's training succeeds, after
each job of a story request succeeds (``demo_story_on_job_succeeded``, listed in
``settings.LETHE_JOB_SUCCEEDED_HOOKS``), and from ``seed_demo``. It runs on the ``cpu`` worker as
the task ``TaskName.DEMO_STORY``, never in the web process. A story request is known by the
audit event ``demo_story.request_recorded`` written with it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from compliance.audit import audit_event_record
from compliance.celery import app as celery_app
from compliance.demo import DEMO_DATASET_NAME, DEMO_MODEL_NAME, demo_paths
from compliance.models import AuditEvent
from compliance.queues import TaskName, WorkQueue
from compliance.reports.acceptance import row_key, verification_failures_unaccepted
from compliance.reports.services import erasure_request_complete_with_report
from requests_app import services as request_services
from requests_app.deadlines import latest_extended_due_at
from requests_app.identifiers import SubjectIdentifiers
from requests_app.matching.review import match_candidates_confirm_above
from requests_app.matching.services import erasure_request_locate, locate_run_execute
from requests_app.models import (
    Channel,
    ErasureRequest,
    IdentityMethod,
    LegalGround,
    RejectionGround,
    RequestStatus,
)
from unlearning_jobs.decisions.services import erasure_decision_approve
from unlearning_jobs.models import (
    CandidateStatus,
    JobKind,
    JobStatus,
    MatchCandidate,
    MatchTier,
    SearchCoverage,
    SearchCoverageStatus,
    UnlearningJob,
)
from unlearning_jobs.verification.services import request_verification_unfinished_refusal

logger = logging.getLogger(__name__)

STORY_EVENT = "demo_story.request_recorded"
DEMO_OFFICER = "officer"
#: How long to wait before looking again when a search another worker runs has not finished.
RECHECK_SECONDS = 5.0
#: Candidates at or above this score, and every strong one, are confirmed for the completed request
#: (the review page's "confirm all above" button does the same).
CONFIRM_ABOVE = 0.8
#: Gradient difference with few steps: a demo on two CPU cores, not a tuned erasure
#: (docs/unlearning-methods.md has the tuned figures).
DEMO_UNLEARN_PARAMS = {"max_steps": 40, "eval_every": 10, "learning_rate": 2e-4}
DEMO_ACCEPTANCE = (
    "Demo: 40 steps of gradient difference on two CPU cores are not a tuned erasure. Accepted "
    "because the output guard blocks the person's data on every deployment until the next retrain."
)


@dataclass(frozen=True)
class StoryPart:
    """One request of the story: whose, received how long ago, and the steps it is taken through."""

    name: str
    person_rank: int  # 0 = the person in most records of the demo data set
    received_days_ago: int
    legal_ground: str = LegalGround.CONSENT_WITHDRAWN
    channel: str = Channel.EMAIL
    verify: bool = True
    extend: bool = False
    locate: bool = False
    decide: bool = False
    reject: bool = False


STORY = (
    StoryPart("completed", 0, 9, locate=True, decide=True),
    StoryPart("review", 1, 4, legal_ground=LegalGround.OBJECTION, locate=True),
    StoryPart("identity", 5, 1, channel=Channel.FORM, verify=False),
    StoryPart("overdue", 6, 38, legal_ground=LegalGround.NO_LONGER_NECESSARY, channel=Channel.LETTER),
    StoryPart("rejected", 7, 12, verify=False, reject=True),
    StoryPart("extension", 2, 27, extend=True, locate=True),
)
PART_NAMES = tuple(part.name for part in STORY)


# --- what is there ---------------------------------------------------------------------------------


def demo_story_requests() -> dict[str, ErasureRequest]:
    """Return the story's requests by part name (only those recorded so far)."""
    ids = {}
    for event in AuditEvent.objects.filter(action=STORY_EVENT).order_by("sequence"):
        ids.setdefault(event.details.get("part"), int(event.object_id))
    by_pk = ErasureRequest.objects.in_bulk(list(ids.values()))
    return {part: by_pk[pk] for part, pk in ids.items() if pk in by_pk}


def demo_training_job() -> UnlearningJob | None:
    """Return the succeeded training job of the demo model, or None while there is none."""
    return (
        UnlearningJob.objects.filter(
            kind=JobKind.TRAIN,
            status=JobStatus.SUCCEEDED,
            params__name=DEMO_MODEL_NAME,
            dataset_version__dataset__name=DEMO_DATASET_NAME,
            produced_model__isnull=False,
        )
        .select_related("produced_model")
        .order_by("pk")
        .first()
    )


def _people() -> list[dict]:
    """Return the demo data set's people, the one in most records first (ties by id)."""
    _records, truth_path = demo_paths(settings.LETHE_DATA_DIR)
    people = json.loads(truth_path.read_text(encoding="utf-8"))["people"]
    return sorted(people, key=lambda p: (-len(p["record_ids"]), p["person_id"]))


# --- sending ---------------------------------------------------------------------------------------


def demo_story_send(*, countdown: float | None = None) -> None:
    """Send the story's task to the ``cpu`` queue once the current transaction commits."""
    if not settings.LETHE_DEMO_STORY:
        return

    def send() -> None:
        celery_app.send_task(TaskName.DEMO_STORY.value, queue=WorkQueue.CPU.value, countdown=countdown)

    transaction.on_commit(send)


def demo_story_on_job_succeeded(job: UnlearningJob) -> None:
    """Move the story on after the demo model's training or a job of a story request succeeded.

    Listed in ``settings.LETHE_JOB_SUCCEEDED_HOOKS``; runs inside the job's success transaction
    and only sends a task after commit, so it never slows the job down.
    """
    if not settings.LETHE_DEMO_STORY:
        return
    if job.kind == JobKind.TRAIN:
        if (job.params or {}).get("name") == DEMO_MODEL_NAME:
            demo_story_send()
        return
    request_id = job.erasure_request_id or (job.params or {}).get("erasure_request_id")
    if (
        request_id
        and AuditEvent.objects.filter(
            action=STORY_EVENT, object_type=ErasureRequest._meta.label_lower, object_id=str(request_id)
        ).exists()
    ):
        demo_story_send()


# --- moving the story on ---------------------------------------------------------------------------


def demo_story_advance(*, now=None) -> dict:
    """Take every part of the story as far as it can go now; return what each part's request is at.

    Returns ``{"parts": {part: status}, "waiting": bool}``; ``waiting`` says a search run by
    another worker has not finished yet, so the caller should look again shortly. Does nothing
    before the demo model has trained.
    """
    training = demo_training_job() if settings.LETHE_DEMO_STORY else None
    if training is None:
        return {"parts": {}, "waiting": False}
    officer = get_user_model().objects.filter(username=DEMO_OFFICER, is_active=True).first()
    if officer is None:
        return {"parts": {}, "waiting": False}
    now = now or timezone.now()
    people = _people()
    waiting = False
    statuses = {}
    for part in STORY:
        erasure_request = _part_request(part, training=training, officer=officer, people=people, now=now)
        try:
            erasure_request, part_waiting = _part_advance(
                part, erasure_request=erasure_request, officer=officer, model=training.produced_model, now=now
            )
        except request_services.TransitionNotAllowed as refusal:
            # Another run of the story (or a person) moved this request meanwhile: nothing to do.
            logger.info(
                "demo_story.step_refused", extra={"part": part.name, "reason": " ".join(refusal.messages)}
            )
            erasure_request.refresh_from_db()
            part_waiting = False
        waiting = waiting or part_waiting
        statuses[part.name] = erasure_request.status
    return {"parts": statuses, "waiting": waiting}


def _part_request(part: StoryPart, *, training, officer, people, now) -> ErasureRequest:
    """Return the part's request, recording it (with the story's marker event) when it is missing."""
    with transaction.atomic():
        # One story at a time: every run locks the training job's row before it looks.
        UnlearningJob.objects.select_for_update().filter(pk=training.pk).first()
        existing = AuditEvent.objects.filter(action=STORY_EVENT, details__part=part.name).first()
        if existing is not None:
            return ErasureRequest.objects.get(pk=int(existing.object_id))
        person = people[part.person_rank]
        subject = SubjectIdentifiers(
            names=(f"{person['first_name']} {person['last_name']}",), emails=(person["email"],)
        )
        erasure_request = request_services.erasure_request_create(
            subject=subject,
            legal_ground=part.legal_ground,
            channel=part.channel,
            actor=officer,
            received_at=now - timedelta(days=part.received_days_ago),
            now=now,
        )
        audit_event_record(
            actor=None,
            action=STORY_EVENT,
            target=erasure_request,
            details={"part": part.name, "reference": erasure_request.reference, "source": "seed_demo"},
        )
    return erasure_request


def _part_advance(part: StoryPart, *, erasure_request, officer, model, now) -> tuple[ErasureRequest, bool]:
    """Take one step after another while the part has one to take; return the request and ``waiting``."""
    status = erasure_request.status
    if status == RequestStatus.RECEIVED and part.reject:
        erasure_request = request_services.erasure_request_reject(
            erasure_request=erasure_request,
            actor=officer,
            ground=RejectionGround.LEGAL_CLAIMS,
            explanation=(
                "The tickets are evidence in the person's pending court claim against the company "
                "(Art. 17(3)(e)); they are kept until the claim is settled, then erased."
            ),
        )
        return erasure_request, False
    if status == RequestStatus.RECEIVED and part.verify:
        erasure_request = request_services.erasure_request_verify_identity(
            erasure_request=erasure_request,
            actor=officer,
            method=IdentityMethod.EMAIL_LINK,
            verified_at=erasure_request.received_at + timedelta(days=1),
            now=now,
        )
    if part.extend and erasure_request.is_open and not erasure_request.is_extended:
        erasure_request = request_services.erasure_request_extend_deadline(
            erasure_request=erasure_request,
            actor=officer,
            until=latest_extended_due_at(erasure_request.received_at),
            reason="The person appears in tickets of several data sets and in derived data; "
            "locating and deciding needs more than a month.",
            notified_at=erasure_request.received_at + timedelta(days=2),
            now=now,
        )
    if erasure_request.status == RequestStatus.IDENTITY_VERIFICATION and part.locate:
        erasure_request = erasure_request_locate(erasure_request=erasure_request, actor=officer)
    if erasure_request.status == RequestStatus.LOCATING:
        # The search was queued on this queue; run it here rather than wait for it.
        coverage = SearchCoverage.objects.filter(erasure_request=erasure_request).order_by("-pk").first()
        if coverage is not None and coverage.status == SearchCoverageStatus.QUEUED:
            locate_run_execute(coverage_id=coverage.pk)
        erasure_request.refresh_from_db()
        if erasure_request.status == RequestStatus.LOCATING:
            return erasure_request, True
    if erasure_request.status == RequestStatus.REVIEW and part.decide:
        strongest_pending = MatchCandidate.objects.filter(
            erasure_request=erasure_request, tier=MatchTier.STRONG, status=CandidateStatus.PENDING
        ).aggregate(lowest=Min("score"))["lowest"]
        match_candidates_confirm_above(
            erasure_request=erasure_request,
            actor=officer,
            score=min(CONFIRM_ABOVE, strongest_pending if strongest_pending is not None else 1.0),
            note="Demo: every strong candidate (the person's e-mail or full name) is the person's.",
        )
        erasure_decision_approve(
            erasure_request=erasure_request,
            actor=officer,
            rationale=(
                "Consent withdrawn (Art. 17(1)(b)). A retrain of the support model is disproportionate "
                "for one person: approximate unlearning of the confirmed tickets, verified against the "
                "original, with an output guard on the model's deployments until the next retrain."
            ),
            plan=[
                {
                    "model_version": model.pk,
                    "framework": "deletion",
                    "method": "gradient_difference",
                    "params": DEMO_UNLEARN_PARAMS,
                },
                {
                    "model_version": model.pk,
                    "framework": "output_suppression",
                    "method": "guard",
                    "params": {},
                },
            ],
        )
        erasure_request.refresh_from_db()
    if erasure_request.status == RequestStatus.VERIFYING and part.decide:
        if request_verification_unfinished_refusal(erasure_request) is None:
            # A few dozen steps on two CPU cores are not a tuned erasure: a row that failed is
            # accepted in writing, as an officer must, and the report prints it beside the row.
            acceptances = {
                row_key(row): DEMO_ACCEPTANCE for row in verification_failures_unaccepted(erasure_request)
            }
            erasure_request = erasure_request_complete_with_report(
                erasure_request=erasure_request,
                actor=officer,
                note="Every job ran and was verified; the signed report is issued.",
                acceptances=acceptances,
            )
    return erasure_request, False


def demo_story_summary() -> dict[str, str]:
    """Return each recorded part's reference, for the command's output and the start panels."""
    return {part: erasure_request.reference for part, erasure_request in demo_story_requests().items()}
