"""The retrieval benchmark on PostgreSQL, where every system shares one database."""

from __future__ import annotations

from pathlib import Path

import pytest

from learning_machines.bench.retrieval import PG_URL_ENV, run_retrieval


def test_each_system_and_each_run_keeps_its_own_rows_on_postgres(
    locomo_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    psycopg = pytest.importorskip("psycopg")
    from tests import _pg

    uri = _pg.fresh_database_uri()
    monkeypatch.setenv(PG_URL_ENV, uri)
    for run in ("first", "second"):
        run_retrieval(
            locomo_file,
            out_dir=tmp_path / run,
            quick=True,
            backend="postgres",
            embedder="hash",
            plot=False,
        )
    with psycopg.connect(uri) as conn:
        rows = conn.execute(
            "SELECT user_id, search_text FROM learnings WHERE learning_type = 'episode'"
        ).fetchall()
    users = {user for user, _ in rows}
    # two runs x two conversations x (episodic memory, plain baseline)
    assert len(users) == 8
    for user in users:
        texts = [text for u, text in rows if u == user]
        has_context = any(" | " in text for text in texts)
        # episodic memory indexes the previous turn with each turn; the plain baseline does not
        assert has_context == (not user.endswith("-plain")), user
