"""Messages, pending work and proposals for the SQLite backend, run inside a transaction."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import timedelta
from typing import Any

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
    ListWork,
    PutProposal,
    ReleaseWork,
    UpdateWork,
)
from ._records import Message, PendingWork, Proposal, utcnow
from ._sqlite_broad import SideIndexes
from ._sqlite_rows import (
    MESSAGE_COLUMNS,
    PROPOSAL_COLUMNS,
    WORK_COLUMNS,
    enc_time,
    marks,
    message_params,
    proposal_params,
    row_to_message,
    row_to_proposal,
    row_to_work,
    to_json,
    work_params,
)

__all__ = [
    "append_message",
    "claim_work",
    "count_work",
    "enqueue_work",
    "fail_work",
    "finish_work",
    "get_proposal",
    "list_messages",
    "list_proposals",
    "list_work",
    "put_proposal",
]


def _in(column: str, values: tuple[str, ...] | None, clauses: list[str], params: list[Any]) -> None:
    if values is None:
        return
    if not values:
        clauses.append("1 = 0")
        return
    clauses.append(f"{column} IN ({marks(len(values))})")
    params.extend(values)


def _limit(limit: int | None) -> int:
    return -1 if limit is None else limit


# --- messages ---------------------------------------------------------------------------------


def append_message(conn: sqlite3.Connection, op: AppendMessage, cache: SideIndexes) -> Message:
    """Store a finished turn."""
    conn.execute(
        f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) "
        f"VALUES ({marks(len(MESSAGE_COLUMNS))})",
        message_params(op.message),
    )
    return op.message


def list_messages(conn: sqlite3.Connection, op: ListMessages, cache: SideIndexes) -> list[Message]:
    """Return the last turns of the reader's own session, oldest first."""
    rows = conn.execute(
        "SELECT * FROM messages WHERE session_id = ? AND user_id IS ? "
        "ORDER BY turn_index DESC, created_at DESC, pk DESC LIMIT ?",
        (op.session_id, op.user_id, _limit(op.limit)),
    ).fetchall()
    return [row_to_message(row) for row in reversed(rows)]


def get_message(conn: sqlite3.Connection, op: GetMessage, cache: SideIndexes) -> Message | None:
    """One turn of the reader's own session, by turn id."""
    row = conn.execute(
        "SELECT * FROM messages WHERE session_id = ? AND user_id IS ? AND turn_id = ? "
        "ORDER BY pk DESC LIMIT 1",
        (op.session_id, op.user_id, op.turn_id),
    ).fetchone()
    return None if row is None else row_to_message(row)


# --- pending work -----------------------------------------------------------------------------


def _work(conn: sqlite3.Connection, work_id: str) -> PendingWork | None:
    row = conn.execute("SELECT * FROM pending_work WHERE id = ?", (work_id,)).fetchone()
    return None if row is None else row_to_work(row)


def enqueue_work(conn: sqlite3.Connection, op: EnqueueWork, cache: SideIndexes) -> PendingWork:
    """Add work; an item with the same ``dedupe_key`` is returned instead of a second one."""
    w = op.work
    if w.dedupe_key is not None:
        row = conn.execute(
            "SELECT * FROM pending_work WHERE dedupe_key = ?", (w.dedupe_key,)
        ).fetchone()
        if row is not None:
            return row_to_work(row)
    conn.execute(
        f"INSERT INTO pending_work ({', '.join(WORK_COLUMNS)}) VALUES ({marks(len(WORK_COLUMNS))})",
        work_params(w),
    )
    return w


def claim_work(conn: sqlite3.Connection, op: ClaimWork, cache: SideIndexes) -> list[PendingWork]:
    """Claim due items for one worker (the write lock makes it exclusive between workers)."""
    if op.limit <= 0:
        return []
    now = op.now or utcnow()
    t_now = enc_time(now)
    clauses = [
        "((status = 'pending' AND not_before <= ?) OR (status = 'running' AND locked_until <= ?))"
    ]
    params: list[Any] = [t_now, t_now]
    _in("kind", op.kinds, clauses, params)
    claimed: list[PendingWork] = []
    # Loop because an expired item already out of attempts is parked rather than handed out.
    while len(claimed) < op.limit:
        rows = conn.execute(
            f"SELECT * FROM pending_work WHERE {' AND '.join(clauses)} "
            "ORDER BY not_before, created_at, pk LIMIT ?",
            [*params, op.limit - len(claimed)],
        ).fetchall()
        if not rows:
            break
        for row in rows:
            item = row_to_work(row)
            if item.status == "running" and item.attempts >= item.max_attempts:
                conn.execute(
                    "UPDATE pending_work SET status = 'failed', locked_by = NULL, "
                    "locked_until = NULL, last_error = ?, updated_at = ? WHERE id = ?",
                    (
                        f"lease of worker {item.locked_by!r} expired after {item.attempts} "
                        f"attempts (max_attempts={item.max_attempts})",
                        t_now,
                        item.id,
                    ),
                )
                continue
            item = dataclasses.replace(
                item,
                status="running",
                attempts=item.attempts + 1,
                locked_by=op.worker_id,
                locked_until=now + timedelta(seconds=op.lease_seconds),
                updated_at=now,
            )
            conn.execute(
                "UPDATE pending_work SET status = 'running', attempts = ?, locked_by = ?, "
                "locked_until = ?, updated_at = ? WHERE id = ?",
                (item.attempts, item.locked_by, enc_time(item.locked_until), t_now, item.id),
            )
            claimed.append(item)
    return claimed


def _held(conn: sqlite3.Connection, work_id: str, worker_id: str) -> PendingWork:
    item = _work(conn, work_id)
    if item is None:
        raise NotFoundError(f"No pending work with id {work_id!r}.")
    if item.status != "running" or item.locked_by != worker_id:
        raise ConflictError(
            f"Work {work_id!r} is not held by worker {worker_id!r} (status {item.status!r}, "
            f"held by {item.locked_by!r}); its lease may have expired and another worker "
            "claimed it. Claim it again with ClaimWork."
        )
    return item


def finish_work(conn: sqlite3.Connection, op: FinishWork, cache: SideIndexes) -> None:
    """Mark a claimed item done."""
    _held(conn, op.id, op.worker_id)
    conn.execute(
        "UPDATE pending_work SET status = 'done', locked_by = NULL, locked_until = NULL, "
        "updated_at = ? WHERE id = ?",
        (enc_time(utcnow()), op.id),
    )


def release_work(conn: sqlite3.Connection, op: ReleaseWork, cache: SideIndexes) -> int:
    """Hand back a stopping worker's items: pending again, the attempt not counted."""
    cur = conn.execute(
        "UPDATE pending_work SET status = 'pending', locked_by = NULL, locked_until = NULL, "
        "attempts = MAX(attempts - 1, 0), not_before = ?, updated_at = ? "
        "WHERE status = 'running' AND locked_by = ?",
        (enc_time(utcnow()), enc_time(utcnow()), op.worker_id),
    )
    return cur.rowcount


def update_work(conn: sqlite3.Connection, op: UpdateWork, cache: SideIndexes) -> PendingWork:
    """Replace the payload of a claimed item (progress for a resumable retry)."""
    item = _held(conn, op.id, op.worker_id)
    item = dataclasses.replace(item, payload=dict(op.payload), updated_at=utcnow())
    conn.execute(
        "UPDATE pending_work SET payload = ?, updated_at = ? WHERE id = ?",
        (to_json(item.payload, "UpdateWork.payload"), enc_time(item.updated_at), item.id),
    )
    return item


def fail_work(conn: sqlite3.Connection, op: FailWork, cache: SideIndexes) -> PendingWork:
    """Record a failure: retry later, or park as failed when out of tries or told not to retry."""
    item = _held(conn, op.id, op.worker_id)
    park = op.retry_at is None or item.attempts >= item.max_attempts
    item = dataclasses.replace(
        item,
        status="failed" if park else "pending",
        not_before=item.not_before if op.retry_at is None else op.retry_at,
        locked_by=None,
        locked_until=None,
        last_error=op.error,
        raw_output=op.raw_output,
        updated_at=utcnow(),
    )
    conn.execute(
        "UPDATE pending_work SET status = ?, not_before = ?, locked_by = NULL, "
        "locked_until = NULL, last_error = ?, raw_output = ?, updated_at = ? WHERE id = ?",
        (
            item.status,
            enc_time(item.not_before),
            item.last_error,
            item.raw_output,
            enc_time(item.updated_at),
            item.id,
        ),
    )
    return item


def _work_where(
    statuses: tuple[str, ...] | None, kinds: tuple[str, ...] | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    _in("status", statuses, clauses, params)
    _in("kind", kinds, clauses, params)
    return (" AND ".join(clauses) or "1 = 1"), params


def list_work(conn: sqlite3.Connection, op: ListWork, cache: SideIndexes) -> list[PendingWork]:
    """Work items, oldest first."""
    w, params = _work_where(op.statuses, op.kinds)
    rows = conn.execute(
        f"SELECT * FROM pending_work WHERE {w} ORDER BY created_at, pk LIMIT ?",
        [*params, _limit(op.limit)],
    )
    return [row_to_work(row) for row in rows]


def count_work(conn: sqlite3.Connection, op: CountWork, cache: SideIndexes) -> int:
    """Count the items with these statuses (and kinds)."""
    w, params = _work_where(op.statuses, op.kinds)
    (n,) = conn.execute(f"SELECT COUNT(*) FROM pending_work WHERE {w}", params).fetchone()
    return int(n)


# --- proposals --------------------------------------------------------------------------------

_PROPOSAL_UPSERT = (
    f"INSERT INTO proposals ({', '.join(PROPOSAL_COLUMNS)}) "
    f"VALUES ({marks(len(PROPOSAL_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in PROPOSAL_COLUMNS[1:])
)


def put_proposal(conn: sqlite3.Connection, op: PutProposal, cache: SideIndexes) -> Proposal:
    """Insert or update a proposal; with ``expected_status``, only if the stored one matches."""
    p = op.proposal
    if op.expected_status is not None:
        row = conn.execute("SELECT status FROM proposals WHERE id = ?", (p.id,)).fetchone()
        stored = None if row is None else row[0]
        if stored != op.expected_status:
            raise ConflictError(
                f"Proposal {p.id!r} is {stored or 'missing'!r}, not {op.expected_status!r}: "
                "someone decided it first. Reload it with GetProposal before deciding again."
            )
    conn.execute(_PROPOSAL_UPSERT, proposal_params(p))
    return p


def get_proposal(conn: sqlite3.Connection, op: GetProposal, cache: SideIndexes) -> Proposal | None:
    """One proposal, or ``None``."""
    row = conn.execute("SELECT * FROM proposals WHERE id = ?", (op.id,)).fetchone()
    return None if row is None else row_to_proposal(row)


def list_proposals(
    conn: sqlite3.Connection, op: ListProposals, cache: SideIndexes
) -> list[Proposal]:
    """Proposals matching the op's filters, newest first."""
    clauses: list[str] = []
    params: list[Any] = []
    _in("status", op.statuses, clauses, params)
    for column in ("user_id", "session_id", "store", "mode"):
        value = getattr(op, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    w = " AND ".join(clauses) or "1 = 1"
    rows = conn.execute(
        f"SELECT * FROM proposals WHERE {w} ORDER BY created_at DESC, pk DESC LIMIT ?",
        [*params, _limit(op.limit)],
    )
    return [row_to_proposal(row) for row in rows]
