"""``LearningService``: one async-first admin surface over a machine's db.

Everything a person or a tool does *about* what was learned — inspect learnings by user or
namespace, review proposals, run curation, read history, restore, forget, export, import,
look at pending work and failures — goes through this one object. The CLI uses only it; the
HTTP API and MCP server build on it too. Every method is async; each has a sync twin (same
name without the leading ``a``) made by one helper.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._progress import ProgressCallback
from .._sync import sync_twin
from ..curation import CurationReport, Curator
from ..db import (
    PRIVATE_NAMESPACE,
    Db,
    GetLearnings,
    HistoryEntry,
    Learning,
    LearningFilter,
    ListEmbedders,
    ListHistory,
    ListLearnings,
    ListScopes,
    ListWork,
    MatchIds,
    PendingWork,
    ScoredLearning,
    SearchLearnings,
    SetEmbeddings,
)
from ..db._ops import IdKind
from ..db._records import ALL_STATUSES, LearningStatus, WorkStatus
from ..embedders import BatchingEmbedder, Embedder, aembed
from ..exceptions import NotFoundError, ValidationError
from ._proposals import ProposalBook

__all__ = ["LearningService", "Reembedded"]

_WORK_STATUSES = ("pending", "running", "done", "failed")

#: Shortest start of an id accepted in place of the whole id.
MIN_PREFIX = 4

# How a person lists the ids of each kind, for "not found" messages.
_LIST_HINT: dict[str, str] = {
    "learning": "list ids with `learning-machines show --user USER`",
    "proposal": "list ids with `learning-machines proposals list --status all`",
    "history": "list entry ids with `learning-machines history LEARNING_ID`",
    "work": "list ids with `learning-machines pending --status all`",
}


@dataclass(frozen=True, kw_only=True)
class Reembedded:
    """What :meth:`LearningService.areembed` did."""

    embedder: str
    """Name of the embedder the rows now carry."""
    updated: int
    """Rows re-embedded."""
    before: dict[str, int]
    """Rows per embedder name before the run."""


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

    # --- ids -----------------------------------------------------------------------------------

    async def aresolve_id(self, id_or_prefix: str, *, kind: IdKind = "learning") -> str:
        """The whole id that ``id_or_prefix`` names: the id itself, or a unique start of one.

        ``kind`` is ``"learning"``, ``"proposal"``, ``"history"`` (an entry) or ``"work"``. A
        start needs at least 4 characters. Raises :class:`NotFoundError` when nothing matches
        and :class:`ValidationError` when several ids start that way (it lists some).
        """
        text = id_or_prefix.strip()
        if not text:
            raise ValidationError(f"an empty {kind} id; {_LIST_HINT[kind]}")
        matches = await self.db.arun(MatchIds(kind=kind, prefix=text, limit=5))
        if text in matches:
            return text
        if not matches:
            raise NotFoundError(f"no {kind} id starts with {text!r}; {_LIST_HINT[kind]}")
        if len(text) < MIN_PREFIX:
            raise ValidationError(
                f"{text!r} is too short to name a {kind}: give at least {MIN_PREFIX} characters"
            )
        if len(matches) > 1:
            shown = ", ".join(m[: len(text) + 4] + "…" for m in matches[:4])
            more = " and more" if len(matches) > 4 else ""
            raise ValidationError(
                f"{text!r} starts several {kind} ids ({shown}{more}); give more characters"
            )
        return matches[0]

    async def ashort_ids(
        self, ids: Sequence[str], *, kind: IdKind = "learning", min_length: int = 8
    ) -> dict[str, str]:
        """For each id, its shortest start (at least ``min_length``) that names it alone.

        What a person can type instead of the whole id (:meth:`aresolve_id` accepts it).
        """
        short: dict[str, str] = {}
        waiting = list(dict.fromkeys(ids))
        length = min_length
        while waiting:
            found = await self.db.abatch(
                [MatchIds(kind=kind, prefix=i[:length], limit=2) for i in waiting]
            )
            still = []
            for whole, matches in zip(waiting, found, strict=True):
                if len(matches) <= 1 or length >= len(whole):
                    short[whole] = whole[:length]
                else:
                    still.append(whole)
            waiting, length = still, length + 2
        return short

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
        """Delete everything private to ``user_id``; returns rows deleted or unlinked per table.

        The embedder's memory of recent texts is emptied too, so none of the user's words stay
        in this process.
        """
        deleted = await self.curator.aforget(user_id, keep_shared=keep_shared)
        if isinstance(self.embedder, BatchingEmbedder):
            self.embedder.clear()
        return deleted

    async def aexport(self, user_id: str) -> dict[str, Any]:
        """Everything private to ``user_id``, as JSON-ready data."""
        return await self.curator.aexport(user_id)

    async def aimport(self, data: Mapping[str, Any]) -> dict[str, int]:
        """Restore an export into this db (only rows of the export's own user)."""
        return await self.curator.aimport(data)

    # --- embeddings ----------------------------------------------------------------------------

    async def areembed(
        self, *, batch_size: int = 64, on_progress: ProgressCallback | None = None
    ) -> Reembedded:
        """Re-embed every row whose vector another embedder made, with this service's embedder.

        Run it after changing a machine's embedder, so searches find the old rows again
        (mixing embedders raises :class:`EmbedderMismatchError`). Rows of every namespace and
        status are done, ``batch_size`` texts per embedder call and per transaction; a run that
        stops part-way can simply be run again. ``on_progress(done, total)`` is called after
        each batch.
        """
        if batch_size < 1:
            raise ValidationError(f"batch_size must be at least 1, got {batch_size}")
        name = self.embedder.name
        before: dict[str, int] = await self.db.arun(ListEmbedders(all_rows=True))
        total = sum(n for embedder, n in before.items() if embedder != name)
        done = 0
        if on_progress is not None:
            on_progress(0, total)
        scopes = await self.db.arun(ListScopes(statuses=ALL_STATUSES))
        for scope in scopes:
            flt = LearningFilter(
                namespaces=(scope.namespace,),
                reader_user_id=scope.user_id,
                learning_types=(scope.learning_type,),
                statuses=ALL_STATUSES,
            )
            offset = 0
            while True:
                rows = await self.db.arun(
                    ListLearnings(
                        filter=flt,
                        limit=batch_size,
                        offset=offset,
                        order_by="created_at",
                        ascending=True,
                    )
                )
                offset += len(rows)
                todo = [r for r in rows if r.embedding is not None and r.embedder != name]
                if todo:
                    vectors = await aembed(self.embedder, [r.search_text for r in todo])
                    pairs = tuple(
                        (r.id, tuple(float(x) for x in v))
                        for r, v in zip(todo, vectors, strict=True)
                    )
                    done += await self.db.arun(SetEmbeddings(vectors=pairs, embedder=name))
                    if on_progress is not None:
                        on_progress(done, total)
                if len(rows) < batch_size:
                    break
        return Reembedded(embedder=name, updated=done, before=before)

    async def areindex(self, *, namespaces: Sequence[str] | None = None) -> dict[str, int]:
        """Rebuild the search indexes of large shared namespaces: ``{namespace: rows}``.

        Searches never need it to be correct; run it after restoring a backup or a large import.
        Namespaces below the size threshold lose their index (they are searched in SQL): ``0``.
        """
        return await asyncio.to_thread(self.db.reindex, namespaces=namespaces)

    # --- pending work -------------------------------------------------------------------------

    async def apending(
        self,
        *,
        statuses: Sequence[WorkStatus] = ("pending", "running", "failed"),
        kinds: Sequence[str] | None = None,
        limit: int | None = 100,
    ) -> list[PendingWork]:
        """Learning work that still needs attention, oldest first.

        By default: waiting (``"pending"``), in progress (``"running"``) or parked after its
        last try (``"failed"``); finished work (``"done"``) only when asked for in
        ``statuses``. ``kinds`` picks ``"extract"`` or ``"curate"`` work.
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

    resolve_id = sync_twin(aresolve_id)
    short_ids = sync_twin(ashort_ids)
    reembed = sync_twin(areembed)
    learnings = sync_twin(alearnings)
    get = sync_twin(aget)
    search = sync_twin(asearch)
    curate = sync_twin(acurate)
    history = sync_twin(ahistory)
    restore = sync_twin(arestore)
    forget = sync_twin(aforget)
    export = sync_twin(aexport)
    import_ = sync_twin(aimport)
    reindex = sync_twin(areindex)
    pending = sync_twin(apending)
    failures = sync_twin(afailures)
