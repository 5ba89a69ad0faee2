"""Entity memory's tools: what the agent may call, bound to one turn's context."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._modes import LearningMode
from ._entity_model import EntityItem

if TYPE_CHECKING:
    from .entity_memory import EntityMemoryStore

__all__ = ["entity_tools"]


def entity_tools(store: EntityMemoryStore, context: dict[str, Any]) -> list[Callable[..., Any]]:
    """Read tools (every mode) and write tools (AGENTIC, PROPOSE, HITL) of ``store``.

    The tools are closures over the turn's ``context``: the model never chooses the user or the
    namespace. Writes go through the store's write gate.
    """
    user_id = context.get("user_id")

    async def search_entities(query: str, limit: int = 3) -> str:
        """Search remembered people, companies, projects and other entities.

        Ask "what happened with X" (or about a timeline / when) to get events in time
        order; otherwise you get current facts and relationships.

        Args:
            query: Names or a question, e.g. 'Acme database' or 'what happened with Acme'.
            limit: The most entities to return (1-10).

        """
        found = await store.asearch(query, limit=max(1, min(int(limit), 10)), user_id=user_id)
        return "\n".join(store.render(found)) or "No entities found."

    async def lookup_entity(name: str, history: bool = False) -> str:
        """Everything remembered about one entity, found by its name or an alias.

        Args:
            name: The entity's name or alias, e.g. 'Acme'.
            history: True for its events in time order instead of its current facts.

        """
        found = await store.alookup(
            name, question="events" if history else "facts", user_id=user_id
        )
        return "\n".join(store.render(found)) or f"Nothing is remembered about {name!r}."

    tools: list[Callable[..., Any]] = [search_entities, lookup_entity]
    if store.mode is LearningMode.BACKGROUND:
        return tools

    async def save_entity(
        name: str, entity_type: str, description: str = "", aliases: list[str] | None = None
    ) -> str:
        """Remember an entity (person, company, project, product, …) or update it.

        Args:
            name: Its canonical name, e.g. 'Acme Corp'.
            entity_type: person, company, project, product, place, team, tool, …
            description: One sentence saying what or who it is.
            aliases: Other names used for it.

        """
        item = EntityItem(
            name=name, entity_type=entity_type, description=description, aliases=aliases or []
        )
        return await store._write(
            {"op": "entity", **item.model_dump()}, f"entity: {name} ({entity_type})", **context
        )

    async def save_entity_fact(entity: str, fact: str, replaces: str = "") -> str:
        """Remember a fact that is true now about an entity, e.g. 'uses PostgreSQL'.

        Args:
            entity: The entity's name, e.g. 'Acme'.
            fact: The fact, without the entity's name.
            replaces: A remembered fact this one makes untrue, word for word as shown
                (e.g. 'uses MySQL'); it is kept as history. Empty if none.

        """
        return await store._write(
            {"op": "fact", "entity": entity, "fact": fact, "replaces": replaces},
            f"fact: {entity} {fact}" + (f" (replaces: {replaces})" if replaces else ""),
            **context,
        )

    async def save_entity_event(entity: str, event: str, date: str = "") -> str:
        """Remember something that happened to an entity, with its date.

        Args:
            entity: The entity's name, e.g. 'Acme'.
            event: What happened, e.g. 'launched v2'.
            date: When, as YYYY-MM-DD (resolve 'last Monday' to a date); empty if unknown.

        """
        return await store._write(
            {"op": "event", "entity": entity, "event": event, "date": date},
            f"event: {entity} {event} {date}".strip(),
            **context,
        )

    async def save_entity_relation(subject: str, relation: str, object: str) -> str:
        """Remember how two entities relate.

        Example: subject='Bob', relation='is CEO of', object='Acme'.

        Args:
            subject: Name of the subject entity.
            relation: The relation as a verb phrase, e.g. 'is CEO of', 'works on'.
            object: Name of the object entity.

        """
        return await store._write(
            {"op": "relation", "subject": subject, "relation": relation, "object": object},
            f"relation: {subject} {relation} {object}",
            **context,
        )

    tools.extend([save_entity, save_entity_fact, save_entity_event, save_entity_relation])
    return tools
