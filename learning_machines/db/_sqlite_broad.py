"""Search of large shared namespaces on SQLite through side indexes (see ``_side_index``).

A shared namespace holding at least ``broad_scope_rows`` learnings gets a :class:`SideIndex`,
saved next to the database (``<file>-lmindex/n<hex namespace>.lmx``) and opened by ``mmap``. How a
search stays correct while the index is a cache:

- **Freshness.** Every write of a learning takes the next value of the write sequence (``seq``);
  removing a row from a shared namespace (delete, or a move to another namespace) records a
  tombstone with a sequence of its own (migration 5). Before each search the index reads what
  changed in its namespace since it last looked (``namespace = ? AND seq > ?``, an index range
  scan), in the search's own read transaction: a write is visible to the next query.
- **Isolation stays in SQL.** The index ranks only rows of the namespaces asked for, with the
  filter's learning types and statuses applied inside the ranking; then every candidate is checked
  against the search's full SQL filter at the same snapshot, with its write sequence. A candidate
  the filter rejects, or whose row changed since it was indexed (a race with another thread),
  sends the whole search down the exact SQL path instead: a row the reader may not see is never
  returned, and a top-k is never cut short by rejected candidates.
- **Crash safety.** Files are immutable snapshots written to a temporary file and renamed into
  place; the database stays the only source of truth. A missing, torn, foreign (another database
  at the same path) or newer-than-the-database file is rebuilt from SQL.
- **Tokenizing.** Texts are tokenized by FTS5 itself (a temporary ``porter unicode61`` table and
  its ``fts5vocab`` instance view), so a row holds a query term here exactly when FTS5 would
  match it.

Only searches whose filter names shared namespaces that all have an index, plus learning types
and statuses, take this path; anything else (a private namespace, ``session_id``, ``as_of`` …)
runs the exact SQL search, as does ``SearchLearnings(exact=True)``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import EmbedderMismatchError
from ._bm25 import bm25_idf
from ._decode import decode_rows
from ._fusion import rank
from ._ops import SearchLearnings
from ._records import PRIVATE_NAMESPACE, LearningFilter, ScoredLearning
from ._side_index import Candidate, IndexRow, LiveIndex, SideIndex, build_index
from ._sqlite_rows import fts_terms, marks, row_to_learning

__all__ = [
    "BROAD_SCOPE_ROWS",
    "SideIndexes",
    "broad_search",
    "embedder_mismatch",
    "index_directory",
    "scored_rows",
]

log = logging.getLogger("learning_machines")

#: Shared namespaces with at least this many learnings get a side index (measured, see
#: docs/scale.md: below it the SQL search is already a few milliseconds).
BROAD_SCOPE_ROWS = 1000
# Fold the overlay into a new file once this share of the base has changed (at least 1,000 rows).
_COMPACT_SHARE = 0.1
_COMPACT_MIN = 1000
_FILTER_FIELDS_ALLOWED = frozenset({"namespaces", "reader_user_id", "learning_types", "statuses"})


def index_directory(db_path: str) -> Path | None:
    """Where the side indexes of the database at ``db_path`` live (``None`` in memory)."""
    if db_path in (":memory:", ""):
        return None
    return Path(db_path).expanduser().with_name(Path(db_path).name + "-lmindex")


def _file_name(namespace: str) -> str:
    return "n" + namespace.encode("utf-8").hex() + ".lmx"


def embedder_mismatch(others: Sequence[str], wanted: str | None) -> EmbedderMismatchError:
    """The error for a scope holding vectors of embedders other than the query's."""
    return EmbedderMismatchError(
        f"Rows in this scope were embedded by {', '.join(others)}, but the query vector comes "
        f"from {wanted!r}; similarities between different models are meaningless. Re-embed "
        f"those rows with {wanted!r} (learning-machines reembed, i.e. SetEmbeddings), or "
        f"search with the embedder they were made with."
    )


# --- tokenizing with FTS5 itself -----------------------------------------------------------------


def tokenize(conn: sqlite3.Connection, texts: Sequence[str]) -> list[Counter[str]]:
    """Token counts of each text, as FTS5's ``porter unicode61`` tokenizer makes them."""
    if not texts:
        return []
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.lm_tokens "
        "USING fts5(t, tokenize='porter unicode61')"
    )
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.lm_tokens_v "
        "USING fts5vocab(temp, lm_tokens, 'instance')"
    )
    conn.execute("DELETE FROM temp.lm_tokens")
    conn.executemany(
        "INSERT INTO temp.lm_tokens (rowid, t) VALUES (?, ?)", enumerate(texts, start=1)
    )
    out: list[Counter[str]] = [Counter() for _ in texts]
    for doc, term, count in conn.execute(
        "SELECT doc, term, count(*) FROM temp.lm_tokens_v GROUP BY doc, term"
    ):
        out[int(doc) - 1][str(term)] = int(count)
    conn.execute("DELETE FROM temp.lm_tokens")
    return out


# --- the registry of one SqliteDb ---------------------------------------------------------------


def _counters(conn: sqlite3.Connection) -> tuple[int, int]:
    values = dict(
        conn.execute("SELECT name, value FROM lm_counters WHERE name IN ('seq', 'db_id')")
    )
    return int(values.get("seq", 0)), int(values.get("db_id", 0))


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def _index_rows(conn: sqlite3.Connection, rows: Sequence[sqlite3.Row]) -> list[IndexRow]:
    counts = tokenize(conn, [str(r[6]) for r in rows])
    return [
        IndexRow(
            pk=int(r[0]),
            seq=int(r[1]),
            learning_type=str(r[2]),
            status=str(r[3]),
            embedder=r[4],
            vector=None if r[5] is None else np.frombuffer(r[5], dtype="<f4"),
            terms=terms,
        )
        for r, terms in zip(rows, counts, strict=True)
    ]


_ROW_COLUMNS = "pk, seq, learning_type, status, embedder, embedding, search_text"


class SideIndexes:
    """The side indexes of one :class:`SqliteDb`, loaded on first use, kept fresh per search."""

    def __init__(self, *, directory: Path | None, threshold: int = BROAD_SCOPE_ROWS) -> None:
        """Indexes persist under ``directory`` (``None``: in memory only)."""
        self.directory = directory
        self.threshold = threshold
        self._lock = threading.Lock()
        self._building = threading.Lock()
        self._live: dict[str, LiveIndex] = {}
        # namespace -> (rows counted, write sequence then): skip recounting until enough writes
        # happened for the namespace to possibly reach the threshold.
        self._small: dict[str, tuple[int, int]] = {}

    def _path(self, namespace: str) -> Path | None:
        return None if self.directory is None else self.directory / _file_name(namespace)

    def _namespace_size(self, conn: sqlite3.Connection, namespace: str, cap: int) -> int:
        (n,) = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM learnings WHERE namespace = ? LIMIT ?)",
            (namespace, cap),
        ).fetchone()
        return int(n)

    def index_for(self, conn: sqlite3.Connection, namespace: str) -> LiveIndex | None:
        """The current index of ``namespace``, or ``None`` if it is small (search it in SQL).

        Runs inside the caller's read transaction; builds or loads the index on first use and
        applies the changes since it was built.
        """
        seq, db_id = _counters(conn)
        with self._lock:
            live = self._live.get(namespace)
            small = self._small.get(namespace)
        if live is None:
            if small is not None and seq - small[1] < self.threshold - small[0]:
                return None
            with self._building:  # one thread builds; the others then find it loaded
                with self._lock:
                    live = self._live.get(namespace)
                if live is None:
                    live = self._open(conn, namespace, seq, db_id)
            if live is None:
                return None
        else:
            live = self._reload_if_replaced(live, namespace, seq, db_id)
        with live.lock:
            self._refresh(conn, live, seq)
            if live.changes > max(_COMPACT_MIN, _COMPACT_SHARE * live.base.size):
                live = self._compact(live)
        return live

    def _open(
        self, conn: sqlite3.Connection, namespace: str, seq: int, db_id: int
    ) -> LiveIndex | None:
        path = self._path(namespace)
        live = self._load(path, seq, db_id) if path is not None else None
        if live is None:
            size = self._namespace_size(conn, namespace, self.threshold)
            if size < self.threshold:
                with self._lock:
                    self._small[namespace] = (size, seq)
                return None
            live = LiveIndex(self._build(conn, namespace, seq, db_id))
            self._save(live, path)
        with self._lock:
            self._small.pop(namespace, None)
            self._live[namespace] = live
        return live

    def _load(self, path: Path | None, seq: int, db_id: int) -> LiveIndex | None:
        if path is None or not path.exists():
            return None
        stamp = _stamp(path)
        try:
            base = SideIndex.load(path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("side index %s is unreadable (%s); rebuilding it", path, exc)
            return None
        if base.db_id != db_id or base.seq > seq:
            log.warning(
                "side index %s belongs to another database or a newer state of it; rebuilding",
                path,
            )
            return None
        return LiveIndex(base, file_stamp=stamp)

    def _reload_if_replaced(
        self, live: LiveIndex, namespace: str, seq: int, db_id: int
    ) -> LiveIndex:
        """Another process may have compacted the file: take its newer base."""
        path = self._path(namespace)
        if path is None or _stamp(path) == live.file_stamp:
            return live
        fresh = self._load(path, seq, db_id)
        if fresh is None or fresh.base.seq <= live.base.seq:
            live.file_stamp = _stamp(path)
            return live
        with self._lock:
            self._live[namespace] = fresh
        return fresh

    def _build(self, conn: sqlite3.Connection, namespace: str, seq: int, db_id: int) -> SideIndex:
        rows: list[IndexRow] = []
        cur = conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM learnings WHERE namespace = ? AND seq <= ?",
            (namespace, seq),
        )
        while batch := cur.fetchmany(5000):
            rows.extend(_index_rows(conn, batch))
        log.info("built the side index of namespace %r: %d rows", namespace, len(rows))
        return build_index(namespace=namespace, db_id=db_id, seq=seq, rows=rows)

    def _save(self, live: LiveIndex, path: Path | None) -> None:
        if path is None:
            return
        try:
            live.base.save(path)
        except OSError as exc:
            # The index still serves this process from memory; the next one rebuilds it.
            log.warning("could not save the side index %s (%s); it stays in memory", path, exc)
            return
        live.file_stamp = _stamp(path)

    def _refresh(self, conn: sqlite3.Connection, live: LiveIndex, seq: int) -> None:
        if seq <= live.seen_seq:
            return
        ns = live.base.namespace
        rows = conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM learnings WHERE namespace = ? AND seq > ? AND seq <= ?",
            (ns, live.seen_seq, seq),
        ).fetchall()
        gone = conn.execute(
            "SELECT pk, seq FROM learnings_gone WHERE namespace = ? AND seq > ? AND seq <= ?",
            (ns, live.seen_seq, seq),
        ).fetchall()
        live.apply(_index_rows(conn, rows), [(int(p), int(s)) for p, s in gone], seq)

    def _compact(self, live: LiveIndex) -> LiveIndex:
        fresh = LiveIndex(live.compacted())
        self._save(fresh, self._path(live.base.namespace))
        with self._lock:
            self._live[live.base.namespace] = fresh
        return fresh

    def rebuild(self, conn: sqlite3.Connection, namespace: str) -> int:
        """Rebuild the index of ``namespace`` from the database (or drop it if small).

        Returns the rows indexed (0 when the namespace is below the threshold).
        """
        seq, db_id = _counters(conn)
        path = self._path(namespace)
        size = self._namespace_size(conn, namespace, self.threshold)
        if size < self.threshold:
            with self._lock:
                self._live.pop(namespace, None)
                self._small[namespace] = (size, seq)
            if path is not None:
                path.unlink(missing_ok=True)
            return 0
        live = LiveIndex(self._build(conn, namespace, seq, db_id))
        self._save(live, path)
        with self._lock:
            self._small.pop(namespace, None)
            self._live[namespace] = live
        return live.base.size

    def compact_removed(self, conn: sqlite3.Connection) -> list[str]:
        """Fold removed rows out of every index file now (after a delete or a forget).

        A deleted learning's words and vector then leave the files at once, not at the next
        compaction. Returns the namespaces rewritten.
        """
        names: set[str] = set(self._live)
        if self.directory is not None and self.directory.exists():
            for path in self.directory.glob("n*.lmx"):
                try:
                    names.add(bytes.fromhex(path.stem[1:]).decode("utf-8"))
                except ValueError:
                    continue
        rewritten = []
        for namespace in sorted(names):
            live = self.index_for(conn, namespace)
            if live is None:
                continue
            with live.lock:
                if live.dead.any():
                    self._compact(live)
                    rewritten.append(namespace)
        return rewritten

    def forget(self) -> None:
        """Drop every loaded index (a forked child starts afresh)."""
        with self._lock:
            self._live.clear()
            self._small.clear()


# --- the search ---------------------------------------------------------------------------------


def _eligible(f: LearningFilter) -> tuple[str, ...] | None:
    """The shared namespaces of a filter the side indexes can serve alone, else ``None``."""
    if f.namespaces is None or not f.namespaces or PRIVATE_NAMESPACE in f.namespaces:
        return None
    if f.as_of is not None:
        return None
    for name in ("user_id", "session_id", "agent_id", "team_id", "entity_ids", "ids"):
        if getattr(f, name) is not None:
            return None
    if f.content_hash is not None or f.provenance_user_id is not None:
        return None
    if f.happened_between is not None:
        return None
    return tuple(dict.fromkeys(f.namespaces))


def _query_terms(conn: sqlite3.Connection, query: str) -> list[str]:
    words = [t.strip('"') for t in fts_terms(query)]
    terms: list[str] = []
    for counts in tokenize(conn, words):
        terms.extend(counts)
    return terms


def broad_search(
    conn: sqlite3.Connection,
    op: SearchLearnings,
    indexes: SideIndexes,
    where: str,
    params: list[Any],
) -> list[ScoredLearning] | None:
    """Run ``op`` on side indexes; ``None`` when they cannot answer it (use the SQL search).

    ``where``/``params`` are the SQL form of ``op.filter``: every candidate passes it.
    """
    namespaces = _eligible(op.filter)
    if namespaces is None or op.exact:
        return None
    lives: list[LiveIndex] = []
    for namespace in sorted(namespaces):
        live = indexes.index_for(conn, namespace)
        if live is None:
            return None
        lives.append(live)
    n = max(op.candidates, op.limit)
    types = op.filter.learning_types
    statuses = op.filter.statuses
    with ExitStack() as stack:
        for live in lives:
            stack.enter_context(live.lock)
        masks = [live.mask(types, statuses) for live in lives]
        extras = [live.extra_rows(types, statuses) for live in lives]
        keyword: list[Candidate] = []
        vector: list[Candidate] = []
        if op.method in ("keyword", "hybrid"):
            keyword = _keyword(conn, op.query, lives, masks, extras, n)
        if op.method in ("vector", "hybrid") and op.vector is not None:
            found = _vector(op, lives, masks, extras, n)
            if found is None:
                return None
            vector = found
    if not _verified(conn, [*keyword, *vector], where, params):
        return None
    kw = {c.pk: c.score for c in keyword}
    vs = {c.pk: c.score for c in vector}
    ranked = rank(keyword=kw, vector=vs, method=op.method, keyword_weight=op.keyword_weight)
    return scored_rows(conn, ranked[: op.limit], kw, vs)


def scored_rows(
    conn: sqlite3.Connection,
    ranked: Sequence[tuple[int, float]],
    keyword: dict[int, float],
    vector: dict[int, float],
) -> list[ScoredLearning]:
    """The learnings of ``ranked`` ``(pk, score)``, in that order, with their side scores.

    A row that cannot be decoded is logged and left out (``_decode``).
    """
    if not ranked:
        return []
    pks = [pk for pk, _ in ranked]
    found = conn.execute(f"SELECT * FROM learnings WHERE pk IN ({marks(len(pks))})", pks)
    rows = {row["pk"]: x for row, x in decode_rows(found, row_to_learning, table="learnings")}
    return [
        ScoredLearning(
            learning=rows[pk],
            score=score,
            keyword_score=keyword.get(pk),
            vector_score=vector.get(pk),
        )
        for pk, score in ranked
        if pk in rows
    ]


def _keyword(
    conn: sqlite3.Connection,
    query: str,
    lives: Sequence[LiveIndex],
    masks: Sequence[Any],
    extras: Sequence[Sequence[IndexRow]],
    n: int,
) -> list[Candidate]:
    terms = _query_terms(conn, query)
    if not terms:
        return []
    total = 0
    dfs = [0] * len(terms)
    for live, mask, extra in zip(lives, masks, extras, strict=True):
        rows, part = live.term_stats(terms, mask, extra)
        total += rows
        dfs = [a + b for a, b in zip(dfs, part, strict=True)]
    idf = [bm25_idf(total, df) if df else 0.0 for df in dfs]
    found: list[Candidate] = []
    for live, mask, extra in zip(lives, masks, extras, strict=True):
        found.extend(live.keyword(terms, idf, mask, extra, n))
    found.sort(key=lambda c: (-c.score, c.pk))
    return found[:n]


def _vector(
    op: SearchLearnings,
    lives: Sequence[LiveIndex],
    masks: Sequence[Any],
    extras: Sequence[Sequence[IndexRow]],
    n: int,
) -> list[Candidate] | None:
    assert op.vector is not None
    pairs: set[tuple[str, int]] = set()
    for live, mask, extra in zip(lives, masks, extras, strict=True):
        pairs |= live.embedders(mask, extra)
    if not pairs:
        return []
    names = {name for name, _ in pairs}
    wanted = op.embedder
    if wanted is None and len(names) == 1:
        wanted = next(iter(names))
    others = sorted(name for name in names if name != wanted)
    if others:
        raise embedder_mismatch(others, wanted)
    pair = (wanted or "", len(op.vector))
    if pair not in pairs:
        return None  # vectors of another length: the SQL search explains the error
    query = np.asarray(op.vector, dtype=np.float32)
    found: list[Candidate] = []
    for live, mask, extra in zip(lives, masks, extras, strict=True):
        part = live.vector(query, pair, mask, extra, n)
        if part is None:
            return None
        found.extend(part)
    found.sort(key=lambda c: (-c.score, c.pk))
    return found[:n]


def _verified(
    conn: sqlite3.Connection, candidates: Sequence[Candidate], where: str, params: list[Any]
) -> bool:
    """Whether every candidate passes the full filter at the version the index ranked."""
    wanted = {c.pk: c.seq for c in candidates}
    if not wanted:
        return True
    # CROSS JOIN fixes the join order: look each candidate up by its key. With ``pk IN (…)``
    # the planner preferred the namespace index and walked the whole namespace (18 ms at 50k).
    seen: dict[int, int] = dict(
        conn.execute(
            "SELECT l.pk, l.seq FROM json_each(?) c CROSS JOIN learnings l ON l.pk = c.value "
            f"WHERE {where}",
            [json.dumps(list(wanted)), *params],
        ).fetchall()
    )
    stale = [pk for pk, seq in wanted.items() if seen.get(pk) != seq]
    if stale:
        log.debug("side index candidates rejected by SQL (%d); exact search instead", len(stale))
        return False
    return True
