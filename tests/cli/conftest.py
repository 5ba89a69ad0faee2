"""A folder holding what the demo wrote, shared by the CLI tests of a module (it takes seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from learning_machines.cli import app


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose ``learnings.db`` is the demo's (run through the CLI, offline)."""
    folder = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["demo", "--db", str(folder / "learnings.db")])
    assert result.exit_code == 0, result.output
    return folder
