"""Periodic housekeeping of erasure requests, on the ``cpu`` queue. Thin: each calls one service."""

from celery import shared_task

from compliance.queues import TaskName
from requests_app.services import erasure_requests_flag_deadlines, erasure_requests_purge_identifiers


@shared_task(name=TaskName.FLAG_OVERDUE)
def flag_overdue(**kwargs) -> dict:
    """Flag requests that became overdue or due soon and e-mail their officers, once each."""
    flags = erasure_requests_flag_deadlines()
    return {"overdue": len(flags.overdue), "due_soon": len(flags.due_soon)}


@shared_task(name=TaskName.PURGE_IDENTIFIERS)
def purge_identifiers(**kwargs) -> dict:
    """Erase identifiers of requests closed longer than the retention period, keeping hashes."""
    return {"purged": len(erasure_requests_purge_identifiers())}
