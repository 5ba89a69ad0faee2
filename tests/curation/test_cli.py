"""The curation commands of the CLI, on a SQLite file."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import typer
from typer.testing import CliRunner

from learning_machines.cli._curation import register
from learning_machines.db import Change, Learning, PutLearning, SqliteDb, utcnow

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_curate_history_restore_export_forget_import(tmp_path: Path) -> None:
    path = str(tmp_path / "l.db")
    old = utcnow() - timedelta(days=500)
    with SqliteDb(path) as db:
        stale = db.run(PutLearning(
            learning=Learning(learning_type="note", user_id="u1", search_text="An old note",
                              created_at=old, updated_at=old),
            change=Change(action="create", actor={"store": "cli-test"}),
        ))  # fmt: skip
    app = _app()

    result = runner.invoke(app, ["curate", "--db", path])
    assert result.exit_code == 0, result.output
    assert "1 archived" in result.output

    result = runner.invoke(app, ["history", stale.id, "--db", path])
    assert result.exit_code == 0, result.output
    assert "archive" in result.output

    result = runner.invoke(app, ["restore", stale.id, "--db", path])
    assert result.exit_code == 0, result.output
    assert "(active)" in result.output

    out = tmp_path / "u1.json"
    result = runner.invoke(app, ["export", "--user", "u1", "--out", str(out), "--db", path])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["learnings"][0]["id"] == stale.id

    result = runner.invoke(app, ["forget", "--user", "u1", "--db", path], input="n\n")
    assert result.exit_code != 0  # declined: nothing deleted
    result = runner.invoke(app, ["forget", "--user", "u1", "--db", path, "--yes"])
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["import", str(out), "--db", path])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["history", stale.id, "--db", path])
    assert "restore" in result.output
    assert "import" in result.output
