"""Embedders: turn texts into vectors for semantic search.

An :class:`Embedder` has a :attr:`~Embedder.name` (stored with every vector, so a model change
is detected), :attr:`~Embedder.dimensions` and ``embed(texts)``, which returns unit-length
float32 rows. :func:`aembed` calls one from async code without blocking the event loop.

* :class:`MiniLMEmbedder`: the default. all-MiniLM-L6-v2 (int8 ONNX, 384 dimensions) on the
  CPU, offline, installed with the package; no PyTorch. :func:`default_embedder` shares one.
* :class:`OpenAIEmbedder`: any OpenAI-compatible embeddings endpoint (OpenAI, Ollama, vLLM,
  LM Studio); ``pip install "learning-machines[openai]"``.
* :class:`HashEmbedder`: deterministic and dependency-free, for your own offline tests.

:class:`BatchingEmbedder` wraps any of them so that concurrent async calls share model calls
(the machine wraps its embedder this way).
"""

from __future__ import annotations

import threading

from ._base import Embedder, aembed
from ._batching import BatchingEmbedder
from ._hash import HashEmbedder
from ._minilm import MiniLMEmbedder
from ._openai import OpenAIEmbedder

__all__ = [
    "BatchingEmbedder",
    "Embedder",
    "HashEmbedder",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "aembed",
    "default_embedder",
]

_default: MiniLMEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """Return the process-wide :class:`MiniLMEmbedder`, so the model is loaded once per process.

    Built with the default options (``$LEARNING_MACHINES_EMBEDDING_MODEL`` is read on the first
    call). The model itself loads on the first ``embed``.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = MiniLMEmbedder()
        return _default
