"""Where on the server Lethe reads what an engineer names: confined first, resolved after.

Data sets and model checkpoints are registered by path. A path is checked in two steps, in this
order, so that a refusal never tells whether some file elsewhere on the server exists:

1. **confined** as written: made absolute and normalised without touching the file system
   (``..`` folded away), it must lie under ``LETHE_DATA_DIR`` or one of ``LETHE_IMPORT_ROOTS``;
2. only then **resolved** (symbolic links followed), and the result must still lie under a root,
   so a link inside a root cannot lead out of it.

Either failure is the same ``PathNotAllowed`` with the same words, which name no root and no
path: where the roots are is the operator's configuration, not the caller's business.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

NOT_ALLOWED = "Not an allowed location."


class PathNotAllowed(ValueError):
    """The path is not under an allowed root (as written, or once its links are followed)."""

    def __init__(self) -> None:
        super().__init__(NOT_ALLOWED)


class PathMissing(FileNotFoundError):
    """The path is under an allowed root and nothing is there."""


def _lexical(path: str | os.PathLike) -> Path:
    return Path(os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(path)))))


def allowed_roots() -> list[Path]:
    """Return the roots as configured and as resolved (a root may itself be reached through a link)."""
    configured = [Path(settings.LETHE_DATA_DIR), *map(Path, settings.LETHE_IMPORT_ROOTS)]
    roots: list[Path] = []
    for root in configured:
        for form in (_lexical(root), _lexical(root).resolve()):
            if form not in roots:
                roots.append(form)
    return roots


def confined_path(path: str | os.PathLike) -> Path:
    """Return ``path`` resolved, after confining it as written; raise ``PathNotAllowed`` or ``PathMissing``."""
    roots = allowed_roots()
    lexical = _lexical(path)
    if not any(lexical.is_relative_to(root) for root in roots):
        raise PathNotAllowed()
    try:
        resolved = lexical.resolve(strict=True)
    except FileNotFoundError:
        raise PathMissing(lexical.name) from None
    except (OSError, RuntimeError):  # a loop of links, a component that is not a directory
        raise PathNotAllowed() from None
    if not any(resolved.is_relative_to(root) for root in roots):
        raise PathNotAllowed()
    return resolved
