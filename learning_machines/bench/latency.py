"""Speed and scale: recall latency of ``build_context`` with 10k-1M learnings, ingestion, size.

For each backend and size, a fresh database is filled with synthetic learnings of every built-in
learning type (topical texts over a 21,000-word vocabulary and clustered vectors — see
:mod:`._synthetic`) through bulk ``PutLearning`` batches, then indexed (``reindex``; on
PostgreSQL also the HNSW build of ``bulk_load``). Then ``machine.abuild_context`` is timed for one
user's turns with all five built-in stores enabled, after closing and reopening the database
(the first of those turns is the cold start). Query vectors come from the same topic model as
the rows; the MiniLM embedding of the query texts is timed on its own, so recall latency excludes
embedding. Also measured: the search layer alone (one user's scope, the shared namespace), how
much of the exact top-10 the indexed search finds, ingestion throughput (embedding excluded;
and, on a small sample, included), database size per learning, and what ``Agent.run()`` adds to
an instant scripted model with learning on and off.
"""

from __future__ import annotations

import asyncio
import json
import platform
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._agent import Agent
from ..db import Change, PutLearning
from ..embedders import Embedder, default_embedder
from ..machine import LearningMachine
from ..testing import ScriptedModel
from ._backends import BenchDb, open_bench_db, percentiles
from ._search_timing import fast_vs_exact, time_searches
from ._synthetic import (
    FOCUS_USER,
    SyntheticPlan,
    Topics,
    load_synthetic,
    synthetic_batches,
    with_embedding,
)

__all__ = ["DEFAULT_SIZES", "run_latency"]

#: Sizes measured when none are given.
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
_QUICK_SIZE = 2_000


class _LookupEmbedder:
    """Returns vectors computed beforehand, under the real embedder's name (no model time)."""

    def __init__(
        self, name: str, dimensions: int, vectors: dict[str, npt.NDArray[np.float32]]
    ) -> None:
        self._name = name
        self._dimensions = dimensions
        self._vectors = vectors

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32)


@dataclass(frozen=True)
class _Settings:
    sizes: list[int]
    backends: list[str]
    queries: int
    warmup: int
    embed_sample: int
    answer_turns: int
    answer_rows: int
    exact_checks: int


def _settings(
    quick: bool, sizes: list[int] | None, backends: list[str], queries: int | None
) -> _Settings:
    if quick:
        return _Settings(
            sizes=sizes or [_QUICK_SIZE],
            backends=backends or ["sqlite"],
            queries=queries or 8,
            warmup=2,
            embed_sample=100,
            answer_turns=5,
            answer_rows=_QUICK_SIZE,
            exact_checks=5,
        )
    return _Settings(
        sizes=sizes or list(DEFAULT_SIZES),
        backends=backends or ["sqlite", "postgres"],
        queries=queries or 100,
        warmup=5,
        embed_sample=1000,
        answer_turns=40,
        answer_rows=10_000,
        exact_checks=30,
    )


def _machine(db: Any, embedder: Embedder) -> LearningMachine:
    return LearningMachine(
        db=db,
        model=ScriptedModel(),
        embedder=embedder,
        user_profile=True,
        session_context=True,
        learned_knowledge=True,
        entity_memory=True,
        episodic_memory=True,
        background=False,
        curate_every_turns=None,
    )


def _queries(n: int, seed: int = 11) -> list[tuple[str, npt.NDArray[np.float32]]]:
    """Query texts and vectors drawn from the synthetic topic model (as the rows are)."""
    return Topics(dimensions=SyntheticPlan(rows=0, embedder="").dimensions).queries(n, seed=seed)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def _time_recall(
    machine: LearningMachine, queries: list[str], warmup: int
) -> tuple[list[float], float, list[int]]:
    """Per-query seconds of ``abuild_context`` (after warm-up), the first (cold) one, tokens."""
    times: list[float] = []
    tokens: list[int] = []
    first = 0.0
    for i, query in enumerate(queries):
        started = time.perf_counter()
        context = await machine.abuild_context(
            message=query, user_id=FOCUS_USER, session_id=f"{FOCUS_USER}-s{i % 2}"
        )
        elapsed = time.perf_counter() - started
        if i == 0:
            first = elapsed
        if i >= warmup:
            times.append(elapsed)
            tokens.append(context.tokens)
    return times, first, tokens


def _embedding_ingest(
    backend: str, workdir: Path, sample: int, embedder: Embedder
) -> dict[str, Any]:
    """Throughput of writes that embed their texts first (MiniLM), on a small fresh db."""
    bench = open_bench_db(backend, workdir)
    try:
        plan = SyntheticPlan(rows=sample, embedder=embedder.name, seed=99)
        rows = [row for batch in synthetic_batches(plan) for row in batch]
        change = Change(action="create", actor={"store": "bench"})
        started = time.perf_counter()
        vectors = embedder.embed([row.search_text for row in rows])
        embedded = time.perf_counter()
        ops = [
            PutLearning(
                learning=with_embedding(row, tuple(v.tolist())),
                change=change,
            )
            for row, v in zip(rows, vectors, strict=True)
        ]
        for i in range(0, len(ops), 1000):
            bench.db.batch(ops[i : i + 1000])
        done = time.perf_counter()
    finally:
        bench.close()
    return {
        "rows": len(rows),
        "embed_seconds": round(embedded - started, 3),
        "write_seconds": round(done - embedded, 3),
        "rows_per_second_with_embedding": round(len(rows) / (done - started), 1),
        "rows_per_second_writes_only": round(len(rows) / (done - embedded), 1),
    }


async def _answer_path(workdir: Path, rows: int, turns: int) -> dict[str, Any]:
    """What ``Agent.arun`` adds to an instant scripted model, learning on vs off (SQLite)."""
    from pydantic_ai import Agent as PydanticAgent

    embedder = default_embedder()
    bench = open_bench_db("sqlite", workdir)
    try:
        load_synthetic(bench.db, SyntheticPlan(rows=rows, embedder=embedder.name))
        model = ScriptedModel(answers="Sure.")
        messages = [text for text, _ in _queries(turns + 3, seed=5)]
        bare: PydanticAgent[None, str] = PydanticAgent(model)
        off = Agent(model=model, db=bench.db, learning=None)
        machine = _machine(bench.db, embedder)
        on = Agent(model=model, db=bench.db, learning=machine)
        results: dict[str, list[float]] = {
            "bare_pydantic_ai": [],
            "learning_off": [],
            "learning_on": [],
        }
        for i, message in enumerate(messages):
            session = f"answer-path-{i}"
            for key in results:
                started = time.perf_counter()
                if key == "bare_pydantic_ai":
                    await bare.run(message)
                elif key == "learning_off":
                    await off.arun(message, user_id=FOCUS_USER, session_id=session + "-off")
                else:
                    await on.arun(message, user_id=FOCUS_USER, session_id=session + "-on")
                if i >= 3:  # the first turns load the model and warm caches
                    results[key].append(time.perf_counter() - started)
    finally:
        bench.close()
    out: dict[str, Any] = {"rows": rows, "turns": turns}
    for key, values in results.items():
        out[key] = {k: _ms(v) for k, v in percentiles(values, 50, 95).items()}
    out["added_by_learning_ms"] = {
        k: round(out["learning_on"][k] - out["learning_off"][k], 3) for k in ("p50", "p95")
    }
    out["added_by_agent_without_learning_ms"] = {
        k: round(out["learning_off"][k] - out["bare_pydantic_ai"][k], 3) for k in ("p50", "p95")
    }
    return out


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    """Date, platform, CPU count and commit, for the record of a measurement."""
    import os

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "commit": _commit(),
    }


def _reindex(db: Any) -> float:
    """Build the indexes of large shared namespaces; seconds spent."""
    started = time.perf_counter()
    db.reindex()
    return time.perf_counter() - started


async def _measure_size(
    settings: _Settings,
    backend: str,
    size: int,
    workdir: Path,
    drawn: list[tuple[str, npt.NDArray[np.float32]]],
    lookup: _LookupEmbedder,
    progress: bool,
) -> dict[str, Any]:
    queries = [text for text, _ in drawn]
    vectors = [vector for _, vector in drawn]
    bench: BenchDb = open_bench_db(backend, workdir)
    try:
        plan = SyntheticPlan(rows=size, embedder=lookup.name)
        stats = load_synthetic(bench.db, plan, progress=progress)
        side_seconds = _reindex(bench.db)
        if progress:
            print(f"  … side indexes built in {side_seconds:,.1f} s", flush=True)
        size_bytes = bench.size_bytes()
        # Cold start: a new connection (a new process would do the same), the first turn.
        started = time.perf_counter()
        db = bench.reopen()
        machine = _machine(db, lookup)
        await machine.abuild_context(
            message=queries[0], user_id=FOCUS_USER, session_id=f"{FOCUS_USER}-s0"
        )
        cold = time.perf_counter() - started
        times, _, tokens = await _time_recall(machine, queries, settings.warmup)
        search = time_searches(
            db, queries=queries, vectors=vectors, embedder=lookup.name, warmup=settings.warmup
        )
        checks = min(len(queries), settings.exact_checks)
        quality = fast_vs_exact(
            db, queries=queries[:checks], vectors=vectors[:checks], embedder=lookup.name
        )
    finally:
        bench.close()
    return {
        "backend": backend,
        "rows": size,
        "users": plan.users,
        "shared_rows": plan.shared_rows,
        "ingest_rows_per_second": round(stats.rows_per_second, 1),
        "index_build_seconds": round(stats.index_seconds + side_seconds, 1),
        "side_index_seconds": round(side_seconds, 1),
        "ingest_rows_per_second_with_index": round(
            size / (stats.seconds + stats.index_seconds + side_seconds), 1
        ),
        "bytes_per_learning": round(size_bytes / size, 1),
        "db_megabytes": round(size_bytes / 1e6, 1),
        "first_query_ms": _ms(cold),
        "queries": len(times),
        "context_tokens_mean": round(sum(tokens) / max(1, len(tokens)), 1),
        **{k + "_ms": _ms(v) for k, v in percentiles(times, 50, 95, 99).items()},
        "search_ms": {scope: {k: _ms(v) for k, v in p.items()} for scope, p in search.items()},
        "fast_vs_exact": {**quality, "queries": checks},
    }


async def _arun_latency(settings: _Settings, workdir: Path, progress: bool) -> dict[str, Any]:
    minilm = default_embedder()
    drawn = _queries(settings.queries + settings.warmup)
    minilm.embed(["warm up"])
    embed_times: list[float] = []
    for text, _ in drawn:
        started = time.perf_counter()
        minilm.embed([text])
        embed_times.append(time.perf_counter() - started)
    lookup = _LookupEmbedder(minilm.name, minilm.dimensions, dict(drawn))
    result: dict[str, Any] = {
        "machine": machine_info(),
        "notes": [
            "Synthetic learnings: topical texts over a 21,000-word vocabulary (Zipf "
            "frequencies) and clustered 384-d vectors (400 topics in 40 groups), not MiniLM "
            "embeddings: embedding 1M texts with MiniLM is too slow on 2 cores. Queries are "
            "drawn from the same topics.",
            "Recall latency excludes the query embedding, which is timed apart (MiniLM int8, "
            "one query at a time).",
            "All five built-in stores enabled with default configs; the timed user is one of "
            "many users (60 private learnings each); 5% of rows are shared knowledge in 'global'.",
            "Cold start: the database is closed and opened again (new connections, no "
            "in-process state; the operating system's file cache stays warm), then one turn.",
        ],
        "query_embedding_ms": {k: _ms(v) for k, v in percentiles(embed_times, 50, 95, 99).items()},
        "recall": [],
        "ingest_with_embedding": {},
    }
    for backend in settings.backends:
        for size in settings.sizes:
            if progress:
                print(f"[latency] {backend} {size:,} rows: loading …", flush=True)
            row = await _measure_size(settings, backend, size, workdir, drawn, lookup, progress)
            if progress:
                print(f"[latency] {row}", flush=True)
            result["recall"].append(row)
        result["ingest_with_embedding"][backend] = _embedding_ingest(
            backend, workdir, settings.embed_sample, minilm
        )
    result["answer_path"] = await _answer_path(workdir, settings.answer_rows, settings.answer_turns)
    return result


def _markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Measured {m['date']} on {m['cpu_count']} CPU cores ({m['platform']}), commit "
        f"{m['commit']}.",
        "",
        *[f"- {note}" for note in result["notes"]],
        "",
        "| backend | learnings | build_context p50 | p95 | p99 | first (cold) | "
        "bulk ingest/s (no embedding) | index build | bytes/learning |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["recall"]:
        index = f"{r['index_build_seconds']:,.0f} s" if r.get("index_build_seconds") else "—"
        lines.append(
            f"| {r['backend']} | {r['rows']:,} | {r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms | "
            f"{r['p99_ms']:.1f} ms | {r['first_query_ms']:.0f} ms | "
            f"{r['ingest_rows_per_second']:,.0f} | {index} | {r['bytes_per_learning']:,.0f} |"
        )
    lines += [
        "",
        "One hybrid top-10 `SearchLearnings` on the same databases (the search layer alone): "
        "one user's private scope, and the shared `global` namespace (5% of all rows):",
        "",
        "| backend | learnings | scoped p50 | scoped p95 | broad p50 | broad p95 | "
        "broad exact p50 | recall@10 vs exact (hybrid / keyword / vector) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["recall"]:
        sc, br = r["search_ms"]["scoped"], r["search_ms"]["broad"]
        q = r["fast_vs_exact"]
        lines.append(
            f"| {r['backend']} | {r['rows']:,} | {sc['p50']:.1f} ms | {sc['p95']:.1f} ms | "
            f"{br['p50']:.1f} ms | {br['p95']:.1f} ms | {q['exact_p50_ms']:.1f} ms | "
            f"{q['hybrid_recall_at_10']:.3f} / {q['keyword_recall_at_10']:.3f} / "
            f"{q['vector_recall_at_10']:.3f} ({q['queries']} queries) |"
        )
    e = result["query_embedding_ms"]
    lines += [
        "",
        f"Query embedding (MiniLM int8, one query): p50 {e['p50']:.1f} ms, p95 {e['p95']:.1f} ms, "
        f"p99 {e['p99']:.1f} ms.",
        "",
        "Ordinary writes (index live, one batch of 1,000 at a time) on a fresh database:",
        "",
        "| backend | ingest/s with MiniLM embedding | writes only | sample rows |",
        "|---|---:|---:|---:|",
    ]
    for backend, ing in result["ingest_with_embedding"].items():
        rate = ing["rows_per_second_with_embedding"]
        writes = ing["rows_per_second_writes_only"]
        lines.append(f"| {backend} | {rate:,.0f} | {writes:,.0f} | {ing['rows']} |")
    a = result["answer_path"]
    lines += [
        "",
        f"Answer path (SQLite, {a['rows']:,} learnings, scripted model answering instantly, "
        f"{a['turns']} turns; learning on = all five stores, recall + MiniLM query embedding + "
        "durable pending work; extraction runs later and is not timed):",
        "",
        "| | p50 | p95 |",
        "|---|---:|---:|",
    ]
    for key in ("bare_pydantic_ai", "learning_off", "learning_on"):
        lines.append(f"| {key} | {a[key]['p50']:.1f} ms | {a[key]['p95']:.1f} ms |")
    lines.append(
        f"| added by learning | {a['added_by_learning_ms']['p50']:.1f} ms | "
        f"{a['added_by_learning_ms']['p95']:.1f} ms |"
    )
    return "\n".join(lines) + "\n"


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for backend in dict.fromkeys(r["backend"] for r in result["recall"]):
        rows = [r for r in result["recall"] if r["backend"] == backend]
        sizes = [r["rows"] for r in rows]
        for pct, style in (("p50", "-o"), ("p95", "--s")):
            ax.plot(sizes, [r[f"{pct}_ms"] for r in rows], style, label=f"{backend} {pct}")
    ax.set_xscale("log")
    ax.set_xlabel("learnings in the database")
    ax.set_ylabel("build_context latency (ms, embedding excluded)")
    ax.set_title("Recall latency, all built-in stores, one user's turn")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_latency(
    *,
    out_dir: Path,
    quick: bool,
    sizes: list[int] | None,
    backends: list[str],
    queries: int | None = None,
) -> dict[str, Any]:
    """Measure recall latency, ingestion and size; write JSON, markdown and a PNG plot.

    Args:
        out_dir: Where ``latency.json``, ``latency.md`` and ``latency.png`` are written.
        quick: A smoke run: 2k learnings, SQLite only, a few queries (well under a minute).
        sizes: Numbers of learnings to measure (default 10k, 100k, 1M; 2k with ``quick``).
        backends: ``"sqlite"`` and/or ``"postgres"`` (empty: both; SQLite only with ``quick``).
        queries: Timed queries per size (default 100; 8 with ``quick``).

    Returns:
        The result dict that is also written as JSON.

    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = _settings(quick, sizes, list(backends), queries)
    with tempfile.TemporaryDirectory(prefix="lm-bench-") as tmp:
        result = asyncio.run(_arun_latency(settings, Path(tmp), progress=not quick))
    result["quick"] = quick
    (out_dir / "latency.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "latency.md").write_text(_markdown(result))
    _plot(result, out_dir / "latency.png")
    return result
