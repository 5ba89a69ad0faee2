"""The embedded backend: one SQLite file (or ``":memory:"``), FTS5 keyword search, numpy vectors.

Concurrency: the file is opened in WAL mode, so readers never block the writer. Each thread gets
its own connection; every write transaction starts with ``BEGIN IMMEDIATE`` (taking the write
lock up front, so two writers never deadlock on a lock upgrade) and waits ``busy_timeout`` for
the lock, and a transaction that still finds the database locked is retried from the start.
Several processes may write the same file. ``":memory:"`` uses one shared connection and a lock.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..exceptions import BackendError, ValidationError
from . import _sqlite_curation as curation
from . import _sqlite_learnings as learnings
from . import _sqlite_queue as queue
from ._base import Db
from ._id_match import match_ids_sql
from ._ops import (
    AppendMessage,
    ClaimWork,
    CountLearnings,
    CountWork,
    DeleteLearnings,
    EnqueueWork,
    FailWork,
    FinishWork,
    GetLearnings,
    GetMessage,
    GetProposal,
    ListEmbedders,
    ListHistory,
    ListLearnings,
    ListMessages,
    ListProposals,
    ListScopes,
    ListUserMessages,
    ListWork,
    MarkRecalled,
    MatchIds,
    Op,
    PurgeUser,
    PutHistory,
    PutLearning,
    PutProposal,
    ReleaseWork,
    SearchLearnings,
    SetEmbeddings,
    UpdateWork,
)
from ._sqlite_schema import migrate
from ._vector_index import VectorCache

__all__ = ["SqliteDb"]

_Handler = Callable[[sqlite3.Connection, Any, VectorCache], Any]

_HANDLERS: dict[type[Op[Any]], _Handler] = {
    PutLearning: learnings.put_learning,
    GetLearnings: learnings.get_learnings,
    ListLearnings: learnings.list_learnings,
    CountLearnings: learnings.count_learnings,
    SearchLearnings: learnings.search_learnings,
    DeleteLearnings: learnings.delete_learnings,
    MarkRecalled: learnings.mark_recalled,
    ListEmbedders: learnings.list_embedders,
    SetEmbeddings: learnings.set_embeddings,
    ListHistory: learnings.list_history,
    PurgeUser: learnings.purge_user,
    AppendMessage: queue.append_message,
    ListMessages: queue.list_messages,
    GetMessage: queue.get_message,
    ReleaseWork: queue.release_work,
    EnqueueWork: queue.enqueue_work,
    ClaimWork: queue.claim_work,
    FinishWork: queue.finish_work,
    FailWork: queue.fail_work,
    UpdateWork: queue.update_work,
    ListWork: queue.list_work,
    CountWork: queue.count_work,
    PutProposal: queue.put_proposal,
    GetProposal: queue.get_proposal,
    ListProposals: queue.list_proposals,
    ListScopes: curation.list_scopes,
    ListUserMessages: curation.list_user_messages,
    PutHistory: curation.put_history,
    MatchIds: lambda conn, op, cache: [
        row[0] for row in conn.execute(*match_ids_sql(op, param="?"))
    ],
}

# Operations that only read; a batch of these alone runs in a deferred (shared) transaction.
_READS: tuple[type[Op[Any]], ...] = (
    GetLearnings,
    ListLearnings,
    CountLearnings,
    SearchLearnings,
    ListEmbedders,
    ListHistory,
    ListMessages,
    GetMessage,
    ListWork,
    CountWork,
    GetProposal,
    ListProposals,
    ListScopes,
    ListUserMessages,
    MatchIds,
)


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class SqliteDb(Db):
    """Learnings in a SQLite file (or ``":memory:"``), safe for several threads and processes.

    Example::

        db = SqliteDb("learnings.db", busy_timeout=10.0)

    Opening an existing file created by an older version upgrades its schema in place.
    """

    backend_name = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str] = "learnings.db",
        *,
        busy_timeout: float = 30.0,
        retries: int = 10,
    ) -> None:
        """Open (creating if needed) the database at ``path``.

        ``busy_timeout`` is how many seconds a statement waits for another writer's lock;
        ``retries`` is how many times a transaction that still found the database locked is
        run again (with jittered backoff) before :class:`BackendError` is raised.
        """
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self.retries = retries
        self._memory = self.path in (":memory:", "")
        self._lock = threading.RLock()
        # Transactions in flight: close() waits for them (closing a connection another thread
        # is using can crash the sqlite3 module).
        self._active = 0
        self._idle = threading.Condition(self._lock)
        self._conns: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._pid = os.getpid()
        self._closed = False
        self._cache = VectorCache()
        self._shared: sqlite3.Connection | None = None
        if not self._memory:
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._retrying(lambda: migrate(self._conn()))

    def __repr__(self) -> str:
        return f"SqliteDb({self.path!r})"

    # --- connections ------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise BackendError(
                f"Could not open the SQLite database {self.path!r}: {exc}. Check that the "
                "directory exists and is writable."
            ) from exc
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        if not self._memory:
            self._retrying(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchall())
            conn.execute("PRAGMA synchronous = NORMAL")
        self._conns.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise BackendError("This SqliteDb is closed; open a new one.")
        with self._lock:
            if os.getpid() != self._pid:
                # A forked child must not use its parent's connections: start afresh.
                self._pid = os.getpid()
                self._conns, self._local, self._shared = [], threading.local(), None
                self._active = 0
                self._cache = VectorCache()
            if self._memory:
                if self._shared is None:
                    self._shared = self._open()
                return self._shared
            conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self._open()
            return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn()
            self._active += 1
        try:
            if self._memory:
                # One connection for everyone: serialise whole transactions on it.
                with self._lock:
                    yield conn
            else:
                yield conn
        finally:
            with self._lock:
                self._active -= 1
                self._idle.notify_all()

    def _retrying(self, fn: Callable[[], Any]) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except sqlite3.Error as exc:
                if _is_busy(exc) and attempt < self.retries:
                    time.sleep(min(1.0, 0.01 * 2**attempt) * (0.5 + random.random()))
                    continue
                if isinstance(exc, sqlite3.IntegrityError):
                    raise ValidationError(
                        f"{exc}: a row with this id (or unique key) already exists. Use a new id, "
                        "or the Put… operation that replaces rows. Nothing was written."
                    ) from exc
                raise BackendError(
                    f"SQLite failed on {self.path!r}: {exc}. "
                    + (
                        f"The database stayed locked through {self.retries} retries; another "
                        "process holds a long write transaction. Retry later or raise "
                        "busy_timeout."
                        if _is_busy(exc)
                        else "Nothing was written."
                    )
                ) from exc
        raise AssertionError("unreachable")

    # --- the contract -----------------------------------------------------------------------

    def _execute(self, ops: Sequence[Op[Any]]) -> list[Any]:
        """Run ``ops`` in one transaction (``BEGIN IMMEDIATE`` when any op writes)."""
        handlers = []
        for op in ops:
            handler = _HANDLERS.get(type(op))
            if handler is None:
                raise TypeError(f"SqliteDb does not know the operation {type(op).__name__}")
            handlers.append(handler)
        begin = "BEGIN" if all(isinstance(op, _READS) for op in ops) else "BEGIN IMMEDIATE"

        def transaction() -> list[Any]:
            with self._connection() as conn:
                conn.execute(begin)
                try:
                    results = [
                        h(conn, op, self._cache) for h, op in zip(handlers, ops, strict=True)
                    ]
                    conn.execute("COMMIT")
                except BaseException as exc:
                    if conn.in_transaction:
                        try:
                            conn.execute("ROLLBACK")
                        except sqlite3.Error as rollback_error:
                            exc.add_note(f"rollback also failed: {rollback_error}")
                    raise
                return results

        result: list[Any] = self._retrying(transaction)
        return result

    def close(self) -> None:
        """Close every connection this object opened (in this process)."""
        with self._lock:
            self._closed = True
            self._idle.wait_for(lambda: self._active == 0, timeout=60)
            if os.getpid() == self._pid:
                for conn in self._conns:
                    conn.close()
            self._conns = []
            self._shared = None
            self._local = threading.local()
