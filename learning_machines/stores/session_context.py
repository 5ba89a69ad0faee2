"""Session context: what this session is about (summary; goal, plan and progress when planning).

One row per (user, session) in the private namespace. The row id is derived from both, so a
second user who reuses (or guesses) a session id gets their own, empty session context.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from .._modes import LearningMode
from .._sync import run_sync
from .._turn_context import TurnContext
from ..curation import retry_conflicts
from ..db import PRIVATE_NAMESPACE, GetLearnings, Learning, stable_id
from ..exceptions import ConfigurationError
from ._base import BaseStore, StoreConfig
from ._config_values import flag_value
from ._protocol import Extraction
from ._shared import DIRECT_LOOKUP, fit_lines, kept_on_update, save, scope_filter
from ._tools import ToolSpec

__all__ = [
    "SessionContext",
    "SessionContextConfig",
    "SessionContextStore",
    "SessionPlanUpdate",
    "SessionSummaryUpdate",
]


class SessionContext(BaseModel):
    """What a session is about, as recalled."""

    summary: str = Field(default="", description="What the session has covered so far.")
    goal: str | None = Field(default=None, description="What the user is trying to achieve.")
    plan: list[str] = Field(default_factory=list, description="Steps to reach the goal.")
    progress: list[str] = Field(default_factory=list, description="Steps done, in order.")


class SessionSummaryUpdate(BaseModel):
    """The session's summary after this turn."""

    summary: str | None = Field(
        default=None,
        description=(
            "The whole session so far in 1-5 sentences (replaces the previous summary): the "
            "topic, decisions made, open questions. Null if nothing worth summarising happened."
        ),
    )


class SessionSummaryArgs(BaseModel):
    """Arguments of ``update_session_context`` (without planning)."""

    summary: str = Field(
        description=(
            "The whole session so far in 1-5 sentences (replaces the previous summary): topic, "
            "decisions made, open questions."
        )
    )


class SessionPlanArgs(BaseModel):
    """Arguments of ``update_session_context`` (with planning)."""

    summary: str | None = Field(
        default=None,
        description="The whole session so far in 1-5 sentences (replaces the previous one).",
    )
    goal: str | None = Field(
        default=None, description="What the user is trying to achieve in this session."
    )
    plan: list[str] | None = Field(
        default=None,
        description="The full list of steps to reach the goal (replaces the previous plan).",
    )
    progress: list[str] | None = Field(
        default=None, description="Steps completed just now (appended to the progress)."
    )


class SessionPlanUpdate(SessionSummaryUpdate):
    """The session's summary, goal, plan and progress after this turn."""

    goal: str | None = Field(
        default=None,
        description="The user's goal in this session, when stated or changed; else null.",
    )
    plan: list[str] | None = Field(
        default=None,
        description="The full list of plan steps when it was made or changed; else null.",
    )
    progress: list[str] | None = Field(
        default=None,
        description="Steps completed in THIS turn (appended to the progress); else null.",
    )


@dataclass(kw_only=True)
class SessionContextConfig(StoreConfig):
    """Settings of the session context store (private to the session's user)."""

    enable_planning: bool = False
    """Also track the session's goal, plan steps and progress (not only a summary)."""
    max_tokens: int = 400
    """Token budget of the session block in the system prompt."""

    def __post_init__(self) -> None:
        """Check and coerce the values (see :class:`StoreConfig`)."""
        super().__post_init__()
        self.enable_planning = flag_value(
            self.enable_planning, field=self._field("enable_planning")
        )

    def create_store(self) -> SessionContextStore:
        """Build the store from this config."""
        return SessionContextStore(self)


class SessionContextStore(BaseStore):
    """What the current session is about, recalled directly into each of its turns.

    Learns in BACKGROUND (extraction after each turn) or AGENTIC (``update_session_context``).
    Approval modes are not offered: a session summary that waits for approval is stale by the
    time it is approved.
    """

    learning_type: ClassVar[str] = "session_context"
    supported_modes: ClassVar[frozenset[LearningMode]] = frozenset(
        {LearningMode.BACKGROUND, LearningMode.AGENTIC}
    )
    required_context: ClassVar[tuple[str, ...]] = ("user_id", "session_id")

    config: SessionContextConfig

    def __init__(self, config: SessionContextConfig | None = None) -> None:
        config = config or SessionContextConfig()
        super().__init__(config)
        if config.namespace != PRIVATE_NAMESPACE:
            raise ConfigurationError(
                "SessionContextConfig(namespace=...) must stay 'user': a session is owned by "
                "one user."
            )
        self.config = config
        self.write_model: type[BaseModel] = (
            SessionPlanUpdate if config.enable_planning else SessionSummaryUpdate
        )

    def _row_id(self, user_id: str, session_id: str) -> str:
        return stable_id(self.learning_type, PRIVATE_NAMESPACE, user_id, session_id)

    async def _load_row(self, context: Mapping[str, Any]) -> Learning | None:
        """The session's row, whatever its status (archived rows keep their version)."""
        self.require_context(context)
        user_id, session_id = str(context["user_id"]), str(context["session_id"])
        flt = self.read_filter(user_id=user_id)
        rows = await self.db.arun(
            GetLearnings(ids=(self._row_id(user_id, session_id),), filter=flt)
        )
        # The id already names the owner; checking the columns too costs nothing.
        return next((r for r in rows if r.user_id == user_id and r.session_id == session_id), None)

    async def _load(self, context: Mapping[str, Any]) -> Learning | None:
        row = await self._load_row(context)
        return row if row is not None and row.status == "active" else None

    # --- recall ------------------------------------------------------------------------------

    async def arecall(self, **context: Any) -> SessionContext | None:
        """Recall this session's context, or ``None`` when nothing is known yet."""
        row = await self._load(context)
        return SessionContext.model_validate(row.content) if row is not None else None

    def render(self, data: SessionContext) -> list[str]:
        """Render the session context as prompt lines (plan and progress only with planning)."""
        lines: list[str] = []
        if data.summary:
            lines.append(f"Summary: {data.summary}")
        if self.config.enable_planning:
            if data.goal:
                lines.append(f"Goal: {data.goal}")
            done = {step.casefold() for step in data.progress}
            if data.plan:
                lines.append("Plan:")
                lines.extend(
                    f"{i}. [{'x' if step.casefold() in done else ' '}] {step}"
                    for i, step in enumerate(data.plan, 1)
                )
            if data.progress:
                lines.append("Progress: " + "; ".join(data.progress))
        return lines

    def build_context(self, data: Any) -> str:
        """Render the session as a ``## Current session`` block."""
        if not isinstance(data, SessionContext):
            return ""
        return fit_lines("## Current session", self.render(data), self.config.max_tokens)

    # --- writing -----------------------------------------------------------------------------

    async def apply_write(self, write: Any, **context: Any) -> list[str]:
        """Apply a :class:`SessionPlanUpdate` (or summary update) to the session row.

        ``summary``, ``goal`` and ``plan`` replace; ``progress`` items are appended once.
        Concurrent writers never lose each other's changes: the change is applied to the row as
        read, written only if that row is still current, and re-applied on a fresh read otherwise.
        """
        self.require_context(context)
        payload = write.model_dump() if isinstance(write, BaseModel) else dict(write)
        return await retry_conflicts(
            lambda: self._apply_once(payload, context),
            what=f"the context of session {context['session_id']!r}",
        )

    async def _apply_once(
        self, payload: Mapping[str, Any], context: Mapping[str, Any]
    ) -> list[str]:
        stored = await self._load_row(context)
        row = stored if stored is not None and stored.status == "active" else None
        current = (
            SessionContext.model_validate(row.content) if row is not None else SessionContext()
        )
        data = current.model_copy()
        if payload.get("summary"):
            data.summary = str(payload["summary"])
        if self.config.enable_planning:
            if payload.get("goal"):
                data.goal = str(payload["goal"])
            if payload.get("plan"):
                data.plan = [str(s) for s in payload["plan"]]
            seen = {s.casefold() for s in data.progress}
            for step in payload.get("progress") or []:
                if str(step).casefold() not in seen:
                    data.progress.append(str(step))
                    seen.add(str(step).casefold())
        content = data.model_dump(mode="json")
        if row is not None and content == row.content:
            return []
        user_id, session_id = str(context["user_id"]), str(context["session_id"])
        learning = Learning(
            id=self._row_id(user_id, session_id),
            learning_type=self.learning_type,
            namespace=PRIVATE_NAMESPACE,
            user_id=user_id,
            session_id=session_id,
            agent_id=context.get("agent_id"),
            content=content,
            search_text="\n".join(self.render(data)),
            **kept_on_update(row),
        )
        result = await save(
            self,
            learning,
            action="update" if row is not None else "create",
            reason="session context",
            context=context,
            scope=scope_filter(
                PRIVATE_NAMESPACE, self.learning_type, context, session_id=session_id
            ),
            policy=DIRECT_LOOKUP,
            expected_version=stored.version if stored is not None else 0,
        )
        return [result.learning.id]

    async def _submit_update(self, update: BaseModel, context: Mapping[str, Any]) -> str:
        clean = {k: v for k, v in update.model_dump().items() if v not in (None, "", [])}
        if not clean:
            return "nothing to update"
        outcome = await self.submit(
            self.write_model.model_validate(clean),
            summary="session context: " + ", ".join(sorted(clean)),
            context=context,
        )
        return outcome.describe()

    # --- tools and guidance ------------------------------------------------------------------

    def tool_specs(self) -> list[ToolSpec[Any]]:
        """``update_session_context`` in AGENTIC; nothing in BACKGROUND."""
        if self.mode is LearningMode.BACKGROUND:
            return []

        async def update(turn: TurnContext, args: BaseModel) -> str:
            return await self._submit_update(args, turn.kwargs())

        if self.config.enable_planning:
            description = (
                "Record this session's summary, goal, plan and progress, so later turns "
                "remember them. The plan replaces the previous plan; progress lists steps "
                "completed just now (appended)."
            )
            args: type[BaseModel] = SessionPlanArgs
        else:
            description = "Record what this session is about, so later turns remember it."
            args = SessionSummaryArgs
        return [
            ToolSpec(
                name="update_session_context",
                description=description,
                args=args,
                handler=update,
                writes=True,
            )
        ]

    def guidance(self, **context: Any) -> str:
        """When to call ``update_session_context`` in this mode."""
        if self.mode is LearningMode.BACKGROUND:
            return ""
        if self.config.enable_planning:
            return (
                "Keep the session's context current with update_session_context: set the goal "
                "and plan when the user states a task, report finished steps in progress, and "
                "refresh the summary when the topic moves on. It is saved at once."
            )
        return (
            "When the session's topic or decisions change, call update_session_context with a "
            "short summary of the whole session so far. It is saved at once."
        )

    # --- background extraction ---------------------------------------------------------------

    async def aextraction_from(self, recalled: Any, **context: Any) -> Extraction | None:
        """What to extract: the updated summary (and goal/plan/progress when planning)."""
        if self.mode is not LearningMode.BACKGROUND:
            return None
        if not (context.get("user_id") and context.get("session_id")):
            return None
        planning = self.config.enable_planning
        state = self.render(recalled) if isinstance(recalled, SessionContext) else []
        return Extraction(
            output_type=self.write_model,
            instructions=(
                "Keep the session context current: rewrite the summary of the whole session so "
                "far (topic, decisions, open questions) including this turn"
                + (
                    "; set the goal or the plan only when stated or changed, and list steps "
                    "completed in this turn as progress"
                    if planning
                    else ""
                )
                + ". Null for anything that did not change."
            ),
            current_state="\n".join(state) if state else "(new session)",
        )

    async def aextraction(self, **context: Any) -> Extraction | None:
        """What to extract from this turn (recalls the session first)."""
        if not (context.get("user_id") and context.get("session_id")):
            return None
        return await self.aextraction_from(await self.arecall(**context), **context)

    def extraction(self, **context: Any) -> Extraction | None:
        """Sync :meth:`aextraction`."""
        return run_sync(self.aextraction(**context))

    async def aapply_extraction(self, data: BaseModel, **context: Any) -> None:
        """Send the extracted session context through the gate."""
        await self._submit_update(data, context)
