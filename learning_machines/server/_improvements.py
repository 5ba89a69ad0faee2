"""Self-improvement (Phase 3) as the server lets a principal review it.

Only reviewers and admins reach it: a proposal's evidence is the turns of many users, and its
change is to an agent's instructions, which every user's turns run with. A user key is refused
with :class:`PermissionDenied`. The rules are ``machine.improvements``' own, whoever asks: the
key's name is recorded as who decided, and a reviewer whose own turns are a proposal's evidence
cannot approve it alone (names compared as identities: case and spacing do not matter). There
is no agent tool that approves; the HTTP API, the review UI and the CLI are the only ways.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, get_args

from .._ids import check_id, check_optional_id
from ..exceptions import PermissionDenied
from ..improvement import (
    ActiveInstructions,
    ImprovementBook,
    ImprovementProposal,
    InstructionChange,
    Trace,
)
from ..improvement._model import ProposalStatus
from ..machine import LearningMachine
from .auth import Principal

__all__ = ["STATUSES", "AgentInstructions", "ImprovementReview"]

logger = logging.getLogger("learning_machines.server")

#: The statuses a proposal can have (``all`` lists every one).
STATUSES: tuple[str, ...] = get_args(ProposalStatus)


@dataclass(frozen=True, kw_only=True)
class AgentInstructions:
    """One agent's active instructions and every change to them (for the review page)."""

    active: ActiveInstructions
    """What its turns run with now."""
    history: list[InstructionChange]
    """Approvals and rollbacks, oldest first."""


class ImprovementReview:
    """A machine's self-improvement, as one principal may review it."""

    def __init__(self, machine: LearningMachine) -> None:
        self.machine = machine

    def _book(self, principal: Principal) -> ImprovementBook:
        if not principal.reviews:
            raise PermissionDenied(
                "self-improvement is reviewed with a reviewer or admin key: a proposal's "
                "evidence is the turns of many users, and its change applies to all of them"
            )
        return self.machine.improvements  # ConfigurationError when the machine has none

    async def alist(
        self,
        principal: Principal,
        *,
        status: str = "pending",
        agent_id: str | None = None,
        team_id: str | None = None,
    ) -> list[ImprovementProposal]:
        """Proposals, newest first (``status``: one of :data:`STATUSES`, or ``all``)."""
        chosen: Any = status  # the book refuses an unknown status, saying which exist
        return await self._book(principal).alist(agent_id=agent_id, team_id=team_id, status=chosen)

    async def aget(
        self, principal: Principal, proposal_id: str
    ) -> tuple[ImprovementProposal, list[Trace]]:
        """One proposal (its screen and gate result inside) and the turns it rests on."""
        book = self._book(principal)
        proposal_id = check_id(proposal_id, name="proposal_id")
        return await book.aget(proposal_id), await book.aevidence(proposal_id)

    async def aapprove(
        self, principal: Principal, proposal_id: str, *, note: str | None = None
    ) -> ImprovementProposal:
        """Approve as the principal: the agent's instructions get a new version at once."""
        book = self._book(principal)
        done = await book.aapprove(
            check_id(proposal_id, name="proposal_id"), by=principal.name, note=note
        )
        logger.info("improvement %s approved by %s: now %s", done.id, principal, done.version)
        return done

    async def areject(
        self, principal: Principal, proposal_id: str, *, reason: str | None = None
    ) -> ImprovementProposal:
        """Reject as the principal (kept; the same change is never proposed again)."""
        book = self._book(principal)
        done = await book.areject(
            check_id(proposal_id, name="proposal_id"), by=principal.name, reason=reason
        )
        logger.info("improvement %s rejected by %s", done.id, principal)
        return done

    async def ainstructions(
        self, principal: Principal, *, agent_id: str | None = None, team_id: str | None = None
    ) -> AgentInstructions:
        """An agent's active instructions and their history."""
        book = self._book(principal)
        agent_id = check_optional_id(agent_id, name="agent_id")
        team_id = check_optional_id(team_id, name="team_id")
        return AgentInstructions(
            active=await book.ainstructions(agent_id=agent_id, team_id=team_id),
            history=await book.ahistory(agent_id=agent_id, team_id=team_id),
        )

    async def arollback(
        self,
        principal: Principal,
        version: str,
        *,
        agent_id: str | None = None,
        team_id: str | None = None,
        note: str | None = None,
    ) -> InstructionChange:
        """Make an earlier version active again, as the principal."""
        book = self._book(principal)
        change = await book.arollback(
            check_id(version, name="version"),
            by=principal.name,
            agent_id=check_optional_id(agent_id, name="agent_id"),
            team_id=check_optional_id(team_id, name="team_id"),
            note=note,
        )
        logger.info(
            "instructions of %s rolled back to %s by %s", agent_id, change.to_version, principal
        )
        return change

    async def aagents(self, principal: Principal) -> list[AgentInstructions]:
        """Every agent (and team) with a proposal or a change, and its instructions now."""
        book = self._book(principal)
        scopes = {(p.agent_id, p.team_id) for p in await book.alist(status="all")}
        scopes |= {(c.agent_id, c.team_id) for c in await book.ahistory()}
        return [
            await self.ainstructions(principal, agent_id=agent, team_id=team)
            for agent, team in sorted(scopes, key=lambda s: (s[0] or "", s[1] or ""))
        ]
