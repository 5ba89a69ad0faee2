"""``learning-machines demo``: what a newcomer sees first, and where it leaves them."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from learning_machines import LearningMachine
from learning_machines.cli import app
from learning_machines.db import SqliteDb
from learning_machines.embedders import HashEmbedder

_ENV = {"LEARNING_MACHINES_MODEL": None, "LEARNING_MACHINES_DB": None}


def _flat(output: str) -> str:
    """The output as one line of words, without the boxes drawn around panels."""
    return " ".join(output.translate({ord(c): " " for c in "│╭╮╰╯─┃"}).split())


def _explore_commands(output: str) -> list[list[str]]:
    tail = output.split("Explore what the demo wrote:", 1)[1]
    return [shlex.split(line)[1:] for line in tail.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("demo-default")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        result = CliRunner(env=_ENV).invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    return folder, result.output


def test_the_demo_shows_what_the_library_does(demo: tuple[Path, str]) -> None:
    _, output = demo
    flat = _flat(output)
    assert "scripted model" in output  # the stand-in is labelled
    assert "Alice's profile: private to her" in output
    assert "Name: Alice Chen" in output
    # A PROPOSE write waits, then Alice's "yes" in her next message approves it.
    assert "tool save_learning → proposed as" in flat
    assert "nothing is saved until Alice says yes" in flat
    assert "tool approve_proposal → approved" in flat
    # Her shared insight reaches Bob; her private preferences do not.
    recalled = flat.split("What Bob's agent recalled", 1)[1].split("Alice's private", 1)[0]
    assert "batches of 10k rows" in recalled
    assert "vegetarian" not in recalled
    assert "Alice's private preferences in Bob's context: no" in flat
    # A newer fact supersedes an older one; curation says what it changed and would change.
    assert "Acme: runs billing on MySQL 5.7 (superseded by a newer fact)" in flat
    assert "runs billing on PostgreSQL 16" in recalled
    assert "Now: curation examined" in flat
    assert "A year from now" in flat
    assert "Extraction calls: 7 for 7 turns (one per turn for all stores)" in flat


def test_the_demo_ends_with_commands_that_work_on_what_it_wrote(
    demo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, output = demo
    commands = _explore_commands(output)
    assert ["show", "--user", "alice"] in commands  # the default db: no --db needed
    assert any(c[0] == "history" for c in commands)
    monkeypatch.chdir(folder)
    for command in commands:
        result = CliRunner(env=_ENV).invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
    history = CliRunner(env=_ENV).invoke(app, next(c for c in commands if c[0] == "history"))
    assert "supersede" in history.output  # the id printed is the superseded fact's


def test_show_after_the_demo_reads_the_same_default_db(
    demo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = demo
    monkeypatch.chdir(folder)
    result = CliRunner(env=_ENV).invoke(app, ["show", "--user", "alice"])
    assert result.exit_code == 0, result.output
    assert "Alice Chen" in result.output
    assert sorted(p.name for p in folder.glob("*.db")) == ["learnings.db"]


def test_what_the_demo_wrote_shows_each_message_once_and_titles_once(
    demo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Episodes used to be shown twice (the text indexed with the message before it), and an
    # insight repeated its title in its body.
    folder, output = demo
    monkeypatch.chdir(folder)
    result = CliRunner(env={**_ENV, "COLUMNS": "80"}).invoke(app, ["show", "--user", "alice"])
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    for message in ("alice: Acme runs billing on MySQL 5.7.", "assistant: Saved for the"):
        assert shown.count(message) == 1, message
    assert shown.count("Backfill large tables in batches") == 1
    learned = _flat(output).split("Shared with the 'engineering' namespace", 1)[1]
    assert learned.count("Backfill large tables in batches") == 1


def test_running_the_demo_again_starts_over(tmp_path: Path) -> None:
    path = str(tmp_path / "demo.db")
    first = CliRunner(env=_ENV).invoke(app, ["demo", "--db", path])
    second = CliRunner(env=_ENV).invoke(app, ["demo", "--db", path])
    assert second.exit_code == 0, second.output
    assert "Extraction calls: 7 for 7 turns" in _flat(second.output)
    # Nothing doubled: the same learnings as the first run.
    count = "Episodic memory keeps the"
    assert _flat(first.output).split(count)[1][:4] == _flat(second.output).split(count)[1][:4]
    proposals = CliRunner(env=_ENV).invoke(
        app, ["proposals", "list", "--status", "all", "--json", "--db", path]
    )
    assert proposals.output.count('"status": "approved"') == 1
    assert "--db" in _explore_commands(second.output)[0]  # the printed commands find this db


def test_the_demo_never_touches_a_db_where_its_users_talked_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    machine = LearningMachine(
        db=SqliteDb(path), embedder=HashEmbedder(), episodic_memory=True, background=False
    )
    machine.process("my real conversation", user_id="alice", session_id="work-1")
    machine.wait_idle()

    result = CliRunner(env=_ENV).invoke(app, ["demo", "--db", str(path)])

    assert result.exit_code == 2
    assert "conversations of 'alice' that the demo did not write" in _flat(result.output)
    assert "--db demo.db" in result.output
    kept = machine.service.learnings(user_id="alice")
    assert [r.content.get("text") for r in kept] == ["my real conversation"]
