"""Approval, rejection, versions, rollback and effect on both backends, and the Agent running
with whatever version is active on its next turn."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from learning_machines import LearningMachine, LearningMode
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import (
    ConfigurationError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from learning_machines.feedback import FeedbackConfig
from learning_machines.improvement import ImprovementProposal, SelfImprovementConfig
from learning_machines.improvement._model import Scope, version_id
from learning_machines.stores import LearnedKnowledgeConfig

from ._helpers import BASE, Counter, agent, fix_deploys, machine, model
from .test_reflection_and_gate import csv_reports, failed_deploys, rated_reports


def proposed(db: Db, **kwargs: Any) -> tuple[Any, Any, ImprovementProposal]:
    """An agent whose deploys failed for ann, bob and cat, and the proposal that fixes them."""
    bot, learning = agent(db, **kwargs)
    failed_deploys(bot, ["ann", "bob", "cat"])
    rated_reports(bot, [("dan", 1.0)])
    learning.wait_idle()
    [proposal] = learning.improve(agent_id="ops").proposals
    assert proposal.status == "pending"
    return bot, learning, proposal


def strategy(bot: Any, user: str) -> str:
    """The strategy the agent deploys with now."""
    result = bot.run("deploy api to production", user_id=user, session_id=f"{user}-now")
    return str(result.tool_calls[0].args["strategy"])


def test_the_agent_has_no_tool_that_approves(db: Db) -> None:
    llm = model()
    learning = LearningMachine(
        db=db,
        model=llm,
        embedder=HashEmbedder(),
        background=False,
        # A PROPOSE store gives the agent approve_proposal: it must not reach improvements.
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.PROPOSE),
        feedback=FeedbackConfig(lessons=False),
        self_improvement=SelfImprovementConfig(every_turns=None),
    )
    from learning_machines import Agent

    from ._helpers import deploy, report

    bot = Agent(model=llm, db=db, learning=learning, tools=[deploy, report], agent_id="ops")
    failed_deploys(bot, ["ann", "bob"])
    learning.wait_idle()
    [proposal] = learning.improve(agent_id="ops").proposals
    turn = learning.begin("yes, approve it", user_id="ann", session_id="d-ann")
    assert not any("improve" in name or "instruction" in name for name in turn.tools.names)
    answer = turn.tools.call("approve_proposal", {"proposal_id": proposal.id})
    assert answer.startswith("NOT approved")
    assert learning.improvements.get(proposal.id).status == "pending"


def test_a_user_whose_turns_are_the_evidence_cannot_approve_alone(db: Db) -> None:
    _, learning, proposal = proposed(db)
    for who in ("ann", "ANN", "bob"):  # identities compare case-folded
        with pytest.raises(PermissionDenied, match="cannot approve it alone"):
            learning.improvements.approve(proposal.id, by=who)
    assert learning.improvements.get(proposal.id).status == "pending"
    assert learning.instructions(agent_id="ops").rules == ()


def test_a_reviewer_approves_and_the_agent_uses_the_new_version_on_its_next_turn(db: Db) -> None:
    bot, learning, proposal = proposed(db)
    base = version_id(Scope("ops"), ())
    assert strategy(bot, "eve") == "all_at_once"
    approved = learning.improvements.approve(proposal.id, by="reviewer", note="looks right")
    assert approved.status == "approved"
    assert approved.decided_by == "reviewer"
    # The same Agent object, no restart: its next turn runs with the rule.
    result = bot.run("deploy api to production", user_id="eve", session_id="eve-2")
    assert result.tool_calls[0].args["strategy"] == "canary"
    record = learning.decisions.get(result.turn_id).record
    assert record.instructions_version == approved.version != base
    earlier = learning.decisions.list(user_id="eve", limit=None)[-1].record
    assert earlier.instructions_version == base
    active = learning.instructions(agent_id="ops")
    assert active.version == approved.version
    assert active.text == f"{BASE}\n\n{active.rules_text}"
    assert proposal.rule_text in active.rules_text
    with pytest.raises(ValidationError, match="already approved"):
        learning.improvements.approve(proposal.id, by="other")


def test_an_approval_made_by_another_process_reaches_a_running_agent(db: Db) -> None:
    bot, _learning, proposal = proposed(db)
    # A second machine on the same db (the CLI, a review app) approves.
    other = machine(db, model())
    other.improvements.approve(proposal.id, by="reviewer")
    assert strategy(bot, "eve") == "canary"


def test_versions_are_content_addressed_and_every_change_is_in_the_history(db: Db) -> None:
    _bot, learning, proposal = proposed(db)
    approved = learning.improvements.approve(proposal.id, by="reviewer")
    scope = Scope("ops")
    rules = learning.instructions(agent_id="ops").rules
    assert approved.version == version_id(scope, rules)
    [version] = learning.improvements.versions(agent_id="ops")
    assert version.id == approved.version
    assert [r.text for r in version.rules] == [proposal.rule_text]
    [change] = learning.improvements.history(agent_id="ops")
    assert change.action == "approve"
    assert change.by == "reviewer"
    assert change.from_version == version_id(scope, ())
    assert change.to_version == version.id
    assert change.proposal_id == proposal.id
    assert {e.turn_id for e in change.evidence} == {e.turn_id for e in proposal.evidence}


def test_rollback_restores_the_old_behaviour_and_the_same_version_comes_back(db: Db) -> None:
    bot, learning, proposal = proposed(db)
    approved = learning.improvements.approve(proposal.id, by="reviewer")
    base = learning.improvements.history(agent_id="ops")[0].from_version
    assert strategy(bot, "eve") == "canary"
    learning.improvements.rollback(base, by="oncall", agent_id="ops", note="canaries too slow")
    assert learning.instructions(agent_id="ops").rules == ()
    assert strategy(bot, "eve") == "all_at_once"
    back = learning.improvements.rollback(approved.version or "", by="oncall")
    assert back.to_version == approved.version
    assert strategy(bot, "eve") == "canary"
    actions = [(c.action, c.by) for c in learning.improvements.history(agent_id="ops")]
    assert actions == [("approve", "reviewer"), ("rollback", "oncall"), ("rollback", "oncall")]
    with pytest.raises(ValidationError, match="already active"):
        learning.improvements.rollback(approved.version or "", by="oncall")
    with pytest.raises(NotFoundError, match="no version"):
        learning.improvements.rollback("v000000000000", by="oncall", agent_id="ops")


def test_a_rejection_is_remembered_however_the_change_is_worded(db: Db) -> None:
    wording = {"n": 0}

    def reworded(prompt: str) -> dict[str, Any]:
        out = fix_deploys(prompt)
        if wording["n"] and out["changes"]:
            out["changes"][0]["stop"] = "deploying services with the all_at_once strategy"
            out["changes"][0]["when"] = "services are deployed to production"
        wording["n"] += 1
        return out

    counter = Counter()
    bot, learning, proposal = proposed(db, llm=model(reflect=reworded, counter=counter))
    rejected = learning.improvements.reject(proposal.id, by="reviewer", reason="we want blue-green")
    assert rejected.status == "rejected"
    assert rejected.decision_note == "we want blue-green"
    failed_deploys(bot, ["dan", "eve"])  # the failure goes on; reflection sees it again
    learning.wait_idle()
    report = learning.improve(agent_id="ops")
    assert counter["reflection"] == 2
    assert report.proposals == []
    assert [why for _, why in report.dropped] == ["the same change was rejected before"]
    with pytest.raises(ValidationError, match="already rejected"):
        learning.improvements.approve(proposal.id, by="other")


def _report_rule_then(action: str) -> Any:
    """Reflection: CSV reports after PDF complaints; then, once CSV is the rule and its
    reports are complained about, ``action`` (remove or replace) that rule."""

    def reflect(prompt: str) -> dict[str, Any]:
        turns = re.findall(r"- turn (\w+) · [^·]+ · went wrong[^\n]*called report\(", prompt)
        rule = re.search(r"^- \[(r\w+)\] Stop sending reports as pdf", prompt, re.M)
        if rule is None:
            return csv_reports(prompt)
        change: dict[str, Any] = {"action": action, "target": rule.group(1), "evidence": turns}
        if action == "replace":
            change |= {"stop": "sending reports as csv", "do": "send reports as pdf",
                       "when": "a report is asked for"}  # fmt: skip
        return {"changes": [change]}

    return reflect


@pytest.mark.parametrize("action", ["remove", "replace"])
def test_remove_or_replace_one_rule(db: Db, action: str) -> None:
    bot, learning = agent(db, model(reflect=_report_rule_then(action)))
    base = version_id(Scope("ops"), ())
    rated_reports(bot, [("grumpy", -1.0), ("grumpy", -1.0)])
    learning.wait_idle()
    [first] = learning.improve(agent_id="ops").proposals
    learning.improvements.approve(first.id, by="reviewer")
    # Now every report goes out as CSV, and the others cannot open them.
    csv = rated_reports(bot, [("ann", -1.0), ("bob", -1.0)])
    assert {
        bot.db and learning.decisions.get(t).record.tool_calls[0].args["format"] for t in csv
    } == {"csv"}
    learning.wait_idle()
    [second] = learning.improve(agent_id="ops").proposals
    assert second.change.action == action
    assert second.target_text == first.rule_text
    assert second.gate is not None
    assert second.gate.passed, second.gate.reason
    done = learning.improvements.approve(second.id, by="reviewer")
    rules = learning.instructions(agent_id="ops").rules
    if action == "remove":
        assert rules == ()
        assert done.version == base
    else:
        assert [r.text for r in rules] == [second.rule_text]
        assert done.version != base
    result = bot.run("send me the churn report", user_id="cat", session_id="c")
    assert result.tool_calls[0].args["format"] == "pdf"


def test_two_reviewers_approving_at_once_apply_it_once(db: Db) -> None:
    _, learning, proposal = proposed(db)
    outcomes: list[str] = []
    lock = threading.Lock()

    def approve(who: str) -> None:
        try:
            learning.improvements.approve(proposal.id, by=who)
            result = "ok"
        except ValidationError as exc:
            result = str(exc)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=approve, args=(f"rev{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1
    assert len(learning.improvements.history(agent_id="ops")) == 1


def test_effect_compares_outcomes_before_and_after_a_version(db: Db) -> None:
    bot, learning, proposal = proposed(db)
    approved = learning.improvements.approve(proposal.id, by="reviewer")
    for user in ("fay", "gus"):
        bot.run("deploy api to production", user_id=user, session_id=user).feedback(1)
    learning.wait_idle()
    effect = learning.improvements.effect(approved.version or "")
    assert effect.before.version == learning.improvements.history()[0].from_version
    assert (effect.before.rated, effect.before.bad) == (4, 3)  # three deploys, one report
    assert effect.before.failure_rate == 0.75
    assert (effect.after.rated, effect.after.bad, effect.after.failure_rate) == (2, 0, 0.0)
    with pytest.raises(NotFoundError, match="never made active"):
        learning.improvements.effect("v123456789abc")


def test_misconfiguration_is_loud(db: Db) -> None:
    with pytest.raises(ConfigurationError, match="turn on feedback"):
        LearningMachine(db=db, model=model(), self_improvement=True)
    with pytest.raises(ConfigurationError, match="takes True or a SelfImprovementConfig"):
        LearningMachine(db=db, model=model(), feedback=True, self_improvement="yes")
    with pytest.raises(ConfigurationError, match="max_rules_chars"):
        SelfImprovementConfig(max_rule_chars=500, max_rules_chars=100)
    plain = LearningMachine(db=db, model=model(), feedback=True, background=False)
    with pytest.raises(ConfigurationError, match="no self-improvement"):
        _ = plain.improvements
    _, learning, proposal = proposed(db)
    with pytest.raises(ValidationError, match="by must not be empty"):
        learning.improvements.approve(proposal.id, by=" ")
