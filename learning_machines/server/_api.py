"""The HTTP API, ``/v1``: turns, learnings, proposals, a user's data, pending work, health.

Every route but ``/v1/health`` needs a bearer key; the :class:`Gateway` decides what the key
may reach. Feedback (Phase 2) and improvements (Phase 3) add their own router module next to
this one and list it in ``ROUTERS`` in :mod:`learning_machines.server.http`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from .._messages import ChatMessage
from ..db._records import LearningStatus, WorkStatus
from ._api_models import (
    DecisionIn,
    FinishIn,
    FinishOut,
    HealthOut,
    HistoryOut,
    LearningOut,
    PrincipalOut,
    ProposalOut,
    RememberIn,
    RestoreIn,
    ScoredOut,
    ToolCallIn,
    ToolCallOut,
    TurnIn,
    TurnOut,
    WorkOut,
)
from ._deps import Authenticated, GatewayDep

__all__ = ["health", "learnings", "proposals", "turns", "users", "work"]

UserQuery = Annotated[
    str | None,
    Query(description="The user (reviewers and admins); a user key may only name itself."),
]
Limit = Annotated[int, Query(ge=1, le=500)]

health = APIRouter(prefix="/v1", tags=["health"])
turns = APIRouter(prefix="/v1/turns", tags=["turns"])
learnings = APIRouter(prefix="/v1/learnings", tags=["learnings"])
proposals = APIRouter(prefix="/v1/proposals", tags=["proposals"])
users = APIRouter(prefix="/v1/users", tags=["users"])
work = APIRouter(prefix="/v1/work", tags=["work"])


@health.get("/health")
async def get_health() -> HealthOut:
    """The server is up (no key needed; says nothing about any user)."""
    from .. import __version__

    return HealthOut(version=__version__)


@health.get("/me")
async def get_me(principal: Authenticated) -> PrincipalOut:
    """Who this key is."""
    return PrincipalOut(name=principal.name, role=principal.role.value)


# --- turns ------------------------------------------------------------------------------------


@turns.post("")
async def begin_turn(body: TurnIn, principal: Authenticated, gateway: GatewayDep) -> TurnOut:
    """Recall before answering: the context block and the turn's tools (a user key)."""
    turn = await gateway.abegin(
        principal,
        body.message,
        session_id=body.session_id,
        agent_id=body.agent_id,
        history_turns=body.history_turns,
    )
    offered = {spec.name for spec in gateway.tools(turn)}
    return TurnOut(
        turn_id=turn.context.turn_id,
        session_id=turn.context.session_id,
        turn_index=turn.context.turn_index,
        context=gateway.context_text(turn),
        learning_ids=list(turn.learned.learning_ids),
        tools=[t for t in turn.tools.schemas(style="openai") if t["function"]["name"] in offered],
        history=[m.to_dict() for m in turn.history_messages()],
    )


@turns.post("/remember")
async def remember_turn(
    body: RememberIn, principal: Authenticated, gateway: GatewayDep
) -> FinishOut:
    """Record a finished exchange without a begun turn; learning is queued."""
    turn = await gateway.aremember(
        principal,
        user_message=body.user_message,
        assistant_message=body.assistant_message,
        session_id=body.session_id,
    )
    work_item = turn.learning_work
    return FinishOut(
        turn_id=turn.context.turn_id, pending_work_id=work_item.id if work_item else None
    )


@turns.post("/{turn_id}/tools/{name}")
async def call_tool(
    turn_id: str, name: str, body: ToolCallIn, principal: Authenticated, gateway: GatewayDep
) -> ToolCallOut:
    """Run one of an open turn's tools (the user is the turn's, never an argument)."""
    turn = gateway.open_turn(principal, turn_id)
    return ToolCallOut(result=await gateway.acall_tool(turn, name, body.arguments))


@turns.post("/{turn_id}/finish")
async def finish_turn(
    turn_id: str, body: FinishIn, principal: Authenticated, gateway: GatewayDep
) -> FinishOut:
    """Process after answering: record the turn and queue its learning."""
    messages = [ChatMessage(role=m.role, content=m.content) for m in body.messages]
    work_item = await gateway.afinish(principal, turn_id, messages, answer=body.answer)
    return FinishOut(turn_id=turn_id, pending_work_id=work_item.id if work_item else None)


# --- learnings --------------------------------------------------------------------------------


@learnings.get("")
async def list_learnings(
    principal: Authenticated,
    gateway: GatewayDep,
    user_id: UserQuery = None,
    namespace: str | None = None,
    learning_type: str | None = None,
    status: Annotated[list[LearningStatus] | None, Query()] = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[LearningOut]:
    """What is known about a user, newest first."""
    rows = await gateway.alearnings(
        principal,
        user_id=user_id,
        namespace=namespace,
        learning_type=learning_type,
        statuses=tuple(status or ("active",)),
        limit=limit,
        offset=offset,
    )
    return [LearningOut.of(r) for r in rows]


@learnings.get("/search")
async def search_learnings(
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    principal: Authenticated,
    gateway: GatewayDep,
    user_id: UserQuery = None,
    learning_type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[ScoredOut]:
    """Hybrid search over what the user may read (shared rows of others come anonymous)."""
    hits = await gateway.asearch(
        principal, q, user_id=user_id, learning_type=learning_type, limit=limit
    )
    return [ScoredOut.of(h) for h in hits]


@learnings.get("/{learning_id}")
async def get_learning(
    learning_id: str, principal: Authenticated, gateway: GatewayDep, user_id: UserQuery = None
) -> LearningOut:
    """One learning with its provenance."""
    return LearningOut.of(await gateway.aget(principal, learning_id, user_id=user_id))


@learnings.get("/{learning_id}/history")
async def learning_history(
    learning_id: str, principal: Authenticated, gateway: GatewayDep, user_id: UserQuery = None
) -> list[HistoryOut]:
    """Every recorded change of a learning, oldest first."""
    entries = await gateway.ahistory(principal, learning_id, user_id=user_id)
    return [HistoryOut.of(e) for e in entries]


@learnings.post("/{learning_id}/restore")
async def restore_learning(
    learning_id: str,
    principal: Authenticated,
    gateway: GatewayDep,
    body: RestoreIn | None = None,
    user_id: UserQuery = None,
) -> LearningOut:
    """Undo the last curation step (or go back to before ``to_entry``); who did it is kept."""
    restored = await gateway.arestore(
        principal, learning_id, user_id=user_id, to_entry=body.to_entry if body else None
    )
    return LearningOut.of(restored)


# --- proposals --------------------------------------------------------------------------------


@proposals.get("")
async def list_proposals(
    principal: Authenticated,
    gateway: GatewayDep,
    status: str | None = "pending",
    user_id: UserQuery = None,
    limit: Limit = 100,
) -> list[ProposalOut]:
    """Proposals (``status=all`` for every status): a user key's own, or everyone's."""
    rows = await gateway.aproposals(
        principal, status=None if status == "all" else status, user_id=user_id, limit=limit
    )
    return [ProposalOut.of(p) for p in rows]


@proposals.get("/{proposal_id}")
async def get_proposal(
    proposal_id: str, principal: Authenticated, gateway: GatewayDep
) -> ProposalOut:
    """One proposal."""
    return ProposalOut.of(await gateway.aproposal(principal, proposal_id))


@proposals.post("/{proposal_id}/approve")
async def approve_proposal(
    proposal_id: str, principal: Authenticated, gateway: GatewayDep, body: DecisionIn | None = None
) -> ProposalOut:
    """Approve and apply a proposal (HITL: a reviewer other than its user)."""
    decided = await gateway.adecide(
        principal, proposal_id, decision="approve", note=body.note if body else None
    )
    return ProposalOut.of(decided)


@proposals.post("/{proposal_id}/reject")
async def reject_proposal(
    proposal_id: str, principal: Authenticated, gateway: GatewayDep, body: DecisionIn | None = None
) -> ProposalOut:
    """Reject a proposal (kept for audit)."""
    decided = await gateway.adecide(
        principal, proposal_id, decision="reject", note=body.note if body else None
    )
    return ProposalOut.of(decided)


# --- a user's data ----------------------------------------------------------------------------


@users.post("/{user_id}/forget")
async def forget_user(
    user_id: str,
    principal: Authenticated,
    gateway: GatewayDep,
    keep_shared: bool = True,
) -> dict[str, int]:
    """Delete everything private to a user (a user key: itself; otherwise an admin)."""
    return await gateway.aforget(principal, user_id, keep_shared=keep_shared)


@users.get("/{user_id}/export")
async def export_user(
    user_id: str, principal: Authenticated, gateway: GatewayDep
) -> dict[str, Any]:
    """Everything private to a user, as JSON (import it with ``POST /v1/import``)."""
    return await gateway.aexport(principal, user_id)


@users.get("/{user_id}/entities/{entity_id}")
async def get_entity(
    user_id: str, entity_id: str, principal: Authenticated, gateway: GatewayDep
) -> dict[str, Any]:
    """An entity of a user's memory with its facts, events and relationships."""
    graph = await gateway.aentity(principal, entity_id, user_id=user_id)
    return {
        "entity": LearningOut.of(graph.entity),
        "facts": [LearningOut.of(r) for r in graph.facts],
        "events": [LearningOut.of(r) for r in graph.events],
        "relations": [LearningOut.of(r) for r in graph.relations],
        "inbound": [LearningOut.of(r) for r in graph.inbound],
        "neighbours": graph.neighbours,
    }


@users.post("/import")
async def import_export(
    data: Annotated[dict[str, Any], Body()], principal: Authenticated, gateway: GatewayDep
) -> dict[str, int]:
    """Restore an export (admin keys only)."""
    return await gateway.aimport(principal, data)


# --- pending work -----------------------------------------------------------------------------


@work.get("")
async def list_work(
    principal: Authenticated,
    gateway: GatewayDep,
    status: Annotated[list[WorkStatus] | None, Query()] = None,
    limit: Limit = 100,
) -> list[WorkOut]:
    """Learning work not yet done: waiting, running or parked as failed."""
    rows = await gateway.awork(
        principal, statuses=tuple(status or ("pending", "running", "failed")), limit=limit
    )
    return [WorkOut.of(w) for w in rows]


@work.get("/failures")
async def list_failures(
    principal: Authenticated, gateway: GatewayDep, limit: Limit = 100
) -> list[WorkOut]:
    """Work parked as failed, with its last error."""
    return [
        WorkOut.of(w) for w in await gateway.awork(principal, statuses=("failed",), limit=limit)
    ]
