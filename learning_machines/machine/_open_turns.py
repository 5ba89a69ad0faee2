"""Turns begun by the wrappers (build_context, get_tools, process), by user and session."""

from __future__ import annotations

import threading
from collections import OrderedDict

from ._turn import Turn

__all__ = ["OpenTurns"]


class OpenTurns:
    """Turns begun by ``build_context`` and not yet finished, by (user, session).

    ``build_context``, ``get_tools`` and ``process`` called for one user and session share the
    turn the first of them began; ``process`` finishes it. Bounded, oldest dropped first.
    """

    def __init__(self, *, size: int = 1024) -> None:
        self._size = size
        self._turns: OrderedDict[tuple[str | None, str | None], Turn] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: tuple[str | None, str | None], turn: Turn) -> None:
        with self._lock:
            self._turns[key] = turn
            self._turns.move_to_end(key)
            while len(self._turns) > self._size:
                self._turns.popitem(last=False)

    def get(
        self, key: tuple[str | None, str | None], message: str | None, *, take: bool
    ) -> Turn | None:
        with self._lock:
            turn = self._turns.get(key)
            if turn is None or (message is not None and turn.context.message != message):
                return None
            if take:
                del self._turns[key]
            return turn
