"""The typed turn without our Agent: begin → context → tools → finish, and the three wrappers."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import messages as pa
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.toolsets import FunctionToolset

from learning_machines import LearningMachine, LearningMode, TurnContext, ValidationError
from learning_machines._demo import demo_extraction
from learning_machines._messages import from_stored_json
from learning_machines.db import Db, GetMessage, LearningFilter, ListLearnings
from learning_machines.embedders import HashEmbedder
from learning_machines.stores import LearnedKnowledgeConfig, UserProfileConfig
from learning_machines.testing import ScriptedModel

from ._stores import NoteStore, notes_extraction


class CountingEmbedder(HashEmbedder):
    """Counts the texts it embeds (to show the message is embedded once per turn)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> Any:
        self.texts.extend(texts)
        return super().embed(texts)


def _proposal_id(text: str) -> str:
    match = re.search(r"proposed as (\w+)", text)
    assert match, text
    return match.group(1)


async def test_full_loop_with_begin_and_finish_and_chat_approval_a_turn_later(db: Db) -> None:
    machine = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=demo_extraction),
        embedder=HashEmbedder(),
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.PROPOSE, namespace="eng"),
        background=False,
    )
    first = await machine.abegin("Remember: pin every dependency.", user_id="ann", session_id="s")
    assert first.context.turn_index == 0
    assert {"search_learnings", "save_learning", "approve_proposal"} <= set(first.tools.names)
    said = await first.tools.acall(
        "save_learning", {"title": "Pin versions", "learning": "Pin every dependency."}
    )
    proposal_id = _proposal_id(said)
    await first.afinish(
        [
            {"role": "user", "content": "Remember: pin every dependency."},
            {"role": "assistant", "content": f"I proposed it ({proposal_id}). Confirm?"},
        ]
    )

    second = await machine.abegin("Yes, save it.", user_id="ann", session_id="s")
    assert second.context.turn_index == 1  # the machine numbers the session's turns itself
    answer = await second.tools.acall("approve_proposal", {"proposal_id": proposal_id})
    assert answer.startswith("approved"), answer
    await second.afinish([{"role": "user", "content": "Yes, save it."}])
    assert machine.proposals.get(proposal_id).status == "approved"

    bob = await machine.abegin("should I pin dependency versions?", user_id="bob", session_id="b")
    assert "Pin every dependency" in bob.learned.text


def test_wrappers_share_one_turn_so_chat_approval_works_without_our_agent(db: Db) -> None:
    machine = LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.PROPOSE, namespace="eng"),
        background=False,
    )
    ids = {"user_id": "ann", "session_id": "s"}
    machine.build_context(message="Remember: use UTC everywhere.", **ids)
    tools = {t.__name__: t for t in machine.get_tools(**ids)}
    proposal_id = _proposal_id(tools["save_learning"](title="UTC", learning="Use UTC everywhere."))
    machine.process(
        [
            {"role": "user", "content": "Remember: use UTC everywhere."},
            {"role": "assistant", "content": "Proposed; please confirm."},
        ],
        **ids,
    )
    # The README's "without our Agent" path, a turn later: the same three calls.
    machine.build_context(message="Yes, go ahead.", **ids)
    tools = {t.__name__: t for t in machine.get_tools(**ids)}
    answer = tools["approve_proposal"](proposal_id=proposal_id)
    machine.process([{"role": "user", "content": "Yes, go ahead."}], **ids)
    assert answer.startswith("approved"), answer
    assert machine.proposals.get(proposal_id).decided_by == "ann"


def test_sync_tools_from_get_tools_write_when_called_from_plain_code(db: Db) -> None:
    machine = LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        user_profile=UserProfileConfig(mode=LearningMode.AGENTIC),
        background=False,
    )
    tools = {t.__name__: t for t in machine.get_tools(user_id="alice", session_id="s")}
    out = tools["update_user_profile"](name="Alice Chen", role="data engineer")
    assert out.startswith("saved")
    context = machine.build_context(message="who am I?", user_id="alice", session_id="s2")
    assert "Alice Chen" in context.text
    assert "data engineer" in context.text


def test_recall_runs_once_per_turn_and_extraction_reuses_it(db: Db) -> None:
    embedder = CountingEmbedder()
    model = ScriptedModel(extraction=demo_extraction)
    machine = LearningMachine(
        db=db,
        model=model,
        embedder=embedder,
        user_profile=True,
        learned_knowledge=LearnedKnowledgeConfig(namespace="eng"),
        entity_memory=True,
        background=False,
    )
    message = "Lesson learned: Acme uses PostgreSQL; index foreign keys before backfills."
    turn = machine.begin(message, user_id="u", session_id="s")
    asked = list(embedder.texts)
    assert asked == [message]  # one embedding of the message, shared by every store
    recalls: list[str] = []
    for name in ("user_profile", "learned_knowledge", "entity_memory"):
        store = machine.stores[name]
        original = store.arecall

        async def counted(*, _name: str = name, _orig: Any = original, **context: Any) -> Any:
            recalls.append(_name)
            return await _orig(**context)

        store.arecall = counted
    turn.finish([{"role": "user", "content": message}, {"role": "assistant", "content": "ok"}])
    machine.wait_idle(timeout=60)
    assert model.extraction_calls == 1
    assert recalls == []  # extraction described itself from what the turn recalled
    assert message not in embedder.texts[len(asked) :]  # and never re-embedded the message


def test_a_worker_in_another_process_reuses_the_saved_embedding(db: Db) -> None:
    embedder = CountingEmbedder()
    app = LearningMachine(
        db=db, embedder=embedder, learned_knowledge=LearnedKnowledgeConfig(), background=False
    )
    message = "Tip: warm the cache before load tests."
    app.begin(message, user_id="u", session_id="s").finish([message])
    worker = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=demo_extraction),
        embedder=embedder,
        learned_knowledge=LearnedKnowledgeConfig(),
        background=False,
    )
    before = len(embedder.texts)
    worker.wait_idle(timeout=60)
    assert message not in embedder.texts[before:]


async def test_finish_writes_the_turn_once_with_tool_calls_kept_whole(db: Db) -> None:
    machine = LearningMachine(
        db=db, model=ScriptedModel(), embedder=HashEmbedder(), background=False
    )
    turn = await machine.abegin("weather in Oslo?", user_id="u", session_id="s")

    def model_fn(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        if not any(isinstance(p, pa.ToolReturnPart) for m in messages for p in m.parts):
            return pa.ModelResponse(
                parts=[pa.ToolCallPart("lookup", {"city": "Oslo"}, tool_call_id="call-7")]
            )
        return pa.ModelResponse(parts=[pa.TextPart("Sunny.")])

    def lookup(city: str) -> str:
        """Weather of a city."""
        return f"sunny in {city}"

    result = await PydanticAgent(FunctionModel(model_fn), tools=[lookup]).run("weather in Oslo?")
    await turn.afinish(result.new_messages())
    with pytest.raises(ValidationError, match="already finished"):
        await turn.afinish(result.new_messages())
    row = await db.arun(GetMessage(session_id="s", user_id="u", turn_id=turn.context.turn_id))
    assert row is not None
    assert row.assistant_message == "Sunny."
    (call,) = [c for m in from_stored_json(row.messages_json) for c in m.tool_calls]
    assert (call.name, call.args, call.call_id, call.result) == (
        "lookup",
        {"city": "Oslo"},
        "call-7",
        "sunny in Oslo",
    )


def test_turn_tools_adapt_to_every_framework(db: Db) -> None:
    machine = LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        user_profile=UserProfileConfig(mode=LearningMode.AGENTIC),
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.AGENTIC),
        background=False,
    )
    turn = machine.begin("hi", user_id="alice", session_id="s")
    openai = {t["function"]["name"]: t["function"] for t in turn.tools.schemas(style="openai")}
    assert set(openai) == {"update_user_profile", "search_learnings", "save_learning"}
    assert openai["save_learning"]["parameters"]["required"] == ["title", "learning"]
    for schema in openai.values():  # the model never chooses whose data it touches
        assert "user_id" not in schema["parameters"]["properties"]
        assert "namespace" not in schema["parameters"]["properties"]
    mcp = {t["name"]: t for t in turn.tools.schemas(style="mcp")}
    assert mcp["search_learnings"]["annotations"] == {"readOnlyHint": True}
    assert mcp["save_learning"]["annotations"] == {"readOnlyHint": False}
    assert json.dumps(mcp)  # plain JSON
    with pytest.raises(ValidationError, match="limit"):
        turn.tools.call("search_learnings", {"query": "x", "limit": 500})
    with pytest.raises(ValidationError, match="no tool named"):
        turn.tools.call("approve_proposal", {"proposal_id": "x"})

    async def drive() -> str:
        calls = iter([("save_learning", {"title": "T", "learning": "Prefer UTC."}), None])

        def model_fn(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
            step = next(calls)
            if step is None:
                return pa.ModelResponse(parts=[pa.TextPart("done")])
            return pa.ModelResponse(parts=[pa.ToolCallPart(step[0], step[1])])

        agent = PydanticAgent(FunctionModel(model_fn))
        toolset = FunctionToolset(turn.tools.pydantic_ai_tools())
        result = await agent.run("save it", toolsets=[toolset])
        return result.output

    assert asyncio.run(drive()) == "done"
    found = turn.tools.call("search_learnings", {"query": "Prefer UTC"})
    assert "Prefer UTC" in found


def test_turn_context_is_checked_before_anything_happens(db: Db) -> None:
    model = ScriptedModel(extraction=notes_extraction)
    machine = LearningMachine(
        db=db,
        model=model,
        embedder=HashEmbedder(),
        custom_stores={"n": NoteStore("n")},
        background=False,
    )
    bad: list[tuple[dict[str, Any], str]] = [
        ({"user_id": 123}, "pass user_id=str(123)"),
        ({"user_id": "a\x1fb"}, "U+001F"),
        ({"session_id": "x" * 10_000}, "at most"),
        ({"namespace": "global"}, None),  # an extra key is fine unless reserved ...
        ({"turn_index": 4}, "set by the machine"),
        ({"messages": []}, "set by the machine"),
        ({"project": object()}, "not JSON-serialisable"),
    ]
    for kwargs, message in bad:
        call = {"user_id": "u", "session_id": "s", **kwargs}
        if message is None:
            turn = machine.begin("hello", **call)
            assert turn.context.extra == {"namespace": "global"}
            continue
        with pytest.raises(ValidationError, match=re.escape(message)):
            machine.begin("hello", **call)
    with pytest.raises(ValidationError, match="lone surrogate"):
        machine.begin("bad \ud800 text", user_id="u", session_id="s")
    with pytest.raises(ValidationError, match="is None"):
        machine.begin(None, user_id="u", session_id="s")


def test_extra_keys_that_name_store_parameters_pass_through_safely(db: Db) -> None:
    """``namespace=``, ``summary=`` and ``payload=`` reach stores as plain context, no clash."""
    model = ScriptedModel(extraction=demo_extraction)
    machine = LearningMachine(
        db=db,
        model=model,
        embedder=HashEmbedder(),
        user_profile=True,
        learned_knowledge=True,
        entity_memory=True,
        background=False,
    )
    turn = machine.begin(
        "I'm Alice Chen.",
        user_id="alice",
        session_id="s",
        namespace="x",
        summary="y",
        payload={"z": 1},
    )
    turn.finish(["I'm Alice Chen."])
    machine.wait_idle(timeout=60)
    rows = db.run(
        ListLearnings(filter=LearningFilter(namespaces=("user",), reader_user_id="alice"))
    )
    assert any("Alice Chen" in r.search_text for r in rows)


def test_turn_context_kwargs_round_trip() -> None:
    from learning_machines.db import utcnow

    ctx = TurnContext.new(
        message="hi",
        user_id="u",
        session_id="s",
        turn_id="t",
        turn_index=3,
        now=utcnow(),
        extra={"project_id": "apollo"},
    )
    again = TurnContext.from_kwargs(ctx.kwargs())
    assert again == ctx


def test_sync_tools_have_real_signatures_for_frameworks_that_introspect(db: Db) -> None:
    import inspect

    from learning_machines.stores import EntityMemoryConfig

    machine = LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        entity_memory=EntityMemoryConfig(mode=LearningMode.AGENTIC),
        background=False,
    )
    tools = {t.__name__: t for t in machine.get_tools(user_id="u", session_id="s")}
    params = inspect.signature(tools["save_entity"]).parameters
    assert list(params) == ["name", "entity_type", "aliases", "description"]
    assert params["aliases"].default == []  # a real default, not pydantic's placeholder
    assert "Args:" in (tools["save_entity"].__doc__ or "")
    assert tools["save_entity"]("Acme", "company").startswith("saved")  # positional works


async def test_finishing_a_turn_three_times_at_once_records_it_once(db: Db) -> None:
    from learning_machines.db import ListMessages

    machine = LearningMachine(db=db, embedder=HashEmbedder(), background=False)
    turn = await machine.abegin("hello", user_id="u", session_id="s")
    outcomes = await asyncio.gather(
        *(turn.afinish(["hello"]) for _ in range(3)), return_exceptions=True
    )
    assert sum(1 for o in outcomes if isinstance(o, ValidationError)) == 2
    rows = await db.arun(ListMessages(session_id="s", user_id="u"))
    assert [r.turn_id for r in rows] == [turn.context.turn_id]
