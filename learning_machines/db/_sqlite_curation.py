"""The maintenance operations of the SQLite backend used by curation and export.

``ListScopes`` (every scope with a row count), ``ListUserMessages`` (a user's turns across
sessions) and ``PutHistory`` (re-inserting exported history entries).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ._ops import ListScopes, ListUserMessages, PutHistory, ScopeCount
from ._records import PRIVATE_NAMESPACE, Message
from ._sqlite_broad import SideIndexes
from ._sqlite_rows import enc_time, row_to_message, to_json

__all__ = ["list_scopes", "list_user_messages", "put_history"]


def _in(column: str, values: tuple[str, ...], clauses: list[str], params: list[Any]) -> None:
    if not values:
        clauses.append("1 = 0")
        return
    clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
    params.extend(values)


def list_scopes(conn: sqlite3.Connection, op: ListScopes, cache: SideIndexes) -> list[ScopeCount]:
    """Return every scope with its number of rows of the requested statuses."""
    clauses: list[str] = []
    params: list[Any] = []
    _in("status", tuple(op.statuses), clauses, params)
    if op.learning_types is not None:
        _in("learning_type", op.learning_types, clauses, params)
    if op.namespaces is not None:
        _in("namespace", op.namespaces, clauses, params)
    if op.user_id is not None:
        clauses.append("(namespace <> ? OR user_id = ?)")
        params.extend([PRIVATE_NAMESPACE, op.user_id])
    owner = "CASE WHEN namespace = ? THEN user_id END"
    rows = conn.execute(
        f"SELECT learning_type, namespace, {owner} AS owner, COUNT(*) FROM learnings "
        f"WHERE {' AND '.join(clauses)} GROUP BY learning_type, namespace, owner "
        "ORDER BY learning_type, namespace, owner",
        [PRIVATE_NAMESPACE, *params],
    )
    return [
        ScopeCount(learning_type=t, namespace=ns, user_id=u, count=int(n)) for t, ns, u, n in rows
    ]


def list_user_messages(
    conn: sqlite3.Connection, op: ListUserMessages, cache: SideIndexes
) -> list[Message]:
    """Return every turn of one user, oldest first."""
    rows = conn.execute(
        "SELECT * FROM messages WHERE user_id = ? ORDER BY created_at, pk LIMIT ?",
        (op.user_id, -1 if op.limit is None else op.limit),
    )
    return [row_to_message(row) for row in rows]


def put_history(conn: sqlite3.Connection, op: PutHistory, cache: SideIndexes) -> int:
    """Insert history entries as given, skipping ids already present."""
    inserted = 0
    for e in op.entries:
        inserted += conn.execute(
            "INSERT INTO learning_history (id, learning_id, action, old, new, actor, reason, "
            "turn_id, user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (
                e.id,
                e.learning_id,
                e.action,
                None if e.old is None else to_json(e.old, "history"),
                None if e.new is None else to_json(e.new, "history"),
                to_json(e.actor, "HistoryEntry.actor"),
                e.reason,
                e.turn_id,
                e.user_id,
                enc_time(e.created_at),
            ),
        ).rowcount
    return inserted
