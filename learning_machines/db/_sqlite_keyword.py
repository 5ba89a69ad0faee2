"""Keyword candidates on SQLite: FTS5 matching, with BM25 that stays fast in a small scope.

FTS5's ``bm25()`` computes each query term's IDF by walking that term's whole posting list, so
its cost grows with the table, not with the scope searched: with a million rows, one user's
60-row search spent about 100 ms there while the match itself took half a millisecond. So in a
small scope FTS5 only *matches* (the scope tokens of ``fts_scope`` let it seek, see
:func:`fts_scope_match`), and BM25 is computed here over the scope:

- which query terms a row holds comes from FTS5 itself (one match per term, so stemming and
  tokenizing are FTS5's own);
- document frequencies and the document count are the scope's, so one user's ranking never
  depends on other users' rows (IDF in Lucene's form, ``log(1 + (N - df + 0.5) / (df + 0.5))``,
  which stays positive in scopes of a handful of rows);
- a term's frequency in a row is how often its word occurs verbatim (at least once), and length
  normalisation uses the row's number of space-separated words relative to the mean of the
  rows found.

On LoCoMo (one user per conversation) recall@10 stayed where FTS5's ``bm25()`` had it: keyword
0.609 against 0.611, fused 0.665 against 0.660 (``benchmarks/search.py``).

A scope larger than :data:`SMALL_SCOPE` rows falls back to FTS5's ``bm25()`` over the table.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ._bm25 import bm25_idf, bm25_term
from ._records import PRIVATE_NAMESPACE, LearningFilter
from ._sqlite_rows import fts_terms, marks

__all__ = ["SMALL_SCOPE", "fts_scope_match", "keyword_candidates"]

#: Scopes of at most this many rows are scored here; larger ones by FTS5's ``bm25()``.
SMALL_SCOPE = 2000


def _scope_token(prefix: str, value: str) -> str:
    # The same token the ``fts_scope`` generated column indexes (``hex()`` of the UTF-8 bytes).
    return prefix + value.encode("utf-8").hex().upper()


def fts_scope_match(f: LearningFilter) -> str | None:
    """FTS5 condition on the ``fts_scope`` column narrowing a search to ``f``'s scope.

    ``None`` when the filter does not name its namespaces and types (then only SQL filters).
    Only ever narrows: the SQL ``WHERE`` of the same filter still applies.
    """
    parts: list[str] = []
    if f.namespaces is not None:
        tokens = [
            _scope_token("u", f.reader_user_id or "")
            if ns == PRIVATE_NAMESPACE
            else _scope_token("n", ns)
            for ns in f.namespaces
        ]
        if tokens:
            parts.append("fts_scope : (" + " OR ".join(tokens) + ")")
    if f.learning_types:
        parts.append(
            "fts_scope : (" + " OR ".join(_scope_token("t", t) for t in f.learning_types) + ")"
        )
    return " AND ".join(parts) if parts else None


def keyword_candidates(
    conn: sqlite3.Connection,
    query: str,
    f: LearningFilter,
    where: str,
    params: list[Any],
    n: int,
) -> dict[int, float]:
    """The ``n`` best keyword matches of ``query`` in ``f``'s scope: ``{pk: score}``.

    Higher scores are better. ``where``/``params`` are the SQL form of ``f`` (alias ``l``),
    applied to every candidate.
    """
    terms = fts_terms(query)
    if not terms:
        return {}
    scope = fts_scope_match(f)
    if scope is not None:
        size = _scope_size(conn, scope)
        if size <= SMALL_SCOPE:
            return _scoped_bm25(conn, terms, scope, size, where, params, n)
    match = "search_text : (" + " OR ".join(terms) + ")"
    if scope is not None:
        match = f"{match} AND {scope}"
    rows = conn.execute(
        # Weight 0 for the scope column: its tokens narrow the search but never score.
        "SELECT l.pk, bm25(learnings_fts, 1.0, 0.0) AS kw FROM learnings_fts "
        "JOIN learnings l ON l.pk = learnings_fts.rowid "
        f"WHERE learnings_fts MATCH ? AND {where} ORDER BY kw, l.pk LIMIT ?",
        [match, *params, n],
    )
    # FTS5's bm25() is "lower is better"; callers get "higher is better".
    return {int(pk): -float(kw) for pk, kw in rows}


def _scope_size(conn: sqlite3.Connection, scope: str) -> int:
    """Rows in the FTS scope, counted up to ``SMALL_SCOPE + 1`` (stops early when larger)."""
    (size,) = conn.execute(
        "SELECT count(*) FROM (SELECT rowid FROM learnings_fts WHERE learnings_fts MATCH ? "
        "LIMIT ?)",
        [scope, SMALL_SCOPE + 1],
    ).fetchone()
    return int(size)


def _scoped_bm25(
    conn: sqlite3.Connection,
    terms: list[str],
    scope: str,
    size: int,
    where: str,
    params: list[Any],
    n: int,
) -> dict[int, float]:
    held: dict[int, list[int]] = {}  # pk -> indexes of the terms it holds
    doc_freq: list[int] = []
    for i, term in enumerate(terms):
        rows = conn.execute(
            "SELECT rowid FROM learnings_fts WHERE learnings_fts MATCH ?",
            [f"search_text : {term} AND {scope}"],
        ).fetchall()
        doc_freq.append(len(rows))
        for (pk,) in rows:
            held.setdefault(int(pk), []).append(i)
    if not held:
        return {}
    pks = list(held)
    words = [term.strip('"') for term in terms]
    rows = conn.execute(
        f"SELECT l.pk, l.search_text FROM learnings l WHERE l.pk IN ({marks(len(pks))}) "
        f"AND {where}",
        [*pks, *params],
    ).fetchall()
    if not rows:
        return {}
    idf = [bm25_idf(size, df) for df in doc_freq]
    texts = {int(pk): str(text).casefold() for pk, text in rows}
    # Words approximated as space-separated pieces.
    lengths = {pk: text.count(" ") + 1 for pk, text in texts.items()}
    mean_length = sum(lengths.values()) / len(lengths)
    scores: dict[int, float] = {}
    for pk, text in texts.items():
        score = 0.0
        for i in held[pk]:
            # Verbatim occurrences; the match itself proves at least one (maybe stemmed).
            tf = max(1, text.count(words[i]))
            score += bm25_term(idf[i], tf, lengths[pk], mean_length)
        scores[pk] = score
    best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return dict(best)
