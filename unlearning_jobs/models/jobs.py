"""Model versions, the officer's erasure decisions, and the jobs that change models.

State changes happen only in services (``unlearning_jobs.registry.services``, ``.jobs``,
``.decisions``), each with its audit event; these classes only say what is stored.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse


class ModelKind(models.TextChoices):
    """What a version's directory holds (``registry.services.model_kind_detect``).

    A *base* is a pretrained model imported from outside: its pretraining data is unknown to
    Lethe, so deletion on it or on anything fine-tuned from it covers only the data Lethe trained
    on. A fine-tune and an adapter name their base in their recipe; the lineage leads back to it.
    """

    HF = "hf", "Model (trained by Lethe or registered)"
    BASE = "base", "Base (pretrained, imported)"
    FINETUNE = "finetune", "Fine-tune (full parameters)"
    ADAPTER = "adapter", "Fine-tune (LoRA adapter)"
    SISA = "sisa", "SISA ensemble (shards)"


class ModelVersion(models.Model):
    """One immutable set of weights: a Hugging Face causal-LM directory or a SISA directory.

    ``weights_sha256`` is computed when the version is registered (``engine.checkpoints``); the
    report quotes it so anyone can check which weights a job read and wrote. Versions Lethe makes
    live under ``LETHE_DATA_DIR/models/``; external ones are registered where they lie, inside an
    allowed import root, and are never moved or changed by Lethe.
    """

    name = models.CharField(max_length=200)
    path = models.CharField(max_length=1024, unique=True)
    kind = models.CharField(max_length=8, choices=ModelKind.choices, default=ModelKind.HF)
    weights_sha256 = models.CharField(max_length=64, db_index=True)
    dataset_version = models.ForeignKey(
        "unlearning_jobs.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="model_versions",
        help_text="The data the weights were trained on; empty for a registered external model.",
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    produced_by_job = models.OneToOneField(
        "unlearning_jobs.UnlearningJob",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="produced_model_version",
    )
    # Architecture, tokenizer, hyper-parameters, seed and shard layout: what retraining needs.
    recipe = models.JSONField(default=dict, blank=True)
    # Read from the directory at registration: the model class, the parameters its weight files
    # hold (an adapter's own, not its base's), and for an imported base the SHA-256 of the file
    # or directory it was converted from.
    architecture = models.CharField(max_length=200, blank=True)
    parameter_count = models.BigIntegerField(null=True, blank=True)
    source_sha256 = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="registered_model_versions",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.name} (#{self.pk})"

    def get_absolute_url(self):
        return reverse("unlearning_jobs:model-detail", kwargs={"pk": self.pk})

    @property
    def is_external(self) -> bool:
        """Return whether the version was registered from outside rather than made by a job."""
        return self.produced_by_job_id is None


class Framework(models.TextChoices):
    """The three frameworks of Cooper et al. that an erasure decision names (SPEC §2)."""

    DELETION = "deletion", "Deletion (removal of observed information)"
    OUTPUT_SUPPRESSION = "output_suppression", "Output suppression"
    LATENT_SUPPRESSION = "latent_suppression", "Latent-information suppression"


class JobKind(models.TextChoices):
    """What a job does; later stages add their kinds here (verification, guards, probes)."""

    TRAIN = "train", "Train a model"
    IMPORT = "import", "Import a pretrained model"
    FINETUNE = "finetune", "Fine-tune a model"
    UNLEARN = "unlearn", "Unlearn (change a model's parameters)"
    VERIFY = "verify", "Verify what a model still reveals"
    GUARD = "guard", "Activate output-suppression rules"
    GUARD_PROBE = "guard_probe", "Probe a deployment's guard"
    LATENT_PROBE = "latent_probe", "Probe what a model still infers"
    LATENT_DELETE = "latent_delete", "Delete derived (latent) data"
    REGISTER_DATASET = "register_dataset", "Register a data set"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class JobPhase(models.TextChoices):
    """What a running attempt is doing; the watchdog allows a model load longer than a step."""

    LOADING_MODEL = "loading_model", "Loading model"
    LOADING_DATA = "loading_data", "Loading data"
    COMPUTING = "computing", "Computing"
    SAVING = "saving", "Saving output"


FINISHED_JOB_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class ErasureDecision(models.Model):
    """The officer's choice for one model version in a request's scope: framework, method, why.

    One row per plan item of the approval. A decision whose framework has a job runner gets a job
    (``jobs``); one without (suppression frameworks until their runners exist) is recorded with
    ``job_note`` saying so, and the report shows it as decided but not carried out.
    """

    erasure_request = models.ForeignKey(
        "requests_app.ErasureRequest",
        on_delete=models.PROTECT,
        related_name="erasure_decisions",
    )
    position = models.PositiveIntegerField(default=0)
    model_version = models.ForeignKey(
        ModelVersion,
        on_delete=models.PROTECT,
        related_name="erasure_decisions",
    )
    framework = models.CharField(max_length=32, choices=Framework.choices)
    method = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    rationale = models.TextField()
    job_note = models.CharField(max_length=300, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="erasure_decisions",
    )
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["erasure_request", "position", "pk"]

    def __str__(self):
        return f"{self.framework}/{self.method} on model #{self.model_version_id}"


class UnlearningJob(models.Model):
    """A unit of model work on the ``gpu`` queue: training, unlearning, and later kinds.

    The row is the job's whole state; Celery only carries its id. ``attempts`` counts claims and
    doubles as a fencing token: a worker may write progress and the result only while the row
    still says ``running`` with its attempt number, so a worker presumed dead that wakes up again
    cannot overwrite the work of the one that took over.
    """

    erasure_request = models.ForeignKey(
        "requests_app.ErasureRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="unlearning_jobs",
    )
    decision = models.ForeignKey(
        ErasureDecision,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
    )
    kind = models.CharField(max_length=32, choices=JobKind.choices)
    framework = models.CharField(max_length=32, choices=Framework.choices, blank=True)
    method = models.CharField(max_length=64, blank=True)
    params = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=16, default="gpu")

    source_model = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
    )
    produced_model = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    dataset_version = models.ForeignKey(
        "unlearning_jobs.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="unlearning_jobs",
    )
    produced_dataset_version = models.ForeignKey(
        "unlearning_jobs.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The confirmed forget set as DatasetRecord ids, frozen when the job was created, so that
    # every attempt and every retry forgets exactly the same records whatever the review does later.
    forget_record_pks = models.JSONField(default=list, blank=True)

    status = models.CharField(
        max_length=16,
        choices=JobStatus.choices,
        default=JobStatus.QUEUED,
        db_index=True,
    )
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    device = models.CharField(max_length=255, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    # The process that executes the current attempt (a pool child, not the worker's parent):
    # its pid, its host and its start time, so a redelivered task can prove it dead, and the
    # job's own heartbeat, written by that process while the job runs (docs/jobs.md, "Liveness").
    worker_pid = models.IntegerField(null=True, blank=True)
    runner_host = models.CharField(max_length=255, blank=True)
    runner_started = models.CharField(max_length=64, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # What the job is doing now ("loading model", "training", ...): the watchdog allows a
    # model load longer than a step, and the queue says what a job without progress waits on.
    phase = models.CharField(max_length=32, choices=JobPhase.choices, blank=True)
    # Set by the watchdog when a live attempt made no progress for LETHE_JOB_STALL_SECONDS.
    stalled_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    log = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    compute_seconds = models.FloatField(default=0.0)
    checkpoint_dir = models.CharField(max_length=1024, blank=True)
    error = models.TextField(blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="created_unlearning_jobs",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "queue", "queued_at"])]

    def __str__(self):
        label = self.method or self.kind
        return f"job #{self.pk} {label}"

    def get_absolute_url(self):
        return reverse("unlearning_jobs:job-detail", kwargs={"pk": self.pk})

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_JOB_STATUSES

    @property
    def progress_fraction(self) -> float | None:
        if not self.progress_total:
            return None
        return min(1.0, self.progress_done / self.progress_total)
