"""Outcome evidence on learnings for the SQLite backend: add, compare-and-set, locate.

``AddEvidence`` credits rows (a rated turn's outcome), ``SetEvidence`` sets one row's evidence
only if it still holds what the caller read, and ``LocateLearnings`` tells an admin surface
whose row an id is. None of them touches ``updated_at``, the history or the write sequence.
"""

from __future__ import annotations

import sqlite3

from ..exceptions import ConflictError
from ._ops import AddEvidence, LocateLearnings, SetEvidence
from ._records import LearningLocation
from ._sqlite_rows import marks
from ._vector_index import VectorCache

__all__ = ["add_evidence", "locate_learnings", "set_evidence"]

_CHUNK = 500


def add_evidence(conn: sqlite3.Connection, op: AddEvidence, cache: VectorCache) -> int:
    """Add ``helpful``/``harmful`` to every row named; returns the number of rows changed."""
    ids = list(dict.fromkeys(op.ids))
    changed = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        changed += conn.execute(
            "UPDATE learnings SET helpful = helpful + ?, harmful = harmful + ?, "
            f"feedback = feedback + ? WHERE id IN ({marks(len(chunk))})",
            [op.helpful, op.harmful, op.helpful - op.harmful, *chunk],
        ).rowcount
    return changed


def set_evidence(conn: sqlite3.Connection, op: SetEvidence, cache: VectorCache) -> None:
    """Set one row's evidence if it still holds the expected values (else ``ConflictError``)."""
    moved = (op.helpful - op.harmful) - (op.expected_helpful - op.expected_harmful)
    changed = conn.execute(
        "UPDATE learnings SET helpful = ?, harmful = ?, feedback = feedback + ? "
        "WHERE id = ? AND helpful = ? AND harmful = ?",
        (op.helpful, op.harmful, moved, op.id, op.expected_helpful, op.expected_harmful),
    ).rowcount
    if changed != 1:
        raise ConflictError(
            f"the evidence of learning {op.id} changed since it was read (or it is gone); "
            "read it again and retry"
        )


def locate_learnings(
    conn: sqlite3.Connection, op: LocateLearnings, cache: VectorCache
) -> list[LearningLocation]:
    """Type, namespace, owner and status of each id, in the order given (missing ids skipped)."""
    ids = list(dict.fromkeys(op.ids))
    found: dict[str, LearningLocation] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for row in conn.execute(
            "SELECT id, learning_type, namespace, user_id, status FROM learnings "
            f"WHERE id IN ({marks(len(chunk))})",
            chunk,
        ):
            found[row["id"]] = LearningLocation(
                id=row["id"],
                learning_type=row["learning_type"],
                namespace=row["namespace"],
                user_id=row["user_id"],
                status=row["status"],
            )
    return [found[i] for i in ids if i in found]
