"""Shared helpers of the curation tests."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from learning_machines.db import Change, Db, Learning, LearningFilter, ListLearnings, SqliteDb

CREATE = Change(action="create", actor={"store": "test", "mode": "background"}, turn_id="t1")


def private(user_id: str, **extra: Any) -> LearningFilter:
    return LearningFilter(namespaces=("user",), reader_user_id=user_id, **extra)


def note(text: str, user_id: str = "alice", *, at: datetime | None = None, **kw: Any) -> Learning:
    times = {"created_at": at, "updated_at": at} if at is not None else {}
    return Learning(learning_type="note", user_id=user_id, search_text=text, **times, **kw)


def active(db: Db, user_id: str = "alice") -> list[Learning]:
    return db.run(ListLearnings(filter=private(user_id), limit=None))


def table_dump(db: Db) -> dict[str, list[str]]:
    """Every row of every table of the backend, as text."""
    out: dict[str, list[str]] = {}
    if isinstance(db, SqliteDb):
        conn = sqlite3.connect(db.path)
        try:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                out[table] = [repr(tuple(r)) for r in conn.execute(f'SELECT * FROM "{table}"')]
        finally:
            conn.close()
        return out
    import psycopg

    with psycopg.connect(db._pool._conninfo) as conn:  # type: ignore[attr-defined]
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        for table in tables:
            out[table] = [repr(r) for r in conn.execute(f'SELECT * FROM "{table}"')]
    return out
