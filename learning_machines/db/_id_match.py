"""SQL for :class:`~learning_machines.db.MatchIds`: ids starting with a prefix (pure, shared).

A prefix becomes a range on the id index (``prefix <= id < successor(prefix)``), so looking up a
short id reads a few index entries, not the table; an exact ``substr`` test keeps the answer
right under any collation. (Under a collation that does not order ids character by character,
a prefix of an odd hand-made id may be missed; generated ids are hex, and a whole id always
matches.)
"""

from __future__ import annotations

from typing import Any

from ._ops import MatchIds

__all__ = ["match_ids_sql"]

# (table, id column) per kind; learning ids also live on in history after a delete.
_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "learning": (("learnings", "id"), ("learning_history", "learning_id")),
    "proposal": (("proposals", "id"),),
    "history": (("learning_history", "id"),),
    "work": (("pending_work", "id"),),
}


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (or ``None``)."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return None
    return prefix[:-1] + chr(last + 1)


def match_ids_sql(op: MatchIds, *, param: str) -> tuple[str, list[Any]]:
    """``(sql, params)`` selecting the ids of ``op.kind`` that start with ``op.prefix``."""
    if op.kind not in _SOURCES:
        raise ValueError(f"unknown id kind {op.kind!r}; use one of {', '.join(_SOURCES)}")
    if not op.prefix:
        raise ValueError("MatchIds needs a non-empty prefix")
    upper = _successor(op.prefix)
    selects: list[str] = []
    params: list[Any] = []
    for table, column in _SOURCES[op.kind]:
        where = f"{column} >= {param}"
        params.append(op.prefix)
        if upper is not None:
            where += f" AND {column} < {param}"
            params.append(upper)
        where = f"({where}) OR {column} = {param}"
        params.append(op.prefix)
        selects.append(f"SELECT {column} AS id FROM {table} WHERE {where}")
    sql = (
        f"SELECT DISTINCT id FROM ({' UNION '.join(selects)}) AS candidates "
        f"WHERE substr(id, 1, {param}) = {param} ORDER BY id LIMIT {param}"
    )
    params.extend([len(op.prefix), op.prefix, op.limit])
    return sql, params
