"""Partial updates of learnings for the SQLite backend, and locating rows by id.

``AddEvidence`` credits rows (a rated turn's outcome) and ``SetEvidence`` sets one row's evidence
only if it still holds what the caller read; neither touches ``updated_at``, the history or the
write sequence (what search indexes is unchanged). ``PatchContent`` sets keys of one row's
content (with history) and leaves its counters alone. Each is a write of the row, so it takes the
row's next ``version``: a read-modify-write that read the row before fails its version check
instead of writing back stale evidence. ``LocateLearnings`` tells an admin surface whose row an
id is.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from ..exceptions import ConflictError
from ._ops import AddEvidence, LocateLearnings, PatchContent, SetEvidence
from ._records import ALL_STATUSES, Learning, LearningLocation, utcnow
from ._sqlite_broad import SideIndexes
from ._sqlite_learnings import _record, _where
from ._sqlite_rows import enc_time, marks, row_to_learning, to_json

__all__ = ["add_evidence", "locate_learnings", "patch_content", "set_evidence"]

_CHUNK = 500


def add_evidence(conn: sqlite3.Connection, op: AddEvidence, cache: SideIndexes) -> int:
    """Add ``helpful``/``harmful`` to every row named; returns the number of rows changed."""
    ids = list(dict.fromkeys(op.ids))
    changed = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        changed += conn.execute(
            "UPDATE learnings SET helpful = helpful + ?, harmful = harmful + ?, "
            f"feedback = feedback + ?, version = version + 1 WHERE id IN ({marks(len(chunk))})",
            [op.helpful, op.harmful, op.helpful - op.harmful, *chunk],
        ).rowcount
    return changed


def set_evidence(conn: sqlite3.Connection, op: SetEvidence, cache: SideIndexes) -> None:
    """Set one row's evidence if it still holds the expected values (else ``ConflictError``)."""
    moved = (op.helpful - op.harmful) - (op.expected_helpful - op.expected_harmful)
    changed = conn.execute(
        "UPDATE learnings SET helpful = ?, harmful = ?, feedback = feedback + ?, "
        "version = version + 1 WHERE id = ? AND helpful = ? AND harmful = ?",
        (op.helpful, op.harmful, moved, op.id, op.expected_helpful, op.expected_harmful),
    ).rowcount
    if changed != 1:
        raise ConflictError(
            f"the evidence of learning {op.id} changed since it was read (or it is gone); "
            "read it again and retry"
        )


def locate_learnings(
    conn: sqlite3.Connection, op: LocateLearnings, cache: SideIndexes
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


def patch_content(
    conn: sqlite3.Connection, op: PatchContent, cache: SideIndexes
) -> Learning | None:
    """Set keys of one row's content (history recorded); ``None`` if the reader cannot see it."""
    w, params = _where(dataclasses.replace(op.filter, ids=None, statuses=ALL_STATUSES))
    row = conn.execute(
        f"SELECT * FROM learnings l WHERE l.id = ? AND {w}", [op.id, *params]
    ).fetchone()
    if row is None:
        return None
    old = row_to_learning(row)
    new = dataclasses.replace(
        old, content={**old.content, **op.patch}, updated_at=utcnow(), version=old.version + 1
    )
    conn.execute(
        "UPDATE learnings SET content = ?, updated_at = ?, version = version + 1 WHERE id = ?",
        (to_json(new.content, "Learning.content"), enc_time(new.updated_at), op.id),
    )
    _record(conn, op.id, op.change, old, new)
    return new
