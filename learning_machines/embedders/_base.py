"""The embedder contract, the async helper built on it, and shared row checks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..exceptions import ValidationError

__all__ = ["Embedder", "aembed"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors; the one contract every embedder implements.

    An embedder may also define ``async def aembed(texts)`` with the same meaning as
    :meth:`embed`; the module-level :func:`aembed` uses it when present and otherwise runs
    :meth:`embed` in a worker thread.
    """

    @property
    def name(self) -> str:
        """Model and variant, stored with every vector (``"all-MiniLM-L6-v2/onnx-int8"``).

        Two embedders with the same name must give interchangeable vectors; a different name
        makes searches refuse rows embedded by the old one (``EmbedderMismatchError``).
        """
        ...

    @property
    def dimensions(self) -> int:
        """Length of every vector :meth:`embed` returns."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``: an array of shape ``(len(texts), dimensions)``, float32.

        Rows are L2-normalised (so a dot product is the cosine similarity) and in the order of
        ``texts``. An empty sequence gives shape ``(0, dimensions)``.
        """
        ...


@runtime_checkable
class _AsyncEmbedder(Protocol):
    async def aembed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


async def aembed(embedder: Embedder, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Embed ``texts`` with ``embedder`` without blocking the event loop.

    Uses the embedder's own ``aembed`` when it has one (network embedders), otherwise runs its
    synchronous :meth:`Embedder.embed` in a worker thread (local models).
    """
    if isinstance(embedder, _AsyncEmbedder):
        return await embedder.aembed(texts)
    return await asyncio.to_thread(embedder.embed, texts)


def check_texts(texts: Sequence[str]) -> list[str]:
    """Return the texts as a list, refusing a bare string (which would embed each character)."""
    if isinstance(texts, str | bytes):
        raise ValidationError(
            "embed() takes a sequence of texts, not a single string; "
            "pass [text] and take row 0 of the result."
        )
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise ValidationError(
                f"embed() takes strings; item {i} is a {type(text).__name__}. "
                "Convert it with str() first."
            )
    return items


def l2_normalize(vectors: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length, as float32; an all-zero row stays zero instead of NaN."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: npt.NDArray[np.float32] = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return result


def empty(dimensions: int) -> npt.NDArray[np.float32]:
    """Return the result of embedding no texts."""
    return np.zeros((0, dimensions), dtype=np.float32)
