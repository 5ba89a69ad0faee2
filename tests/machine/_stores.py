"""Small stores used by the machine tests: they keep what they learn in the machine's db."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from learning_machines import ChatMessage, Extraction, LearningMode
from learning_machines.db import (
    Change,
    Learning,
    LearningFilter,
    ListLearnings,
    PutLearning,
)
from learning_machines.stores import StoreResources


class Notes(BaseModel):
    notes: list[str] = Field(default_factory=list, description="Facts worth remembering")


class NoteStore:
    """A describing store: shares the machine's single extraction call."""

    mode = LearningMode.BACKGROUND

    def __init__(self, learning_type: str) -> None:
        self._type = learning_type
        self.resources: StoreResources | None = None
        self.applied: list[list[str]] = []

    @property
    def learning_type(self) -> str:
        return self._type

    def bind(self, resources: StoreResources) -> None:
        self.resources = resources

    def _filter(self, user_id: str | None) -> LearningFilter:
        return LearningFilter(
            namespaces=("user",), reader_user_id=user_id, learning_types=(self._type,)
        )

    def notes(self, user_id: str) -> list[str]:
        assert self.resources is not None
        rows = self.resources.db.run(ListLearnings(filter=self._filter(user_id), limit=None))
        return sorted(row.search_text for row in rows)

    def recall(self, *, user_id: str | None = None, **context: Any) -> list[str]:
        return self.notes(user_id) if user_id else []

    def build_context(self, data: list[str]) -> str:
        return "\n".join(f"- {note}" for note in data)

    def process(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        raise AssertionError("describing stores are processed through the shared extraction")

    def get_tools(self, **context: Any) -> list[Callable[..., Any]]:
        return []

    def extraction(self, **context: Any) -> Extraction:
        return Extraction(output_type=Notes, instructions=f"Notes for {self._type}.")

    async def aapply_extraction(self, data: BaseModel, **context: Any) -> None:
        assert isinstance(data, Notes)
        assert self.resources is not None
        self.applied.append(list(data.notes))
        for note in data.notes:
            await self.resources.db.arun(
                PutLearning(
                    learning=Learning(
                        learning_type=self._type,
                        user_id=context["user_id"],
                        session_id=context.get("session_id"),
                        search_text=note,
                        provenance={"turn_id": context.get("turn_id")},
                    ),
                    change=Change(action="create", turn_id=context.get("turn_id")),
                )
            )


class TranscriptStore:
    """A store that does not describe itself: it gets its own ``process`` call, no model."""

    learning_type = "transcript"

    def __init__(self) -> None:
        self.seen: list[tuple[list[tuple[str, str]], Mapping[str, Any]]] = []

    def recall(self, **context: Any) -> int:
        return len(self.seen)

    def build_context(self, data: int) -> str:
        return f"{data} turns seen" if data else ""

    def process(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        self.seen.append(([(m.role, m.content) for m in messages], dict(context)))

    def get_tools(self, **context: Any) -> list[Callable[..., Any]]:
        return []


def notes_extraction(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Scripted extraction: every store gets the user's line as a note."""
    user_lines = [
        line[len("user: ") :] for line in prompt.splitlines() if line.startswith("user: ")
    ]
    return {name: {"notes": user_lines} for name in schema.get("properties", {})}
