"""Export a user's private data as JSON, and import it back (idempotently).

The export holds everything private to one user: their private learnings (every status) with
their history, their stored turns, proposals and pending work. Embeddings are included as lists
of floats with the embedder's name, so an import needs no model; rows embedded by another
embedder than the target machine's can be re-embedded there (``learning-machines reembed``).
Shared-namespace learnings the user authored are not exported: they belong to the namespace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from ..db import (
    PRIVATE_NAMESPACE,
    AppendMessage,
    Change,
    Db,
    EnqueueWork,
    GetLearnings,
    HistoryEntry,
    Learning,
    LearningFilter,
    ListHistory,
    ListLearnings,
    ListProposals,
    ListUserMessages,
    ListWork,
    Message,
    PendingWork,
    Proposal,
    PutHistory,
    PutLearning,
    PutProposal,
    utcnow,
)
from ..db._records import ALL_STATUSES
from ..exceptions import ValidationError

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "export_user", "import_user", "learning_from_dict"]

#: ``format`` field of an export.
EXPORT_FORMAT = "learning-machines/user-export"
#: ``version`` field of an export; importing a newer version is refused.
EXPORT_VERSION = 1

_TIME_FIELDS = frozenset(
    {
        "created_at",
        "updated_at",
        "valid_from",
        "valid_to",
        "last_recalled_at",
        "not_before",
        "locked_until",
        "decided_at",
        "expires_at",
    }
)
T = TypeVar("T")


def to_dict(record: Any) -> dict[str, Any]:
    """Return a record dataclass as a JSON-ready dict (times as ISO strings, tuples as lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            continue
        if key in _TIME_FIELDS and isinstance(value, str):
            value = datetime.fromisoformat(value)
        kwargs[key] = value
    return cls(**kwargs)


def learning_from_dict(data: Mapping[str, Any]) -> Learning:
    """Rebuild a :class:`Learning` from :func:`to_dict` output or a history snapshot."""
    learning = _from_dict(Learning, data)
    if learning.embedding is not None:
        learning = dataclasses.replace(
            learning, embedding=tuple(float(x) for x in learning.embedding)
        )
    return learning


def _private(user_id: str) -> LearningFilter:
    return LearningFilter(
        namespaces=(PRIVATE_NAMESPACE,), reader_user_id=user_id, statuses=ALL_STATUSES
    )


async def export_user(db: Db, user_id: str) -> dict[str, Any]:
    """Everything private to ``user_id`` as a JSON-ready dict (see the module docstring)."""
    learnings: list[Learning] = await db.arun(
        ListLearnings(filter=_private(user_id), limit=None, order_by="created_at", ascending=True)
    )
    history: list[HistoryEntry] = []
    for learning in learnings:
        entries: list[HistoryEntry] = await db.arun(ListHistory(learning_id=learning.id))
        history.extend(entries)
    messages = await db.arun(ListUserMessages(user_id=user_id))
    proposals = await db.arun(ListProposals(statuses=None, user_id=user_id, limit=None))
    work = [w for w in await db.arun(ListWork(limit=None)) if w.user_id == user_id]
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "user_id": user_id,
        "exported_at": utcnow().isoformat(),
        "learnings": [to_dict(x) for x in learnings],
        "history": [to_dict(x) for x in history],
        "messages": [to_dict(x) for x in messages],
        "proposals": [to_dict(x) for x in proposals],
        "pending_work": [to_dict(x) for x in work],
    }


def _check(data: Mapping[str, Any]) -> str:
    if data.get("format") != EXPORT_FORMAT:
        raise ValidationError(
            f"Not a Learning Machines user export (format {data.get('format')!r}); pass the "
            "JSON written by export()/`learning-machines export`."
        )
    version = data.get("version")
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise ValidationError(
            f"Export version {version!r} is newer than this library reads ({EXPORT_VERSION}); "
            "upgrade learning-machines."
        )
    user_id = data.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise ValidationError("The export has no user_id.")
    return user_id


def _same(a: Learning, b: Learning) -> bool:
    return dataclasses.replace(a, embedding=None) == dataclasses.replace(b, embedding=None)


async def import_user(
    db: Db, data: Mapping[str, Any], *, actor: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """Restore an :func:`export_user` dict into ``db``; returns rows written per kind.

    Idempotent: rows already present (same id, same values) are skipped, so importing twice
    writes nothing the second time. A learning whose stored row differs is overwritten, with an
    ``import`` history entry keeping the previous row. Original history entries are restored as
    they were.
    """
    user_id = _check(data)
    learnings = [learning_from_dict(x) for x in data.get("learnings", [])]
    for learning in learnings:
        if learning.namespace != PRIVATE_NAMESPACE or learning.user_id != user_id:
            raise ValidationError(
                f"Learning {learning.id} in the export of {user_id!r} is not private to them; "
                "an export holds only the user's private learnings."
            )
    # Every record must be the exported user's: an edited export must not write other users' data.
    for section in ("history", "messages", "proposals", "pending_work"):
        for record in data.get(section, []):
            if isinstance(record, Mapping) and record.get("user_id") not in (user_id, None):
                raise ValidationError(
                    f"A {section} record in the export of {user_id!r} belongs to "
                    f"{record.get('user_id')!r}; an export holds only one user's data."
                )
    counts = {"learnings": 0, "history": 0, "messages": 0, "proposals": 0, "pending_work": 0}
    entries = tuple(_from_dict(HistoryEntry, x) for x in data.get("history", []))
    if entries:
        counts["history"] = await db.arun(PutHistory(entries=entries))
    existing: list[Learning] = await db.arun(
        GetLearnings(ids=tuple(x.id for x in learnings), filter=_private(user_id))
    )
    stored = {x.id: x for x in existing}
    change = Change(action="import", actor=dict(actor or {"import": "export file"}))
    ops: list[Any] = [
        PutLearning(learning=x, change=change)
        for x in learnings
        if x.id not in stored or not _same(stored[x.id], x)
    ]
    counts["learnings"] = len(ops)

    have_messages = {m.id for m in await db.arun(ListUserMessages(user_id=user_id))}
    for m in data.get("messages", []):
        message = _from_dict(Message, m)
        if message.id not in have_messages:
            ops.append(AppendMessage(message=message))
            counts["messages"] += 1

    have_proposals = {
        p.id: p for p in await db.arun(ListProposals(statuses=None, user_id=user_id, limit=None))
    }
    for p in data.get("proposals", []):
        proposal = _from_dict(Proposal, p)
        if have_proposals.get(proposal.id) != proposal:
            ops.append(PutProposal(proposal=proposal))
            counts["proposals"] += 1

    have_work = {w.id for w in await db.arun(ListWork(limit=None))}
    for w in data.get("pending_work", []):
        work = _from_dict(PendingWork, w)
        if work.id not in have_work:
            ops.append(EnqueueWork(work=work))
            counts["pending_work"] += 1
    if ops:
        await db.abatch(ops)
    return counts
