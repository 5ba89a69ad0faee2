"""Partial updates of learnings for the PostgreSQL backend, and locating rows by id.

The same contract as the SQLite backend (see ``_sqlite_partial``). ``SetEvidence`` is a single
``UPDATE ... WHERE helpful = expected AND harmful = expected``: under READ COMMITTED a concurrent
writer's update makes it re-check the condition against the new row, so a lost race matches no
row and raises :class:`ConflictError` instead of counting evidence twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..exceptions import ConflictError
from ._ops import AddEvidence, LocateLearnings, PatchContent, SetEvidence
from ._postgres_rows import dumps, learning_from_row
from ._postgres_search import LEARNING_SELECT
from ._records import ALL_STATUSES, Learning, LearningLocation, utcnow

if TYPE_CHECKING:
    from ._postgres_ops import OpContext

__all__ = ["PARTIAL_HANDLERS"]


def _add_evidence(ctx: OpContext, op: AddEvidence) -> int:
    if not op.ids:
        return 0
    cur = ctx.q(
        "UPDATE learnings SET helpful = helpful + %s, harmful = harmful + %s,"
        " feedback = feedback + %s, version = version + 1 WHERE id = ANY(%s)",
        (op.helpful, op.harmful, op.helpful - op.harmful, list(dict.fromkeys(op.ids))),
    )
    return max(cur.rowcount, 0)


def _set_evidence(ctx: OpContext, op: SetEvidence) -> None:
    moved = (op.helpful - op.harmful) - (op.expected_helpful - op.expected_harmful)
    cur = ctx.q(
        "UPDATE learnings SET helpful = %s, harmful = %s, feedback = feedback + %s,"
        " version = version + 1 WHERE id = %s AND helpful = %s AND harmful = %s",
        (op.helpful, op.harmful, moved, op.id, op.expected_helpful, op.expected_harmful),
    )
    if cur.rowcount != 1:
        raise ConflictError(
            f"the evidence of learning {op.id} changed since it was read (or it is gone); "
            "read it again and retry"
        )


def _locate_learnings(ctx: OpContext, op: LocateLearnings) -> list[LearningLocation]:
    ids = list(dict.fromkeys(op.ids))
    rows = ctx.q(
        "SELECT id, learning_type, namespace, user_id, status FROM learnings WHERE id = ANY(%s)",
        (ids,),
    ).fetchall()
    found = {
        r["id"]: LearningLocation(
            id=r["id"],
            learning_type=r["learning_type"],
            namespace=r["namespace"],
            user_id=r["user_id"],
            status=r["status"],
        )
        for r in rows
    }
    return [found[i] for i in ids if i in found]


def _patch_content(ctx: OpContext, op: PatchContent) -> Learning | None:
    from ._postgres_ops import _INSERT_HISTORY, _history_params, _where

    where, params = _where(replace(op.filter, ids=(op.id,), statuses=ALL_STATUSES))
    row = ctx.q(
        f"SELECT {LEARNING_SELECT} FROM learnings l WHERE {where} FOR UPDATE", params
    ).fetchone()
    if row is None:
        return None
    old = learning_from_row(row)
    new = replace(
        old, content={**old.content, **op.patch}, updated_at=utcnow(), version=old.version + 1
    )
    ctx.q(
        "UPDATE learnings SET content = %s::jsonb, updated_at = %s, version = version + 1"
        " WHERE id = %s",
        (dumps(new.content, "Learning.content"), new.updated_at, op.id),
    )
    ctx.q(_INSERT_HISTORY, _history_params(op.id, op.change, old, new))
    return new


#: Handlers of the partial updates, merged into the backend's dispatch table.
PARTIAL_HANDLERS: dict[type[Any], Callable[[OpContext, Any], Any]] = {
    AddEvidence: _add_evidence,
    SetEvidence: _set_evidence,
    LocateLearnings: _locate_learnings,
    PatchContent: _patch_content,
}
