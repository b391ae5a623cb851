"""What a verification measured: one run per model version verified, one row per metric.

A row keeps the engine's decision as it was made on the unrounded value (``passed``); nothing
here or downstream recomputes it from a displayed number, so a fail is stored as a fail. The run
keeps the raw measurements (per-record membership scores, perplexities) so that a later run can
use it as the original or the exact-retrain reference, and so it can be judged again without the
GPU when the reference finishes later. No raw personal data is stored: extraction examples are
masked by the engine before they reach a row.
"""

from django.db import models
from django.urls import reverse


class VerificationRole(models.TextChoices):
    """Which model of a request's comparison a run measured."""

    ORIGINAL = "original", "Original (baseline)"
    REFERENCE = "reference", "Exact-retrain reference"
    PRODUCED = "produced", "Produced by unlearning"


class VerificationRun(models.Model):
    """One verification of one model version, made by one ``verify`` job.

    ``thresholds`` are the thresholds the rows were judged under (engine defaults with the
    settings' overrides), ``sample_sizes`` how many forget, holdout and retain texts were used and
    where the holdout came from; ``reference_model`` the exact retrain the rows compare with.
    """

    job = models.OneToOneField(
        "unlearning_jobs.UnlearningJob",
        on_delete=models.PROTECT,
        related_name="verification_run",
    )
    model_version = models.ForeignKey(
        "unlearning_jobs.ModelVersion",
        on_delete=models.PROTECT,
        related_name="verification_runs",
    )
    erasure_request = models.ForeignKey(
        "requests_app.ErasureRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="verification_runs",
    )
    role = models.CharField(max_length=16, choices=VerificationRole.choices)
    reference_model = models.ForeignKey(
        "unlearning_jobs.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    thresholds = models.JSONField(default=dict, blank=True)
    sample_sizes = models.JSONField(default=dict, blank=True)
    measurements = models.JSONField(default=dict, blank=True)
    skipped = models.JSONField(default=list, blank=True)
    passed = models.BooleanField(default=False)
    complete = models.BooleanField(default=False)
    plot_svg = models.TextField(blank=True)
    plot_png_base64 = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    assessed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["erasure_request", "pk"]

    def __str__(self):
        return f"verification of model #{self.model_version_id} ({self.role}) by job #{self.job_id}"

    def get_absolute_url(self):
        return reverse("unlearning_jobs:verification-job", kwargs={"pk": self.job_id})


class VerificationResult(models.Model):
    """One metric of one run: value (None when it could not be measured), threshold, pass or fail."""

    run = models.ForeignKey(VerificationRun, on_delete=models.CASCADE, related_name="results")
    position = models.PositiveIntegerField(default=0)
    metric = models.CharField(max_length=64)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField()
    comparator = models.CharField(max_length=8)
    center = models.FloatField(default=0.0)
    condition = models.CharField(max_length=120, blank=True)
    passed = models.BooleanField()
    n_samples = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["run", "metric"], name="verification_result_metric_once"),
        ]

    def __str__(self):
        return f"{self.metric} = {self.value} ({'pass' if self.passed else 'FAIL'})"
