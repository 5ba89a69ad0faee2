"""Recall latency of the decision log at scale: one user's past decisions among many users'.

``records`` synthetic decision records (``rows_per_user`` per user, random sentences, random unit
vectors of MiniLM's size) are bulk-loaded (on PostgreSQL followed by ``ANALYZE``, as any large
import should be); then the decision log recalls for one user at a time
(hybrid search of that user's decisions, outcome evidence in the ranking), with the query's
vector given, so the time is the search's, not the embedding's.
"""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from ..db import Change, Learning, PutLearning
from ..stores import StoreResources, WriteGate
from ..stores._decision_model import DecisionRecord, decision_id
from ..stores.decision_log import DecisionLogStore
from ._backends import open_bench_db, percentiles
from ._synthetic import user_name

__all__ = ["run_decision_latency"]

_DIMS = 384
_EMBEDDER = "synthetic-384"
_CHANGE = Change(action="create", actor={"store": "bench"}, reason="synthetic decision")
# Messages and queries share these words (so keyword search hits), as when the figures in
# docs/feedback.md were measured.
_WORDS = """
    postgres table index backfill batch lock migration schema query latency replica cluster
    billing invoice customer account payment refund subscription plan pricing discount
    deploy release rollback canary pipeline build test coverage review merge branch commit
    kubernetes container pod node autoscale memory cpu disk network timeout retry queue worker
    python rust golang typescript react frontend backend api endpoint token auth session cookie
    alice bob carol dave erin frank grace heidi ivan judy mallory oscar peggy trent victor walter
    acme globex initech umbrella hooli stark wayne wonka cyberdyne tyrell soylent vandelay
    meeting standup roadmap quarter budget hiring onboarding offsite vacation holiday birthday
    coffee tea vegetarian vegan running cycling hiking climbing chess guitar piano painting
    paris london berlin tokyo lisbon madrid rome oslo prague vienna dublin zurich boston austin
    dashboard metric alert incident outage postmortem oncall pager escalation runbook sla slo
    dataset model training inference embedding vector search ranking recall precision fusion
    cache redis kafka spark airflow dbt snowflake bigquery s3 bucket backup restore snapshot
    prefers likes dislikes uses owns manages leads joined left moved started finished planned
"""
_VOCABULARY: tuple[str, ...] = tuple(_WORDS.split())


def _sentence(rng: random.Random, low: int = 8, high: int = 16) -> str:
    """A random sentence of ``low`` to ``high`` words of the vocabulary."""
    return " ".join(rng.choices(_VOCABULARY, k=rng.randint(low, high))).capitalize() + "."


def _rows(rng: random.Random, vectors: Any, start: int, count: int, per_user: int) -> list[Any]:
    out = []
    for i in range(start, start + count):
        user = user_name(i // per_user)
        turn = f"turn-{i:08d}"
        message = _sentence(rng)
        record = DecisionRecord(
            turn_id=turn, session_id=f"s-{i // 5}", at="2026-01-01T00:00:00+00:00",
            message=message, answer=_sentence(rng),
        )  # fmt: skip
        out.append(
            PutLearning(
                learning=Learning(
                    id=decision_id(turn),
                    learning_type="decision",
                    user_id=user,
                    session_id=record.session_id,
                    entity_id=turn,
                    content=record.model_dump(mode="json"),
                    search_text=message,
                    embedding=tuple(vectors[i - start].tolist()),
                    embedder=_EMBEDDER,
                    helpful=float(rng.random() < 0.2),
                    harmful=float(rng.random() < 0.2),
                ),
                change=_CHANGE,
            )
        )
    return out


class _Vectors:
    """The fixed query-vector "embedder" for timing (queries carry their vector already)."""

    name = _EMBEDDER
    dimensions = _DIMS

    def embed(self, texts: Any) -> Any:  # pragma: no cover - queries pass their vector
        raise AssertionError("the benchmark passes query vectors")


async def _time(
    store: DecisionLogStore,
    rng: random.Random,
    np_rng: np.random.Generator,
    *,
    users: int,
    queries: int,
) -> list[float]:
    times: list[float] = []
    for q in range(queries + 10):
        user = user_name(rng.randrange(users))
        vector = np_rng.standard_normal(_DIMS).astype(np.float32)
        vector /= np.linalg.norm(vector)
        message = _sentence(rng)
        started = time.perf_counter()
        await store.arecall(message=message, user_id=user, query_vector=tuple(vector.tolist()))
        if q >= 10:  # warm-up excluded
            times.append((time.perf_counter() - started) * 1000)
    return times


def run_decision_latency(
    *,
    records: int,
    backend: str,
    workdir: Path,
    seed: int,
    rows_per_user: int = 100,
    queries: int = 200,
) -> dict[str, Any]:
    """Load ``records`` decisions and time one user's recall; p50/p95 in milliseconds."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    bench_db = open_bench_db(backend, workdir)
    try:
        db = bench_db.db
        load_started = time.perf_counter()
        with ExitStack() as stack:
            from ..db import PostgresDb

            if isinstance(db, PostgresDb):
                stack.enter_context(db.bulk_load())
            for start in range(0, records, 1000):
                count = min(1000, records - start)
                vectors = np_rng.standard_normal((count, _DIMS)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                db.batch(_rows(rng, vectors, start, count, rows_per_user))
        load_seconds = time.perf_counter() - load_started
        if backend == "postgres":
            # Statistics for the planner, as after any large import (autovacuum would get there).
            import psycopg

            with psycopg.connect(bench_db.location, autocommit=True) as conn:
                conn.execute("ANALYZE learnings")
        store = DecisionLogStore()
        gate = WriteGate(
            store_name="decision_log", learning_type="decision", mode=store.mode, db=db
        )
        store.bind(StoreResources(name="decision_log", db=db, embedder=_Vectors(), gate=gate))
        users = max(1, records // rows_per_user)
        times = asyncio.run(_time(store, rng, np_rng, users=users, queries=queries))
    finally:
        bench_db.close()
    p = percentiles(times, 50, 95)
    return {
        "records": records,
        "users": users,
        "backend": backend,
        "queries": queries,
        "load_seconds": round(load_seconds, 1),
        "p50_ms": round(p["p50"], 2),
        "p95_ms": round(p["p95"], 2),
    }
