"""Reflection scheduled through the pending-work queue, forget, rules on tools, concurrent
approvals and a proposal replayed again when the instructions moved (both backends)."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from pydantic_ai import messages as pa
from pydantic_ai.models.function import AgentInfo, FunctionModel

from learning_machines import Agent, LearningMachine
from learning_machines._sync import run_sync
from learning_machines.db import Db, LearningFilter, ListLearnings
from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import ValidationError
from learning_machines.feedback import FeedbackConfig
from learning_machines.improvement import IMPROVEMENT_NAMESPACE, SelfImprovementConfig

from ._helpers import BASE, Counter, agent, deploy, fix_deploys, model
from .test_reflection_and_gate import csv_reports, failed_deploys, rated_reports


def _reflections_pending(learning: Any) -> int:
    return len(learning.service.pending(statuses=("pending",), kinds=("reflect",)))


def test_reflection_runs_by_itself_every_n_turns_when_feedback_arrived(db: Db) -> None:
    counter = Counter()
    bot, learning = agent(db, model(counter=counter), every_turns=3)
    failed_deploys(bot, ["ann", "bob"])
    assert _reflections_pending(learning) == 0
    failed_deploys(bot, ["cat"])
    assert _reflections_pending(learning) == 1  # written with the third turn
    learning.wait_idle()
    assert counter["reflection"] == 1
    [proposal] = learning.improvements.list()
    assert len(proposal.evidence) == 3
    # Three more turns, nobody rated them: the scheduled reflection makes no model call.
    for user in ("dan", "eve", "fay"):
        bot.run("hello", user_id=user, session_id=user)
    assert _reflections_pending(learning) == 1
    learning.wait_idle()
    assert counter["reflection"] == 1
    assert learning.service.failures() == []


def test_a_time_window_schedules_one_reflection_per_window(db: Db) -> None:
    bot, learning = agent(db, every_turns=None, every=timedelta(hours=6))
    failed_deploys(bot, ["ann", "bob", "cat"])
    assert _reflections_pending(learning) == 1


def test_a_machine_without_self_improvement_leaves_a_reflection_alone(db: Db) -> None:
    bot, learning = agent(db, every_turns=1)
    learning.close()
    failed_deploys(bot, ["ann"])
    other = LearningMachine(db=db, model=model(), feedback=True, background=False)
    other.wait_idle(timeout=10)  # its own work only: the reflection is not its kind
    assert other.service.failures() == []
    assert _reflections_pending(other) == 1  # still waiting for a machine that improves
    # The machine that improves takes it.
    learning.wait_idle(timeout=10)
    assert _reflections_pending(learning) == 0
    assert learning.service.failures() == []


def test_a_dedicated_worker_without_self_improvement_parks_a_reflection_loudly(db: Db) -> None:
    bot, learning = agent(db, every_turns=1)
    learning.close()
    failed_deploys(bot, ["ann"])
    other = LearningMachine(db=db, model=model(), feedback=True, background=False)
    other.worker.kinds = None  # as `learning-machines worker` runs it: every kind
    run_sync(other.worker.run_pending())
    [parked] = other.service.failures()
    assert parked.kind == "reflect"
    assert "has none" in (parked.last_error or "")


def test_a_background_worker_runs_a_scheduled_reflection(db: Db) -> None:
    counter = Counter()
    llm = model(counter=counter)
    learning = LearningMachine(
        db=db,
        model=llm,
        embedder=HashEmbedder(),
        background=True,
        feedback=FeedbackConfig(lessons=False),
        self_improvement=SelfImprovementConfig(every_turns=3),
        curate_every_turns=None,
    )
    bot = Agent(
        model=llm, db=db, learning=learning, tools=[deploy], instructions=BASE, agent_id="ops"
    )
    try:
        failed_deploys(bot, ["ann", "bob", "cat"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not learning.improvements.list():
            time.sleep(0.05)  # nobody calls wait_idle: the background runner must claim it
        [proposal] = learning.improvements.list()
        assert counter["reflection"] == 1
        assert len(proposal.evidence) == 3
    finally:
        learning.close()
    assert learning.service.failures() == []


def test_forget_removes_a_users_turns_from_the_evidence_but_the_rule_stays(db: Db) -> None:
    bot, learning = agent(db)
    failed = dict(
        zip(["ann", "bob", "cat"], failed_deploys(bot, ["ann", "bob", "cat"]), strict=True)
    )
    learning.wait_idle()
    [proposal] = learning.improve(agent_id="ops").proposals
    learning.improvements.approve(proposal.id, by="reviewer")
    rule = learning.instructions(agent_id="ops").rules

    counts = learning.service.forget("ann")
    assert counts["improvements_uncited"] == 2  # the proposal and the approval's history entry
    kept = {failed["bob"], failed["cat"]}
    assert {e.turn_id for e in learning.improvements.get(proposal.id).evidence} == kept
    [change] = learning.improvements.history(agent_id="ops")
    assert {e.turn_id for e in change.evidence} == kept
    assert learning.instructions(agent_id="ops").rules == rule  # the rule stays
    assert {t.user_id for t in learning.improvements.evidence(proposal.id)} == {"bob", "cat"}
    rows = db.run(
        ListLearnings(filter=LearningFilter(namespaces=(IMPROVEMENT_NAMESPACE,)), limit=None)
    )
    assert all(failed["ann"] not in str(r.content) for r in rows)


def test_forget_withdraws_a_pending_proposal_that_rested_only_on_that_user(db: Db) -> None:
    bot, learning = agent(db)
    for session in ("s1", "s2"):
        bot.run("deploy api to production", user_id="ann", session_id=session)
    learning.wait_idle()
    [proposal] = learning.improve(agent_id="ops").proposals
    assert proposal.status == "pending"
    learning.service.forget("ann")
    gone = learning.improvements.get(proposal.id)
    assert gone.status == "withdrawn"
    assert gone.evidence == []
    assert gone.gate is not None
    assert all(c.kind == "good" for c in gone.gate.cases)
    with pytest.raises(ValidationError, match="withdrawn"):
        learning.improvements.approve(proposal.id, by="reviewer")


def test_a_rule_on_a_tool_goes_into_that_tools_description(db: Db) -> None:
    seen: list[AgentInfo] = []

    def on_the_tool(prompt: str) -> dict[str, Any]:
        out = fix_deploys(prompt)
        for change in out["changes"]:
            change["tool"] = "deploy"
        return out

    inner = model(reflect=on_the_tool)

    def spy(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        seen.append(info)
        return inner.function(messages, info)  # type: ignore[misc, return-value]

    bot, learning = agent(db, FunctionModel(spy, model_name="spy"))
    failed_deploys(bot, ["ann", "bob"])
    learning.wait_idle()
    [proposal] = learning.improve(agent_id="ops").proposals
    assert proposal.change.tool == "deploy"
    learning.improvements.approve(proposal.id, by="reviewer")
    active = learning.instructions(agent_id="ops")
    assert active.rules_text == ""
    assert list(active.tool_notes) == ["deploy"]
    seen.clear()
    bot.run("hello", user_id="eve", session_id="e")
    tools = {t.name: t.description for t in seen[0].function_tools}
    assert tools["deploy"].endswith("Learned rule: " + proposal.rule_text)
    assert "Learned rule" not in (tools["report"] or "")


def _both(prompt: str) -> dict[str, Any]:
    return {"changes": fix_deploys(prompt)["changes"] + csv_reports(prompt)["changes"]}


def test_two_approvals_at_once_keep_both_rules(db: Db) -> None:
    bot, learning = agent(db, model(reflect=_both))
    failed_deploys(bot, ["ann", "bob"])
    rated_reports(bot, [("cat", -1.0), ("dan", -1.0)])
    learning.wait_idle()
    proposals = learning.improve(agent_id="ops").proposals
    assert [p.status for p in proposals] == ["pending", "pending"]
    errors: list[BaseException] = []

    def approve(proposal_id: str) -> None:
        try:
            learning.improvements.approve(proposal_id, by="reviewer")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(p.id,)) for p in proposals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    texts = {r.text for r in learning.instructions(agent_id="ops").rules}
    assert texts == {p.rule_text for p in proposals}
    history = learning.improvements.history(agent_id="ops")
    assert [c.action for c in history] == ["approve", "approve"]
    assert history[1].from_version == history[0].to_version  # the second built on the first


def test_a_proposal_is_replayed_again_when_the_instructions_moved(db: Db) -> None:
    def twice(prompt: str) -> dict[str, Any]:
        [first] = fix_deploys(prompt)["changes"] or [None]
        if first is None:
            return {"changes": []}
        second = {**first, "stop": "rolling out everything at once", "when": "shipping to prod"}
        return {"changes": [first, second]}

    bot, learning = agent(db, model(reflect=twice))
    failed_deploys(bot, ["ann", "bob"])
    learning.wait_idle()
    first, second = learning.improve(agent_id="ops").proposals
    assert (first.status, second.status) == ("pending", "pending")
    learning.improvements.approve(first.id, by="reviewer")
    # With the first rule in force the failures no longer happen: the second fixes nothing.
    with pytest.raises(ValidationError, match="failed the gate"):
        learning.improvements.approve(second.id, by="reviewer")
    again = learning.improvements.get(second.id)
    assert again.status == "failed_gate"
    assert again.gate is not None
    assert again.gate.base_version == learning.instructions(agent_id="ops").version
    assert re.match(r"no replayed failure still fails", again.gate.reason)


def test_two_reflections_at_once_offer_a_change_once(db: Db) -> None:
    bot, learning = agent(db)
    failed_deploys(bot, ["ann", "bob", "cat"])
    learning.wait_idle()
    reports: list[Any] = []

    def reflect() -> None:
        reports.append(learning.improve(agent_id="ops"))

    threads = [threading.Thread(target=reflect) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(learning.improvements.list()) == 1
    assert sum(len(r.proposals) for r in reports) == 1
    assert all(why == "the same change is already proposed or made"
               for r in reports for _, why in r.dropped)  # fmt: skip
