"""Each operation of :mod:`._ops` as a function of an open PostgreSQL cursor (one transaction).

Learnings are here, the queue-like tables in :mod:`._postgres_queue`; ``run_op`` dispatches on
the operation's type. The connection, pool, transaction and retries live in :mod:`._postgres`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..exceptions import ConflictError, ValidationError
from ._decode import decode_rows
from ._id_match import match_ids_sql
from ._ops import (
    CountLearnings,
    DeleteLearnings,
    GetLearnings,
    ListEmbedders,
    ListHistory,
    ListLearnings,
    ListScopes,
    MarkRecalled,
    MatchIds,
    Op,
    PurgeUser,
    PutHistory,
    PutLearning,
    ScopeCount,
    SearchLearnings,
    SetEmbeddings,
    version_conflict,
)
from ._postgres_broad import BroadState
from ._postgres_copy import COPY_MIN_ROWS, copy_learnings
from ._postgres_partial import PARTIAL_HANDLERS
from ._postgres_queue import QUEUE_HANDLERS
from ._postgres_rows import (
    LEARNING_COLUMNS,
    dumps,
    history_from_row,
    learning_from_row,
    learning_json,
    learning_params,
    scrub_user,
    utc,
    vector_literal,
)
from ._postgres_search import LEARNING_SELECT, ensure_vector_index, json_text, search
from ._records import PRIVATE_NAMESPACE, Change, Learning, LearningFilter, new_id, utcnow
from ._where import filter_where

if TYPE_CHECKING:
    import psycopg

__all__ = ["OpContext", "run_op", "run_ops"]


class OpContext:
    """What op functions share: the cursor, the cache of vector indexes, pgvector's features."""

    __slots__ = ("broad", "cur", "defer_indexes", "iterative_scan", "known_indexes")

    def __init__(
        self,
        cur: psycopg.Cursor[dict[str, Any]],
        known_indexes: set[tuple[str, int]],
        *,
        iterative_scan: bool = True,
        defer_indexes: bool = False,
        broad: BroadState | None = None,
    ) -> None:
        self.broad = broad
        self.cur = cur
        self.known_indexes = known_indexes
        self.iterative_scan = iterative_scan
        self.defer_indexes = defer_indexes

    def q(self, query: str, params: Any = None) -> psycopg.Cursor[dict[str, Any]]:
        """Execute ``query`` (built here from trusted pieces; values always as params)."""
        return self.cur.execute(query.encode(), params)


def _where(f: LearningFilter) -> tuple[str, list[Any]]:
    return filter_where(f, param="%s", alias="l", json_text=json_text)


# --- learnings --------------------------------------------------------------------------------


def _history_params(
    learning_id: str, change: Change, old: Learning | None, new: Learning | None
) -> tuple[Any, ...]:
    row = new if new is not None else old
    return (
        new_id(),
        learning_id,
        change.action,
        None if old is None else dumps(learning_json(old), "history"),
        None if new is None else dumps(learning_json(new), "history"),
        dumps(change.actor, "Change.actor"),
        change.reason,
        change.turn_id,
        row.user_id if row is not None else None,
        utcnow(),
    )


_INSERT_HISTORY = (
    "INSERT INTO learning_history (id, learning_id, action, old, new, actor, reason, turn_id,"
    " user_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _lock_learnings(
    ctx: OpContext, ids: tuple[str, ...]
) -> tuple[dict[str, Learning], dict[str, int]]:
    """Lock the rows with these ids: the decodable ones, and the version of every one.

    A row that cannot be decoded is still locked (and can be overwritten or deleted, which
    repairs it); it has a version but no :class:`Learning`.
    """
    # For history snapshots, which leave the embedding out: do not ship vectors for nothing.
    select = LEARNING_SELECT.replace("l.embedding::text AS embedding", "NULL::text AS embedding")
    rows = ctx.q(
        f"SELECT {select} FROM learnings l WHERE l.id = ANY(%s) ORDER BY l.id FOR UPDATE",
        (list(ids),),
    ).fetchall()
    decoded = {x.id: x for _, x in decode_rows(rows, learning_from_row, table="learnings")}
    return decoded, {r["id"]: int(r["version"]) for r in rows}


# Every write of a row takes the next version (a new row starts at 1, the column's default).
_ON_CONFLICT = (
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in LEARNING_COLUMNS if c != "id")
    + ", version = learnings.version + 1"
)
# The WHERE of the update is the version check for a put that creates (``expected_version=0``)
# racing another creator: the row it conflicts with was not there to lock, so the check happens
# here, atomically; no row comes back and the put raises ConflictError. Other checks are made on
# the locked old rows before this runs.
_UPSERT_LEARNING = (
    f"INSERT INTO learnings ({', '.join(LEARNING_COLUMNS)}, version) VALUES ("
    + ", ".join(
        "%s::vector"
        if c == "embedding"
        else "%s::jsonb"
        if c in ("content", "provenance")
        else "%s"
        for c in LEARNING_COLUMNS
    )
    + ", 1)"
    + _ON_CONFLICT
    + " WHERE %s::bigint IS NULL OR learnings.version = %s::bigint"
    + " RETURNING version"
)
# A batch copied in (``_postgres_copy``) is one statement without per-row parameters, so the same
# check is made on what it returns: a put with ``expected_version`` must have moved its row to
# exactly the next version (a create racing another creator updated their row instead, to 2+;
# raising rolls that back).
_COPY_UPSERT_TAIL = _ON_CONFLICT + " RETURNING id, version"


def _created_meanwhile(op: PutLearning) -> ConflictError:
    return ConflictError(
        f"Learning {op.learning.id!r} was created by another writer at the same time. "
        "Nothing was written; read it and apply your change to what is stored.",
        learning_id=op.learning.id,
    )


def _upsert_rows(ctx: OpContext, ops: list[PutLearning], params: list[list[Any]]) -> list[int]:
    """Write the rows of ``ops`` (locked and version-checked); the version each one got."""
    if len(ops) >= COPY_MIN_ROWS:
        embeddings = [op.learning.embedding for op in ops]
        returned = copy_learnings(ctx.cur, LEARNING_COLUMNS, params, embeddings, _COPY_UPSERT_TAIL)
        got = {r["id"]: int(r["version"]) for r in returned}
        versions = []
        for op in ops:
            version = got[op.learning.id]
            if op.expected_version is not None and version != op.expected_version + 1:
                raise _created_meanwhile(op)
            versions.append(version)
        return versions
    ctx.cur.executemany(
        _UPSERT_LEARNING.encode(),
        [[*p, op.expected_version, op.expected_version] for p, op in zip(params, ops, strict=True)],
        returning=True,
    )
    versions = []
    for op in ops:
        row = ctx.cur.fetchone()
        if row is None:
            # Created by a concurrent transaction after the lock query found nothing.
            raise _created_meanwhile(op)
        versions.append(int(row["version"]))
        ctx.cur.nextset()
    return versions


def _put_learnings(ctx: OpContext, ops: list[PutLearning]) -> list[Learning]:
    """Run puts of distinct ids together: one lock query, pipelined upserts and history."""
    params = []
    for op in ops:
        learning = op.learning
        if learning.namespace == PRIVATE_NAMESPACE and learning.user_id is None:
            raise ValidationError(
                "A learning in the private namespace 'user' needs its owner: set user_id=..."
            )
        if learning.embedding is not None and learning.embedder is None:
            raise ValidationError("A learning with an embedding needs embedder=... (its name)")
        params.append(learning_params(learning))
    for embedder, dims in sorted(
        {(op.learning.embedder, len(op.learning.embedding)) for op in ops if op.learning.embedding}
    ):
        assert embedder is not None
        ensure_vector_index(
            ctx.cur, embedder, dims, ctx.known_indexes, create=not ctx.defer_indexes
        )
    old, versions = _lock_learnings(ctx, tuple(op.learning.id for op in ops))
    for op in ops:
        conflict = version_conflict(op, versions.get(op.learning.id))
        if conflict is not None:
            raise conflict
    written = [
        replace(op.learning, version=version)
        for op, version in zip(ops, _upsert_rows(ctx, ops, params), strict=True)
    ]
    ctx.cur.executemany(
        _INSERT_HISTORY.encode(),
        [
            _history_params(x.id, op.change, old.get(x.id), x)
            for x, op in zip(written, ops, strict=True)
        ],
    )
    return written


def _get_learnings(ctx: OpContext, op: GetLearnings) -> list[Learning]:
    if not op.ids:
        return []
    # Whatever their status (time travel, when asked for, still applies).
    where, params = _where(
        replace(op.filter, ids=op.ids, statuses=("active", "archived", "superseded"))
    )
    rows = ctx.q(f"SELECT {LEARNING_SELECT} FROM learnings l WHERE {where}", params).fetchall()
    by_id = {x.id: x for _, x in decode_rows(rows, learning_from_row, table="learnings")}
    return [by_id[i] for i in dict.fromkeys(op.ids) if i in by_id]


def _list_learnings(ctx: OpContext, op: ListLearnings) -> list[Learning]:
    where, params = _where(op.filter)
    direction = "ASC" if op.ascending else "DESC"
    nulls = "NULLS FIRST" if op.ascending else "NULLS LAST"
    sql = (
        f"SELECT {LEARNING_SELECT} FROM learnings l WHERE {where} "
        f"ORDER BY l.{op.order_by} {direction} {nulls}, l.id {direction}"
    )
    if op.limit is not None:
        sql += " LIMIT %s"
        params.append(op.limit)
    if op.offset:
        sql += " OFFSET %s"
        params.append(op.offset)
    rows = ctx.q(sql, params).fetchall()
    return [x for _, x in decode_rows(rows, learning_from_row, table="learnings")]


def _count_learnings(ctx: OpContext, op: CountLearnings) -> int:
    where, params = _where(op.filter)
    row = ctx.q(f"SELECT count(*) AS n FROM learnings l WHERE {where}", params).fetchone()
    return int(row["n"]) if row else 0


def _delete_learnings(ctx: OpContext, op: DeleteLearnings) -> int:
    if not op.ids:
        return 0
    old, versions = _lock_learnings(ctx, op.ids)
    if not versions:
        return 0
    ctx.q("DELETE FROM learnings WHERE id = ANY(%s)", (list(versions),))
    ctx.cur.executemany(
        _INSERT_HISTORY.encode(),
        [_history_params(i, op.change, old.get(i), None) for i in sorted(versions)],
    )
    return len(versions)


def _mark_recalled(ctx: OpContext, op: MarkRecalled) -> None:
    if op.ids:
        ctx.q(
            "UPDATE learnings SET recall_count = recall_count + 1, last_recalled_at = %s,"
            " version = version + 1 WHERE id = ANY(%s)",
            (utc(op.at), list(dict.fromkeys(op.ids))),
        )


def _list_embedders(ctx: OpContext, op: ListEmbedders) -> dict[str, int]:
    where, params = ("TRUE", []) if op.all_rows else _where(op.filter)
    rows = ctx.q(
        "SELECT coalesce(l.embedder, '') AS embedder, count(*) AS n FROM learnings l "
        f"WHERE l.embedding IS NOT NULL AND {where} GROUP BY 1 ORDER BY 1",
        params,
    ).fetchall()
    return {r["embedder"]: int(r["n"]) for r in rows}


def _set_embeddings(ctx: OpContext, op: SetEmbeddings) -> int:
    updated = 0
    for dims in sorted({len(v) for _, v in op.vectors}):
        ensure_vector_index(
            ctx.cur, op.embedder, dims, ctx.known_indexes, create=not ctx.defer_indexes
        )
    for learning_id, vector in op.vectors:
        cur = ctx.q(
            "UPDATE learnings SET embedding = %s::vector, embedder = %s, version = version + 1"
            " WHERE id = %s",
            (vector_literal(vector), op.embedder, learning_id),
        )
        updated += max(cur.rowcount, 0)
    return updated


def _list_history(ctx: OpContext, op: ListHistory) -> list[Any]:
    rows = ctx.q(
        "SELECT * FROM learning_history WHERE learning_id = %s ORDER BY seq", (op.learning_id,)
    ).fetchall()
    return [history_from_row(r) for r in rows]


def _purge_user(ctx: OpContext, op: PurgeUser) -> dict[str, int]:
    uid = op.user_id
    # The user id as it appears inside JSON text, as a LIKE pattern.
    needle = json.dumps(uid, ensure_ascii=False)
    mention = "%" + needle.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
    private = ctx.q(
        "SELECT id FROM learnings WHERE namespace = %s AND user_id = %s",
        (PRIVATE_NAMESPACE, uid),
    ).fetchall()
    # Shared rows authored by the user, or whose provenance names them.
    linked = ctx.q(
        "SELECT id, user_id, provenance FROM learnings WHERE namespace <> %s"
        " AND (user_id = %s OR provenance::text LIKE %s) ORDER BY id FOR UPDATE",
        (PRIVATE_NAMESPACE, uid, mention),
    ).fetchall()
    authored = [
        r["id"] for r in linked if r["user_id"] == uid or r["provenance"].get("user_id") == uid
    ]
    delete_ids = [r["id"] for r in private] + (authored if op.delete_shared else [])
    ctx.q("DELETE FROM learnings WHERE id = ANY(%s)", (delete_ids,))
    gone = set(delete_ids)
    anonymized = 0
    for r in linked:
        if r["id"] in gone:
            continue
        ctx.q(
            "UPDATE learnings SET user_id = CASE WHEN user_id = %s THEN NULL ELSE user_id END,"
            " provenance = %s::jsonb, version = version + 1 WHERE id = %s",
            (uid, dumps(scrub_user(r["provenance"], uid), "provenance"), r["id"]),
        )
        anonymized += 1
    history = ctx.q(
        "DELETE FROM learning_history WHERE learning_id = ANY(%s) OR user_id = %s"
        " OR actor::text LIKE %s OR old::text LIKE %s OR new::text LIKE %s",
        (delete_ids, uid, mention, mention, mention),
    ).rowcount
    counts = {
        "learnings": len(delete_ids),
        "learnings_anonymized": anonymized,
        "learning_history": history,
    }
    for table in ("messages", "pending_work", "proposals"):
        counts[table] = ctx.q(f"DELETE FROM {table} WHERE user_id = %s", (uid,)).rowcount
    # Other users' proposals they reviewed keep the decision, not the reviewer's id.
    ctx.q("UPDATE proposals SET decided_by = NULL WHERE decided_by = %s", (uid,))
    return counts


def _list_scopes(ctx: OpContext, op: ListScopes) -> list[ScopeCount]:
    clauses = ["status = ANY(%s)"]
    params: list[Any] = [PRIVATE_NAMESPACE, list(op.statuses)]
    if op.learning_types is not None:
        clauses.append("learning_type = ANY(%s)")
        params.append(list(op.learning_types))
    if op.namespaces is not None:
        clauses.append("namespace = ANY(%s)")
        params.append(list(op.namespaces))
    if op.user_id is not None:
        clauses.append("(namespace <> %s OR user_id = %s)")
        params += [PRIVATE_NAMESPACE, op.user_id]
    rows = ctx.q(
        "SELECT learning_type, namespace, CASE WHEN namespace = %s THEN user_id END AS owner,"
        f" count(*) AS n FROM learnings WHERE {' AND '.join(clauses)}"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 NULLS FIRST",
        params,
    ).fetchall()
    return [
        ScopeCount(
            learning_type=r["learning_type"],
            namespace=r["namespace"],
            user_id=r["owner"],
            count=int(r["n"]),
        )
        for r in rows
    ]


def _put_history(ctx: OpContext, op: PutHistory) -> int:
    inserted = 0
    for e in op.entries:
        inserted += ctx.q(
            "INSERT INTO learning_history (id, learning_id, action, old, new, actor, reason,"
            " turn_id, user_id, created_at) VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb,"
            " %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (
                e.id,
                e.learning_id,
                e.action,
                None if e.old is None else dumps(e.old, "HistoryEntry.old"),
                None if e.new is None else dumps(e.new, "HistoryEntry.new"),
                dumps(e.actor, "HistoryEntry.actor"),
                e.reason,
                e.turn_id,
                e.user_id,
                utc(e.created_at),
            ),
        ).rowcount
    return inserted


_HANDLERS: dict[type[Any], Callable[[OpContext, Any], Any]] = {
    PutLearning: lambda ctx, op: _put_learnings(ctx, [op])[0],
    GetLearnings: _get_learnings,
    ListLearnings: _list_learnings,
    CountLearnings: _count_learnings,
    SearchLearnings: lambda ctx, op: search(
        ctx.cur, op, iterative_scan=ctx.iterative_scan, broad=ctx.broad
    ),
    DeleteLearnings: _delete_learnings,
    MarkRecalled: _mark_recalled,
    ListEmbedders: _list_embedders,
    SetEmbeddings: _set_embeddings,
    ListHistory: _list_history,
    PurgeUser: _purge_user,
    ListScopes: _list_scopes,
    PutHistory: _put_history,
    MatchIds: lambda ctx, op: [
        row["id"] for row in ctx.q(*match_ids_sql(op, param="%s")).fetchall()
    ],
    **QUEUE_HANDLERS,
    **PARTIAL_HANDLERS,
}


def run_op(ctx: OpContext, op: Op[Any]) -> Any:
    """Run one operation inside the open transaction of ``ctx``."""
    handler = _HANDLERS.get(type(op))
    if handler is None:
        raise TypeError(f"PostgresDb does not support {type(op).__name__}")
    return handler(ctx, op)


def run_ops(ctx: OpContext, ops: Sequence[Op[Any]]) -> list[Any]:
    """Run operations in order; consecutive puts of distinct learnings go together (bulk)."""
    results: list[Any] = []
    group: list[PutLearning] = []
    ids: set[str] = set()

    def flush() -> None:
        if group:
            results.extend(_put_learnings(ctx, group))
            group.clear()
            ids.clear()

    for op in ops:
        if isinstance(op, PutLearning) and op.learning.id not in ids:
            group.append(op)
            ids.add(op.learning.id)
            continue
        flush()
        if isinstance(op, PutLearning):
            group.append(op)
            ids.add(op.learning.id)
        else:
            results.append(run_op(ctx, op))
    flush()
    return results
