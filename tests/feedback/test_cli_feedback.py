"""``learning-machines feedback TURN_ID`` and ``decisions --user U`` on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from learning_machines import LearningMachine, LearningMode
from learning_machines.cli import _app
from learning_machines.db import SqliteDb
from learning_machines.embedders import HashEmbedder
from learning_machines.stores.decision_log import DecisionLogConfig

runner = CliRunner()


def _said(output: str) -> str:
    return " ".join(output.split())  # the console wraps long lines


def test_rate_a_turn_from_the_command_line(tmp_path: Path) -> None:
    path = str(tmp_path / "l.db")
    with SqliteDb(path) as db:
        machine = LearningMachine(
            db=db,
            embedder=HashEmbedder(),
            decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC),
            feedback=True,
            background=False,
        )
        turn = machine.begin("deploy billing-api", user_id="ann", session_id="s")
        turn.finish(["deploy billing-api", {"role": "assistant", "content": "Deployed."}])
        turn_id = turn.context.turn_id
        machine.close()

    result = runner.invoke(
        _app.app, ["feedback", turn_id, "--score", "-1", "--comment", "broke prod", "--db", path]
    )
    assert result.exit_code == 0, result.output
    assert f"turn {turn_id} of ann: explicit -1 by ann" in _said(result.output)
    assert "outcome now -1.00 (explicit)" in _said(result.output)

    wide = {"COLUMNS": "200"}
    result = runner.invoke(_app.app, ["decisions", "--user", "ann", "--db", path], env=wide)
    assert result.exit_code == 0, result.output
    assert "deploy billing-api" in result.output
    assert "bad (-1.00)" in result.output

    result = runner.invoke(
        _app.app, ["decisions", "--user", "ann", "--outcome", "bad", "--json", "--db", path]
    )
    assert result.exit_code == 0, result.output
    [listed] = json.loads(result.output)
    assert (listed["turn_id"], listed["verdict"]) == (turn_id, "bad")
    assert listed["record"]["outcome"]["comment"] == "broke prod"
    result = runner.invoke(
        _app.app, ["feedback", turn_id, "--score", "1", "--by", "lead", "--json", "--db", path]
    )
    assert result.exit_code == 0, result.output
    rated = json.loads(result.output)
    assert rated["signal"]["rater"] == "explicit:lead"
    assert rated["decision"]["verdict"] == "unclear"  # -1 and +1 from two raters

    for args, message in [
        (["feedback", turn_id, "--score", "3", "--db", path], "from -1"),
        (["feedback", "no-such-turn", "--score", "1", "--db", path], "no turn"),
        (["decisions", "--user", "ann", "--outcome", "meh", "--db", path], "outcome"),
    ]:
        result = runner.invoke(_app.app, args)
        assert result.exit_code == 2, result.output
        assert message in _said(result.output)
        assert result.output.startswith("error: ")  # one line, like every command
