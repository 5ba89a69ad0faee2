"""Entity memory's tools as :class:`ToolSpec` data (built once per store, bound per turn).

The model never chooses the user or the namespace: handlers take them from the turn. Write
tools send typed writes through the store's gate, like extraction does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .._modes import LearningMode
from .._turn_context import TurnContext
from ._entity_model import (
    EntityItem,
    EntityLookupArgs,
    EntityRecall,
    EntitySearchArgs,
    EntityWrite,
    EventItem,
    EventWrite,
    FactItem,
    FactWrite,
    QuestionKind,
    RelationItem,
    RelationWrite,
)
from ._tools import ToolSpec

__all__ = ["entity_tool_specs"]


class _EntityMemory(Protocol):
    """What the tools use of entity memory."""

    @property
    def mode(self) -> LearningMode: ...

    async def asearch(self, query: str, *, limit: int | None = ..., **context: Any) -> EntityRecall:
        """Search entities."""
        ...

    async def alookup(
        self, name: str, *, question: QuestionKind = ..., **context: Any
    ) -> EntityRecall:
        """Look an entity up by name."""
        ...

    def render(self, data: EntityRecall) -> list[str]:
        """Prompt lines."""
        ...

    async def submit_entity_write(
        self,
        write: EntityWrite | FactWrite | EventWrite | RelationWrite,
        context: Mapping[str, Any],
    ) -> str:
        """Send a write through the gate."""
        ...


def entity_tool_specs(store: _EntityMemory) -> list[ToolSpec[Any]]:
    """Read tools (every mode) and write tools (AGENTIC, PROPOSE, HITL) of ``store``."""

    async def search_entities(turn: TurnContext, args: EntitySearchArgs) -> str:
        found = await store.asearch(args.query, limit=args.limit, user_id=turn.user_id)
        return "\n".join(store.render(found)) or "No entities found."

    async def lookup_entity(turn: TurnContext, args: EntityLookupArgs) -> str:
        found = await store.alookup(
            args.name, question="events" if args.history else "facts", user_id=turn.user_id
        )
        return "\n".join(store.render(found)) or f"Nothing is remembered about {args.name!r}."

    specs: list[ToolSpec[Any]] = [
        ToolSpec(
            name="search_entities",
            description=(
                'Search remembered people, companies, projects and other entities. Ask "what '
                'happened with X" (or about a timeline / when) to get events in time order; '
                "otherwise you get current facts and relationships."
            ),
            args=EntitySearchArgs,
            handler=search_entities,
        ),
        ToolSpec(
            name="lookup_entity",
            description="Everything remembered about one entity, found by its name or an alias.",
            args=EntityLookupArgs,
            handler=lookup_entity,
        ),
    ]
    if store.mode is LearningMode.BACKGROUND:
        return specs

    async def save_entity(turn: TurnContext, args: EntityItem) -> str:
        return await store.submit_entity_write(EntityWrite(**args.model_dump()), turn.kwargs())

    async def save_entity_fact(turn: TurnContext, args: FactItem) -> str:
        return await store.submit_entity_write(FactWrite(**args.model_dump()), turn.kwargs())

    async def save_entity_event(turn: TurnContext, args: EventItem) -> str:
        return await store.submit_entity_write(EventWrite(**args.model_dump()), turn.kwargs())

    async def save_entity_relation(turn: TurnContext, args: RelationItem) -> str:
        return await store.submit_entity_write(RelationWrite(**args.model_dump()), turn.kwargs())

    specs += [
        ToolSpec(
            name="save_entity",
            description="Remember an entity (person, company, project, product, …) or update it.",
            args=EntityItem,
            handler=save_entity,
            writes=True,
        ),
        ToolSpec(
            name="save_entity_fact",
            description=(
                "Remember a fact that is true now about an entity, e.g. 'uses PostgreSQL'. Set "
                "replaces to a remembered fact this one makes untrue (kept as history)."
            ),
            args=FactItem,
            handler=save_entity_fact,
            writes=True,
        ),
        ToolSpec(
            name="save_entity_event",
            description="Remember something that happened to an entity, with its date.",
            args=EventItem,
            handler=save_entity_event,
            writes=True,
        ),
        ToolSpec(
            name="save_entity_relation",
            description=(
                "Remember how two entities relate, e.g. subject='Bob', relation='is CEO of', "
                "object='Acme'."
            ),
            args=RelationItem,
            handler=save_entity_relation,
            writes=True,
        ),
    ]
    return specs
