"""``LearningSession`` with the OpenAI Agents SDK, offline with the SDK's own ``ScriptedModel``."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, Runner, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from learning_machines import UsageError
from learning_machines._messages import from_stored_json, to_chat_messages
from learning_machines.adapters.openai_agents import LearningSession
from learning_machines.db import Db, ListMessages

from ._machines import agentic_machine, logging_machine

set_tracing_disabled(True)  # no trace export: nothing leaves the machine


def _save_name(name: str, call_id: str = "c1") -> list[Any]:
    return [
        [function_call("update_user_profile", {"name": name}, call_id=call_id)],
        [assistant_message("Noted.")],
    ]


async def _run(session: LearningSession, model: ScriptedModel, text: str, **agent: Any) -> Any:
    base = Agent(name="assistant", instructions="You are helpful.", model=model, **agent)
    return await Runner.run(await session.aagent(base), text, session=session)


async def test_a_run_learns_and_the_next_session_recalls_it(db: Db) -> None:
    machine = agentic_machine(db)
    model = ScriptedModel(_save_name("Alice Chen"))
    first = LearningSession(machine, session_id="s1", user_id="alice")
    result = await _run(first, model, "I'm Alice Chen.")
    assert result.final_output == "Noted."
    assert first.turn is None  # the answer finished the turn
    assert "update_user_profile" in [t.name for t in model.calls[0].tools]

    rows = await db.arun(ListMessages(session_id="s1", user_id="alice"))
    assert [(r.user_message, r.assistant_message) for r in rows] == [("I'm Alice Chen.", "Noted.")]
    calls = [c for m in from_stored_json(rows[0].messages_json) for c in m.tool_calls]
    assert calls[0].args == {"name": "Alice Chen"}
    assert calls[0].result is not None
    assert calls[0].result.startswith("saved")

    model = ScriptedModel([[assistant_message("You are Alice Chen.")]])
    await _run(LearningSession(machine, session_id="s2", user_id="alice"), model, "Who am I?")
    instructions = model.calls[0].system_instructions or ""
    assert instructions.startswith("You are helpful.")
    assert "Alice Chen" in instructions

    model = ScriptedModel([[assistant_message("I don't know.")]])
    await _run(LearningSession(machine, session_id="s3", user_id="bob"), model, "Who am I?")
    assert "Alice" not in (model.calls[0].system_instructions or "")


async def test_history_comes_back_as_items_with_tool_calls_paired(db: Db) -> None:
    machine = agentic_machine(db)
    session = LearningSession(machine, session_id="s", user_id="ann")
    await _run(session, ScriptedModel(_save_name("Ann Lee")), "I'm Ann Lee.")
    model = ScriptedModel([[assistant_message("Hello again.")]])
    await _run(session, model, "Hi again")
    sent = model.calls[0].input
    assert [item.get("type", item.get("role")) for item in sent] == [
        "user",
        "function_call",
        "function_call_output",
        "assistant",
        "user",
    ]
    assert sent[1]["call_id"] == sent[2]["call_id"] == "c1"
    rows = await db.arun(ListMessages(session_id="s", user_id="ann"))
    assert [r.turn_index for r in rows] == [0, 1]

    # The same session id of another user is another conversation.
    assert await LearningSession(machine, session_id="s", user_id="bob").get_items() == []


async def test_bad_tool_arguments_go_back_to_the_model(db: Db) -> None:
    machine = agentic_machine(db)
    session = LearningSession(machine, session_id="s", user_id="cid")
    model = ScriptedModel(
        [
            [function_call("update_user_profile", {"name": 42, "x": 1}, call_id="c1")],
            [function_call("update_user_profile", "not json", call_id="c2")],
            [assistant_message("Sorry.")],
        ]
    )
    await _run(session, model, "I'm Cid.")
    outputs = [i["output"] for i in model.calls[2].input if i.get("type") == "function_call_output"]
    assert outputs[0].startswith("error: bad arguments for tool update_user_profile")
    assert outputs[1].startswith("error: the arguments are not JSON")
    turn = await machine.abegin("who am I?", user_id="cid", session_id="x")
    assert "Cid" not in turn.learned.text


async def test_a_run_that_ends_on_a_tool_result_is_finished_by_the_next_input(db: Db) -> None:
    machine = agentic_machine(db)
    session = LearningSession(machine, session_id="s", user_id="dee")
    model = ScriptedModel([[function_call("update_user_profile", {"name": "Dee"}, call_id="c1")]])
    await _run(session, model, "I'm Dee.", tool_use_behavior="stop_on_first_tool")
    assert session.turn is not None  # no answer yet: the turn is still open
    assert await db.arun(ListMessages(session_id="s", user_id="dee")) == []

    await _run(session, ScriptedModel([[assistant_message("Hi Dee.")]]), "Hello")
    rows = await db.arun(ListMessages(session_id="s", user_id="dee"))
    assert [r.user_message for r in rows] == ["I'm Dee.", "Hello"]


async def test_finished_turns_are_kept(db: Db) -> None:
    machine = agentic_machine(db)
    session = LearningSession(machine, session_id="s", user_id="eve")
    assert await session.pop_item() is None  # nothing yet
    await _run(session, ScriptedModel([[assistant_message("Hi.")]]), "Hello")
    with pytest.raises(UsageError, match="cannot be popped"):
        await session.pop_item()
    with pytest.raises(UsageError, match="start a new session_id"):
        await session.clear_session()
    assert len(await session.get_items()) == 2
    assert await session.get_items(limit=1) == [{"role": "assistant", "content": "Hi."}]


async def test_the_turn_in_progress_can_be_popped_and_is_then_never_recorded(db: Db) -> None:
    session = LearningSession(agentic_machine(db), session_id="s", user_id="fay")
    await session.add_items([{"role": "user", "content": "typo"}])
    assert session.turn is not None
    assert await session.pop_item() == {"role": "user", "content": "typo"}
    assert session.turn is None
    await session.add_items([{"role": "user", "content": "never mind"}])
    await session.clear_session()  # nothing finished yet: clearing the turn in progress works
    assert session.turn is None
    await session.afinish_turn()
    assert await db.arun(ListMessages(session_id="s", user_id="fay")) == []


async def test_instructions_without_the_session_in_the_run_say_what_to_do(db: Db) -> None:
    session = LearningSession(agentic_machine(db), session_id="s", user_id="gil")
    agent = await session.aagent(Agent(name="a", model=ScriptedModel([[assistant_message("x")]])))
    with pytest.raises(UsageError, match="pass session=this LearningSession"):
        await Runner.run(agent, "hi")  # the session was not given to the run


def test_responses_items_convert_with_tool_calls_whole() -> None:
    chat = to_chat_messages(
        [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "1", "name": "w", "arguments": '{"c": "Oslo"}'},
            {"type": "function_call_output", "call_id": "1", "output": "sunny"},
            {"type": "reasoning", "id": "r", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Sunny.", "annotations": []}],
            },
        ]
    )
    assert [(m.role, m.content) for m in chat] == [
        ("user", "weather?"),
        ("assistant", ""),
        ("tool", "sunny"),
        ("assistant", "Sunny."),
    ]
    assert chat[1].tool_calls[0].args == {"c": "Oslo"}
    assert chat[1].tool_calls[0].result == "sunny"


async def test_refused_input_is_not_kept_and_bad_ids_fail_at_once(db: Db) -> None:
    from learning_machines import ValidationError

    with pytest.raises(ValidationError, match="user_id"):
        LearningSession(agentic_machine(db), session_id="s", user_id="")
    session = LearningSession(agentic_machine(db), session_id="s", user_id="hal")
    with pytest.raises(ValidationError, match="lone surrogate"):
        await session.add_items([{"role": "user", "content": "bad \ud800 text"}])
    assert await session.get_items() == []
    await _run(session, ScriptedModel([[assistant_message("Hi.")]]), "Hello")
    rows = await db.arun(ListMessages(session_id="s", user_id="hal"))
    assert [r.user_message for r in rows] == ["Hello"]


async def test_a_streamed_run_learns_too(db: Db) -> None:
    # A streamed run asks for its instructions before it adds its input to the session.
    machine = agentic_machine(db)
    session = LearningSession(machine, session_id="s", user_id="ida")
    model = ScriptedModel(_save_name("Ida Berg"))
    agent = await session.aagent(Agent(name="assistant", model=model))
    streamed = Runner.run_streamed(agent, "I'm Ida Berg.", session=session)
    async for _ in streamed.stream_events():
        pass
    assert streamed.final_output == "Noted."
    rows = await db.arun(ListMessages(session_id="s", user_id="ida"))
    assert [(r.user_message, r.assistant_message) for r in rows] == [("I'm Ida Berg.", "Noted.")]
    turn = await machine.abegin("who am I?", user_id="ida", session_id="t")
    assert "Ida Berg" in turn.learned.text


async def test_the_decision_log_gets_the_run_and_the_tool_calls(db: Db) -> None:
    machine = logging_machine(db)
    session = LearningSession(machine, session_id="s", user_id="eve")
    model = ScriptedModel(_save_name("Eve"))
    result = await _run(session, model, "I'm Eve.")
    [row] = await db.arun(ListMessages(session_id="s", user_id="eve"))
    record = (await machine.decisions.aget(row.turn_id, user_id="eve")).record
    [call] = record.tool_calls
    assert (call.name, call.source) == ("update_user_profile", "store")
    assert call.duration_ms is not None
    assert record.model == "ScriptedModel"  # a Model object without a name: its kind
    assert record.requests == result.context_wrapper.usage.requests == 2
    assert record.input_tokens == result.context_wrapper.usage.input_tokens
    assert record.latency_ms is not None
