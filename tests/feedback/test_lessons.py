"""Lessons on every backend: distilled across sessions and users, gated, recalled, retired."""

from __future__ import annotations

import json
from typing import Any

import pytest

from learning_machines import Agent, LearningMachine, LearningMode, PermissionDenied
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.feedback import FeedbackConfig, LessonConfig
from learning_machines.feedback._distill import Tally, approach_of, tally, verdict
from learning_machines.stores._decision_model import DecisionRecord, ToolCallRecord
from learning_machines.stores.decision_log import DecisionLogConfig

from ._helpers import deploy, scripted


def _agent(db: Db, lessons: LessonConfig) -> tuple[Agent, LearningMachine]:
    model = scripted()
    machine = LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC),  # no model needed
        feedback=FeedbackConfig(lessons=lessons),
        background=False,
    )
    return Agent(model=model, db=db, learning=machine, tools=[deploy]), machine


def _fail(agent: Agent, user: str, session: str, service: str = "billing-api") -> Any:
    """A deploy that takes production down (the tool fails: a signal with no model)."""
    result = agent.run(f"deploy {service} to production", user_id=user, session_id=session)
    agent.wait_idle()
    return result


def _lessons(machine: LearningMachine, **filters: Any) -> list[Any]:
    return machine.service.learnings(learning_type="lesson", **filters)


def test_a_private_lesson_needs_three_sessions_and_is_recalled_with_its_example(db: Db) -> None:
    agent, machine = _agent(db, LessonConfig(min_sessions=3))
    _fail(agent, "ann", "s1")
    _fail(agent, "ann", "s2", service="search-api")
    _fail(agent, "ann", "s2", service="checkout-api")  # the same session counts once
    assert _lessons(machine, user_id="ann") == []
    _fail(agent, "ann", "s3", service="auth-api")
    [lesson] = _lessons(machine, user_id="ann")
    assert lesson.namespace == "user"
    content = lesson.content
    assert (content["action"], content["approach"]) == ("avoid", 'deploy(strategy="all_at_once")')
    assert content["sessions"] == 3
    assert content["example"]["user_id"] == "ann"
    assert "took the site down" in content["because"]

    turn = machine.begin("deploy ledger-api to production", user_id="ann", session_id="s4")
    block = turn.learned.blocks["lessons"]
    assert 'avoid deploy(strategy="all_at_once")' in block
    assert "Example (" in block  # raw experience, not only the summary
    bob = machine.begin("deploy ledger-api to production", user_id="bob", session_id="s4")
    assert "lessons" not in bob.learned.blocks  # private to ann


def test_shared_lessons_need_several_users_and_a_reviewer(db: Db) -> None:
    agent, machine = _agent(db, LessonConfig(namespace="team", min_sessions=3, min_users=2))
    for i in range(3):
        _fail(agent, "ann", f"a{i}", service=["billing-api", "search-api", "auth-api"][i])
    assert machine.proposals.list(store="lessons") == []  # one user is not enough to teach all
    _fail(agent, "bob", "b1", service="ledger-api")
    [proposal] = machine.proposals.list(store="lessons")
    assert proposal.mode == "hitl"
    assert proposal.namespace == "team"
    assert 'avoid deploy(strategy="all_at_once")' in proposal.summary
    carol = machine.begin("deploy mail-api to production", user_id="carol", session_id="c")
    assert "lessons" not in carol.learned.blocks  # not taught before a reviewer says yes
    with pytest.raises(PermissionDenied):
        machine.proposals.approve(proposal.id, by=str(proposal.user_id))
    machine.proposals.approve(proposal.id, by="lead")
    carol = machine.begin("deploy mail-api to production", user_id="carol", session_id="c")
    assert 'avoid deploy(strategy="all_at_once")' in carol.learned.blocks["lessons"]
    [lesson] = _lessons(machine, namespace="team")
    assert lesson.provenance["approved_by"] == "lead"
    assert lesson.content["users"] == 2


def test_a_lesson_that_misleads_is_retired_and_can_be_restored(db: Db) -> None:
    agent, machine = _agent(db, LessonConfig(min_sessions=3))
    for i, service in enumerate(["billing-api", "search-api", "auth-api"]):
        _fail(agent, "ann", f"s{i}", service=service)
    [lesson] = _lessons(machine, user_id="ann")
    question = "deploy ledger-api to production"
    for i in range(3):  # following the lesson went wrong too (say canary is broken this week)
        turn = machine.begin(question, user_id="ann", session_id=f"t{i}")
        assert lesson.id in turn.learned.learning_ids
        answer = "As the lesson says, not all at once: I used another strategy."
        turn.finish([question, {"role": "assistant", "content": answer}])
        machine.feedback(turn_id=turn.context.turn_id, score=-1, comment="that failed as well")
    [retired] = machine.service.learnings(
        user_id="ann", learning_type="lesson", statuses=("archived",)
    )
    assert retired.id == lesson.id
    assert "lessons" not in machine.begin(question, user_id="ann", session_id="u").learned.blocks
    history = machine.service.history(lesson.id)
    assert history[-1].action == "archive"
    assert history[-1].reason.startswith("lesson retired")
    restored = machine.service.restore(lesson.id)
    assert (restored.status, restored.harmful) == ("active", 0.0)
    assert "lessons" in machine.begin(question, user_id="ann", session_id="v").learned.blocks


def test_forgetting_a_user_removes_their_turns_from_shared_lessons(db: Db) -> None:
    agent, machine = _agent(
        db,
        LessonConfig(
            namespace="team", min_sessions=3, min_users=2, shared_mode=LearningMode.BACKGROUND
        ),
    )
    for i in range(2):
        _fail(agent, "ann", f"a{i}", service=["billing-api", "search-api"][i])
    _fail(agent, "bob", "b1", service="ledger-api")
    [lesson] = _lessons(machine, namespace="team")
    assert lesson.content["example"]["user_id"] == "bob"
    counts = machine.service.forget("bob")
    assert counts.get("lessons_scrubbed", 0) >= 2  # the lesson and its candidate
    [kept] = _lessons(machine, namespace="team")
    assert kept.status == "active"  # what many users taught stays
    assert kept.content["example"] is None
    assert "bob" not in json.dumps(kept.content)
    assert "ledger-api" not in json.dumps(kept.content)  # bob's request is gone too
    for row in machine.service.learnings(namespace="team", learning_type="lesson_candidate"):
        assert "bob" not in json.dumps(row.content)
        assert "bob" not in json.dumps(row.provenance)


# --- the rules, without a database ----------------------------------------------------------


def test_an_approach_is_what_the_agent_chose_not_what_the_message_said() -> None:
    record = DecisionRecord(
        turn_id="t", session_id="s", at="2026-01-01", message="deploy billing-api to production",
        tool_calls=[
            ToolCallRecord(name="deploy", args={"service": "billing-api", "strategy": "canary"}),
            ToolCallRecord(name="search_learnings", args={"query": "x"}, source="store"),
        ],
    )  # fmt: skip
    approach = approach_of(record)
    assert approach is not None
    assert approach.text == 'deploy(strategy="canary")'
    other = record.model_copy(update={"message": "deploy auth-api to production"})
    other.tool_calls[0].args["service"] = "auth-api"
    assert approach_of(other) == approach  # same choice, same approach
    plain = DecisionRecord(turn_id="t", session_id="s", at="x", message="hi")
    assert approach_of(plain) is None  # nothing chosen, nothing to learn


def test_verdicts_need_agreement_sessions_users_and_a_contrast_for_do() -> None:
    def support(*scores: float, users: int = 3) -> list[dict[str, Any]]:
        return [
            {"session_id": f"s{i}", "user_id": f"u{i % users}", "turn_id": f"t{i}", "score": x}
            for i, x in enumerate(scores)
        ]

    rules = {"min_sessions": 3, "min_users": 2, "agreement": 0.75}
    assert verdict(tally(support(-1, -1, -1), min_outcome=0.3), contrast=False, **rules) == "avoid"
    assert verdict(tally(support(-1, -1), min_outcome=0.3), contrast=False, **rules) is None
    mixed = tally(support(-1, -1, -1, 1, 1), min_outcome=0.3)
    assert verdict(mixed, contrast=False, **rules) is None  # 3 of 5 is not agreement
    weak = tally(support(-0.1, -0.2, -0.1), min_outcome=0.3)
    assert weak == Tally(good_sessions=0, bad_sessions=0, good_users=0, bad_users=0)
    one_user = tally(support(-1, -1, -1, users=1), min_outcome=0.3)
    assert verdict(one_user, contrast=False, **rules) is None
    worked = tally(support(1, 1, 1), min_outcome=0.3)
    assert verdict(worked, contrast=False, **rules) is None  # nothing ever failed: no lesson
    assert verdict(worked, contrast=True, **rules) == "do"


def test_concurrent_outcomes_for_one_approach_all_count(db: Db) -> None:
    import threading

    machine = LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC),
        feedback=FeedbackConfig(lessons=LessonConfig(namespace="team", min_sessions=99)),
        background=False,
    )

    def turn(user: str, session: str, service: str) -> str:
        message = f"deploy {service} to production"
        call = {"name": "deploy", "args": {"service": service, "strategy": "all_at_once"}}
        t = machine.begin(message, user_id=user, session_id=session)
        t.finish([message, {"role": "assistant", "content": "", "tool_calls": [call]}])
        return t.context.turn_id

    first = turn("u0", "s0", "billing-api")
    machine.feedback(turn_id=first, score=-1)  # the candidate exists now
    others = [turn(f"u{i}", f"s{i}", "billing-api") for i in range(1, 5)]
    errors: list[Exception] = []

    def rate(turn_id: str) -> None:
        try:
            machine.feedback(turn_id=turn_id, score=-1)
        except Exception as exc:  # noqa: BLE001 - any failure is reported below
            errors.append(exc)

    threads = [threading.Thread(target=rate, args=(t,)) for t in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    [candidate] = machine.service.learnings(namespace="team", learning_type="lesson_candidate")
    assert sorted(s["turn_id"] for s in candidate.content["support"]) == sorted([first, *others])
    assert candidate.harmful == 5.0  # five sessions went wrong, none lost to a race
