"""The PostgreSQL backend: full-text search, pgvector, and a queue many workers can share.

``pip install "learning-machines[postgres]"``; the server needs the ``vector`` extension
(pgvector). The schema is created, or upgraded, when the backend opens the database.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..exceptions import BackendError, ConfigurationError, ValidationError
from ._base import Db
from ._ops import Op
from ._postgres_broad import (
    BROAD_SCOPE_ROWS,
    BroadState,
    create_broad_vector_indexes,
    drop_broad_vector_indexes,
)
from ._postgres_broad import reindex as reindex_broad
from ._postgres_ops import OpContext, run_ops
from ._postgres_schema import migrate
from ._postgres_search import create_vector_indexes, drop_vector_indexes

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresDb"]

_INSTALL_HINT = 'PostgresDb needs psycopg 3: pip install "learning-machines[postgres]"'
# SQLSTATEs worth retrying: the whole transaction is re-run from the start.
_RETRYABLE = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE
# Every table PurgeUser deletes from or rewrites rows of (``lm_postings``: the trigger on
# ``learnings`` deletes a forgotten row's words from the postings of a broad namespace).
_ERASED_TABLES = (
    "learnings",
    "learning_history",
    "messages",
    "pending_work",
    "proposals",
    "lm_postings",
)


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(_INSTALL_HINT) from exc
    return psycopg


class _Pool:
    """A small thread-safe pool of autocommit connections (transactions are opened per use)."""

    def __init__(
        self, conninfo: str, *, max_size: int, timeout: float, connect_timeout: float
    ) -> None:
        self._conninfo = conninfo
        self._max_size = max_size
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._cond = threading.Condition()
        self._idle: list[psycopg.Connection[dict[str, Any]]] = []
        self._size = 0
        self._pid = os.getpid()
        self._closed = False

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        pg = _import_psycopg()
        from psycopg.rows import dict_row

        conn: psycopg.Connection[dict[str, Any]] = pg.connect(
            self._conninfo,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=max(1, int(self._connect_timeout)),
        )
        conn.execute("SET TIME ZONE 'UTC'")
        # psycopg prepares a statement after its fifth run, and PostgreSQL then plans it once for
        # any parameters. Generic plans ignore the namespace literal a partial index is matched
        # by (see _postgres_broad), and a scoped search lost the user's selectivity and scanned
        # by keyword or count over the whole table (one user's decision-log recall: 69 ms p50 at
        # 20k rows, 205 ms at 100k). Plan every run for its own parameters (5 ms at 20k).
        conn.execute("SET plan_cache_mode = force_custom_plan")
        return conn

    def acquire(self) -> psycopg.Connection[dict[str, Any]]:
        """Return a connection for this thread alone; give it back with :meth:`release`."""
        deadline = time.monotonic() + self._timeout
        with self._cond:
            if self._pid != os.getpid():
                # Forked: the parent's sockets are not ours to use (or to close).
                self._idle, self._size, self._pid = [], 0, os.getpid()
            while True:
                if self._closed:
                    raise BackendError("This PostgresDb is closed; create a new one.")
                while self._idle:
                    conn = self._idle.pop()
                    if not conn.closed and not conn.broken:
                        return conn
                    self._size -= 1
                if self._size < self._max_size:
                    self._size += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BackendError(
                        f"No PostgreSQL connection free after {self._timeout:.0f} s (pool_size="
                        f"{self._max_size}); raise pool_size=... or finish long transactions."
                    )
                self._cond.wait(left)
        try:
            return self._connect()
        except BaseException:
            with self._cond:
                self._size -= 1
                self._cond.notify()
            raise

    def release(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        """Give a connection back (a broken one is dropped)."""
        with self._cond:
            # A connection not back to idle (interrupted mid-statement) is not reused.
            idle = not conn.closed and conn.info.transaction_status == _IDLE
            if not idle or conn.broken or self._closed or self._pid != os.getpid():
                if self._pid == os.getpid():
                    self._size -= 1
                conn.close()
            else:
                self._idle.append(conn)
            self._cond.notify()

    def close(self) -> None:
        """Close every idle connection; connections in use close when released."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for conn in idle:
            conn.close()


def _check_memory(setting: str) -> None:
    if not re.fullmatch(r"\d+\s*(kB|MB|GB|TB)?", setting.strip()):
        raise ConfigurationError(
            f"maintenance_work_mem must look like '512MB' or '2GB', got {setting!r}"
        )


class PostgresDb(Db):
    """Learnings in PostgreSQL, with keyword search (tsvector) and vector search (pgvector).

    Thread-safe: each call takes a connection from a pool. Several processes (or machines) may
    share one database; pending work is claimed with ``FOR UPDATE SKIP LOCKED``.

    Example::

        db = PostgresDb("postgresql://user:pass@localhost/learning", pool_size=10)
    """

    backend_name = "postgres"

    def __init__(
        self,
        conninfo: str,
        *,
        pool_size: int = 10,
        pool_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        retries: int = 3,
        migrate: bool = True,
        broad_scope_rows: int = BROAD_SCOPE_ROWS,
        erase_on_forget: bool = True,
    ) -> None:
        """Connect to ``conninfo`` (a ``postgresql://`` URI or ``key=value`` string).

        ``pool_size`` caps open connections; ``pool_timeout`` is how long a call waits for one;
        ``retries`` is how often a transaction that hit a serialization failure or deadlock is
        re-run; ``migrate=False`` skips creating/upgrading the schema (it must be current).
        ``broad_scope_rows``: :meth:`reindex` gives a shared namespace with at least this many
        learnings its own keyword postings and HNSW index.
        ``erase_on_forget`` runs :meth:`erase_deleted` (``VACUUM FULL``) after each forget.
        """
        psycopg = _import_psycopg()
        if pool_size < 1:
            raise ConfigurationError(f"pool_size must be at least 1, got {pool_size}")
        if retries < 0:
            raise ConfigurationError(f"retries must be 0 or more, got {retries}")
        self._psycopg = psycopg
        self._retries = retries
        self.erase_on_forget = erase_on_forget
        self._known_indexes: set[tuple[str, int]] = set()
        self._iterative_scan = True
        self._bulk_loads = 0
        self._bulk_lock = threading.Lock()
        if broad_scope_rows < 1:
            raise ConfigurationError(f"broad_scope_rows must be at least 1, got {broad_scope_rows}")
        self._broad = BroadState(threshold=broad_scope_rows)
        self._pool = _Pool(
            conninfo, max_size=pool_size, timeout=pool_timeout, connect_timeout=connect_timeout
        )
        try:
            if migrate:
                self._migrate()
            self._iterative_scan = self._pgvector_version() >= (0, 8)
        except BaseException:
            self._pool.close()
            raise

    def _migrate(self) -> None:
        try:
            conn = self._pool.acquire()
        except self._psycopg.Error as exc:
            raise BackendError(f"Could not connect to PostgreSQL: {exc}") from exc
        try:
            migrate(conn)
        except self._psycopg.errors.FeatureNotSupported as exc:
            raise ConfigurationError(
                f"PostgreSQL lacks something PostgresDb needs: {exc}. Install pgvector "
                "(https://github.com/pgvector/pgvector) on the server."
            ) from exc
        except self._psycopg.Error as exc:
            if "vector" in str(exc) and "extension" in str(exc):
                raise ConfigurationError(
                    "The PostgreSQL server has no pgvector extension: install it "
                    "(https://github.com/pgvector/pgvector), or run CREATE EXTENSION vector as a "
                    f"superuser. ({exc})"
                ) from exc
            raise BackendError(f"Could not create the schema: {exc}") from exc
        finally:
            self._pool.release(conn)

    def _pgvector_version(self) -> tuple[int, ...]:
        with self._admin() as conn:
            row = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()
        if row is None:
            raise ConfigurationError(
                "The database has no pgvector extension: run CREATE EXTENSION vector as a "
                "superuser (https://github.com/pgvector/pgvector), or open it with migrate=True."
            )
        return tuple(int(p) for p in re.findall(r"\d+", str(row["extversion"]))[:3])

    def _execute(self, ops: Sequence[Op[Any]]) -> list[Any]:
        for attempt in range(self._retries + 1):
            try:
                conn = self._pool.acquire()
            except self._psycopg.Error as exc:
                raise BackendError(f"Could not connect to PostgreSQL: {exc}") from exc
            try:
                return self._transaction(conn, ops)
            except self._psycopg.Error as exc:
                if exc.sqlstate in _RETRYABLE and attempt < self._retries:
                    time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
                    continue
                if isinstance(exc, self._psycopg.errors.UniqueViolation):
                    # As on SQLite: a duplicate id is the caller's mistake, not a db failure.
                    raise ValidationError(
                        f"{exc}: a row with this id (or unique key) already exists. Use a new "
                        "id, or the Put… operation that replaces rows. Nothing was written."
                    ) from exc
                raise BackendError(
                    f"PostgreSQL failed ({type(exc).__name__}): {exc}. Nothing was written; "
                    "the transaction was rolled back."
                ) from exc
            finally:
                self._pool.release(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(
        self, conn: psycopg.Connection[dict[str, Any]], ops: Sequence[Op[Any]]
    ) -> list[Any]:
        known = set(self._known_indexes)
        with conn.transaction(), conn.cursor() as cur:
            ctx = OpContext(
                cur,
                known,
                iterative_scan=self._iterative_scan,
                defer_indexes=self._bulk_loads > 0,
                broad=self._broad,
            )
            results = run_ops(ctx, ops)
        # Only indexes seen in committed data are remembered.
        self._known_indexes |= known
        return results

    @contextmanager
    def bulk_load(self, *, maintenance_work_mem: str = "1GB") -> Iterator[None]:
        """Write many learnings fast: HNSW indexes are dropped now and rebuilt at the end.

        Inserting into an HNSW graph costs milliseconds per vector, so loading a large export
        (or a benchmark's million rows) row by row into an indexed table takes hours; building
        the index once afterwards takes minutes. While the block runs, searches through any
        connection stay correct but are exact (slower); writes of this ``PostgresDb`` create no
        new HNSW index. On leaving the block, even by an exception, every registered index that
        is missing is built, with ``maintenance_work_mem`` for the build (pgvector builds much
        faster when the graph fits in it), and the tables written are vacuumed and analysed (a
        role that does not own them gets a server warning and the step is skipped).

        Example::

            with db.bulk_load():
                for chunk in chunks:
                    db.batch([PutLearning(learning=x, change=change) for x in chunk])
        """
        _check_memory(maintenance_work_mem)
        with self._admin() as conn, conn.transaction():
            drop_vector_indexes(conn.cursor())
            drop_broad_vector_indexes(conn.cursor())
        with self._bulk_lock:
            self._bulk_loads += 1
        try:
            yield
        finally:
            with self._bulk_lock:
                self._bulk_loads -= 1
                last = self._bulk_loads == 0
            if last:
                self.create_vector_indexes(maintenance_work_mem=maintenance_work_mem)
                # What autovacuum would do minutes later, while the first searches run: mark
                # the loaded pages all-visible and give the planner statistics of the import.
                with self._admin() as conn:
                    conn.execute(b"VACUUM (ANALYZE) learnings, learning_history")

    def create_vector_indexes(self, *, maintenance_work_mem: str | None = None) -> list[str]:
        """Build every registered HNSW index that is missing; return the names built.

        :meth:`bulk_load` calls this when it ends; call it yourself if a bulk load was killed
        before it could (until then vector searches are exact, hence slower, but correct).
        """
        with self._admin() as conn, conn.transaction():
            cur = conn.cursor()
            if maintenance_work_mem is not None:
                _check_memory(maintenance_work_mem)
                cur.execute(
                    "SELECT set_config('maintenance_work_mem', %s, true)",
                    (maintenance_work_mem.strip(),),
                )
            return create_vector_indexes(cur) + create_broad_vector_indexes(cur)

    def reindex(
        self, *, namespaces: Sequence[str] | None = None, maintenance_work_mem: str = "1GB"
    ) -> dict[str, int]:
        """Give large shared namespaces their own indexes (or rebuild them); drop small ones'.

        Every shared namespace (or those named) with at least ``broad_scope_rows`` learnings gets
        BM25 postings (kept current by a trigger from then on) and a partial HNSW index per
        embedder; writes wait while it runs. Run it after a large import (``bulk_load`` does),
        or when a namespace has grown past the threshold: until then that namespace is searched
        correctly but slowly. Returns ``{namespace: rows}`` (0: below the threshold).
        """
        _check_memory(maintenance_work_mem)
        with self._admin() as conn, conn.transaction():
            cur = conn.cursor()
            cur.execute(
                "SELECT set_config('maintenance_work_mem', %s, true)",
                (maintenance_work_mem.strip(),),
            )
            done = reindex_broad(
                cur,
                threshold=self._broad.threshold,
                namespaces=None if namespaces is None else list(namespaces),
                build_vectors=self._bulk_loads == 0,
            )
        # Mark the new postings visible to every transaction (index-only scans need that) and
        # give the planner statistics of what was loaded. Outside the transaction: VACUUM can
        # run in none. A role that does not own the tables gets a server WARNING and a skip.
        with self._admin() as conn:
            conn.execute(b"VACUUM (ANALYZE) lm_postings")
        self._broad.forget()
        return done

    def erase_deleted(self) -> None:
        """Rewrite the tables a forget touches, so deleted rows leave their files: VACUUM FULL.

        A plain VACUUM marks dead tuples' space free but leaves their bytes in the pages
        (measured: 512 of 549 copies of a forgotten user's text were still in the table files);
        ``VACUUM FULL`` writes each table and its indexes anew and deletes the old files. It holds
        an exclusive lock on each table while it runs (reads and writes of that table wait; the
        HNSW index of ``learnings`` is rebuilt): on a large database turn ``erase_on_forget``
        off and run this in a maintenance window. A lock not granted within a minute raises
        :class:`BackendError` rather than stall every other query behind it.

        The planner's statistics sample column values (text included) whenever a table is
        analyzed (by :meth:`reindex` or autovacuum): each table is analyzed again from the rows
        left, and ``pg_statistic`` rewritten so the old samples leave its file too.
        """
        with self._admin() as conn:
            try:
                conn.execute("SET lock_timeout = '60s'")
                for table in _ERASED_TABLES:
                    conn.execute(f"VACUUM (FULL, ANALYZE) {table}".encode())
                conn.execute("VACUUM (FULL) pg_statistic")
            except self._psycopg.Error as exc:
                raise BackendError(
                    f"The deleted rows are gone from the tables, but VACUUM FULL failed ({exc}), "
                    "so their bytes may remain in the table files. Run erase_deleted() again "
                    "when no long transaction holds these tables."
                ) from exc
            finally:
                if not (conn.closed or conn.broken):
                    conn.execute("RESET lock_timeout")

    @contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            conn = self._pool.acquire()
        except self._psycopg.Error as exc:
            raise BackendError(f"Could not connect to PostgreSQL: {exc}") from exc
        try:
            yield conn
        except self._psycopg.Error as exc:
            raise BackendError(f"PostgreSQL failed ({type(exc).__name__}): {exc}") from exc
        finally:
            self._pool.release(conn)

    def close(self) -> None:
        """Close the pooled connections."""
        self._closed = True
        self._pool.close()
