"""Entity memory's data: extraction schema, recalled views, and how they are rendered (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, Field, RootModel

from ..db import Learning
from ._shared import format_day

__all__ = [
    "ENTITY",
    "EVENT",
    "FACT",
    "RELATION",
    "AnyEntityWrite",
    "EntityExtraction",
    "EntityItem",
    "EntityLookupArgs",
    "EntityMemoryWrite",
    "EntityRecall",
    "EntitySearchArgs",
    "EntityView",
    "EntityWrite",
    "EventItem",
    "EventWrite",
    "FactItem",
    "FactWrite",
    "QuestionKind",
    "RelationItem",
    "RelationWrite",
    "has_names",
    "question_kind",
    "render_entity",
]

ENTITY = "entity"
FACT = "entity_fact"
EVENT = "entity_event"
RELATION = "entity_relation"

#: ``"facts"``: what is true now ("what do we know about Acme");
#: ``"events"``: what happened, in time order ("what happened with Acme").
QuestionKind = Literal["facts", "events"]

_HISTORY = re.compile(
    r"\b(happen\w*|history|histories|timeline|when|events?|chronolog\w*|recent(ly)?|latest|"
    r"news|over time|so far|what changed|changes)\b",
    re.IGNORECASE,
)


def question_kind(text: str) -> QuestionKind:
    """Whether ``text`` asks what happened (events, in time order) or what is known (facts)."""
    return "events" if _HISTORY.search(text or "") else "facts"


class EntityItem(BaseModel):
    """A person, company, project, product, place … worth remembering."""

    name: str = Field(description="Canonical name, e.g. 'Acme Corp'.")
    entity_type: str = Field(
        default="", description="person, company, project, product, place, team, tool, …"
    )
    aliases: list[str] = Field(default_factory=list, description="Other names used for it.")
    description: str = Field(default="", description="One sentence saying what or who it is.")


class FactItem(BaseModel):
    """Something true about an entity now."""

    entity: str = Field(description="Name of the entity the fact is about.")
    fact: str = Field(description="The fact, without the entity's name: 'uses PostgreSQL'.")
    replaces: str = Field(
        default="",
        description=(
            "A known fact about the same entity that this one makes untrue, word for word as "
            "given in the current state; empty if none."
        ),
    )


class EventItem(BaseModel):
    """Something that happened to an entity, at a time."""

    entity: str = Field(description="Name of the entity it happened to.")
    event: str = Field(description="What happened: 'launched v2'.")
    date: str = Field(
        default="",
        description=(
            "When, as an ISO date (YYYY-MM-DD) resolved against the current date; empty if unknown."
        ),
    )


class RelationItem(BaseModel):
    """How one entity relates to another: subject, relation, object."""

    subject: str = Field(description="Name of the subject entity: 'Bob'.")
    relation: str = Field(description="The relation, as a verb phrase: 'is CEO of'.")
    object: str = Field(description="Name of the object entity: 'Acme'.")


class EntityWrite(EntityItem):
    """Write: create or update an entity."""

    op: Literal["entity"] = "entity"


class FactWrite(FactItem):
    """Write: a fact about an entity (created when missing)."""

    op: Literal["fact"] = "fact"


class EventWrite(EventItem):
    """Write: an event of an entity (created when missing)."""

    op: Literal["event"] = "event"


class RelationWrite(RelationItem):
    """Write: a relationship between two entities (created when missing)."""

    op: Literal["relation"] = "relation"


def has_names(item: EntityItem | FactItem | EventItem | RelationItem) -> bool:
    """Whether every entity ``item`` names has a name (a write of it is refused otherwise).

    Blank names all normalise to one stable id that no lookup by name finds.
    """
    if isinstance(item, EntityItem):
        names = [item.name]
    elif isinstance(item, FactItem | EventItem):
        names = [item.entity]
    else:
        names = [item.subject, item.object]
    return all(name.strip() for name in names)


#: Any one write of entity memory.
AnyEntityWrite = EntityWrite | FactWrite | EventWrite | RelationWrite


class EntityMemoryWrite(RootModel[Annotated[AnyEntityWrite, Field(discriminator="op")]]):
    """One write of entity memory: the ``op`` field says which kind (what a proposal holds)."""


class EntitySearchArgs(BaseModel):
    """Arguments of ``search_entities``."""

    query: str = Field(
        description="Names or a question, e.g. 'Acme database' or 'what happened with Acme'."
    )
    limit: int = Field(default=3, ge=1, le=10, description="The most entities to return (1-10).")


class EntityLookupArgs(BaseModel):
    """Arguments of ``lookup_entity``."""

    name: str = Field(description="The entity's name or alias, e.g. 'Acme'.")
    history: bool = Field(
        default=False, description="True for its events in time order instead of current facts."
    )


class EntityExtraction(BaseModel):
    """Entities, facts, events and relationships stated in this turn."""

    entities: list[EntityItem] = Field(
        default_factory=list, description="Entities mentioned with something worth remembering."
    )
    facts: list[FactItem] = Field(default_factory=list, description="New facts about them.")
    events: list[EventItem] = Field(default_factory=list, description="Things that happened.")
    relations: list[RelationItem] = Field(
        default_factory=list, description="Relationships between two entities."
    )


@dataclass
class EntityView:
    """One entity as recalled: its row and what is known about it."""

    entity: Learning
    """The entity row (``content``: ``name``, ``entity_type``, ``aliases``, ``description``)."""
    facts: list[Learning] = field(default_factory=list)
    """Current facts, newest first."""
    relations: list[Learning] = field(default_factory=list)
    """Relationships where it is the subject."""
    events: list[Learning] = field(default_factory=list)
    """Events, oldest first (undated ones last)."""
    related: list[EntityView] = field(default_factory=list)
    """Entities one hop away along its relationships."""

    @property
    def name(self) -> str:
        """The entity's name."""
        return str(self.entity.content.get("name", ""))


@dataclass
class EntityRecall:
    """What entity memory recalled for a message or a lookup."""

    question: QuestionKind
    """Whether facts or a timeline were asked for."""
    entities: list[EntityView] = field(default_factory=list)
    """The entities, most relevant first."""


def _heading(view: EntityView) -> str:
    c = view.entity.content
    head = f"### {c.get('name', '')}"
    if c.get("entity_type"):
        head += f" ({c['entity_type']})"
    if c.get("aliases"):
        head += " — also: " + ", ".join(c["aliases"])
    return head


def _event_line(event: Learning) -> str:
    c = event.content
    day = format_day(event.valid_from) or str(c.get("date") or "") or "undated"
    return f"- {day}: {c.get('event', '')}"


def _relation_line(relation: Learning) -> str:
    c = relation.content
    return f"- {c.get('subject', '')} {c.get('relation', '')} {c.get('object', '')}"


def render_entity(view: EntityView, question: QuestionKind) -> list[str]:
    """Prompt lines for one entity: facts and relationships, or its timeline."""
    lines = [_heading(view)]
    if view.entity.content.get("description"):
        lines.append(str(view.entity.content["description"]))
    if question == "events":
        if view.events:
            lines.append("Timeline (oldest first):")
            lines.extend(_event_line(e) for e in view.events)
        else:
            lines.append("No recorded events.")
        return lines
    if view.facts:
        lines.append("Facts:")
        lines.extend(f"- {f.content.get('fact', '')}" for f in view.facts)
    if view.relations:
        lines.append("Relationships:")
        lines.extend(_relation_line(r) for r in view.relations)
    for other in view.related:
        desc = other.entity.content.get("description") or ""
        kind = other.entity.content.get("entity_type") or ""
        facts = "; ".join(str(f.content.get("fact", "")) for f in other.facts)
        detail = ", ".join(p for p in (kind, desc, facts) if p)
        lines.append(f"Related: {other.name}" + (f" — {detail}" if detail else ""))
    return lines


def event_sort_key(event: Learning) -> tuple[int, str, str]:
    """Oldest first; undated events last; ties by creation then id (deterministic)."""
    when = event.valid_from.isoformat() if event.valid_from else ""
    return (0 if event.valid_from else 1, when or event.created_at.isoformat(), event.id)
