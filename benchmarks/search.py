"""Search benchmark (issue 2): recall@10 on LoCoMo and scoped hybrid-search latency at scale.

    python benchmarks/search.py ../shared/data/locomo-dev.json \
        [--sizes 10000,100000,1000000] [--backends sqlite,postgres] [--queries 50]
        [--skip-recall] [--skip-latency] [--broad]

Recall: LoCoMo turns (categories 1-4; documents = "speaker: text"), one user_id per
conversation so every search is scoped to its conversation; keyword-only, vector-only (MiniLM)
and fused (z-score 0.3/0.7) recall@10 of the evidence turns, for each backend.

``--broad``: each conversation is instead a shared namespace, large enough (threshold 100 rows)
to be searched through the broad-scope indexes (SQLite side index; PostgreSQL postings and
partial HNSW); recall@10 of that fast path and of the exact search (``exact=True``) through the
same ``SearchLearnings``, overall and for the first three and last two conversations apart.

Latency: synthetic rows (vocabulary texts, random unit vectors — not MiniLM, which is too slow
for 1M rows on 2 cores) spread over many users; one user's scoped hybrid SearchLearnings and one
broad-scope query (shared 'global' namespace), p50/p95; query embedding (MiniLM) timed apart.
The LoCoMo data is CC BY-NC: pass its path, never commit it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from learning_machines.bench._backends import open_bench_db
from learning_machines.bench._locomo import load_locomo
from learning_machines.bench._metrics import recall_at_k
from learning_machines.bench.latency import run_latency
from learning_machines.db import (
    Change,
    Learning,
    LearningFilter,
    PutLearning,
    SearchLearnings,
    SqliteDb,
)
from learning_machines.embedders import default_embedder

METHODS = ("keyword", "vector", "hybrid")
#: Keyword weights of the fusion reported beside the default (how the default was chosen).
FUSION_WEIGHTS = (0.3, 0.5, 0.6, 0.7, 0.8)


def _open(backend: str, workdir: Path, broad: bool) -> Any:
    """A fresh backend; with ``broad``, namespaces of 100+ rows count as broad scopes."""
    if not broad:
        return open_bench_db(backend, workdir).db
    if backend == "sqlite":
        return SqliteDb(workdir / f"broad-{time.monotonic_ns()}.db", broad_scope_rows=100)
    from learning_machines.db._postgres import PostgresDb

    uri = open_bench_db("postgres", workdir).location
    return PostgresDb(uri, pool_size=4, broad_scope_rows=100)


def recall_benchmark(path: str, backends: list[str], workdir: Path, broad: bool = False) -> None:
    data = load_locomo(path)
    embedder = default_embedder()
    print(
        f"LoCoMo: {len(data.conversations)} conversations; evidence ids fixed "
        f"{data.fixed_evidence}, skipped {data.skipped_evidence}"
    )
    docs: list[tuple[str, str, str]] = []  # (user_id, ref, text)
    for conv in data.conversations:
        for e in conv.episodes:
            docs.append((conv.sample_id, str(e.ref), f"{e.speaker}: {e.text}"))
    questions = [
        (conv.sample_id, q.question, q.evidence)
        for conv in data.conversations
        for q in conv.questions
        if q.category in (1, 2, 3, 4)
    ]
    no_evidence = sum(1 for q in questions if not q[2])
    questions = [q for q in questions if q[2]]
    first = {conv.sample_id for conv in data.conversations[:3]}
    started = time.perf_counter()
    doc_vectors = embedder.embed([d[2] for d in docs])
    q_vectors = embedder.embed([q[1] for q in questions])
    print(
        f"{len(docs)} turns, {len(questions)} questions (categories 1-4; {no_evidence} without "
        f"evidence skipped); MiniLM embedding took {time.perf_counter() - started:.0f} s"
    )
    change = Change(action="create", actor={"store": "bench"})
    for backend in backends:
        db = _open(backend, workdir, broad)
        try:
            ops = [
                PutLearning(
                    learning=Learning(
                        id=f"{user}:{ref}",
                        learning_type="episode",
                        namespace=f"conv-{user}" if broad else "user",
                        user_id=user,
                        content={"ref": ref},
                        search_text=text,
                        embedding=tuple(v.tolist()),
                        embedder=embedder.name,
                    ),
                    change=change,
                )
                for (user, ref, text), v in zip(docs, doc_vectors, strict=True)
            ]
            for i in range(0, len(ops), 500):
                db.batch(ops[i : i + 500])
            if broad:
                print(f"[{backend}] broad indexes: {db.reindex()}")
            scores: dict[str, list[tuple[str, float]]] = {}
            runs: list[tuple[str, str, dict[str, Any]]] = [(m, m, {}) for m in METHODS]
            if broad:
                runs += [(f"{m} exact", m, {"exact": True}) for m in METHODS]
            else:
                runs += [(f"hybrid@{w}", "hybrid", {"keyword_weight": w}) for w in FUSION_WEIGHTS]
            timings: dict[str, list[float]] = {}
            for (user, question, evidence), v in zip(questions, q_vectors, strict=True):
                flt = (
                    LearningFilter(namespaces=(f"conv-{user}",), reader_user_id="reader")
                    if broad
                    else LearningFilter(namespaces=("user",), reader_user_id=user)
                )
                for label, method, extra in runs:
                    began = time.perf_counter()
                    hits = db.run(
                        SearchLearnings(
                            filter=flt,
                            query=question,
                            vector=tuple(v.tolist()),
                            embedder=embedder.name,
                            method=method,  # type: ignore[arg-type]
                            limit=10,
                            **extra,
                        )
                    )
                    timings.setdefault(label, []).append(time.perf_counter() - began)
                    ranked = [str(h.learning.content["ref"]) for h in hits]
                    scores.setdefault(label, []).append((user, recall_at_k(ranked, evidence, 10)))
        finally:
            db.close()
        line = ", ".join(f"{m} {statistics.fmean(s for _, s in v):.3f}" for m, v in scores.items())
        print(f"recall@10 [{backend}{' broad' if broad else ''}]: {line}")
        if broad:
            for part, name in ((True, "first 3 conversations"), (False, "last 2")):
                line = ", ".join(
                    f"{m} {statistics.fmean(s for u, s in v if (u in first) == part):.3f}"
                    for m, v in scores.items()
                )
                print(f"  {name}: {line}")
            line = ", ".join(
                f"{m} {statistics.median(t) * 1000:.1f} ms" for m, t in timings.items()
            )
            print(f"  search p50: {line}")


def latency_benchmark(sizes: list[int], backends: list[str], n: int, out: Path) -> None:
    """Run ``bench latency`` (one load per backend and size) and print its search-layer rows.

    The same run also times the full ``build_context`` and writes latency.json/md/png to
    ``out``: one measurement, printed here for the search layer alone.
    """
    result = run_latency(out_dir=out, quick=False, sizes=sizes, backends=backends, queries=n)
    e = result["query_embedding_ms"]
    print(
        "Latency: synthetic rows (vocabulary texts, random unit vectors, NOT MiniLM embeddings: "
        "too slow for 1M rows on 2 cores); 60 private rows per user, 5% shared ('global')."
    )
    print(f"query embedding (MiniLM): p50 {e['p50']:.1f} ms, p95 {e['p95']:.1f} ms")
    for row in result["recall"]:
        load = f"{row['ingest_rows_per_second']:,.0f} rows/s load"
        if row["index_build_seconds"]:
            load += f", HNSW built in {row['index_build_seconds']:,.0f} s"
        for label, p in row["search_ms"].items():
            scope = "scoped (1 user)" if label == "scoped" else "broad (global)"
            print(
                f"{row['backend']} {row['rows']:>9,} rows ({row['users']:,} users, {load}): "
                f"{scope:<16} hybrid p50 {p['p50']:7.1f} ms  p95 {p['p95']:7.1f} ms"
            )
    print(f"(build_context and ingestion figures of the same run: {out / 'latency.md'})")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="LoCoMo-format JSON (e.g. ../shared/data/locomo-dev.json)")
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="comma-separated row counts"
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--queries", type=int, default=50, help="timed queries per size")
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument(
        "--broad", action="store_true", help="recall through the broad-scope indexes vs exact"
    )
    parser.add_argument(
        "--out", default="bench-results", help="folder for the latency run's JSON/md/PNG"
    )
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    np.random.seed(0)
    with tempfile.TemporaryDirectory(prefix="lm-search-") as tmp:
        if not args.skip_recall:
            recall_benchmark(args.data, backends, Path(tmp), broad=args.broad)
        if not args.skip_latency:
            latency_benchmark(sizes, backends, args.queries, Path(args.out))


if __name__ == "__main__":
    main(sys.argv[1:])
