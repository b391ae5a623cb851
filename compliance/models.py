"""The audit log: append-only events, chained by SHA-256."""

from django.conf import settings
from django.db import models


def report_id_for(*, reference: str, version: int | None) -> str:
    """Return ``ER-2026-000001-v2`` for an issued version, ``ER-2026-000001-draft`` for a draft."""
    return f"{reference}-v{version}" if version else f"{reference}-draft"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")


class AuditEvent(models.Model):
    """One change of state that a regulator could ask about. Never updated, never deleted.

    ``details`` holds no raw personal data. On PostgreSQL and SQLite a trigger refuses UPDATE and
    DELETE on the table as well (migration 0002), so not even raw SQL through the app's
    connection changes history.
    """

    sequence = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
    )
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)
    #: HMAC-SHA256 of ``entry_hash`` under the audit chain key (``LETHE_AUDIT_CHAIN_KEY``), and the
    #: key's id: whoever can write the table but does not hold the key cannot re-seal a rewrite.
    entry_mac = models.CharField(max_length=64, blank=True, default="")
    mac_key_id = models.CharField(max_length=40, blank=True, default="")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["sequence"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        permissions = [("download_reports", "Can download audit reports and the register")]

    def __str__(self):
        return f"#{self.sequence} {self.action} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Audit events are append-only: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")


class AuditChainHead(models.Model):
    """The last audit event whose chain was verified, so that the next check reads only what follows.

    One row (``pk=1``), moved forward by every verification that succeeds and back to the last
    good event by a full verification that finds a break. It is a cache, not evidence: a row
    changed before the head is found by the full check (``manage.py verify_audit_log``), never
    by the incremental one (docs/operations.md, "The audit chain").
    """

    sequence = models.BigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64)
    verified_at = models.DateTimeField()

    def __str__(self):
        return f"verified through #{self.sequence}"


class AuditReportQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Issued audit reports are immutable: issue a new version instead.")

    def delete(self):
        raise PermissionError("Issued audit reports are immutable: they cannot be deleted.")


class AuditReport(models.Model):
    """One issued version of a request's audit report: its JSON and PDF files, hashed and signed.

    Immutable once written: a correction is a new version whose ``supersedes`` points here, so
    ``superseded_by`` (the reverse side) names the version that replaced this one while this one
    stays as it was issued. Drafts (reports of open requests) are rendered on demand and never
    stored. Both files are kept in the database, beside the audit log they are sealed to, so a
    backup holds them together and every web host serves the same bytes.

    ``json_text`` is the JSON file exactly as downloaded: the canonical JSON of
    ``{"body": …, "signature": {…}}``; ``body_sha256`` and ``body_signature`` are over the canonical
    JSON of the body alone (docs/reports.md, "Signing").
    """

    erasure_request = models.ForeignKey(
        "requests_app.ErasureRequest",
        on_delete=models.PROTECT,
        related_name="audit_reports",
    )
    version = models.PositiveIntegerField()
    supersedes = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_by",
    )
    reason = models.TextField(blank=True)
    schema_version = models.CharField(max_length=20)
    request_status = models.CharField(max_length=32)

    json_text = models.TextField()
    json_sha256 = models.CharField(max_length=64, unique=True)
    body_sha256 = models.CharField(max_length=64)
    # Ed25519 (base64) of the body's canonical JSON and of the PDF file; reports issued before
    # Ed25519 carry HMAC-SHA256 hex in the *_hmac fields instead (``signature_alg`` says which).
    signature_alg = models.CharField(max_length=20, default="HMAC-SHA256")
    body_signature = models.TextField(blank=True)
    body_hmac = models.CharField(max_length=64, blank=True)
    key_id = models.CharField(max_length=64)

    pdf_bytes = models.BinaryField()
    pdf_sha256 = models.CharField(max_length=64, unique=True)
    pdf_signature = models.TextField(blank=True)
    pdf_hmac = models.CharField(max_length=64, blank=True)

    issued_at = models.DateTimeField(db_index=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="issued_audit_reports",
    )

    objects = AuditReportQuerySet.as_manager()

    class Meta:
        ordering = ["erasure_request_id", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["erasure_request", "version"], name="compliance_auditreport_one_row_per_version"
            ),
        ]

    def __str__(self):
        return self.report_id

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Issued audit reports are immutable: issue a new version instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Issued audit reports are immutable: they cannot be deleted.")

    @property
    def report_id(self) -> str:
        """Return ``<reference>-v<version>``, the id printed in both files."""

        return report_id_for(reference=self.erasure_request.reference, version=self.version)

    @property
    def is_current(self) -> bool:
        """Return True unless a later version supersedes this one."""
        return not AuditReport.objects.filter(supersedes=self).exists()


class ApiToken(models.Model):
    """A credential for the API, stored as the SHA-256 of the token only, with an expiry.

    The token itself is shown once, when it is made (``compliance.tokens.api_token_create``);
    a copy of the database holds nothing that authenticates. Tokens are 256-bit random, so an
    unsalted SHA-256 is enough: there is nothing to guess.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    key_sha256 = models.CharField(max_length=64, unique=True)
    #: The token's first characters, to tell tokens apart in lists; not enough to use it.
    prefix = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
