"""``LearningService``: one async-first admin surface over a machine's db.

Everything a person or a tool does *about* what was learned — inspect learnings by user or
namespace, review proposals, run curation, read history, restore, forget, export, import,
look at pending work and failures — goes through this one object. The CLI uses only it; the
HTTP API and MCP server build on it too. Every method is async; each has a sync twin (same
name without the leading ``a``) made by one helper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._sync import sync_twin
from ..curation import CurationReport, Curator
from ..db import (
    PRIVATE_NAMESPACE,
    Db,
    GetLearnings,
    HistoryEntry,
    Learning,
    LearningFilter,
    ListHistory,
    ListLearnings,
    ListWork,
    PendingWork,
    ScoredLearning,
    SearchLearnings,
)
from ..db._records import LearningStatus, WorkStatus
from ..embedders import Embedder, aembed
from ..exceptions import NotFoundError, ValidationError
from ._proposals import ProposalBook

__all__ = ["LearningService"]

_WORK_STATUSES = ("pending", "running", "done", "failed")


class LearningService:
    """Admin of one machine's learnings: inspect, review, curate, undo, forget, move.

    Get it from ``machine.service``. Methods are async (``a``-prefixed) with sync twins.
    """

    def __init__(
        self, *, db: Db, embedder: Embedder, proposals: ProposalBook, curator: Curator
    ) -> None:
        self.db = db
        self.embedder = embedder
        self.proposals = proposals
        """Proposals waiting for approval: list, get, approve, reject."""
        self.curator = curator
        """The curation engine (policies per learning type)."""

    # --- learnings --------------------------------------------------------------------------

    async def alearnings(
        self,
        *,
        user_id: str | None = None,
        namespace: str | None = None,
        learning_type: str | None = None,
        statuses: Sequence[LearningStatus] = ("active",),
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Learning]:
        """Learnings, newest first.

        With ``user_id``: what is known about that user (their private learnings, and what they
        contributed to shared namespaces). With ``namespace``: that namespace (``"user"`` needs
        ``user_id``). With neither: every shared namespace.
        """
        if namespace == PRIVATE_NAMESPACE and user_id is None:
            raise ValidationError("the private namespace 'user' is per user: pass user_id=...")
        flt = LearningFilter(
            namespaces=(namespace,) if namespace else None,
            reader_user_id=user_id,
            user_id=user_id,
            learning_types=(learning_type,) if learning_type else None,
            statuses=tuple(statuses),
        )
        return await self.db.arun(ListLearnings(filter=flt, limit=limit, offset=offset))

    async def aget(self, learning_id: str, *, user_id: str | None = None) -> Learning:
        """One learning by id: shared ones, or ``user_id``'s private ones (any status)."""
        flt = LearningFilter(
            namespaces=None, reader_user_id=user_id, statuses=("active", "archived", "superseded")
        )
        rows = await self.db.arun(GetLearnings(ids=(learning_id,), filter=flt))
        if not rows:
            hint = "" if user_id else " (a private learning needs its user: pass user_id=...)"
            raise NotFoundError(f"no learning with id {learning_id!r}{hint}")
        return rows[0]

    async def asearch(
        self,
        query: str,
        *,
        user_id: str | None = None,
        namespaces: Sequence[str] | None = None,
        learning_type: str | None = None,
        limit: int = 10,
    ) -> list[ScoredLearning]:
        """Hybrid search over what ``user_id`` may read (shared namespaces without a user)."""
        vector = tuple(float(x) for x in (await aembed(self.embedder, [query]))[0])
        flt = LearningFilter(
            namespaces=tuple(namespaces) if namespaces is not None else None,
            reader_user_id=user_id,
            learning_types=(learning_type,) if learning_type else None,
        )
        return await self.db.arun(
            SearchLearnings(
                filter=flt, query=query, vector=vector, embedder=self.embedder.name, limit=limit
            )
        )

    # --- curation and history ---------------------------------------------------------------

    async def acurate(self, /, **options: Any) -> CurationReport:
        """Run curation now (dedup, supersession, decay, caps); returns what it changed."""
        return await self.curator.acurate(**options)

    async def ahistory(self, learning_id: str) -> list[HistoryEntry]:
        """Every recorded change of a learning, oldest first."""
        entries = await self.db.arun(ListHistory(learning_id=learning_id))
        if not entries:
            raise NotFoundError(
                f"no learning with id {learning_id!r} has any history; list ids with "
                "`learning-machines show --user USER`"
            )
        return entries

    async def arestore(self, learning_id: str, *, to_entry: str | None = None) -> Learning:
        """Undo the last curation step on a learning (or go back to before ``to_entry``)."""
        return await self.curator.arestore(learning_id, to_entry=to_entry)

    # --- a user's data ------------------------------------------------------------------------

    async def aforget(self, user_id: str, *, keep_shared: bool = True) -> dict[str, int]:
        """Delete everything private to ``user_id``; returns rows deleted or unlinked per table."""
        return await self.curator.aforget(user_id, keep_shared=keep_shared)

    async def aexport(self, user_id: str) -> dict[str, Any]:
        """Everything private to ``user_id``, as JSON-ready data."""
        return await self.curator.aexport(user_id)

    async def aimport(self, data: Mapping[str, Any]) -> dict[str, int]:
        """Restore an export into this db (only rows of the export's own user)."""
        return await self.curator.aimport(data)

    # --- pending work -------------------------------------------------------------------------

    async def apending(
        self,
        *,
        statuses: Sequence[WorkStatus] = ("pending", "running", "failed"),
        kinds: Sequence[str] | None = None,
        limit: int | None = 100,
    ) -> list[PendingWork]:
        """Work not yet done (``statuses`` ``"pending"``, ``"running"``, ``"failed"``, ``"done"``).

        By default what still needs attention: waiting, in progress, or parked as failed.
        """
        bad = [s for s in statuses if s not in _WORK_STATUSES]
        if bad:
            raise ValidationError(
                f"unknown work status {', '.join(map(repr, bad))}; use {', '.join(_WORK_STATUSES)}"
            )
        return await self.db.arun(
            ListWork(
                statuses=tuple(statuses),
                kinds=tuple(kinds) if kinds is not None else None,
                limit=limit,
            )
        )

    async def afailures(self, *, limit: int | None = 100) -> list[PendingWork]:
        """Work parked as failed, with its error and the model's raw output."""
        return await self.apending(statuses=("failed",), limit=limit)

    learnings = sync_twin(alearnings)
    get = sync_twin(aget)
    search = sync_twin(asearch)
    curate = sync_twin(acurate)
    history = sync_twin(ahistory)
    restore = sync_twin(arestore)
    forget = sync_twin(aforget)
    export = sync_twin(aexport)
    import_ = sync_twin(aimport)
    pending = sync_twin(apending)
    failures = sync_twin(afailures)
