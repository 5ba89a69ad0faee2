"""Forget steps: the layers above curation scrub their shared rows through a registry.

Curation imports nothing from feedback or self-improvement; they register what ``forget`` must
scrub. These tests prove the registrations are there in a fresh process that imports only the
curator (so nobody depends on having imported feedback first), that a step runs before the
purge and is reported under its name, and that a failing step purges nothing (both backends).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from learning_machines import LearningMode
from learning_machines.curation import (
    Curator,
    ForgetRequest,
    forget_steps,
    register_forget_step,
)
from learning_machines.curation import _forget as forget_module
from learning_machines.db import Db, LearningFilter, ListLearnings, PutLearning, SqliteDb
from learning_machines.exceptions import ConfigurationError
from learning_machines.feedback import LessonConfig
from learning_machines.improvement import IMPROVEMENT_NAMESPACE

from ..feedback.test_lessons import _agent, _fail, _lessons
from ..improvement._helpers import agent as improvement_agent
from ..improvement.test_reflection_and_gate import failed_deploys
from ._helpers import CREATE, active, note

ROOT = Path(__file__).resolve().parents[2]

# Only the curator (and a backend and embedder to hand it) is imported here.
_FORGET = """
import asyncio, json, sys
from learning_machines.curation import Curator
from learning_machines.embedders import HashEmbedder
kind, where, user = sys.argv[1:4]
if kind == "sqlite":
    from learning_machines.db import SqliteDb as Backend
else:
    from learning_machines.db import PostgresDb as Backend
db = Backend(where)
try:
    print(json.dumps(asyncio.run(Curator(db=db, embedder=HashEmbedder()).aforget(user))))
finally:
    db.close()
"""


def _forget_in_a_fresh_process(db: Db, user_id: str) -> dict[str, int]:
    if isinstance(db, SqliteDb):
        kind, where = "sqlite", str(db.path)
    else:
        kind, where = "postgres", db._pool._conninfo  # type: ignore[attr-defined]
    done = subprocess.run(
        [sys.executable, "-c", _FORGET, kind, where, user_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    counts: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return counts


def test_a_process_that_imports_only_the_curator_scrubs_shared_lessons(db: Db) -> None:
    lessons = LessonConfig(
        namespace="team", min_sessions=3, min_users=2, shared_mode=LearningMode.BACKGROUND
    )
    bot, machine = _agent(db, lessons)
    for i in range(2):
        _fail(bot, "ann", f"a{i}", service=["billing-api", "search-api"][i])
    _fail(bot, "bob", "b1", service="ledger-api")
    [lesson] = _lessons(machine, namespace="team")
    assert lesson.content["example"]["user_id"] == "bob"

    counts = _forget_in_a_fresh_process(db, "bob")

    assert counts.get("lessons_scrubbed", 0) >= 2  # the lesson and its candidate
    [kept] = _lessons(machine, namespace="team")
    assert kept.status == "active"
    assert "bob" not in json.dumps(kept.content)
    assert "ledger-api" not in json.dumps(kept.content)
    for row in machine.service.learnings(namespace="team", learning_type="lesson_candidate"):
        assert "bob" not in json.dumps(row.content)


def test_a_process_that_imports_only_the_curator_uncites_improvement_evidence(db: Db) -> None:
    bot, learning = improvement_agent(db)
    failed = dict(
        zip(["ann", "bob", "cat"], failed_deploys(bot, ["ann", "bob", "cat"]), strict=True)
    )
    learning.wait_idle()
    [proposal] = learning.improve(agent_id="ops").proposals
    assert failed["ann"] in {e.turn_id for e in proposal.evidence}

    counts = _forget_in_a_fresh_process(db, "ann")

    assert counts.get("improvements_uncited", 0) >= 1
    evidence = {e.turn_id for e in learning.improvements.get(proposal.id).evidence}
    assert evidence == {failed["bob"], failed["cat"]}
    rows = db.run(
        ListLearnings(filter=LearningFilter(namespaces=(IMPROVEMENT_NAMESPACE,)), limit=None)
    )
    assert all(failed["ann"] not in str(r.content) for r in rows)


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry as it is, restored after the test (so a test's step never leaks)."""
    monkeypatch.setattr(forget_module, "_STEPS", dict(forget_module._STEPS))


@pytest.mark.usefixtures("steps")
def test_a_registered_step_runs_before_the_purge_and_is_reported_by_name(db: Db) -> None:
    for text in ("likes tea", "lives in Oslo"):
        db.run(PutLearning(learning=note(text, user_id="ann"), change=CREATE))
    seen: list[ForgetRequest] = []

    async def count_notes(request: ForgetRequest) -> int:
        seen.append(request)
        return len(active(request.db, request.user_id))  # still there: the purge comes after

    async def nothing(request: ForgetRequest) -> int:
        return 0

    register_forget_step("notes_seen", count_notes)
    register_forget_step("nothing_done", nothing)
    counts = Curator(db=db).forget("ann", keep_shared=False)

    assert counts["notes_seen"] == 2
    assert counts["learnings"] == 2  # the purge's own counts are kept beside the steps'
    assert "nothing_done" not in counts  # a step that changed nothing is not reported
    assert [(r.user_id, r.keep_shared, r.embedder) for r in seen] == [("ann", False, None)]
    assert active(db, "ann") == []


@pytest.mark.usefixtures("steps")
def test_a_failing_step_stops_the_forget_before_anything_is_purged(db: Db) -> None:
    db.run(PutLearning(learning=note("likes tea", user_id="ann"), change=CREATE))

    async def broken(request: ForgetRequest) -> int:
        raise RuntimeError("lessons unreachable")

    register_forget_step("broken_step", broken)
    with pytest.raises(RuntimeError, match="lessons unreachable"):
        Curator(db=db).forget("ann")
    assert [x.search_text for x in active(db, "ann")] == ["likes tea"]  # forget again later

    del forget_module._STEPS["broken_step"]
    assert Curator(db=db).forget("ann")["learnings"] == 1


@pytest.mark.usefixtures("steps")
def test_a_step_name_is_one_word_and_not_taken_by_another_step() -> None:
    async def mine(request: ForgetRequest) -> int:
        return 0

    async def theirs(request: ForgetRequest) -> int:
        return 0

    with pytest.raises(ConfigurationError, match="already registered"):
        register_forget_step("lessons_scrubbed", mine)
    for bad in ("", "two words", "lessons-scrubbed"):
        with pytest.raises(ConfigurationError, match="one word"):
            register_forget_step(bad, mine)
    register_forget_step("mine_scrubbed", mine)
    register_forget_step("mine_scrubbed", mine)  # the same module imported again: harmless
    with pytest.raises(ConfigurationError, match="already registered"):
        register_forget_step("mine_scrubbed", theirs)
    assert list(forget_steps())[-1] == "mine_scrubbed"
