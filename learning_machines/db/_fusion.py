"""Fusion of keyword and vector candidates into one ranking (pure, no I/O).

Measured on LoCoMo turns (``shared/data/README.md``): reciprocal-rank fusion was *worse* than
BM25 alone (0.539 vs 0.570 recall@10), while z-score-normalised weighted fusion was clearly better
than either. Raw scores carry how *much* better a candidate is, which rank fusion throws away;
z-scores put BM25 (unbounded) and cosine (-1..1) on one scale.

The weight is ours, measured with our keyword side (FTS5 BM25 with Porter stemming; PostgreSQL
``ts_rank_cd`` then, BM25 in a small scope since ``_postgres_keyword``), which is stronger than
the reference BM25, so it deserves more weight than the reference's 0.3.
``python benchmarks/search.py ../shared/data/locomo-dev.json --skip-latency``, recall@10 on
five LoCoMo conversations, MiniLM vectors (2026-11-23):

=========  =======  ======  =====  =====  =====  =====  =====
backend    keyword  vector  0.3    0.5    0.6    0.7    0.8
=========  =======  ======  =====  =====  =====  =====  =====
SQLite     0.611    0.508   0.587  0.649  0.660  0.652  0.641
Postgres   0.573    0.508   0.600  0.653  0.649  0.641  0.632
=========  =======  ======  =====  =====  =====  =====  =====

0.6 is the best mean of the two backends.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import TypeVar

__all__ = ["DEFAULT_KEYWORD_WEIGHT", "rank", "zscore_fuse"]

K = TypeVar("K", bound=Hashable)

#: Keyword share of the fused score, measured (see the table above).
DEFAULT_KEYWORD_WEIGHT = 0.6


def _zscores(scores: Mapping[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    values = list(scores.values())
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    std = math.sqrt(var)
    if std < 1e-12:
        return dict.fromkeys(scores, 0.0)
    return {key: (value - mean) / std for key, value in scores.items()}


def zscore_fuse(
    *,
    keyword: Mapping[str, float],
    vector: Mapping[str, float],
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT,
) -> list[tuple[str, float]]:
    """Fuse two candidate lists by weighted z-scores; return ``(id, score)`` best first.

    ``keyword`` maps ids to keyword scores (higher is better, e.g. negated BM25), ``vector`` maps
    ids to cosine similarities. A candidate missing from one side gets that side's lowest z-score
    minus one standard deviation: absent from the top candidates means "worse than all of them".
    Ties are broken by id so the order is deterministic.
    """
    if not 0.0 <= keyword_weight <= 1.0:
        raise ValueError(f"keyword_weight must be between 0 and 1, got {keyword_weight}")
    kz = _zscores(keyword)
    vz = _zscores(vector)
    k_missing = (min(kz.values()) - 1.0) if kz else 0.0
    v_missing = (min(vz.values()) - 1.0) if vz else 0.0
    vector_weight = 1.0 - keyword_weight
    if not kz:
        keyword_weight, vector_weight = 0.0, 1.0
    elif not vz:
        keyword_weight, vector_weight = 1.0, 0.0
    fused = {
        key: keyword_weight * kz.get(key, k_missing) + vector_weight * vz.get(key, v_missing)
        for key in set(kz) | set(vz)
    }
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def rank(
    *,
    keyword: Mapping[K, float],
    vector: Mapping[K, float],
    method: str,
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT,
) -> list[tuple[K, float]]:
    """Candidates best first: one side alone (``method`` keyword or vector) or their fusion.

    Ties go by key (by its text for the fusion, as :func:`zscore_fuse` orders them).
    """
    if method in ("keyword", "vector"):
        side = keyword if method == "keyword" else vector
        return sorted(side.items(), key=lambda kv: (-kv[1], kv[0]))
    back = {str(k): k for k in (*keyword, *vector)}
    fused = zscore_fuse(
        keyword={str(k): v for k, v in keyword.items()},
        vector={str(k): v for k, v in vector.items()},
        keyword_weight=keyword_weight,
    )
    return [(back[k], score) for k, score in fused]
