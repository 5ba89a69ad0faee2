"""Each adapter's example runs offline, as a user runs it, on SQLite and on PostgreSQL.

Every example learns in one process and recalls in the next, on the same database.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "learnings.db")
    try:
        pg = importlib.import_module("tests._pg")
    except ImportError as exc:
        if os.environ.get("LEARNING_MACHINES_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL tests need tests/_pg.py and the postgres extra: {exc}")
    return str(pg.fresh_database_uri())


def _run(name: str, db_url: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), db_url],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    "name", ["pydantic_ai_capability.py", "langchain_agent.py", "openai_agents_session.py"]
)
def test_an_agent_example_recalls_in_the_next_run_what_the_first_taught(
    name: str, db_url: str
) -> None:
    lines = _run(name, db_url)
    assert lines[0] == "run 1: Nice to meet you."
    assert lines[1] == "run 2: You are Alice Chen, lead of the data platform team."


def test_the_langgraph_store_example_keeps_memories_per_user(db_url: str) -> None:
    assert _run("langgraph_store.py", db_url) == [
        "run 1: I'll remember that.",
        "run 2: I take my coffee black.",
        "bob: I don't know that yet.",
        "alice's learnings: [langgraph] {'text': 'I take my coffee black.'}",
    ]
