"""What every PostgreSQL op function shares.

The open cursor (:class:`OpContext`), the filter's ``WHERE`` clause, and the history row written
next to each change of a learning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._postgres_broad import BroadState
from ._postgres_rows import dumps, learning_json
from ._postgres_search import json_text
from ._records import Change, Learning, LearningFilter, new_id, utcnow
from ._where import filter_where

if TYPE_CHECKING:
    import psycopg

__all__ = ["INSERT_HISTORY", "OpContext", "history_params", "where_sql"]


class OpContext:
    """What op functions share: the cursor, the cache of vector indexes, pgvector's features."""

    __slots__ = ("broad", "cur", "defer_indexes", "iterative_scan", "known_indexes")

    def __init__(
        self,
        cur: psycopg.Cursor[dict[str, Any]],
        known_indexes: set[tuple[str, int]],
        *,
        iterative_scan: bool = True,
        defer_indexes: bool = False,
        broad: BroadState | None = None,
    ) -> None:
        self.broad = broad
        self.cur = cur
        self.known_indexes = known_indexes
        self.iterative_scan = iterative_scan
        self.defer_indexes = defer_indexes

    def q(self, query: str, params: Any = None) -> psycopg.Cursor[dict[str, Any]]:
        """Execute ``query`` (built here from trusted pieces; values always as params)."""
        return self.cur.execute(query.encode(), params)


def where_sql(f: LearningFilter) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (alias ``l``) and its parameters for the filter ``f``."""
    return filter_where(f, param="%s", alias="l", json_text=json_text)


def history_params(
    learning_id: str, change: Change, old: Learning | None, new: Learning | None
) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_HISTORY` for one change of ``learning_id``."""
    row = new if new is not None else old
    return (
        new_id(),
        learning_id,
        change.action,
        None if old is None else dumps(learning_json(old), "history"),
        None if new is None else dumps(learning_json(new), "history"),
        dumps(change.actor, "Change.actor"),
        change.reason,
        change.turn_id,
        row.user_id if row is not None else None,
        utcnow(),
    )


#: One row of ``learning_history``; its parameters come from :func:`history_params`.
INSERT_HISTORY = (
    "INSERT INTO learning_history (id, learning_id, action, old, new, actor, reason, turn_id,"
    " user_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
