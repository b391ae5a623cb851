"""Erasure requests (GDPR Art. 17) and their life cycle.

The data subject's identifiers never sit in a plain column: ``identifiers_encrypted`` holds them
as one Fernet token (``requests_app.identifiers``), and ``SubjectIdentifierHash`` holds a keyed
hash of each normalised identifier, which is all that duplicate detection, search and matching
against the training-data index need. Status changes happen only in ``requests_app.services``.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from requests_app import deadlines


class RequestStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    # Entered by recording how the person's identity was verified (Art. 12(6)); the request
    # waits here until locating starts.
    IDENTITY_VERIFICATION = "identity_verification", "Identity verified"
    LOCATING = "locating", "Locating records"
    REVIEW = "review", "Review"
    APPROVED = "approved", "Approved"
    EXECUTING = "executing", "Executing"
    VERIFYING = "verifying", "Verifying"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


CLOSED_STATUSES = (RequestStatus.COMPLETED, RequestStatus.REJECTED, RequestStatus.WITHDRAWN)
OPEN_STATUSES = tuple(status for status in RequestStatus if status not in CLOSED_STATUSES)


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    PHONE = "phone", "Phone"
    FORM = "form", "Web form"
    LETTER = "letter", "Letter"
    API = "api", "API"


class LegalGround(models.TextChoices):
    """Art. 17(1): the grounds on which a data subject may ask for erasure."""

    NO_LONGER_NECESSARY = "art17_1_a", "Art. 17(1)(a): no longer necessary for the purpose"
    CONSENT_WITHDRAWN = "art17_1_b", "Art. 17(1)(b): consent withdrawn, no other legal ground"
    OBJECTION = "art17_1_c", "Art. 17(1)(c): objection under Art. 21, no overriding grounds"
    UNLAWFUL_PROCESSING = "art17_1_d", "Art. 17(1)(d): processed unlawfully"
    LEGAL_OBLIGATION = "art17_1_e", "Art. 17(1)(e): erasure required by a legal obligation"
    CHILD_INFORMATION_SOCIETY = "art17_1_f", "Art. 17(1)(f): collected from a child (Art. 8(1))"


class IdentityMethod(models.TextChoices):
    EMAIL_LINK = "email_link", "E-mail link confirmed"
    DOCUMENT_SEEN = "document_seen", "Identity document seen"
    ACCOUNT_LOGIN = "account_login", "Logged in to their account"
    OTHER = "other", "Other (see note)"


class RejectionGround(models.TextChoices):
    """Art. 17(3) exemptions, and Art. 12(5) for manifestly unfounded or excessive requests."""

    FREEDOM_OF_EXPRESSION = "art17_3_a", "Art. 17(3)(a): freedom of expression and information"
    LEGAL_OBLIGATION = "art17_3_b", "Art. 17(3)(b): legal obligation or task in the public interest"
    PUBLIC_HEALTH = "art17_3_c", "Art. 17(3)(c): public interest in public health"
    ARCHIVING_RESEARCH = "art17_3_d", "Art. 17(3)(d): archiving, research or statistics (Art. 89(1))"
    LEGAL_CLAIMS = "art17_3_e", "Art. 17(3)(e): establishment, exercise or defence of legal claims"
    MANIFESTLY_UNFOUNDED = "art12_5_unfounded", "Art. 12(5): manifestly unfounded"
    EXCESSIVE = "art12_5_excessive", "Art. 12(5): excessive, in particular repetitive"


class ErasureRequestQuerySet(models.QuerySet):
    def open(self):
        return self.exclude(status__in=CLOSED_STATUSES)

    def closed(self):
        return self.filter(status__in=CLOSED_STATUSES)


class ErasureRequest(models.Model):
    """A data subject's request to be forgotten, from receipt to the issued report."""

    reference = models.CharField(max_length=20, unique=True)
    received_at = models.DateTimeField()
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    status = models.CharField(
        max_length=32, choices=RequestStatus.choices, default=RequestStatus.RECEIVED, db_index=True
    )
    legal_ground = models.CharField(max_length=20, choices=LegalGround.choices)

    # The identifiers as one Fernet token of JSON; empty once purged (identifiers_purged_at).
    identifiers_encrypted = models.TextField(blank=True)
    identifiers_purged_at = models.DateTimeField(null=True, blank=True)

    # Scope: everything, or the listed data sets and model versions (ids of their registries).
    scope_all = models.BooleanField(default=True)
    scope_dataset_ids = models.JSONField(default=list, blank=True)
    scope_model_version_ids = models.JSONField(default=list, blank=True)

    # Deadlines (requests_app.deadlines): first_due_at never moves; due_at is the one in force.
    first_due_at = models.DateTimeField()
    due_at = models.DateTimeField(db_index=True)
    extended_until = models.DateTimeField(null=True, blank=True)
    extension_reason = models.TextField(blank=True)
    extension_notified_at = models.DateTimeField(null=True, blank=True)
    due_soon_notified_at = models.DateTimeField(null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)

    assigned_officer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_erasure_requests",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="created_erasure_requests",
    )

    # Identity verification (Art. 12(6)).
    identity_method = models.CharField(max_length=20, choices=IdentityMethod.choices, blank=True)
    identity_verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="identity_verified_erasure_requests",
    )
    identity_verified_at = models.DateTimeField(null=True, blank=True)
    identity_note = models.TextField(blank=True)

    # Rejection (Art. 17(3) or Art. 12(5)) and the reply sent to the person (Art. 12(4)).
    rejection_ground = models.CharField(max_length=20, choices=RejectionGround.choices, blank=True)
    rejection_explanation = models.TextField(blank=True)
    rejection_reply = models.TextField(blank=True)

    withdrawal_note = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="duplicates",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ErasureRequestQuerySet.as_manager()

    class Meta:
        ordering = ["due_at"]
        # The auditor's list (newest first) and the register (a period of receipt) read by it.
        indexes = [models.Index(fields=["received_at", "id"], name="requests_er_received_id")]
        permissions = [
            ("manage_erasure_requests", "Can record and decide erasure requests"),
            ("reveal_identifiers", "Can reveal a data subject's identifiers"),
        ]

    def __str__(self):
        return self.reference

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("requests_app:detail", kwargs={"pk": self.pk})

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    @property
    def identity_verified(self) -> bool:
        return self.identity_verified_at is not None

    @property
    def is_extended(self) -> bool:
        return self.extended_until is not None

    @property
    def urgency(self) -> str:
        """Return "overdue", "due-soon" or "": the CSS class that makes the row stand out."""
        return deadlines.urgency(due_at=self.due_at, is_open=self.is_open, now=timezone.now())


class SubjectIdentifierHash(models.Model):
    """A keyed hash (HMAC, ``unlearning_jobs.engine.pii.hashing``) of one normalised identifier.

    The same hashes as the training-data index, so a request is matched by lookup, never by
    decrypting rows. ``is_variant`` marks the extra forms of a name (initials, nicknames, family
    name first) that matching needs but duplicate detection does not. Kept after the identifiers
    are purged: the audit trail and the re-ingestion guard still need them.
    """

    erasure_request = models.ForeignKey(
        ErasureRequest, on_delete=models.CASCADE, related_name="identifier_hashes"
    )
    entity_type = models.CharField(max_length=20)
    digest = models.CharField(max_length=64, db_index=True)
    key_id = models.CharField(max_length=64)
    is_variant = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["erasure_request", "entity_type", "digest"],
                name="requests_app_identifier_hash_unique_per_request",
            )
        ]
        indexes = [models.Index(fields=["entity_type", "digest"])]

    def __str__(self):
        return f"{self.entity_type}:{self.digest[:12]}…"


class ReferenceCounter(models.Model):
    """The last reference number given in one year (``ER-2026-000123``), incremented under a lock."""

    year = models.PositiveIntegerField(unique=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.year}: {self.last_number}"
