"""Output and latent suppression: deployments, their versioned guard rules, and derived-data stores.

A ``Deployment`` is a registered model version served behind a guard (``engine.guard``). Its
rules live in numbered ``SuppressionRuleSet`` versions; a change never edits a version, it writes
the next one (the previous rules plus or minus one subject's). A ``SuppressionRule`` holds an
entity type, the keyed hash of one normalised form and an opaque subject reference (the erasure
request's reference): never a raw value.

``DerivedDataStore`` registers where data derived from the training data or inferred about people
is kept (profiles, inferences, embeddings, caches, feature tables, retrieval indexes);
``DerivedEntry`` is one entry in it, keyed by the keyed hash of one of a subject's identifiers or
of the id of the training record it was built from, so a decision can delete it without
decrypting.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class Deployment(models.Model):
    """A model version served behind a guard whose policy and active rule set are its own."""

    name = models.CharField(max_length=200, unique=True)
    model_version = models.ForeignKey(
        "unlearning_jobs.ModelVersion", on_delete=models.PROTECT, related_name="deployments"
    )
    # GuardPolicy.as_dict(): mode, entity types, system prompt, ...
    policy = models.JSONField(default=dict)
    active_rule_set = models.ForeignKey(
        "unlearning_jobs.SuppressionRuleSet",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("unlearning_jobs:deployment-detail", args=[self.pk])


class SuppressionRuleSet(models.Model):
    """One version of a deployment's rules: why it was made, by whom, and a fingerprint to audit."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="rule_sets")
    version = models.PositiveIntegerField()
    key_id = models.CharField(max_length=64)
    reason = models.CharField(max_length=500)
    erasure_request = models.ForeignKey(
        "requests_app.ErasureRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="suppression_rule_sets",
    )
    # RuleSet.fingerprint(): SHA-256 of the rules, version, key id and policy.
    fingerprint = models.CharField(max_length=64)
    rule_count = models.PositiveIntegerField(default=0)
    subject_count = models.PositiveIntegerField(default=0)
    # Rules per entity type, {"EMAIL": 1, "PERSON": 8, ...}.
    counts = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deployment", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "version"], name="uj_rule_set_version_unique"),
        ]

    def __str__(self):
        return f"{self.deployment} rules v{self.version}"


class SuppressionRule(models.Model):
    """The keyed hash of one normalised form of one subject's value; never the value."""

    rule_set = models.ForeignKey(SuppressionRuleSet, on_delete=models.CASCADE, related_name="rules")
    entity_type = models.CharField(max_length=20)
    value_hash = models.CharField(max_length=64)
    # An opaque reference to the subject (the erasure request's reference), never a name.
    subject_ref = models.CharField(max_length=128)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule_set", "entity_type", "value_hash", "subject_ref"],
                name="uj_suppression_rule_unique",
            ),
        ]

    def __str__(self):
        return f"{self.entity_type} {self.value_hash[:12]}… ({self.subject_ref})"


class DerivedDataKind(models.TextChoices):
    PROFILES = "profiles", "Profiles"
    INFERENCES = "inferences", "Inferences"
    EMBEDDINGS = "embeddings", "Embeddings"
    CACHES = "caches", "Caches"
    FEATURE_TABLES = "feature_tables", "Feature tables"
    RETRIEVAL_INDEXES = "retrieval_index", "Retrieval indexes"


class DerivedDataStore(models.Model):
    """A place where data inferred about people is kept beside a data set (framework 3)."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=DerivedDataKind.choices)
    location = models.CharField(max_length=1024)
    owner = models.CharField(max_length=200)
    dataset = models.ForeignKey(
        "unlearning_jobs.Dataset",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="derived_stores",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class DerivedEntry(models.Model):
    """One entry in a derived-data store: about a subject, or built from one training record.

    Keyed by the index's keyed hash of one of the subject's normalised identifiers
    (``subject_key_hash``), or by the keyed hash of the id of the record of the store's data set
    it was built from (``record_key_hash``, ``datasets.storage.record_id_hash``): an embedding,
    a cached answer, a row of a feature table or of a retrieval index. Never the raw value or id.
    """

    store = models.ForeignKey(DerivedDataStore, on_delete=models.CASCADE, related_name="entries")
    # The index's keyed hash of one of the subject's normalised identifiers.
    subject_key_hash = models.CharField(max_length=64, db_index=True, blank=True)
    # The keyed hash of the id of the training record the entry was derived from.
    record_key_hash = models.CharField(max_length=64, db_index=True, blank=True)
    # What is stored ("inferred home city"), never the inferred value itself.
    description = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["store", "pk"]

    def __str__(self):
        return f"{self.store}: {self.description}"
