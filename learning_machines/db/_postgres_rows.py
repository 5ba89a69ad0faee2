"""Conversions between PostgreSQL rows and the record dataclasses (pure, no I/O)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ._decode import require_object
from ._records import HistoryEntry, Learning, Message, PendingWork, Proposal

__all__ = [
    "LEARNING_COLUMNS",
    "MESSAGE_COLUMNS",
    "PROPOSAL_COLUMNS",
    "WORK_COLUMNS",
    "dumps",
    "history_from_row",
    "learning_from_row",
    "learning_json",
    "learning_params",
    "message_from_row",
    "proposal_from_row",
    "record_params",
    "scrub_user",
    "utc",
    "vector_literal",
    "work_from_row",
]

_LEARNING_FIELDS = tuple(f.name for f in dataclasses.fields(Learning))
# ``version`` is the backend's to set (the put computes it), never taken from the record.
_WRITTEN_FIELDS = tuple(name for name in _LEARNING_FIELDS if name != "version")
_JSON_LEARNING = ("content", "provenance")

#: Columns written for a learning, in the order of :func:`learning_params`.
LEARNING_COLUMNS: tuple[str, ...] = (*_WRITTEN_FIELDS, "content_hash")
#: Columns of the other tables, in dataclass field order.
MESSAGE_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Message))
WORK_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PendingWork))
PROPOSAL_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Proposal))


def utc(value: datetime | None) -> datetime | None:
    """Return aware datetimes unchanged; naive ones are taken to be UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def dumps(value: Any, what: str) -> str:
    """Return ``value`` as JSON text; a value JSON cannot hold is the caller's mistake."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{what} must be JSON-serialisable (str, numbers, bool, None, lists, dicts): {exc}"
        ) from exc


def _finite(vector: tuple[float, ...] | list[float]) -> list[float]:
    try:
        array = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.empty(0)
    if array.ndim != 1 or len(array) == 0 or not np.isfinite(array).all():
        raise ValidationError("An embedding must be a non-empty sequence of finite numbers.")
    values: list[float] = array.tolist()
    return values


def vector_literal(vector: tuple[float, ...] | list[float]) -> str:
    """Return the pgvector text form of ``vector`` (``"[1.0,2.0]"``), checking it is finite."""
    # str() of a list of floats formats them in C, several times faster than a join of repr().
    return str(_finite(vector)).replace(" ", "")


def _parse_vector(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    inner = text.strip()[1:-1]
    return tuple(float(x) for x in inner.split(",")) if inner else ()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def learning_json(learning: Learning) -> dict[str, Any]:
    """Return the learning as a JSON object for its history: every column but the embedding."""
    out = {
        name: _jsonable(getattr(learning, name)) for name in _LEARNING_FIELDS if name != "embedding"
    }
    out["content_hash"] = learning.content_hash
    return out


def learning_params(learning: Learning) -> list[Any]:
    """Return the values for :data:`LEARNING_COLUMNS` (JSON as text, vector as pgvector text)."""
    values: list[Any] = []
    for name in _WRITTEN_FIELDS:
        value = getattr(learning, name)
        if name in _JSON_LEARNING:
            value = dumps(value, f"Learning.{name}")
        elif name == "embedding" and value is not None:
            value = vector_literal(value)
        elif isinstance(value, datetime):
            value = utc(value)
        values.append(value)
    values.append(learning.content_hash)
    return values


def learning_from_row(row: Mapping[str, Any]) -> Learning:
    """Build a :class:`Learning` from a row selected with the embedding cast to text."""
    kwargs = {name: row[name] for name in _LEARNING_FIELDS}
    kwargs["embedding"] = _parse_vector(row["embedding"])
    kwargs["content"] = require_object(row["content"] or {}, "content")
    kwargs["provenance"] = require_object(row["provenance"] or {}, "provenance")
    return Learning(**kwargs)


def history_from_row(row: Mapping[str, Any]) -> HistoryEntry:
    """Build a :class:`HistoryEntry` from a ``learning_history`` row."""
    return HistoryEntry(
        id=row["id"],
        learning_id=row["learning_id"],
        action=row["action"],
        old=row["old"],
        new=row["new"],
        actor=dict(row["actor"] or {}),
        reason=row["reason"],
        turn_id=row["turn_id"],
        user_id=row["user_id"],
        created_at=row["created_at"],
    )


def message_from_row(row: Mapping[str, Any]) -> Message:
    """Build a :class:`Message` from a ``messages`` row."""
    return Message(**{name: row[name] for name in MESSAGE_COLUMNS})


def work_from_row(row: Mapping[str, Any]) -> PendingWork:
    """Build a :class:`PendingWork` from a ``pending_work`` row."""
    kwargs = {name: row[name] for name in WORK_COLUMNS}
    kwargs["payload"] = dict(row["payload"] or {})
    return PendingWork(**kwargs)


def proposal_from_row(row: Mapping[str, Any]) -> Proposal:
    """Build a :class:`Proposal` from a ``proposals`` row."""
    kwargs = {name: row[name] for name in PROPOSAL_COLUMNS}
    kwargs["payload"] = dict(row["payload"] or {})
    return Proposal(**kwargs)


def record_params(
    record: object, columns: tuple[str, ...], json_columns: tuple[str, ...]
) -> list[Any]:
    """Return the values of ``columns`` of a record dataclass, JSON columns dumped to text."""
    values: list[Any] = []
    for name in columns:
        value = getattr(record, name)
        if name in json_columns:
            value = dumps(value, f"{type(record).__name__}.{name}")
        elif isinstance(value, datetime):
            value = utc(value)
        values.append(value)
    return values


def scrub_user(value: Any, user_id: str) -> Any:
    """Return ``value`` without any mention of ``user_id`` (for forgetting a user).

    A mapping that names the user loses the value and its ``user_id`` and ``session_id`` keys;
    list items equal to the user id are dropped.
    """
    if isinstance(value, dict):
        names_user = user_id in value.values()
        return {
            k: scrub_user(v, user_id)
            for k, v in value.items()
            if not (names_user and k in ("user_id", "session_id")) and v != user_id
        }
    if isinstance(value, list):
        return [scrub_user(v, user_id) for v in value if v != user_id]
    return value
