"""Latency of single hybrid ``SearchLearnings`` queries on a loaded synthetic database.

Shared by ``bench latency`` (beside the full ``build_context``) and ``benchmarks/search.py``, so
both report the same measurement of the search layer: one user's scoped query ("one user among
many") and a broad one (the shared ``global`` namespace, 5% of all rows).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..db import Db, LearningFilter, SearchLearnings
from ._backends import percentiles
from ._synthetic import FOCUS_USER

__all__ = ["SEARCH_SCOPES", "fast_vs_exact", "time_searches"]

#: The scopes timed, by label.
SEARCH_SCOPES: dict[str, LearningFilter] = {
    "scoped": LearningFilter(namespaces=("user",), reader_user_id=FOCUS_USER),
    "broad": LearningFilter(namespaces=("global",), reader_user_id=FOCUS_USER),
}


def time_searches(
    db: Db,
    *,
    queries: Sequence[str],
    vectors: Sequence[npt.NDArray[np.float32]],
    embedder: str,
    warmup: int = 3,
) -> dict[str, dict[str, float]]:
    """p50/p95/p99 seconds of one hybrid top-10 search per scope (query vectors precomputed).

    The first ``warmup`` queries of each scope are run but not timed.
    """
    out: dict[str, dict[str, float]] = {}
    for label, flt in SEARCH_SCOPES.items():
        times: list[float] = []
        for i, (query, vector) in enumerate(zip(queries, vectors, strict=True)):
            op = SearchLearnings(
                filter=flt,
                query=query,
                vector=tuple(float(x) for x in vector),
                embedder=embedder,
                limit=10,
            )
            started = time.perf_counter()
            db.run(op)
            if i >= warmup:
                times.append(time.perf_counter() - started)
        out[label] = percentiles(times, 50, 95, 99)
    return out


def fast_vs_exact(
    db: Db,
    *,
    queries: Sequence[str],
    vectors: Sequence[npt.NDArray[np.float32]],
    embedder: str,
    k: int = 10,
) -> dict[str, float]:
    """How much of the exact top-``k`` of the broad scope the fast path finds (recall@k).

    The exact search (``SearchLearnings(exact=True)``) ranks in SQL over every row in scope; the
    fast path uses the side indexes. Reported for hybrid (the path stores use) and for each side
    alone; also the exact search's own latency.
    """
    flt = SEARCH_SCOPES["broad"]
    out: dict[str, float] = {}
    exact_times: list[float] = []
    for method in ("hybrid", "keyword", "vector"):
        found: list[float] = []
        for query, vector in zip(queries, vectors, strict=True):
            ops = [
                SearchLearnings(
                    filter=flt,
                    query=query,
                    vector=tuple(float(x) for x in vector),
                    embedder=embedder,
                    limit=k,
                    method=method,
                    exact=exact,
                )
                for exact in (False, True)
            ]
            fast = {h.learning.id for h in db.run(ops[0])}
            started = time.perf_counter()
            exact_hits = {h.learning.id for h in db.run(ops[1])}
            if method == "hybrid":
                exact_times.append(time.perf_counter() - started)
            if exact_hits:
                found.append(len(fast & exact_hits) / len(exact_hits))
        out[f"{method}_recall_at_{k}"] = round(sum(found) / max(1, len(found)), 4)
    out.update(
        {f"exact_{q}_ms": round(v * 1000, 3) for q, v in percentiles(exact_times, 50, 95).items()}
    )
    return out
