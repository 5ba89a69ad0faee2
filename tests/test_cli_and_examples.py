"""The command line and the shipped examples, run as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from learning_machines import LearningMachine
from learning_machines._demo import demo_extraction
from learning_machines.cli import app
from learning_machines.db import ListMessages, SqliteDb
from learning_machines.embedders import HashEmbedder
from learning_machines.testing import ScriptedModel

ROOT = Path(__file__).resolve().parents[1]


def _example(name: str) -> str:
    """Run ``examples/NAME`` as a user would; its output."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_custom_store_example_runs_and_project_id_reaches_the_store() -> None:
    stdout = _example("custom_store.py")
    assert "decided: we use PostgreSQL for Apollo" in stdout


def test_persistent_store_example_learns_into_the_db_and_another_process_sees_it() -> None:
    stdout = _example("persistent_store.py")
    assert "- decided: Apollo uses PostgreSQL" in stdout  # recalled by a fresh machine
    assert "history: create by {'store': 'project', 'user_id': 'u1'}" in stdout


def test_show_lists_what_is_known_about_a_user_and_nothing_of_others(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    machine = LearningMachine(
        db=SqliteDb(path),
        model=ScriptedModel(extraction=demo_extraction),
        user_profile=True,
        embedder=HashEmbedder(),
        background=False,
    )
    machine.process("I'm Alice Chen. I prefer dark mode.", user_id="alice", session_id="s")
    machine.process("I'm Bob Stone. I prefer light mode.", user_id="bob", session_id="t")
    machine.wait_idle(timeout=60)

    result = CliRunner().invoke(app, ["show", "--user", "alice", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert "Alice Chen" in result.output
    assert "dark mode" in result.output
    assert "Bob" not in result.output


def test_chat_needs_a_model_and_says_how_to_get_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LEARNING_MACHINES_MODEL"}
    result = CliRunner(env=env).invoke(app, ["chat", "--db", str(tmp_path / "c.db")])
    assert result.exit_code != 0
    assert "--model" in result.output


def test_chat_learns_from_an_interactive_session(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    result = CliRunner().invoke(
        app,
        ["chat", "--model", "test", "--user", "alice", "--session", "s1", "--db", str(path)],
        input="I'm Alice Chen and I lead the data team.\n/context\n/quit\n",
    )
    assert result.exit_code == 0, result.output
    assert "agent>" in result.output
    rows = SqliteDb(path).run(ListMessages(session_id="s1", user_id="alice"))
    assert [r.user_message for r in rows] == ["I'm Alice Chen and I lead the data team."]
