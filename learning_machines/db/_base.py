"""The backend contract: one abstract method, everything else built on it."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from ._ops import Op, check_ops

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
        """Run one operation in its own transaction and return its result."""
        check_ops([op])
        result: T = self._execute([op])[0]
        return result

    def batch(self, ops: Sequence[Op[Any]]) -> list[Any]:
        """Run several operations in one transaction: all of them apply, or none."""
        check_ops(ops)
        if not ops:
            return []
        return self._execute(list(ops))

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
