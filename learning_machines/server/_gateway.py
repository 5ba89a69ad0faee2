"""Everything the MCP server, the HTTP API and the review UI do, checked against who asks.

One place decides who may reach what, so the three front doors cannot disagree:

- A **user** key acts only as its user. Asking about anyone else is refused with
  :class:`PermissionDenied`; a learning, proposal or turn of someone else is *not found* (the
  same answer as for an id that does not exist, so ids cannot be probed). Learnings of shared
  namespaces found by search come without their author and provenance.
- A **reviewer** reads any user's memory, decides proposals and restores learnings; an
  **admin** may also forget, export and import any user and read the work queue.
- The rules of the modes hold whoever asks: a HITL proposal is approved only by a reviewer who
  is not the user whose turn proposed it; a user approves only their own PROPOSE proposals.

It is built only on :class:`~learning_machines.LearningService`, the typed turn
(``machine.abegin`` / ``turn.afinish``) and the turn's ``BoundTools``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .._ids import check_id, check_optional_id, same_identity
from .._modes import LearningMode
from ..db import PRIVATE_NAMESPACE, HistoryEntry, Learning, PendingWork, Proposal, ScoredLearning
from ..db._records import ALL_STATUSES, LearningStatus, WorkStatus
from ..exceptions import NotFoundError, PermissionDenied, ValidationError
from ..feedback import FeedbackSignal
from ..machine import Decision, LearningMachine, LearningService, Turn
from ..machine._decisions import OutcomeFilter
from ..stores import ToolSpec
from ._turns import OpenTurns
from .auth import Principal

__all__ = ["HIDDEN_TOOLS", "EntityGraph", "Gateway", "UserOverview"]

logger = logging.getLogger("learning_machines.server")

#: Tools a turn has that the server never offers: approvals go through the UI, the API or the
#: CLI, never through an agent (which could answer a confirmation by itself).
HIDDEN_TOOLS = frozenset({"approve_proposal"})

#: What the turn's guidance says about approving in chat, and what the server says instead.
_CHAT_APPROVAL = "When they confirm in a later message, call approve_proposal."
_SERVER_APPROVAL = "They approve it in the app (its review page or API), not in this chat."

#: The most rows one list call returns.
MAX_LIMIT = 500

_ENTITY_TYPES = ("entity", "entity_fact", "entity_event", "entity_relation")


@dataclasses.dataclass(frozen=True, kw_only=True)
class UserOverview:
    """What is known about one user, grouped for people to read."""

    user_id: str
    """The user."""
    profile: Learning | None
    """Their user profile row, if any."""
    learnings: list[Learning]
    """Their learnings other than entities, profile and episodes (newest first)."""
    entities: list[Learning]
    """Entities they know (``entity`` rows)."""
    episodes: list[Learning]
    """Their most recent episodes (what was said, verbatim)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class EntityGraph:
    """One entity with its facts, events and relationships, in and out."""

    entity: Learning
    """The ``entity`` row."""
    facts: list[Learning]
    """Its current facts."""
    events: list[Learning]
    """Its events, in time order."""
    relations: list[Learning]
    """Relationships where it is the subject."""
    inbound: list[Learning]
    """Relationships where it is the object."""
    neighbours: dict[str, str]
    """Names of the entities one hop away, by id."""


def _limit(limit: int | None) -> int:
    if limit is None:
        return MAX_LIMIT
    if limit < 1:
        raise ValidationError(f"limit must be at least 1, got {limit}")
    return min(limit, MAX_LIMIT)


class Gateway:
    """A machine's memory, as one principal may see and change it."""

    def __init__(self, machine: LearningMachine, *, turns: OpenTurns | None = None) -> None:
        self.machine = machine
        self.service: LearningService = machine.service
        self.turns = turns or OpenTurns()

    # --- who ----------------------------------------------------------------------------------

    @staticmethod
    def acting_user(principal: Principal) -> str:
        """The user a principal acts as; reviewers and admins act as nobody."""
        if principal.user_id is None:
            raise PermissionDenied(
                f"{principal} is a {principal.role.value} key: turns, tools and MCP act as one "
                "user; use that user's key"
            )
        return principal.user_id

    @staticmethod
    def target_user(principal: Principal, user_id: str | None) -> str:
        """The user a request is about: a user key's own, or the one a reviewer names."""
        user_id = check_optional_id(user_id, name="user_id")
        if principal.user_id is not None:
            if user_id is not None and not same_identity(user_id, principal.user_id):
                raise PermissionDenied(
                    f"this key acts only as user {principal.user_id!r}; it cannot reach another "
                    "user's data"
                )
            return principal.user_id
        if user_id is None:
            raise ValidationError("name the user: pass user_id=...")
        return user_id

    @staticmethod
    def _require_admin(principal: Principal, what: str) -> None:
        if not principal.administers:
            raise PermissionDenied(f"{what} needs an admin key")

    @staticmethod
    def visible(learning: Learning, principal: Principal) -> Learning:
        """``learning`` as ``principal`` may see it: another author's row loses who and where."""
        if principal.reviews or same_identity(learning.user_id, principal.user_id):
            return learning
        return dataclasses.replace(
            learning,
            user_id=None,
            session_id=None,
            agent_id=None,
            team_id=None,
            provenance={},
            embedding=None,
        )

    # --- turns --------------------------------------------------------------------------------

    async def abegin(
        self,
        principal: Principal,
        message: str,
        *,
        session_id: str | None = None,
        agent_id: str | None = None,
        history_turns: int = 0,
        recall: bool = True,
    ) -> Turn:
        """Begin (and hold) a turn of the principal's user: recall, tools bound to the turn."""
        user = self.acting_user(principal)
        turn = await self.machine.abegin(
            message,
            user_id=user,
            session_id=session_id,
            agent_id=agent_id,
            history_turns=max(0, min(history_turns, 50)),
            recall=recall,
        )
        self.turns.put(user, turn)
        return turn

    @staticmethod
    def context_text(turn: Turn) -> str:
        """The turn's context block, its guidance matching the tools the server offers."""
        return turn.learned.text.replace(_CHAT_APPROVAL, _SERVER_APPROVAL)

    def open_turn(self, principal: Principal, turn_id: str) -> Turn:
        """An open turn the principal began."""
        return self.turns.get(self.acting_user(principal), turn_id)

    async def tool_turn(self, principal: Principal) -> Turn:
        """The turn a tool call joins: the user's latest open turn, or a fresh unrecorded one."""
        user = self.acting_user(principal)
        turn = self.turns.latest(user)
        if turn is not None:
            return turn
        return await self.machine.abegin(None, user_id=user, recall=False, message_required=False)

    @staticmethod
    def tools(turn: Turn) -> list[ToolSpec[Any]]:
        """The turn's tools the server offers (never approvals)."""
        return [spec for spec in turn.tools if spec.name not in HIDDEN_TOOLS]

    async def acall_tool(self, turn: Turn, name: str, arguments: Mapping[str, Any]) -> str:
        """Run one of the turn's offered tools (the user is the turn's, never an argument)."""
        if name in HIDDEN_TOOLS:
            raise PermissionDenied(
                f"{name} is not offered here: approve proposals in the review UI, the HTTP API "
                "or `learning-machines proposals approve`"
            )
        return await turn.tools.acall(name, arguments)

    async def afinish(
        self,
        principal: Principal,
        turn_id: str,
        messages: Sequence[Any],
        *,
        answer: str | None = None,
    ) -> PendingWork | None:
        """Finish an open turn: record it and queue its learning (once, however many ask)."""
        user = self.acting_user(principal)
        turn = self.turns.get(user, turn_id, take=True)
        try:
            return await turn.afinish(list(messages), answer=answer)
        except BaseException:
            if not turn.finished:
                self.turns.put(user, turn)  # not recorded: it may be finished again
            raise

    async def aremember(
        self,
        principal: Principal,
        *,
        user_message: str,
        assistant_message: str,
        session_id: str | None = None,
    ) -> Turn:
        """Record a finished exchange and queue its learning.

        Finishes the user's open turn for the same message (so what it recalled is marked as
        used), or records a new turn.
        """
        user = self.acting_user(principal)
        turn = self.turns.latest(user, session_id=session_id, message=user_message, take=True)
        if turn is None:
            turn = await self.machine.abegin(
                user_message, user_id=user, session_id=session_id, recall=False
            )
        await turn.afinish(
            [
                {"role": "user", "content": user_message},
                {"role": "assistant", "content": assistant_message},
            ]
        )
        return turn

    # --- feedback and the decision log -------------------------------------------------------

    async def afeedback(
        self, principal: Principal, turn_id: str, *, score: float, comment: str | None = None
    ) -> tuple[FeedbackSignal, Decision]:
        """Rate a finished turn; returns the signal and the turn's record with its new outcome.

        A user key rates only its own turns (another user's turn is as absent as an unknown
        id); reviewers and admins rate any turn, as themselves (``reviewer:NAME``, so their
        rating never replaces the user's own).
        """
        turn_id = check_id(turn_id, name="turn_id")
        owner = principal.user_id
        signal = await self.machine.afeedback(
            turn_id=turn_id,
            score=score,
            comment=comment,
            by=owner if owner is not None else str(principal),
            user_id=owner,
        )
        decision = await self.machine.decisions.aget(turn_id, user_id=signal.user_id)
        logger.info("turn %s rated %+g by %s", turn_id, signal.score, principal)
        return signal, decision

    async def adecisions(
        self,
        principal: Principal,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        tool: str | None = None,
        outcome: OutcomeFilter | None = None,
        limit: int | None = 50,
    ) -> list[Decision]:
        """A user's decision log, newest first (a user key: its own; a reviewer names the user)."""
        user = self.target_user(principal, user_id)
        return await self.machine.decisions.alist(
            user_id=user,
            session_id=check_optional_id(session_id, name="session_id"),
            tool=tool,
            outcome=outcome,
            limit=_limit(limit),
        )

    # --- learnings ----------------------------------------------------------------------------

    async def alearnings(
        self,
        principal: Principal,
        *,
        user_id: str | None = None,
        namespace: str | None = None,
        learning_type: str | None = None,
        statuses: Sequence[LearningStatus] = ("active",),
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Learning]:
        """What is known about a user (theirs, and what they contributed to shared namespaces)."""
        user = self.target_user(principal, user_id)
        bad = [s for s in statuses if s not in ALL_STATUSES]
        if bad:
            raise ValidationError(f"unknown status {bad[0]!r}; use {', '.join(ALL_STATUSES)}")
        rows = await self.service.alearnings(
            user_id=user,
            namespace=namespace,
            learning_type=learning_type,
            statuses=tuple(statuses),
            limit=_limit(limit),
            offset=max(0, offset),
        )
        return [self.visible(row, principal) for row in rows]

    async def aget(
        self, principal: Principal, learning_id: str, *, user_id: str | None = None
    ) -> Learning:
        """One learning the principal may manage (a user key: only rows that are theirs)."""
        learning_id = check_id(learning_id, name="learning_id")
        if principal.reviews:
            return await self.service.aget(
                learning_id, user_id=check_optional_id(user_id, name="user_id")
            )
        user = self.target_user(principal, user_id)
        row = await self.service.aget(learning_id, user_id=user)
        if not same_identity(row.user_id, user):
            # A shared row someone else wrote: as absent as an unknown id.
            raise NotFoundError(f"no learning with id {learning_id!r}")
        return row

    async def ahistory(
        self, principal: Principal, learning_id: str, *, user_id: str | None = None
    ) -> list[HistoryEntry]:
        """Every recorded change of a learning the principal may manage."""
        row = await self.aget(principal, learning_id, user_id=user_id)
        return await self.service.ahistory(row.id)

    async def arestore(
        self,
        principal: Principal,
        learning_id: str,
        *,
        user_id: str | None = None,
        to_entry: str | None = None,
    ) -> Learning:
        """Undo a step of a learning; the principal is recorded as who restored it.

        A user key restores only its private learnings; shared ones need a reviewer.
        """
        row = await self.aget(principal, learning_id, user_id=user_id)
        if not principal.reviews and row.namespace != PRIVATE_NAMESPACE:
            raise PermissionDenied(
                f"learning {learning_id} lives in the shared namespace {row.namespace!r}: a "
                "reviewer restores shared learnings"
            )
        actor = {principal.role.value: principal.name, "via": "server"}
        return await self.service.curator.arestore(
            row.id, to_entry=check_optional_id(to_entry, name="to_entry"), actor=actor
        )

    async def asearch(
        self,
        principal: Principal,
        query: str,
        *,
        user_id: str | None = None,
        learning_type: str | None = None,
        limit: int = 10,
    ) -> list[ScoredLearning]:
        """Hybrid search over what a user may read (a reviewer names the user)."""
        if not query.strip():
            raise ValidationError("search needs a query: pass q=...")
        user = (
            self.target_user(principal, user_id)
            if principal.user_id is not None or user_id is not None
            else None
        )
        hits = await self.service.asearch(
            query, user_id=user, learning_type=learning_type, limit=min(_limit(limit), 100)
        )
        return [
            dataclasses.replace(hit, learning=self.visible(hit.learning, principal)) for hit in hits
        ]

    # --- what people look at ------------------------------------------------------------------

    async def aoverview(
        self, principal: Principal, *, user_id: str | None = None, episodes: int = 20
    ) -> UserOverview:
        """A user's profile, learnings, entities and recent episodes."""
        user = self.target_user(principal, user_id)
        learnings = self.service.alearnings
        profile = await learnings(user_id=user, learning_type="user_profile", limit=1)
        entities = await learnings(user_id=user, learning_type="entity", limit=MAX_LIMIT)
        recent = await learnings(
            user_id=user, learning_type="episode", limit=max(1, min(episodes, MAX_LIMIT))
        )
        hidden = {"user_profile", "episode", *_ENTITY_TYPES}
        rows = await learnings(user_id=user, limit=MAX_LIMIT)
        return UserOverview(
            user_id=user,
            profile=profile[0] if profile else None,
            learnings=[r for r in rows if r.learning_type not in hidden],
            entities=entities,
            episodes=recent,
        )

    async def aentity(
        self, principal: Principal, entity_id: str, *, user_id: str | None = None
    ) -> EntityGraph:
        """An entity of a user's memory with its facts, events and relationships."""
        user = self.target_user(principal, user_id)
        entity = await self.aget(principal, entity_id, user_id=user)
        if entity.learning_type != "entity":
            raise NotFoundError(f"no entity with id {entity_id!r}")
        rows = await self.service.alearnings(user_id=user, limit=None)
        own = [r for r in rows if r.entity_id == entity.id and r.id != entity.id]
        inbound = [
            r
            for r in rows
            if r.learning_type == "entity_relation" and r.content.get("object_id") == entity.id
        ]
        names = {
            r.id: str(r.content.get("name", r.id)) for r in rows if r.learning_type == "entity"
        }
        relations = [r for r in own if r.learning_type == "entity_relation"]
        neighbours: dict[str, str] = {}
        for rel in relations:
            other = str(rel.content.get("object_id", ""))
            neighbours[other] = names.get(other, str(rel.content.get("object", other)))
        for rel in inbound:
            other = str(rel.entity_id or "")
            neighbours[other] = names.get(other, str(rel.content.get("subject", other)))
        events = sorted(
            (r for r in own if r.learning_type == "entity_event"),
            key=lambda r: (r.valid_from or r.created_at, r.id),
        )
        return EntityGraph(
            entity=entity,
            facts=[r for r in own if r.learning_type == "entity_fact"],
            events=events,
            relations=relations,
            inbound=inbound,
            neighbours=neighbours,
        )

    # --- proposals ----------------------------------------------------------------------------

    async def aproposals(
        self,
        principal: Principal,
        *,
        status: str | None = "pending",
        user_id: str | None = None,
        limit: int | None = 100,
    ) -> list[Proposal]:
        """Proposals: a user key sees its own; reviewers see everyone's (or one user's)."""
        if status is not None and status not in ("pending", "approved", "rejected", "expired"):
            raise ValidationError(
                f"unknown proposal status {status!r}; use pending, approved, rejected or expired"
            )
        user = (
            self.target_user(principal, user_id)
            if principal.user_id is not None or user_id is not None
            else None
        )
        return await self.service.proposals.alist(status=status, user_id=user, limit=_limit(limit))

    async def aproposal(self, principal: Principal, proposal_id: str) -> Proposal:
        """One proposal the principal may see (a user key: only its own)."""
        proposal = await self.service.proposals.aget(check_id(proposal_id, name="proposal_id"))
        if not principal.reviews and not same_identity(proposal.user_id, principal.user_id):
            raise NotFoundError(f"no proposal with id {proposal_id!r}")
        return proposal

    async def adecide(
        self,
        principal: Principal,
        proposal_id: str,
        *,
        decision: Literal["approve", "reject"],
        note: str | None = None,
    ) -> Proposal:
        """Approve or reject a proposal; the principal is recorded as who decided.

        A user decides only their own proposals and approves only PROPOSE ones; a HITL
        proposal is approved by a reviewer who is not the user whose turn proposed it.
        """
        proposal = await self.aproposal(principal, proposal_id)
        if decision == "approve" and proposal.mode == LearningMode.HITL.value:
            if not principal.reviews:
                raise PermissionDenied(
                    f"proposal {proposal.id} needs human review: a reviewer approves it, not the "
                    "user whose conversation proposed it"
                )
            if same_identity(principal.name, proposal.user_id):
                raise PermissionDenied(
                    f"proposal {proposal.id} came from {proposal.user_id!r}'s conversation: "
                    "another reviewer must approve it"
                )
        book = self.service.proposals
        if decision == "approve":
            decided = await book.aapprove(proposal.id, by=principal.name, note=note)
        else:
            decided = await book.areject(proposal.id, by=principal.name, note=note)
        logger.info("proposal %s %sd by %s", proposal.id, decision, principal)
        return decided

    # --- a user's data ------------------------------------------------------------------------

    async def aforget(
        self, principal: Principal, user_id: str, *, keep_shared: bool = True
    ) -> dict[str, int]:
        """Delete everything private to a user (a user key: only itself; else an admin)."""
        user = self.target_user(principal, user_id)
        if principal.user_id is None:
            self._require_admin(principal, "forgetting a user")
        counts = await self.service.aforget(user, keep_shared=keep_shared)
        self.turns.drop_owner(user)
        logger.info("user %r forgotten by %s", user, principal)
        return counts

    async def aexport(self, principal: Principal, user_id: str) -> dict[str, Any]:
        """Everything private to a user (a user key: only itself; else an admin)."""
        user = self.target_user(principal, user_id)
        if principal.user_id is None:
            self._require_admin(principal, "exporting a user")
        return await self.service.aexport(user)

    async def aimport(self, principal: Principal, data: Mapping[str, Any]) -> dict[str, int]:
        """Restore an export (admins only: an import writes rows by the ids it carries)."""
        self._require_admin(principal, "importing an export")
        return await self.service.aimport(data)

    async def awork(
        self,
        principal: Principal,
        *,
        statuses: Sequence[WorkStatus] = ("pending", "running", "failed"),
        limit: int | None = 100,
    ) -> list[PendingWork]:
        """Pending work: a user key sees the items of its own turns; reviewers see all."""
        if principal.reviews:
            return await self.service.apending(statuses=statuses, limit=_limit(limit))
        user = principal.user_id
        rows = await self.service.apending(statuses=statuses, limit=None)
        return [w for w in rows if same_identity(w.user_id, user)][: _limit(limit)]
