"""The learning operations of the SQLite backend, run on a connection inside a transaction.

Each function takes the open connection (a transaction is already begun), the operation, and
the backend's :class:`~learning_machines.db._sqlite_broad.SideIndexes`.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ._decode import decode_rows
from ._fusion import rank
from ._ops import (
    CountLearnings,
    DeleteLearnings,
    GetLearnings,
    ListEmbedders,
    ListHistory,
    ListLearnings,
    MarkRecalled,
    PurgeUser,
    PutLearning,
    SearchLearnings,
    SetEmbeddings,
    version_conflict,
)
from ._records import (
    ALL_STATUSES,
    PRIVATE_NAMESPACE,
    Change,
    HistoryEntry,
    Learning,
    LearningFilter,
    ScoredLearning,
    new_id,
    utcnow,
)
from ._side_index import dot_rows
from ._sqlite_broad import SideIndexes, broad_search, embedder_mismatch, scored_rows
from ._sqlite_keyword import keyword_candidates
from ._sqlite_rows import (
    LEARNING_COLUMNS,
    enc_time,
    encode_vector,
    learning_params,
    learning_snapshot,
    marks,
    row_to_history,
    row_to_learning,
    to_json,
)
from ._where import filter_where

__all__ = [
    "count_learnings",
    "delete_learnings",
    "get_learnings",
    "list_embedders",
    "list_history",
    "list_learnings",
    "mark_recalled",
    "purge_user",
    "put_learning",
    "search_learnings",
    "set_embeddings",
]

_CHUNK = 500


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _where(f: LearningFilter) -> tuple[str, list[Any]]:
    return filter_where(
        f,
        param="?",
        alias="l",
        time=enc_time,
        json_text=lambda column, key: f"json_extract({column}, '$.{key}')",
    )


def next_seq(conn: sqlite3.Connection) -> int:
    """Take the next value of the write sequence (see ``_sqlite_broad``)."""
    rows = conn.execute(
        "UPDATE lm_counters SET value = value + 1 WHERE name = 'seq' RETURNING value"
    ).fetchall()
    return int(rows[0][0])


def _record(
    conn: sqlite3.Connection,
    learning_id: str,
    change: Change,
    old: Learning | None,
    new: Learning | None,
) -> None:
    owner = new.user_id if new is not None else old.user_id if old is not None else None
    conn.execute(
        "INSERT INTO learning_history (id, learning_id, action, old, new, actor, reason, turn_id,"
        " user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id(),
            learning_id,
            change.action,
            None if old is None else to_json(learning_snapshot(old), "history"),
            None if new is None else to_json(learning_snapshot(new), "history"),
            to_json(change.actor, "Change.actor"),
            change.reason,
            change.turn_id,
            owner,
            enc_time(utcnow()),
        ),
    )


def _get_by_id(conn: sqlite3.Connection, learning_id: str) -> tuple[Learning | None, int | None]:
    """The stored row (``None`` if it cannot be decoded) and its version (``None``: no row).

    A row that cannot be decoded can still be overwritten or deleted, which repairs it.
    """
    row = conn.execute("SELECT * FROM learnings WHERE id = ?", (learning_id,)).fetchone()
    if row is None:
        return None, None
    decoded = [x for _, x in decode_rows([row], row_to_learning, table="learnings")]
    return (decoded[0] if decoded else None), int(row["version"])


# --- writes -----------------------------------------------------------------------------------

_UPSERT = (
    f"INSERT INTO learnings ({', '.join(LEARNING_COLUMNS)}, seq, version) "
    f"VALUES ({marks(len(LEARNING_COLUMNS) + 2)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*LEARNING_COLUMNS[1:], "seq", "version"))
)


def put_learning(conn: sqlite3.Connection, op: PutLearning, cache: SideIndexes) -> Learning:
    """Insert or replace a learning (checking ``expected_version``); record it in the history."""
    x = op.learning
    if x.namespace == PRIVATE_NAMESPACE and x.user_id is None:
        raise ValidationError(
            "A learning in the private namespace 'user' needs its owner: set user_id=..."
        )
    if x.embedding is not None and x.embedder is None:
        raise ValidationError("A learning with an embedding must name its embedder (embedder=...).")
    params = learning_params(x)
    old, version = _get_by_id(conn, x.id)
    # The write lock is held (BEGIN IMMEDIATE): nobody can change the row between read and write.
    conflict = version_conflict(op, version)
    if conflict is not None:
        raise conflict
    stored = dataclasses.replace(x, version=1 if version is None else version + 1)
    conn.execute(_UPSERT, [*params, next_seq(conn), stored.version])
    _record(conn, x.id, op.change, old, stored)
    return stored


def delete_learnings(conn: sqlite3.Connection, op: DeleteLearnings, cache: SideIndexes) -> int:
    """Hard-delete learnings; their history keeps the old rows."""
    deleted = 0
    for learning_id in dict.fromkeys(op.ids):
        old, version = _get_by_id(conn, learning_id)
        if version is None:
            continue
        conn.execute("DELETE FROM learnings WHERE id = ?", (learning_id,))
        _record(conn, learning_id, op.change, old, None)
        deleted += 1
    return deleted


def mark_recalled(conn: sqlite3.Connection, op: MarkRecalled, cache: SideIndexes) -> None:
    """Count a recall; ``updated_at`` and the write sequence stay as they are."""
    ids = list(dict.fromkeys(op.ids))
    for chunk in _chunks(ids):
        conn.execute(
            "UPDATE learnings SET recall_count = recall_count + 1, last_recalled_at = ?, "
            "version = version + 1 "
            f"WHERE id IN ({marks(len(chunk))})",
            [enc_time(op.at), *chunk],
        )


def set_embeddings(conn: sqlite3.Connection, op: SetEmbeddings, cache: SideIndexes) -> int:
    """Replace embeddings (re-embedding); returns the number of rows updated."""
    updated = 0
    for learning_id, vector in op.vectors:
        cur = conn.execute(
            "UPDATE learnings SET embedding = ?, embedder = ?, seq = ?, version = version + 1 "
            "WHERE id = ?",
            (encode_vector(vector), op.embedder, next_seq(conn), learning_id),
        )
        updated += cur.rowcount
    return updated


# --- reads ------------------------------------------------------------------------------------


def get_learnings(conn: sqlite3.Connection, op: GetLearnings, cache: SideIndexes) -> list[Learning]:
    """Rows by id in the order given, whatever their status, through the filter's isolation."""
    ids = list(dict.fromkeys(op.ids))
    f = dataclasses.replace(op.filter, ids=None, statuses=ALL_STATUSES)
    w, params = _where(f)
    found: dict[str, Learning] = {}
    for chunk in _chunks(ids):
        rows = conn.execute(
            f"SELECT * FROM learnings l WHERE l.id IN ({marks(len(chunk))}) AND {w}",
            [*chunk, *params],
        )
        for _, x in decode_rows(rows, row_to_learning, table="learnings"):
            found[x.id] = x
    return [found[i] for i in op.ids if i in found]


def list_learnings(
    conn: sqlite3.Connection, op: ListLearnings, cache: SideIndexes
) -> list[Learning]:
    """Rows matching the filter, ordered by ``order_by`` (NULLs last), ties by id."""
    w, params = _where(op.filter)
    direction = "ASC" if op.ascending else "DESC"
    rows = conn.execute(
        f"SELECT * FROM learnings l WHERE {w} "
        f"ORDER BY l.{op.order_by} {direction} NULLS LAST, l.id ASC LIMIT ? OFFSET ?",
        [*params, -1 if op.limit is None else op.limit, op.offset],
    )
    return [x for _, x in decode_rows(rows, row_to_learning, table="learnings")]


def count_learnings(conn: sqlite3.Connection, op: CountLearnings, cache: SideIndexes) -> int:
    """Count the rows matching the filter."""
    w, params = _where(op.filter)
    (n,) = conn.execute(f"SELECT COUNT(*) FROM learnings l WHERE {w}", params).fetchone()
    return int(n)


def list_embedders(
    conn: sqlite3.Connection, op: ListEmbedders, cache: SideIndexes
) -> dict[str, int]:
    """Embedder names among the rows (with an embedding) matching the filter, with counts."""
    w, params = ("1 = 1", []) if op.all_rows else _where(op.filter)
    rows = conn.execute(
        f"SELECT l.embedder, COUNT(*) FROM learnings l WHERE {w} AND l.embedding IS NOT NULL "
        "AND l.embedder IS NOT NULL GROUP BY l.embedder ORDER BY l.embedder",
        params,
    )
    return {name: int(n) for name, n in rows}


def list_history(
    conn: sqlite3.Connection, op: ListHistory, cache: SideIndexes
) -> list[HistoryEntry]:
    """Return the changes of one learning, oldest first."""
    rows = conn.execute(
        "SELECT * FROM learning_history WHERE learning_id = ? ORDER BY pk",
        (op.learning_id,),
    )
    return [row_to_history(row) for row in rows]


# --- search -----------------------------------------------------------------------------------


def _vector_candidates(
    conn: sqlite3.Connection,
    op: SearchLearnings,
    w: str,
    params: list[Any],
    n: int,
) -> dict[int, float]:
    """Exact cosine over the scope's vectors, read straight from the table.

    Scopes that reach here are small (one user's rows; a small shared namespace): reading their
    vectors costs about what a process-wide cache of every vector saved, without loading a
    million vectors at the first query. Large shared namespaces go through ``_sqlite_broad``.
    """
    assert op.vector is not None
    rows = conn.execute(
        f"SELECT l.pk, l.embedder, l.embedding FROM learnings l WHERE {w} "
        "AND l.embedder IS NOT NULL AND l.embedding IS NOT NULL",
        params,
    ).fetchall()
    if not rows:
        return {}
    names = {r[1] for r in rows}
    wanted = op.embedder
    if wanted is None and len(names) == 1:
        wanted = next(iter(names))
    others = sorted(str(name) for name in names if name != wanted)
    if others:
        raise embedder_mismatch(others, wanted)
    query = np.asarray(op.vector, dtype=np.float32)
    q = query / (float(np.linalg.norm(query)) or 1.0)
    width = len(q) * 4
    odd = next((len(r[2]) // 4 for r in rows if len(r[2]) != width), None)
    if odd is not None:
        raise ValidationError(
            f"The query vector has {len(q)} dimensions but stored vectors of embedder "
            f"{wanted!r} have {odd}; embed the query with the same model."
        )
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), len(q))
    norms = np.linalg.norm(matrix, axis=1)
    norms[norms == 0] = 1.0
    scores = dot_rows(matrix, q.astype(np.float32)) / norms
    top = np.argpartition(-scores, n - 1)[:n] if len(rows) > n else np.arange(len(rows))
    return {int(rows[i][0]): float(scores[i]) for i in top.tolist()}


def search_learnings(
    conn: sqlite3.Connection, op: SearchLearnings, cache: SideIndexes
) -> list[ScoredLearning]:
    """Hybrid search with the filter inside both candidate queries; see :class:`SearchLearnings`."""
    if op.method == "vector" and op.vector is None:
        raise ValidationError("method='vector' needs a query vector: pass vector=... and embedder.")
    if op.limit <= 0:
        return []
    w, params = _where(op.filter)
    fast = broad_search(conn, op, cache, w, params)
    if fast is not None:
        return fast
    n = max(op.candidates, op.limit)
    keyword: dict[int, float] = {}
    vector: dict[int, float] = {}
    if op.method in ("keyword", "hybrid"):
        keyword = keyword_candidates(conn, op.query, op.filter, w, params, n)
    if op.method in ("vector", "hybrid") and op.vector is not None:
        vector = _vector_candidates(conn, op, w, params, n)
    ranked = rank(
        keyword=keyword, vector=vector, method=op.method, keyword_weight=op.keyword_weight
    )
    return scored_rows(conn, ranked[: op.limit], keyword, vector)


# --- forget -----------------------------------------------------------------------------------


def _scrub(value: Any, user_id: str) -> Any:
    """``value`` without any mention of ``user_id`` (dicts naming them lose user and session)."""
    if isinstance(value, dict):
        names_user = user_id in value.values()
        return {
            k: _scrub(v, user_id)
            for k, v in value.items()
            if not (names_user and k in ("user_id", "session_id")) and v != user_id
        }
    if isinstance(value, list):
        return [_scrub(v, user_id) for v in value if v != user_id]
    return value


def purge_user(conn: sqlite3.Connection, op: PurgeUser, cache: SideIndexes) -> dict[str, int]:
    """Forget a user everywhere; returns the number of rows changed per table."""
    uid = op.user_id
    needle = json.dumps(uid, ensure_ascii=False)
    private = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM learnings WHERE namespace = ? AND user_id = ?", (PRIVATE_NAMESPACE, uid)
        )
    ]
    # Shared rows authored by the user, or whose provenance names them.
    linked = conn.execute(
        "SELECT id, user_id, provenance FROM learnings WHERE namespace <> ? "
        "AND (user_id = ? OR instr(provenance, ?) > 0)",
        (PRIVATE_NAMESPACE, uid, needle),
    ).fetchall()
    authored = [
        r["id"]
        for r in linked
        if r["user_id"] == uid or json.loads(r["provenance"]).get("user_id") == uid
    ]
    delete_ids = private + (authored if op.delete_shared else [])
    for chunk in _chunks(delete_ids):
        conn.execute(f"DELETE FROM learnings WHERE id IN ({marks(len(chunk))})", chunk)
    anonymized = 0
    gone = set(delete_ids)
    for r in linked:
        if r["id"] in gone:
            continue
        provenance = _scrub(json.loads(r["provenance"]), uid)
        conn.execute(
            "UPDATE learnings SET user_id = CASE WHEN user_id = ? THEN NULL ELSE user_id END, "
            "provenance = ?, version = version + 1 WHERE id = ?",
            (uid, to_json(provenance, "provenance"), r["id"]),
        )
        anonymized += 1
    history = 0
    for chunk in _chunks(delete_ids):
        history += conn.execute(
            f"DELETE FROM learning_history WHERE learning_id IN ({marks(len(chunk))})", chunk
        ).rowcount
    history += conn.execute(
        "DELETE FROM learning_history WHERE user_id = ? OR instr(actor, ?) > 0 "
        "OR instr(old, ?) > 0 OR instr(new, ?) > 0",
        (uid, needle, needle, needle),
    ).rowcount
    counts = {
        "learnings": len(delete_ids),
        "learnings_anonymized": anonymized,
        "learning_history": history,
    }
    for table in ("messages", "pending_work", "proposals"):
        counts[table] = conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (uid,)).rowcount
    # A forgotten reviewer's name leaves other users' proposals too (as on PostgreSQL).
    conn.execute("UPDATE proposals SET decided_by = NULL WHERE decided_by = ?", (uid,))
    # Deleting from the keyword index only adds delete markers; the user's words stay in older
    # index segments until they are merged. Merge them all now (secure_delete zeroes the pages).
    conn.execute("INSERT INTO learnings_fts (learnings_fts) VALUES ('optimize')")
    return counts
