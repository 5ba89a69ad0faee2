"""Decoding stored rows one at a time, so one row that cannot be read never hides the others.

A row written by a foreign client, damaged on disk or left by an older version can fail to
decode (invalid JSON, a time no Python program can hold, content that is not an object). Every
list, search and get decodes rows through :func:`decode_rows`: such a row is logged at ERROR
level on the ``learning_machines`` logger, with its id and how to repair it, and left out of the
result; every other row is returned as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["decode_rows", "require_object"]

_log = logging.getLogger("learning_machines")
R = TypeVar("R")
T = TypeVar("T")

# What a decoder raises on bad stored data (json.JSONDecodeError is a ValueError).
_DECODE_ERRORS = (ValueError, TypeError, KeyError, OverflowError)


def require_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object (dict); ``TypeError`` otherwise."""
    if not isinstance(value, dict):
        raise TypeError(f"{what} is a {type(value).__name__}, not a JSON object")
    return value


def decode_rows(
    rows: Iterable[R], decode: Callable[[R], T], *, table: str
) -> Iterator[tuple[R, T]]:
    """Yield ``(row, decode(row))`` for every row that decodes; log and skip the others."""
    for row in rows:
        try:
            yield row, decode(row)
        except _DECODE_ERRORS as exc:
            row_id = _row_id(row)
            _log.error(
                "Row %s of table %s cannot be decoded and was left out of this read (%s: %s). "
                "It was not written by this library as it is now: write it again (e.g. "
                "curator.restore) or delete it.",
                row_id,
                table,
                type(exc).__name__,
                exc,
            )


def _row_id(row: Any) -> str:
    try:
        return repr(row["id"])
    except (KeyError, IndexError, TypeError):
        return "(without an id)"
