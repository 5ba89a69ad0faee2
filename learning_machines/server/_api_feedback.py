"""The HTTP API of behavioural feedback (Phase 2): rate a turn, read a user's decision log.

``POST /v1/turns/{turn_id}/feedback`` rates a finished turn: a user key rates its own turns
(another user's turn is *not found*, like an unknown id); reviewers and admins rate any turn.
``GET /v1/decisions`` lists a user's decision records with their outcomes (a user key: its own;
a reviewer names the user). Both need a machine built with ``feedback=True``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ..feedback import FeedbackSignal
from ..machine import Decision
from ._deps import Authenticated, GatewayDep

__all__ = ["DecisionOut", "FeedbackIn", "FeedbackOut", "decisions", "feedback"]

feedback = APIRouter(prefix="/v1/turns", tags=["feedback"])
decisions = APIRouter(prefix="/v1/decisions", tags=["feedback"])


class FeedbackIn(BaseModel):
    """A rating of a finished turn."""

    score: float = Field(ge=-1, le=1, description="From -1 (bad) to 1 (good); thumbs are ±1.")
    comment: str | None = Field(default=None, max_length=2000, description="What went wrong.")


class DecisionOut(BaseModel):
    """One turn's decision record: what it did, what it recalled, how it turned out."""

    id: str
    turn_id: str
    user_id: str
    created_at: datetime
    verdict: Literal["good", "bad", "unclear", "unrated"]
    helpful: float = Field(description="Evidence that the turn went well (trust-weighted).")
    harmful: float = Field(description="Evidence that it went wrong.")
    record: dict[str, Any] = Field(
        description="Message, answer, tool calls, recalls, credit, rationale, model, outcome."
    )

    @classmethod
    def of(cls, decision: Decision) -> DecisionOut:
        """From a decision of the log."""
        return cls(
            id=decision.id,
            turn_id=decision.turn_id,
            user_id=decision.user_id,
            created_at=decision.created_at,
            verdict=decision.verdict,
            helpful=decision.helpful,
            harmful=decision.harmful,
            record=decision.record.model_dump(mode="json"),
        )


class FeedbackOut(BaseModel):
    """The rating as recorded, and the turn's outcome once every signal on it is counted."""

    turn_id: str
    user_id: str = Field(description="Whose turn it is.")
    rater: str = Field(description="Who rated: explicit:<user>, or explicit:reviewer:<name>.")
    score: float
    decision: DecisionOut

    @classmethod
    def of(cls, signal: FeedbackSignal, decision: Decision) -> FeedbackOut:
        """From the recorded signal and the turn's record."""
        return cls(
            turn_id=signal.turn_id,
            user_id=signal.user_id,
            rater=signal.rater,
            score=signal.score,
            decision=DecisionOut.of(decision),
        )


@feedback.post("/{turn_id}/feedback")
async def rate_turn(
    turn_id: str, body: FeedbackIn, principal: Authenticated, gateway: GatewayDep
) -> FeedbackOut:
    """Rate a finished turn; its outcome is credited to what it recalled.

    A new rating by the same key replaces its earlier one.
    """
    signal, decision = await gateway.afeedback(
        principal, turn_id, score=body.score, comment=body.comment
    )
    return FeedbackOut.of(signal, decision)


@decisions.get("")
async def list_decisions(
    principal: Authenticated,
    gateway: GatewayDep,
    user_id: Annotated[
        str | None,
        Query(description="The user (reviewers and admins); a user key may only name itself."),
    ] = None,
    session_id: str | None = None,
    tool: Annotated[str | None, Query(description="Only turns that called this tool.")] = None,
    outcome: Literal["good", "bad", "unclear", "unrated"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DecisionOut]:
    """A user's decision log, newest first: what each turn did and how it turned out."""
    rows = await gateway.adecisions(
        principal, user_id=user_id, session_id=session_id, tool=tool, outcome=outcome, limit=limit
    )
    return [DecisionOut.of(d) for d in rows]
