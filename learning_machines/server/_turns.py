"""Turns begun over the network and not yet finished, held by id for their owner.

A client begins a turn (recall), may call its tools, then finishes it (the turn is recorded and
learned from). Between those calls the :class:`~learning_machines.Turn` waits here, bounded in
number and age. A turn is found only by the principal that began it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from .._ids import same_identity
from ..exceptions import NotFoundError
from ..machine import Turn

__all__ = ["OpenTurns"]


@dataclass(frozen=True)
class _Entry:
    owner: str
    turn: Turn
    opened: float


class OpenTurns:
    """Open turns by id (and each user's latest by session), oldest dropped first."""

    def __init__(self, *, size: int = 4096, ttl_seconds: float = 3600.0) -> None:
        self._size = size
        self._ttl = ttl_seconds
        self._turns: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._turns:
            oldest = next(iter(self._turns.values()))
            if now - oldest.opened <= self._ttl and len(self._turns) <= self._size:
                return
            self._turns.popitem(last=False)

    def put(self, owner: str, turn: Turn) -> None:
        """Hold ``turn`` for ``owner`` (a user id) until it is finished or dropped."""
        with self._lock:
            now = time.monotonic()
            self._turns[turn.context.turn_id] = _Entry(owner, turn, now)
            self._turns.move_to_end(turn.context.turn_id)
            self._expire(now)

    def get(self, owner: str, turn_id: str, *, take: bool = False) -> Turn:
        """The open turn ``turn_id`` of ``owner``; :class:`NotFoundError` otherwise.

        ``take=True`` also removes it, in the same step: of two requests finishing one turn at
        once, only one gets it.
        """
        with self._lock:
            self._expire(time.monotonic())
            entry = self._turns.get(turn_id)
            found = entry is not None and same_identity(entry.owner, owner)
            if found and take:
                del self._turns[turn_id]
        if entry is None or not found:
            raise NotFoundError(
                f"no open turn {turn_id!r}: it was finished, expired after "
                f"{self._ttl:.0f} s, or never begun by this key; begin a new turn"
            )
        return entry.turn

    def latest(
        self,
        owner: str,
        *,
        session_id: str | None = None,
        message: str | None = None,
        take: bool = False,
    ) -> Turn | None:
        """``owner``'s most recently begun open turn, in ``session_id``, for ``message``.

        Either may be left out; ``take=True`` removes the turn in the same step.
        """
        with self._lock:
            self._expire(time.monotonic())
            for turn_id, entry in reversed(self._turns.items()):
                context = entry.turn.context
                if not same_identity(entry.owner, owner):
                    continue
                if session_id is not None and context.session_id != session_id:
                    continue
                if message is not None and context.message != message:
                    continue
                if take:
                    del self._turns[turn_id]
                return entry.turn
        return None

    def drop_owner(self, owner: str) -> None:
        """Forget every open turn of ``owner`` (they were forgotten)."""
        with self._lock:
            for turn_id in [k for k, e in self._turns.items() if same_identity(e.owner, owner)]:
                del self._turns[turn_id]
