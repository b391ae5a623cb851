"""The sections of a request's audit report that other apps hold, read through their providers.

Sections that belong to other apps (the records located, the decisions, the jobs, their
verification, the recipients notified) are read through small functions those apps define and
``settings.LETHE_REPORT_SECTION_PROVIDERS`` lists, section by section::

    def jobs_for_report(erasure_request) -> dict:
        return {"jobs": [{"job_id": "17", "framework": "deletion", "method": "npo", ...}]}

A provider takes the ``ErasureRequest`` and returns ``{list_name: [item, ...]}`` with the list
names of its section (``SECTION_LISTS``); items are plain dicts of JSON values (datetimes, dates,
Decimals and UUIDs are converted here). Lists from several providers of one section are
concatenated in the table's order. A section nobody provides reads as empty and the report says
"none recorded". What each item holds is in ``schema.json`` and docs/reports.md. A provider must
return no raw personal data: record ids and identifiers go in as keyed hashes, and the report
refuses to be issued if a raw identifier of the person turns up anywhere in it.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from decimal import Decimal

from compliance.extensions import extension_list

# section → the lists its providers may return
SECTION_LISTS: dict[str, tuple[str, ...]] = {
    "records": ("search_coverage", "candidates", "confirmed_records", "removals"),
    "decisions": ("decisions",),
    "jobs": ("jobs",),
    "verification": ("results", "figures"),
    "recipients": ("recipients",),
}

SectionProvider = Callable[[object], dict]
# A prefetcher takes many requests and reads what the section's providers need for all of them at
# once (leaving it on the instances), so that list pages cost no query per request.
SectionPrefetcher = Callable[[list], None]


class ReportProviderError(ValueError):
    """A provider returned something the report cannot hold; the message names the provider."""


def report_section_providers(section: str) -> list[SectionProvider]:
    """Return the providers ``settings.LETHE_REPORT_SECTION_PROVIDERS`` lists for ``section``."""
    if section not in SECTION_LISTS:
        raise ValueError(f"unknown report section {section!r}; provided sections: {sorted(SECTION_LISTS)}")
    return extension_list("LETHE_REPORT_SECTION_PROVIDERS", section)


def report_section_prefetch(*, section: str, erasure_requests) -> None:
    """Let the section's prefetchers read, for many requests at once, what its providers will need.

    An optimisation for list pages; a request a prefetcher left alone is read by the providers
    themselves, one at a time.
    """
    erasure_requests = list(erasure_requests)
    if not erasure_requests:
        return
    for prefetcher in extension_list("LETHE_REPORT_SECTION_PREFETCHERS", section):
        prefetcher(erasure_requests)


def provider_name(provider: SectionProvider) -> str:
    return f"{getattr(provider, '__module__', '?')}.{getattr(provider, '__qualname__', repr(provider))}"


def plain_json(value, *, where: str):
    """Return ``value`` as plain JSON types, or raise ``ReportProviderError`` naming ``where``.

    Datetimes become ISO 8601 in UTC (naive ones are refused: a report must not guess a time
    zone); non-finite floats become None, the "not measured" of strict JSON.
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return plain_json(float(value), where=where)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ReportProviderError(f"{where}: a datetime without a time zone")
        return timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        converted = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ReportProviderError(f"{where}: a key that is not text ({key!r})")
            converted[key] = plain_json(item, where=f"{where}.{key}")
        return converted
    if isinstance(value, (list, tuple)):
        return [plain_json(item, where=f"{where}[{index}]") for index, item in enumerate(value)]
    raise ReportProviderError(f"{where}: {type(value).__name__} is not a JSON value")


def timestamp(moment: dt.datetime | None) -> str | None:
    """Return an aware datetime as ISO 8601 UTC to the second (``2026-03-01T09:30:00Z``)."""
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def report_section_provided(*, section: str, erasure_request) -> dict[str, list]:
    """Return the section's lists gathered from every provider, each list possibly empty.

    A provider that fails, returns a list name its section does not have, or returns a value
    that is not JSON stops the report with a ``ReportProviderError`` naming it: a report that
    silently left out a failing section would claim less happened than did.
    """
    lists: dict[str, list] = {name: [] for name in SECTION_LISTS[section]}
    for provider in report_section_providers(section):
        name = provider_name(provider)
        try:
            returned = provider(erasure_request)
        except Exception as error:  # any failure of another app's code becomes a clear refusal
            raise ReportProviderError(
                f"The {section} section cannot be assembled: {name} failed ({type(error).__name__})."
            ) from error
        if returned is None:
            continue
        if not isinstance(returned, dict):
            raise ReportProviderError(f"{name} returned {type(returned).__name__}, not a dict of lists")
        for list_name, items in returned.items():
            if list_name not in lists:
                raise ReportProviderError(
                    f"{name} returned {list_name!r}; the {section} section holds only "
                    f"{', '.join(SECTION_LISTS[section])}"
                )
            if not isinstance(items, (list, tuple)):
                raise ReportProviderError(f"{name}: {list_name} is not a list")
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ReportProviderError(f"{name}: {list_name}[{index}] is not a dict")
                lists[list_name].append(plain_json(item, where=f"{name}: {list_name}[{index}]"))
    return lists
