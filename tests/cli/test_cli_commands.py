"""The commands one by one: --json, help, --db checks, pending, reembed, forget, progress."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from learning_machines import __version__
from learning_machines._progress import progress
from learning_machines.cli import app
from learning_machines.db import (
    Change,
    ClaimWork,
    EnqueueWork,
    FailWork,
    Learning,
    PendingWork,
    PutLearning,
    SqliteDb,
    utcnow,
)
from learning_machines.embedders import HashEmbedder

_ENV = {"LEARNING_MACHINES_MODEL": None, "LEARNING_MACHINES_DB": None}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner(env=_ENV).invoke(app, list(args))
    return result.exit_code, result.output


def test_version() -> None:
    code, output = run("--version")
    assert code == 0
    assert output.strip() == f"learning-machines {__version__}"


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


@pytest.mark.parametrize(
    "path", [p for p, _ in _commands(get_command(app))], ids=lambda p: " ".join(p) or "root"
)
def test_help_explains_every_argument_without_type_tags(path: tuple[str, ...]) -> None:
    command = dict(_commands(get_command(app)))[path]
    for param in getattr(command, "params", []):
        assert getattr(param, "help", None), f"{' '.join(path)}: {param.name} has no help"
    code, output = run(*path, "--help")
    assert code == 0
    for tag in ("<str>", "<bool>", "<int>", "<float>", "<path>", "<list"):
        assert tag not in output, f"{' '.join(path)} --help shows {tag}"


def test_json_output_of_show_history_proposals_and_pending(demo_dir: Path) -> None:
    db = str(demo_dir / "learnings.db")
    code, output = run("show", "--user", "alice", "--json", "--db", db)
    assert code == 0
    rows = json.loads(output)
    profile = next(r for r in rows if r["learning_type"] == "user_profile")
    assert "Alice Chen" in profile["search_text"]
    assert "embedding" not in profile
    assert len(profile["id"]) == 32  # whole ids for scripts

    code, output = run("history", profile["id"][:6], "--json", "--db", db)
    assert code == 0
    assert json.loads(output)[0]["learning_id"] == profile["id"]

    code, output = run("proposals", "list", "--status", "all", "--json", "--db", db)
    assert code == 0
    (proposal,) = json.loads(output)
    assert proposal["namespace"] == "engineering"
    assert proposal["status"] == "approved"

    code, output = run("pending", "--status", "all", "--json", "--db", db)
    assert code == 0
    assert {w["status"] for w in json.loads(output)} == {"done"}

    code, output = run("curate", "--dry-run", "--json", "--db", db)
    assert code == 0
    report = json.loads(output)
    assert report["dry_run"] is True
    assert report["changed"] == len(report["merged"]) + len(report["superseded"]) + len(
        report["archived"]
    )


def test_a_mistyped_db_leaves_no_file_or_directory_behind(tmp_path: Path) -> None:
    code, _ = run("show", "--user", "a", "--db", str(tmp_path / "typo" / "deep" / "x.db"))
    assert code == 2
    code, _ = run("pending", "--db", str(tmp_path / "typo.db"))
    assert code == 2
    assert list(tmp_path.iterdir()) == []


def test_mkdir_creates_the_directory_when_asked(tmp_path: Path) -> None:
    export = tmp_path / "alice.json"
    with SqliteDb(tmp_path / "src.db") as db:
        db.run(
            PutLearning(
                learning=Learning(learning_type="note", user_id="alice", search_text="a note"),
                change=Change(action="create"),
            )
        )
    assert (
        run("export", "--user", "alice", "--out", str(export), "--db", str(tmp_path / "src.db"))[0]
        == 0
    )
    target = tmp_path / "new" / "dir" / "x.db"
    assert run("import", str(export), "--db", str(target))[0] == 2
    code, output = run("import", str(export), "--db", str(target), "--mkdir")
    assert code == 0, output
    assert "Imported alice" in output
    code, output = run("import", str(export), "--db", str(target))
    assert code == 0
    assert "Nothing new" in output  # a second import changes nothing


def test_pending_shows_why_work_failed(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with SqliteDb(path) as db:
        work = db.run(EnqueueWork(work=PendingWork(kind="extract", payload={}, user_id="u")))
        db.run(ClaimWork(worker_id="w", now=utcnow() + timedelta(seconds=1)))
        db.run(FailWork(id=work.id, worker_id="w", error="model said no\ntraceback lines"))

    code, output = run("pending", "--db", str(path))
    assert code == 0
    assert "failed" in output
    assert "model said no" in output
    assert "traceback lines" not in output  # the table shows the first line of the error
    code, output = run("pending", "--status", "failed", "--json", "--db", str(path))
    assert json.loads(output)[0]["last_error"] == "model said no\ntraceback lines"
    code, output = run("pending", "--status", "done", "--db", str(path))
    assert "No done learning work" in output


def test_reembed_moves_vectors_to_the_new_embedder_once(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    old = HashEmbedder(dimensions=16)
    with SqliteDb(path) as db:
        for user in ("a", "b"):
            db.run(
                PutLearning(
                    learning=Learning(
                        learning_type="note",
                        user_id=user,
                        search_text=f"note of {user}",
                        embedding=tuple(float(x) for x in old.embed([user])[0]),
                        embedder=old.name,
                    ),
                    change=Change(action="create"),
                )
            )
    code, output = run("reembed", "--embedder", "hash", "--db", str(path))
    assert code == 0, output
    assert "Re-embedded 2 learnings with hash-64" in " ".join(output.split())
    code, output = run("reembed", "--embedder", "hash", "--json", "--db", str(path))
    assert json.loads(output)["updated"] == 0


def test_forget_asks_with_what_it_will_delete_and_reports_what_it_did(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with SqliteDb(path) as db:
        db.run(
            PutLearning(
                learning=Learning(learning_type="note", user_id="u1", search_text="x"),
                change=Change(action="create"),
            )
        )
    result = CliRunner(env=_ENV).invoke(
        app, ["forget", "--user", "u1", "--db", str(path)], input="n\n"
    )
    assert result.exit_code != 0
    assert "1 learnings" in result.output  # the question says what would go
    code, output = run("forget", "--user", "u1", "--yes", "--json", "--db", str(path))
    assert code == 0
    assert json.loads(output)["deleted"]["learnings"] == 1
    assert run("forget", "--user", "u1", "--yes", "--db", str(path))[0] == 2  # now unknown


def test_show_of_an_unknown_user_says_so(demo_dir: Path) -> None:
    code, output = run("show", "--user", "nobody", "--db", str(demo_dir / "learnings.db"))
    assert code == 0
    assert "Nothing is known about user 'nobody'" in output


def test_progress_prints_plain_lines_off_a_terminal() -> None:
    out = io.StringIO()
    with progress("work", total=4, stream=out, interval=0.0) as bar:
        for _ in range(4):
            bar.advance()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("work: 1/4 (25%)")
    assert lines[-1].startswith("work: 4/4 (100%)")
    assert lines[-1].endswith("finished")

    quiet = io.StringIO()
    with progress("quick", total=3, stream=quiet) as bar:  # done within the interval
        bar.update(3)
    assert quiet.getvalue() == ""

    # Work that reports nothing itself still shows it is alive.
    silent = io.StringIO()
    with progress("waiting", stream=silent, interval=0.05, heartbeat=True):
        time.sleep(1.0)
    assert silent.getvalue().startswith("waiting: 0 done, ")


def test_expected_errors_of_any_command_are_one_line_unexpected_ones_name_the_bug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise TypeError("boom")

    monkeypatch.setattr("learning_machines.cli._inspect.open_machine", broken)
    code, output = run("pending")
    assert code == 1
    assert output.splitlines() == [
        "error: unexpected TypeError: boom",
        "hint: this is a bug; rerun with --debug (or LEARNING_MACHINES_DEBUG=1) and report the "
        "traceback",
    ]
