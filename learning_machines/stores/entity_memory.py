"""Entity memory: people, companies, projects … with their facts, events and relationships.

Rows (all in the store's namespace, ``"user"`` by default):

- ``entity``: name, type, aliases, description; its id is derived from the namespace, the owner
  (private namespace only) and the normalised name, so saving "Acme" twice finds one entity.
- ``entity_fact``: "uses PostgreSQL", on the entity (``entity_id``).
- ``entity_event``: "launched v2" with ``valid_from`` = the date it happened.
- ``entity_relation``: "Bob is CEO of Acme", stored on the subject with the object's id.

Questions about what is known get current facts and relationships; questions about what
happened ("what happened with Acme", "timeline", "when …") get events in time order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .._modes import LearningMode
from .._sync import run_sync
from ..curation import retry_conflicts
from ..db import (
    PRIVATE_NAMESPACE,
    GetLearnings,
    Learning,
    LearningFilter,
    ListLearnings,
    SearchLearnings,
    normalize_text,
    stable_id,
    utcnow,
)
from ..exceptions import ConflictError, ValidationError
from ._base import BaseStore, StoreConfig
from ._config_values import number_value, whole_number
from ._entity_model import (
    ENTITY,
    EVENT,
    FACT,
    RELATION,
    AnyEntityWrite,
    EntityExtraction,
    EntityItem,
    EntityMemoryWrite,
    EntityRecall,
    EntityView,
    EntityWrite,
    EventWrite,
    FactWrite,
    QuestionKind,
    RelationWrite,
    event_sort_key,
    has_names,
    question_kind,
    render_entity,
)
from ._entity_tools import entity_tool_specs
from ._protocol import Extraction
from ._shared import (
    describe_mode_writes,
    fit_lines,
    parse_when,
    relevant,
    require_user_for_private,
    same_name,
    save,
    scope_filter,
    search,
    turn_time,
)
from ._tools import ToolSpec

logger = logging.getLogger("learning_machines")

__all__ = ["EntityMemoryConfig", "EntityMemoryStore"]

_ALL_TYPES = (ENTITY, FACT, EVENT, RELATION)


@dataclass(kw_only=True)
class EntityMemoryConfig(StoreConfig):
    """Settings of entity memory."""

    limit: int = 3
    """How many entities are recalled for a turn (the most relevant to its message)."""
    min_similarity: float = 0.2
    """Rows whose embedding is less similar than this to the message do not bring their entity
    into the prompt (cosine; tuned for the default MiniLM embedder)."""
    max_facts: int = 10
    """Facts and relationships shown per entity (newest first)."""
    max_events: int = 20
    """Events shown per entity in a timeline (the most recent ones, in time order)."""
    max_related: int = 3
    """Entities shown one hop away along relationships, per entity."""
    max_tokens: int = 600
    """Token budget of the entity block in the system prompt."""

    def __post_init__(self) -> None:
        """Check and coerce the values (see :class:`StoreConfig`)."""
        super().__post_init__()
        self.limit = whole_number(self.limit, field=self._field("limit"), minimum=1)
        self.min_similarity = number_value(
            self.min_similarity, field=self._field("min_similarity"), low=-1.0, high=1.0
        )
        self.max_facts = whole_number(self.max_facts, field=self._field("max_facts"), minimum=0)
        # At least one: the timeline keeps the last ``max_events`` events.
        self.max_events = whole_number(self.max_events, field=self._field("max_events"), minimum=1)
        self.max_related = whole_number(
            self.max_related, field=self._field("max_related"), minimum=0
        )

    def create_store(self) -> EntityMemoryStore:
        """Build the store from this config."""
        return EntityMemoryStore(self)


def entity_search_text(content: Mapping[str, Any]) -> str:
    """Return what an entity row is found by: its name, type, aliases and description."""
    parts = [str(content.get("name", ""))]
    if content.get("entity_type"):
        parts.append(f"({content['entity_type']})")
    if content.get("aliases"):
        parts.append("also known as " + ", ".join(content["aliases"]))
    if content.get("description"):
        parts.append("— " + str(content["description"]))
    return " ".join(parts)


class EntityMemoryStore(BaseStore):
    """Entities with facts, dated events and relationships.

    Looked up by name or alias, by hybrid search on the turn's message, and one hop along
    relationships.

    Learns in every mode. Read tools (``search_entities``, ``lookup_entity``) are offered in
    every mode; write tools (``save_entity``, ``save_entity_fact``, ``save_entity_event``,
    ``save_entity_relation``) in AGENTIC, PROPOSE and HITL.
    """

    learning_type: ClassVar[str] = ENTITY
    supported_modes: ClassVar[frozenset[LearningMode]] = frozenset(LearningMode)
    required_context: ClassVar[tuple[str, ...]] = ()
    write_model = EntityMemoryWrite

    config: EntityMemoryConfig

    def __init__(self, config: EntityMemoryConfig | None = None) -> None:
        config = config or EntityMemoryConfig()
        super().__init__(config)
        self.config = config

    def require_context(self, context: Mapping[str, Any]) -> None:
        """Check the context: ``user_id`` is needed only when a private namespace is used."""
        super().require_context(context)
        require_user_for_private(self, context)

    def _filter(self, user_id: str | None, *types: str) -> LearningFilter:
        return replace(self.read_filter(user_id=user_id), learning_types=types or _ALL_TYPES)

    def _entity_id(self, namespace: str, user_id: str | None, name: str) -> str:
        owner = user_id if namespace == PRIVATE_NAMESPACE else None
        return stable_id(ENTITY, namespace, owner, normalize_text(name))

    # --- reading -----------------------------------------------------------------------------

    async def _find(
        self, name: str, flt: LearningFilter, namespaces: Sequence[str]
    ) -> Learning | None:
        """Find the entity called ``name`` (by name or alias) that ``flt`` lets us read."""
        if not name.strip():
            return None
        user_id = flt.reader_user_id
        ids = tuple(self._entity_id(ns, user_id, name) for ns in namespaces)
        entity_filter = replace(flt, learning_types=(ENTITY,))
        rows = await self.db.arun(GetLearnings(ids=ids, filter=entity_filter))
        active = [r for r in rows if r.status == "active"]
        if active:
            return active[0]
        found = await self.db.arun(
            SearchLearnings(filter=entity_filter, query=name, method="keyword", limit=20)
        )
        for scored in found:
            c = scored.learning.content
            if any(same_name(name, str(n)) for n in [c.get("name", ""), *c.get("aliases", [])]):
                return scored.learning
        return None

    async def _views(
        self, entities: Sequence[Learning], flt: LearningFilter, *, hop: bool
    ) -> list[EntityView]:
        """Facts, relations and events of ``entities`` (and, with ``hop``, related entities)."""
        if not entities:
            return []
        ids = tuple(e.id for e in entities)
        rows = await self.db.arun(
            ListLearnings(
                filter=replace(flt, learning_types=(FACT, EVENT, RELATION), entity_ids=ids),
                limit=None,
            )
        )
        views = {e.id: EntityView(entity=e) for e in entities}
        for row in rows:  # newest first, ties by id
            view = views.get(row.entity_id or "")
            if view is None:
                continue
            if row.learning_type == FACT and len(view.facts) < self.config.max_facts:
                view.facts.append(row)
            elif row.learning_type == RELATION and len(view.relations) < self.config.max_facts:
                view.relations.append(row)
            elif row.learning_type == EVENT:
                view.events.append(row)
        for view in views.values():
            view.events = sorted(view.events, key=event_sort_key)[-self.config.max_events :]
        if hop:
            await self._add_related(list(views.values()), flt)
        return [views[e.id] for e in entities]

    async def _add_related(self, views: list[EntityView], flt: LearningFilter) -> None:
        wanted: dict[str, None] = {}
        for view in views:
            for rel in view.relations[: self.config.max_related]:
                object_id = rel.content.get("object_id")
                if object_id and object_id not in wanted and object_id != view.entity.id:
                    wanted[str(object_id)] = None
        if not wanted:
            return
        others = await self.db.arun(
            GetLearnings(ids=tuple(wanted), filter=replace(flt, learning_types=(ENTITY,)))
        )
        related = {
            v.entity.id: v
            for v in await self._views([o for o in others if o.status == "active"], flt, hop=False)
        }
        for view in views:
            for rel in view.relations[: self.config.max_related]:
                other = related.get(str(rel.content.get("object_id")))
                if other is not None and other not in view.related:
                    view.related.append(EntityView(entity=other.entity, facts=other.facts[:3]))

    async def asearch(
        self,
        query: str,
        *,
        limit: int | None = None,
        vector: Sequence[float] | None = None,
        question: QuestionKind | None = None,
        min_similarity: float | None = None,
        **context: Any,
    ) -> EntityRecall:
        """Find entities relevant to ``query``, with what is known and one hop along relations.

        Hybrid search runs over names, facts, events and relationships. With
        ``min_similarity``, rows whose cosine to the query is lower bring nothing in.
        """
        self.require_context(context)
        limit = self.config.limit if limit is None else limit
        flt = self._filter(context.get("user_id"))
        hits = await search(self, query, flt, limit=max(4 * limit, 10), vector=vector)
        if min_similarity is not None:
            hits = relevant(hits, min_similarity)
        ordered: dict[str, None] = {}
        for hit in hits:
            entity_id = hit.learning.id if hit.learning.learning_type == ENTITY else None
            entity_id = entity_id or hit.learning.entity_id
            if entity_id:
                ordered.setdefault(entity_id, None)
        ids = tuple(list(ordered)[:limit])
        entities = await self.db.arun(
            GetLearnings(ids=ids, filter=replace(flt, learning_types=(ENTITY,)))
        )
        entities = [e for e in entities if e.status == "active"]
        return EntityRecall(
            question=question or question_kind(query),
            entities=await self._views(entities, flt, hop=True),
        )

    async def alookup(
        self, name: str, *, question: QuestionKind = "facts", **context: Any
    ) -> EntityRecall:
        """Look up the entity called ``name`` (name or alias), with its facts or its timeline."""
        self.require_context(context)
        flt = self._filter(context.get("user_id"))
        namespaces = flt.namespaces or (self.config.namespace,)
        entity = await self._find(name, flt, namespaces)
        views = await self._views([entity], flt, hop=True) if entity else []
        return EntityRecall(question=question, entities=views)

    async def arecall(self, **context: Any) -> EntityRecall | None:
        """Entities relevant to the turn's message, or ``None`` without a message."""
        message = str(context.get("message") or "")
        if not message.strip():
            return None
        vector = await self.query_vector(context)
        return await self.asearch(
            message,
            vector=vector,
            min_similarity=self.config.min_similarity,
            user_id=context.get("user_id"),
        )

    def render(self, data: EntityRecall) -> list[str]:
        """Prompt lines for recalled entities, most relevant first."""
        views = data.entities
        if data.question == "events" and any(v.events for v in views):
            # A timeline question is about the entities that have one.
            views = [v for v in views if v.events]
        lines: list[str] = []
        for view in views:
            lines.extend(render_entity(view, data.question))
        return lines

    def build_context(self, data: Any) -> str:
        """Recalled entities as a ``## Known entities`` block (facts, or timelines)."""
        if not isinstance(data, EntityRecall):
            return ""
        return fit_lines("## Known entities", self.render(data), self.config.max_tokens)

    # --- writing -----------------------------------------------------------------------------

    async def _upsert_entity(
        self, item: EntityItem, context: Mapping[str, Any], *, touch: bool = True
    ) -> Learning:
        """Create or update the entity called ``item.name`` in the write namespace.

        The entity row is changed in place (aliases, type, description): the change is applied
        to the row as read and written only if it is still current, else re-applied on a fresh
        read, so concurrent writers never lose each other's aliases.
        """
        return await retry_conflicts(
            lambda: self._upsert_entity_once(item, context, touch=touch),
            what=f"entity {item.name!r}",
        )

    async def _upsert_entity_once(
        self, item: EntityItem, context: Mapping[str, Any], *, touch: bool
    ) -> Learning:
        namespace = self.config.namespace
        user_id = context.get("user_id")
        scope = scope_filter(namespace, ENTITY, context)
        existing = await self._find(item.name, scope, (namespace,))
        if existing is not None:
            c = dict(existing.content)
            aliases = list(c.get("aliases", []))
            for alias in item.aliases:
                names = [c.get("name", ""), *aliases]
                if alias.strip() and not any(same_name(alias, str(n)) for n in names):
                    aliases.append(alias.strip())
            new = {
                **c,
                "aliases": aliases,
                "entity_type": item.entity_type.strip() or c.get("entity_type", ""),
                "description": item.description.strip() or c.get("description", ""),
            }
            if new == c or not touch:
                return existing
            updated = replace(
                existing,
                content=new,
                search_text=entity_search_text(new),
                embedding=None,
                embedder=None,
                updated_at=utcnow(),
            )
            result = await save(
                self,
                updated,
                action="update",
                reason=f"entity {item.name}",
                context=context,
                scope=scope,
                expected_version=existing.version,
            )
            return result.learning
        content = {
            "name": item.name.strip(),
            "entity_type": item.entity_type.strip(),
            "aliases": [a.strip() for a in item.aliases if a.strip()],
            "description": item.description.strip(),
        }
        entity_id = self._entity_id(namespace, user_id, item.name)
        # A retired row may hold the id (it is overwritten, as it always was): create over the
        # version it has, so a concurrent creator of the same entity is still detected. An
        # active one was created by another writer since _find looked: start again from it.
        retired = await self.db.arun(GetLearnings(ids=(entity_id,), filter=scope))
        if retired and retired[0].status == "active":
            raise ConflictError(
                f"Entity {item.name!r} was created by another writer meanwhile.",
                learning_id=entity_id,
            )
        learning = Learning(
            id=entity_id,
            learning_type=ENTITY,
            namespace=namespace,
            user_id=user_id,
            entity_id=entity_id,
            content=content,
            search_text=entity_search_text(content),
        )
        result = await save(
            self,
            learning,
            action="create",
            reason=f"entity {item.name}",
            context=context,
            scope=scope,
            expected_version=retired[0].version if retired else 0,
        )
        return result.learning

    async def _save_on(
        self,
        entity: Learning,
        learning_type: str,
        content: dict[str, Any],
        text: str,
        context: Mapping[str, Any],
        *,
        supersedes: Sequence[str] = (),
        **columns: Any,
    ) -> str:
        learning = Learning(
            learning_type=learning_type,
            namespace=self.config.namespace,
            user_id=context.get("user_id"),
            entity_id=entity.id,
            content=content,
            search_text=text,
            **columns,
        )
        scope = scope_filter(self.config.namespace, learning_type, context, entity_ids=(entity.id,))
        result = await save(
            self,
            learning,
            action="create",
            reason=text,
            context=context,
            scope=scope,
            supersedes=supersedes,
        )
        return result.learning.id

    async def _facts_matching(
        self, entity: Learning, text: str, context: Mapping[str, Any]
    ) -> list[str]:
        """Ids of the entity's current facts that say ``text`` (the facts a new one replaces)."""
        if not text.strip():
            return []
        scope = scope_filter(self.config.namespace, FACT, context, entity_ids=(entity.id,))
        rows = await self.db.arun(ListLearnings(filter=scope, limit=None))
        wanted = normalize_text(text)
        return [r.id for r in rows if normalize_text(str(r.content.get("fact", ""))) == wanted]

    async def apply_write(self, write: Any, **context: Any) -> list[str]:
        """Apply one :class:`EntityMemoryWrite` (an entity, fact, event or relation).

        Entities named by a fact, event or relation are created when missing. Returns the ids
        of the rows written.
        """
        self.require_context(context)
        if not isinstance(write, EntityMemoryWrite):
            write = self.decode_write(write)
        item = write.root
        if isinstance(item, EntityWrite):
            return [(await self._upsert_entity(item, context)).id]
        if isinstance(item, FactWrite):
            entity = await self._upsert_entity(EntityItem(name=item.entity), context, touch=False)
            name = entity.content.get("name", item.entity)
            content = {"entity": name, "fact": item.fact.strip()}
            old = await self._facts_matching(entity, item.replaces, context)
            text = f"{name}: {item.fact}"
            new_id = await self._save_on(entity, FACT, content, text, context, supersedes=old)
            return [entity.id, new_id, *old]
        if isinstance(item, EventWrite):
            entity = await self._upsert_entity(EntityItem(name=item.entity), context, touch=False)
            name = entity.content.get("name", item.entity)
            when = parse_when(item.date, now=turn_time(context))
            day = when.date().isoformat() if when else item.date.strip()
            content = {"entity": name, "event": item.event.strip(), "date": day or None}
            text = f"{name}: {item.event}" + (f" ({day})" if day else "")
            return [
                entity.id,
                await self._save_on(entity, EVENT, content, text, context, valid_from=when),
            ]
        subject = await self._upsert_entity(EntityItem(name=item.subject), context, touch=False)
        obj = await self._upsert_entity(EntityItem(name=item.object), context, touch=False)
        s_name = subject.content.get("name", item.subject)
        o_name = obj.content.get("name", item.object)
        content = {
            "subject": s_name,
            "relation": item.relation.strip(),
            "object": o_name,
            "object_id": obj.id,
        }
        text = f"{s_name} {item.relation.strip()} {o_name}"
        return [subject.id, obj.id, await self._save_on(subject, RELATION, content, text, context)]

    def decode_write(self, payload: Mapping[str, Any]) -> EntityMemoryWrite:
        """Read a held write back; an unknown ``op`` is a :class:`ValidationError`."""
        op = payload.get("op")
        if op not in ("entity", "fact", "event", "relation"):
            raise ValidationError(
                f"entity write op {op!r} is unknown; use 'entity', 'fact', 'event' or 'relation'."
            )
        try:
            return EntityMemoryWrite.model_validate(dict(payload))
        except PydanticValidationError as exc:
            raise ValidationError(
                f"entity write {dict(payload)!r} does not validate: {exc}"
            ) from exc

    async def submit_entity_write(
        self,
        write: EntityWrite | FactWrite | EventWrite | RelationWrite,
        context: Mapping[str, Any],
    ) -> str:
        """Send one write through the gate; returns the line a tool answers with.

        Raises :class:`ValidationError` when the write names a blank entity.
        """
        if not has_names(write):
            raise ValidationError(
                "an entity needs a name, and this one is blank: give the person, company, "
                "project or thing its name"
            )
        summary = _write_summary(write)
        outcome = await self.submit(
            EntityMemoryWrite(write), summary=summary, context=context, text=summary
        )
        return outcome.describe()

    # --- tools and guidance ------------------------------------------------------------------

    def tool_specs(self) -> list[ToolSpec[Any]]:
        """Read tools in every mode; write tools in AGENTIC, PROPOSE and HITL."""
        return entity_tool_specs(self)

    def guidance(self, **context: Any) -> str:
        """When to look entities up and save them in this mode."""
        text = (
            "search_entities and lookup_entity recall people, companies and projects: current "
            "facts and relationships, or (for 'what happened' / history=True) events in time "
            "order."
        )
        if self.mode is LearningMode.BACKGROUND:
            return text
        return (
            f"{text} When the user states a lasting fact, an event with its date, or a "
            "relationship about a named entity, save it with save_entity_fact, "
            "save_entity_event or save_entity_relation (save_entity for its type and "
            f"description). {describe_mode_writes(self.mode.value)}"
        )

    # --- background extraction ---------------------------------------------------------------

    async def aextraction_from(self, recalled: Any, **context: Any) -> Extraction | None:
        """What to extract: entities, facts, dated events and relationships, given what is known."""
        if self.mode not in (LearningMode.BACKGROUND, LearningMode.HITL):
            return None
        if self.config.namespace == PRIVATE_NAMESPACE and not context.get("user_id"):
            return None
        today = turn_time(context).date().isoformat()
        return Extraction(
            output_type=EntityExtraction,
            instructions=(
                "Extract named entities (people, companies, projects, products …) the "
                "conversation says something lasting about: facts true now, events with their "
                f"dates (ISO YYYY-MM-DD; today is {today}, resolve relative dates), and "
                "relationships between two entities (subject, relation, object). When a new fact "
                "contradicts a known one, set `replaces` to the known fact. Skip what is already "
                "known and small talk."
            ),
            # Always the facts: a message about "news" or "when" recalls timelines, but the model
            # needs the known facts to say which one a new fact replaces.
            current_state="\n".join(self.render(replace(recalled, question="facts")))
            if isinstance(recalled, EntityRecall)
            else "",
        )

    async def aextraction(self, **context: Any) -> Extraction | None:
        """What to extract from this turn (recalls the entities it mentions first)."""
        if self.config.namespace == PRIVATE_NAMESPACE and not context.get("user_id"):
            return None
        return await self.aextraction_from(await self.arecall(**context), **context)

    def extraction(self, **context: Any) -> Extraction | None:
        """Sync :meth:`aextraction`."""
        return run_sync(self.aextraction(**context))

    async def aapply_extraction(self, data: BaseModel, **context: Any) -> None:
        """Send every extracted item through the gate (one proposal each in HITL)."""
        parsed = EntityExtraction.model_validate(data.model_dump())
        writes: list[AnyEntityWrite] = [
            *(EntityWrite(**e.model_dump()) for e in parsed.entities if has_names(e)),
            *(FactWrite(**f.model_dump()) for f in parsed.facts if has_names(f)),
            *(EventWrite(**e.model_dump()) for e in parsed.events if has_names(e)),
            *(RelationWrite(**r.model_dump()) for r in parsed.relations if has_names(r)),
        ]
        parts = (parsed.entities, parsed.facts, parsed.events, parsed.relations)
        extracted = sum(len(part) for part in parts)
        if len(writes) < extracted:
            logger.warning(
                "entity memory skipped %d extracted item(s) naming a blank entity; kept %d",
                extracted - len(writes),
                len(writes),
            )
        for write in writes:
            await self.submit_entity_write(write, context)


def _write_summary(write: AnyEntityWrite) -> str:
    """One line a reviewer judges an entity write by."""
    if isinstance(write, EntityWrite):
        return (
            f"entity: {write.name} ({write.entity_type})"
            if write.entity_type
            else (f"entity: {write.name}")
        )
    if isinstance(write, FactWrite):
        return f"fact: {write.entity} {write.fact}" + (
            f" (replaces: {write.replaces})" if write.replaces else ""
        )
    if isinstance(write, EventWrite):
        return f"event: {write.entity} {write.event} {write.date}".strip()
    return f"relation: {write.subject} {write.relation} {write.object}"
