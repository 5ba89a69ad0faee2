"""Hybrid search on PostgreSQL: tsvector keyword candidates, pgvector candidates, z-score fusion.

Vectors live in one ``vector`` column without a fixed dimension, so each (embedder, dimension)
gets its own partial HNSW *expression* index, created on the first write of such a vector::

    CREATE INDEX ... USING hnsw ((embedding::vector(384)) vector_cosine_ops)
        WHERE embedder = 'name' AND vector_dims(embedding) = 384

and searches order by the very same expression under the same predicate, so the planner can use
it. The scope filter is always inside the query (never a post-filter of a global top-k); with a
selective scope the planner usually picks the scope index and an exact sort, and with the HNSW
index ``hnsw.iterative_scan`` keeps scanning until the filtered top-k is full. If the index still
returns fewer candidates than asked, the search is redone exactly, so results never depend on the
approximate index finding enough rows.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ..exceptions import EmbedderMismatchError, ValidationError
from ._fusion import zscore_fuse
from ._ops import SearchLearnings
from ._postgres_broad import BroadState, broad_search, fetch_scored
from ._postgres_keyword import keyword_candidates
from ._postgres_rows import vector_literal
from ._records import ScoredLearning
from ._where import filter_where

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "LEARNING_SELECT",
    "create_vector_indexes",
    "drop_vector_indexes",
    "ensure_vector_index",
    "json_text",
    "search",
    "sql_literal",
]

#: Select list for full learning rows of alias ``l`` (the embedding as pgvector text).
LEARNING_SELECT = (
    "l.id, l.learning_type, l.namespace, l.content, l.search_text, l.user_id, l.session_id,"
    " l.agent_id, l.team_id, l.entity_id, l.embedding::text AS embedding, l.embedder, l.status,"
    " l.valid_from, l.valid_to, l.superseded_by, l.created_at, l.updated_at, l.recall_count,"
    " l.last_recalled_at, l.feedback, l.provenance, l.helpful, l.harmful, l.version"
)

# pgvector's HNSW index takes vectors of at most 2,000 dimensions.
_HNSW_MAX_DIMS = 2000


def json_text(column: str, key: str) -> str:
    """Return SQL extracting text value ``key`` of JSONB ``column`` (for :func:`filter_where`)."""
    return f"({column} ->> {sql_literal(key)})"


def sql_literal(value: str) -> str:
    """Quote ``value`` as an SQL string literal (index predicates take no parameters)."""
    if "\x00" in value:
        raise ValidationError("embedder names and JSON keys may not contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


def _index_name(embedder: str, dims: int) -> str:
    digest = hashlib.sha1(embedder.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    return f"learnings_hnsw_{dims}_{digest}"


def _vector_predicate(embedder: str, dims: int, alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    return f"{a}embedder = {sql_literal(embedder)} AND vector_dims({a}embedding) = {int(dims)}"


def ensure_vector_index(
    cur: psycopg.Cursor[dict[str, Any]],
    embedder: str,
    dims: int,
    known: set[tuple[str, int]],
    *,
    create: bool = True,
) -> None:
    """Record (embedder, dims) and create its HNSW index if this database has none yet.

    Runs inside the caller's transaction. ``known`` caches pairs seen committed, so the usual
    write costs nothing; an advisory lock makes concurrent first writers create the index once.
    ``create=False`` (during a bulk load) only records the pair: :func:`create_vector_indexes`
    builds the index afterwards.
    """
    if (embedder, dims) in known:
        return
    find = (
        "SELECT 1 AS found FROM vector_indexes"
        " WHERE embedder = %s AND dims = %s AND index_name IS NOT NULL"
    )
    if cur.execute(find, (embedder, dims)).fetchone() is not None:
        known.add((embedder, dims))
        return
    name = _index_name(embedder, dims)
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
    if cur.execute(find, (embedder, dims)).fetchone() is not None:
        return
    indexed = 1 <= dims <= _HNSW_MAX_DIMS
    if indexed and create:
        cur.execute(_create_index_sql(name, embedder, dims))
    # index_name '' means "too many dimensions for HNSW": searched exactly.
    cur.execute(
        "INSERT INTO vector_indexes (embedder, dims, index_name) VALUES (%s, %s, %s)"
        " ON CONFLICT (embedder, dims) DO UPDATE SET index_name = EXCLUDED.index_name",
        (embedder, dims, name if indexed else ""),
    )


def _create_index_sql(name: str, embedder: str, dims: int) -> bytes:
    return (
        f"CREATE INDEX IF NOT EXISTS {name} ON learnings USING hnsw "
        f"((embedding::vector({int(dims)})) vector_cosine_ops) "
        f"WHERE {_vector_predicate(embedder, dims)}"
    ).encode()


def drop_vector_indexes(cur: psycopg.Cursor[dict[str, Any]]) -> list[str]:
    """Drop every HNSW index of the registry (they stay registered); return their names."""
    rows = cur.execute(
        "SELECT index_name FROM vector_indexes WHERE index_name <> '' ORDER BY index_name"
    ).fetchall()
    names = [str(r["index_name"]) for r in rows]
    for name in names:
        cur.execute(f"DROP INDEX IF EXISTS {name}".encode())
    return names


def create_vector_indexes(cur: psycopg.Cursor[dict[str, Any]]) -> list[str]:
    """Build every registered HNSW index that does not exist; return the names built."""
    rows = cur.execute(
        "SELECT v.embedder, v.dims, v.index_name FROM vector_indexes v"
        " WHERE v.index_name <> '' AND to_regclass(v.index_name) IS NULL"
        " ORDER BY v.index_name"
    ).fetchall()
    for r in rows:
        cur.execute(_create_index_sql(str(r["index_name"]), str(r["embedder"]), int(r["dims"])))
    return [str(r["index_name"]) for r in rows]


def _keyword_candidates(
    cur: psycopg.Cursor[dict[str, Any]], op: SearchLearnings, where: str, params: list[Any], n: int
) -> dict[str, float]:
    return keyword_candidates(cur, op.query, where, params, n)


def _check_embedders(
    cur: psycopg.Cursor[dict[str, Any]],
    op: SearchLearnings,
    dims: int,
    where: str,
    params: list[Any],
) -> None:
    """Raise :class:`EmbedderMismatchError` if rows in scope hold vectors of another embedder."""
    known = cur.execute("SELECT embedder, dims FROM vector_indexes").fetchall()
    if (
        op.embedder is not None
        and known
        and all((r["embedder"], r["dims"]) == (op.embedder, dims) for r in known)
    ):
        return  # only this embedder ever wrote vectors here: nothing can mismatch
    rows = cur.execute(
        (
            "SELECT l.embedder, vector_dims(l.embedding) AS dims, count(*) AS n FROM learnings l "
            f"WHERE l.embedding IS NOT NULL AND {where} GROUP BY 1, 2 ORDER BY 3 DESC"
        ).encode(),
        params,
    ).fetchall()
    found = {(r["embedder"], r["dims"]): int(r["n"]) for r in rows}
    wanted = (op.embedder, dims)
    others = {key: n for key, n in found.items() if key != wanted}
    if op.embedder is None and len(found) <= 1 and all(d == dims for _, d in found):
        return
    if others:
        names = ", ".join(f"{e!r} ({d} dimensions, {n} rows)" for (e, d), n in others.items())
        raise EmbedderMismatchError(
            f"The learnings searched hold vectors made by {names}, but the query vector was made "
            f"by {op.embedder!r} ({dims} dimensions). Re-embed them with "
            "`learning-machines reembed` (db.reembed(embedder=...)), or search with the embedder "
            "that made them."
        )


#: Below this many rows in scope, vector search is exact (the scope index finds them at once);
#: the HNSW graph is only walked for scopes at least this large. Measured: a one-user scope of
#: 46 rows at 10k learnings took 74 ms p50 through the graph (iterative scan, then the exact
#: fallback because the scope holds fewer rows than the candidates asked for).
EXACT_BELOW = 5000


def _scope_is_large(cur: psycopg.Cursor[dict[str, Any]], where: str, params: list[Any]) -> bool:
    row = cur.execute(
        (
            "SELECT count(*) AS n FROM (SELECT 1 FROM learnings l "
            f"WHERE l.embedding IS NOT NULL AND {where} LIMIT %s) s"
        ).encode(),
        [*params, EXACT_BELOW],
    ).fetchone()
    return row is not None and int(row["n"]) >= EXACT_BELOW


def _vector_candidates(
    cur: psycopg.Cursor[dict[str, Any]],
    op: SearchLearnings,
    where: str,
    params: list[Any],
    n: int,
    iterative_scan: bool,
) -> dict[str, float]:
    assert op.vector is not None
    dims = len(op.vector)
    if dims == 0:
        raise ValidationError("the query vector is empty; pass the embedding of the query")
    _check_embedders(cur, op, dims, where, params)
    q = vector_literal(op.vector)
    embedder = None if op.exact else op.embedder
    if embedder is not None and dims <= _HNSW_MAX_DIMS and _scope_is_large(cur, where, params):
        if iterative_scan:
            # Keep walking the graph until the filtered top-n is full (pgvector >= 0.8).
            cur.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
        cur.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(max(40, min(n, 1000))),))
        cast = f"(l.embedding::vector({dims}))"
        rows = cur.execute(
            (
                f"SELECT l.id, 1 - ({cast} <=> %s::vector({dims})) AS score FROM learnings l "
                f"WHERE {_vector_predicate(embedder, dims, 'l')} AND {where} "
                f"ORDER BY {cast} <=> %s::vector({dims}) LIMIT %s"
            ).encode(),
            [q, *params, q, n],
        ).fetchall()
        if len(rows) >= n:
            return {r["id"]: float(r["score"]) for r in rows}
    # Exact search: few rows in scope (cheap), or the approximate index came back short.
    embedder_sql = "TRUE" if op.embedder is None else f"l.embedder = {sql_literal(op.embedder)}"
    rows = cur.execute(
        (
            "SELECT l.id, 1 - (l.embedding <=> %s::vector) AS score FROM learnings l "
            f"WHERE l.embedding IS NOT NULL AND vector_dims(l.embedding) = {dims} "
            f"AND {embedder_sql} AND {where} "
            "ORDER BY l.embedding <=> %s::vector, l.id LIMIT %s"
        ).encode(),
        [q, *params, q, n],
    ).fetchall()
    return {r["id"]: float(r["score"]) for r in rows}


def search(
    cur: psycopg.Cursor[dict[str, Any]],
    op: SearchLearnings,
    *,
    iterative_scan: bool = True,
    broad: BroadState | None = None,
) -> list[ScoredLearning]:
    """Run a :class:`SearchLearnings` and return the fused top ``op.limit``.

    ``iterative_scan``: the server's pgvector has ``hnsw.iterative_scan`` (0.8 and later).
    ``broad``: the backend's state of large shared namespaces (``_postgres_broad``).
    """
    if op.limit <= 0:
        return []
    if op.method == "vector" and op.vector is None:
        raise ValidationError("method='vector' needs the query embedding: pass vector=...")
    where, params = filter_where(op.filter, param="%s", alias="l", json_text=json_text)
    if broad is not None and not op.exact:

        def check_embedders() -> None:
            assert op.vector is not None
            if not op.vector:
                raise ValidationError("the query vector is empty; pass the embedding of the query")
            _check_embedders(cur, op, len(op.vector), where, params)

        fast = broad_search(cur, op, broad, where, params, LEARNING_SELECT, check_embedders)
        if fast is not None:
            return fast
    n = max(op.candidates, op.limit)
    keyword: dict[str, float] = {}
    vector: dict[str, float] = {}
    if op.method in ("hybrid", "keyword") and op.query.strip():
        keyword = _keyword_candidates(cur, op, where, params, n)
    if op.method in ("hybrid", "vector") and op.vector is not None:
        vector = _vector_candidates(cur, op, where, params, n, iterative_scan)
    fused = zscore_fuse(keyword=keyword, vector=vector, keyword_weight=op.keyword_weight)
    top = fused[: op.limit]
    if not top:
        return []
    # A row deleted since its candidate query ran is left out (read committed).
    return fetch_scored(cur, top, keyword, vector, select=LEARNING_SELECT)[0]
