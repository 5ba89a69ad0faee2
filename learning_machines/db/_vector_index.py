"""In-process cache of stored embeddings, for exact cosine scoring of a filtered candidate set.

The database decides *which* rows may be found (the scope filter runs in SQL, on indexes); this
cache only answers "what is the unit vector of row ``pk``" fast, as a float32 matrix. It is
refreshed incrementally: every write of a learning takes the next value of a write sequence
(``seq``), so refreshing reads only the rows written since the last refresh, whichever process
wrote them. A cached vector is used only when its ``seq`` equals the one the query's snapshot saw,
so a stale or newer cache entry can never change a result.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["VectorCache"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def unit(vectors: F32) -> F32:
    """Rows of ``vectors`` scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    out: F32 = (vectors / norms).astype(np.float32, copy=False)
    return out


@dataclass
class _Matrix:
    """Unit vectors of one embedder and dimension, addressed by row ``pk``."""

    dim: int
    vectors: F32 = field(init=False)
    seqs: I64 = field(init=False)
    pos_of_pk: I64 = field(init=False)
    size: int = 0

    def __post_init__(self) -> None:
        self.vectors = np.zeros((1024, self.dim), dtype=np.float32)
        self.seqs = np.zeros(1024, dtype=np.int64)
        self.pos_of_pk = np.full(1024, -1, dtype=np.int64)

    def put(self, pks: I64, seqs: I64, vectors: F32) -> None:
        if len(pks) == 0:
            return
        top = int(pks.max())
        if top >= len(self.pos_of_pk):
            grown = np.full(max(top + 1, 2 * len(self.pos_of_pk)), -1, dtype=np.int64)
            grown[: len(self.pos_of_pk)] = self.pos_of_pk
            self.pos_of_pk = grown
        # The last write of a pk in this batch wins.
        _, last = np.unique(pks[::-1], return_index=True)
        keep = len(pks) - 1 - last
        pks, seqs, vectors = pks[keep], seqs[keep], vectors[keep]
        pos = self.pos_of_pk[pks]
        # Never let a refresh from an older snapshot overwrite a newer cached vector.
        older = np.zeros(len(pks), dtype=bool)
        older[pos >= 0] = self.seqs[pos[pos >= 0]] > seqs[pos >= 0]
        if older.any():
            pks, seqs, vectors, pos = pks[~older], seqs[~older], vectors[~older], pos[~older]
        new = pos < 0
        n_new = int(new.sum())
        if self.size + n_new > len(self.vectors):
            capacity = max(self.size + n_new, 2 * len(self.vectors))
            vectors_grown = np.zeros((capacity, self.dim), dtype=np.float32)
            vectors_grown[: self.size] = self.vectors[: self.size]
            seqs_grown = np.zeros(capacity, dtype=np.int64)
            seqs_grown[: self.size] = self.seqs[: self.size]
            self.vectors, self.seqs = vectors_grown, seqs_grown
        pos[new] = np.arange(self.size, self.size + n_new)
        self.size += n_new
        self.pos_of_pk[pks] = pos
        self.vectors[pos] = unit(vectors)
        self.seqs[pos] = seqs

    def drop(self, pks: I64) -> None:
        pks = pks[pks < len(self.pos_of_pk)]
        pos = self.pos_of_pk[pks]
        self.seqs[pos[pos >= 0]] = -1

    def lookup(self, pks: I64, seqs: I64) -> I64:
        """Positions of ``pks`` whose cached seq equals ``seqs``; -1 where not cached so."""
        pos = np.full(len(pks), -1, dtype=np.int64)
        inside = pks < len(self.pos_of_pk)
        pos[inside] = self.pos_of_pk[pks[inside]]
        found = pos >= 0
        stale = np.zeros(len(pks), dtype=bool)
        stale[found] = self.seqs[pos[found]] != seqs[found]
        pos[stale] = -1
        return pos


class VectorCache:
    """Unit embeddings of a database's learnings, one float32 matrix per (embedder, dimension).

    Thread-safe. ``seen_seq`` is the write sequence up to which :meth:`apply` has been fed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._matrices: dict[tuple[str, int], _Matrix] = {}
        self.seen_seq = 0

    def apply(self, rows: Iterable[tuple[int, int, str | None, bytes]], up_to_seq: int) -> None:
        """Take in changed rows ``(pk, seq, embedder, embedding blob)`` written up to a seq."""
        groups: dict[tuple[str, int], tuple[list[int], list[int], list[bytes]]] = {}
        for pk, seq, embedder, blob in rows:
            key = (embedder or "", len(blob) // 4)
            pks, seqs, blobs = groups.setdefault(key, ([], [], []))
            pks.append(pk)
            seqs.append(seq)
            blobs.append(blob)
        with self._lock:
            for key, (pks, seqs, blobs) in groups.items():
                pk_array = np.asarray(pks, dtype=np.int64)
                for other_key, other in self._matrices.items():
                    if other_key != key:
                        other.drop(pk_array)
                matrix = self._matrices.get(key)
                if matrix is None:
                    matrix = self._matrices[key] = _Matrix(dim=key[1])
                vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), key[1])
                matrix.put(pk_array, np.asarray(seqs, dtype=np.int64), vectors)
            self.seen_seq = max(self.seen_seq, up_to_seq)

    def embedders(self) -> set[str]:
        """Names of the embedders whose vectors the cache holds (a superset of those in use)."""
        with self._lock:
            return {name for (name, _), matrix in self._matrices.items() if matrix.size}

    def score(self, embedder: str, query: F32, pks: I64, seqs: I64) -> tuple[F32, I64]:
        """Cosine similarity of ``query`` with the cached rows ``pks`` (at ``seqs``).

        Returns ``(scores, missing)``: scores for the rows found (NaN elsewhere) and the indexes
        into ``pks`` of rows not cached at that seq, which the caller scores from the database.
        """
        q = unit(query.reshape(1, -1))[0]
        scores = np.full(len(pks), np.nan, dtype=np.float32)
        with self._lock:
            matrix = self._matrices.get((embedder, len(q)))
            if matrix is None:
                return scores, np.arange(len(pks), dtype=np.int64)
            pos = matrix.lookup(pks, seqs)
            found = pos >= 0
            if found.sum() > matrix.size // 4:
                # A large scope: one matrix-vector product beats gathering rows.
                scores[found] = (matrix.vectors[: matrix.size] @ q)[pos[found]]
            else:
                scores[found] = matrix.vectors[pos[found]] @ q
        return scores, np.flatnonzero(~found).astype(np.int64)
