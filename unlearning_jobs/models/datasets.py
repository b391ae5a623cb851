"""Training data sets, their immutable versions, the PII index, and where a request's person was found.

A version's records are not copied into the database: the version keeps a canonical JSON Lines
copy of the source under ``LETHE_DATA_DIR`` and each ``DatasetRecord`` points into it by byte
offset, so the text exists once and the database holds only what lookups need. The PII index
(``PiiFinding``) holds keyed hashes of normalised values and their spans, never the values.
Services: ``unlearning_jobs.datasets.services`` (registry), ``unlearning_jobs.datasets.indexing`` (index),
``unlearning_jobs.datasets.reingestion`` (guard), ``requests_app.matching.services`` (locate and review).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Dataset(models.Model):
    """A named training data set; what it holds is in its versions."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("datasets:detail", kwargs={"pk": self.pk})


class DatasetVersionStatus(models.TextChoices):
    REGISTERED = "registered", "Registered"
    INDEXING = "indexing", "Indexing"
    INDEXED = "indexed", "Indexed"
    FAILED = "failed", "Indexing failed"


class DatasetVersion(models.Model):
    """An immutable set of records with stable ids, its manifest, and its PII index.

    ``stored_path`` is relative to ``LETHE_DATA_DIR``: the folder holding ``records.jsonl`` (the
    canonical copy, one ``{"id", "text"}`` object a line) and ``manifest.jsonl`` (record ids in
    sorted order with the SHA-256 of each text), whose SHA-256 is ``manifest_sha256``. A version
    derived from another (records removed for an erasure) names its ``parent`` and lists what
    left it in ``removed_manifest``.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="derived_versions"
    )
    status = models.CharField(
        max_length=16,
        choices=DatasetVersionStatus.choices,
        default=DatasetVersionStatus.REGISTERED,
        db_index=True,
    )
    source_path = models.CharField(max_length=1000, blank=True)
    source_name = models.CharField(max_length=255, blank=True)
    stored_path = models.CharField(max_length=1000)
    format = models.CharField(max_length=16)
    text_fields = models.JSONField(default=list)
    id_field = models.CharField(max_length=200, blank=True)
    record_count = models.PositiveIntegerField(default=0)
    file_sha256 = models.CharField(max_length=64, blank=True)
    manifest_sha256 = models.CharField(max_length=64)
    # What the scan ran with (recognisers, model, thresholds, scan settings) and the hash key id.
    index_configuration = models.JSONField(default=dict)
    hash_key_id = models.CharField(max_length=64)
    chunk_size = models.PositiveIntegerField()
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    registered_at = models.DateTimeField(default=timezone.now)
    indexing_started_at = models.DateTimeField(null=True, blank=True)
    indexed_at = models.DateTimeField(null=True, blank=True)
    removed_manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    guard_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dataset_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="uj_dataset_version_number_unique")
        ]

    def __str__(self):
        return f"{self.dataset.name} v{self.number}"

    def get_absolute_url(self):
        return f"{self.dataset.get_absolute_url()}#v{self.number}"

    @property
    def label(self) -> str:
        return f"v{self.number}"


class DatasetRecord(models.Model):
    """One record of a version: its stable id and where its text lies in the stored copy."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="records")
    record_id = models.CharField(max_length=255)
    ordinal = models.PositiveIntegerField()
    line_no = models.PositiveIntegerField()
    byte_offset = models.BigIntegerField()
    byte_length = models.PositiveIntegerField()
    text_sha256 = models.CharField(max_length=64)
    text_length = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "record_id"], name="uj_record_id_unique_per_version"),
            models.UniqueConstraint(
                fields=["version", "ordinal"], name="uj_record_ordinal_unique_per_version"
            ),
        ]

    def __str__(self):
        return f"{self.record_id} ({self.version_id})"


class IndexChunkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class IndexChunk(models.Model):
    """A run of records (ordinals ``start`` to ``end``, end excluded) indexed by one task.

    A worker claims it with a conditional UPDATE and a fresh ``claim_token``; only the holder of
    the current token may write its findings, so a chunk is done once even when a stale claim
    is taken over.
    """

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=IndexChunkStatus.choices, default=IndexChunkStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    claim_token = models.CharField(max_length=32, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    findings = models.PositiveIntegerField(default=0)
    findings_by_type = models.JSONField(default=dict, blank=True)
    dropped = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["version_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["version", "number"], name="uj_index_chunk_number_unique")
        ]

    def __str__(self):
        return f"chunk {self.number} of version {self.version_id} ({self.status})"

    @property
    def size(self) -> int:
        return self.end - self.start


class PiiFinding(models.Model):
    """One personal-data value in one record: its kind, span and keyed hash, never the value.

    ``sorted_hash`` (names only) is the hash of the name's tokens in sorted order, so "Smith
    John" and "John Smith" meet. ``version`` is denormalised for filtering and is not indexed:
    lookups go through the hash indexes, which are selective on their own.
    """

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="+", db_index=False)
    record = models.ForeignKey(DatasetRecord, on_delete=models.CASCADE, related_name="findings")
    entity_type = models.CharField(max_length=20)
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    score = models.FloatField()
    recogniser = models.CharField(max_length=100, blank=True)
    value_hash = models.CharField(max_length=64)
    sorted_hash = models.CharField(max_length=64, null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["value_hash"], name="uj_finding_value_hash"),
            models.Index(
                fields=["sorted_hash"], name="uj_finding_sorted_hash", condition=Q(sorted_hash__isnull=False)
            ),
        ]

    def __str__(self):
        return f"{self.entity_type} [{self.start}:{self.end}] in record {self.record_id}"


class MatchTier(models.TextChoices):
    STRONG = "strong", "Strong: a direct identifier matched"
    NAME = "name", "Name only"
    QUASI = "quasi", "Quasi-identifiers only"


class CandidateStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    CONFIRMED = "confirmed", "Confirmed"
    REJECTED = "rejected", "Rejected"


class SearchCoverageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SearchCoverage(models.Model):
    """One search of the index for a request: what was searched, under which configuration, and what it found.

    Kept for every run (the latest done one is current), because the report must show that the
    search was reasonable and complete: the data-set versions and index configurations covered,
    the versions left out and why, and the counts per tier. ``nothing_found_*`` records the
    officer's acknowledgement that a search with no confirmed record is complete.
    """

    erasure_request = models.ForeignKey(
        "requests_app.ErasureRequest", on_delete=models.CASCADE, related_name="search_coverages"
    )
    status = models.CharField(
        max_length=10,
        choices=SearchCoverageStatus.choices,
        default=SearchCoverageStatus.QUEUED,
        db_index=True,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    hash_key_id = models.CharField(max_length=64, blank=True)
    identifier_counts = models.JSONField(default=dict, blank=True)
    versions = models.JSONField(default=list, blank=True)
    skipped = models.JSONField(default=list, blank=True)
    candidate_counts = models.JSONField(default=dict, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    nothing_found_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    nothing_found_at = models.DateTimeField(null=True, blank=True)
    nothing_found_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]

    def __str__(self):
        return f"search {self.pk} for request {self.erasure_request_id} ({self.status})"


class MatchCandidate(models.Model):
    """A record that may be the person's, with the evidence and the officer's decision.

    ``evidence`` says which of the person's identifier kinds matched which entity types in the
    record (and whether through a name variant), as keyed-hash comparisons: it holds no value.
    """

    erasure_request = models.ForeignKey(
        "requests_app.ErasureRequest", on_delete=models.CASCADE, related_name="match_candidates"
    )
    record = models.ForeignKey(DatasetRecord, on_delete=models.PROTECT, related_name="match_candidates")
    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="+")
    coverage = models.ForeignKey(
        SearchCoverage, null=True, blank=True, on_delete=models.SET_NULL, related_name="candidates"
    )
    tier = models.CharField(max_length=10, choices=MatchTier.choices)
    score = models.FloatField()
    evidence = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=CandidateStatus.choices, default=CandidateStatus.PENDING, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-score", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["erasure_request", "record"], name="uj_candidate_unique_per_request"
            )
        ]

    def __str__(self):
        return f"{self.tier} candidate {self.record_id} for request {self.erasure_request_id}"


class ReingestionHit(models.Model):
    """A record of a newly indexed version that holds a direct identifier of an erased person.

    Excluded from the records offered for training until an officer overrides it with a reason.
    """

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="reingestion_hits")
    record = models.ForeignKey(DatasetRecord, on_delete=models.CASCADE, related_name="reingestion_hits")
    erasure_request = models.ForeignKey(
        "requests_app.ErasureRequest", on_delete=models.PROTECT, related_name="+"
    )
    entity_types = models.JSONField(default=list)
    found_at = models.DateTimeField(default=timezone.now)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)
    override_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["version_id", "record_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "record", "erasure_request"], name="uj_reingestion_hit_unique"
            )
        ]

    def __str__(self):
        return f"re-ingestion hit: record {self.record_id} of version {self.version_id}"

    @property
    def overridden(self) -> bool:
        return self.overridden_at is not None
