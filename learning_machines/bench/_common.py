"""What the benchmarks share: a caching embedder, run metadata, percentiles, output files."""

from __future__ import annotations

import json
import os
import pickle
import platform
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..embedders import Embedder, HashEmbedder, default_embedder

__all__ = [
    "CachedEmbedder",
    "make_embedder",
    "percentile",
    "run_info",
    "write_json",
]

#: Set to a file path to keep document and query vectors between benchmark runs (ablations).
CACHE_ENV = "LEARNING_MACHINES_BENCH_EMBED_CACHE"


class CachedEmbedder:
    """Wraps an embedder and remembers every vector by text (same ``name``: interchangeable).

    Benchmarks embed each question once for all systems, so search latencies compare search
    work, not repeated model calls. With ``path`` the cache is also kept on disk.
    """

    def __init__(self, inner: Embedder, path: str | None = None) -> None:
        self.inner = inner
        self.path = path
        self.calls = 0
        self.seconds = 0.0
        self._cache: dict[str, npt.NDArray[np.float32]] = {}
        if path and Path(path).exists():
            with open(path, "rb") as f:
                stored = pickle.load(f)  # a cache this benchmark wrote itself
            self._cache = stored.get(inner.name, {})

    @property
    def name(self) -> str:
        """The wrapped embedder's name."""
        return self.inner.name

    @property
    def dimensions(self) -> int:
        """The wrapped embedder's dimensions."""
        return self.inner.dimensions

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Vectors of ``texts``, computing only those not seen before."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            import time

            start = time.perf_counter()
            vectors = self.inner.embed(missing)
            self.seconds += time.perf_counter() - start
            self.calls += len(missing)
            self._cache.update(zip(missing, vectors, strict=True))
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)

    def save(self) -> None:
        """Write the cache to ``path`` (if one was given)."""
        if self.path:
            with open(self.path, "wb") as f:
                pickle.dump({self.inner.name: self._cache}, f)


def make_embedder(kind: str) -> CachedEmbedder:
    """``"minilm"`` (the default model) or ``"hash"`` (tests), wrapped in a cache."""
    if kind == "hash":
        return CachedEmbedder(HashEmbedder(dimensions=128))
    if kind == "minilm":
        return CachedEmbedder(default_embedder(), os.environ.get(CACHE_ENV))
    raise ValueError(f"unknown embedder {kind!r}: use 'minilm' or 'hash'")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``; 0.0 for none."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else 0.0


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def run_info(**extra: Any) -> dict[str, Any]:
    """Date, machine, Python and commit of this run, plus ``extra``."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "python": platform.python_version(),
        "commit": _commit(),
        **extra,
    }


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
