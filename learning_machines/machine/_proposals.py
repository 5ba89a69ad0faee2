"""Proposals: writes held for approval (PROPOSE and HITL modes).

They are decided only through code paths that enforce who may approve what.
"""

from __future__ import annotations

import builtins
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from .._ids import check_id
from .._sync import run_sync
from .._turn_context import TurnContext
from ..db import Db, GetProposal, ListProposals, Proposal, PutProposal, utcnow
from ..exceptions import (
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from ..stores import Approval, ToolSpec
from ._consent import check_api_approval, check_chat_approval
from ._registry import StoreRegistry

__all__ = ["ProposalBook", "approve_proposal_tool"]


class ProposalBook:
    """``machine.proposals``: list, approve and reject proposals.

    Rules enforced here, in code:

    - PROPOSE: the user (or an app acting for them) approves with :meth:`approve`, or in chat via
      :meth:`approve_in_chat`, only in a *later* turn of the *same* user's session, and only when
      that turn's user message is a plain yes (``machine/_consent.py``); the message is recorded.
      A store with ``approval="others"`` needs someone else for writes to a shared namespace.
    - HITL: only :meth:`approve` by a reviewer who is not the user whose turn proposed it
      (identities compared case-insensitively); there is no chat path and no agent tool.
    - Decided, rejected and expired proposals are kept for audit.
    """

    def __init__(self, *, db: Db, registry: StoreRegistry) -> None:
        self._db = db
        self._registry = registry

    # --- reading ------------------------------------------------------------------------------

    async def aget(self, proposal_id: str) -> Proposal:
        """One proposal; raises :class:`NotFoundError` if there is none with that id."""
        proposal = await self._db.arun(GetProposal(id=proposal_id))
        if proposal is None:
            raise NotFoundError(f"no proposal with id {proposal_id!r}")
        return proposal

    async def alist(
        self,
        *,
        status: str | None = "pending",
        user_id: str | None = None,
        session_id: str | None = None,
        store: str | None = None,
        mode: str | None = None,
        limit: int | None = 100,
    ) -> list[Proposal]:
        """Proposals, newest first. ``status=None`` lists every status."""
        statuses = None if status is None else (status,)
        return await self._db.arun(
            ListProposals(
                statuses=statuses,  # type: ignore[arg-type]
                user_id=user_id,
                session_id=session_id,
                store=store,
                mode=mode,
                limit=limit,
            )
        )

    def list(self, **filters: Any) -> list[Proposal]:
        """Sync :meth:`alist`."""
        return run_sync(self.alist(**filters))

    def get(self, proposal_id: str) -> Proposal:
        """Sync :meth:`aget`."""
        return run_sync(self.aget(proposal_id))

    # --- deciding -----------------------------------------------------------------------------

    async def aapprove(self, proposal_id: str, *, by: str, note: str | None = None) -> Proposal:
        """Approve and apply a proposal; returns it with ``learning_id`` set.

        For HITL proposals ``by`` must be a reviewer other than the user whose turn proposed it.
        """
        check_id(by, name="by")
        proposal = await self._pending(proposal_id)
        approver = check_api_approval(proposal, by=by, approval=self._approval(proposal))
        return await self._apply(proposal, by=approver, note=note)

    async def aapprove_in_chat(
        self,
        proposal_id: str,
        *,
        user_id: str | None,
        session_id: str | None,
        turn_index: int | None,
        message: str | None,
    ) -> Proposal:
        """Approve a PROPOSE proposal from the conversation (the agent's tool calls this).

        Only the same user, in the same session, in a later turn, with a plain yes, and only
        proposals of the session's newest proposing turn.
        """
        proposal = await self._pending(proposal_id)
        check_chat_approval(
            proposal,
            user_id=user_id,
            session_id=session_id,
            turn_index=turn_index,
            message=message,
            approval=self._approval(proposal),
            newest_turn_index=await self._newest_turn(user_id, session_id),
        )
        assert user_id is not None  # checked above: the proposal's own user
        return await self._apply(proposal, by=user_id, note=message)

    async def _newest_turn(self, user_id: str | None, session_id: str | None) -> int | None:
        """The turn of the session's newest PROPOSE proposal, whatever became of it."""
        if user_id is None or session_id is None:
            return None
        recent = await self._db.arun(
            ListProposals(
                statuses=None, user_id=user_id, session_id=session_id, mode="propose", limit=20
            )
        )
        turns = [p.turn_index for p in recent if p.turn_index is not None]
        return max(turns) if turns else None

    async def areject(self, proposal_id: str, *, by: str, note: str | None = None) -> Proposal:
        """Reject a proposal (kept for audit)."""
        by = check_id(by, name="by")
        proposal = await self._pending(proposal_id)
        rejected = replace(
            proposal, status="rejected", decided_by=by, decided_at=utcnow(), decision_note=note
        )
        return await self._db.arun(PutProposal(proposal=rejected, expected_status="pending"))

    async def aexpire(self, *, now: datetime | None = None) -> builtins.list[Proposal]:
        """Mark pending proposals past their ``expires_at`` as expired (kept for audit)."""
        now = now or utcnow()
        expired = []
        for proposal in await self.alist(status="pending", limit=None):
            if proposal.expires_at is not None and proposal.expires_at <= now:
                done = replace(proposal, status="expired", decided_at=now, decided_by="expiry")
                expired.append(
                    await self._db.arun(PutProposal(proposal=done, expected_status="pending"))
                )
        return expired

    def approve(self, proposal_id: str, *, by: str, note: str | None = None) -> Proposal:
        """Sync :meth:`aapprove`."""
        return run_sync(self.aapprove(proposal_id, by=by, note=note))

    def reject(self, proposal_id: str, *, by: str, note: str | None = None) -> Proposal:
        """Sync :meth:`areject`."""
        return run_sync(self.areject(proposal_id, by=by, note=note))

    def expire(self, *, now: datetime | None = None) -> builtins.list[Proposal]:
        """Sync :meth:`aexpire`."""
        return run_sync(self.aexpire(now=now))

    # --- internals ----------------------------------------------------------------------------

    def _approval(self, proposal: Proposal) -> Approval:
        """Who approves the proposal's store's shared writes (``"user"`` for unknown stores)."""
        slot = self._registry.get(proposal.store)
        config = getattr(slot.store, "config", None) if slot is not None else None
        approval: Approval = getattr(config, "approval", "user")
        return approval

    async def _pending(self, proposal_id: str) -> Proposal:
        proposal = await self.aget(proposal_id)
        if proposal.status != "pending":
            raise ValidationError(
                f"proposal {proposal_id} is already {proposal.status}"
                + (f" (by {proposal.decided_by})" if proposal.decided_by else "")
            )
        if proposal.expires_at is not None and proposal.expires_at <= utcnow():
            await self.aexpire()
            raise ValidationError(f"proposal {proposal_id} expired at {proposal.expires_at}")
        return proposal

    async def _apply(self, proposal: Proposal, *, by: str, note: str | None) -> Proposal:
        slot = self._registry.get(proposal.store)
        if slot is None or not slot.applies_writes:
            raise ConfigurationError(
                f"proposal {proposal.id} is for store {proposal.store!r}, which this machine "
                "does not have (or which cannot apply writes); open the machine with that store"
            )
        config_namespace = slot.namespace or proposal.namespace
        if config_namespace != proposal.namespace:
            raise ConfigurationError(
                f"proposal {proposal.id} writes to namespace {proposal.namespace!r}, but this "
                f"machine's {proposal.store!r} store writes to {config_namespace!r}; approve it "
                "with the app's own machine (learning-machines proposals approve --machine "
                "module:attribute)"
            )
        # Claim the decision first, so two approvals of the same proposal cannot both apply.
        claimed = await self._db.arun(
            PutProposal(
                proposal=replace(
                    proposal,
                    status="approved",
                    decided_by=by,
                    decided_at=utcnow(),
                    decision_note=note,
                ),
                expected_status="pending",
            )
        )
        try:
            ids = await slot.apply_write(
                slot.decode_write(proposal.payload),
                {
                    "user_id": proposal.user_id,
                    "session_id": proposal.session_id,
                    "turn_id": proposal.turn_id,
                    "mode": proposal.mode,
                    "approved_by": by,
                    "proposal_id": proposal.id,
                },
            )
        except BaseException:
            await self._db.arun(PutProposal(proposal=proposal, expected_status="approved"))
            raise
        applied = replace(claimed, learning_id=ids[0] if ids else None)
        return await self._db.arun(PutProposal(proposal=applied, expected_status="approved"))


class ApproveArgs(BaseModel):
    """Arguments of ``approve_proposal``."""

    proposal_id: str = Field(description="The id you were given when you proposed it.")


def approve_proposal_tool(book: ProposalBook) -> ToolSpec[ApproveArgs]:
    """The agent's ``approve_proposal`` tool (PROPOSE mode only).

    It records that the user confirmed a proposal in this turn's message; the rules of
    :meth:`ProposalBook.aapprove_in_chat` decide, and a refusal is the tool's answer.
    """

    async def approve(turn: TurnContext, args: ApproveArgs) -> str:
        try:
            proposal = await book.aapprove_in_chat(
                args.proposal_id,
                user_id=turn.user_id,
                session_id=turn.session_id,
                turn_index=turn.turn_index,
                message=turn.message,
            )
        except (PermissionDenied, ValidationError, NotFoundError, ConflictError) as refused:
            # The refusal is the tool's answer: the model must tell the user, not retry.
            return f"NOT approved: {refused}"
        return f"approved; saved as learning {proposal.learning_id}"

    return ToolSpec(
        name="approve_proposal",
        description=(
            "Record that the user confirmed a proposal you made in an EARLIER turn. Call this "
            "only when the user's current message says yes to it. It fails for proposals made "
            "in this same turn, by another user, or needing a human reviewer."
        ),
        args=ApproveArgs,
        handler=approve,
        writes=True,
    )
