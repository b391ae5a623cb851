"""Lethe's project package: settings, URLs, the Celery app, the audit log and audit reports."""

from compliance.celery import app as celery_app

__all__ = ("celery_app",)
