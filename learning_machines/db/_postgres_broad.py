"""Large shared namespaces on PostgreSQL: a BM25 postings table and a partial HNSW per namespace.

What PostgreSQL and pgvector offer, measured on a 300k-row database with a 15k-row namespace
(``docs/scale.md``), and what this module does with it:

- ``ts_rank_cd`` ranks every matching row of the scope (70% of the keyword side). Instead a
  namespace registered in ``lm_broad_scopes`` keeps its words in ``lm_postings`` — one row per
  (namespace, lexeme, learning) with the lexeme's count and the document's length, maintained by
  a trigger in the writing transaction (so a write is visible to the next query, and a crash
  loses nothing). A search reads the postings of its query lexemes through the primary key, with
  learning type and status in the same rows (the filter applies inside the ranking), and scores
  BM25 in one statement, like the SQLite side index. Lexemes are PostgreSQL's own
  (``to_tsvector('english', ...)``), for documents and queries alike.
- A filtered walk of the table-wide HNSW graph finds few rows of a 5% namespace, and the planner,
  misjudging correlated columns, often scanned exactly instead, detoasting every vector. Each
  (namespace, embedder, dimensions) gets its own partial HNSW index whose predicate names the
  namespace as a literal; the search repeats that predicate, so the planner can match it. Vectors
  are stored ``MAIN`` (inline where they fit) so exact scans do not detoast them.
- Generic plans: psycopg prepares a statement after 5 runs and PostgreSQL may then switch to a
  generic plan that ignores the namespace literal; connections use
  ``plan_cache_mode = force_custom_plan``.

Registering a namespace (and building its HNSW index) is explicit: :func:`reindex`
(``learning-machines reindex``, ``PostgresDb.reindex()``, and the end of ``bulk_load``). Until
then a large namespace is searched by the general path, correctly but slowly.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._bm25 import K1, B
from ._decode import decode_rows
from ._fusion import rank
from ._ops import SearchLearnings
from ._postgres_rows import learning_from_row, vector_literal
from ._records import PRIVATE_NAMESPACE, LearningFilter, ScoredLearning

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "BROAD_SCHEMA",
    "BROAD_SCOPE_ROWS",
    "BroadState",
    "broad_search",
    "create_broad_vector_indexes",
    "drop_broad_vector_indexes",
    "reindex",
]

#: A shared namespace with at least this many learnings is worth its own indexes.
BROAD_SCOPE_ROWS = 1000
# Scope sizes (BM25's N) are cached this long: a namespace of thousands of rows changes its IDF
# imperceptibly in a minute.
_SIZE_TTL = 60.0
_HNSW_MAX_DIMS = 2000

#: Migration 3 of the PostgreSQL schema.
BROAD_SCHEMA: tuple[str, ...] = (
    "ALTER TABLE learnings ALTER COLUMN embedding SET STORAGE MAIN",
    """
    CREATE TABLE lm_broad_scopes (
        namespace  text PRIMARY KEY,
        avgdl      double precision NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE lm_broad_vectors (
        namespace  text NOT NULL,
        embedder   text NOT NULL,
        dims       integer NOT NULL,
        index_name text NOT NULL,
        PRIMARY KEY (namespace, embedder, dims)
    )
    """,
    """
    CREATE TABLE lm_postings (
        namespace     text NOT NULL,
        lexeme        text NOT NULL,
        learning_id   text NOT NULL,
        learning_type text NOT NULL,
        status        text NOT NULL,
        tf            real NOT NULL,
        doclen        real NOT NULL,
        PRIMARY KEY (namespace, lexeme, learning_id)
    )
    """,
    "CREATE INDEX lm_postings_learning_idx ON lm_postings (learning_id)",
    """
    CREATE FUNCTION lm_postings_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM lm_postings WHERE learning_id = OLD.id;
        END IF;
        IF TG_OP <> 'DELETE' AND EXISTS (
            SELECT 1 FROM lm_broad_scopes b WHERE b.namespace = NEW.namespace
        ) THEN
            INSERT INTO lm_postings
                (namespace, lexeme, learning_id, learning_type, status, tf, doclen)
            SELECT NEW.namespace, u.lexeme, NEW.id, NEW.learning_type, NEW.status,
                   coalesce(cardinality(u.positions), 1),
                   (SELECT coalesce(sum(coalesce(cardinality(v.positions), 1)), 0)
                    FROM unnest(NEW.search_tsv) v)
            FROM unnest(NEW.search_tsv) u;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER learnings_postings
    AFTER INSERT OR DELETE OR UPDATE OF search_text, namespace, learning_type, status
    ON learnings FOR EACH ROW EXECUTE FUNCTION lm_postings_sync()
    """,
    # namespace and learning_type select the same rows; without these statistics the planner
    # multiplies their selectivities and misjudges every scoped plan.
    "CREATE STATISTICS learnings_scope_stats (dependencies, ndistinct) "
    "ON namespace, learning_type FROM learnings",
)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _index_name(namespace: str, embedder: str, dims: int) -> str:
    key = f"{namespace}\x00{embedder}\x00{dims}".encode()
    return "lm_hnsw_ns_" + hashlib.sha1(key, usedforsecurity=False).hexdigest()[:16]


def _predicate(namespace: str, embedder: str, dims: int, alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    return (
        f"{a}namespace = {_literal(namespace)} AND {a}embedder = {_literal(embedder)} "
        f"AND vector_dims({a}embedding) = {int(dims)}"
    )


class BroadState:
    """What one :class:`PostgresDb` caches about broad namespaces (thread-safe)."""

    def __init__(self, *, threshold: int = BROAD_SCOPE_ROWS) -> None:
        """Namespaces with at least ``threshold`` rows are registered by :func:`reindex`."""
        self.threshold = threshold
        self._lock = threading.Lock()
        self._registry: tuple[float, dict[str, float], set[tuple[str, str, int]]] | None = None
        self._sizes: dict[tuple[Any, ...], tuple[float, int]] = {}

    def forget(self) -> None:
        """Drop cached registry and sizes (after a reindex)."""
        with self._lock:
            self._registry = None
            self._sizes.clear()

    def registry(
        self, cur: psycopg.Cursor[dict[str, Any]]
    ) -> tuple[dict[str, float], set[tuple[str, str, int]]]:
        """Registered namespaces with their mean document length, and their HNSW indexes."""
        with self._lock:
            cached = self._registry
        if cached is not None and time.monotonic() - cached[0] < _SIZE_TTL:
            return cached[1], cached[2]
        scopes = {
            str(r["namespace"]): float(r["avgdl"])
            for r in cur.execute(b"SELECT namespace, avgdl FROM lm_broad_scopes").fetchall()
        }
        vectors = {
            (str(r["namespace"]), str(r["embedder"]), int(r["dims"]))
            for r in cur.execute(
                b"SELECT namespace, embedder, dims FROM lm_broad_vectors"
                b" WHERE to_regclass(index_name) IS NOT NULL"
            ).fetchall()
        }
        with self._lock:
            self._registry = (time.monotonic(), scopes, vectors)
        return scopes, vectors

    def scope_size(self, cur: psycopg.Cursor[dict[str, Any]], f: LearningFilter) -> int:
        """Rows the filter's scope holds (BM25's N), cached for a minute."""
        key = (f.namespaces, f.learning_types, tuple(f.statuses))
        with self._lock:
            cached = self._sizes.get(key)
        if cached is not None and time.monotonic() - cached[0] < _SIZE_TTL:
            return cached[1]
        clauses = ["namespace = ANY(%s)", "status = ANY(%s)"]
        params: list[Any] = [list(f.namespaces or ()), list(f.statuses)]
        if f.learning_types is not None:
            clauses.append("learning_type = ANY(%s)")
            params.append(list(f.learning_types))
        row = cur.execute(
            f"SELECT count(*) AS n FROM learnings WHERE {' AND '.join(clauses)}".encode(), params
        ).fetchone()
        n = int(row["n"]) if row else 0
        with self._lock:
            self._sizes[key] = (time.monotonic(), n)
        return n


def _eligible(f: LearningFilter) -> tuple[str, ...] | None:
    if f.namespaces is None or not f.namespaces or PRIVATE_NAMESPACE in f.namespaces:
        return None
    if f.as_of is not None or f.content_hash is not None or f.provenance_user_id is not None:
        return None
    if f.happened_between is not None:
        return None
    for name in ("user_id", "session_id", "agent_id", "team_id", "entity_ids", "ids"):
        if getattr(f, name) is not None:
            return None
    return tuple(sorted(set(f.namespaces)))


def _keyword_sql(
    op: SearchLearnings, namespaces: tuple[str, ...], size: int, avgdl: float, n: int
) -> tuple[str, list[Any]]:
    """BM25 over the postings of the query's lexemes: ``(id, score)``, best ``n``."""
    f = op.filter
    types_sql = "AND p.learning_type = ANY(%s)" if f.learning_types is not None else ""
    params: list[Any] = [op.query, list(namespaces), list(f.statuses)]
    if f.learning_types is not None:
        params.append(list(f.learning_types))
    params += [max(size, 1), K1 + 1, K1, B, B, avgdl or 1.0, n]
    # IDF once per lexeme, and every product in float8: an integer parameter made PostgreSQL
    # compute ln() per posting in numeric, which was most of the search's time.
    sql = (
        "WITH q AS (SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', %s))),"
        " p AS (SELECT p.learning_id, p.lexeme, p.tf, p.doclen FROM lm_postings p"
        " JOIN q ON p.lexeme = q.lexeme WHERE p.namespace = ANY(%s)"
        f" AND p.status = ANY(%s) {types_sql}),"
        " d AS (SELECT lexeme, count(*)::float8 AS df FROM p GROUP BY lexeme),"
        " w AS (SELECT lexeme, ln(1 + (%s::float8 - df + 0.5) / (df + 0.5)) AS idf FROM d)"
        " SELECT p.learning_id AS id, sum("
        "w.idf * p.tf * %s::float8"
        " / (p.tf + %s::float8 * (1 - %s::float8 + %s::float8 * p.doclen / %s::float8))) AS score"
        " FROM p JOIN w USING (lexeme) GROUP BY p.learning_id"
        " ORDER BY score DESC, p.learning_id LIMIT %s"
    )
    return sql, params


def _vector_sql(
    op: SearchLearnings, namespace: str, where: str, params: list[Any], n: int
) -> tuple[str, list[Any]]:
    """The namespace's HNSW walk under the full filter: ``(id, score)``, nearest ``n``."""
    assert op.vector is not None
    assert op.embedder is not None
    dims = len(op.vector)
    q = vector_literal(op.vector)
    cast = f"(l.embedding::vector({dims}))"
    sql = (
        f"SELECT l.id, 1 - ({cast} <=> %s::vector({dims})) AS score FROM learnings l "
        f"WHERE {_predicate(namespace, op.embedder, dims, 'l')} AND {where} "
        f"ORDER BY {cast} <=> %s::vector({dims}) LIMIT %s"
    )
    return sql, [q, *params, q, n]


def _candidates(
    cur: psycopg.Cursor[dict[str, Any]],
    parts: list[tuple[str, str, list[Any]]],
) -> tuple[dict[str, float], dict[str, float]]:
    """Run the candidate queries ``(side, sql, params)`` in one round trip."""
    sql = " UNION ALL ".join(
        f"(SELECT '{side}' AS side, c.id, c.score FROM ({part}) c)" for side, part, _ in parts
    )
    keyword: dict[str, float] = {}
    vector: dict[str, float] = {}
    for r in cur.execute(sql.encode(), [p for _, _, ps in parts for p in ps]).fetchall():
        (keyword if r["side"] == "k" else vector)[r["id"]] = float(r["score"])
    return keyword, vector


def _short(
    cur: psycopg.Cursor[dict[str, Any]],
    op: SearchLearnings,
    found: int,
    where: str,
    params: list[Any],
    n: int,
) -> bool:
    """Whether the HNSW walks returned fewer rows than the scope holds (counted up to n)."""
    assert op.vector is not None
    row = cur.execute(
        (
            "SELECT count(*) AS n FROM (SELECT 1 FROM learnings l WHERE "
            f"l.embedder = %s AND vector_dims(l.embedding) = {len(op.vector)} AND {where} "
            "LIMIT %s) s"
        ).encode(),
        [op.embedder, *params, n],
    ).fetchone()
    return row is None or int(row["n"]) > found


def broad_search(
    cur: psycopg.Cursor[dict[str, Any]],
    op: SearchLearnings,
    state: BroadState,
    where: str,
    params: list[Any],
    select: str,
    check_embedders: Callable[[], None],
) -> list[ScoredLearning] | None:
    """Run ``op`` on the indexes of registered namespaces; ``None``: use the general search.

    ``select`` is the select list of a full learning row (alias ``l``); ``where``/``params``
    the SQL form of the filter, which the final rows pass too; ``check_embedders`` raises if
    rows in scope hold vectors of another embedder (called before any vector is compared).
    """
    namespaces = _eligible(op.filter)
    if namespaces is None or op.exact:
        return None
    scopes, vectors = state.registry(cur)
    if any(ns not in scopes for ns in namespaces):
        return None
    n = max(op.candidates, op.limit)
    parts: list[tuple[str, str, list[Any]]] = []
    if op.method in ("hybrid", "keyword") and op.query.strip():
        avgdl = sum(scopes[ns] for ns in namespaces) / len(namespaces)
        size = state.scope_size(cur, op.filter)
        parts.append(("k", *_keyword_sql(op, namespaces, size, avgdl, n)))
    wants_vector = op.method in ("hybrid", "vector") and op.vector is not None
    if wants_vector:
        assert op.vector is not None
        check_embedders()
        dims = len(op.vector)
        if (
            op.embedder is None
            or dims > _HNSW_MAX_DIMS
            or any((ns, op.embedder, dims) not in vectors for ns in namespaces)
        ):
            return None
        # Keep walking the graph until the filtered top-n is full (pgvector >= 0.8).
        cur.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
            " set_config('hnsw.ef_search', %s, true)",
            (str(max(100, min(2 * n, 1000))),),
        )
        parts += [("v", *_vector_sql(op, ns, where, params, n)) for ns in namespaces]
    keyword, vector = _candidates(cur, parts) if parts else ({}, {})
    if wants_vector:
        if len(vector) < n and _short(cur, op, len(vector), where, params, n):
            return None  # a short walk: the exact search decides
        vector = dict(sorted(vector.items(), key=lambda kv: (-kv[1], kv[0]))[:n])
    ranked = rank(
        keyword=keyword, vector=vector, method=op.method, keyword_weight=op.keyword_weight
    )
    top = ranked[: op.limit]
    if not top:
        return []
    found, missing = fetch_scored(
        cur, top, keyword, vector, select=select, where=where, params=params
    )
    return None if missing else found  # never return a rejected row, never come up short


def fetch_scored(
    cur: psycopg.Cursor[dict[str, Any]],
    top: list[tuple[str, float]],
    keyword: dict[str, float],
    vector: dict[str, float],
    *,
    select: str,
    where: str = "TRUE",
    params: list[Any] | None = None,
) -> tuple[list[ScoredLearning], bool]:
    """The learnings of ``top`` ``(id, score)`` passing ``where``, in order, and any missing.

    A row is missing when it was deleted meanwhile or the filter rejects it. A row that cannot
    be decoded is logged and left out (``_decode``), without counting as missing: every search
    path leaves it out alike.
    """
    rows = cur.execute(
        f"SELECT {select} FROM learnings l WHERE l.id = ANY(%s) AND {where}".encode(),
        [[key for key, _ in top], *(params or [])],
    ).fetchall()
    by_id = {x.id: x for _, x in decode_rows(rows, learning_from_row, table="learnings")}
    found = [
        ScoredLearning(
            learning=by_id[key],
            score=score,
            keyword_score=keyword.get(key),
            vector_score=vector.get(key),
        )
        for key, score in top
        if key in by_id
    ]
    return found, len(rows) < len(top)


# --- maintenance ----------------------------------------------------------------------------------


def _create_hnsw_sql(name: str, namespace: str, embedder: str, dims: int) -> bytes:
    return (
        f"CREATE INDEX IF NOT EXISTS {name} ON learnings USING hnsw "
        f"((embedding::vector({int(dims)})) vector_cosine_ops) "
        f"WHERE {_predicate(namespace, embedder, dims)}"
    ).encode()


def drop_broad_vector_indexes(cur: psycopg.Cursor[dict[str, Any]]) -> list[str]:
    """Drop the partial HNSW indexes (they stay registered); return their names."""
    names = [
        str(r["index_name"])
        for r in cur.execute(b"SELECT index_name FROM lm_broad_vectors ORDER BY 1").fetchall()
    ]
    for name in names:
        cur.execute(f"DROP INDEX IF EXISTS {name}".encode())
    return names


def create_broad_vector_indexes(cur: psycopg.Cursor[dict[str, Any]]) -> list[str]:
    """Build every registered partial HNSW index that is missing; return the names built."""
    rows = cur.execute(
        b"SELECT namespace, embedder, dims, index_name FROM lm_broad_vectors"
        b" WHERE to_regclass(index_name) IS NULL ORDER BY index_name"
    ).fetchall()
    for r in rows:
        cur.execute(
            _create_hnsw_sql(str(r["index_name"]), r["namespace"], r["embedder"], int(r["dims"]))
        )
    return [str(r["index_name"]) for r in rows]


def _unregister(cur: psycopg.Cursor[dict[str, Any]], namespace: str) -> None:
    for r in cur.execute(
        b"DELETE FROM lm_broad_vectors WHERE namespace = %s RETURNING index_name", (namespace,)
    ).fetchall():
        cur.execute(f"DROP INDEX IF EXISTS {r['index_name']}".encode())
    cur.execute(b"DELETE FROM lm_broad_scopes WHERE namespace = %s", (namespace,))
    cur.execute(b"DELETE FROM lm_postings WHERE namespace = %s", (namespace,))


def reindex(
    cur: psycopg.Cursor[dict[str, Any]],
    *,
    threshold: int,
    namespaces: list[str] | None = None,
    build_vectors: bool = True,
) -> dict[str, int]:
    """(Re)build postings and partial HNSW indexes of large shared namespaces.

    Runs in the caller's transaction and blocks writes to ``learnings`` meanwhile (a write racing
    the rebuild would otherwise miss its postings). Namespaces below ``threshold`` are
    unregistered. Returns ``{namespace: rows indexed}`` (0: below the threshold).
    """
    cur.execute(b"LOCK TABLE learnings IN SHARE MODE")
    if namespaces is None:
        namespaces = [
            str(r["namespace"])
            for r in cur.execute(
                b"SELECT DISTINCT namespace FROM learnings WHERE namespace <> %s",
                (PRIVATE_NAMESPACE,),
            ).fetchall()
        ]
        namespaces += [
            str(r["namespace"])
            for r in cur.execute(b"SELECT namespace FROM lm_broad_scopes").fetchall()
            if r["namespace"] not in namespaces
        ]
    out: dict[str, int] = {}
    for namespace in sorted(set(namespaces) - {PRIVATE_NAMESPACE}):
        row = cur.execute(
            b"SELECT count(*) AS n FROM (SELECT 1 FROM learnings WHERE namespace = %s LIMIT %s) s",
            (namespace, threshold),
        ).fetchone()
        if row is None or int(row["n"]) < threshold:
            _unregister(cur, namespace)
            out[namespace] = 0
            continue
        _unregister(cur, namespace)
        cur.execute(
            b"INSERT INTO lm_postings"
            b" (namespace, lexeme, learning_id, learning_type, status, tf, doclen)"
            b" SELECT l.namespace, u.lexeme, l.id, l.learning_type, l.status,"
            b" coalesce(cardinality(u.positions), 1), d.len"
            b" FROM learnings l"
            b" CROSS JOIN LATERAL (SELECT coalesce(sum(coalesce(cardinality(v.positions), 1)), 0)"
            b" AS len FROM unnest(l.search_tsv) v) d"
            b" CROSS JOIN LATERAL unnest(l.search_tsv) u WHERE l.namespace = %s",
            (namespace,),
        )
        stats = cur.execute(
            b"SELECT avg(doclen) AS avgdl FROM"
            b" (SELECT DISTINCT learning_id, doclen FROM lm_postings WHERE namespace = %s) s",
            (namespace,),
        ).fetchone()
        assert stats is not None
        cur.execute(
            b"INSERT INTO lm_broad_scopes (namespace, avgdl) VALUES (%s, %s)",
            (namespace, float(stats["avgdl"] or 1.0)),
        )
        for r in cur.execute(
            b"SELECT embedder, vector_dims(embedding) AS dims FROM learnings"
            b" WHERE namespace = %s AND embedding IS NOT NULL AND embedder IS NOT NULL"
            b" GROUP BY 1, 2",
            (namespace,),
        ).fetchall():
            dims = int(r["dims"])
            if not 1 <= dims <= _HNSW_MAX_DIMS:
                continue
            name = _index_name(namespace, str(r["embedder"]), dims)
            cur.execute(
                b"INSERT INTO lm_broad_vectors (namespace, embedder, dims, index_name)"
                b" VALUES (%s, %s, %s, %s)",
                (namespace, r["embedder"], dims, name),
            )
            if build_vectors:
                cur.execute(_create_hnsw_sql(name, namespace, str(r["embedder"]), dims))
        total = cur.execute(
            b"SELECT count(*) AS n FROM learnings WHERE namespace = %s", (namespace,)
        ).fetchone()
        out[namespace] = int(total["n"]) if total else 0
    cur.execute(b"ANALYZE learnings")
    return out
