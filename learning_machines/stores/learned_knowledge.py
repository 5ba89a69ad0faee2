"""Learned knowledge: insights, patterns and best practices that hold across users.

Each learning is one row in a namespace (``"global"`` by default, or a shared name such as
``"engineering"``), found by hybrid search on the turn's message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from .._modes import LearningMode
from .._sync import run_sync
from .._turn_context import TurnContext
from ..db import GLOBAL_NAMESPACE, PRIVATE_NAMESPACE, Learning, ScoredLearning
from ._base import BaseStore, StoreConfig
from ._config_values import number_value, whole_number
from ._protocol import Extraction
from ._shared import (
    describe_mode_writes,
    fit_lines,
    relevant,
    require_user_for_private,
    save,
    scope_filter,
    search,
)
from ._tools import ToolSpec

__all__ = [
    "KnowledgeItem",
    "KnowledgeWrite",
    "LearnedKnowledgeConfig",
    "LearnedKnowledgeExtraction",
    "LearnedKnowledgeStore",
]


class KnowledgeItem(BaseModel):
    """One reusable insight."""

    title: str = Field(description="A short title, e.g. 'Retry idempotent calls only'.")
    learning: str = Field(description="The insight itself, in one to three sentences.")
    context: str = Field(
        default="",
        description="When it applies, e.g. 'when calling payment APIs'; empty if always.",
    )
    tags: list[str] = Field(default_factory=list, description="A few lower-case topic tags.")


class KnowledgeWrite(KnowledgeItem):
    """One insight to save (the store's write), with where it came from."""

    source: str = Field(
        default="conversation", description="'conversation' (extracted) or 'agent' (a tool)."
    )


class SearchArgs(BaseModel):
    """Arguments of ``search_learnings``."""

    query: str = Field(description="What you need to know, in a few words.")
    limit: int = Field(default=5, ge=1, le=20, description="The most results to return (1-20).")


class LearnedKnowledgeExtraction(BaseModel):
    """Reusable insights learned in this turn."""

    learnings: list[KnowledgeItem] = Field(
        default_factory=list,
        description=(
            "Insights, patterns or best practices from this turn that would help with OTHER "
            "users' tasks too. Empty when there are none (the usual case)."
        ),
    )


@dataclass(kw_only=True)
class LearnedKnowledgeConfig(StoreConfig):
    """Settings of the learned knowledge store."""

    namespace: str = GLOBAL_NAMESPACE
    """Where learnings are written: ``"global"`` (everyone) or a shared name."""
    limit: int = 5
    """How many learnings are recalled for a turn (the most relevant to its message)."""
    min_similarity: float = 0.2
    """Learnings whose embedding is less similar than this to the message are not recalled
    (cosine; tuned for the default MiniLM embedder, where unrelated texts score about 0)."""
    max_tokens: int = 600
    """Token budget of the knowledge block in the system prompt."""

    def __post_init__(self) -> None:
        """Check and coerce the values (see :class:`StoreConfig`)."""
        super().__post_init__()
        self.limit = whole_number(self.limit, field=self._field("limit"), minimum=1)
        self.min_similarity = number_value(
            self.min_similarity, field=self._field("min_similarity"), low=-1.0, high=1.0
        )

    def create_store(self) -> LearnedKnowledgeStore:
        """Build the store from this config."""
        return LearnedKnowledgeStore(self)


def knowledge_search_text(title: str, learning: str, context: str, tags: list[str]) -> str:
    """Return the text a learning is searched and deduplicated by."""
    parts = [f"{title}: {learning}"]
    if context:
        parts.append(f"When: {context}")
    if tags:
        parts.append("Tags: " + ", ".join(tags))
    return "\n".join(parts)


def source_note(learning: Learning) -> str:
    """Where a shared learning came from: namespace, author, review and date (``""`` if private).

    Shown next to shared learnings so an agent (and a person reading a prompt) can tell an
    insight a reviewer approved from one any user of the namespace wrote.
    """
    if learning.namespace == PRIVATE_NAMESPACE:
        return ""
    p = learning.provenance
    parts = [f"shared in {learning.namespace!r}"]
    author = p.get("user_id") or learning.user_id
    parts.append(f"from {author}" if author else "author unknown")
    if p.get("approved_by"):
        parts.append(f"approved by {p['approved_by']}")
    else:
        parts.append(f"{p.get('mode') or 'background'}, not reviewed")
    parts.append(learning.created_at.strftime("%Y-%m-%d"))
    return "(" + ", ".join(parts) + ")"


def knowledge_line(learning: Learning) -> str:
    """``- Title: learning (when: …) [tags] (source)`` for the prompt and tool answers."""
    c = learning.content
    line = f"- {c.get('title', '')}: {c.get('learning', '')}"
    if c.get("context"):
        line += f" (when: {c['context']})"
    if c.get("tags"):
        line += " [" + ", ".join(c["tags"]) + "]"
    note = source_note(learning)
    return f"{line} {note}" if note else line


class LearnedKnowledgeStore(BaseStore):
    """Insights that hold across users: title, learning, when it applies, tags, source.

    Recalled by hybrid search on the turn's message (``limit`` results), never all at once.
    Learns in every mode: BACKGROUND extraction, AGENTIC ``save_learning``, and proposals in
    PROPOSE and HITL. ``search_learnings`` is available in every mode.
    """

    learning_type: ClassVar[str] = "learned_knowledge"
    supported_modes: ClassVar[frozenset[LearningMode]] = frozenset(LearningMode)
    required_context: ClassVar[tuple[str, ...]] = ()
    write_model = KnowledgeWrite

    config: LearnedKnowledgeConfig

    def __init__(self, config: LearnedKnowledgeConfig | None = None) -> None:
        config = config or LearnedKnowledgeConfig()
        super().__init__(config)
        self.config = config

    def require_context(self, context: Mapping[str, Any]) -> None:
        """Check the context: ``user_id`` is needed only when a private namespace is used."""
        super().require_context(context)
        require_user_for_private(self, context)

    # --- recall ------------------------------------------------------------------------------

    async def asearch(
        self,
        query: str,
        *,
        limit: int | None = None,
        vector: Sequence[float] | None = None,
        **context: Any,
    ) -> list[ScoredLearning]:
        """Learnings relevant to ``query`` that this turn may read, best first.

        ``vector`` is the query's embedding when known; otherwise it is computed here.
        """
        self.require_context(context)
        return await search(
            self,
            query,
            self.read_filter(**context),
            limit=self.config.limit if limit is None else limit,
            vector=vector,
        )

    async def arecall(self, **context: Any) -> list[ScoredLearning]:
        """Recall the learnings most relevant to the turn's message (none without a message)."""
        message = str(context.get("message") or "")
        if not message.strip():
            return []
        vector = await self.query_vector(context)
        found = await self.asearch(message, vector=vector, user_id=context.get("user_id"))
        return relevant(found, self.config.min_similarity)

    def build_context(self, data: Any) -> str:
        """Recalled learnings as a ``## Learned knowledge`` block, most relevant first."""
        if not isinstance(data, list):
            return ""
        lines = [knowledge_line(s.learning) for s in data if isinstance(s, ScoredLearning)]
        return fit_lines(
            "## Learned knowledge (apply when relevant)", lines, self.config.max_tokens
        )

    # --- writing -----------------------------------------------------------------------------

    async def apply_write(self, write: Any, **context: Any) -> list[str]:
        """Save one :class:`KnowledgeWrite` in the store's namespace and return its id.

        When the learning is already known, the existing id is returned.
        """
        self.require_context(context)
        item = write if isinstance(write, KnowledgeWrite) else self.decode_write(write)
        tags = sorted({t.strip().lower() for t in item.tags if t.strip()})
        namespace = self.config.namespace
        learning = Learning(
            learning_type=self.learning_type,
            namespace=namespace,
            user_id=context.get("user_id"),
            agent_id=context.get("agent_id"),
            content={
                "title": item.title.strip(),
                "learning": item.learning.strip(),
                "context": item.context.strip(),
                "tags": tags,
                "source": item.source or "conversation",
            },
            search_text=knowledge_search_text(item.title, item.learning, item.context, tags),
        )
        result = await save(
            self,
            learning,
            action="create",
            reason=f"learned: {item.title}",
            context=context,
            scope=scope_filter(namespace, self.learning_type, context),
        )
        return [result.learning.id]

    async def _save(self, item: KnowledgeItem, source: str, context: Mapping[str, Any]) -> str:
        write = KnowledgeWrite(**item.model_dump(), source=source)
        text = knowledge_search_text(item.title, item.learning, item.context, item.tags)
        outcome = await self.submit(
            write, summary=f"learning: {item.title} — {item.learning}", context=context, text=text
        )
        return outcome.describe()

    # --- tools and guidance ------------------------------------------------------------------

    def tool_specs(self) -> list[ToolSpec[Any]]:
        """``search_learnings`` always; ``save_learning`` in AGENTIC, PROPOSE and HITL."""

        async def search_learnings(turn: TurnContext, args: SearchArgs) -> str:
            found = await self.asearch(args.query, limit=args.limit, user_id=turn.user_id)
            if not found:
                return "No learnings found."
            return "\n".join(knowledge_line(s.learning) for s in found)

        specs: list[ToolSpec[Any]] = [
            ToolSpec(
                name="search_learnings",
                description=(
                    "Search knowledge learned from earlier conversations (insights, best "
                    "practices)."
                ),
                args=SearchArgs,
                handler=search_learnings,
            )
        ]
        if self.mode is LearningMode.BACKGROUND:
            return specs

        async def save_learning(turn: TurnContext, args: KnowledgeItem) -> str:
            return await self._save(args, "agent", turn.kwargs())

        specs.append(
            ToolSpec(
                name="save_learning",
                description=(
                    "Save a reusable insight that would help with future tasks, for any user. "
                    "Save only knowledge that holds beyond this conversation (a pattern, a fix, "
                    "a best practice); never personal details about the user."
                ),
                args=KnowledgeItem,
                handler=save_learning,
                writes=True,
            )
        )
        return specs

    def guidance(self, **context: Any) -> str:
        """When to search and save learnings in this mode."""
        text = (
            "search_learnings finds insights learned in earlier conversations; use it before "
            "solving a task that may have come up before."
        )
        if self.mode is LearningMode.BACKGROUND:
            return text
        return (
            f"{text} When you discover something reusable (a fix that worked, a pattern, a best "
            "practice that would help other users), call save_learning once with a clear title. "
            f"Never save personal details. {describe_mode_writes(self.mode.value)}"
        )

    # --- background extraction ---------------------------------------------------------------

    async def aextraction_from(self, recalled: Any, **context: Any) -> Extraction | None:
        """What to extract: new reusable insights, given the closest ones already known."""
        if self.mode not in (LearningMode.BACKGROUND, LearningMode.HITL):
            return None
        known = [s for s in recalled or [] if isinstance(s, ScoredLearning)]
        return Extraction(
            output_type=LearnedKnowledgeExtraction,
            instructions=(
                "Extract reusable insights from this turn: patterns, fixes that worked, best "
                "practices that would help with OTHER users' tasks. Never personal details, "
                "preferences or facts about this user. Skip anything already known. Most turns "
                "have none: return an empty list."
            ),
            current_state="\n".join(knowledge_line(s.learning) for s in known),
        )

    async def aextraction(self, **context: Any) -> Extraction | None:
        """What to extract from this turn (recalls the closest known insights first)."""
        known = await self.arecall(**context) if context.get("message") else []
        return await self.aextraction_from(known, **context)

    def extraction(self, **context: Any) -> Extraction | None:
        """Sync :meth:`aextraction`."""
        return run_sync(self.aextraction(**context))

    async def aapply_extraction(self, data: BaseModel, **context: Any) -> None:
        """Save each extracted learning through the gate (proposals in HITL)."""
        parsed = LearnedKnowledgeExtraction.model_validate(data.model_dump())
        for item in parsed.learnings:
            if item.title.strip() and item.learning.strip():
                await self._save(item, "conversation", context)
