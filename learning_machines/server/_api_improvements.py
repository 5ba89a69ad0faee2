"""The HTTP API of self-improvement (Phase 3): review proposals, approve, reject, roll back.

``/v1/improvements`` lists an agent's proposals (``status``, default ``pending``), gets one with
its evidence turns, screen and gate result, and approves or rejects it; ``/v1/instructions``
gives an agent's active instructions with their history, and rolls back to an earlier version.
Reviewer and admin keys only; the key's name is recorded as who decided. Needs a machine built
with ``self_improvement=...`` (see docs/self-improvement.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ..improvement import ImprovementProposal, InstructionChange, Rule, Trace
from ._deps import Authenticated, GatewayDep
from ._improvements import AgentInstructions

__all__ = ["improvements", "instructions"]

improvements = APIRouter(prefix="/v1/improvements", tags=["self-improvement"])
instructions = APIRouter(prefix="/v1/instructions", tags=["self-improvement"])

StatusQuery = Annotated[
    Literal["pending", "failed_gate", "blocked", "approved", "rejected", "withdrawn", "all"],
    Query(description="pending: offered for approval (those that passed the screen and gate)."),
]


class ImprovementOut(BaseModel):
    """A proposal: the change, its evidence, screen, gate result and decision."""

    summary: str = Field(description="One line a person can judge it by.")
    proposal: ImprovementProposal

    @classmethod
    def of(cls, proposal: ImprovementProposal) -> ImprovementOut:
        """From a stored proposal."""
        return cls(summary=proposal.summary, proposal=proposal)


class EvidenceTurnOut(BaseModel):
    """One turn a proposal rests on: who, what was asked and done, how it turned out."""

    turn_id: str
    user_id: str
    created_at: datetime
    verdict: str
    record: dict[str, Any] = Field(description="The turn's decision record.")

    @classmethod
    def of(cls, trace: Trace) -> EvidenceTurnOut:
        """From the turn's trace."""
        return cls(
            turn_id=trace.turn_id,
            user_id=trace.user_id,
            created_at=trace.created_at,
            verdict=trace.verdict,
            record=trace.record.model_dump(mode="json"),
        )


class ImprovementDetailOut(ImprovementOut):
    """A proposal with its evidence turns (a forgotten user's turns are gone from it)."""

    evidence_turns: list[EvidenceTurnOut]


class DecideIn(BaseModel):
    """Why (recorded with the decision)."""

    note: str | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    """Why it is rejected (kept with it)."""

    reason: str | None = Field(default=None, max_length=2000)


class InstructionsOut(BaseModel):
    """An agent's active instructions and every approval and rollback that made them."""

    agent_id: str | None
    team_id: str | None
    version: str = Field(description="The active version (each turn records the one it ran).")
    base: str = Field(description="The agent's own instructions.")
    rules: list[Rule] = Field(description="The approved rules, in force now.")
    text: str = Field(description="The whole instructions: base text, then the rules.")
    history: list[InstructionChange]

    @classmethod
    def of(cls, agent: AgentInstructions) -> InstructionsOut:
        """From an agent's instructions and history."""
        active = agent.active
        return cls(
            agent_id=active.agent_id,
            team_id=active.team_id,
            version=active.version,
            base=active.base,
            rules=list(active.rules),
            text=active.text,
            history=agent.history,
        )


class RollbackIn(BaseModel):
    """The version to make active again, and whose."""

    version: str = Field(description="A version from the history (v…).")
    agent_id: str | None = None
    team_id: str | None = None
    note: str | None = Field(default=None, max_length=2000)


@improvements.get("")
async def list_improvements(
    principal: Authenticated,
    gateway: GatewayDep,
    status: StatusQuery = "pending",
    agent_id: str | None = None,
    team_id: str | None = None,
) -> list[ImprovementOut]:
    """Proposals to change agents' instructions, newest first."""
    rows = await gateway.improvements.alist(
        principal, status=status, agent_id=agent_id, team_id=team_id
    )
    return [ImprovementOut.of(p) for p in rows]


@improvements.get("/{proposal_id}")
async def get_improvement(
    proposal_id: str, principal: Authenticated, gateway: GatewayDep
) -> ImprovementDetailOut:
    """One proposal with its evidence turns, screen and gate result (the replays)."""
    proposal, turns = await gateway.improvements.aget(principal, proposal_id)
    return ImprovementDetailOut(
        summary=proposal.summary,
        proposal=proposal,
        evidence_turns=[EvidenceTurnOut.of(t) for t in turns],
    )


@improvements.post("/{proposal_id}/approve")
async def approve_improvement(
    proposal_id: str, principal: Authenticated, gateway: GatewayDep, body: DecideIn | None = None
) -> ImprovementOut:
    """Approve: the agent's instructions get a new version, used from its next turn.

    A reviewer whose own turns are the evidence cannot approve it alone (403).
    """
    done = await gateway.improvements.aapprove(
        principal, proposal_id, note=body.note if body else None
    )
    return ImprovementOut.of(done)


@improvements.post("/{proposal_id}/reject")
async def reject_improvement(
    proposal_id: str, principal: Authenticated, gateway: GatewayDep, body: RejectIn | None = None
) -> ImprovementOut:
    """Reject (kept; the same change is never proposed again)."""
    done = await gateway.improvements.areject(
        principal, proposal_id, reason=body.reason if body else None
    )
    return ImprovementOut.of(done)


@instructions.get("")
async def get_instructions(
    principal: Authenticated,
    gateway: GatewayDep,
    agent_id: str | None = None,
    team_id: str | None = None,
) -> InstructionsOut:
    """An agent's active instructions (base text plus approved rules) and their history."""
    agent = await gateway.improvements.ainstructions(principal, agent_id=agent_id, team_id=team_id)
    return InstructionsOut.of(agent)


@instructions.post("/rollback")
async def rollback_instructions(
    body: RollbackIn, principal: Authenticated, gateway: GatewayDep
) -> InstructionsOut:
    """Make an earlier version active again (recorded in the history with the key's name)."""
    review = gateway.improvements
    change = await review.arollback(
        principal, body.version, agent_id=body.agent_id, team_id=body.team_id, note=body.note
    )
    agent = await review.ainstructions(principal, agent_id=change.agent_id, team_id=change.team_id)
    return InstructionsOut.of(agent)
