"""The table of job kinds: which function runs a kind and which one checks its parameters.

The kinds are listed in ``settings.LETHE_JOB_KINDS`` (compliance/extensions.py): the deletion,
verification and suppression stages define their runners, the jobs layer below them reads the
table, so adding a kind is one entry there and no registration at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from compliance.extensions import extension, extension_table

# runner(context: JobContext) -> JobOutcome; params(method, params) -> cleaned params or ValueError
Runner = Callable[[Any], Any]
ParamsValidator = Callable[[str, Mapping[str, Any] | None], dict]


def job_kind_runnable(kind: str) -> bool:
    """Return whether the table names a runner for ``kind``."""
    return kind in extension_table("LETHE_JOB_KINDS")


def job_runner_for(kind: str) -> Runner | None:
    """Return the runner of a job kind, or None when the table has no entry for it."""
    entry = extension_table("LETHE_JOB_KINDS").get(kind)
    return extension(entry["run"]) if entry else None


def job_params_validate(*, kind: str, method: str, params: Mapping[str, Any] | None) -> dict:
    """Return ``params`` validated for the job's kind and method; raise ``ValueError`` naming the field."""
    entry = extension_table("LETHE_JOB_KINDS").get(kind)
    if entry is None:
        raise ValueError(f"no runner is listed for {kind!r} jobs")
    return extension(entry["params"])(method, params)
