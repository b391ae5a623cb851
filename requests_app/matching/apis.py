"""REST API for locating a request's records and reviewing them (docs/api.md, docs/datasets.md).

``POST /requests/{id}/actions/locate/`` starts (or re-runs) the search; ``GET
/requests/{id}/matches/`` lists the candidates with their evidence; ``POST
/requests/{id}/matches/review/`` confirms and rejects them. Errors as in the request API: 400
for bad input, 409 when the request's state does not allow the step, 403 without the role.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.response import Response

from compliance import roles
from requests_app.apis import ErasureRequestApiBase, ErasureRequestDetailSerializer
from requests_app.matching import review
from requests_app.matching import services as matching
from requests_app.models import ErasureRequest
from unlearning_jobs.datasets.storage import record_id_hash, record_id_visible


class SearchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    requested_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    hash_key_id = serializers.CharField()
    identifier_counts = serializers.JSONField()
    versions = serializers.JSONField(help_text="Data-set versions searched, with their index configuration")
    skipped = serializers.JSONField(help_text="Versions not searched, and why")
    candidate_counts = serializers.JSONField()
    duration_ms = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    nothing_found_at = serializers.DateTimeField(allow_null=True)


class MatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.SerializerMethodField(
        help_text='"v<version id>:<record id>", unique per request; for callers who are not officers, '
        '"v<version id>:<record id hash>"'
    )
    record_id = serializers.SerializerMethodField(
        help_text="The record's id, for officers only (null for other roles: a content-derived id is the "
        "SHA-256 of the record's text)"
    )
    record_id_hash = serializers.SerializerMethodField(
        help_text="The keyed hash of the record's id, as the audit log and reports name the record"
    )
    dataset = serializers.CharField(source="version.dataset.name")
    dataset_id = serializers.IntegerField(source="version.dataset_id")
    dataset_version = serializers.IntegerField(source="version.number")
    dataset_version_id = serializers.IntegerField(source="version_id")
    score = serializers.FloatField()
    tier = serializers.CharField()
    evidence = serializers.JSONField()
    status = serializers.CharField()
    decided_by = serializers.CharField(source="decided_by.username", default=None)
    decided_at = serializers.DateTimeField(allow_null=True)

    def _visible(self) -> bool:
        request = self.context.get("request")
        return request is not None and record_id_visible(request.user)

    def get_key(self, obj) -> str:
        if self._visible():
            return review.match_candidate_key(obj)
        return f"v{obj.version_id}:{record_id_hash(obj.record.record_id)}"

    def get_record_id(self, obj) -> str | None:
        return obj.record.record_id if self._visible() else None

    def get_record_id_hash(self, obj) -> str:
        return record_id_hash(obj.record.record_id)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self._visible():
            return data
        for part in ("quasi", "linked"):
            support = (data.get("evidence") or {}).get(part)
            if support and support.get("shared_with"):
                # The supporting records are named by their ids too: hashed like the record's own.
                data["evidence"] = {
                    **data["evidence"],
                    part: {**support, "shared_with": [record_id_hash(rid) for rid in support["shared_with"]]},
                }
        return data


class ReviewApiBase(ErasureRequestApiBase):
    read_permissions = (roles.VIEW_REQUESTS,)
    write_permissions = (roles.MANAGE_REQUESTS,)


class ErasureRequestLocateApi(ReviewApiBase):
    """Search the PII index for the person: the request goes to locating, then to review by itself."""

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    OutputSerializer = ErasureRequestDetailSerializer
    schema_operation_ids = {"POST": "requests_locate"}

    def post(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        matching.erasure_request_locate(
            erasure_request=erasure_request, actor=request.user, note=serializer.validated_data["note"]
        )
        fresh = ErasureRequest.objects.select_related(
            "assigned_officer", "identity_verified_by", "duplicate_of", "created_by"
        ).get(pk=pk)
        return Response(ErasureRequestDetailSerializer(fresh, context={"request": request}).data)


class ErasureRequestMatchesApi(ReviewApiBase):
    """The request's candidate records, strongest first, with the last search's coverage."""

    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()
        search = SearchSerializer(allow_null=True)
        summary = serializers.JSONField()
        results = MatchSerializer(many=True)

    schema_operation_ids = {"GET": "requests_matches"}

    def get(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        return Response(
            self.OutputSerializer(
                {
                    "reference": erasure_request.reference,
                    "search": review.search_coverage_latest(erasure_request),
                    "summary": review.review_summary(erasure_request),
                    "results": review.review_candidates(erasure_request),
                },
                context={"request": request},
            ).data
        )


class ErasureRequestMatchesReviewApi(ReviewApiBase):
    """Confirm and reject candidates by record id (or key, or id), or confirm all above a score."""

    class InputSerializer(serializers.Serializer):
        confirm = serializers.ListField(
            child=serializers.JSONField(),
            required=False,
            default=list,
            max_length=100_000,
            help_text="Record ids, keys or candidate ids",
        )
        reject = serializers.ListField(
            child=serializers.JSONField(), required=False, default=list, max_length=100_000
        )
        confirm_above = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

        def validate(self, data):
            lists = bool(data["confirm"] or data["reject"])
            if lists == ("confirm_above" in data):
                raise serializers.ValidationError(
                    'Send "confirm" and/or "reject" lists, or "confirm_above" with a score, not both.'
                )
            for name in ("confirm", "reject"):
                if any(isinstance(item, bool) or not isinstance(item, (str, int)) for item in data[name]):
                    raise serializers.ValidationError(
                        {name: ["Items are record ids (text) or candidate ids."]}
                    )
            return data

    class OutputSerializer(serializers.Serializer):
        confirmed = serializers.IntegerField()
        rejected = serializers.IntegerField()
        unchanged = serializers.IntegerField()
        summary = serializers.JSONField()

    schema_operation_ids = {"POST": "requests_matches_review"}

    def post(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "confirm_above" in data:
            result = review.match_candidates_confirm_above(
                erasure_request=erasure_request,
                actor=request.user,
                score=data["confirm_above"],
                note=data["note"],
            )
        else:
            result = review.match_candidates_decide(
                erasure_request=erasure_request,
                actor=request.user,
                confirm=data["confirm"],
                reject=data["reject"],
                note=data["note"],
            )
        return Response(
            {
                "confirmed": result.confirmed,
                "rejected": result.rejected,
                "unchanged": result.unchanged,
                "summary": review.review_summary(erasure_request),
            }
        )


class ErasureRequestNothingFoundApi(ReviewApiBase):
    """Record that the search found none of the person's records (lets approval go ahead)."""

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=2000)

    OutputSerializer = SearchSerializer
    schema_operation_ids = {"POST": "requests_matches_nothing_found"}

    def post(self, request, pk: int):
        erasure_request = get_object_or_404(ErasureRequest, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coverage = review.review_nothing_found_acknowledge(
            erasure_request=erasure_request, actor=request.user, note=serializer.validated_data["note"]
        )
        return Response(SearchSerializer(coverage).data)
