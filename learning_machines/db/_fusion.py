"""Fusion of keyword and vector candidates into one ranking (pure, no I/O).

Measured on LoCoMo turns (``shared/data/README.md``): reciprocal-rank fusion was *worse* than
BM25 alone (0.539 vs 0.570 recall@10), while z-score-normalised weighted fusion (0.3 keyword +
0.7 vector) was clearly better than either (0.632). Raw scores carry how *much* better a candidate
is, which rank fusion throws away; z-scores put BM25 (unbounded) and cosine (-1..1) on one scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["zscore_fuse"]


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
    keyword_weight: float = 0.3,
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
