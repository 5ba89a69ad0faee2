"""Print the decision log's and a lesson's context blocks, as shown in docs/feedback.md.

Runs offline: an in-memory SQLite database and the default MiniLM embedder; no model is
needed (the turns are driven the way any framework drives them: begin, answer, finish).
On three days one user asks for a deploy, the agent deploys all at once, and the user rates
each turn down. The fourth request recalls those decisions and the lesson learned from them.

    python examples/feedback_blocks.py
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from learning_machines import FeedbackConfig, LearningMachine, LearningMode
from learning_machines.db import SqliteDb
from learning_machines.embedders import MiniLMEmbedder
from learning_machines.stores import DecisionLogConfig

START = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def main() -> None:
    machine = LearningMachine(
        db=SqliteDb(":memory:"),
        embedder=MiniLMEmbedder(),
        decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC),  # no model needed
        feedback=FeedbackConfig(),  # lessons of each user, after three sessions
        background=False,
    )
    for day, service in enumerate(["billing-api", "search-api", "checkout-api"]):
        message = f"deploy {service} to production"
        turn = machine.begin(
            message, user_id="ann", session_id=f"s{day}", now=START + timedelta(days=day)
        )
        # What the agent did this turn, as any framework reports it.
        turn.tools.call(
            "log_decision", {"decision": "deploy all at once", "rationale": "fastest to ship"}
        )
        call = {"name": "deploy", "args": {"service": service, "strategy": "all_at_once"}}
        turn.finish(
            [
                message,
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "assistant", "content": f"{service} is live."},
            ]
        )
        machine.feedback(turn_id=turn.context.turn_id, score=-1, comment="it took production down")
    turn = machine.begin(
        "deploy ledger-api to production",
        user_id="ann",
        session_id="s9",
        now=START + timedelta(days=7),
    )
    print("===== decision log block")
    print(turn.learned.blocks["decision_log"])
    print()
    print("===== lessons block")
    print(turn.learned.blocks["lessons"])


if __name__ == "__main__":
    main()
