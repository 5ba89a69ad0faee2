"""LangGraph store latency: ``LearningMachinesStore`` operations on a filled database.

    python benchmarks/langgraph_store.py [--db URL] [--users 100] [--items 200] [--ops 200]

Fills the store with ``--users`` user namespaces of ``--items`` memories each (private rows)
and as many items in one shared namespace, then times ``--ops`` of each operation: ``put``
(an update), ``get``, a search of one user's memories by query (read and ranked row by row:
the user namespace is checked per row), a search of the shared namespace without a query
(paged by the database) and one with a query. HashEmbedder (no model), so the figures are the
store's and the db's own. ``--db`` is a SQLite file (default: a temporary one) or a
``postgresql://`` URI.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from learning_machines.adapters.langgraph_store import LearningMachinesStore
from learning_machines.db import Db, PostgresDb, SqliteDb
from learning_machines.embedders import HashEmbedder

WORDS = [
    "tea",
    "coffee",
    "oslo",
    "paris",
    "python",
    "rust",
    "music",
    "chess",
    "hiking",
    "sailing",
    "jazz",
    "piano",
]


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(8))


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[round(q / 100 * (len(ordered) - 1))] * 1000


def _time(ops: int, call: Callable[[int], Any]) -> dict[str, float]:
    took = []
    for i in range(ops):
        started = time.perf_counter()
        call(i)
        took.append(time.perf_counter() - started)
    return {"p50": round(_ms(took, 50), 2), "p95": round(_ms(took, 95), 2)}


def measure(db: Db, *, users: int, items: int, ops: int) -> dict[str, Any]:
    rng = random.Random(7)
    store = LearningMachinesStore(db, embedder=HashEmbedder(), fields=("text",))
    for u in range(users):
        store.batch(_puts(("user", f"u{u}", "memories"), items, rng))
    store.batch(_puts(("docs",), users * items, rng))
    user = ("user", "u0", "memories")
    return {
        "rows": 2 * users * items,
        "put": _time(ops, lambda i: store.put(user, f"k{i % items}", {"text": _text(rng)})),
        "get": _time(ops, lambda i: store.get(user, f"k{i % items}")),
        "search user, query": _time(ops, lambda i: store.search(user, query=rng.choice(WORDS))),
        "search shared, no query": _time(ops, lambda i: store.search(("docs",), offset=i)),
        "search shared, query": _time(ops, lambda i: store.search(("docs",), query="jazz piano")),
    }


def _puts(namespace: tuple[str, ...], n: int, rng: random.Random) -> list[Any]:
    from langgraph.store.base import PutOp

    return [PutOp(namespace, f"k{i}", {"text": _text(rng)}) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--ops", type=int, default=200)
    args = parser.parse_args()
    url = args.db or str(Path(tempfile.mkdtemp()) / "store.db")
    db: Db = PostgresDb(url) if url.startswith(("postgres://", "postgresql://")) else SqliteDb(url)
    try:
        result = measure(db, users=args.users, items=args.items, ops=args.ops)
    finally:
        db.close()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
