"""An agent's decision traces across its users: what reflection, the gate and ``effect`` read.

Decision records are private to the user whose turn they are, so they are read one owner at a
time, through that owner (the isolation rule is never bypassed); the owners come from the
maintenance listing of scopes that curation uses too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..db import PRIVATE_NAMESPACE, Db, Learning, LearningFilter, ListLearnings, ListScopes
from ..db._records import ALL_STATUSES
from ..stores._decision_model import DECISION_TYPE, DecisionRecord, verdict_of
from ._model import EvidenceTurn, Scope

__all__ = ["Trace", "atraces", "auser_turn_ids"]

_PAGE = 200


@dataclass(frozen=True, kw_only=True)
class Trace:
    """One turn of the agent, as its decision record holds it."""

    record: DecisionRecord
    user_id: str
    created_at: datetime
    updated_at: datetime
    embedding: tuple[float, ...] | None = None
    embedder: str | None = None

    @property
    def turn_id(self) -> str:
        """The turn."""
        return self.record.turn_id

    @property
    def verdict(self) -> str:
        """``bad``, ``good``, ``unclear`` or ``unrated`` (as ``machine.decisions`` says)."""
        return verdict_of(self.record.outcome)

    def evidence(self) -> EvidenceTurn:
        """The turn as evidence: id, outcome, when (no text)."""
        outcome = self.record.outcome
        return EvidenceTurn(
            turn_id=self.turn_id,
            score=0.0 if outcome is None else round(outcome.score, 3),
            source="" if outcome is None else outcome.source,
            at=self.created_at.isoformat(),
        )

    @classmethod
    def from_learning(cls, row: Learning) -> Trace:
        """The trace of a decision row."""
        return cls(
            record=DecisionRecord.model_validate(row.content),
            user_id=str(row.user_id),
            created_at=row.created_at,
            updated_at=row.updated_at,
            embedding=row.embedding,
            embedder=row.embedder,
        )


def _owner_filter(user_id: str, scope: Scope) -> LearningFilter:
    return LearningFilter(
        namespaces=(PRIVATE_NAMESPACE,),
        reader_user_id=user_id,
        learning_types=(DECISION_TYPE,),
        agent_id=scope.agent_id,
        team_id=scope.team_id,
        statuses=ALL_STATUSES,
    )


async def atraces(
    db: Db,
    scope: Scope,
    *,
    since: datetime | None = None,
    keep: Callable[[Trace], bool] | None = None,
    limit: int | None = None,
    order_by: str = "updated_at",
    exact_team: bool = True,
) -> list[Trace]:
    """The scope's turns changed (or, ``order_by="created_at"``, made) since ``since``.

    Newest first; ``keep`` filters, ``limit`` caps the result. ``exact_team=False``: every
    team's turns of the agent (instructions are not kept per team).
    """
    owners = await db.arun(
        ListScopes(
            statuses=ALL_STATUSES,
            learning_types=(DECISION_TYPE,),
            namespaces=(PRIVATE_NAMESPACE,),
        )
    )
    column = "updated_at" if order_by == "updated_at" else "created_at"
    found: list[Trace] = []
    for owner in owners:
        if owner.user_id is None:
            continue
        offset = 0
        mine = 0
        while True:
            rows = await db.arun(
                ListLearnings(
                    filter=_owner_filter(owner.user_id, scope),
                    limit=_PAGE,
                    offset=offset,
                    order_by="updated_at" if column == "updated_at" else "created_at",
                )
            )
            older = False
            for row in rows:
                when = row.updated_at if column == "updated_at" else row.created_at
                if since is not None and when <= since:
                    older = True
                    break
                if row.agent_id != scope.agent_id or (exact_team and row.team_id != scope.team_id):
                    continue
                trace = Trace.from_learning(row)
                if keep is None or keep(trace):
                    found.append(trace)
                    mine += 1
            # Each owner's rows come newest first: their first ``limit`` are all the merge needs.
            if older or len(rows) < _PAGE or (limit is not None and mine >= limit):
                break
            offset += _PAGE
    found.sort(key=lambda t: t.updated_at if column == "updated_at" else t.created_at, reverse=True)
    return found if limit is None else found[:limit]


async def auser_turn_ids(db: Db, user_id: str) -> set[str]:
    """Every turn of ``user_id`` in the decision log (before they are forgotten)."""
    flt = LearningFilter(
        namespaces=(PRIVATE_NAMESPACE,),
        reader_user_id=user_id,
        learning_types=(DECISION_TYPE,),
        statuses=ALL_STATUSES,
    )
    rows = await db.arun(ListLearnings(filter=flt, limit=None))
    return {str(r.content.get("turn_id") or r.entity_id) for r in rows}
