"""Export a user's private data as JSON, and import it back (idempotently).

The export holds everything private to one user: their private learnings (every status) with
their history, their stored turns, proposals and pending work. Embeddings are included as lists
of floats with the embedder's name, so an import needs no model; rows embedded by another
embedder than the target machine's can be re-embedded there (``learning-machines reembed``).
Shared-namespace learnings the user authored are not exported: they belong to the namespace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from .._ids import check_id
from ..db import (
    PRIVATE_NAMESPACE,
    AppendMessage,
    Change,
    Db,
    EnqueueWork,
    GetLearnings,
    GetProposal,
    HistoryEntry,
    Learning,
    LearningFilter,
    ListHistory,
    ListLearnings,
    ListProposals,
    ListUserMessages,
    ListWork,
    LocateLearnings,
    Message,
    PendingWork,
    Proposal,
    PutHistory,
    PutLearning,
    PutProposal,
    normalize_text,
    stable_id,
    utcnow,
)
from ..db._records import ALL_STATUSES
from ..exceptions import ValidationError
from ._turn_ids import DECISION_TYPE, SIGNAL_TYPE, decision_id, signal_id

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
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"An export is a JSON object, not {type(data).__name__}; pass the JSON written by "
            "export()/`learning-machines export`."
        )
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
    if data.get("user_id") is None:
        raise ValidationError("The export has no user_id.")
    return check_id(data.get("user_id"), name="the export's user_id")


def _same(a: Learning, b: Learning) -> bool:
    return dataclasses.replace(a, embedding=None) == dataclasses.replace(b, embedding=None)


@dataclass(frozen=True, kw_only=True)
class _Records:
    """The records of an export, parsed (nothing is trusted yet)."""

    learnings: list[Learning]
    history: list[HistoryEntry]
    messages: list[Message]
    proposals: list[Proposal]
    work: list[PendingWork]


def _section(
    data: Mapping[str, Any], name: str, build: Callable[[Mapping[str, Any]], T]
) -> list[T]:
    raw = data.get(name, [])
    if not isinstance(raw, list):
        raise ValidationError(f"The export's {name!r} must be a list, not {type(raw).__name__}.")
    out: list[T] = []
    for i, record in enumerate(raw):
        if not isinstance(record, Mapping):
            raise ValidationError(f"{name}[{i}] of the export is not an object.")
        try:
            out.append(build(record))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{name}[{i}] of the export is not valid: {exc}") from exc
    return out


def _parse(data: Mapping[str, Any]) -> _Records:
    return _Records(
        learnings=_section(data, "learnings", learning_from_dict),
        history=_section(data, "history", lambda x: _from_dict(HistoryEntry, x)),
        messages=_section(data, "messages", lambda x: _from_dict(Message, x)),
        proposals=_section(data, "proposals", lambda x: _from_dict(Proposal, x)),
        work=_section(data, "pending_work", lambda x: _from_dict(PendingWork, x)),
    )


def _derived_ids(learning: Learning, user_id: str) -> set[str] | None:
    """The ids the built-in stores derive for this row of ``user_id`` (``None``: not derived).

    A profile, a session's context and a private entity have ids computed from their owner, so
    an export carrying such an id computed for someone else would take that person's row the
    day it is first written. A turn's decision record and feedback signals have ids computed
    from the turn (and the rater) they are about, which must be the turn they name.
    """
    if learning.learning_type in (DECISION_TYPE, SIGNAL_TYPE):
        turn = _turn_of(learning)
        if turn is None:
            return set()  # names no turn: no id is right
        if learning.learning_type == DECISION_TYPE:
            return {decision_id(turn)}
        return {signal_id(turn, str(learning.content.get("rater")))}

    if learning.learning_type == "user_profile":
        return {stable_id("user_profile", PRIVATE_NAMESPACE, user_id)}
    if learning.learning_type == "session_context":
        return {stable_id("session_context", PRIVATE_NAMESPACE, user_id, learning.session_id)}
    if learning.learning_type == "entity":
        aliases = learning.content.get("aliases") or []
        names = [learning.content.get("name"), *(aliases if isinstance(aliases, list) else [])]
        return {
            stable_id("entity", PRIVATE_NAMESPACE, user_id, normalize_text(str(n)))
            for n in names
            if n
        }
    return None


def _turn_of(learning: Learning) -> str | None:
    """The turn a decision record or feedback signal is about (``None``: it names none)."""
    turn = learning.content.get("turn_id")
    if not isinstance(turn, str) or not turn or turn != learning.entity_id:
        return None
    return turn


def _refuse(user_id: str, what: str) -> ValidationError:
    return ValidationError(
        f"The export of {user_id!r} holds {what}; an export may only create or change that "
        "user's own private rows. Nothing was imported."
    )


def _check_owned(user_id: str, records: _Records) -> None:
    """Every record must be the export's user's own, whatever it claims (pure)."""
    ids = {x.id for x in records.learnings}
    for x in records.learnings:
        if x.namespace != PRIVATE_NAMESPACE or x.user_id != user_id:
            raise _refuse(user_id, f"learning {x.id} of namespace {x.namespace!r} owned by "
                                   f"{x.user_id!r}")  # fmt: skip
        derived = _derived_ids(x, user_id)
        if derived is not None and x.id not in derived:
            raise _refuse(user_id, f"the {x.learning_type} {x.id}, whose id is not the one "
                                   "derived for this user")  # fmt: skip
    for e in records.history:
        if e.user_id != user_id or e.learning_id not in ids:
            raise _refuse(user_id, f"history entry {e.id} of learning {e.learning_id} owned by "
                                   f"{e.user_id!r}, not one of the exported learnings")  # fmt: skip
        for snapshot in (e.old, e.new):
            if snapshot is None:
                continue
            if (
                not isinstance(snapshot, Mapping)
                or snapshot.get("id") != e.learning_id
                or snapshot.get("namespace") != PRIVATE_NAMESPACE
                or snapshot.get("user_id") != user_id
            ):
                raise _refuse(user_id, f"history entry {e.id}, whose row is not this user's "
                                       "private learning")  # fmt: skip
    for m in records.messages:
        if m.user_id != user_id:
            raise _refuse(user_id, f"message {m.id} of user {m.user_id!r}")
    for p in records.proposals:
        if p.user_id != user_id:
            raise _refuse(user_id, f"proposal {p.id} of user {p.user_id!r}")
    for w in records.work:
        context = w.payload.get("context") if isinstance(w.payload, Mapping) else None
        if (
            w.user_id != user_id
            or not (w.kind == "extract" or w.kind.startswith("extract:"))
            or not isinstance(context, Mapping)
            or context.get("user_id") != user_id
        ):
            raise _refuse(user_id, f"pending work {w.id} ({w.kind!r}) for a turn of "
                                   f"{w.user_id!r}")  # fmt: skip


async def _check_free(db: Db, user_id: str, records: _Records) -> None:
    """No id in the export may name a row that belongs to someone else (or to a namespace)."""
    ids = tuple(x.id for x in records.learnings)
    visible: list[Learning] = await db.arun(
        GetLearnings(
            ids=ids,
            filter=LearningFilter(namespaces=None, reader_user_id=user_id, statuses=ALL_STATUSES),
        )
    )
    for row in visible:
        if row.namespace != PRIVATE_NAMESPACE:
            raise _refuse(user_id, f"learning {row.id}, which is a row of the shared namespace "
                                   f"{row.namespace!r}")  # fmt: skip
    for learning_id in ids:
        # Another user's private row is invisible to this user; its history names its owner.
        for e in await db.arun(ListHistory(learning_id=learning_id)):
            snapshots = [s for s in (e.old, e.new) if s is not None]
            if e.user_id != user_id or any(
                s.get("namespace") != PRIVATE_NAMESPACE or s.get("user_id") != user_id
                for s in snapshots
            ):
                raise _refuse(user_id, f"learning {learning_id}, whose id belongs to another "
                                       "owner")  # fmt: skip
    # A decision record or signal about a turn must be about one of this user's turns: the
    # turn's decision record, where there is one, names its owner.
    turns = {t for t in (_turn_of(x) for x in records.learnings) if t is not None}
    if turns:
        records_of = {decision_id(t): t for t in sorted(turns)}
        for found in await db.arun(LocateLearnings(ids=tuple(records_of))):
            if found.user_id != user_id:
                raise _refuse(user_id, f"records of turn {records_of[found.id]}, which is "
                                       "another user's turn")  # fmt: skip
    for p in records.proposals:
        stored = await db.arun(GetProposal(id=p.id))
        if stored is not None and stored.user_id != user_id:
            raise _refuse(user_id, f"proposal {p.id}, whose id belongs to another user")
    work = await db.arun(ListWork(limit=None))
    others = [w for w in work if w.user_id != user_id]
    taken_ids = {w.id for w in others}
    taken_keys = {w.dedupe_key for w in others if w.dedupe_key is not None}
    for w in records.work:
        if w.id in taken_ids or (w.dedupe_key is not None and w.dedupe_key in taken_keys):
            raise _refuse(user_id, f"pending work {w.id}, whose id or key belongs to another "
                                   "user")  # fmt: skip


async def import_user(
    db: Db, data: Mapping[str, Any], *, actor: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """Restore an :func:`export_user` dict into ``db``; returns rows written per kind.

    Idempotent: rows already present (same id, same values) are skipped, so importing twice
    writes nothing the second time. A learning whose stored row differs is overwritten, with an
    ``import`` history entry keeping the previous row. Original history entries are restored as
    they were.

    An import only creates or changes rows of the export's own user and never moves a row
    between owners: every record must be that user's (no ``user_id: null``), history must be of
    the exported learnings, ids must not name another user's or a shared namespace's row, and
    derived ids (profile, session, entity) must be the ones derived for this user. Otherwise
    :class:`ValidationError` is raised and nothing is written. Pending work is imported without
    its saved model output, so a worker extracts the turn again instead of replaying it.
    """
    user_id = _check(data)
    records = _parse(data)
    _check_owned(user_id, records)
    await _check_free(db, user_id, records)

    counts = {"learnings": 0, "history": 0, "messages": 0, "proposals": 0, "pending_work": 0}
    # Original history first (in the same transaction), so it stays older than the import entry.
    ops: list[Any] = [PutHistory(entries=tuple(records.history))] if records.history else []
    existing: list[Learning] = await db.arun(
        GetLearnings(ids=tuple(x.id for x in records.learnings), filter=_private(user_id))
    )
    stored = {x.id: x for x in existing}
    change = Change(action="import", actor=dict(actor or {"import": "export file"}))
    puts = [
        PutLearning(learning=x, change=change)
        for x in records.learnings
        if x.id not in stored or not _same(stored[x.id], x)
    ]
    ops += puts
    counts["learnings"] = len(puts)

    have_messages = {m.id for m in await db.arun(ListUserMessages(user_id=user_id))}
    for message in records.messages:
        if message.id not in have_messages:
            ops.append(AppendMessage(message=message))
            counts["messages"] += 1

    have_proposals = {
        p.id: p for p in await db.arun(ListProposals(statuses=None, user_id=user_id, limit=None))
    }
    for proposal in records.proposals:
        if have_proposals.get(proposal.id) != proposal:
            ops.append(PutProposal(proposal=proposal))
            counts["proposals"] += 1

    have_work = {w.id for w in await db.arun(ListWork(limit=None))}
    for work in records.work:
        if work.id not in have_work:
            payload = {k: v for k, v in work.payload.items() if k != "extraction"}
            ops.append(EnqueueWork(work=dataclasses.replace(work, payload=payload)))
            counts["pending_work"] += 1
    if ops:
        # One transaction: a duplicate message id (another user's) refuses the whole import.
        results = await db.abatch(ops)
        if records.history:
            counts["history"] = int(results[0])
    return counts
