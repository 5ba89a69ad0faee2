"""The embedded backend: one SQLite file (or ``":memory:"``), FTS5 keyword search, numpy vectors.

Concurrency: the file is opened in WAL mode, so readers never block the writer. Each thread gets
its own connection; every write transaction starts with ``BEGIN IMMEDIATE`` (taking the write
lock up front, so two writers never deadlock on a lock upgrade) and waits ``busy_timeout`` for
the lock, and a transaction that still finds the database locked is retried from the start.
Several processes may write the same file. ``":memory:"`` uses one shared connection and a lock.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..exceptions import BackendError, ConfigurationError, ValidationError
from . import _sqlite_curation as curation
from . import _sqlite_learnings as learnings
from . import _sqlite_partial as partial
from . import _sqlite_queue as queue
from ._base import Db
from ._id_match import match_ids_sql
from ._ops import (
    AddEvidence,
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
    LocateLearnings,
    MarkRecalled,
    MatchIds,
    Op,
    PatchContent,
    PurgeUser,
    PutHistory,
    PutLearning,
    PutProposal,
    ReleaseWork,
    SearchLearnings,
    SetEmbeddings,
    SetEvidence,
    UpdateWork,
)
from ._sqlite_broad import BROAD_SCOPE_ROWS, SideIndexes, index_directory
from ._sqlite_schema import migrate

__all__ = ["SqliteDb"]

log = logging.getLogger("learning_machines")

_Handler = Callable[[sqlite3.Connection, Any, SideIndexes], Any]

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
    AddEvidence: partial.add_evidence,
    SetEvidence: partial.set_evidence,
    LocateLearnings: partial.locate_learnings,
    PatchContent: partial.patch_content,
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
    LocateLearnings,
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
        broad_scope_rows: int = BROAD_SCOPE_ROWS,
        erase_on_forget: bool = True,
    ) -> None:
        """Open (creating if needed) the database at ``path``.

        ``busy_timeout`` is how many seconds a statement waits for another writer's lock;
        ``retries`` is how many times a transaction that still found the database locked is
        run again (with jittered backoff) before :class:`BackendError` is raised.
        ``broad_scope_rows``: a shared namespace with at least this many learnings is searched
        through a side index kept in ``<path>-lmindex/`` (see :meth:`reindex`).
        ``erase_on_forget`` runs :meth:`erase_deleted` after each forget (see there).
        """
        if broad_scope_rows < 1:
            raise ConfigurationError(f"broad_scope_rows must be at least 1, got {broad_scope_rows}")
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self.retries = retries
        self.erase_on_forget = erase_on_forget
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
        self._cache = SideIndexes(directory=index_directory(self.path), threshold=broad_scope_rows)
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
        # Zero what deletes and updates free, whatever the SQLite build's default: forgotten
        # text must not stay in free space (see erase_deleted).
        conn.execute("PRAGMA secure_delete = ON")
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
                self._cache.forget()
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
        if any(isinstance(op, (DeleteLearnings, PurgeUser)) for op in ops):
            # Deleted or forgotten learnings leave the side index files now, not later.
            try:
                self._retrying(lambda: self._read(self._cache.compact_removed))
            except BackendError as exc:
                # The delete is committed and no search returns those rows (tombstones);
                # only their words and vectors linger in the files until the next rewrite.
                log.warning(
                    "deleted learnings are gone, but rewriting the side index files failed "
                    "(%s); run `learning-machines reindex` to remove their traces",
                    exc,
                )
        return result

    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("ROLLBACK")

    def reindex(self, *, namespaces: Sequence[str] | None = None) -> dict[str, int]:
        """Rebuild the side indexes of large shared namespaces from the database.

        Every shared namespace (or those named) with at least ``broad_scope_rows`` learnings
        gets a fresh index file; a namespace below the threshold loses its file. Searches never
        need this (indexes build on first use and follow every write); run it after restoring
        a backup, to build indexes ahead of the first query, or if a file was damaged. Returns
        ``{namespace: rows indexed}`` (0: below the threshold, searched in SQL).
        """

        def rebuild(conn: sqlite3.Connection) -> dict[str, int]:
            names = namespaces
            if names is None:
                names = [
                    str(r[0])
                    for r in conn.execute(
                        "SELECT DISTINCT namespace FROM learnings WHERE namespace <> 'user'"
                    )
                ]
            return {ns: self._cache.rebuild(conn, ns) for ns in names if ns != "user"}

        out: dict[str, int] = self._retrying(lambda: self._read(rebuild))
        return out

    def erase_deleted(self) -> None:
        """Make deleted rows leave the files: checkpoint and empty the write-ahead log.

        Every connection runs with ``secure_delete`` (freed space is zeroed) and a forget merges
        the keyword index, so what remains of a deleted row is in older page images of the
        ``-wal`` file: ``wal_checkpoint(TRUNCATE)`` writes the zeroed pages back and empties it.
        A database last written by an older version (free space not zeroed) is VACUUMed once
        first. A reader that keeps the checkpoint from finishing is waited for (``busy_timeout``,
        ``retries``); :class:`BackendError` if it never finishes (run this again later). Side
        index files still holding deleted rows (their rewrite after the delete failed) are
        rewritten first.
        """
        if self._memory:
            return
        self._retrying(lambda: self._read(self._cache.compact_removed))

        def scrub() -> None:
            with self._connection() as conn:
                row = conn.execute(
                    "SELECT value FROM lm_counters WHERE name = 'unzeroed_free_space'"
                ).fetchone()
                if row is not None and row[0]:
                    # Keep VACUUM's copy of the database in memory, not in a temporary file.
                    conn.execute("PRAGMA temp_store = MEMORY")
                    conn.execute("VACUUM")
                    conn.execute(
                        "UPDATE lm_counters SET value = 0 WHERE name = 'unzeroed_free_space'"
                    )
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if busy:
                    raise sqlite3.OperationalError("database is busy: a reader held the checkpoint")

        try:
            self._retrying(scrub)
        except BackendError as exc:
            raise BackendError(
                f"The deleted rows are gone from the tables, but their bytes may still be in "
                f"{self.path}-wal: {exc} Run erase_deleted() again when no long read is open."
            ) from exc

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
