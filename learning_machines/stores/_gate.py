"""The write gate: the one place where a store's learning mode decides what happens to a write.

Writes travel one way. A store hands the gate a typed write (a pydantic model the store
declares); the gate decides whether it is applied now or held as a proposal. When it is held,
the gate stores it (and the store never sees it again until someone approves it through
``machine.proposals``, which gives it back to the store's public ``apply_write``). The gate
holds no reference to the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from .._modes import LearningMode
from ..db import PRIVATE_NAMESPACE, Db, GetProposal, Proposal, PutProposal, new_id, utcnow
from ._screen import screen_text

__all__ = ["ApplyingStore", "WriteGate", "WriteOutcome", "write_payload"]


@runtime_checkable
class ApplyingStore(Protocol):
    """A store whose writes can be held for approval and applied later.

    ``write`` is an instance of the store's ``write_model`` (when it declares one) or the
    payload mapping as proposed.
    """

    async def apply_write(self, write: Any, **context: Any) -> list[str]:
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
    held_because: str | None = None
    """Why a write that its mode would have applied was held for review instead."""

    def describe(self) -> str:
        """One line for a tool's answer to the model."""
        if self.applied:
            return f"saved ({', '.join(self.learning_ids) or 'no change'})"
        if self.held_because:
            return (
                f"held for review as {self.proposal_id} ({self.held_because}); it is NOT saved "
                "until a reviewer approves it"
            )
        return (
            f"proposed as {self.proposal_id}; it is NOT saved until approved. Ask the user to "
            "confirm it in their next message."
        )


def write_payload(write: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form a write is kept in while it waits for approval."""
    if isinstance(write, BaseModel):
        data: dict[str, Any] = write.model_dump(mode="json", exclude_none=True)
        return data
    return dict(write)


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What the gate decided for one write."""

    apply: bool
    """Apply it now (``False``: hold it as a proposal)."""
    mode: LearningMode
    """The mode a proposal is held under (the store's, or HITL when screening held it)."""
    reason: str | None = None
    """Why a write its mode would apply is held anyway (screening), else ``None``."""
    flags: tuple[str, ...] = ()
    """What screening found in a write applied anyway (``screen="flag"``), kept in provenance."""


@dataclass(kw_only=True)
class WriteGate:
    """Decides, by the store's mode, whether a write is applied now or held for approval.

    BACKGROUND and AGENTIC writes are applied at once; PROPOSE and HITL writes become
    :class:`~learning_machines.db.Proposal` rows, applied only when approved through
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
    proposal_ttl: timedelta | None = timedelta(days=14)
    """Proposals not decided within this time expire (and stay for audit)."""
    approval: str = "user"
    """PROPOSE only: ``"others"`` makes writes to a shared namespace need someone else."""
    screen: str = "hold"
    """What happens to a BACKGROUND/AGENTIC write to a shared namespace that screening flags:
    ``"hold"`` (held for a reviewer), ``"flag"`` (written, findings kept in its provenance),
    ``"off"``."""

    def decide(self, *, namespace: str, text: str = "") -> Decision:
        """Apply now or hold a write to ``namespace`` whose readable text is ``text``.

        By the mode, and for shared namespaces by who must approve and by screening. The rule
        travels with the proposal: a PROPOSE write that needs someone else is held as HITL, so
        no machine configured otherwise can let its author approve it.
        """
        shared = namespace != PRIVATE_NAMESPACE
        if self.mode.needs_approval:
            if self.mode is LearningMode.PROPOSE and self.approval == "others" and shared:
                return Decision(apply=False, mode=LearningMode.HITL)
            return Decision(apply=False, mode=self.mode)
        if not shared or self.screen == "off" or not text:
            return Decision(apply=True, mode=self.mode)
        found = screen_text(text)
        if not found.flagged:
            return Decision(apply=True, mode=self.mode)
        if self.screen == "flag":
            return Decision(apply=True, mode=self.mode, flags=found.reasons)
        return Decision(
            apply=False,
            mode=LearningMode.HITL,
            reason="screening flagged it: " + "; ".join(found.reasons),
        )

    async def propose(
        self,
        write: BaseModel | Mapping[str, Any],
        *,
        summary: str,
        namespace: str,
        context: Mapping[str, Any],
        decision: Decision | None = None,
    ) -> WriteOutcome:
        """Keep ``write`` as a proposal made in this turn (one per write, even on retries)."""
        mode = (decision or self.decide(namespace=namespace)).mode
        payload = write_payload(write)
        now = utcnow()
        proposal_id = _proposal_id(self.store_name, payload, context)
        if proposal_id is not None:
            existing = await self.db.arun(GetProposal(id=proposal_id))
            if existing is not None:
                # The same write from the same turn (a retried extraction): one proposal, not two.
                return WriteOutcome(
                    applied=False,
                    proposal_id=existing.id,
                    held_because=decision.reason if decision else None,
                )
        proposal = Proposal(
            id=proposal_id or new_id(),
            learning_type=self.learning_type,
            store=self.store_name,
            mode=mode.value,
            namespace=namespace,
            user_id=context.get("user_id"),
            session_id=context.get("session_id"),
            turn_id=context.get("turn_id"),
            turn_index=context.get("turn_index"),
            payload=payload,
            summary=f"[held: {decision.reason}] {summary}"
            if decision and decision.reason
            else summary,
            created_at=now,
            expires_at=(now + self.proposal_ttl) if self.proposal_ttl else None,
        )
        stored = await self.db.arun(PutProposal(proposal=proposal))
        return WriteOutcome(
            applied=False,
            proposal_id=stored.id,
            held_because=decision.reason if decision else None,
        )


def _proposal_id(store: str, payload: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    """A stable id for a write made in a turn, so a retry of that turn re-finds its proposal."""
    turn_id = context.get("turn_id")
    if not turn_id:
        return None
    body = json.dumps([store, turn_id, payload], sort_keys=True, default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:32]
