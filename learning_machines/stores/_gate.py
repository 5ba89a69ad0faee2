"""The write gate: the one place where a store's learning mode is enforced for writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from .._modes import LearningMode
from ..db import Db, GetProposal, Proposal, PutProposal, new_id, utcnow

__all__ = ["ApplyingStore", "WriteGate", "WriteOutcome"]


@runtime_checkable
class ApplyingStore(Protocol):
    """A store whose writes can be held for approval and applied later."""

    async def apply_write(self, payload: Mapping[str, Any], **context: Any) -> list[str]:
        """Apply a write now and return the ids of the learnings written or changed."""
        ...


@dataclass(frozen=True, kw_only=True)
class WriteOutcome:
    """What happened to a write that went through the gate."""

    applied: bool
    """``True`` when it was written; ``False`` when it became a proposal."""
    learning_ids: list[str] = field(default_factory=list)
    """Learnings written or changed (when applied)."""
    proposal_id: str | None = None
    """The proposal created (when held for approval)."""

    def describe(self) -> str:
        """One line for a tool's answer to the model."""
        if self.applied:
            return f"saved ({', '.join(self.learning_ids) or 'no change'})"
        return (
            f"proposed as {self.proposal_id}; it is NOT saved until approved. Ask the user to "
            "confirm it in their next message."
        )


@dataclass(kw_only=True)
class WriteGate:
    """Routes a store's writes by its mode.

    BACKGROUND and AGENTIC writes are applied at once; PROPOSE and HITL writes are stored as
    :class:`~learning_machines.db.Proposal` rows and applied only when approved through
    ``machine.proposals``. Stores never write around the gate.
    """

    store_name: str
    """The store's slot in the machine."""
    learning_type: str
    """The store's learning type."""
    mode: LearningMode
    """The store's mode."""
    db: Db
    """Where proposals are kept."""
    store: ApplyingStore
    """The store the gate applies writes to."""
    proposal_ttl: timedelta | None = timedelta(days=14)
    """Proposals not decided within this time expire (and stay for audit)."""

    async def write(
        self,
        payload: Mapping[str, Any],
        *,
        summary: str,
        namespace: str,
        **context: Any,
    ) -> WriteOutcome:
        """Apply ``payload`` now, or hold it as a proposal, according to the mode."""
        if not self.mode.needs_approval:
            context.setdefault("mode", self.mode.value)
            ids = await self.store.apply_write(payload, **context)
            return WriteOutcome(applied=True, learning_ids=ids)
        now = utcnow()
        proposal_id = _proposal_id(self.store_name, payload, context)
        if proposal_id is not None:
            existing = await self.db.arun(GetProposal(id=proposal_id))
            if existing is not None:
                # The same write from the same turn (a retried extraction): one proposal, not two.
                return WriteOutcome(applied=False, proposal_id=existing.id)
        proposal = Proposal(
            id=proposal_id or new_id(),
            learning_type=self.learning_type,
            store=self.store_name,
            mode=self.mode.value,
            namespace=namespace,
            user_id=context.get("user_id"),
            session_id=context.get("session_id"),
            turn_id=context.get("turn_id"),
            turn_index=context.get("turn_index"),
            payload=dict(payload),
            summary=summary,
            created_at=now,
            expires_at=(now + self.proposal_ttl) if self.proposal_ttl else None,
        )
        stored = await self.db.arun(PutProposal(proposal=proposal))
        return WriteOutcome(applied=False, proposal_id=stored.id)


def _proposal_id(store: str, payload: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    """A stable id for a write made in a turn, so a retry of that turn re-finds its proposal."""
    turn_id = context.get("turn_id")
    if not turn_id:
        return None
    body = json.dumps([store, turn_id, payload], sort_keys=True, default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:32]
