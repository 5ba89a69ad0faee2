"""The HTTP API's request and response bodies (pydantic models, so OpenAPI documents them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..db import HistoryEntry, Learning, PendingWork, Proposal, ScoredLearning

__all__ = [
    "DecisionIn",
    "ErrorOut",
    "FinishIn",
    "FinishOut",
    "HealthOut",
    "HistoryOut",
    "LearningOut",
    "MessageIn",
    "PrincipalOut",
    "ProposalOut",
    "RememberIn",
    "RestoreIn",
    "ScoredOut",
    "ToolCallIn",
    "ToolCallOut",
    "TurnIn",
    "TurnOut",
    "WorkOut",
]

#: The longest message a turn accepts over HTTP, in characters.
MAX_MESSAGE = 100_000


class ErrorOut(BaseModel):
    """An error: its kind and what to do about it."""

    error: str = Field(description="The exception's name, e.g. PermissionDenied.")
    detail: str = Field(description="What went wrong and how to fix it.")


class HealthOut(BaseModel):
    """The server is up."""

    status: Literal["ok"] = "ok"
    version: str


class PrincipalOut(BaseModel):
    """Who the key is."""

    name: str
    role: str


class TurnIn(BaseModel):
    """Begin a turn: recall what helps answer ``message``."""

    message: str = Field(min_length=1, max_length=MAX_MESSAGE, description="The user's message.")
    session_id: str | None = Field(default=None, description="The conversation (new if absent).")
    agent_id: str | None = Field(default=None, description="The agent answering, if it matters.")
    history_turns: int = Field(
        default=0, ge=0, le=50, description="Recent turns of the session to return."
    )


class TurnOut(BaseModel):
    """A begun turn: the context block for the system prompt and the turn's tools."""

    turn_id: str
    session_id: str
    turn_index: int
    context: str = Field(description="Add this to the system prompt (data, not instructions).")
    learning_ids: list[str] = Field(description="Learnings recalled into the context.")
    tools: list[dict[str, Any]] = Field(description="The turn's tools as OpenAI function tools.")
    history: list[dict[str, Any]] = Field(description="Recent turns of the session, oldest first.")


class ToolCallIn(BaseModel):
    """Arguments of one tool call."""

    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCallOut(BaseModel):
    """What the tool answered."""

    result: str


class MessageIn(BaseModel):
    """One message of a finished turn."""

    role: Literal["user", "assistant", "system", "tool"]
    content: str = Field(max_length=MAX_MESSAGE)


class FinishIn(BaseModel):
    """Finish a turn with what was said."""

    messages: list[MessageIn] = Field(min_length=1, max_length=200)
    answer: str | None = Field(default=None, max_length=MAX_MESSAGE)


class FinishOut(BaseModel):
    """The turn is recorded; its learning is queued."""

    turn_id: str
    pending_work_id: str | None


class RememberIn(BaseModel):
    """Record an exchange without a begun turn."""

    user_message: str = Field(min_length=1, max_length=MAX_MESSAGE)
    assistant_message: str = Field(max_length=MAX_MESSAGE)
    session_id: str | None = None


class RestoreIn(BaseModel):
    """Undo the last curation step, or go back to before ``to_entry``."""

    to_entry: str | None = None


class DecisionIn(BaseModel):
    """A reviewer's note on a decision."""

    note: str | None = Field(default=None, max_length=2000)


class LearningOut(BaseModel):
    """A learning, with where it came from."""

    id: str
    learning_type: str
    namespace: str
    content: dict[str, Any]
    text: str
    status: str
    user_id: str | None
    session_id: str | None
    entity_id: str | None
    created_at: datetime
    updated_at: datetime
    valid_from: datetime | None
    valid_to: datetime | None
    superseded_by: str | None
    recall_count: int
    provenance: dict[str, Any]

    @classmethod
    def of(cls, row: Learning) -> LearningOut:
        """From a stored learning (no embedding)."""
        return cls(
            id=row.id,
            learning_type=row.learning_type,
            namespace=row.namespace,
            content=row.content,
            text=row.search_text,
            status=row.status,
            user_id=row.user_id,
            session_id=row.session_id,
            entity_id=row.entity_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            superseded_by=row.superseded_by,
            recall_count=row.recall_count,
            provenance=row.provenance,
        )


class ScoredOut(BaseModel):
    """A search hit."""

    learning: LearningOut
    score: float

    @classmethod
    def of(cls, hit: ScoredLearning) -> ScoredOut:
        """From a search hit."""
        return cls(learning=LearningOut.of(hit.learning), score=hit.score)


def _strip(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: v for k, v in row.items() if k != "embedding"}


class HistoryOut(BaseModel):
    """One recorded change of a learning."""

    id: str
    action: str
    actor: dict[str, Any]
    reason: str
    turn_id: str | None
    created_at: datetime
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryOut:
        """From a history entry (without embeddings)."""
        return cls(
            id=entry.id,
            action=entry.action,
            actor=entry.actor,
            reason=entry.reason,
            turn_id=entry.turn_id,
            created_at=entry.created_at,
            old=_strip(entry.old),
            new=_strip(entry.new),
        )


class ProposalOut(BaseModel):
    """A proposal and its decision."""

    id: str
    store: str
    mode: str
    namespace: str
    user_id: str | None
    session_id: str | None
    summary: str
    payload: dict[str, Any]
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    learning_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, p: Proposal) -> ProposalOut:
        """From a stored proposal."""
        return cls(
            id=p.id,
            store=p.store,
            mode=p.mode,
            namespace=p.namespace,
            user_id=p.user_id,
            session_id=p.session_id,
            summary=p.summary,
            payload=p.payload,
            status=p.status,
            decided_by=p.decided_by,
            decided_at=p.decided_at,
            decision_note=p.decision_note,
            learning_id=p.learning_id,
            created_at=p.created_at,
        )


class WorkOut(BaseModel):
    """A piece of pending work (the payload is left out: it holds whole turns)."""

    id: str
    kind: str
    user_id: str | None
    status: str
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, w: PendingWork) -> WorkOut:
        """From a work item."""
        return cls(
            id=w.id,
            kind=w.kind,
            user_id=w.user_id,
            status=w.status,
            attempts=w.attempts,
            max_attempts=w.max_attempts,
            last_error=w.last_error,
            created_at=w.created_at,
            updated_at=w.updated_at,
        )
