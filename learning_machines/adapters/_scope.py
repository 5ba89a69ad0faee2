"""Who a framework's run is for: the ids a turn is begun with (pure, no I/O).

Every adapter finds them the same way, in three layers: the ids given to the adapter itself
win; then what the adapter's ``scope`` function returns for the run; then the framework's own
conventions (a ``user_id`` on the run's context or deps, the conversation or thread id as the
session). The model never takes part: tools never choose whose data they touch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TurnScope", "layered", "user_id_of"]


@dataclass(frozen=True, kw_only=True)
class TurnScope:
    """The user, session, agent and extra context of a turn begun by an adapter.

    ``None`` fields are filled from the next layer (see the module docs); a session left
    ``None`` everywhere gets a new id, so the turn starts a new session.
    """

    user_id: str | None = None
    """The user whose turn it is (their private learnings are recalled and written)."""
    session_id: str | None = None
    """The session (conversation) the turn belongs to."""
    agent_id: str | None = None
    """The agent answering, passed to stores as ``agent_id``."""
    context: Mapping[str, Any] = field(default_factory=dict)
    """Your own keys for every store (``{"project_id": "apollo"}``)."""

    def over(self, other: TurnScope) -> TurnScope:
        """Return this scope with its gaps filled from ``other`` (context merged, ours win)."""
        return TurnScope(
            user_id=self.user_id if self.user_id is not None else other.user_id,
            session_id=self.session_id if self.session_id is not None else other.session_id,
            agent_id=self.agent_id if self.agent_id is not None else other.agent_id,
            context={**other.context, **self.context},
        )

    def begin_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``machine.abegin``."""
        return {
            "user_id": self.user_id,
            "session_id": self.session_id,
            "agent_id": self.agent_id,
            **self.context,
        }


def user_id_of(value: object) -> Any:
    """A ``user_id`` carried by a framework's run context or deps (attribute or key), if any.

    Frameworks pass your own object through a run (pydantic-ai ``deps``, LangGraph
    ``context``, the Agents SDK ``context``); when it has a ``user_id``, that is the user. It is
    returned as found: the turn checks it (an ``int`` id is refused with the fix).
    """
    if isinstance(value, Mapping):
        return value.get("user_id")
    return getattr(value, "user_id", None)


def layered(given: TurnScope, found: TurnScope | None, framework: TurnScope) -> TurnScope:
    """The ids of a run: those ``given`` to the adapter, then ``found``, then the framework's."""
    return given.over((found or TurnScope()).over(framework))
