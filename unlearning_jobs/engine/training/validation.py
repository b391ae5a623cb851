"""Build frozen hyper-parameter dataclasses from JSON dicts, failing loudly on bad input.

Parameters arrive from forms, the REST API and stored job rows as plain dicts. A typo in a key or
a value out of range must fail the job before any GPU time is spent, with a message that names
the field, rather than silently train with a default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def _allowed_types(hint: Any) -> tuple[tuple[type, ...], bool]:
    """Return the concrete types a field accepts and whether ``None`` is one of them."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        concrete = tuple(typing.get_origin(a) or a for a in args if a is not type(None))
        return concrete, type(None) in args
    return ((origin or hint),), False


def _coerce(cls_name: str, name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's annotation; accept ints for floats, nothing else."""
    concrete, optional = _allowed_types(hint)
    if value is None:
        if optional:
            return None
        raise ValueError(f"{cls_name}.{name}: a value is required, got null")
    if isinstance(value, bool):
        if bool in concrete:
            return value
        raise ValueError(f"{cls_name}.{name}: expected {_names(concrete)}, got a boolean")
    if isinstance(value, int) and int not in concrete and float in concrete:
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{cls_name}.{name}: must be a finite number, got {value!r}")
    if isinstance(value, list) and tuple in concrete:
        value = tuple(value)
    if not isinstance(value, concrete):
        raise ValueError(f"{cls_name}.{name}: expected {_names(concrete)}, got {type(value).__name__}")
    return value


def _names(concrete: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in concrete)


def dataclass_from_dict(cls: type[T], data: Mapping[str, Any] | None) -> T:
    """Return ``cls(**data)`` after rejecting unknown keys and values of the wrong type.

    Missing keys take the dataclass defaults. Range checks live in each class's
    ``__post_init__`` so that they also run when the class is built directly.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; valid fields are {', '.join(sorted(fields))}"
        )
    kwargs = {name: _coerce(cls.__name__, name, value, hints[name]) for name, value in data.items()}
    return cls(**kwargs)


def require(condition: bool, cls_name: str, name: str, message: str) -> None:
    """Raise ``ValueError('<Class>.<field>: <message>')`` unless ``condition`` holds."""
    if not condition:
        raise ValueError(f"{cls_name}.{name}: {message}")
