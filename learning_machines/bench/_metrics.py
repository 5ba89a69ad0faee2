"""Retrieval metrics over ranked turn ids (pure functions, no I/O).

Relevance is binary: a turn is relevant when it is one of the question's evidence turns.
Recall@k is the fraction of evidence turns found in the top ``k`` (averaged over questions, so a
question with three evidence turns that finds two scores 2/3). Session-level recall@k counts an
evidence *session* as found when any turn of it is in the top ``k``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "KS",
    "QuestionScore",
    "aggregate",
    "ndcg_at_k",
    "recall_at_k",
    "score_question",
    "session_of",
]

#: The cut-offs reported for turn-level recall.
KS: tuple[int, ...] = (1, 5, 10)


def session_of(ref: str) -> str:
    """``"D3:12"`` → ``"D3"`` (the session part of a LoCoMo dia id)."""
    return ref.split(":", 1)[0]


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Fraction of ``relevant`` found in ``ranked[:k]`` (0.0 when nothing is relevant)."""
    rel = set(relevant)
    if not rel:
        return 0.0
    return len(rel.intersection(ranked[:k])) / len(rel)


def ndcg_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    """Binary-relevance NDCG@k: DCG of ``ranked[:k]`` over the DCG of an ideal ranking."""
    rel = set(relevant)
    if not rel:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, ref in enumerate(ranked[:k]) if ref in rel)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), k)))
    return dcg / ideal


@dataclass(frozen=True, kw_only=True)
class QuestionScore:
    """The metrics of one question."""

    category: int
    """The question's category."""
    recall: Mapping[int, float]
    """Turn-level recall at each of :data:`KS`."""
    ndcg10: float
    """NDCG@10."""
    session_recall10: float
    """Session-level recall@10."""


def score_question(category: int, ranked: Sequence[str], evidence: Sequence[str]) -> QuestionScore:
    """Score one ranking of dia ids against the question's evidence ids."""
    sessions_ranked = [session_of(r) for r in ranked]
    return QuestionScore(
        category=category,
        recall={k: recall_at_k(ranked, evidence, k) for k in KS},
        ndcg10=ndcg_at_k(ranked, evidence, 10),
        session_recall10=recall_at_k(sessions_ranked, {session_of(e) for e in evidence}, 10),
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _summary(scores: Sequence[QuestionScore]) -> dict[str, float]:
    out: dict[str, float] = {"n": float(len(scores))}
    for k in KS:
        out[f"R@{k}"] = _mean([s.recall[k] for s in scores])
    out["NDCG@10"] = _mean([s.ndcg10 for s in scores])
    out["session R@10"] = _mean([s.session_recall10 for s in scores])
    return out


def aggregate(scores: Sequence[QuestionScore]) -> dict[str, dict[str, float]]:
    """Mean metrics ``{"overall": {...}, "1": {...}, ...}`` (keys: ``n``, ``R@k``, ``NDCG@10``…)."""
    result = {"overall": _summary(scores)}
    for category in sorted({s.category for s in scores}):
        result[str(category)] = _summary([s for s in scores if s.category == category])
    return result
