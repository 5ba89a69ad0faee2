"""The decision log on every backend: what a turn records, when, and how it is read back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from learning_machines import (
    Agent,
    ConfigurationError,
    LearningMachine,
    LearningMode,
    ValidationError,
)
from learning_machines._turn_record import RunInfo
from learning_machines.db import Db, GetMessage, ListWork, PutLearning, utcnow
from learning_machines.embedders import HashEmbedder
from learning_machines.stores import LearnedKnowledgeConfig, UserProfileConfig
from learning_machines.stores.decision_log import DecisionLogConfig
from learning_machines.testing import ScriptedModel

from ._helpers import deploy, reacting_extraction, scripted

KNOWLEDGE = LearnedKnowledgeConfig(mode=LearningMode.AGENTIC, namespace="eng")


def _machine(db: Db, **kwargs: Any) -> LearningMachine:
    kwargs.setdefault("learned_knowledge", KNOWLEDGE)
    kwargs.setdefault("decision_log", DecisionLogConfig(mode=LearningMode.AGENTIC))
    return LearningMachine(db=db, embedder=HashEmbedder(), background=False, **kwargs)


def test_every_turn_is_recorded_whole_without_a_model_call(db: Db) -> None:
    machine = _machine(db)
    tip = machine.begin("tip", user_id="ops", session_id="t").tools.call(
        "save_learning", {"title": "Deploys", "learning": "Deploy billing-api with a canary."}
    )
    assert tip.startswith("saved")
    model = ScriptedModel(
        answers="x" * 5_000,
        tool_calls=lambda p: [("deploy", {"service": "billing-api", "strategy": "canary"})],
    )
    agent = Agent(model=model, db=db, learning=machine, tools=[deploy])
    result = agent.run("deploy billing-api to prod", user_id="ann", session_id="s1")

    assert model.extraction_calls == 0  # captured with the turn, no model call
    record = machine.decisions.get(result.turn_id).record
    assert record.message == "deploy billing-api to prod"
    assert len(record.answer) == 1_000
    assert record.answer.endswith("…")  # bounded
    [call] = record.tool_calls
    assert (call.name, call.args, call.source) == (
        "deploy",
        {"service": "billing-api", "strategy": "canary"},
        "app",
    )
    assert call.result == "billing-api deployed with canary"
    assert call.error is None
    assert call.duration_ms is not None
    assert call.duration_ms > 0
    [knowledge_id] = record.recalled["learned_knowledge"]
    assert record.credit == {knowledge_id: 1.0}  # the call used the canary it advised
    assert record.model == "function:scripted"
    assert record.input_tokens
    assert record.output_tokens
    assert record.requests == 2
    assert record.latency_ms is not None
    assert record.latency_ms > 0
    assert record.instructions_version is None  # filled once instructions are versioned
    assert record.outcome is None


def test_the_record_is_written_in_the_turns_own_transaction(db: Db) -> None:
    machine = _machine(db, user_profile=True, model=ScriptedModel())
    log = machine.stores["decision_log"]

    async def broken(record: Any) -> list[Any]:
        # A private row without an owner: the backend refuses it, inside the turn's batch.
        from learning_machines.db import Change, Learning

        return [PutLearning(learning=Learning(learning_type="decision"), change=Change(action="x"))]

    log.aturn_ops = broken
    turn = machine.begin("hello", user_id="ann", session_id="s")
    with pytest.raises(ValidationError):
        turn.finish(["hello"])
    row = db.run(GetMessage(session_id="s", user_id="ann", turn_id=turn.context.turn_id))
    assert row is None  # the turn itself was not written either
    assert db.run(ListWork(statuses=("pending",))) == []


async def test_turns_driven_by_another_framework_record_their_tools(db: Db) -> None:
    machine = _machine(db)
    turn = await machine.abegin("weather in Oslo?", user_id="ann", session_id="s")
    found = await turn.tools.acall("search_learnings", {"query": "weather"})
    messages = [
        {"role": "user", "content": "weather in Oslo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
    ]
    run = RunInfo(model="acme:m1", input_tokens=10, output_tokens=3, instructions_version="v7")
    await turn.afinish(messages, run=run)
    record = (await machine.decisions.aget(turn.context.turn_id, user_id="ann")).record
    search, lookup = record.tool_calls
    assert (search.name, search.source, search.result) == ("search_learnings", "store", found)
    assert search.duration_ms is not None  # timed by the turn's tools
    assert (lookup.name, lookup.args, lookup.result, lookup.source) == (
        "lookup",
        {"city": "Oslo"},
        "sunny",
        "app",
    )
    assert lookup.duration_ms is None  # known only from the messages
    assert (record.model, record.input_tokens, record.instructions_version) == (
        "acme:m1",
        10,
        "v7",
    )
    assert record.answer == "Sunny."


def test_log_decision_attaches_the_why_during_and_after_the_turn(db: Db) -> None:
    machine = _machine(db)
    turn = machine.begin("deploy billing-api", user_id="ann", session_id="s")
    args = {"decision": "canary deploy", "rationale": "a big bang broke prod last week"}
    assert turn.tools.call("log_decision", args).startswith("logged")
    turn.finish(["deploy billing-api"])
    late = {"decision": "notify on-call", "rationale": "risky change", "alternatives": ["none"]}
    assert turn.tools.call("log_decision", late) == "logged"
    record = machine.decisions.get(turn.context.turn_id).record
    assert [d.decision for d in record.decisions] == ["canary deploy", "notify on-call"]
    assert record.decisions[1].alternatives == ["none"]
    assert record.tool_calls == []  # the why is not an action
    with pytest.raises(ValidationError, match="rationale"):
        turn.tools.call("log_decision", {"decision": "x"})


def test_rationale_and_reactions_ride_the_single_extraction_call(db: Db) -> None:
    model = scripted()
    machine = LearningMachine(
        db=db,
        model=model,
        embedder=HashEmbedder(),
        user_profile=UserProfileConfig(),
        feedback=True,
        background=False,
    )
    agent = Agent(model=model, db=db, learning=machine, tools=[deploy])
    first = agent.run("hello there", user_id="ann", session_id="s")
    agent.wait_idle()
    assert "Section 'decision_log'" not in model.calls[-1].prompt  # nothing to ask: no tools
    second = agent.run("deploy search-api now", user_id="ann", session_id="s")
    third = agent.run("that was wrong, it broke", user_id="ann", session_id="s")
    agent.wait_idle()
    assert model.extraction_calls == 3  # still one call per turn
    assert machine.decisions.get(second.turn_id).record.rationale == "the user asked for it"
    [reaction] = [s for s in machine.decisions.signals(second.turn_id) if s.source == "implicit"]
    assert reaction.score == -1.0
    assert machine.decisions.get(first.turn_id).outcome is None
    assert machine.decisions.get(third.turn_id).outcome is None


def test_recall_shows_similar_past_decisions_with_outcomes_within_budget(db: Db) -> None:
    machine = _machine(
        db, decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC, max_tokens=120)
    )
    for i in range(30):
        topic = "deploy billing-api" if i % 3 == 0 else f"recipe for soup number {i}"
        turn = machine.begin(f"{topic} please", user_id="ann", session_id=f"s{i}")
        turn.finish([f"{topic} please", {"role": "assistant", "content": f"answer {i}"}])
    learned = machine.begin("deploy billing-api to prod", user_id="ann", session_id="new").learned
    block = learned.blocks["decision_log"]
    assert block.startswith("## Decision log")
    assert "deploy billing-api" in block
    assert "soup" not in block
    assert learned.tokens < 400
    from learning_machines._tokens import estimate_tokens

    assert estimate_tokens(block) <= 120


def test_machine_decisions_filters_by_session_agent_time_tool_and_outcome(db: Db) -> None:
    machine = _machine(db, feedback=True, model=ScriptedModel())
    now = utcnow()
    ids = []
    for i, (session, agent_id, tool) in enumerate(
        [("s1", "a", "deploy"), ("s1", "b", None), ("s2", "a", "rollback")]
    ):
        turn = machine.begin(
            f"request {i}", user_id="ann", session_id=session, agent_id=agent_id,
            now=now - timedelta(days=3 - i),
        )  # fmt: skip
        messages: list[Any] = [f"request {i}"]
        if tool:
            messages.append(
                {"role": "assistant", "content": "", "tool_calls": [{"name": tool, "args": {}}]}
            )
        turn.finish(messages)
        ids.append(turn.context.turn_id)
    machine.feedback(turn_id=ids[2], score=-1)
    book = machine.decisions

    def turns(**filters: Any) -> list[str]:
        return [d.turn_id for d in book.list(user_id="ann", **filters)]

    assert turns() == [ids[2], ids[1], ids[0]]  # newest first
    assert turns(session_id="s1") == [ids[1], ids[0]]
    assert turns(agent_id="a") == [ids[2], ids[0]]
    assert turns(since=now - timedelta(days=2, hours=1)) == [ids[2], ids[1]]
    assert turns(until=now - timedelta(days=2, hours=1)) == [ids[0]]
    assert turns(tool="rollback") == [ids[2]]
    assert turns(outcome="bad") == [ids[2]]
    assert turns(outcome="unrated") == [ids[1], ids[0]]
    assert turns(limit=1) == [ids[2]]
    assert [d.turn_id for d in book.search("request 1", user_id="ann", limit=1)] == [ids[1]]
    assert book.list(user_id="bob") == []
    with pytest.raises(ValidationError, match="outcome"):
        book.list(user_id="ann", outcome="great")  # type: ignore[arg-type]


def test_misconfigurations_are_refused_when_built() -> None:
    from learning_machines.db import SqliteDb

    db = SqliteDb(":memory:")
    with pytest.raises(ConfigurationError, match="private"):
        LearningMachine(decision_log=DecisionLogConfig(namespace="global"))
    with pytest.raises(ConfigurationError, match="needs the decision log"):
        LearningMachine(feedback=True, decision_log=False)
    with pytest.raises(ConfigurationError, match="need a model"):
        LearningMachine(db=db, decision_log=True)  # BACKGROUND: the rationale needs a model
    quiet = LearningMachine(db=db, decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC))
    with pytest.raises(ConfigurationError, match="takes no feedback"):
        quiet.feedback(turn_id="t", score=1)
    with pytest.raises(ConfigurationError, match="user_id"):
        quiet.begin("hi", session_id="s")  # decisions are private to a user
    plain = LearningMachine(db=db, user_profile=True, background=False)
    with pytest.raises(ConfigurationError, match="no decision log"):
        plain.decisions.list(user_id="ann")
    with pytest.raises(ConfigurationError, match="custom store name"):
        LearningMachine(decision_log=True, model="test", custom_stores={"decision_log": object()})
    assert reacting_extraction("no sections", {}) == {}


def test_what_the_agent_logs_is_bounded_like_everything_else(db: Db) -> None:
    machine = _machine(db)
    turn = machine.begin("deploy", user_id="ann", session_id="s")
    huge = {"decision": "d" * 100_000, "rationale": "r" * 100_000, "alternatives": ["a"] * 500}
    turn.tools.call("log_decision", huge)
    turn.finish(["deploy"])
    turn.tools.call("log_decision", huge)  # after the turn was written, too
    first, second = machine.decisions.get(turn.context.turn_id).record.decisions
    for logged in (first, second):
        assert len(logged.decision) == len(logged.rationale) == 500
        assert logged.alternatives is not None
        assert len(logged.alternatives) == 10


def test_a_turns_rationale_is_written_only_by_a_worker_with_the_same_decision_log(
    db: Db,
) -> None:
    # Pending work carries the route of the machine that recorded the turn (its background
    # stores, modes, namespaces): the decision log is part of it, so a worker without the log,
    # or with it in another mode, never takes the work (the rationale would be lost).
    def build(**kwargs: Any) -> LearningMachine:
        return LearningMachine(
            db=db,
            model=scripted(),
            embedder=HashEmbedder(),
            user_profile=UserProfileConfig(),
            background=False,
            **kwargs,
        )

    app = build(decision_log=True)
    turn = app.begin("deploy search-api now", user_id="ann", session_id="s")
    turn.tools.call("log_decision", {"decision": "deploy search-api", "rationale": "asked"})
    turn.finish(
        [
            {"role": "user", "content": "deploy search-api now"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"name": "deploy", "args": {"service": "search-api"}}],
            },
            {"role": "assistant", "content": "Deployed."},
        ]
    )
    without_log = build()
    agentic_log = build(decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC))
    # An AGENTIC log learns nothing in the background: its route is the one without a log.
    assert app.registry.route() != without_log.registry.route() == agentic_log.registry.route()
    for other in (without_log, agentic_log):
        other.wait_idle(timeout=5)
        assert len(other.service.pending(statuses=("pending",))) == 1  # left alone
    same = build(decision_log=True)
    same.wait_idle(timeout=30)
    assert same.service.pending(statuses=("pending", "failed")) == []
    decision = same.decisions.get(turn.context.turn_id)
    assert decision.record.rationale == "the user asked for it"
