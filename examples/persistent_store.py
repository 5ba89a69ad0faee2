"""A custom store that keeps what it learns in the database, using only public names.

``examples/custom_store.py`` keeps its data in a Python dict: it is gone when the process ends,
and a separate ``learning-machines worker`` would learn into its own copy that the app never
sees. This store writes learnings through the db the machine lends it, so every process using
the same db sees them, each change has a history (``learning-machines history ID``), and
curation, export and forget treat them like the built-in stores' rows.

It shares the turn's single extraction call: its part of the output is keyed by its slot name
(``"project"`` below). Run this file: it uses a scripted model, so no API key is needed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from learning_machines import Agent, ChatMessage, Extraction, LearningMachine
from learning_machines.db import (
    Change,
    Learning,
    LearningFilter,
    ListLearnings,
    PutLearning,
    SqliteDb,
)
from learning_machines.embedders import aembed
from learning_machines.stores import StoreResources
from learning_machines.testing import ScriptedModel


class Decisions(BaseModel):
    """Decisions taken in this turn about the current project."""

    decisions: list[str] = Field(
        default_factory=list, description="Each new decision in one short sentence."
    )


class ProjectDecisionStore:
    """Remembers the decisions of each project, in a shared namespace per project."""

    learning_type = "project_decision"

    def bind(self, resources: StoreResources) -> None:
        """Called once by the machine: keep the db, the embedder and the slot name."""
        self.db = resources.db
        self.embedder = resources.embedder
        self.name = resources.name

    @staticmethod
    def namespace(project_id: str) -> str:
        return f"project-{project_id}"

    def recall(self, *, project_id: str | None = None, **context: Any) -> list[Learning]:
        if not project_id:
            return []
        return self.db.run(
            ListLearnings(
                filter=LearningFilter(
                    namespaces=(self.namespace(project_id),), learning_types=(self.learning_type,)
                ),
                ascending=True,
            )
        )

    def build_context(self, data: list[Learning]) -> str:
        return "\n".join(f"- decided: {row.search_text}" for row in data)

    def extraction(self, *, project_id: str | None = None, **context: Any) -> Extraction | None:
        """This store's part of the turn's single extraction call (none outside a project)."""
        if not project_id:
            return None
        known = self.build_context(self.recall(project_id=project_id))
        return Extraction(
            output_type=Decisions,
            instructions="List decisions the team took in this turn about the current project.",
            current_state=known,
        )

    async def aapply_extraction(self, data: BaseModel, **context: Any) -> None:
        """Save each new decision as a learning of the project's namespace."""
        for decision in Decisions.model_validate(data.model_dump()).decisions:
            await self._save(decision, context)

    def process(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        """Not called: a store with ``extraction`` learns through the shared call instead."""

    def get_tools(
        self, *, project_id: str | None = None, **context: Any
    ) -> list[Callable[..., Any]]:
        async def record_project_decision(decision: str) -> str:
            """Record a decision taken in the current project, in one short sentence."""
            if not project_id:
                return "no project in this conversation; nothing recorded"
            row = await self._save(decision, {**context, "project_id": project_id})
            return f"recorded as {row.id[:8]}"

        return [record_project_decision]

    async def _save(self, decision: str, context: dict[str, Any]) -> Learning:
        text = decision.strip()
        vector = (await aembed(self.embedder, [text]))[0]
        row = Learning(
            learning_type=self.learning_type,
            namespace=self.namespace(context["project_id"]),
            user_id=context.get("user_id"),  # in a shared namespace: who it came from
            session_id=context.get("session_id"),
            search_text=text,
            content={"decision": text, "project_id": context["project_id"]},
            embedding=tuple(float(x) for x in vector),
            embedder=self.embedder.name,
            provenance={"store": self.name, "turn_id": context.get("turn_id")},
        )
        change = Change(
            action="create",
            actor={"store": self.name, "user_id": context.get("user_id")},
            reason="decided in conversation",
            turn_id=context.get("turn_id"),
        )
        saved: Learning = await self.db.arun(PutLearning(learning=row, change=change))
        return saved


def build() -> LearningMachine:
    """The app's machine (also what ``--machine examples.persistent_store:build`` names)."""
    return LearningMachine(custom_stores={"project": ProjectDecisionStore()})


def decisions(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The scripted model's extraction: the key is the store's slot name, "project"."""
    said = [line.split(":", 1)[1] for line in prompt.splitlines() if line.startswith("user: ")]
    found = [s.split("decided", 1)[1].strip(" :.") for s in said if "decided" in s]
    return {"project": {"decisions": found}}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "projects.db"
        model = ScriptedModel(answers="Noted.", extraction=decisions)
        app = Agent(model=model, db=SqliteDb(path), learning=build())
        app.run(
            "We decided: Apollo uses PostgreSQL.",
            user_id="u1",
            session_id="s1",
            project_id="apollo",
        )
        app.wait_idle()
        app.close()

        # Another process on the same db (here a fresh machine) sees what was learned.
        later = Agent(
            model=ScriptedModel(answers="PostgreSQL."), db=SqliteDb(path), learning=build()
        )
        result = later.run(
            "Which database do we use?", user_id="u2", session_id="s2", project_id="apollo"
        )
        print(result.context.text if result.context else "")
        assert later.machine is not None
        (row,) = later.machine.service.learnings(namespace="project-apollo")
        for entry in later.machine.service.history(row.id):
            print(f"history: {entry.action} by {entry.actor} ({entry.reason})")
        later.close()


if __name__ == "__main__":
    main()
