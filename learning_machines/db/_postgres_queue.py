"""Messages, pending work and proposals on PostgreSQL (functions of an open transaction)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..exceptions import ConflictError, NotFoundError
from ._ops import (
    AppendMessage,
    ClaimWork,
    CountWork,
    EnqueueWork,
    FailWork,
    FinishWork,
    GetMessage,
    GetProposal,
    ListMessages,
    ListProposals,
    ListUserMessages,
    ListWork,
    PutProposal,
    ReleaseWork,
    UpdateWork,
)
from ._postgres_rows import (
    MESSAGE_COLUMNS,
    PROPOSAL_COLUMNS,
    WORK_COLUMNS,
    dumps,
    message_from_row,
    proposal_from_row,
    record_params,
    work_from_row,
)
from ._records import utcnow

if TYPE_CHECKING:
    import psycopg

    from ._postgres_ops import OpContext

__all__ = ["QUEUE_HANDLERS", "insert"]


# --- messages ---------------------------------------------------------------------------------


def insert(
    ctx: OpContext,
    table: str,
    columns: tuple[str, ...],
    values: list[Any],
    jsonb: tuple[str, ...] = (),
    suffix: str = "",
) -> psycopg.Cursor[dict[str, Any]]:
    """Insert one row; ``jsonb`` columns are cast from JSON text, ``suffix`` ends the statement."""
    marks = ", ".join("%s::jsonb" if c in jsonb else "%s" for c in columns)
    return ctx.q(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) {suffix}", values)


def _append_message(ctx: OpContext, op: AppendMessage) -> Any:
    insert(ctx, "messages", MESSAGE_COLUMNS, record_params(op.message, MESSAGE_COLUMNS, ()))
    return op.message


def _list_messages(ctx: OpContext, op: ListMessages) -> list[Any]:
    sql = (
        "SELECT * FROM messages WHERE session_id = %s AND user_id IS NOT DISTINCT FROM %s"
        " ORDER BY turn_index DESC, created_at DESC, seq DESC"
    )
    params: list[Any] = [op.session_id, op.user_id]
    if op.limit is not None:
        sql += " LIMIT %s"
        params.append(op.limit)
    rows = ctx.q(sql, params).fetchall()
    return [message_from_row(r) for r in reversed(rows)]


def _get_message(ctx: OpContext, op: GetMessage) -> Any:
    row = ctx.q(
        "SELECT * FROM messages WHERE session_id = %s AND user_id IS NOT DISTINCT FROM %s"
        " AND turn_id = %s ORDER BY seq DESC LIMIT 1",
        (op.session_id, op.user_id, op.turn_id),
    ).fetchone()
    return None if row is None else message_from_row(row)


def _list_user_messages(ctx: OpContext, op: ListUserMessages) -> list[Any]:
    sql = "SELECT * FROM messages WHERE user_id = %s ORDER BY created_at, seq"
    params: list[Any] = [op.user_id]
    if op.limit is not None:
        sql += " LIMIT %s"
        params.append(op.limit)
    return [message_from_row(r) for r in ctx.q(sql, params).fetchall()]


# --- pending work -----------------------------------------------------------------------------


def _enqueue_work(ctx: OpContext, op: EnqueueWork) -> Any:
    work = op.work
    row = insert(
        ctx,
        "pending_work",
        WORK_COLUMNS,
        record_params(work, WORK_COLUMNS, ("payload",)),
        ("payload",),
        "ON CONFLICT DO NOTHING RETURNING *",
    ).fetchone()
    if row is None:
        key, value = ("dedupe_key", work.dedupe_key) if work.dedupe_key else ("id", work.id)
        row = ctx.q(f"SELECT * FROM pending_work WHERE {key} = %s", (value,)).fetchone()
        if row is None:  # pragma: no cover - the conflicting row vanished meanwhile
            raise NotFoundError(f"pending work {value!r} conflicted and then disappeared; retry")
    return work_from_row(row)


def _kinds(kinds: tuple[str, ...] | None, params: list[Any]) -> str:
    if kinds is None:
        return ""
    params.append(list(kinds))
    return " AND kind = ANY(%s)"


def _claim_work(ctx: OpContext, op: ClaimWork) -> list[Any]:
    if op.limit <= 0:
        return []
    now = op.now or utcnow()
    # A running item whose lease expired with no attempts left is parked, not handed out again:
    # a turn that keeps killing its worker must not be retried forever (as on SQLite).
    park: list[Any] = [now, now]
    park_kinds = _kinds(op.kinds, park)
    ctx.q(
        "UPDATE pending_work SET status = 'failed', locked_by = NULL, locked_until = NULL,"
        " last_error = 'lease of worker ' || COALESCE(locked_by, '?') || ' expired after '"
        " || attempts || ' attempts; parked as failed', updated_at = %s"
        " WHERE status = 'running' AND locked_until <= %s AND attempts >= max_attempts"
        f"{park_kinds}",
        park,
    )
    params: list[Any] = [now, now]
    kinds = _kinds(op.kinds, params)
    params += [op.limit, op.worker_id, now + timedelta(seconds=op.lease_seconds), now]
    # SKIP LOCKED: concurrent claimers (threads, processes, machines) each take different rows.
    rows = ctx.q(
        "WITH c AS (SELECT id FROM pending_work WHERE ((status = 'pending' AND not_before <= %s)"
        f" OR (status = 'running' AND locked_until <= %s)){kinds}"
        " ORDER BY not_before, created_at, seq LIMIT %s FOR UPDATE SKIP LOCKED)"
        " UPDATE pending_work w SET status = 'running', attempts = w.attempts + 1,"
        " locked_by = %s, locked_until = %s, updated_at = %s FROM c WHERE w.id = c.id"
        " RETURNING w.*",
        params,
    ).fetchall()
    items = [work_from_row(r) for r in rows]
    return sorted(items, key=lambda w: (w.not_before, w.created_at, w.id))


def _held(ctx: OpContext, work_id: str, worker_id: str) -> dict[str, Any]:
    row = ctx.q("SELECT * FROM pending_work WHERE id = %s FOR UPDATE", (work_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"No pending work with id {work_id!r}.")
    if row["status"] != "running" or row["locked_by"] != worker_id:
        raise ConflictError(
            f"Worker {worker_id!r} does not hold pending work {work_id!r} (its lease expired and "
            "another worker claimed it, or it is finished); claim it again before updating it."
        )
    return row


def _finish_work(ctx: OpContext, op: FinishWork) -> None:
    _held(ctx, op.id, op.worker_id)
    ctx.q(
        "UPDATE pending_work SET status = 'done', locked_by = NULL, locked_until = NULL,"
        " updated_at = %s WHERE id = %s",
        (utcnow(), op.id),
    )


def _release_work(ctx: OpContext, op: ReleaseWork) -> int:
    now = utcnow()
    cur = ctx.q(
        "UPDATE pending_work SET status = 'pending', locked_by = NULL, locked_until = NULL,"
        " attempts = GREATEST(attempts - 1, 0), not_before = %s, updated_at = %s"
        " WHERE status = 'running' AND locked_by = %s",
        (now, now, op.worker_id),
    )
    return cur.rowcount


def _update_work(ctx: OpContext, op: UpdateWork) -> Any:
    _held(ctx, op.id, op.worker_id)
    row = ctx.q(
        "UPDATE pending_work SET payload = %s::jsonb, updated_at = %s WHERE id = %s RETURNING *",
        (dumps(op.payload, "UpdateWork.payload"), utcnow(), op.id),
    ).fetchone()
    assert row is not None
    return work_from_row(row)


def _fail_work(ctx: OpContext, op: FailWork) -> Any:
    row = _held(ctx, op.id, op.worker_id)
    park = op.retry_at is None or row["attempts"] >= row["max_attempts"]
    now = utcnow()
    updated = ctx.q(
        "UPDATE pending_work SET status = %s, not_before = %s, locked_by = NULL,"
        " locked_until = NULL, last_error = %s, raw_output = %s, updated_at = %s"
        " WHERE id = %s RETURNING *",
        (
            "failed" if park else "pending",
            row["not_before"] if park else op.retry_at,
            op.error,
            op.raw_output,
            now,
            op.id,
        ),
    ).fetchone()
    assert updated is not None
    return work_from_row(updated)


def _list_work(ctx: OpContext, op: ListWork) -> list[Any]:
    params: list[Any] = []
    sql = "SELECT * FROM pending_work WHERE TRUE"
    if op.statuses is not None:
        sql += " AND status = ANY(%s)"
        params.append(list(op.statuses))
    sql += _kinds(op.kinds, params) + " ORDER BY created_at, seq"
    if op.limit is not None:
        sql += " LIMIT %s"
        params.append(op.limit)
    return [work_from_row(r) for r in ctx.q(sql, params).fetchall()]


def _count_work(ctx: OpContext, op: CountWork) -> int:
    params: list[Any] = [list(op.statuses)]
    sql = "SELECT count(*) AS n FROM pending_work WHERE status = ANY(%s)" + _kinds(op.kinds, params)
    row = ctx.q(sql, params).fetchone()
    return int(row["n"]) if row else 0


# --- proposals --------------------------------------------------------------------------------


def _put_proposal(ctx: OpContext, op: PutProposal) -> Any:
    p = op.proposal
    values = record_params(p, PROPOSAL_COLUMNS, ("payload",))
    if op.expected_status is None:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in PROPOSAL_COLUMNS if c != "id")
        insert(
            ctx,
            "proposals",
            PROPOSAL_COLUMNS,
            values,
            ("payload",),
            f"ON CONFLICT (id) DO UPDATE SET {updates}",
        )
        return p
    sets = ", ".join(
        f"{c} = %s::jsonb" if c == "payload" else f"{c} = %s" for c in PROPOSAL_COLUMNS[1:]
    )
    cur = ctx.q(
        f"UPDATE proposals SET {sets} WHERE id = %s AND status = %s",
        [*values[1:], p.id, op.expected_status],
    )
    if cur.rowcount != 1:
        row = ctx.q("SELECT status FROM proposals WHERE id = %s", (p.id,)).fetchone()
        now = "does not exist" if row is None else f"is {row['status']!r}"
        raise ConflictError(
            f"Proposal {p.id!r} {now}, not {op.expected_status!r}: someone else decided it "
            "first. Reload it and decide again if still needed."
        )
    return p


def _get_proposal(ctx: OpContext, op: GetProposal) -> Any:
    row = ctx.q("SELECT * FROM proposals WHERE id = %s", (op.id,)).fetchone()
    return None if row is None else proposal_from_row(row)


def _list_proposals(ctx: OpContext, op: ListProposals) -> list[Any]:
    sql = "SELECT * FROM proposals WHERE TRUE"
    params: list[Any] = []
    if op.statuses is not None:
        sql += " AND status = ANY(%s)"
        params.append(list(op.statuses))
    for column in ("user_id", "session_id", "store", "mode"):
        value = getattr(op, column)
        if value is not None:
            sql += f" AND {column} = %s"
            params.append(value)
    sql += " ORDER BY created_at DESC, id DESC"
    if op.limit is not None:
        sql += " LIMIT %s"
        params.append(op.limit)
    return [proposal_from_row(r) for r in ctx.q(sql, params).fetchall()]


QUEUE_HANDLERS: dict[type[Any], Callable[[OpContext, Any], Any]] = {
    AppendMessage: _append_message,
    ListMessages: _list_messages,
    GetMessage: _get_message,
    ReleaseWork: _release_work,
    ListUserMessages: _list_user_messages,
    EnqueueWork: _enqueue_work,
    ClaimWork: _claim_work,
    FinishWork: _finish_work,
    UpdateWork: _update_work,
    FailWork: _fail_work,
    ListWork: _list_work,
    CountWork: _count_work,
    PutProposal: _put_proposal,
    GetProposal: _get_proposal,
    ListProposals: _list_proposals,
}
