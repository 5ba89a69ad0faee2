"""A custom store in ~50 lines: decisions per project, keyed by a context key of your own.

``project_id`` is a context key Learning Machines has never heard of: pass it to ``run()`` and it
reaches every store method. Run this file: it uses a scripted model, so no API key is needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from learning_machines import Agent, ChatMessage, LearningMachine
from learning_machines.db import SqliteDb
from learning_machines.testing import ScriptedModel

DECISION = re.compile(r"\b(?:decision|we decided|decided)\s*:?\s*(?P<what>[^.!?\n]+)", re.I)


class ProjectContextStore:
    """Remembers the decisions taken in each project."""

    learning_type = "project_context"

    def __init__(self) -> None:
        self.decisions: dict[str, list[str]] = {}

    def recall(self, *, project_id: str | None = None, **context: Any) -> list[str]:
        return list(self.decisions.get(project_id or "", []))

    def build_context(self, data: list[str]) -> str:
        return "\n".join(f"- decided: {item}" for item in data)

    def process(
        self, messages: Sequence[ChatMessage], *, project_id: str | None = None, **context: Any
    ) -> None:
        if not project_id:
            return
        for message in messages:
            if message.role == "user":
                for match in DECISION.finditer(message.content):
                    self._add(project_id, match.group("what"))

    def get_tools(
        self, *, project_id: str | None = None, **context: Any
    ) -> list[Callable[..., Any]]:
        def record_project_decision(decision: str) -> str:
            """Record a decision taken in the current project, in one short sentence."""
            if not project_id:
                return "no project in this conversation; nothing recorded"
            self._add(project_id, decision)
            return f"recorded for {project_id}"

        return [record_project_decision]

    def _add(self, project_id: str, decision: str) -> None:
        items = self.decisions.setdefault(project_id, [])
        if decision.strip() not in items:
            items.append(decision.strip())


def main() -> None:
    learning = LearningMachine(custom_stores={"project": ProjectContextStore()})
    agent = Agent(model=ScriptedModel(answers="Noted."), db=SqliteDb(":memory:"), learning=learning)
    agent.run(
        "Decision: we use PostgreSQL for Apollo.",
        user_id="u1",
        session_id="s1",
        project_id="apollo",
    )
    agent.wait_idle()
    result = agent.run(
        "Which database do we use?", user_id="u1", session_id="s1", project_id="apollo"
    )
    print(result.context.text if result.context else "")


if __name__ == "__main__":
    main()
