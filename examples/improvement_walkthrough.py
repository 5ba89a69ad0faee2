"""One improvement, from a recurring failure to an approved rule: the real text of each step.

The output of this script is what docs/self-improvement.md shows (a test keeps them in step).
It runs offline: an in-memory SQLite database, the bundled MiniLM embedder, and the scripted
rule-following model of ``bench improve`` as the agent, its learning model and its reflection
(it does what its instructions say; the reflection proposes a rule for an option that went
wrong twice). Turn and proposal ids are random, so they are printed as ``turn-1``,
``proposal-1``; version ids are addresses of content and print as they are.

    python examples/improvement_walkthrough.py
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from learning_machines import Agent, FeedbackConfig, LearningMachine, SelfImprovementConfig
from learning_machines.bench._feedback_world import Environment
from learning_machines.bench._improve_world import IMPROVE_TASKS, agent_model, naive_reflection
from learning_machines.db import SqliteDb
from learning_machines.embedders import MiniLMEmbedder

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
REQUESTS = [  # (user, request, how they rate it when it worked)
    ("ann", "deploy billing-api to production", 1),
    ("bob", "send me the churn report", 1),
    ("cat", "deploy search-api to production", 1),
    ("dan", "convert 120 USD to EUR for the invoice", 1),
    ("eve", "deploy checkout-api to production", 1),
    ("fay", "send me the uptime report", 1),
]


def main() -> dict[str, str]:
    """Run the walkthrough; returns the random ids and their printed labels."""
    seen: dict[str, Any] = {}

    def reflect(prompt: str) -> dict[str, Any]:
        seen["prompt"], seen["answer"] = prompt, naive_reflection(prompt)
        return dict(seen["answer"])

    llm = agent_model(reflect=reflect, counter={})
    machine = LearningMachine(
        db=SqliteDb(":memory:"),
        model=llm,
        embedder=MiniLMEmbedder(),
        background=False,
        feedback=FeedbackConfig(lessons=False),
        self_improvement=SelfImprovementConfig(every_turns=None, lookback=timedelta(days=3650)),
    )
    env = Environment(tasks=IMPROVE_TASKS)
    agent = Agent(
        model=llm,
        db=machine.db,
        learning=machine,
        tools=env.tools(),
        instructions="You are an operations assistant. Do what is asked with your tools.",
        agent_id="ops",
    )
    ids: dict[str, str] = {}
    print("===== 1. the turns, as each user's decision log keeps them")
    for day, (user, message, _) in enumerate(REQUESTS):
        result = agent.run(message, user_id=user, session_id=user, now=START + timedelta(day))
        ids[result.turn_id] = f"turn-{day + 1}"
        failed = "took production down" in result.text or "failed" in result.text
        result.feedback(-1 if failed else 1, comment="it took production down" if failed else None)
        record = machine.decisions.get(result.turn_id).record
        calls = "; ".join(f"{c.name}({json.dumps(c.args)})" for c in record.tool_calls)
        outcome = record.outcome
        rated = f"{outcome.score:+.0f} ({outcome.source})" if outcome else "unrated"
        print(f"{user}: {message!r} → {calls} → {rated}")

    report = machine.improve(agent_id="ops")
    print("\n===== 2. the reflection call: the prompt it sent")
    print(seen["prompt"])
    print("\n===== 3. what the model answered")
    print(json.dumps(seen["answer"], indent=2))

    [proposal] = report.proposals
    ids[proposal.id] = "proposal-1"
    gate = proposal.gate
    assert gate is not None
    print("\n===== 4. the proposal, screened and replayed before anyone sees it")
    print(f"{proposal.summary}\nstatus: {proposal.status} (against {proposal.base_version})")
    print(f"expected effect: {proposal.expected_effect}\nrisk: {proposal.risk}")
    print("evidence: " + ", ".join(f"{e.turn_id} ({e.score:+.0f} {e.source})"
                                   for e in proposal.evidence))  # fmt: skip
    print(f"screen: {'nothing found' if not proposal.screen else proposal.screen}")
    print(f"gate: {'passed' if gate.passed else 'failed'} — {gate.reason}")
    for case in gate.cases:
        print(
            f"  {case.turn_id} {case.kind:6} {case.verdict:9} without: {case.without:32} "
            f"with: {case.with_change}"
        )

    print("\n===== 5. a person approves (the user whose turns are evidence could not)")
    try:
        machine.improvements.approve(proposal.id, by="ann")
    except Exception as refused:  # noqa: BLE001 - printed: it is the point of this step
        print(f"ann: {type(refused).__name__}: {refused}")
    approved = machine.improvements.approve(proposal.id, by="rita", note="canaries, yes")
    print(f"rita: {approved.status}; version {approved.version}")
    print("\n----- the agent's instructions now")
    print(machine.instructions(agent_id="ops").text)

    print("\n===== 6. the agent's next turn (no restart)")
    result = agent.run(
        "deploy ledger-api to production", user_id="gus", session_id="gus", now=START + timedelta(9)
    )
    ids[result.turn_id] = "turn-7"
    result.feedback(1)
    record = machine.decisions.get(result.turn_id).record
    call = record.tool_calls[0]
    print(f"gus: {record.message!r} → {call.name}({json.dumps(call.args)})")
    print(f"answer: {result.text}\ninstructions version of the turn: {record.instructions_version}")

    print("\n===== 7. the history, and the effect")
    for change in machine.improvements.history(agent_id="ops"):
        print(
            f"{change.action} {change.from_version} → {change.to_version} by {change.by} "
            f"({change.note}); evidence: {', '.join(e.turn_id for e in change.evidence)}"
        )
    effect = machine.improvements.effect(approved.version or "")
    for label, stats in (("before", effect.before), ("after", effect.after)):
        print(
            f"{label} ({stats.version}): turns {stats.turns}, rated {stats.rated}, "
            f"went wrong {stats.bad}"
        )
    print(f"model calls: {machine.improvements.usage.reflection_calls} reflection, "
          f"{machine.improvements.usage.replay_calls} gate replays")  # fmt: skip
    machine.close()
    return ids


def _masked(text: str, ids: dict[str, str]) -> str:
    for raw, label in ids.items():
        text = text.replace(raw, label)
    return re.sub(r"\b[0-9a-f]{32}\b", "(id)", text)


if __name__ == "__main__":
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        labels = main()
    print(_masked(buffer.getvalue(), labels).rstrip())
