"""BM25, as every keyword path of the db scores it (pure, no I/O).

FTS5's parameters (``k1`` 1.2, ``b`` 0.75) and IDF in Lucene's form,
``log(1 + (N - df + 0.5) / (df + 0.5))``, which stays positive even for a term in most rows of a
small scope. Used by the scoped searches of both backends (``_sqlite_keyword``,
``_postgres_keyword``) and by the broad-scope indexes (``_side_index``, ``_postgres_broad``).
"""

from __future__ import annotations

import math

__all__ = ["K1", "B", "bm25_idf", "bm25_term"]

#: Term-frequency saturation.
K1 = 1.2
#: Length normalisation.
B = 0.75


def bm25_idf(n: float, df: float) -> float:
    """IDF of a term found in ``df`` of ``n`` rows."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def bm25_term(idf: float, tf: float, length: float, mean_length: float) -> float:
    """One term's share of a row's score: ``tf`` occurrences in a row of ``length`` tokens."""
    norm = K1 * (1 - B + B * length / mean_length)
    return idf * tf * (K1 + 1) / (tf + norm)
