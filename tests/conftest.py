"""Shared fixtures: ``db`` runs a test once per backend (SQLite, then PostgreSQL).

The PostgreSQL side needs ``tests/_pg.py`` (``make_postgres_db()``) and the ``postgres`` extra;
without them that parameter is skipped, never failed.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from learning_machines.db import Db, SqliteDb


def _make_postgres_db() -> Db:
    try:
        pg = importlib.import_module("tests._pg")
    except ImportError as exc:
        if os.environ.get("LEARNING_MACHINES_REQUIRE_POSTGRES"):
            raise  # CI: the PostgreSQL backend is tested for real, never skipped
        pytest.skip(f"PostgreSQL tests need tests/_pg.py and the postgres extra: {exc}")
    db: Db = pg.make_postgres_db()
    return db


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """A fresh backend of each kind."""
    if request.param == "sqlite":
        backend: Db = SqliteDb(tmp_path / "learnings.db")
    else:
        backend = _make_postgres_db()
    try:
        yield backend
    finally:
        backend.close()
