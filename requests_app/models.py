"""Erasure requests (GDPR Art. 17) and their life cycle."""
from django.conf import settings
from django.db import models


class RequestStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    IDENTITY_VERIFICATION = "identity_verification", "Identity verification"
    LOCATING = "locating", "Locating records"
    REVIEW = "review", "Review"
    APPROVED = "approved", "Approved"
    EXECUTING = "executing", "Executing"
    VERIFYING = "verifying", "Verifying"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


CLOSED_STATUSES = (RequestStatus.COMPLETED, RequestStatus.REJECTED, RequestStatus.WITHDRAWN)


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    PHONE = "phone", "Phone"
    FORM = "form", "Web form"
    LETTER = "letter", "Letter"
    API = "api", "API"


class ErasureRequestQuerySet(models.QuerySet):
    def open(self):
        return self.exclude(status__in=CLOSED_STATUSES)


class ErasureRequest(models.Model):
    """A data subject's request to be forgotten, from receipt to the issued report."""

    reference = models.CharField(max_length=20, unique=True)
    received_at = models.DateTimeField()
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    status = models.CharField(
        max_length=32, choices=RequestStatus.choices, default=RequestStatus.RECEIVED, db_index=True
    )
    due_at = models.DateTimeField(db_index=True)
    assigned_officer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="assigned_erasure_requests",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ErasureRequestQuerySet.as_manager()

    class Meta:
        ordering = ["due_at"]
        permissions = [
            ("manage_erasure_requests", "Can record and decide erasure requests"),
            ("reveal_identifiers", "Can reveal a data subject's identifiers"),
        ]

    def __str__(self):
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES
