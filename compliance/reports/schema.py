"""The JSON Schema of a report body (``schema.json``) and the check every body passes before issue.

The schema is versioned by ``SCHEMA_VERSION``: a change that lets a new body fail the old schema
is a new version, with a new file beside the old one, so reports already issued still validate
against the schema they were written for.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).with_name("schema.json")


class ReportSchemaError(ValueError):
    """A report body does not match the schema; ``problems`` lists each mismatch by its path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("The report does not match its schema: " + "; ".join(problems[:5]))


@cache
def report_schema() -> dict:
    """Return the schema as a dict (read once per process)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(report_schema())


def report_schema_problems(body) -> list[str]:
    """Return every way ``body`` breaks the schema, as ``"path: message"``; empty when it fits."""
    problems = []
    for error in sorted(_validator().iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
        path = "/".join(str(part) for part in error.absolute_path) or "(body)"
        problems.append(f"{path}: {_describe(error)}")
    return problems


def _describe(error) -> str:
    """Say what rule failed without quoting the offending value, which may be personal data."""
    if error.validator in ("required", "additionalProperties"):
        return error.message[:200]  # names a key of the schema, not a value
    expected = repr(error.validator_value)
    if len(expected) > 120:
        expected = expected[:117] + "..."
    return f"fails {error.validator} {expected}"


def report_body_validate(body) -> None:
    """Raise ``ReportSchemaError`` unless ``body`` fits the schema."""
    problems = report_schema_problems(body)
    if problems:
        raise ReportSchemaError(problems)
