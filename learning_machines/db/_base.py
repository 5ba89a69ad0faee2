"""The backend contract: one abstract method, everything else built on it."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from ._clean import clean_ops
from ._ops import Op, PurgeUser

__all__ = ["Db"]

T = TypeVar("T")


class Db(ABC):
    """Where learnings live. Subclasses: :class:`SqliteDb`, :class:`PostgresDb`.

    A backend implements :meth:`_execute` (run operations in one transaction) and :meth:`close`.
    Everything a store needs is an :class:`~learning_machines.db.Op` passed to :meth:`run` or
    :meth:`batch`; async callers use :meth:`arun` / :meth:`abatch`, which run the same code in a
    worker thread so the event loop never blocks.

    Example::

        db = SqliteDb("learnings.db")
        db.run(PutLearning(learning=Learning(learning_type="note", search_text="hi"),
                           change=Change(action="create")))
    """

    #: Short name of the backend, e.g. ``"sqlite"``.
    backend_name: str = "db"
    #: Run :meth:`erase_deleted` after every :class:`PurgeUser` (forget), so the forgotten user's
    #: text leaves the database files at once. Backends take it as ``erase_on_forget=...``.
    erase_on_forget: bool = True

    @abstractmethod
    def _execute(self, ops: Sequence[Op[Any]]) -> list[Any]:
        """Run ``ops`` in order inside one transaction and return their results.

        If any op raises, the whole transaction is rolled back and the error propagates.
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections and files. The object must not be used afterwards."""

    def reindex(self, *, namespaces: Sequence[str] | None = None) -> dict[str, int]:
        """Rebuild the search indexes of large shared namespaces; ``{namespace: rows}``.

        A backend without such indexes has nothing to rebuild and returns ``{}``.
        """
        return {}

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return bool(getattr(self, "_closed", False))

    def run(self, op: Op[T]) -> T:
        """Run one operation in its own transaction and return its result.

        Values are made storable first, the same way on every backend (NUL removed from text,
        times in UTC, sizes checked; see ``learning_machines.db._clean``): a value that cannot
        be stored raises :class:`~learning_machines.exceptions.ValidationError` before anything
        is written.
        """
        result: T = self.batch([op])[0]
        return result

    def batch(self, ops: Sequence[Op[Any]]) -> list[Any]:
        """Run several operations in one transaction: all of them apply, or none.

        After a :class:`PurgeUser` commits, :meth:`erase_deleted` runs (unless
        ``erase_on_forget=False``).
        """
        cleaned = clean_ops(ops)
        if not cleaned:
            return []
        results = self._execute(cleaned)
        if self.erase_on_forget and any(isinstance(op, PurgeUser) for op in cleaned):
            self.erase_deleted()
        return results

    def erase_deleted(self) -> None:  # noqa: B027 - optional: only backends with files need it
        """Make deleted and overwritten rows leave the database's files, not only its tables.

        Deleting a row hides it; its bytes stay in free space, a write-ahead log or dead tuples
        until they are overwritten. Forgetting a user runs this after the deletion commits
        (``erase_on_forget``); call it yourself after turning that off, e.g. in a maintenance
        window. What each backend guarantees, and what it cannot (filesystem blocks, backups,
        PostgreSQL's WAL), is in ``docs/curation.md``. Raises
        :class:`~learning_machines.exceptions.BackendError` if it could not finish; the rows
        stay deleted and it can be run again. The base implementation does nothing.
        """

    async def arun(self, op: Op[T]) -> T:
        """Async :meth:`run`: the same work in a worker thread."""
        return await asyncio.to_thread(self.run, op)

    async def abatch(self, ops: Sequence[Op[Any]]) -> list[Any]:
        """Async :meth:`batch`: the same work in a worker thread."""
        return await asyncio.to_thread(self.batch, ops)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
