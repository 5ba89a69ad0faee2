"""``LearningMiddleware`` on LangChain's ``create_agent``, offline, with a fake tool model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from learning_machines import ValidationError
from learning_machines._messages import from_stored_json, to_chat_messages
from learning_machines.adapters import TurnScope
from learning_machines.adapters.langchain import LearningMiddleware
from learning_machines.db import Db, ListMessages

from ._langchain_fakes import FakeToolModel, profile_responder
from ._machines import agentic_machine, logging_machine


def _config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


def _say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _system(request: list[Any]) -> str:
    first = request[0]
    return first.text if isinstance(first, SystemMessage) else ""


def test_context_in_the_system_prompt_tools_and_learning_across_threads(db: Db) -> None:
    machine = agentic_machine(db)
    model = FakeToolModel(respond=profile_responder)
    agent = create_agent(
        model,
        system_prompt="You are helpful.",
        middleware=[LearningMiddleware(machine)],
        checkpointer=InMemorySaver(),
    )

    out = agent.invoke(_say("I'm Alice Chen."), _config("t1"), context={"user_id": "alice"})
    assert out["messages"][-1].text == "Noted."
    assert "update_user_profile" in model.bound[0]
    rows = db.run(ListMessages(session_id="t1", user_id="alice"))
    assert [r.user_message for r in rows] == ["I'm Alice Chen."]
    assert rows[0].assistant_message == "Noted."
    calls = [c for m in from_stored_json(rows[0].messages_json) for c in m.tool_calls]
    assert calls[0].name == "update_user_profile"
    assert calls[0].args == {"name": "Alice Chen"}
    assert calls[0].result is not None
    assert calls[0].result.startswith("saved")

    model.requests.clear()
    agent.invoke(_say("What's my name?"), _config("t2"), context={"user_id": "alice"})
    system = _system(model.requests[0])
    assert system.startswith("You are helpful.")
    assert "Alice Chen" in system  # learned in one thread, recalled in the next

    model.requests.clear()
    agent.invoke(_say("What's my name?"), _config("t3"), context={"user_id": "bob"})
    assert "Alice" not in _system(model.requests[0])


def test_a_thread_records_each_invocation_as_its_own_turn(db: Db) -> None:
    machine = agentic_machine(db)
    model = FakeToolModel(respond=profile_responder)
    agent = create_agent(
        model, middleware=[LearningMiddleware(machine)], checkpointer=InMemorySaver()
    )
    for text in ("I'm Ann Lee.", "Hi again", "Bye"):
        agent.invoke(_say(text), _config("thread"), context={"user_id": "ann"})
    rows = db.run(ListMessages(session_id="thread", user_id="ann"))
    assert [r.user_message for r in rows] == ["I'm Ann Lee.", "Hi again", "Bye"]
    assert [r.turn_index for r in rows] == [0, 1, 2]
    second = from_stored_json(rows[1].messages_json)
    assert [(m.role, m.content) for m in second] == [
        ("user", "Hi again"),
        ("assistant", "Hello."),
    ]  # only this invocation's messages, not the thread's earlier ones


async def test_async_agents_and_concurrent_users_keep_their_own_turns(db: Db) -> None:
    machine = agentic_machine(db)
    agent = create_agent(
        FakeToolModel(respond=profile_responder), middleware=[LearningMiddleware(machine)]
    )
    names = {f"user{i}": f"Person Number{i}" for i in range(6)}
    await asyncio.gather(
        *(
            agent.ainvoke(_say(f"I'm {name}."), context={"user_id": user})
            for user, name in names.items()
        )
    )
    for user, name in names.items():
        turn = await machine.abegin("who am I?", user_id=user, session_id="check")
        assert name in turn.learned.text
        assert not any(n in turn.learned.text for u, n in names.items() if u != user)


def test_bad_tool_arguments_go_back_to_the_model_and_write_nothing(db: Db) -> None:
    machine = agentic_machine(db)
    bad = {"name": "update_user_profile", "args": {"name": 42, "unknown": 1}, "id": "c1"}
    model = FakeToolModel(
        messages=iter([AIMessage(content="", tool_calls=[bad]), AIMessage(content="Sorry.")])
    )
    agent = create_agent(model, middleware=[LearningMiddleware(machine, user_id="cid")])
    out = agent.invoke(_say("I'm Cid."))
    reply = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert reply.status == "error"
    assert "bad arguments for tool update_user_profile" in reply.text
    assert out["messages"][-1].text == "Sorry."
    turn = machine.begin("who am I?", user_id="cid", session_id="x")
    assert "Cid" not in turn.learned.text  # nothing was saved


def test_the_agents_own_tools_still_run(db: Db) -> None:
    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    call = {"name": "weather", "args": {"city": "Oslo"}, "id": "w1"}
    model = FakeToolModel(
        messages=iter([AIMessage(content="", tool_calls=[call]), AIMessage(content="Sunny.")])
    )
    agent = create_agent(
        model, tools=[weather], middleware=[LearningMiddleware(agentic_machine(db), user_id="dee")]
    )
    out = agent.invoke(_say("Weather?"))
    assert any(isinstance(m, ToolMessage) and m.text == "sunny in Oslo" for m in out["messages"])
    assert set(model.bound[0]) >= {"weather", "update_user_profile"}


def test_a_failed_invocation_records_nothing(db: Db) -> None:
    def broken(messages: list[Any]) -> AIMessage:
        raise RuntimeError("provider down")

    agent = create_agent(
        FakeToolModel(respond=broken),
        middleware=[LearningMiddleware(agentic_machine(db), user_id="eve")],
        checkpointer=InMemorySaver(),
    )
    with pytest.raises(RuntimeError, match="provider down"):
        agent.invoke(_say("hi"), _config("t"))
    assert db.run(ListMessages(session_id="t", user_id="eve")) == []


def test_scope_from_the_runtime_and_refused_ids(db: Db) -> None:
    machine = agentic_machine(db)

    def scope(runtime: Any) -> TurnScope:
        return TurnScope(user_id=runtime.context["account"], context={"project_id": "apollo"})

    agent = create_agent(
        FakeToolModel(respond=profile_responder),
        middleware=[LearningMiddleware(machine, scope=scope)],
        checkpointer=InMemorySaver(),
    )
    agent.invoke(_say("hello"), _config("s"), context={"account": "acme"})
    assert db.run(ListMessages(session_id="s", user_id="acme"))

    with pytest.raises(ValidationError, match="user_id"):
        agent.invoke(_say("hello"), _config("s2"), context={"account": "a\x00b"})


def test_langchain_messages_convert_with_tool_calls_whole() -> None:
    chat = to_chat_messages(
        [
            SystemMessage(content="be brief"),
            HumanMessage(content=[{"type": "text", "text": "weather?"}]),
            AIMessage(content="", tool_calls=[{"name": "w", "args": {"c": "Oslo"}, "id": "1"}]),
            ToolMessage(content="sunny", tool_call_id="1", name="w"),
            AIMessage(content="Sunny."),
        ]
    )
    assert [m.role for m in chat] == ["user", "assistant", "tool", "assistant"]
    assert chat[0].content == "weather?"
    assert chat[1].tool_calls[0].args == {"c": "Oslo"}
    assert chat[1].tool_calls[0].result == "sunny"


def test_a_streamed_invocation_is_recorded(db: Db) -> None:
    machine = agentic_machine(db)
    agent = create_agent(
        FakeToolModel(respond=profile_responder),
        middleware=[LearningMiddleware(machine)],
        checkpointer=InMemorySaver(),
    )
    chunks = list(agent.stream(_say("I'm Una Moss."), _config("t"), context={"user_id": "una"}))
    assert chunks
    rows = db.run(ListMessages(session_id="t", user_id="una"))
    assert [(r.user_message, r.assistant_message) for r in rows] == [("I'm Una Moss.", "Noted.")]


def test_the_decision_log_gets_the_model_tokens_and_tool_calls(db: Db) -> None:
    machine = logging_machine(db)

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    meta = {"model_provider": "openai", "model_name": "gpt-4.1-mini"}
    calls = [
        {"name": "weather", "args": {"city": "Oslo"}, "id": "w1"},
        {"name": "update_user_profile", "args": {"name": "Dee"}, "id": "p1"},
    ]
    answers = [
        AIMessage(
            content="",
            tool_calls=calls,
            response_metadata=meta,
            usage_metadata={"input_tokens": 30, "output_tokens": 5, "total_tokens": 35},
        ),
        AIMessage(
            content="Sunny, Dee.",
            response_metadata=meta,
            usage_metadata={"input_tokens": 50, "output_tokens": 4, "total_tokens": 54},
        ),
    ]
    agent = create_agent(
        FakeToolModel(messages=iter(answers)),
        tools=[weather],
        middleware=[LearningMiddleware(machine, user_id="dee")],
    )
    agent.invoke(_say("I'm Dee; weather?"), _config("t"))
    [row] = db.run(ListMessages(session_id="t", user_id="dee"))
    record = machine.decisions.get(row.turn_id, user_id="dee").record
    by_name = {c.name: c for c in record.tool_calls}
    assert set(by_name) == {"weather", "update_user_profile"}
    assert (by_name["weather"].source, by_name["weather"].result) == ("app", "sunny in Oslo")
    assert by_name["update_user_profile"].source == "store"
    assert by_name["update_user_profile"].duration_ms is not None  # the stores' tools timed
    assert (record.model, record.input_tokens, record.output_tokens, record.requests) == (
        "openai:gpt-4.1-mini",
        80,
        9,
        2,
    )
    assert record.latency_ms is not None
