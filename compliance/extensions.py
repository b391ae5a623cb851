"""Extension tables: settings that list dotted paths, resolved with ``import_string``.

Where a lower layer must call something a higher one defines (a check on a request's transition,
what follows a transition, the runner of a job kind, what a succeeded job starts), it reads one
of the ``LETHE_*`` tables in ``compliance/settings.py``, as Django reads ``MIDDLEWARE``. The table
is the one place a reader learns what runs when; nothing registers itself at import time, and a
test changes a table with ``override_settings``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


@cache
def _resolve(dotted_path: str) -> Any:
    return import_string(dotted_path)


def extension(dotted_path: str) -> Any:
    """Return the object a table entry names; a wrong path is a configuration error naming it."""
    try:
        return _resolve(dotted_path)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"{dotted_path!r} in an extension table cannot be imported: {error}"
        ) from error


def extension_table(setting: str) -> Any:
    """Return the raw table ``settings.<setting>`` (a dict or a list of dotted paths)."""
    try:
        return getattr(settings, setting)
    except AttributeError:
        raise ImproperlyConfigured(f"the extension table {setting} is not set") from None


def extension_list(setting: str, key: str | None = None) -> list[Any]:
    """Return the objects a table lists, in order: the whole list, or the list under ``key``."""
    table = extension_table(setting)
    paths = table.get(key, ()) if key is not None else table
    return [extension(path) for path in paths]
