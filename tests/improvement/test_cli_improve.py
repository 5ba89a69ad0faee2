"""``learning-machines improve`` and ``improvements ...`` on a SQLite file, as a reviewer would."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from learning_machines.cli import _app
from learning_machines.db import SqliteDb

from ._helpers import agent
from .test_reflection_and_gate import failed_deploys

runner = CliRunner()
WIDE = {"COLUMNS": "250"}
MACHINE = "tests.improvement._cli_machine:build"


def _said(output: str) -> str:
    return " ".join(output.split())


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(_app.app, list(args), env=WIDE)
    return result.exit_code, result.output


def test_reflect_review_approve_measure_and_roll_back_from_the_command_line(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "l.db")
    with SqliteDb(path) as db:
        bot, learning = agent(db)
        failed_deploys(bot, ["ann", "bob", "cat"])
        learning.wait_idle()
        learning.close()
    common = ("--db", path, "--machine", MACHINE)

    code, out = _run("improve", "--agent", "ops", *common)
    assert code == 0, out
    assert "1 offered for approval" in _said(out)
    [proposal_id] = re.findall(r"\b([0-9a-f]{32})\b", out)

    code, out = _run("improvements", "list", *common)
    assert code == 0, out
    assert proposal_id in out
    assert "pending" in out

    code, out = _run("improvements", "show", proposal_id, *common)
    assert code == 0, out
    assert "Stop deploying with strategy all_at_once" in _said(out)
    assert "deploy svc-ann to production" in out
    assert 'deploy(strategy="canary")' in out

    code, out = _run("improvements", "approve", proposal_id, "--by", "ann", *common)
    assert code == 2
    assert "cannot approve it alone" in _said(out)

    code, out = _run("improvements", "approve", "zzzz", "--by", "rita", *common)
    assert code != 0
    assert "no learning id starts with 'zzzz'" in _said(out)

    # A unique start of the id is enough, as with the other commands.
    code, out = _run("improvements", "approve", proposal_id[:8], "--by", "rita", *common)
    assert code == 0, out
    assert proposal_id in out
    [version] = re.findall(r"now at version (v[0-9a-f]{12})", out)

    code, out = _run("improvements", "instructions", "--agent", "ops", *common)
    assert code == 0, out
    assert f"version {version}" in out
    assert "- Stop deploying with strategy all_at_once" in out

    code, out = _run("improvements", "history", "--agent", "ops", *common)
    assert code == 0, out
    assert "approve" in out
    assert "rita" in out
    [base] = re.findall(r"\b(v[0-9a-f]{12})\b", out.replace(version, ""))

    code, out = _run("improvements", "effect", version, *common)
    assert code == 0, out
    assert "before" in out
    assert "1.00" in out  # every deploy before the rule went wrong

    code, out = _run("improvements", "rollback", base, "--by", "oncall", "--agent", "ops", *common)
    assert code == 0, out
    assert f"rolled back from {version} to {base} by oncall" in _said(out)

    code, out = _run("improvements", "reject", proposal_id, "--by", "rita", *common)
    assert code == 2
    assert "already approved" in _said(out)
    code, out = _run("improvements", "list", "--status", "meh", *common)
    assert code == 2
    assert "status must be one of" in _said(out)
