"""A deterministic, dependency-free embedder for tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..exceptions import ConfigurationError
from ._base import check_texts, empty, l2_normalize

__all__ = ["HashEmbedder"]

_WORDS = re.compile(r"\w+")
# Whole words carry more meaning than their trigrams; trigrams make "cats" close to "cat".
_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.5
_EMPTY_FEATURE = "\x00empty"


class HashEmbedder:
    """A deterministic embedder for offline tests: no model, no network, no dependencies.

    Each text becomes a bag of hashed features (its lower-cased words and the character trigrams
    of each word), each added with a sign, then L2-normalised. Texts that share words are similar;
    unrelated texts are close to orthogonal. Hashing uses BLAKE2b, so vectors are identical across
    processes and machines (Python's ``hash()`` is salted per process).

    It understands no meaning (``"car"`` and ``"automobile"`` are unrelated), so use it to test
    plumbing, not retrieval quality::

        machine = LearningMachine(db=SqliteDb(":memory:"), embedder=HashEmbedder())
    """

    def __init__(self, dimensions: int = 64) -> None:
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 2:
            raise ConfigurationError(
                f"HashEmbedder(dimensions={dimensions!r}): dimensions must be an int >= 2."
            )
        self._dimensions = dimensions

    def __repr__(self) -> str:
        return f"HashEmbedder(dimensions={self._dimensions})"

    @property
    def name(self) -> str:
        """``"hash-<dimensions>"``; vectors of two sizes are never mixed."""
        return f"hash-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        """Length of each vector, as given to the constructor."""
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``: shape ``(len(texts), dimensions)``, float32, unit-length rows."""
        items = check_texts(texts)
        if not items:
            return empty(self._dimensions)
        out = np.zeros((len(items), self._dimensions), dtype=np.float64)
        for row, text in enumerate(items):
            for feature, weight in _features(text):
                index, sign = self._slot(feature)
                out[row, index] += sign * weight
            if not out[row].any():
                # Features cancelled out (possible with few dimensions); keep the row unit-length.
                index, sign = self._slot(_EMPTY_FEATURE)
                out[row, index] = sign
        return l2_normalize(out)

    def _slot(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return (value >> 1) % self._dimensions, (1.0 if value & 1 else -1.0)


def _features(text: str) -> list[tuple[str, float]]:
    """Word unigrams and per-word character trigrams (with word boundaries), weighted."""
    features: list[tuple[str, float]] = []
    for word in _WORDS.findall(text.lower()):
        features.append(("w:" + word, _WORD_WEIGHT))
        padded = f"<{word}>"
        features.extend(("c:" + padded[i : i + 3], _TRIGRAM_WEIGHT) for i in range(len(padded) - 2))
    # A text without words still gets a unit vector, the same one for all such texts.
    return features or [(_EMPTY_FEATURE, 1.0)]
