"""Every error case documented in docs/cli.md, run as written: one line (plus a hint at most).

The cases come from the markdown itself (the block after ``<!-- cli-errors -->``), so the
documented messages and the real ones cannot drift apart.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from learning_machines.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> list[tuple[list[str], list[str]]]:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    block = text.split("<!-- cli-errors -->", 1)[1].split("```console\n", 1)[1]
    block = block.split("\n```", 1)[0]
    cases: list[tuple[list[str], list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ learning-machines "):
            cases.append((shlex.split(line[2:])[1:], []))
        else:
            cases[-1][1].append(line)
    return cases


CASES = _documented()


def test_the_documented_block_was_found() -> None:
    assert len(CASES) >= 15  # a broken marker must not silently run nothing


# No model and no key: the documented cases are what a newcomer without either sees.
_ENV = {"LEARNING_MACHINES_MODEL": None, "OPENAI_API_KEY": None, "LEARNING_MACHINES_DB": None}


@pytest.mark.parametrize(("args", "expected"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_documented_error_is_one_line_and_says_what_the_docs_say(
    args: list[str], expected: list[str], demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(demo_dir)
    (demo_dir / "wrong.json").write_text("not json\n", encoding="utf-8")
    result = CliRunner(env=_ENV).invoke(app, args)

    lines = result.output.rstrip("\n").splitlines()
    assert result.exit_code != 0, result.output
    assert 1 <= len(lines) <= 3, result.output
    assert lines[0].startswith("error: ")
    assert len(lines) == len(expected), result.output
    for got, want in zip(lines, expected, strict=True):
        if want.endswith("…"):
            assert got.startswith(want[:-1]), (got, want)
        else:
            assert got == want


def test_debug_shows_the_traceback_instead(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(demo_dir)
    quiet = CliRunner(env=_ENV).invoke(app, ["history", "nosuchid"])
    assert quiet.exception is None or isinstance(quiet.exception, SystemExit)

    loud = CliRunner(env={**_ENV, "LEARNING_MACHINES_DEBUG": "1"}).invoke(
        app, ["history", "nosuchid"]
    )
    assert loud.exit_code != 0
    assert type(loud.exception).__name__ == "NotFoundError"


def test_debug_anywhere_on_the_command_line_of_the_installed_command(demo_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LEARNING_MACHINES_DEBUG",)}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "learning_machines.cli", "history", "nosuchid"]
    quiet = subprocess.run(command, cwd=demo_dir, capture_output=True, text=True, env=env)
    loud = subprocess.run(
        [*command, "--debug"], cwd=demo_dir, capture_output=True, text=True, env=env
    )

    assert quiet.returncode == 2
    assert quiet.stdout == ""
    assert quiet.stderr.startswith("error: no learning id starts with 'nosuchid'")
    assert "Traceback" not in quiet.stderr
    assert loud.returncode != 0
    assert "Traceback" in loud.stderr
    assert re.search(r"NotFoundError: no learning id starts with 'nosuchid'", loud.stderr)
