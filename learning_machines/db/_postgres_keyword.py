"""Keyword candidates on PostgreSQL: full-text matching, with BM25 in a small scope.

PostgreSQL's ``ts_rank_cd`` (cover density) does not normalise by document length and knows no
document frequencies, so a long row that repeats common words outranks a short one that holds
the rare word of the question. The ranking above the db (z-score fusion, episodic memory's
signals) was measured with SQLite's BM25, and on LoCoMo the episodic ranking gave 0.753
recall@10 on PostgreSQL with ``ts_rank_cd`` against 0.797 on SQLite; with BM25 here, 0.795
(``docs/benchmarks.md``).

So in a scope of at most :data:`SMALL_SCOPE` rows (one user's memory), the rows the query
matches are scored here by BM25, with the scope's own statistics, as ``_sqlite_keyword`` does:

- which query lexemes a row holds, and how often, comes from its ``search_tsv`` (stemming and
  stop words are PostgreSQL's ``english`` configuration);
- document frequencies and the document count are the scope's (IDF in Lucene's form,
  ``log(1 + (N - df + 0.5) / (df + 0.5))``, positive in scopes of a handful of rows);
- length normalisation uses the row's number of lexeme positions relative to the mean of the
  rows found.

A larger scope keeps ``ts_rank_cd`` (shared namespaces past the broad threshold have their own
BM25 index, ``_postgres_broad``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ._bm25 import bm25_idf, bm25_term

if TYPE_CHECKING:
    import psycopg

__all__ = ["SMALL_SCOPE", "keyword_candidates", "ts_query"]

#: Scopes of at most this many rows are scored by BM25 here; larger ones by ``ts_rank_cd``.
SMALL_SCOPE = 2000
_MAX_QUERY_WORDS = 64
_WORD = re.compile(r"\w+")
# A lexeme of a tsvector or tsquery as text: 'word' (a quote inside is doubled), then in a
# tsvector its positions, each with an optional weight letter: 'ferri':3,7B
_LEXEME = re.compile(r"'((?:[^']|'')*)'(?::([0-9A-D,]+))?")


def ts_query(cur: psycopg.Cursor[dict[str, Any]], text: str) -> str | None:
    """Build an OR tsquery (as text) of the words of ``text``: any word makes a candidate."""
    words = list(dict.fromkeys(w.casefold() for w in _WORD.findall(text)))[:_MAX_QUERY_WORDS]
    if not words:
        return None
    expr = " || ".join(["plainto_tsquery('english', %s)"] * len(words))
    row = cur.execute(f"SELECT ({expr})::text AS q".encode(), words).fetchone()
    query = row["q"] if row else ""
    return query or None


def keyword_candidates(
    cur: psycopg.Cursor[dict[str, Any]], query: str, where: str, params: list[Any], n: int
) -> dict[str, float]:
    """The ``n`` best keyword matches of ``query`` among rows passing ``where``: ``{id: score}``.

    Higher is better. ``where``/``params`` are the SQL form of the search's filter (alias ``l``).
    """
    tsquery = ts_query(cur, query)
    if tsquery is None:
        return {}
    size = _scope_size(cur, where, params)
    if size <= SMALL_SCOPE:
        return _scoped_bm25(cur, tsquery, where, params, size, n)
    rows = cur.execute(
        (
            "SELECT l.id, ts_rank_cd(l.search_tsv, %s::tsquery) AS score FROM learnings l "
            f"WHERE l.search_tsv @@ %s::tsquery AND {where} ORDER BY score DESC, l.id LIMIT %s"
        ).encode(),
        [tsquery, tsquery, *params, n],
    ).fetchall()
    return {r["id"]: float(r["score"]) for r in rows}


def _scope_size(cur: psycopg.Cursor[dict[str, Any]], where: str, params: list[Any]) -> int:
    """Rows passing ``where``, counted up to ``SMALL_SCOPE + 1`` (stops early when larger)."""
    row = cur.execute(
        f"SELECT count(*) AS n FROM (SELECT 1 FROM learnings l WHERE {where} LIMIT %s) s".encode(),
        [*params, SMALL_SCOPE + 1],
    ).fetchone()
    return int(row["n"]) if row else 0


def lexeme_counts(tsvector: str) -> dict[str, int]:
    """``{lexeme: occurrences}`` of a tsvector's text (a lexeme stored without positions: 1)."""
    out: dict[str, int] = {}
    for lexeme, positions in _LEXEME.findall(tsvector):
        out[lexeme.replace("''", "'")] = positions.count(",") + 1 if positions else 1
    return out


def _scoped_bm25(
    cur: psycopg.Cursor[dict[str, Any]],
    tsquery: str,
    where: str,
    params: list[Any],
    size: int,
    n: int,
) -> dict[str, float]:
    terms = {lexeme.replace("''", "'") for lexeme, _ in _LEXEME.findall(tsquery)}
    rows = cur.execute(
        (
            "SELECT l.id, l.search_tsv::text AS tsv FROM learnings l "
            f"WHERE l.search_tsv @@ %s::tsquery AND {where}"
        ).encode(),
        [tsquery, *params],
    ).fetchall()
    if not rows:
        return {}
    found: list[tuple[str, dict[str, int], int]] = []
    doc_freq = dict.fromkeys(terms, 0)
    for r in rows:
        counts = lexeme_counts(str(r["tsv"]))
        held = {t: counts[t] for t in terms if t in counts}
        for t in held:
            doc_freq[t] += 1
        found.append((str(r["id"]), held, max(1, sum(counts.values()))))
    total = max(size, len(found))
    idf = {t: bm25_idf(total, df) for t, df in doc_freq.items()}
    mean_length = sum(length for _, _, length in found) / len(found)
    scores: dict[str, float] = {}
    for row_id, held, length in found:
        scores[row_id] = sum(bm25_term(idf[t], tf, length, mean_length) for t, tf in held.items())
    best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return dict(best)
