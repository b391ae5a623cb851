"""The officer's review of the records located for a request: text with personal data highlighted,
evidence and score per candidate, confirm or reject one by one or all above a score.

Record text is shown only here and only to privacy officers; the decisions and their audit
events hold keyed hashes, tiers and scores. Views call ``requests_app.matching.review`` and
``requests_app.matching.services``; a refused step comes back as a message on the page.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views import View
from django.views.generic import DetailView, ListView

from compliance import roles
from compliance.access import PermissionPageMixin
from requests_app.matching import review
from requests_app.matching import services as matching
from requests_app.models import ErasureRequest, RequestStatus
from requests_app.selectors import erasure_request_identified_by_name_only
from requests_app.services import TransitionNotAllowed, transition_refusal
from unlearning_jobs.datasets.storage import dataset_records_texts
from unlearning_jobs.engine.pii.match_keys import RECOGNISER as MATCH_KEY_RECOGNISER
from unlearning_jobs.models import CandidateStatus, MatchTier, PiiFinding

MAX_SHOWN_PER_TIER = 500


class NoteForm(forms.Form):
    """The request's own approve step takes a note; posted from here to its action URL."""

    note = forms.CharField(
        required=False,
        max_length=review.MAX_NOTE_LENGTH,
        label="Note on the approval",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ConfirmAboveForm(forms.Form):
    score = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        initial=0.8,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        label="Confirm every pending candidate scoring at least",
    )
    note = forms.CharField(required=False, max_length=review.MAX_NOTE_LENGTH)


class NothingFoundForm(forms.Form):
    note = forms.CharField(
        max_length=review.MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why the search is complete although none of the person's records was found",
    )


def highlighted_segments(
    text: str, spans: list[tuple[int, int, str]], matched: set[tuple[int, int]]
) -> list[dict]:
    """Return the text cut into plain and highlighted pieces (escaped by the template).

    ``spans`` are ``(start, end, entity type)`` of the record's findings; those in ``matched``
    (the person's own identifiers) are marked apart from other personal data. Overlapping
    spans keep the first, a matched one before one that is not.
    """
    segments, position = [], 0
    # The person's own identifiers first where spans overlap, and the longer of two.
    for start, end, kind in sorted(
        spans, key=lambda span: (span[0], (span[0], span[1]) not in matched, -span[1])
    ):
        if start < position or end > len(text) or start >= end:
            continue
        if start > position:
            segments.append({"text": text[position:start]})
        segments.append(
            {
                "text": text[start:end],
                "entity_type": kind,
                "css": "match" if (start, end) in matched else "pii",
            }
        )
        position = end
    if position < len(text):
        segments.append({"text": text[position:]})
    return segments


class ReviewQueueView(PermissionPageMixin, ListView):
    """Requests being located or in review, with their candidates still to decide."""

    permission_required = roles.MANAGE_REQUESTS
    template_name = "requests_app/review_queue.html"
    context_object_name = "erasure_requests"

    def get_queryset(self):
        return (
            ErasureRequest.objects.filter(status__in=[RequestStatus.LOCATING, RequestStatus.REVIEW])
            .annotate(
                pending=Count("match_candidates", filter=Q(match_candidates__status=CandidateStatus.PENDING)),
                confirmed=Count(
                    "match_candidates", filter=Q(match_candidates__status=CandidateStatus.CONFIRMED)
                ),
            )
            .select_related("assigned_officer")
            .order_by("due_at")
        )


class ReviewView(PermissionPageMixin, DetailView):
    """One request's search coverage and candidates, grouped by tier, with the decisions to take."""

    permission_required = roles.MANAGE_REQUESTS
    template_name = "requests_app/review.html"
    model = ErasureRequest
    context_object_name = "erasure_request"

    def get_context_data(self, **kwargs):

        context = super().get_context_data(**kwargs)
        erasure_request = self.object
        candidates = list(review.review_candidates(erasure_request))
        shown = []
        per_tier = {tier.value: 0 for tier in MatchTier}
        for candidate in candidates:
            per_tier[candidate.tier] += 1
            if per_tier[candidate.tier] <= MAX_SHOWN_PER_TIER:
                shown.append(candidate)
        texts = dataset_records_texts([c.record for c in shown])
        spans: dict[int, list[tuple[int, int, str]]] = {}
        # Match keys are shown only where they matched: every pair of words is a name key.
        for record_pk, kind, start, end in (
            PiiFinding.objects.filter(record_id__in=[c.record_id for c in shown])
            .exclude(recogniser=MATCH_KEY_RECOGNISER)
            .values_list("record_id", "entity_type", "start", "end")
        ):
            spans.setdefault(record_pk, []).append((start, end, kind))
        for candidate in shown:
            spans.setdefault(candidate.record_id, []).extend(
                (*item["span"], item["entity_type"]) for item in candidate.evidence.get("matched", [])
            )
        groups = {
            tier.value: {"tier": tier, "entries": [], "total": per_tier[tier.value]} for tier in MatchTier
        }
        for candidate in shown:
            matched = {tuple(item["span"]) for item in candidate.evidence.get("matched", [])}
            groups[candidate.tier]["entries"].append(
                {
                    "candidate": candidate,
                    "key": review.match_candidate_key(candidate),
                    "segments": highlighted_segments(
                        texts[candidate.record_id], spans.get(candidate.record_id, []), matched
                    ),
                    "matched_kinds": sorted(
                        {
                            f"{item['entity_type']} ({item['via']})"
                            for item in candidate.evidence.get("matched", [])
                        }
                    ),
                }
            )
        latest = review.search_coverage_latest(erasure_request)
        summary = review.review_summary(erasure_request)
        context.update(
            groups=[groups[tier.value] for tier in MatchTier],
            coverage=latest,
            summary=summary,
            max_shown=MAX_SHOWN_PER_TIER,
            can_decide=erasure_request.status == RequestStatus.REVIEW,
            can_locate=erasure_request.status
            in (RequestStatus.IDENTITY_VERIFICATION, RequestStatus.REVIEW, RequestStatus.LOCATING),
            search_active=latest is not None and latest.status in ("queued", "running"),
            can_approve=erasure_request.status == RequestStatus.REVIEW
            and transition_refusal(erasure_request=erasure_request, action="approve") is None,
            confirm_above_form=ConfirmAboveForm(),
            nothing_found_form=NothingFoundForm(),
            approve_form=NoteForm(prefix="approve"),
            name_only=erasure_request_identified_by_name_only(erasure_request=erasure_request),
        )
        return context


def _back(erasure_request: ErasureRequest, anchor: str = "") -> str:
    url = reverse("review:detail", kwargs={"pk": erasure_request.pk})
    return f"{url}#{anchor}" if anchor else url


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


class ReviewDecideView(PermissionPageMixin, View):
    """Confirm or reject one candidate (buttons beside each record)."""

    permission_required = roles.MANAGE_REQUESTS
    http_method_names = ["post"]

    def post(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        decision = request.POST.get("decision")
        candidate = request.POST.get("candidate", "")
        if decision not in ("confirm", "reject") or not candidate.isdigit():
            messages.error(request, "Choose confirm or reject for one candidate.")
            return redirect(_back(erasure_request))
        lists = {"confirm": [int(candidate)]} if decision == "confirm" else {"reject": [int(candidate)]}
        try:
            review.match_candidates_decide(
                erasure_request=erasure_request,
                actor=request.user,
                note=request.POST.get("note", ""),
                **lists,
            )
        except ValidationError as error:
            messages.error(request, _error_text(error))
        return redirect(_back(erasure_request, f"candidate-{candidate}"))


class ReviewConfirmAboveView(PermissionPageMixin, View):
    """Confirm every pending candidate at or above a score."""

    permission_required = roles.MANAGE_REQUESTS
    http_method_names = ["post"]

    def post(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        form = ConfirmAboveForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Give a score between 0 and 1.")
            return redirect(_back(erasure_request))
        try:
            result = review.match_candidates_confirm_above(
                erasure_request=erasure_request,
                actor=request.user,
                score=form.cleaned_data["score"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(request, f"{result.confirmed} candidate(s) confirmed.")
        return redirect(_back(erasure_request))


class ReviewNothingFoundView(PermissionPageMixin, View):
    """Record that the search found none of the person's records, with the reason."""

    permission_required = roles.MANAGE_REQUESTS
    http_method_names = ["post"]

    def post(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        form = NothingFoundForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Say why the search is complete.")
            return redirect(_back(erasure_request))
        try:
            review.review_nothing_found_acknowledge(
                erasure_request=erasure_request, actor=request.user, note=form.cleaned_data["note"]
            )
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(request, "Recorded: the search found none of the person's records.")
        return redirect(_back(erasure_request))


class ReviewLocateView(PermissionPageMixin, View):
    """Search the index for the person (again): the request goes to locating until it finishes."""

    permission_required = roles.MANAGE_REQUESTS
    http_method_names = ["post"]

    def post(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        try:
            matching.erasure_request_locate(
                erasure_request=erasure_request, actor=request.user, note=request.POST.get("note", "")
            )
        except (TransitionNotAllowed, ValidationError) as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(
                request,
                f"{erasure_request.reference}: the search is queued; candidates "
                "appear here when it finishes.",
            )
        return redirect(_back(erasure_request))
