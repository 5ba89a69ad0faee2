"""A LangGraph ``BaseStore`` over our db: LangGraph memories as learnings.

``LearningMachinesStore(db)`` is what ``graph.compile(store=...)`` and LangChain's
``create_agent(store=...)`` take. Its batch ops map onto our typed ops: ``GetOp`` →
``GetLearnings`` by the item's row id, ``PutOp`` → ``PutLearning`` / ``DeleteLearnings`` (every
change kept in the learning's history), ``SearchOp`` → ``ListLearnings`` / ``SearchLearnings``
(hybrid keyword + vector when the store has an embedder), ``ListNamespacesOp`` →
``ListScopes``. How namespaces map onto our namespaces and users, and how isolation holds, is
in :mod:`learning_machines.adapters._langgraph_scopes` and ``docs/adapters/langgraph-store.md``.

Behaviour follows LangGraph's ``InMemoryStore`` (a differential test runs both on the same
random operations): reads in a batch see the store as it was before the batch's writes, the
last put of one item in a batch wins. Unlike it, the store keeps ``created_at`` across updates
and orders unranked results newest first (as LangGraph's ``PostgresStore``); TTLs are not
supported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)
from langgraph.store.base.embed import get_text_at_path

from .._sync import run_sync
from ..db import (
    PRIVATE_NAMESPACE,
    Change,
    Db,
    DeleteLearnings,
    GetLearnings,
    Learning,
    LearningFilter,
    ListLearnings,
    ListScopes,
    PutLearning,
    ScopeCount,
    SearchLearnings,
    utcnow,
)
from ..db import Op as DbOp
from ..embedders import Embedder, aembed
from ..exceptions import ConfigurationError, ValidationError
from ..machine import LearningMachine
from ._langgraph_scopes import (
    LEARNING_TYPE,
    Namespace,
    NamespaceMap,
    Reach,
    item_id,
    namespace_matches,
    private_filter,
    shared_filter,
    shared_namespace,
    value_matches,
)

__all__ = ["LearningMachinesStore"]

_ACTOR = {"store": "langgraph"}


def _fields(row: Learning) -> dict[str, Any]:
    content = row.content
    return {
        "namespace": tuple(content["namespace"]),
        "key": str(content["key"]),
        "value": dict(content["value"]),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _item(row: Learning) -> Item:
    return Item(**_fields(row))


def _search_item(row: Learning, score: float | None) -> SearchItem:
    return SearchItem(**_fields(row), score=score)


def _newest_first(rows: Iterable[Learning]) -> list[Learning]:
    return sorted(sorted(rows, key=lambda r: r.id), key=lambda r: r.updated_at, reverse=True)


def _check_page(op: SearchOp | ListNamespacesOp) -> None:
    if op.limit < 0 or op.offset < 0:
        raise ValidationError(
            f"limit and offset must not be negative (got limit={op.limit}, offset={op.offset})"
        )


class LearningMachinesStore(BaseStore):
    """LangGraph's long-term memory store, kept in a Learning Machines db.

    Example::

        store = LearningMachinesStore(SqliteDb("memories.db"), embedder=HashEmbedder())
        store.put(("user", "alice", "memories"), "m1", {"text": "likes tea"})
        store.search(("user", "alice"), query="drinks")

    Args:
        db: The db (SQLite or PostgreSQL), shared with your machine if you like.
        embedder: Embeds the indexed fields for semantic search (keyword search without one).
        fields: Paths of the value to index by default (``"$"``: the whole value); a put's
            ``index=[...]`` overrides them, ``index=False`` indexes nothing.
        user_namespaces: Namespace templates private to a user, each ending with
            ``"{user_id}"``.
        user_id: Bind the store to one user: any namespace of another user is refused.

    """

    supports_ttl = False

    def __init__(
        self,
        db: Db,
        *,
        embedder: Embedder | None = None,
        fields: Sequence[str] = ("$",),
        user_namespaces: Sequence[Sequence[str]] = (("user", "{user_id}"),),
        user_id: str | None = None,
    ) -> None:
        """Build a store over ``db`` (see the class docs for the arguments)."""
        self.db = db
        self.embedder = embedder
        self.fields = tuple(fields)
        self.user_namespaces = tuple(tuple(t) for t in user_namespaces)
        self.map = NamespaceMap(user_namespaces=self.user_namespaces, user_id=user_id)

    @classmethod
    def from_machine(cls, machine: LearningMachine, **options: Any) -> LearningMachinesStore:
        """A store over a machine's db, embedding with the machine's embedder."""
        if machine.db is None:
            raise ConfigurationError(
                "this LearningMachine has no db: pass db=... to LearningMachine(...)"
            )
        return cls(machine.db, **{"embedder": machine.embedder, **options})

    @property
    def user_id(self) -> str | None:
        """The user this store is bound to (``None``: every user's namespaces)."""
        return self.map.user_id

    def for_user(self, user_id: str) -> LearningMachinesStore:
        """The same store, bound to one user (refuses other users' namespaces)."""
        return LearningMachinesStore(
            self.db,
            embedder=self.embedder,
            fields=self.fields,
            user_namespaces=self.user_namespaces,
            user_id=user_id,
        )

    # --- the two methods LangGraph asks of a store -----------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` (see :meth:`abatch`)."""
        return run_sync(self.abatch(ops))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops``: reads against the store as it is, then the puts, in one transaction."""
        ops = list(ops)
        for op in ops:
            if not isinstance(op, GetOp | SearchOp | PutOp | ListNamespacesOp):
                raise ValueError(f"unknown operation type: {type(op).__name__}")
            validate_op_namespace(op)
        puts: dict[tuple[Namespace, str], PutOp] = {}
        results: list[Result] = []
        for op in ops:
            if isinstance(op, GetOp):
                results.append(await self._get(op))
            elif isinstance(op, SearchOp):
                results.append(await self._search(op))
            elif isinstance(op, ListNamespacesOp):
                results.append(await self._list_namespaces(op))
            else:
                puts[(op.namespace, str(op.key))] = op
                results.append(None)
        if puts:
            await self._write(list(puts.values()))
        return results

    # --- get -------------------------------------------------------------------------------------

    async def _get(self, op: GetOp) -> Item | None:
        place = self.map.place(op.namespace)
        rows = await self.db.arun(
            GetLearnings(ids=(item_id(op.namespace, op.key),), filter=place.filter())
        )
        for row in rows:
            if tuple(row.content["namespace"]) == op.namespace and row.content["key"] == op.key:
                return _item(row)
        return None

    # --- put -------------------------------------------------------------------------------------

    def _text(self, op: PutOp) -> str:
        if op.value is None or op.index is False:
            return ""
        paths = self.fields if op.index is None else op.index
        return "\n".join(t for path in paths for t in get_text_at_path(op.value, path))

    async def _write(self, puts: Sequence[PutOp]) -> None:
        places = [self.map.place(op.namespace) for op in puts]  # refuses before anything
        for op in puts:
            if op.value is not None:
                try:
                    json.dumps(op.value)
                except (TypeError, ValueError) as exc:
                    raise ValidationError(
                        f"the value of {op.namespace!r}/{op.key!r} is not JSON ({exc}); "
                        "store strings, numbers, lists and dicts"
                    ) from exc
        ids = [item_id(op.namespace, str(op.key)) for op in puts]
        existing: dict[str, Learning] = {}
        for flt in {p.filter() for p in places}:
            rows = await self.db.arun(GetLearnings(ids=tuple(ids), filter=flt))
            existing.update((r.id, r) for r in rows)
        texts = [self._text(op) for op in puts]
        vectors: dict[int, tuple[float, ...]] = {}
        embed = [i for i, text in enumerate(texts) if text]
        if self.embedder is not None and embed:
            found = await aembed(self.embedder, [texts[i] for i in embed])
            vectors = {i: tuple(float(x) for x in v) for i, v in zip(embed, found, strict=True)}
        now = utcnow()
        writes: list[DbOp[Any]] = []
        deleted: list[str] = []
        for i, (op, place, row_id) in enumerate(zip(puts, places, ids, strict=True)):
            old = existing.get(row_id)
            if op.value is None:
                if old is not None:
                    deleted.append(row_id)
                continue
            # One instant per put, so a batch's items keep a strict newest-first order.
            at = now + timedelta(microseconds=i)
            learning = Learning(
                id=row_id,
                learning_type=LEARNING_TYPE,
                namespace=place.namespace,
                user_id=place.user_id if place.user_id is not None else self.user_id,
                content={"namespace": list(op.namespace), "key": str(op.key), "value": op.value},
                search_text=texts[i],
                embedding=vectors.get(i),
                embedder=self.embedder.name if i in vectors and self.embedder else None,
                created_at=old.created_at if old is not None else at,
                updated_at=at,
                provenance={**_ACTOR, "namespace": list(op.namespace), "key": str(op.key)},
            )
            action = "update" if old is not None else "create"
            writes.append(
                PutLearning(
                    learning=learning, change=Change(action=action, actor=_ACTOR, reason="put")
                )
            )
        if deleted:
            change = Change(action="delete", actor=_ACTOR, reason="put with value None")
            writes.append(DeleteLearnings(ids=tuple(deleted), change=change))
        if writes:
            await self.db.abatch(writes)

    # --- search ----------------------------------------------------------------------------------

    async def _scopes(self) -> list[ScopeCount]:
        return await self.db.arun(ListScopes(learning_types=(LEARNING_TYPE,), user_id=self.user_id))

    async def _filters(self, prefix: Namespace, reach: Reach) -> list[tuple[LearningFilter, bool]]:
        """``(filter, shared)`` for every scope a search under ``prefix`` can touch."""
        if reach.users and not reach.every_user:
            # Inside a user namespace: only that user's rows can match (no shared tuple starts
            # with a user namespace), so no scope needs looking up.
            return [(private_filter(user), False) for user in sorted(reach.users)]
        names: list[str] = []
        private: list[tuple[LearningFilter, bool]] = []
        for scope in await self._scopes():
            if scope.namespace == PRIVATE_NAMESPACE:
                if scope.user_id is not None and reach.includes(scope.user_id):
                    private.append((private_filter(scope.user_id), False))
                continue
            found = shared_namespace(scope.namespace)
            if found is not None and found[: len(prefix)] == prefix:
                names.append(scope.namespace)
        shared = [(shared_filter(names), True)] if names else []
        return shared + private

    async def _search(self, op: SearchOp) -> list[SearchItem]:
        _check_page(op)
        prefix = tuple(op.namespace_prefix)
        filters = await self._filters(prefix, self.map.reach(prefix))
        if not filters or op.limit == 0:
            return []
        vector = None
        if op.query and self.embedder is not None:
            vector = tuple(float(x) for x in (await aembed(self.embedder, [op.query]))[0])
        end = op.offset + op.limit
        if len(filters) == 1 and filters[0][1] and not op.filter:
            # One set of shared namespaces, nothing to check row by row: the db pages.
            flt = filters[0][0]
            if not op.query:
                rows = await self.db.arun(
                    ListLearnings(filter=flt, limit=op.limit, offset=op.offset)
                )
                return [_search_item(r, None) for r in rows]
            hits = await self._ranked(flt, op.query, vector, limit=end)
            if len(hits) >= end:
                return [_search_item(r, s) for r, s in hits[op.offset : end]]
        listed: list[tuple[LearningFilter, list[Learning]]] = []
        for flt, _ in filters:
            listed.append((flt, await self.db.arun(ListLearnings(filter=flt, limit=None))))
        rows = [
            r
            for _, found in listed
            for r in found
            if tuple(r.content["namespace"])[: len(prefix)] == prefix
            and value_matches(r.content["value"], op.filter)
        ]
        ordered: list[tuple[Learning, float | None]] = [(r, None) for r in _newest_first(rows)]
        if op.query and rows:
            keep = {r.id for r in rows}
            scored: list[tuple[Learning, float | None]] = []
            for flt, found in listed:
                if found:  # every row of the scope ranked, then the ones that match kept
                    hits = await self._ranked(flt, op.query, vector, limit=len(found))
                    scored.extend((r, s) for r, s in hits if r.id in keep)
            scored.sort(key=lambda pair: -(pair[1] or 0.0))
            ranked = {r.id for r, _ in scored}
            ordered = scored + [(r, None) for r, _ in ordered if r.id not in ranked]
        return [_search_item(r, s) for r, s in ordered[op.offset : end]]

    async def _ranked(
        self, flt: LearningFilter, query: str, vector: tuple[float, ...] | None, *, limit: int
    ) -> list[tuple[Learning, float | None]]:
        """Rows of ``flt`` the query finds, best first (hybrid, or keyword without embedder)."""
        hits = await self.db.arun(
            SearchLearnings(
                filter=flt,
                query=query,
                vector=vector,
                embedder=self.embedder.name if vector is not None and self.embedder else None,
                limit=max(1, limit),
                candidates=max(50, limit),
            )
        )
        return [(hit.learning, hit.score) for hit in hits]

    # --- list namespaces -------------------------------------------------------------------------

    async def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        _check_page(op)
        conditions = [(c.match_type, tuple(c.path)) for c in op.match_conditions or ()]
        found: set[Namespace] = set()
        for scope in await self._scopes():
            if scope.namespace != PRIVATE_NAMESPACE:
                shared = shared_namespace(scope.namespace)
                if shared is not None:
                    found.add(shared)
            elif scope.user_id is not None and self.map.private_may_match(conditions):
                rows = await self.db.arun(
                    ListLearnings(filter=private_filter(scope.user_id), limit=None)
                )
                found.update(tuple(r.content["namespace"]) for r in rows)
        names = [ns for ns in found if all(namespace_matches(k, p, ns) for k, p in conditions)]
        if op.max_depth is not None:
            names = list({ns[: op.max_depth] for ns in names})
        return sorted(names)[op.offset : op.offset + op.limit]
