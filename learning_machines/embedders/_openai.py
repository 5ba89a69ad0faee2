"""Embeddings from any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, LM Studio and others)."""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..exceptions import ConfigurationError, ModelError
from ._base import check_texts, empty, l2_normalize

__all__ = ["OpenAIEmbedder"]

#: Native sizes of OpenAI's models; other models' sizes are learned from the first response.
_KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_INSTALL = 'pip install "learning-machines[openai]"'


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint.

    ::

        OpenAIEmbedder()  # OpenAI, key from $OPENAI_API_KEY
        OpenAIEmbedder("nomic-embed-text", base_url="http://localhost:11434/v1")  # Ollama

    Needs the ``openai`` package: ``pip install "learning-machines[openai]"``. Vectors are
    normalised here, whatever the server returns. Failures (after the SDK's retries) raise
    :class:`~learning_machines.exceptions.ModelError`.

    Args:
        model: The embedding model's name on that endpoint.
        base_url: The endpoint, ending in ``/v1``; defaults to ``$OPENAI_BASE_URL``, then OpenAI.
        api_key: Defaults to ``$OPENAI_API_KEY``. Local servers that need none get a
            placeholder when ``base_url`` is given.
        dimensions: Ask the model for shorter vectors (``text-embedding-3-*`` only). Without
            it, the size of an unknown model is learned from the first response.
        batch_size: Texts per request.
        max_retries: Retries of the SDK on rate limits, 5xx and connection errors.
        timeout: Seconds per request.

    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dimensions: int | None = None,
        batch_size: int = 128,
        max_retries: int = 2,
        timeout: float = 60.0,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ConfigurationError(
                f"OpenAIEmbedder needs the openai package. Install it with: {_INSTALL}"
            ) from exc
        if not model:
            raise ConfigurationError("OpenAIEmbedder(model=...): give the model's name.")
        if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
            raise ConfigurationError(f"OpenAIEmbedder(dimensions={dimensions!r}): must be >= 1.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"OpenAIEmbedder(batch_size={batch_size!r}): must be >= 1.")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if api_key is None:
            if base_url is None:
                raise ConfigurationError(
                    "OpenAIEmbedder needs an API key: set OPENAI_API_KEY or pass api_key=..., "
                    "or pass base_url= for a local server that needs none."
                )
            api_key = "unused"  # Ollama, vLLM and LM Studio ignore it, but the SDK wants one.
        self._model = model
        self._requested = dimensions
        self._dimensions = dimensions or _KNOWN_DIMENSIONS.get(model)
        self._batch_size = batch_size
        self._base_url = base_url
        self._client_options: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "max_retries": max_retries,
            "timeout": timeout,
        }
        self._openai = openai
        self._lock = threading.Lock()
        self._client: Any = None
        # An async client holds connections bound to one event loop, so keep one per loop.
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        where = f", base_url={self._base_url!r}" if self._base_url else ""
        size = f", dimensions={self._requested}" if self._requested else ""
        return f"OpenAIEmbedder({self._model!r}{where}{size})"

    @property
    def name(self) -> str:
        """``"openai:<model>"``, plus ``"/<dimensions>"`` when shortened vectors were asked for."""
        native = _KNOWN_DIMENSIONS.get(self._model)
        if self._requested is not None and self._requested != native:
            return f"openai:{self._model}/{self._requested}"
        return f"openai:{self._model}"

    @property
    def dimensions(self) -> int:
        """Vector size; for a model not known in advance, one request is made to learn it."""
        if self._dimensions is None:
            self.embed(["dimensions"])
        assert self._dimensions is not None
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` with blocking requests; see :meth:`aembed` in async code."""
        items = check_texts(texts)
        if not items:
            return empty(self.dimensions)
        client = self._sync_client()
        parts = []
        for batch in _batches(items, self._batch_size):
            try:
                response = client.embeddings.create(**self._params(batch))
            except self._openai.OpenAIError as exc:
                raise self._error(exc) from exc
            parts.append(self._vectors(response, len(batch)))
        return np.concatenate(parts)

    async def aembed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` without blocking the event loop; batches are sent concurrently."""
        items = check_texts(texts)
        if not items:
            if self._dimensions is None:
                await self.aembed(["dimensions"])
            assert self._dimensions is not None
            return empty(self._dimensions)
        client = self._async_client()

        async def one(batch: list[str]) -> npt.NDArray[np.float32]:
            try:
                response = await client.embeddings.create(**self._params(batch))
            except self._openai.OpenAIError as exc:
                raise self._error(exc) from exc
            return self._vectors(response, len(batch))

        parts = await asyncio.gather(*(one(b) for b in _batches(items, self._batch_size)))
        return np.concatenate(parts)

    def _sync_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._openai.OpenAI(**self._client_options)
            return self._client

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._openai.AsyncOpenAI(**self._client_options)
            self._async_clients[loop] = client
        return client

    def _params(self, batch: list[str]) -> dict[str, Any]:
        # "float" rather than the SDK's default base64: every compatible server supports it.
        params: dict[str, Any] = {"input": batch, "model": self._model, "encoding_format": "float"}
        if self._requested is not None:
            params["dimensions"] = self._requested
        return params

    def _vectors(self, response: Any, expected: int) -> npt.NDArray[np.float32]:
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != expected:
            raise ModelError(
                f"The embeddings endpoint returned {len(data)} vectors for {expected} texts "
                f"(model {self._model!r}); the server is not OpenAI-compatible enough."
            )
        try:
            vectors = np.asarray([item.embedding for item in data], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelError(
                f"The embeddings endpoint returned vectors of unequal or non-numeric form "
                f"(model {self._model!r})."
            ) from exc
        size = vectors.shape[1] if vectors.ndim == 2 else 0
        if size == 0:
            raise ModelError(f"The embeddings endpoint returned empty vectors ({self._model!r}).")
        if self._dimensions is None:
            self._dimensions = size
        elif size != self._dimensions:
            raise ModelError(
                f"Model {self._model!r} returned {size}-dimension vectors, expected "
                f"{self._dimensions}. Pass the right dimensions= (or none), or check the model."
            )
        return l2_normalize(vectors)

    def _error(self, exc: Exception) -> ModelError:
        errors = self._openai
        where = self._base_url or "the OpenAI API"
        if isinstance(exc, errors.AuthenticationError):
            hint = "the API key was refused; set OPENAI_API_KEY or pass api_key=."
        elif isinstance(exc, errors.NotFoundError):
            hint = (
                f"model {self._model!r} or the /embeddings route was not found; check the model "
                "name (for Ollama, `ollama pull` it) and that base_url ends in /v1."
            )
        elif isinstance(exc, errors.APIConnectionError):
            hint = "could not connect; check base_url and that the server is running."
        elif isinstance(exc, errors.RateLimitError):
            hint = "rate limited after retries; lower batch_size or raise max_retries."
        elif isinstance(exc, errors.BadRequestError):
            hint = "the request was refused; a text may be too long for the model."
        else:
            hint = "the embeddings request failed."
        return ModelError(f"Embedding with {self._model!r} at {where}: {hint} ({exc})")


def _batches(items: list[str], size: int) -> list[list[str]]:
    # The OpenAI API refuses empty strings; a space embeds to the same "nothing" everywhere.
    cleaned = [text if text.strip() else " " for text in items]
    return [cleaned[i : i + size] for i in range(0, len(cleaned), size)]
