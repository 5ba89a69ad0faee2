"""The typed context of one turn, checked once at the API edge (pure, no I/O).

A :class:`TurnContext` is what every part of a turn shares: who is talking (user, session,
agent, team), which turn it is (id, index within the session, time), the user's message, the
message's embedding once it was computed, and the caller's own keys (``project_id="apollo"``).
Stores still receive it as keyword arguments (:meth:`TurnContext.kwargs`), so a store written
against the five-member protocol keeps working.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._ids import check_id, check_optional_id
from .exceptions import ValidationError

__all__ = ["MAX_MESSAGE_CHARS", "RESERVED_CONTEXT_KEYS", "TurnContext", "check_message"]

#: The longest user message a turn accepts, in characters (about 250k tokens).
MAX_MESSAGE_CHARS = 1_000_000

#: Keys of a turn's own fields, as stores receive them in ``**context``.
_TURN_KEYS = frozenset(
    {
        "user_id",
        "session_id",
        "agent_id",
        "team_id",
        "turn_id",
        "turn_index",
        "now",
        "message",
        "query_vector",
    }
)

#: Keys the machine sets itself, or that name a parameter of a store method
#: (``process(messages, ...)``, ``apply_extraction(data, ...)``): callers may not pass them.
RESERVED_CONTEXT_KEYS = _TURN_KEYS | {
    "mode",
    "messages",
    "data",
    "recalled",
    "approved_by",
    "proposal_id",
}


def check_message(message: object, *, required: bool = True) -> str | None:
    """Return ``message`` if a turn can use it; raise :class:`ValidationError` saying why not.

    A message is text: not ``None`` (unless ``required`` is false), not bytes, at most
    :data:`MAX_MESSAGE_CHARS` characters, and encodable as UTF-8 (no lone surrogates).
    """
    if message is None:
        if required:
            raise ValidationError("the message is None; pass the user's message as a string")
        return None
    if not isinstance(message, str):
        raise ValidationError(
            f"the message must be a string, not {type(message).__name__}; pass the user's text"
        )
    if len(message) > MAX_MESSAGE_CHARS:
        raise ValidationError(
            f"the message is {len(message):,} characters long; at most {MAX_MESSAGE_CHARS:,} "
            "are accepted: pass large documents as files or tools, not as the message"
        )
    try:
        message.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = message[exc.start]
        raise ValidationError(
            f"the message contains a lone surrogate U+{ord(bad):04X} at position {exc.start}, "
            "which is not text; decode your input with errors='replace' first"
        ) from exc
    return message


def _check_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if key in RESERVED_CONTEXT_KEYS:
            raise ValidationError(
                f"{key} is set by the machine for every turn (or names a store method's "
                f"parameter); do not pass {key}=... as context. Reserved: "
                f"{', '.join(sorted(RESERVED_CONTEXT_KEYS))}"
            )
        if not key.isidentifier() or keyword.iskeyword(key):
            raise ValidationError(f"context key {key!r} is not a Python identifier")
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"context value {key}={value!r} is not JSON-serialisable; pending work is "
                "stored in the db, so pass strings, numbers, lists or dicts"
            ) from exc
        out[key] = value
    return out


@dataclass(frozen=True, kw_only=True)
class TurnContext:
    """Who, when and what of one turn; built and checked once, then shared by every part.

    Build it with :meth:`new` (which checks ids, the message and extra keys); the machine does
    that in ``begin``. Stores get :meth:`kwargs`.
    """

    user_id: str | None
    """The user of the turn (``None`` for turns that only touch shared namespaces)."""
    session_id: str
    """The session (conversation) the turn belongs to."""
    turn_id: str
    """Unique id of the turn: provenance of everything learned from it."""
    turn_index: int
    """Position of the turn in its session, from 0."""
    now: datetime
    """When the turn started (UTC)."""
    message: str | None = None
    """The user's message."""
    agent_id: str | None = None
    """The agent answering."""
    team_id: str | None = None
    """The team the user belongs to, when stores scope by team."""
    query_vector: tuple[float, ...] | None = None
    """Embedding of :attr:`message`, computed once per turn and shared by every store."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """The caller's own keys (``project_id="apollo"``), passed to every store."""

    @classmethod
    def new(
        cls,
        *,
        message: object,
        user_id: object,
        session_id: object,
        turn_id: str,
        turn_index: int,
        now: datetime,
        agent_id: object = None,
        team_id: object = None,
        extra: Mapping[str, Any] | None = None,
        message_required: bool = True,
    ) -> TurnContext:
        """Check every value a caller passed and build the context.

        Raises :class:`ValidationError` with the fix for an id of the wrong type, length or
        characters, a message that is not text, or an extra key that is reserved or cannot be
        stored.
        """
        session = check_id(session_id, name="session_id")
        return cls(
            user_id=check_optional_id(user_id, name="user_id"),
            session_id=session,
            agent_id=check_optional_id(agent_id, name="agent_id"),
            team_id=check_optional_id(team_id, name="team_id"),
            turn_id=turn_id,
            turn_index=turn_index,
            now=now if now.tzinfo else now.replace(tzinfo=UTC),
            message=check_message(message, required=message_required),
            extra=_check_extra(extra or {}),
        )

    @classmethod
    def from_kwargs(cls, context: Mapping[str, Any]) -> TurnContext:
        """Rebuild a context from store keyword arguments (what :meth:`kwargs` returns).

        For stores used on their own (``store.get_tools(**context)``); missing ids and times
        are filled in.
        """
        from .db import new_id, utcnow

        vector = context.get("query_vector")
        now = context.get("now")
        return cls(
            user_id=context.get("user_id"),
            session_id=str(context.get("session_id") or new_id()),
            agent_id=context.get("agent_id"),
            team_id=context.get("team_id"),
            turn_id=str(context.get("turn_id") or new_id()),
            turn_index=int(context.get("turn_index") or 0),
            now=now if isinstance(now, datetime) else utcnow(),
            message=context.get("message"),
            query_vector=None if vector is None else tuple(float(x) for x in vector),
            extra={k: v for k, v in context.items() if k not in _TURN_KEYS},
        )

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments stores receive as ``**context``."""
        out: dict[str, Any] = {
            "user_id": self.user_id,
            "session_id": self.session_id,
            "agent_id": self.agent_id,
            "team_id": self.team_id,
            "turn_id": self.turn_id,
            "turn_index": self.turn_index,
            "now": self.now,
            "message": self.message,
        }
        if self.query_vector is not None:
            out["query_vector"] = self.query_vector
        out.update(self.extra)
        return out
