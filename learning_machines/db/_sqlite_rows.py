"""Mapping between row dataclasses and SQLite values (pure, no I/O).

Times are stored as fixed-width ISO-8601 UTC text (so they sort as text), JSON as text and
embeddings as little-endian float32 blobs.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ._decode import require_object
from ._records import HistoryEntry, Learning, Message, PendingWork, Proposal

__all__ = [
    "LEARNING_COLUMNS",
    "MESSAGE_COLUMNS",
    "PROPOSAL_COLUMNS",
    "WORK_COLUMNS",
    "dec_time",
    "decode_vector",
    "enc_time",
    "encode_vector",
    "from_json",
    "fts_terms",
    "learning_params",
    "learning_snapshot",
    "marks",
    "row_to_history",
    "row_to_learning",
    "row_to_message",
    "row_to_proposal",
    "row_to_work",
    "to_json",
]

# Years below 1000 need their leading zeros: ``strftime("%Y")`` leaves them out on glibc, and
# ``476-09-04…`` neither sorts as text nor parses back.
_UNPADDED_YEAR = re.compile(r"^(\d{1,3})-")


def marks(n: int) -> str:
    """``n`` comma-separated ``?`` placeholders (for ``IN (...)``)."""
    return ", ".join("?" * n)


def enc_time(t: datetime | None) -> str | None:
    """Fixed-width UTC text for ``t`` (naive datetimes are taken as UTC)."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def dec_time(s: str | None) -> datetime | None:
    """Return the timezone-aware datetime stored as ``s``.

    Also reads years below 1000 stored without leading zeros (by older versions).
    """
    if s is None:
        return None
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        padded = _UNPADDED_YEAR.sub(lambda m: m.group(1).zfill(4) + "-", s)
        if padded == s:
            raise
        return datetime.fromisoformat(padded)


def _req_time(s: str) -> datetime:
    t = dec_time(s)
    assert t is not None
    return t


def to_json(value: Any, what: str) -> str:
    """JSON text of ``value``; a value JSON cannot hold is the caller's mistake."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{what} must be JSON-serialisable (str, numbers, bool, None, lists, dicts): {exc}"
        ) from exc


def from_json(text: str | None) -> Any:
    """Return the value stored as JSON ``text`` (``None`` stays ``None``)."""
    return None if text is None else json.loads(text)


def encode_vector(vector: tuple[float, ...] | None) -> bytes | None:
    """Little-endian float32 bytes of ``vector``."""
    if vector is None:
        return None
    array = np.asarray(vector, dtype="<f4")
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValidationError("An embedding must be a non-empty sequence of finite floats.")
    return array.tobytes()


def decode_vector(blob: bytes | None) -> tuple[float, ...] | None:
    """Return the vector stored as ``blob``."""
    if blob is None:
        return None
    return tuple(np.frombuffer(blob, dtype="<f4").tolist())


# --- learnings --------------------------------------------------------------------------------

#: Columns of ``learnings`` written from a :class:`Learning`, in ``learning_params`` order.
LEARNING_COLUMNS = (
    "id",
    "learning_type",
    "namespace",
    "content",
    "search_text",
    "content_hash",
    "user_id",
    "session_id",
    "agent_id",
    "team_id",
    "entity_id",
    "embedding",
    "embedder",
    "status",
    "valid_from",
    "valid_to",
    "superseded_by",
    "created_at",
    "updated_at",
    "recall_count",
    "last_recalled_at",
    "feedback",
    "provenance",
    "helpful",
    "harmful",
)


def learning_params(x: Learning) -> list[Any]:
    """Values of :data:`LEARNING_COLUMNS` for ``x``."""
    return [
        x.id,
        x.learning_type,
        x.namespace,
        to_json(x.content, "Learning.content"),
        x.search_text,
        x.content_hash,
        x.user_id,
        x.session_id,
        x.agent_id,
        x.team_id,
        x.entity_id,
        encode_vector(x.embedding),
        x.embedder,
        x.status,
        enc_time(x.valid_from),
        enc_time(x.valid_to),
        x.superseded_by,
        enc_time(x.created_at),
        enc_time(x.updated_at),
        x.recall_count,
        enc_time(x.last_recalled_at),
        float(x.feedback),
        to_json(x.provenance, "Learning.provenance"),
        float(x.helpful),
        float(x.harmful),
    ]


def row_to_learning(row: sqlite3.Row) -> Learning:
    """Build the :class:`Learning` of a ``learnings`` row."""
    return Learning(
        id=row["id"],
        learning_type=row["learning_type"],
        namespace=row["namespace"],
        content=require_object(from_json(row["content"]), "content"),
        search_text=row["search_text"],
        user_id=row["user_id"],
        session_id=row["session_id"],
        agent_id=row["agent_id"],
        team_id=row["team_id"],
        entity_id=row["entity_id"],
        embedding=decode_vector(row["embedding"]),
        embedder=row["embedder"],
        status=row["status"],
        valid_from=dec_time(row["valid_from"]),
        valid_to=dec_time(row["valid_to"]),
        superseded_by=row["superseded_by"],
        created_at=_req_time(row["created_at"]),
        updated_at=_req_time(row["updated_at"]),
        recall_count=row["recall_count"],
        last_recalled_at=dec_time(row["last_recalled_at"]),
        feedback=row["feedback"],
        provenance=require_object(from_json(row["provenance"]), "provenance"),
        helpful=row["helpful"],
        harmful=row["harmful"],
        version=row["version"],
    )


def learning_snapshot(x: Learning) -> dict[str, Any]:
    """Return the learning as a JSON-ready dict for its history: every column but the embedding."""
    out: dict[str, Any] = {}
    for f in fields(x):
        if f.name == "embedding":
            continue
        value = getattr(x, f.name)
        out[f.name] = value.isoformat() if isinstance(value, datetime) else value
    out["content_hash"] = x.content_hash
    return out


def row_to_history(row: sqlite3.Row) -> HistoryEntry:
    """Build the :class:`HistoryEntry` of a ``learning_history`` row."""
    return HistoryEntry(
        id=row["id"],
        learning_id=row["learning_id"],
        action=row["action"],
        old=from_json(row["old"]),
        new=from_json(row["new"]),
        actor=from_json(row["actor"]),
        reason=row["reason"],
        turn_id=row["turn_id"],
        user_id=row["user_id"],
        created_at=_req_time(row["created_at"]),
    )


# --- messages, work, proposals ------------------------------------------------------------------

#: Columns of ``messages`` in :func:`message_params` order.
MESSAGE_COLUMNS = (
    "id",
    "session_id",
    "user_id",
    "agent_id",
    "turn_id",
    "turn_index",
    "user_message",
    "assistant_message",
    "messages_json",
    "created_at",
)


def message_params(m: Message) -> list[Any]:
    """Values of :data:`MESSAGE_COLUMNS` for ``m``."""
    return [
        m.id,
        m.session_id,
        m.user_id,
        m.agent_id,
        m.turn_id,
        m.turn_index,
        m.user_message,
        m.assistant_message,
        m.messages_json,
        enc_time(m.created_at),
    ]


def row_to_message(row: sqlite3.Row) -> Message:
    """Build the :class:`Message` of a ``messages`` row."""
    return Message(
        id=row["id"],
        session_id=row["session_id"],
        user_id=row["user_id"],
        agent_id=row["agent_id"],
        turn_id=row["turn_id"],
        turn_index=row["turn_index"],
        user_message=row["user_message"],
        assistant_message=row["assistant_message"],
        messages_json=row["messages_json"],
        created_at=_req_time(row["created_at"]),
    )


#: Columns of ``pending_work`` in :func:`work_params` order.
WORK_COLUMNS = (
    "id",
    "kind",
    "payload",
    "dedupe_key",
    "user_id",
    "status",
    "attempts",
    "max_attempts",
    "not_before",
    "locked_by",
    "locked_until",
    "last_error",
    "raw_output",
    "created_at",
    "updated_at",
)


def work_params(w: PendingWork) -> list[Any]:
    """Values of :data:`WORK_COLUMNS` for ``w``."""
    return [
        w.id,
        w.kind,
        to_json(w.payload, "PendingWork.payload"),
        w.dedupe_key,
        w.user_id,
        w.status,
        w.attempts,
        w.max_attempts,
        enc_time(w.not_before),
        w.locked_by,
        enc_time(w.locked_until),
        w.last_error,
        w.raw_output,
        enc_time(w.created_at),
        enc_time(w.updated_at),
    ]


def row_to_work(row: sqlite3.Row) -> PendingWork:
    """Build the :class:`PendingWork` of a ``pending_work`` row."""
    return PendingWork(
        id=row["id"],
        kind=row["kind"],
        payload=from_json(row["payload"]),
        dedupe_key=row["dedupe_key"],
        user_id=row["user_id"],
        status=row["status"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        not_before=_req_time(row["not_before"]),
        locked_by=row["locked_by"],
        locked_until=dec_time(row["locked_until"]),
        last_error=row["last_error"],
        raw_output=row["raw_output"],
        created_at=_req_time(row["created_at"]),
        updated_at=_req_time(row["updated_at"]),
    )


#: Columns of ``proposals`` in :func:`proposal_params` order.
PROPOSAL_COLUMNS = (
    "id",
    "learning_type",
    "store",
    "mode",
    "namespace",
    "user_id",
    "session_id",
    "turn_id",
    "turn_index",
    "payload",
    "summary",
    "status",
    "decided_by",
    "decided_at",
    "decision_note",
    "learning_id",
    "created_at",
    "expires_at",
)


def proposal_params(p: Proposal) -> list[Any]:
    """Values of :data:`PROPOSAL_COLUMNS` for ``p``."""
    return [
        p.id,
        p.learning_type,
        p.store,
        p.mode,
        p.namespace,
        p.user_id,
        p.session_id,
        p.turn_id,
        p.turn_index,
        to_json(p.payload, "Proposal.payload"),
        p.summary,
        p.status,
        p.decided_by,
        enc_time(p.decided_at),
        p.decision_note,
        p.learning_id,
        enc_time(p.created_at),
        enc_time(p.expires_at),
    ]


def row_to_proposal(row: sqlite3.Row) -> Proposal:
    """Build the :class:`Proposal` of a ``proposals`` row."""
    return Proposal(
        id=row["id"],
        learning_type=row["learning_type"],
        store=row["store"],
        mode=row["mode"],
        namespace=row["namespace"],
        user_id=row["user_id"],
        session_id=row["session_id"],
        turn_id=row["turn_id"],
        turn_index=row["turn_index"],
        payload=from_json(row["payload"]),
        summary=row["summary"],
        status=row["status"],
        decided_by=row["decided_by"],
        decided_at=dec_time(row["decided_at"]),
        decision_note=row["decision_note"],
        learning_id=row["learning_id"],
        created_at=_req_time(row["created_at"]),
        expires_at=dec_time(row["expires_at"]),
    )


# --- keyword queries ----------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 64
_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def fts_terms(text: str) -> list[str]:
    """The words of user text as quoted FTS5 terms (FTS syntax in the text stays inert).

    Stopwords and duplicates are dropped; at most 64 terms are kept.
    """
    terms: list[str] = []
    seen: set[str] = set()
    for word in _WORD.findall(text.casefold()):
        word = word.replace("_", " ").strip()
        if not word or word in _STOPWORDS or word in seen:
            continue
        seen.add(word)
        terms.append('"' + word.replace('"', "") + '"')
        if len(terms) >= _MAX_TERMS:
            break
    return terms
