"""Embedding calls made at the same time, answered by one model call.

A local model embeds eight short texts in about the time of three single calls. While one call
is in flight, :class:`BatchingEmbedder` queues the texts other tasks ask for and embeds them
together as soon as it returns: a lone call is never delayed, and many concurrent writes (a
worker applying several turns) share model calls.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ._base import Embedder, aembed

__all__ = ["BatchingEmbedder"]


@dataclass
class _Queue:
    waiting: list[tuple[list[str], asyncio.Future[npt.NDArray[np.float32]]]] = field(
        default_factory=list
    )
    busy: bool = False
    task: asyncio.Task[None] | None = None


class BatchingEmbedder:
    """Wraps an embedder; concurrent async calls on one event loop share model calls.

    Same ``name``, ``dimensions`` and results as the wrapped embedder (``embed`` is passed
    straight through). ``max_texts`` bounds one combined call.
    """

    def __init__(self, inner: Embedder, *, max_texts: int = 64) -> None:
        self.inner = inner
        self.max_texts = max_texts
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def name(self) -> str:
        """The wrapped embedder's name."""
        return self.inner.name

    @property
    def dimensions(self) -> int:
        """The wrapped embedder's dimensions."""
        return self.inner.dimensions

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` now (sync callers are not batched)."""
        return self.inner.embed(texts)

    async def aembed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``, together with whatever else is asked for meanwhile."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        future: asyncio.Future[npt.NDArray[np.float32]] = loop.create_future()
        queue.waiting.append((list(texts), future))
        if not queue.busy:
            queue.busy = True
            queue.task = loop.create_task(self._drain(queue))
        return await future

    async def _drain(self, queue: _Queue) -> None:
        try:
            while queue.waiting:
                batch: list[tuple[list[str], asyncio.Future[npt.NDArray[np.float32]]]] = []
                count = 0
                while queue.waiting and (
                    not batch or count + len(queue.waiting[0][0]) <= (self.max_texts)
                ):
                    item = queue.waiting.pop(0)
                    batch.append(item)
                    count += len(item[0])
                texts = [text for item, _ in batch for text in item]
                try:
                    vectors = await aembed(self.inner, texts)
                except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for asked, future in batch:
                    if not future.done():
                        future.set_result(vectors[start : start + len(asked)])
                    start += len(asked)
        finally:
            queue.busy = False
