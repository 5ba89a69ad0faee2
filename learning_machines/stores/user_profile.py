"""User profile: who the user is, one row per user, private to them.

Extend the schema by subclassing :class:`UserProfile`::

    class MyProfile(UserProfile):
        timezone: str | None = Field(default=None, description="IANA timezone, e.g. Europe/Paris")

    UserProfileConfig(schema=MyProfile)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field, create_model

from .._modes import LearningMode
from .._sync import run_sync
from .._turn_context import TurnContext
from ..curation import retry_conflicts
from ..db import PRIVATE_NAMESPACE, GetLearnings, Learning, stable_id
from ..exceptions import ConfigurationError, ValidationError
from ._base import BaseStore, StoreConfig
from ._protocol import Extraction
from ._shared import (
    DIRECT_LOOKUP,
    describe_mode_writes,
    fit_lines,
    kept_on_update,
    save,
    scope_filter,
)
from ._tools import ToolSpec

__all__ = ["UserProfile", "UserProfileConfig", "UserProfileStore"]


class UserProfile(BaseModel):
    """What is known about a user. Subclass it to add fields (give each a description)."""

    name: str | None = Field(default=None, description="The user's full name.")
    preferred_name: str | None = Field(
        None, description="What the user likes to be called, if different from their name."
    )
    role: str | None = Field(
        default=None, description="Job title or role, e.g. 'backend engineer'."
    )
    company: str | None = Field(default=None, description="Company or organisation they work for.")
    team: str | None = Field(default=None, description="Team or department.")
    projects: list[str] = Field(
        default_factory=list, description="Projects they are working on (short names)."
    )
    preferences: list[str] = Field(
        default_factory=list,
        description="Lasting preferences, e.g. 'prefers Python examples', 'uses vim'.",
    )
    communication_style: str | None = Field(
        None, description="How they like answers, e.g. 'concise, no small talk'."
    )


@dataclass(kw_only=True)
class UserProfileConfig(StoreConfig):
    """Settings of the user profile store (always private: namespace ``"user"``)."""

    schema: type[UserProfile] = UserProfile
    """The profile model; subclass :class:`UserProfile` to add fields."""
    max_tokens: int = 300
    """Token budget of the profile block in the system prompt."""

    def __post_init__(self) -> None:
        """Check and coerce the values (see :class:`StoreConfig`)."""
        super().__post_init__()
        if not (isinstance(self.schema, type) and issubclass(self.schema, UserProfile)):
            raise ConfigurationError(
                f"{self._field('schema')} must be UserProfile or a subclass of it, not "
                f"{self.schema!r}"
            )

    def create_store(self) -> UserProfileStore:
        """Build the store from this config."""
        return UserProfileStore(self)


@functools.cache
def profile_update_model(schema: type[UserProfile]) -> type[BaseModel]:
    """Build the model of changes to a profile: every field optional, ``None`` = unchanged.

    List fields are merged into what is known (give only new items).
    """
    fields: dict[str, Any] = {}
    for name, info in schema.model_fields.items():
        annotation: Any = info.annotation
        fields[name] = (annotation | None, Field(default=None, description=info.description))
    model: type[BaseModel] = create_model(f"{schema.__name__}Update", **fields)
    model.__doc__ = (
        f"Changes to the {schema.__name__}: set only fields the user stated in this turn; "
        "lists are merged with what is known."
    )
    return model


def merge_profile(
    schema: type[UserProfile], current: Mapping[str, Any], updates: Mapping[str, Any]
) -> UserProfile:
    """Apply ``updates`` to ``current``: scalars replaced, list items appended once."""
    merged = dict(current)
    for name, value in updates.items():
        if name not in schema.model_fields or value is None:
            continue
        old = merged.get(name)
        if isinstance(value, list) and isinstance(old, list):
            seen = {str(v).casefold() for v in old}
            merged[name] = [*old, *(v for v in value if str(v).casefold() not in seen)]
        else:
            merged[name] = value
    try:
        return schema.model_validate(merged)
    except Exception as exc:  # pydantic's error, re-raised as ours with the fix in the message
        raise ValidationError(f"profile update does not fit {schema.__name__}: {exc}") from exc


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def render_profile(profile: UserProfile) -> list[str]:
    """Render the profile's known fields as ``- Label: value`` lines, in schema order."""
    lines: list[str] = []
    for name in type(profile).model_fields:
        value = getattr(profile, name)
        if value in (None, "", [], {}):
            continue
        text = "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        lines.append(f"- {_label(name)}: {text}")
    return lines


class UserProfileStore(BaseStore):
    """Who the user is: name, work context, preferences, communication style.

    One row per user in the private namespace ``"user"``; recalled directly (no search) into
    every turn. Learns in every mode: extracted in BACKGROUND, through the
    ``update_user_profile`` tool in AGENTIC, and as proposals in PROPOSE and HITL.
    """

    learning_type: ClassVar[str] = "user_profile"
    supported_modes: ClassVar[frozenset[LearningMode]] = frozenset(LearningMode)
    required_context: ClassVar[tuple[str, ...]] = ("user_id",)

    config: UserProfileConfig

    def __init__(self, config: UserProfileConfig | None = None) -> None:
        config = config or UserProfileConfig()
        super().__init__(config)
        if config.namespace != PRIVATE_NAMESPACE:
            raise ConfigurationError(
                "UserProfileConfig(namespace=...) must stay 'user': a profile is private to its "
                "user. Use LearnedKnowledgeConfig for knowledge shared across users."
            )
        if not (isinstance(config.schema, type) and issubclass(config.schema, UserProfile)):
            raise ConfigurationError(
                "UserProfileConfig(schema=...) must be UserProfile or a subclass of it."
            )
        self.config = config
        self.write_model: type[BaseModel] = profile_update_model(config.schema)

    @property
    def schema(self) -> type[UserProfile]:
        """The profile model in use."""
        return self.config.schema

    def _row_id(self, user_id: str) -> str:
        return stable_id(self.learning_type, PRIVATE_NAMESPACE, user_id)

    async def _load_row(self, user_id: str) -> Learning | None:
        """The user's profile row whatever its status (archived rows keep their version)."""
        rows = await self.db.arun(
            GetLearnings(ids=(self._row_id(user_id),), filter=self.read_filter(user_id=user_id))
        )
        return rows[0] if rows else None

    async def _load(self, user_id: str) -> Learning | None:
        row = await self._load_row(user_id)
        return row if row is not None and row.status == "active" else None

    # --- recall ------------------------------------------------------------------------------

    async def arecall(self, **context: Any) -> UserProfile | None:
        """Recall the user's profile, or ``None`` when nothing is known yet."""
        self.require_context(context)
        row = await self._load(str(context["user_id"]))
        return self.schema.model_validate(row.content) if row is not None else None

    def build_context(self, data: Any) -> str:
        """Render the profile as a ``## User profile`` block, fields in schema order."""
        if not isinstance(data, UserProfile):
            return ""
        return fit_lines("## User profile", render_profile(data), self.config.max_tokens)

    # --- writing -----------------------------------------------------------------------------

    def decode_write(self, payload: Mapping[str, Any]) -> BaseModel:
        """Read a held write back (also the ``{"updates": {...}}`` form of older versions)."""
        updates = payload.get("updates")
        return self.write_model.model_validate(updates if isinstance(updates, dict) else payload)

    async def apply_write(self, write: Any, **context: Any) -> list[str]:
        """Merge the write's fields into the user's profile (lists are merged).

        ``write`` is a :attr:`write_model` instance (every field optional). Returns the row id,
        or nothing when the profile did not change. Concurrent writers never lose each other's
        updates: the merge is applied to the row as read, written only if that row is still
        current, and re-applied on a fresh read otherwise.
        """
        self.require_context(context)
        user_id = str(context["user_id"])
        if isinstance(write, Mapping):
            write = self.decode_write(write)
        updates = write.model_dump(exclude_none=True)
        return await retry_conflicts(
            lambda: self._merge_once(user_id, updates, context),
            what=f"the profile of user {user_id!r}",
        )

    async def _merge_once(
        self, user_id: str, updates: Mapping[str, Any], context: Mapping[str, Any]
    ) -> list[str]:
        stored = await self._load_row(user_id)
        row = stored if stored is not None and stored.status == "active" else None
        current = row.content if row is not None else {}
        profile = merge_profile(self.schema, current, updates)
        content = profile.model_dump(mode="json")
        if row is not None and content == row.content:
            return []
        learning = Learning(
            id=self._row_id(user_id),
            learning_type=self.learning_type,
            namespace=PRIVATE_NAMESPACE,
            user_id=user_id,
            content=content,
            search_text="\n".join(render_profile(profile)),
            **kept_on_update(row),
        )
        result = await save(
            self,
            learning,
            action="update" if row is not None else "create",
            reason="profile " + ", ".join(sorted(k for k, v in updates.items() if v is not None)),
            context=context,
            scope=scope_filter(PRIVATE_NAMESPACE, self.learning_type, context),
            policy=DIRECT_LOOKUP,
            expected_version=stored.version if stored is not None else 0,
        )
        return [result.learning.id]

    async def _submit_updates(self, updates: BaseModel, context: Mapping[str, Any]) -> str:
        clean = {k: v for k, v in updates.model_dump().items() if v not in (None, "", [])}
        if not clean:
            return "nothing to update"
        summary = "user profile: " + ", ".join(f"{k}={v!r}" for k, v in sorted(clean.items()))
        write = self.write_model.model_validate(clean)
        outcome = await self.submit(write, summary=summary, context=context)
        return outcome.describe()

    # --- tools and guidance ------------------------------------------------------------------

    def tool_specs(self) -> list[ToolSpec[Any]]:
        """``update_user_profile`` in AGENTIC, PROPOSE and HITL; nothing in BACKGROUND."""
        if self.mode is LearningMode.BACKGROUND:
            return []

        async def update(turn: TurnContext, args: BaseModel) -> str:
            return await self._submit_updates(args, turn.kwargs())

        return [
            ToolSpec(
                name="update_user_profile",
                description=(
                    "Save lasting facts the user told you about themselves to their profile. "
                    "Set only the fields the user stated; leave the rest out. List fields are "
                    "merged with what is already known."
                ),
                args=self.write_model,
                handler=update,
                writes=True,
            )
        ]

    def guidance(self, **context: Any) -> str:
        """When to call ``update_user_profile`` in this mode."""
        if self.mode is LearningMode.BACKGROUND:
            return ""
        return (
            "When the user tells you something lasting about themselves (name, what to call "
            "them, role, company, team, projects, preferences, how they like answers), call "
            "update_user_profile with just those fields. Do not save guesses or one-off "
            f"requests. {describe_mode_writes(self.mode.value)}"
        )

    # --- background extraction ---------------------------------------------------------------

    async def aextraction_from(self, recalled: Any, **context: Any) -> Extraction | None:
        """What to extract from this turn: changes to the profile, given the recalled one."""
        if self.mode not in (LearningMode.BACKGROUND, LearningMode.HITL) or not context.get(
            "user_id"
        ):
            return None
        state = "\n".join(render_profile(recalled)) if isinstance(recalled, UserProfile) else ""
        return Extraction(
            output_type=self.write_model,
            instructions=(
                "Update the user's profile with lasting facts the USER stated about themselves "
                "in this turn (name, preferred name, role, company, team, projects, preferences, "
                "communication style). Leave a field null when the turn says nothing new about "
                "it; never guess; do not repeat what is already known; lists are merged, so give "
                "only new items."
            ),
            current_state=state or "(nothing known yet)",
        )

    async def aextraction(self, **context: Any) -> Extraction | None:
        """What to extract from this turn (recalls the profile first)."""
        if not context.get("user_id"):
            return None
        return await self.aextraction_from(await self.arecall(**context), **context)

    def extraction(self, **context: Any) -> Extraction | None:
        """Sync :meth:`aextraction`."""
        return run_sync(self.aextraction(**context))

    async def aapply_extraction(self, data: BaseModel, **context: Any) -> None:
        """Send the extracted changes through the gate (proposals in HITL)."""
        await self._submit_updates(data, context)
