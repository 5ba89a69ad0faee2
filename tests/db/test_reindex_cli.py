"""``learning-machines reindex`` on a SQLite file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from learning_machines.cli._app import app
from learning_machines.db import Change, Learning, PutLearning, SqliteDb

runner = CliRunner()


def test_reindex_rebuilds_a_missing_index_file(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    with SqliteDb(path) as db:
        db.batch(
            [
                PutLearning(
                    learning=Learning(
                        learning_type="learned_knowledge",
                        namespace="global",
                        search_text=f"shared insight number {i}",
                    ),
                    change=Change(action="create"),
                )
                for i in range(1100)
            ]
            + [
                PutLearning(
                    learning=Learning(learning_type="note", namespace="team", search_text="x"),
                    change=Change(action="create"),
                )
            ]
        )
    folder = tmp_path / "cli.db-lmindex"
    assert not folder.exists()  # nothing searched yet: no index built
    result = runner.invoke(app, ["reindex", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert "global" in result.output
    assert "1,100" in result.output
    assert "none (small)" in result.output  # "team" stays in SQL
    assert len(list(folder.glob("*.lmx"))) == 1
    result = runner.invoke(app, ["reindex", "--db", str(path), "--namespace", "team"])
    assert result.exit_code == 0, result.output
    assert "global" not in result.output
