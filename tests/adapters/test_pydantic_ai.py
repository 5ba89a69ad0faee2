"""``LearningCapability`` on a plain pydantic-ai ``Agent`` (offline, with ``FunctionModel``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai import messages as pa
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

from learning_machines import LearningMachine, UsageError, ValidationError
from learning_machines._messages import from_stored_json
from learning_machines.adapters import TurnScope
from learning_machines.adapters.pydantic_ai import LearningCapability, load_history
from learning_machines.db import Db, ListMessages
from learning_machines.embedders import HashEmbedder

from ._machines import agentic_machine, logging_machine


@dataclass
class Deps:
    user_id: str
    team: str = "data"


def _profile_model(seen: list[AgentInfo]) -> FunctionModel:
    """Saves the name the user gives ("I'm NAME."), then answers with what it was told."""

    def reply(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        seen.append(info)
        last = messages[-1]
        prompt = next((p.content for p in last.parts if isinstance(p, pa.UserPromptPart)), None)
        if isinstance(prompt, str) and prompt.startswith("I'm "):
            name = prompt.removeprefix("I'm ").rstrip(".")
            call = pa.ToolCallPart("update_user_profile", {"name": name}, tool_call_id="c1")
            return pa.ModelResponse(parts=[call])
        return pa.ModelResponse(parts=[pa.TextPart("Noted.")])

    async def stream(messages: list[pa.ModelMessage], info: AgentInfo) -> AsyncIterator[Any]:
        response = reply(messages, info)
        for part in response.parts:
            if isinstance(part, pa.ToolCallPart):
                args = json.dumps(part.args_as_dict())
                yield {0: DeltaToolCall(part.tool_name, args, tool_call_id=part.tool_call_id)}
            elif isinstance(part, pa.TextPart):
                yield part.content

    return FunctionModel(reply, stream_function=stream)


async def test_any_agent_recalls_uses_the_turn_tools_and_learns_across_runs(db: Db) -> None:
    machine = agentic_machine(db)
    seen: list[AgentInfo] = []
    agent = Agent(
        _profile_model(seen),
        deps_type=Deps,
        instructions="You are helpful.",
        capabilities=[LearningCapability(machine)],
    )

    first = await agent.run("I'm Alice Chen.", deps=Deps(user_id="alice"), conversation_id="s1")
    assert first.output == "Noted."
    assert "update_user_profile" in [t.name for t in seen[0].function_tools]
    rows = await db.arun(ListMessages(session_id="s1", user_id="alice"))
    assert [r.user_message for r in rows] == ["I'm Alice Chen."]
    calls = [c for m in from_stored_json(rows[0].messages_json) for c in m.tool_calls]
    assert calls[0].name == "update_user_profile"
    assert calls[0].result is not None
    assert calls[0].result.startswith("saved")

    seen.clear()
    await agent.run("What's my name?", deps=Deps(user_id="alice"), conversation_id="s2")
    assert seen[0].instructions is not None
    assert seen[0].instructions.startswith("You are helpful.")
    assert "Alice Chen" in seen[0].instructions  # recalled in the next run, another session

    seen.clear()
    await agent.run("What's my name?", deps=Deps(user_id="bob"), conversation_id="s3")
    assert "Alice" not in (seen[0].instructions or "")  # bob's run never sees alice's profile


async def test_concurrent_runs_of_one_agent_keep_their_own_turn_and_user(db: Db) -> None:
    machine = agentic_machine(db)
    agent = Agent(_profile_model([]), deps_type=Deps, capabilities=[LearningCapability(machine)])
    names = {f"user{i}": f"Person Number{i}" for i in range(6)}
    await asyncio.gather(
        *(
            agent.run(f"I'm {name}.", deps=Deps(user_id=user), conversation_id=f"c-{user}")
            for user, name in names.items()
        )
    )
    for user, name in names.items():
        turn = await machine.abegin("who am I?", user_id=user, session_id="check")
        assert name in turn.learned.text
        others = [n for u, n in names.items() if u != user]
        assert not any(other in turn.learned.text for other in others)


async def test_fixed_ids_win_over_scope_and_scope_over_deps(db: Db) -> None:
    machine = agentic_machine(db)

    def scope(ctx: Any) -> TurnScope:
        return TurnScope(user_id=f"team-{ctx.deps.team}", context={"project_id": "apollo"})

    scoped = Agent(
        _profile_model([]), deps_type=Deps, capabilities=[LearningCapability(machine, scope=scope)]
    )
    await scoped.run("hello", deps=Deps(user_id="alice"), conversation_id="a")
    assert await db.arun(ListMessages(session_id="a", user_id="team-data"))
    assert not await db.arun(ListMessages(session_id="a", user_id="alice"))

    fixed = Agent(
        _profile_model([]),
        deps_type=Deps,
        capabilities=[LearningCapability(machine, user_id="carol", session_id="b", scope=scope)],
    )
    await fixed.run("hello", deps=Deps(user_id="alice"), conversation_id="ignored")
    assert await db.arun(ListMessages(session_id="b", user_id="carol"))


async def test_a_run_level_capability_and_history_loaded_from_the_db(db: Db) -> None:
    machine = agentic_machine(db)
    agent = Agent(_profile_model([]))
    ids = {"user_id": "dan", "session_id": "chat"}
    await agent.run("first message", capabilities=[LearningCapability(machine, **ids)])
    history = await load_history(machine, turns=5, **ids)
    assert [type(m) for m in history] == [pa.ModelRequest, pa.ModelResponse]
    second = await agent.run(
        "second message", message_history=history, capabilities=[LearningCapability(machine, **ids)]
    )
    rows = await db.arun(ListMessages(session_id="chat", user_id="dan"))
    assert [r.user_message for r in rows] == ["first message", "second message"]
    assert [r.turn_index for r in rows] == [0, 1]
    assert second.output == "Noted."


async def test_a_failed_run_records_nothing(db: Db) -> None:
    machine = agentic_machine(db)

    def broken(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        raise RuntimeError("provider down")

    agent = Agent(FunctionModel(broken), capabilities=[LearningCapability(machine)])
    with pytest.raises(RuntimeError, match="provider down"):
        await agent.run("hi", deps=Deps(user_id="fay"), conversation_id="s")
    assert await db.arun(ListMessages(session_id="s", user_id="fay")) == []


async def test_bad_ids_are_refused_before_the_model_is_called(db: Db) -> None:
    seen: list[AgentInfo] = []

    @dataclass
    class NumericDeps:
        user_id: int

    agent = Agent(
        _profile_model(seen),
        deps_type=NumericDeps,
        capabilities=[LearningCapability(agentic_machine(db))],
    )
    with pytest.raises(ValidationError, match=r"user_id must be a string.*str\(42\)"):
        await agent.run("hi", deps=NumericDeps(user_id=42))
    assert seen == []


async def test_a_given_turn_serves_one_run_only(db: Db) -> None:
    machine = agentic_machine(db)
    seen: list[AgentInfo] = []
    agent = Agent(_profile_model(seen))
    turn = await machine.abegin("hello", user_id="erin", session_id="s")
    capability = LearningCapability(turn=turn)
    await agent.run("hello", capabilities=[capability])
    assert turn.finished
    assert len(seen) == 1
    with pytest.raises(UsageError, match="already finished"):
        await agent.run("again", capabilities=[capability])
    assert len(seen) == 1  # refused before the model was asked


async def test_structured_output_is_kept_as_the_answer(db: Db) -> None:
    class City(BaseModel):
        name: str

    def reply(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        tool = info.output_tools[0].name
        return pa.ModelResponse(parts=[pa.ToolCallPart(tool, {"name": "Lyon"})])

    machine = agentic_machine(db)
    agent = Agent(
        FunctionModel(reply), output_type=City, capabilities=[LearningCapability(machine)]
    )
    result = await agent.run("Where?", deps=Deps(user_id="gil"), conversation_id="geo")
    assert result.output == City(name="Lyon")
    rows = await db.arun(ListMessages(session_id="geo", user_id="gil"))
    assert json.loads(rows[0].assistant_message) == {"name": "Lyon"}


def test_constructor_says_what_it_takes() -> None:
    with pytest.raises(UsageError, match="not both or neither"):
        LearningCapability()
    with pytest.raises(UsageError, match="takes a LearningMachine, not str"):
        LearningCapability("openai:gpt-4.1-mini")  # type: ignore[arg-type]
    capability = LearningCapability(LearningMachine(background=False))
    with pytest.raises(UsageError, match="no turn yet"):
        _ = capability.turn


async def test_await_idle_from_the_apps_own_event_loop_while_learning_runs(db: Db) -> None:
    # The background worker runs on the library's own loop; an app awaiting await_idle() on
    # its loop used to contend for the worker's asyncio lock across loops and fail.
    from learning_machines.testing import ScriptedModel

    profile = {"user_profile": {"name": "Hana Ito"}}
    machine = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=profile, extraction_delay=0.3),
        embedder=HashEmbedder(),
        user_profile=True,
    )
    agent = Agent(_profile_model([]), deps_type=Deps, capabilities=[LearningCapability(machine)])
    for i in range(3):
        await agent.run(f"hello {i}", deps=Deps(user_id="hana"), conversation_id="s")
    await asyncio.sleep(0.05)  # the background runner has claimed work and holds the lock
    await machine.await_idle(timeout=20)
    turn = await machine.abegin("who am I?", user_id="hana", session_id="t")
    assert "Hana Ito" in turn.learned.text
    machine.close()


async def test_streamed_and_iterated_runs_are_recorded(db: Db) -> None:
    machine = agentic_machine(db)
    agent = Agent(_profile_model([]), deps_type=Deps, capabilities=[LearningCapability(machine)])
    async with agent.run_stream(
        "I'm Ivo Lind.", deps=Deps(user_id="ivo"), conversation_id="a"
    ) as run:
        await run.get_output()
    async with agent.iter("hello", deps=Deps(user_id="ivo"), conversation_id="b") as steps:
        async for _ in steps:
            pass
    assert [r.user_message for r in await db.arun(ListMessages(session_id="a", user_id="ivo"))] == [
        "I'm Ivo Lind."
    ]
    assert [r.user_message for r in await db.arun(ListMessages(session_id="b", user_id="ivo"))] == [
        "hello"
    ]
    turn = await machine.abegin("who am I?", user_id="ivo", session_id="c")
    assert "Ivo Lind" in turn.learned.text


async def test_the_decision_log_gets_the_run_and_every_tool_call_timed(db: Db) -> None:
    machine = logging_machine(db)

    def reply(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        if len(messages) == 1:  # both tools at once, then the answer
            return pa.ModelResponse(
                parts=[
                    pa.ToolCallPart("weather", {"city": "Oslo"}, tool_call_id="w1"),
                    pa.ToolCallPart("update_user_profile", {"name": "Ann"}, tool_call_id="p1"),
                ]
            )
        return pa.ModelResponse(parts=[pa.TextPart("Sunny, Ann.")])

    model = FunctionModel(reply)
    agent = Agent(
        model,
        deps_type=Deps,
        capabilities=[LearningCapability(machine, instructions_version="v3")],
    )

    @agent.tool_plain
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    await agent.run("I'm Ann; weather in Oslo?", deps=Deps(user_id="ann"), conversation_id="s")
    [row] = await db.arun(ListMessages(session_id="s", user_id="ann"))
    record = (await machine.decisions.aget(row.turn_id, user_id="ann")).record
    calls = {c.name: c for c in record.tool_calls}
    assert set(calls) == {"weather", "update_user_profile"}  # each kept once
    assert (calls["weather"].source, calls["weather"].result) == ("app", "sunny in Oslo")
    assert calls["update_user_profile"].source == "store"
    assert all(c.duration_ms is not None for c in calls.values())  # the app's tool timed too
    assert record.model == model.model_id
    assert record.requests == 2
    assert record.input_tokens
    assert record.output_tokens
    assert record.latency_ms is not None
    assert record.instructions_version == "v3"
