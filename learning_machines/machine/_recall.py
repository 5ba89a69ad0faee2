"""Recall for a turn: embed the message once, ask every store, assemble one prompt block."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from .._modes import LearningMode
from .._turn_context import TurnContext
from ..embedders import Embedder, aembed
from ._context import LearningContext, assemble_context
from ._registry import StoreRegistry

__all__ = ["RecallCache", "Recaller"]

_PROPOSE_GUIDANCE = (
    "Some things you save become proposals: tell the user what you proposed and ask them to "
    "confirm. When they confirm in a later message, call approve_proposal."
)


class RecallCache:
    """What each turn recalled, kept briefly in memory so its extraction need not recall again.

    Bounded (oldest turns dropped first) and only an optimisation: a worker in another process,
    or one that finds nothing here, recalls again with the turn's saved embedding.
    """

    def __init__(self, *, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, turn_id: str, recalled: Mapping[str, Any]) -> None:
        """Keep ``recalled`` for ``turn_id``."""
        with self._lock:
            self._items[turn_id] = recalled
            self._items.move_to_end(turn_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def pop(self, turn_id: str) -> Mapping[str, Any] | None:
        """Take what ``turn_id`` recalled, if it is still here."""
        with self._lock:
            return self._items.pop(turn_id, None)


class Recaller:
    """Recalls from every store of a registry for one turn and renders the prompt block."""

    def __init__(
        self, *, registry: StoreRegistry, embedder: Embedder, context_budget: int | None
    ) -> None:
        self.registry = registry
        self.embedder = embedder
        self.context_budget = context_budget

    async def embed(self, context: TurnContext) -> TurnContext:
        """The context with the message's embedding.

        Computed once per turn, and only when some store searches by it.
        """
        if context.query_vector is not None or not context.message:
            return context
        if not self.registry.uses_query_vector():
            return context
        vector = (await aembed(self.embedder, [context.message]))[0]
        return dataclasses.replace(context, query_vector=tuple(float(x) for x in vector))

    async def recall(self, context: TurnContext) -> tuple[TurnContext, LearningContext]:
        """Recall for ``context``: returns it (with the embedding) and the learned context."""
        context = await self.embed(context)
        kwargs = context.kwargs()
        names = list(self.registry)
        results = await asyncio.gather(*(self.registry[n].recall(kwargs) for n in names))
        recalled = dict(zip(names, results, strict=True))
        blocks: dict[str, str] = {}
        guidance: dict[str, str] = {}
        budgets: dict[str, int | None] = {}
        for name in names:
            slot = self.registry[name]
            blocks[name] = slot.store.build_context(recalled[name]) or ""
            budgets[name] = slot.max_tokens
            text = slot.guidance(kwargs)
            if text:
                guidance[name] = text
        if self.registry.has_mode(LearningMode.PROPOSE):
            guidance["_proposals"] = _PROPOSE_GUIDANCE
        text, kept = assemble_context(
            blocks=blocks, guidance=guidance, budgets=budgets, total_budget=self.context_budget
        )
        learned = LearningContext(text=text, recalled=recalled, blocks=kept, guidance=guidance)
        return context, learned
