"""Behavioural feedback on every backend: signals, trust, credit, ranking, archive, isolation."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from learning_machines import (
    Agent,
    LearningMachine,
    LearningMode,
    NotFoundError,
    ValidationError,
)
from learning_machines.db import Db, GetLearnings, Learning, LearningFilter
from learning_machines.embedders import HashEmbedder
from learning_machines.feedback import FeedbackConfig, aggregate
from learning_machines.stores import LearnedKnowledgeConfig
from learning_machines.stores.decision_log import DecisionLogConfig

from ._helpers import TableEmbedder, deploy, scripted

ENG = LearningFilter(namespaces=("eng",))


def _machine(db: Db, *, limit: int = 5, **kwargs: Any) -> LearningMachine:
    kwargs.setdefault("feedback", FeedbackConfig(lessons=False))
    kwargs.setdefault("decision_log", DecisionLogConfig(mode=LearningMode.AGENTIC))
    kwargs.setdefault("embedder", HashEmbedder())
    return LearningMachine(
        db=db,
        learned_knowledge=LearnedKnowledgeConfig(
            mode=LearningMode.AGENTIC, namespace="eng", limit=limit
        ),
        background=False,
        **kwargs,
    )


def _teach(machine: LearningMachine, title: str, text: str) -> str:
    said = machine.begin("x", user_id="ops", session_id="teach").tools.call(
        "save_learning", {"title": title, "learning": text}
    )
    assert said.startswith("saved"), said
    return said.split("(")[1].rstrip(")")


def _row(db: Db, learning_id: str) -> Learning:
    flt = LearningFilter(namespaces=None, statuses=("active", "archived", "superseded"))
    [row] = db.run(GetLearnings(ids=(learning_id,), filter=flt))
    return row


def _turn(
    machine: LearningMachine,
    message: str,
    *,
    user: str = "ann",
    session: str = "s",
    answer: str = "Here you go.",
) -> Any:
    turn = machine.begin(message, user_id=user, session_id=session)
    turn.finish([message, {"role": "assistant", "content": answer}])
    return turn


def test_explicit_feedback_credits_what_the_turn_recalled_and_rerating_replaces(db: Db) -> None:
    machine = _machine(db)
    tip = _teach(machine, "Deploys", "Deploy billing-api all at once to save time.")
    other = _teach(machine, "Reports", "Billing-api reports refresh at midnight.")
    turn = _turn(machine, "how do I deploy billing-api?", answer="All at once, it saves time.")
    turn_id = turn.context.turn_id
    assert {tip, other} <= set(turn.learned.learning_ids)
    # Credit follows use: the advice the answer acted on takes the whole outcome, a learning
    # that was only recalled alongside a quarter of it.
    assert machine.decisions.get(turn_id).record.credit == {tip: 1.0, other: 0.25}

    signal = machine.feedback(turn_id=turn_id, score=-1, comment="it took prod down")
    assert (signal.source, signal.rater, signal.trust) == ("explicit", "explicit:ann", 1.0)
    learned = _row(db, tip)
    assert (learned.helpful, learned.harmful, learned.feedback) == (0.0, 1.0, -1.0)
    assert _row(db, other).harmful == 0.25
    decision = machine.decisions.get(turn_id)
    assert (decision.helpful, decision.harmful) == (0.0, 1.0)
    assert decision.outcome is not None
    assert (decision.outcome.score, decision.outcome.comment) == (-1.0, "it took prod down")
    assert decision.verdict == "bad"

    machine.feedback(turn_id=turn_id, score=1)  # the same rater changes their mind
    learned = _row(db, tip)
    assert (learned.helpful, learned.harmful) == (1.0, 0.0)  # replaced, not added
    machine.feedback(turn_id=turn_id, score=-1, by="reviewer")  # a second rater disagrees
    learned = _row(db, tip)
    assert (learned.helpful, learned.harmful) == (0.0, 0.0)  # their mean: no clear outcome
    assert sorted(s.rater for s in machine.decisions.signals(turn_id)) == [
        "explicit:ann",
        "explicit:reviewer",
    ]
    assert machine.decisions.get(turn_id).verdict == "unclear"


def test_run_result_feedback_and_explicit_beating_implicit(db: Db) -> None:
    model = scripted()
    machine = LearningMachine(
        db=db, model=model, embedder=HashEmbedder(), feedback=True, background=False
    )
    agent = Agent(model=model, db=db, learning=machine, tools=[deploy])
    first = agent.run("what is the status of billing?", user_id="ann", session_id="s")
    agent.run("no, that is wrong", user_id="ann", session_id="s")
    agent.wait_idle()
    [implicit] = machine.decisions.signals(first.turn_id)
    assert (implicit.source, implicit.score, implicit.trust) == ("implicit", -1.0, 0.6)
    decision = machine.decisions.get(first.turn_id)
    assert decision.harmful == pytest.approx(0.6)  # trusted less than a person
    first.feedback(+1, comment="actually it was right")  # a thumbs up on the RunResult
    decision = machine.decisions.get(first.turn_id)
    assert (decision.helpful, decision.harmful) == (1.0, 0.0)  # explicit beats implicit
    assert decision.outcome is not None
    assert decision.outcome.source == "explicit"


def test_rules_need_no_model_a_failed_tool_and_a_repeated_question(db: Db) -> None:
    model = scripted()
    machine = _machine(db)  # no model for learning: the decision log is AGENTIC
    tip = _teach(machine, "Deploys", "To deploy search-api, deploy it all at once.")
    agent = Agent(model=model, db=db, learning=machine, tools=[deploy])
    failed = agent.run("deploy search-api", user_id="ann", session_id="s1")
    [call] = machine.decisions.get(failed.turn_id).record.tool_calls
    assert call.error is not None
    assert "took the site down" in call.error
    [rule] = machine.decisions.signals(failed.turn_id)  # written with the turn itself
    assert (rule.source, rule.score) == ("rule:tool_error", -1.0)
    assert _row(db, tip).harmful == pytest.approx(0.5)

    asked = _turn(machine, "Why is the billing report empty today?", session="s2")
    _turn(machine, "why is the billing report empty today", session="s2")
    machine.wait_idle()
    [repeat] = machine.decisions.signals(asked.context.turn_id)
    assert (repeat.source, repeat.rater, repeat.score) == ("rule:repeat", "rule:repeat", -1.0)
    assert model.extraction_calls == 0


def test_confused_and_hostile_feedback_is_refused_with_the_fix(db: Db) -> None:
    machine = _machine(db)
    turn = _turn(machine, "hello")
    turn_id = turn.context.turn_id
    for bad in (2, -1.5, math.nan, math.inf, "good", True, None):
        with pytest.raises(ValidationError, match="from -1"):
            machine.feedback(turn_id=turn_id, score=bad)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="no turn"):
        machine.feedback(turn_id="no-such-turn", score=1)
    with pytest.raises(NotFoundError, match="another user's turn"):
        machine.feedback(turn_id=turn_id, score=1, user_id="mallory")
    with pytest.raises(ValidationError):
        machine.feedback(turn_id=turn_id, score=1, by="evil\x00name")
    signal = machine.feedback(turn_id=turn_id, score=0.5, comment="y" * 10_000)
    assert signal.comment is not None
    assert len(signal.comment) == 2_000
    assert machine.decisions.signals(turn_id) == [signal]


def test_concurrent_raters_are_each_counted_once(db: Db) -> None:
    machine = _machine(db)
    tip = _teach(machine, "Billing", "Billing reports refresh at midnight UTC.")
    turn_id = _turn(machine, "when do billing reports refresh?").context.turn_id
    errors: list[BaseException] = []

    def rate(i: int) -> None:
        try:
            machine.feedback(turn_id=turn_id, score=1 if i % 3 else -1, by=f"rater{i}")
        except Exception as exc:  # noqa: BLE001 - any failure is reported below
            errors.append(exc)

    threads = [threading.Thread(target=rate, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    signals = machine.decisions.signals(turn_id)
    assert len(signals) == 6
    expected = aggregate(signals)
    assert expected is not None
    learned = _row(db, tip)
    decision = machine.decisions.get(turn_id)
    share = decision.record.credit[tip]
    assert learned.helpful == pytest.approx(expected.helpful * share)
    assert learned.harmful == pytest.approx(expected.harmful * share)
    assert (decision.helpful, decision.harmful) == pytest.approx(
        (expected.helpful, expected.harmful)
    )


def test_a_misleading_learning_sinks_then_is_archived_and_restoring_brings_it_back(
    db: Db,
) -> None:
    # Vectors fixed by hand so the test does not hang on a hash embedder's accidents: the
    # misleading tip is the closest to the question, two good tips follow closely, fillers far
    # (not too close to each other either: near duplicates are merged when saved). Every tip
    # has the same words but one, so the keyword side ranks them all alike.
    embedder = TableEmbedder(
        {
            "bigbang": [0.8, 0.6, 0.0],
            "canary": [0.78, 0.0, 0.63],
            "migrate": [0.76, -0.65, 0.0],
            **{f"filler{i}": [0.3, 0.0, 0.0, 0.95 if i % 2 else -0.95, 0.2 * i] for i in range(5)},
            "how should I deploy": [1.0, 0.0],
        }
    )
    machine = _machine(db, limit=3, embedder=embedder)
    misleading = _teach(machine, "Tip", "deploy billing-api bigbang")
    good = [
        _teach(machine, "Tip", "deploy billing-api canary"),
        _teach(machine, "Tip", "deploy billing-api migrate"),
    ]
    for i in range(5):
        _teach(machine, "Tip", f"deploy billing-api filler{i}")
    question = "how should I deploy billing-api?"

    def top() -> list[str]:
        return _turn_ids(machine.begin(question, user_id="ann", session_id="probe"))

    assert top() == [misleading, *good]  # the most relevant at first
    rated = 0
    while misleading in top()[:2]:
        # The agent follows the advice, and the user says it went wrong.
        turn = _turn(machine, question, session=f"s{rated}", answer="Deploy it bigbang.")
        machine.feedback(turn_id=turn.context.turn_id, score=-1, comment="prod went down")
        rated += 1
        assert rated <= 4, "a learning rated down four times still ranks on top"
    while _row(db, misleading).harmful < 3:  # more turns that follow it and go wrong
        turn = _turn(machine, question, session=f"s{rated}", answer="Deploy it bigbang.")
        machine.feedback(turn_id=turn.context.turn_id, score=-1)
        rated += 1
        assert rated <= 6
    # Sunk below the close competitors, but bounded: never below far less relevant tips.
    assert sorted(top()[:2]) == sorted(good)
    assert top()[2] == misleading
    report = machine.service.curate()
    assert [a.id for a in report.archived] == [misleading]  # the good tips are not archived
    assert misleading not in top()
    restored = machine.service.restore(misleading)
    assert restored.status == "active"
    assert (restored.helpful, restored.harmful) == (0.0, 0.0)  # a person judged it useful
    assert top()[0] == misleading
    history = machine.service.history(misleading)
    assert [e.action for e in history][-2:] == ["archive", "restore"]
    assert history[-2].actor.get("rule") == "harmful_evidence"


def _turn_ids(turn: Any) -> list[str]:
    found = turn.learned.recalled.get("learned_knowledge") or []
    return [s.learning.id for s in found]


def test_another_users_decisions_and_signals_never_reach_you(db: Db) -> None:
    machine = _machine(db)
    alice = _turn(machine, "deploy billing-api to prod", user="alice", session="a")
    machine.feedback(turn_id=alice.context.turn_id, score=-1, comment="alice's secret reason")
    bob = machine.begin("deploy billing-api to prod", user_id="bob", session_id="a")
    assert "decision_log" not in bob.learned.blocks
    assert "secret" not in bob.learned.text
    book = machine.decisions
    assert book.list(user_id="bob") == []
    assert book.search("deploy billing-api", user_id="bob") == []
    with pytest.raises(NotFoundError):
        book.get(alice.context.turn_id, user_id="bob")
    assert book.signals(alice.context.turn_id, user_id="bob") == []
    with pytest.raises(NotFoundError):
        machine.feedback(turn_id=alice.context.turn_id, score=1, user_id="bob")
    kinds = {x.learning_type for x in machine.service.learnings(user_id="bob")}
    assert not kinds & {"decision", "feedback_signal", "lesson", "lesson_candidate"}
    # The same session id in another user's hands is another session.
    again = _turn(machine, "deploy billing-api to prod", user="bob", session="a")
    assert again.context.turn_index == 0


def test_forget_and_export_cover_decisions_and_signals(db: Db) -> None:
    machine = _machine(db)
    turn = _turn(machine, "deploy billing-api", user="alice")
    machine.feedback(turn_id=turn.context.turn_id, score=-1)
    data = machine.service.export("alice")
    kinds = sorted(x["learning_type"] for x in data["learnings"])
    assert kinds == ["decision", "feedback_signal"]
    counts = machine.service.forget("alice")
    assert counts["learnings"] == 2
    with pytest.raises(NotFoundError):
        machine.decisions.get(turn.context.turn_id)
    assert machine.service.import_(data)["learnings"] == 2
    restored = machine.decisions.get(turn.context.turn_id)
    assert restored.harmful == 1.0
    assert [s.score for s in machine.decisions.signals(turn.context.turn_id)] == [-1.0]
