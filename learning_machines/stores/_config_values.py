"""Checking store config values when a config is built: coerce the unambiguous, refuse the rest.

Configs often come from YAML files or environment variables, where every value may be a string.
What has exactly one reading is coerced: a mode in any case (``"propose"``, ``"PROPOSE"``), a
single namespace where a list is expected, a number written as a string (``"5"``, ``"0.2"``), a
boolean written ``"true"``/``"false"``. Everything else raises
:class:`~learning_machines.exceptions.ConfigurationError` naming the field and the fix, when the
config is built, instead of misbehaving later (a mode the write gate did not recognise used to
switch approval off silently).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypeVar

from .._ids import check_id
from .._modes import LearningMode
from ..db import GLOBAL_NAMESPACE, PRIVATE_NAMESPACE
from ..exceptions import ConfigurationError, ValidationError

__all__ = [
    "choice_value",
    "flag_value",
    "mode_value",
    "name_value",
    "namespace_value",
    "namespaces_value",
    "number_value",
    "whole_number",
]

C = TypeVar("C", bound=str)
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def mode_value(value: object, *, field: str) -> LearningMode:
    """A :class:`LearningMode` from a mode or its name/value in any case (``"propose"``)."""
    if isinstance(value, LearningMode):
        return value
    if isinstance(value, str):
        key = value.strip().casefold()
        for mode in LearningMode:
            if key in (mode.value, mode.name.casefold()):
                return mode
    options = ", ".join(f"LearningMode.{m.name} (or {m.value!r})" for m in LearningMode)
    raise ConfigurationError(f"{field}={value!r} is not a learning mode; use one of {options}")


def name_value(value: object, *, field: str, what: str = "a name") -> str:
    """A short printable string (the rules of ids: :func:`learning_machines._ids.check_id`)."""
    if not isinstance(value, str):
        hint = f"; write {field}={str(value)!r}" if isinstance(value, int | float) else ""
        raise ConfigurationError(
            f"{field} must be {what} (a string), not {type(value).__name__} ({value!r}){hint}"
        )
    try:
        return check_id(value, name=field)
    except ValidationError as exc:
        raise ConfigurationError(str(exc)) from exc


def namespace_value(value: object, *, field: str) -> str:
    """A namespace name: a short printable string; ``"user"``/``"global"`` spelled exactly.

    ``"User"`` would be a *shared* namespace named "User", readable by everyone, so near misses
    of the reserved names are refused rather than taken literally.
    """
    value = name_value(value, field=field, what="a namespace name")
    for reserved in (PRIVATE_NAMESPACE, GLOBAL_NAMESPACE):
        if value != reserved and value.casefold() == reserved:
            raise ConfigurationError(
                f"{field}={value!r} would be a shared namespace named {value!r}; the reserved "
                f"namespace is spelled {reserved!r}"
            )
    return value


def namespaces_value(value: object, *, field: str) -> tuple[str, ...]:
    """A tuple of namespaces from a tuple, list or set of names, one name, or ``None`` (none)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (namespace_value(value, field=field),)
    if not isinstance(value, tuple | list | set | frozenset):
        raise ConfigurationError(
            f"{field} must be a tuple of namespace names, e.g. {field}=('global',), not "
            f"{type(value).__name__} ({value!r})"
        )
    items: Iterable[Any] = sorted(value, key=str) if isinstance(value, set | frozenset) else value
    names = [namespace_value(item, field=f"{field}[{i}]") for i, item in enumerate(items)]
    return tuple(dict.fromkeys(names))


def whole_number(value: object, *, field: str, minimum: int) -> int:
    """An ``int`` at least ``minimum``; a string of digits (``"5"``) is read as its number."""
    number: object = value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    if isinstance(number, bool) or not isinstance(number, int):
        raise ConfigurationError(
            f"{field} must be a whole number (at least {minimum}), not {type(value).__name__} "
            f"({value!r})"
        )
    if number < minimum:
        raise ConfigurationError(f"{field}={value!r} is below its minimum: use {minimum} or more")
    return number


def number_value(value: object, *, field: str, low: float, high: float) -> float:
    """A finite ``float`` in ``[low, high]``; a numeric string (``"0.2"``) is read as its number."""
    number: object = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = value
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ConfigurationError(
            f"{field} must be a number between {low} and {high}, not {type(value).__name__} "
            f"({value!r})"
        )
    if not math.isfinite(number) or not low <= number <= high:
        raise ConfigurationError(f"{field}={value!r} is out of range: use {low} to {high}")
    return float(number)


def flag_value(value: object, *, field: str) -> bool:
    """A ``bool``; ``"true"``/``"false"`` (also yes/no, on/off, 1/0) in any case are read as one.

    ``bool("false")`` is ``True`` in Python, so strings are never passed through ``bool``.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in _TRUE | _FALSE:
        return value.strip().casefold() in _TRUE
    raise ConfigurationError(
        f"{field} must be True or False, not {type(value).__name__} ({value!r})"
    )


def choice_value(value: object, *, field: str, choices: tuple[C, ...]) -> C:
    """One of ``choices`` (compared case-insensitively, returned as spelled in ``choices``)."""
    if isinstance(value, str):
        for choice in choices:
            if value.strip().casefold() == choice:
                return choice
    raise ConfigurationError(
        f"{field}={value!r} is not one of {', '.join(repr(c) for c in choices)}"
    )
