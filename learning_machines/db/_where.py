"""Translate a :class:`LearningFilter` into a SQL ``WHERE`` clause (pure, shared by backends).

Isolation lives here, once: the private namespace only ever matches the reader's own rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..exceptions import IsolationError, ValidationError
from ._records import PRIVATE_NAMESPACE, LearningFilter

__all__ = ["filter_where"]


def filter_where(
    f: LearningFilter,
    *,
    param: str,
    alias: str = "l",
    time: Callable[[datetime], Any] = lambda t: t,
    json_text: Callable[[str, str], str] | None = None,
) -> tuple[str, list[Any]]:
    """Return ``(sql, params)`` for rows of table ``alias`` that ``f`` lets a reader see.

    ``param`` is the placeholder (``"?"`` or ``"%s"``); ``time`` converts datetimes into what the
    backend stores; ``json_text(column, key)`` returns SQL extracting a text value from a JSON
    column (needed only for ``provenance_user_id``).
    """
    a = alias
    clauses: list[str] = []
    params: list[Any] = []

    def in_list(column: str, values: tuple[str, ...]) -> None:
        if not values:
            clauses.append("1 = 0")
            return
        clauses.append(f"{a}.{column} IN ({', '.join([param] * len(values))})")
        params.extend(values)

    # Namespaces and the private-namespace rule.
    if f.namespaces is None:
        if f.reader_user_id is None:
            clauses.append(f"{a}.namespace <> {param}")
            params.append(PRIVATE_NAMESPACE)
        else:
            clauses.append(f"({a}.namespace <> {param} OR {a}.user_id = {param})")
            params.extend([PRIVATE_NAMESPACE, f.reader_user_id])
    else:
        shared = tuple(ns for ns in f.namespaces if ns != PRIVATE_NAMESPACE)
        wants_private = PRIVATE_NAMESPACE in f.namespaces
        if wants_private and f.reader_user_id is None:
            raise IsolationError(
                "Reading the private namespace 'user' needs the reading user: pass "
                "reader_user_id=... (the user_id of the turn) in the LearningFilter."
            )
        parts: list[str] = []
        if shared:
            parts.append(f"{a}.namespace IN ({', '.join([param] * len(shared))})")
            params.extend(shared)
        if wants_private:
            parts.append(f"({a}.namespace = {param} AND {a}.user_id = {param})")
            params.extend([PRIVATE_NAMESPACE, f.reader_user_id])
        clauses.append("(" + " OR ".join(parts) + ")" if parts else "1 = 0")

    if f.learning_types is not None:
        in_list("learning_type", f.learning_types)
    for column in ("user_id", "session_id", "agent_id", "team_id"):
        value = getattr(f, column)
        if value is not None:
            clauses.append(f"{a}.{column} = {param}")
            params.append(value)
    if f.entity_ids is not None:
        in_list("entity_id", f.entity_ids)
    if f.ids is not None:
        in_list("id", f.ids)
    if f.content_hash is not None:
        clauses.append(f"{a}.content_hash = {param}")
        params.append(f.content_hash)
    if f.provenance_user_id is not None:
        if json_text is None:
            raise TypeError("this backend did not pass json_text; provenance filters need it")
        clauses.append(f"{json_text(f'{a}.provenance', 'user_id')} = {param}")
        params.append(f.provenance_user_id)

    if f.happened_between is not None:
        start, end = _time_range(f.happened_between)
        clauses.append(f"COALESCE({a}.valid_from, {a}.created_at) >= {param}")
        clauses.append(f"COALESCE({a}.valid_from, {a}.created_at) < {param}")
        params.extend([time(start), time(end)])

    if f.as_of is None:
        in_list("status", tuple(f.statuses))
    else:
        t = time(f.as_of)
        clauses.append(f"{a}.created_at <= {param}")
        params.append(t)
        clauses.append(f"({a}.status = {param} OR {a}.updated_at > {param})")
        params.extend(["active", t])
        clauses.append(f"({a}.valid_from IS NULL OR {a}.valid_from <= {param})")
        params.append(t)
        clauses.append(f"({a}.valid_to IS NULL OR {a}.valid_to > {param})")
        params.append(t)

    return " AND ".join(clauses) if clauses else "1 = 1", params


def _time_range(value: object) -> tuple[datetime, datetime]:
    """``happened_between`` checked: two datetimes, the first before the second, in UTC."""
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(t, datetime) for t in value)
    ):
        raise ValidationError(
            f"LearningFilter.happened_between must be (start, end), two datetimes; got {value!r}"
        )
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in value)
    if not start < end:
        raise ValidationError(
            f"LearningFilter.happened_between=({start.isoformat()}, {end.isoformat()}) is empty: "
            "the start must come before the end"
        )
    return start, end
