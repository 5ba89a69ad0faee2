"""``machine.decisions``: list, get and search the decision log, with outcomes and signals.

Records are private to the user whose turn they are: every read names that user (``get`` by
turn id alone finds the owner first, an admin lookup like ``forget``'s).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .._sync import sync_twin
from ..db import Learning, ListLearnings, ScoredLearning
from ..db._records import ALL_STATUSES
from ..exceptions import NotFoundError, ValidationError
from ..feedback import FeedbackSignal, FeedbackStore
from ..stores._decision_model import CLEAR_OUTCOME, DecisionRecord, Outcome
from ..stores.decision_log import DecisionLogStore

__all__ = ["Decision", "DecisionBook", "OutcomeFilter"]

OutcomeFilter = Literal["good", "bad", "unclear", "unrated"]
_OUTCOMES = ("good", "bad", "unclear", "unrated")
_PAGE = 200


@dataclass(frozen=True, kw_only=True)
class Decision:
    """One turn's decision record, as ``machine.decisions`` returns it."""

    id: str
    """Id of the record (a learning of type ``decision``)."""
    user_id: str
    """Whose turn it was."""
    created_at: datetime
    """When the turn happened."""
    record: DecisionRecord
    """Everything recorded: message, answer, tool calls, recalls, rationale, model, outcome."""
    helpful: float
    """Evidence that the turn went well (its outcome, trust-weighted)."""
    harmful: float
    """Evidence that it went wrong."""
    score: float | None = None
    """Search relevance, for results of :meth:`DecisionBook.asearch`."""

    @property
    def turn_id(self) -> str:
        """The turn."""
        return self.record.turn_id

    @property
    def outcome(self) -> Outcome | None:
        """How it turned out, once there was feedback."""
        return self.record.outcome

    @property
    def verdict(self) -> OutcomeFilter:
        """``good``, ``bad``, ``unclear`` (signals disagree or are weak) or ``unrated``."""
        if self.record.outcome is None:
            return "unrated"
        if self.record.outcome.score >= CLEAR_OUTCOME:
            return "good"
        if self.record.outcome.score <= -CLEAR_OUTCOME:
            return "bad"
        return "unclear"

    @classmethod
    def from_learning(cls, row: Learning, *, score: float | None = None) -> Decision:
        """The view of a stored record."""
        return cls(
            id=row.id,
            user_id=str(row.user_id),
            created_at=row.created_at,
            record=DecisionRecord.model_validate(row.content),
            helpful=row.helpful,
            harmful=row.harmful,
            score=score,
        )


class DecisionBook:
    """The decision log of one machine: list, get and search records; read their signals."""

    def __init__(self, *, store: DecisionLogStore, feedback: FeedbackStore | None) -> None:
        self._store = store
        self._feedback = feedback

    async def aget(self, turn_id: str, *, user_id: str | None = None) -> Decision:
        """The record of ``turn_id`` (of ``user_id``; found by id alone when not given)."""
        owner = user_id or await self._store.aowner(turn_id)
        row = await self._store.aget_record(turn_id, user_id=owner)
        if row is None:
            raise NotFoundError(
                f"no decision record for turn {turn_id!r}"
                + (f" of user {user_id!r}" if user_id else "")
                + "; list them with machine.decisions.list(user_id=...)"
            )
        return Decision.from_learning(row)

    async def alist(
        self,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        tool: str | None = None,
        outcome: OutcomeFilter | None = None,
        limit: int | None = 50,
    ) -> builtins.list[Decision]:
        """``user_id``'s decisions, newest first, filtered by session, agent, time, tool, outcome.

        ``tool`` keeps turns that called that tool; ``outcome`` is ``good``, ``bad``,
        ``unclear`` or ``unrated``; ``since``/``until`` bound the turn's time.
        """
        if not user_id:
            raise ValidationError("decisions are private to a user: pass user_id=...")
        if outcome is not None and outcome not in _OUTCOMES:
            raise ValidationError(f"outcome must be one of {', '.join(_OUTCOMES)}, not {outcome!r}")
        flt = self._store.owner_filter(
            user_id, session_id=session_id, agent_id=agent_id, statuses=ALL_STATUSES
        )
        out: builtins.list[Decision] = []
        offset = 0
        while limit is None or len(out) < limit:
            rows = await self._store.db.arun(
                ListLearnings(filter=flt, limit=_PAGE, offset=offset, order_by="created_at")
            )
            for row in rows:
                decision = Decision.from_learning(row)
                if _keep(decision, since=since, until=until, tool=tool, outcome=outcome):
                    out.append(decision)
            if len(rows) < _PAGE:
                break
            offset += _PAGE
        return out if limit is None else out[:limit]

    async def asearch(
        self, query: str, *, user_id: str, agent_id: str | None = None, limit: int = 10
    ) -> builtins.list[Decision]:
        """``user_id``'s decisions most relevant to ``query`` (hybrid search), best first."""
        if not user_id:
            raise ValidationError("decisions are private to a user: pass user_id=...")
        found: Sequence[ScoredLearning] = await self._store.asearch(
            query, user_id=user_id, agent_id=agent_id, limit=limit
        )
        return [Decision.from_learning(s.learning, score=s.score) for s in found]

    async def asignals(
        self, turn_id: str, *, user_id: str | None = None
    ) -> builtins.list[FeedbackSignal]:
        """The feedback signals on a turn, oldest first (empty when feedback is off)."""
        if self._feedback is None:
            return []
        owner = user_id or await self._feedback.aowner(turn_id)
        return await self._feedback.asignals(turn_id, user_id=owner)

    get = sync_twin(aget)
    list = sync_twin(alist)
    search = sync_twin(asearch)
    signals = sync_twin(asignals)


def _keep(
    decision: Decision,
    *,
    since: datetime | None,
    until: datetime | None,
    tool: str | None,
    outcome: OutcomeFilter | None,
) -> bool:
    if since is not None and decision.created_at < since:
        return False
    if until is not None and decision.created_at > until:
        return False
    if tool is not None and not any(c.name == tool for c in decision.record.tool_calls):
        return False
    return outcome is None or decision.verdict == outcome
