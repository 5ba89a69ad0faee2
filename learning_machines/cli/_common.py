"""Helpers shared by the CLI's commands."""

from __future__ import annotations

from ..db import Db, PostgresDb, SqliteDb

__all__ = ["DEFAULT_DB", "open_db"]

#: The database the CLI uses when ``--db`` is not given.
DEFAULT_DB = "learnings.db"


def open_db(url: str) -> Db:
    """Open ``url``: ``postgresql://`` gives :class:`PostgresDb`, anything else a SQLite file."""
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresDb(url)
    return SqliteDb(url)
