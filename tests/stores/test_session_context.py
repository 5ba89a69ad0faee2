from __future__ import annotations

import inspect

import pytest

from learning_machines._modes import LearningMode
from learning_machines._tokens import estimate_tokens
from learning_machines.exceptions import ConfigurationError
from learning_machines.stores import (
    SessionContextConfig,
    SessionContextStore,
    SessionPlanUpdate,
    SessionSummaryUpdate,
)

from .conftest import all_rows, ctx, tool, tool_names


def make(bind, mode=LearningMode.AGENTIC, **kw):
    return bind(SessionContextConfig(mode=mode, **kw).create_store())


async def test_agentic_summary_only(bind):
    store = make(bind)
    update = tool(store, "update_session_context", **ctx())
    assert list(inspect.signature(update).parameters) == ["summary"]
    assert (await update(summary="Debugging a flaky CI job")).startswith("saved")
    data = await store.arecall(**ctx())
    assert store.build_context(data) == "## Current session\nSummary: Debugging a flaky CI job"


async def test_agentic_planning(bind, db):
    store = make(bind, enable_planning=True)
    update = tool(store, "update_session_context", **ctx())
    await update(goal="Ship v2", plan=["write tests", "fix bugs", "release"], summary="Plan v2")
    await update(progress=["write tests"])
    await update(progress=["fix bugs", "write tests"])
    text = store.build_context(await store.arecall(**ctx()))
    assert text.splitlines() == [
        "## Current session",
        "Summary: Plan v2",
        "Goal: Ship v2",
        "Plan:",
        "1. [x] write tests",
        "2. [x] fix bugs",
        "3. [ ] release",
        "Progress: write tests; fix bugs",
    ]
    [row] = await all_rows(db, "session_context")
    assert row.session_id == "s1"
    assert row.user_id == "alice"
    assert row.namespace == "user"
    assert row.provenance["session_id"] == "s1"
    assert row.provenance["mode"] == "agentic"


async def test_sessions_are_separate(bind):
    store = make(bind)
    await tool(store, "update_session_context", **ctx(session="s1"))(summary="one")
    await tool(store, "update_session_context", **ctx(session="s2"))(summary="two")
    assert (await store.arecall(**ctx(session="s1"))).summary == "one"
    assert (await store.arecall(**ctx(session="s2"))).summary == "two"
    assert await store.arecall(**ctx(session="s3")) is None


async def test_background_extraction_round_trip(bind):
    store = make(bind, mode=LearningMode.BACKGROUND, enable_planning=True)
    assert tool_names(store, **ctx()) == []
    spec = store.extraction(**ctx())
    assert spec is not None
    assert spec.output_type is SessionPlanUpdate
    assert spec.current_state == "(new session)"
    await store.aapply_extraction(
        SessionPlanUpdate(summary="Migrating to Postgres", goal="migrate", plan=["dump", "load"]),
        **ctx(),
    )
    await store.aapply_extraction(SessionPlanUpdate(progress=["dump"]), **ctx())
    data = await store.arecall(**ctx())
    assert data.summary == "Migrating to Postgres"
    assert data.progress == ["dump"]
    spec = await store.aextraction(**ctx())
    assert "1. [x] dump" in spec.current_state
    plain = make(bind, mode=LearningMode.BACKGROUND)
    assert (await plain.aextraction(**ctx())).output_type is SessionSummaryUpdate


async def test_planning_fields_ignored_without_planning(bind):
    store = make(bind, mode=LearningMode.BACKGROUND)
    await store.apply_write({"summary": "s", "goal": "g", "plan": ["a"]}, **ctx())
    data = await store.arecall(**ctx())
    assert data.goal is None
    assert data.plan == []
    assert store.build_context(data) == "## Current session\nSummary: s"


async def test_budget(bind):
    store = make(bind, enable_planning=True, max_tokens=25)
    await tool(store, "update_session_context", **ctx())(
        summary="x" * 40, plan=[f"step {i}" for i in range(50)]
    )
    text = store.build_context(await store.arecall(**ctx()))
    assert estimate_tokens(text) <= 25


@pytest.mark.parametrize("mode", [LearningMode.PROPOSE, LearningMode.HITL])
def test_approval_modes_refused(mode):
    with pytest.raises(ConfigurationError, match="cannot learn in mode"):
        SessionContextStore(SessionContextConfig(mode=mode))


async def test_needs_session_id(bind):
    store = make(bind)
    with pytest.raises(ConfigurationError, match="session_id"):
        await store.arecall(user_id="alice")
    assert await make(bind, mode=LearningMode.BACKGROUND).aextraction(user_id="alice") is None
