"""Embedding calls made at the same time, answered by one model call; recent texts remembered.

A local model embeds eight short texts in about the time of three single calls. While one call
is in flight, :class:`BatchingEmbedder` queues the texts other tasks ask for and embeds them
together as soon as it returns: a lone call is never delayed, and many concurrent writes (a
worker applying several turns) share model calls.

It also remembers the vectors of the texts it embedded last (4,096 by default, about 6 MB at
384 dimensions): a worker embeds the same texts again and again (an entity's name, a fact the
model extracts from every turn that mentions it), and a vector costs milliseconds of model time
where a look-up costs microseconds.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..exceptions import ConfigurationError
from ._base import Embedder, aembed, check_texts, empty

__all__ = ["BatchingEmbedder"]


@dataclass
class _Queue:
    waiting: list[tuple[list[str], asyncio.Future[npt.NDArray[np.float32]]]] = field(
        default_factory=list
    )
    busy: bool = False
    task: asyncio.Task[None] | None = None


class BatchingEmbedder:
    """Wraps an embedder; concurrent async calls share model calls, recent texts are remembered.

    Same ``name``, ``dimensions`` and results as the wrapped embedder. ``max_texts`` bounds one
    combined call. ``cache_size`` texts (the most recently used) keep their vectors, so a text
    asked for again is not embedded again; ``0`` turns that off (for an embedder whose vectors
    for one text may change).
    """

    def __init__(self, inner: Embedder, *, max_texts: int = 64, cache_size: int = 4096) -> None:
        if cache_size < 0:
            raise ConfigurationError(
                f"BatchingEmbedder(cache_size={cache_size!r}): must be >= 0 (0 turns it off)."
            )
        self.inner = inner
        self.max_texts = max_texts
        self.cache_size = cache_size
        self._cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._cache_lock = threading.Lock()
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
        """Embed ``texts`` now (sync callers are not batched; remembered texts are reused)."""
        texts = check_texts(texts)
        known, missing = self._recall(texts)
        if missing:
            known.update(self._remember(missing, self.inner.embed(missing)))
        return self._stack(texts, known)

    async def aembed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``, together with whatever else is asked for meanwhile."""
        texts = check_texts(texts)
        known, missing = self._recall(texts)
        if missing:
            known.update(self._remember(missing, await self._queued(missing)))
        return self._stack(texts, known)

    def _recall(self, texts: list[str]) -> tuple[dict[str, npt.NDArray[np.float32]], list[str]]:
        """Remembered vectors of ``texts``, and the distinct texts still to embed."""
        known: dict[str, npt.NDArray[np.float32]] = {}
        with self._cache_lock:
            for text in texts:
                if text in self._cache:
                    known[text] = self._cache[text]
                    self._cache.move_to_end(text)
        return known, list(dict.fromkeys(t for t in texts if t not in known))

    def _remember(
        self, texts: list[str], vectors: npt.NDArray[np.float32]
    ) -> dict[str, npt.NDArray[np.float32]]:
        rows: dict[str, npt.NDArray[np.float32]] = {}
        for text, vector in zip(texts, vectors, strict=True):
            row = np.array(vector, dtype=np.float32)
            row.flags.writeable = False
            rows[text] = row
        if self.cache_size:
            with self._cache_lock:
                self._cache.update(rows)
                for text in rows:
                    self._cache.move_to_end(text)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return rows

    def _stack(
        self, texts: list[str], vectors: dict[str, npt.NDArray[np.float32]]
    ) -> npt.NDArray[np.float32]:
        if not texts:
            return empty(self.dimensions)
        return np.stack([vectors[text] for text in texts])

    @property
    def cached_texts(self) -> int:
        """How many texts have a remembered vector."""
        with self._cache_lock:
            return len(self._cache)

    def clear(self) -> None:
        """Forget every remembered text and vector (a forgotten user's words leave memory)."""
        with self._cache_lock:
            self._cache.clear()

    async def _queued(self, texts: list[str]) -> npt.NDArray[np.float32]:
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
