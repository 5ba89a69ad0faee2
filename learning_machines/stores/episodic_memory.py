"""Episodic memory: every turn kept verbatim, with its time and speaker, searchable.

Works with no language model: :meth:`EpisodicMemoryStore.aprocess` stores the user's message and
the answer of each turn, and :meth:`~EpisodicMemoryStore.aadd_episodes` ingests a conversation
(benchmarks, imports)::

    await store.aadd_episodes(
        [Episode(speaker="Caroline", text="I went to a support group.", at=when, ref="D1:3")],
        user_id="caroline",
    )
    for hit in await store.asearch("support group", user_id="caroline"):
        print(hit.score, hit.episode.text)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from .._messages import ChatMessage
from .._modes import LearningMode
from .._sync import run_sync
from .._turn_context import TurnContext
from ..curation import WritePolicy
from ..db import PRIVATE_NAMESPACE, Learning, LearningFilter, ScoredLearning, stable_id
from ..exceptions import ConfigurationError, ValidationError
from ._base import BaseStore, StoreConfig
from ._config_values import name_value, whole_number
from ._episode_model import Episode, ScoredEpisode
from ._episode_ranking import EpisodeRanking, index_texts, search_episodes
from ._shared import fit_lines, save, scope_filter, turn_time
from ._tools import ToolSpec

__all__ = [
    "CALIBRATED_CUTOFFS",
    "Episode",
    "EpisodeLine",
    "EpisodesWrite",
    "EpisodicMemoryConfig",
    "EpisodicMemoryStore",
    "ScoredEpisode",
]

# Episodes are verbatim: two people saying "ok" at different times are two episodes (no exact
# or near-duplicate merging), and vectors are computed in one batch before writing. Re-ingesting
# is still idempotent: an episode's id is derived from who said what, when.
_EPISODE_POLICY = WritePolicy(embed=False, dedupe_exact=False, merge_near=False, match_names=False)


#: Recall cutoffs measured per embedder (``EpisodicMemoryConfig(min_similarity="auto")``).
CALIBRATED_CUTOFFS: Mapping[str, float] = {"all-MiniLM-L6-v2/onnx-int8": 0.25}


class EpisodeLine(BaseModel):
    """One utterance of a turn, as written."""

    speaker: str = Field(description="Who said it.")
    text: str = Field(description="What was said, verbatim.")


class EpisodesWrite(BaseModel):
    """The store's write: a turn's utterances, said at one time."""

    episodes: list[EpisodeLine] = Field(default_factory=list, description="Who said what.")
    at: str | None = Field(default=None, description="When, as an ISO time.")


class EpisodeSearchArgs(BaseModel):
    """Arguments of ``search_episodes``."""

    query: str = Field(description="What was said, in a few words, e.g. 'support group'.")
    limit: int = Field(default=5, ge=1, le=20, description="The most messages to return (1-20).")


@dataclass(kw_only=True)
class EpisodicMemoryConfig(StoreConfig):
    """Settings of episodic memory (always private to the user: namespace ``"user"``)."""

    limit: int = 5
    """How many episodes are recalled for a turn (the most relevant to its message)."""
    batch_size: int = 256
    """Episodes embedded together per embedder call when ingesting."""
    agent_name: str = "assistant"
    """Speaker name of the agent's turns when the context carries no ``agent_id``."""
    max_tokens: int = 500
    """Token budget of the episodes block in the system prompt."""
    min_similarity: float | Literal["auto", "off"] = "auto"
    """Relevance cutoff of automatic recall: an episode whose cosine with the turn's message is
    below this is not put in the prompt, however well it ranks among the user's episodes; nor is
    a turn that matches only through the statement before it, which its index holds. Without
    it, any message recalls the user's five least-unrelated episodes, a confidential note among
    them. ``"auto"``: the value measured for the embedder in use (:data:`CALIBRATED_CUTOFFS`:
    0.25 for the default MiniLM), no cutoff for an embedder not measured; ``"off"``: none.

    Measured by ``learning-machines bench retrieval`` (``docs/benchmarks.md``): at 0.25 with
    MiniLM, recall@5 on LoCoMo goes from 0.690 to 0.674 while episodes recalled for another
    user's questions fall from 5.0 to 2.4 per question (on the assistant-chat set: 0.906 → 0.883,
    and 5.0 → 1.7). Cosines differ between embedders: measure yours before setting a number.
    The ``search_episodes`` tool and :meth:`EpisodicMemoryStore.asearch` apply no cutoff unless
    asked.
    """
    ranking: EpisodeRanking = field(default_factory=EpisodeRanking)
    """How turns are indexed and ranked (defaults measured on LoCoMo, ``docs/benchmarks.md``)."""

    def __post_init__(self) -> None:
        """Check and coerce the values (see :class:`StoreConfig`)."""
        super().__post_init__()
        self.limit = whole_number(self.limit, field=self._field("limit"), minimum=1)
        self.batch_size = whole_number(self.batch_size, field=self._field("batch_size"), minimum=1)
        self.agent_name = name_value(self.agent_name, field=self._field("agent_name"))
        if not isinstance(self.ranking, EpisodeRanking):
            raise ConfigurationError(
                f"{self._field('ranking')} must be an EpisodeRanking(...), not "
                f"{type(self.ranking).__name__}"
            )

    def create_store(self) -> EpisodicMemoryStore:
        """Build the store from this config."""
        return EpisodicMemoryStore(self)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def episode_line(episode: Episode) -> str:
    """``- [2024-01-15 10:00] Caroline: text`` for the prompt and tool answers."""
    return f"- [{_utc(episode.at).strftime('%Y-%m-%d %H:%M')}] {episode.speaker}: {episode.text}"


def episode_from(learning: Learning) -> Episode:
    """Read the :class:`Episode` stored in ``learning``."""
    c = learning.content
    at = c.get("at")
    when = datetime.fromisoformat(at) if isinstance(at, str) else learning.created_at
    return Episode(
        speaker=str(c.get("speaker", "")),
        text=str(c.get("text", "")),
        at=_utc(when),
        session_id=learning.session_id,
        ref=c.get("ref"),
        caption=c.get("caption"),
    )


class EpisodicMemoryStore(BaseStore):
    """Every turn verbatim (speaker, time, text), found by hybrid search; no model needed.

    BACKGROUND only: it keeps what was said, so there is nothing for an agent to decide or
    approve. ``search_episodes`` is the agent's read tool.
    """

    learning_type: ClassVar[str] = "episode"
    supported_modes: ClassVar[frozenset[LearningMode]] = frozenset({LearningMode.BACKGROUND})
    required_context: ClassVar[tuple[str, ...]] = ("user_id",)
    write_model = EpisodesWrite

    config: EpisodicMemoryConfig

    def __init__(self, config: EpisodicMemoryConfig | None = None) -> None:
        config = config or EpisodicMemoryConfig()
        super().__init__(config)
        if config.namespace != PRIVATE_NAMESPACE or config.read_namespaces:
            raise ConfigurationError(
                "EpisodicMemoryConfig keeps conversations private: leave namespace='user' and "
                "read_namespaces empty."
            )
        if config.batch_size < 1:
            raise ConfigurationError("EpisodicMemoryConfig(batch_size=...) must be at least 1.")
        cutoff = config.min_similarity
        if cutoff not in ("auto", "off") and (
            isinstance(cutoff, bool)
            or not isinstance(cutoff, int | float)
            or not -1.0 <= cutoff <= 1.0
        ):
            raise ConfigurationError(
                f"EpisodicMemoryConfig(min_similarity={cutoff!r}) must be a cosine between -1 "
                "and 1 (e.g. 0.25), 'auto' (the value measured for the embedder) or 'off'."
            )
        self.config = config

    def _filter(self, user_id: str, session_id: str | None = None) -> LearningFilter:
        return LearningFilter(
            namespaces=(PRIVATE_NAMESPACE,),
            reader_user_id=user_id,
            learning_types=(self.learning_type,),
            session_id=session_id,
        )

    # --- ingestion ---------------------------------------------------------------------------

    async def aadd_episodes(
        self, episodes: Sequence[Episode], *, user_id: str, **context: Any
    ) -> list[str]:
        """Store ``episodes`` in ``user_id``'s private memory; returns their ids, in order.

        Texts are embedded ``batch_size`` at a time, one embedder call per batch. Ids are
        derived from user, session, time, speaker, reference and text, so ingesting the same
        conversation twice stores it once.
        """
        if not user_id:
            raise ValidationError(
                "aadd_episodes(user_id=...) needs the user the episodes belong to."
            )
        from ..embedders import aembed

        ctx = {**context, "user_id": user_id}
        ids: list[str] = []
        previous: tuple[str | None, str] | None = None
        size = self.config.batch_size
        for start in range(0, len(episodes), size):
            chunk = list(episodes[start : start + size])
            before = episodes[max(0, start - self.config.ranking.context_turns) : start]
            texts = index_texts(chunk, self.config.ranking, before=before)
            vectors = await aembed(self.embedder, texts)
            for episode, text, vector in zip(chunk, texts, vectors, strict=True):
                # the previous turn of the session, whose text is part of this one's index
                after = (
                    previous if previous and previous[0] == self._session(episode, ctx) else None
                )
                stored = await self._store(
                    episode, text, vector, user_id, ctx, after=after[1] if after else None
                )
                ids.append(stored)
                previous = (self._session(episode, ctx), stored)
        return ids

    @staticmethod
    def _session(episode: Episode, context: Mapping[str, Any]) -> str | None:
        return episode.session_id or context.get("session_id")

    async def _store(
        self,
        episode: Episode,
        text: str,
        vector: Sequence[float],
        user_id: str,
        context: Mapping[str, Any],
        *,
        after: str | None,
    ) -> str:
        at = _utc(episode.at)
        session_id = self._session(episode, context)
        learning = Learning(
            id=stable_id(
                self.learning_type,
                user_id,
                session_id,
                at.isoformat(),
                episode.speaker,
                episode.ref,
                episode.full_text,
            ),
            learning_type=self.learning_type,
            namespace=PRIVATE_NAMESPACE,
            user_id=user_id,
            session_id=session_id,
            agent_id=context.get("agent_id"),
            content={
                "speaker": episode.speaker,
                "text": episode.full_text,
                "at": at.isoformat(),
                "ref": episode.ref,
                "caption": episode.caption,
                "after": after if self.config.ranking.context_turns else None,
            },
            search_text=text,
            embedding=tuple(float(x) for x in vector),
            embedder=self.embedder.name,
            valid_from=at,
        )
        result = await save(
            self,
            learning,
            action="create",
            reason="episode",
            context={**context, "session_id": session_id},
            scope=scope_filter(PRIVATE_NAMESPACE, self.learning_type, context),
            policy=_EPISODE_POLICY,
        )
        return result.learning.id

    def add_episodes(
        self, episodes: Sequence[Episode], *, user_id: str, **context: Any
    ) -> list[str]:
        """Sync :meth:`aadd_episodes`."""
        return run_sync(self.aadd_episodes(episodes, user_id=user_id, **context))

    # --- search and recall -------------------------------------------------------------------

    async def asearch(
        self,
        query: str,
        *,
        user_id: str,
        limit: int = 10,
        session_id: str | None = None,
        vector: Sequence[float] | None = None,
        min_similarity: float | None = None,
    ) -> list[ScoredEpisode]:
        """``user_id``'s episodes most relevant to ``query``, best first.

        ``min_similarity`` drops episodes whose cosine with the query is below it (see
        :attr:`EpisodicMemoryConfig.min_similarity`).
        """
        if not user_id:
            raise ValidationError("asearch(user_id=...) needs the user whose memory to search.")
        found: list[ScoredLearning] = await search_episodes(
            self,
            query,
            self._filter(user_id, session_id),
            limit=limit,
            ranking=self.config.ranking,
            vector=vector,
            min_similarity=min_similarity,
        )
        return [
            ScoredEpisode(
                episode=episode_from(s.learning),
                score=s.score,
                id=s.learning.id,
                similarity=s.vector_score,
            )
            for s in found
        ]

    def search(
        self, query: str, *, user_id: str, limit: int = 10, session_id: str | None = None
    ) -> list[ScoredEpisode]:
        """Sync :meth:`asearch`."""
        return run_sync(self.asearch(query, user_id=user_id, limit=limit, session_id=session_id))

    async def arecall(self, **context: Any) -> list[ScoredEpisode]:
        """Episodes most relevant to the turn's message, above the relevance cutoff.

        None without a message; none below :attr:`EpisodicMemoryConfig.min_similarity`.
        """
        self.require_context(context)
        message = str(context.get("message") or "")
        if not message.strip():
            return []
        return await self.asearch(
            message,
            user_id=str(context["user_id"]),
            limit=self.config.limit,
            vector=await self.query_vector(context),
            min_similarity=self.recall_cutoff(),
        )

    def recall_cutoff(self) -> float | None:
        """The cosine below which recall leaves an episode out (``None``: no cutoff)."""
        cutoff = self.config.min_similarity
        if cutoff == "off":
            return None
        if cutoff == "auto":
            return CALIBRATED_CUTOFFS.get(self.embedder.name)
        return float(cutoff)

    def build_context(self, data: Any) -> str:
        """Recalled episodes as a ``## Relevant earlier conversation`` block, best first."""
        if not isinstance(data, list):
            return ""
        lines = [episode_line(s.episode) for s in data if isinstance(s, ScoredEpisode)]
        return fit_lines("## Relevant earlier conversation", lines, self.config.max_tokens)

    # --- learning from turns -----------------------------------------------------------------

    async def aprocess(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        """Keep the turn's user message and answer (tool calls and results are skipped)."""
        self.require_context(context)
        now = turn_time(context)
        user = str(context["user_id"])
        agent = str(context.get("agent_id") or self.config.agent_name)
        lines = [
            EpisodeLine(speaker=user if m.role == "user" else agent, text=m.content)
            for m in messages
            if m.role in ("user", "assistant")
            and m.name is None
            and not m.tool_calls
            and m.content.strip()
        ]
        if not lines:
            return
        await self.submit(
            EpisodesWrite(episodes=lines, at=now.isoformat()),
            summary=f"{len(lines)} episodes",
            context=context,
        )

    async def apply_write(self, write: Any, **context: Any) -> list[str]:
        """Store an :class:`EpisodesWrite`: who said what, at its time."""
        self.require_context(context)
        if not isinstance(write, EpisodesWrite):
            write = self.decode_write(write)
        at = datetime.fromisoformat(write.at) if write.at else None
        when = at or turn_time(context)
        episodes = [
            Episode(
                speaker=line.speaker,
                text=line.text,
                at=when,
                session_id=context.get("session_id"),
                ref=f"{context.get('turn_id')}:{i}" if context.get("turn_id") else None,
            )
            for i, line in enumerate(write.episodes)
        ]
        return await self.aadd_episodes(episodes, **context)

    # --- tools and guidance ------------------------------------------------------------------

    def tool_specs(self) -> list[ToolSpec[Any]]:
        """``search_episodes`` (read-only), bound to the turn's user."""

        async def search_episodes(turn: TurnContext, args: EpisodeSearchArgs) -> str:
            if not turn.user_id:
                return "Earlier conversations are private to a user; this turn has no user."
            found = await self.asearch(args.query, user_id=turn.user_id, limit=args.limit)
            return "\n".join(episode_line(s.episode) for s in found) or "Nothing found."

        return [
            ToolSpec(
                name="search_episodes",
                description=(
                    "Search earlier conversations with this user, word for word, with dates."
                ),
                args=EpisodeSearchArgs,
                handler=search_episodes,
            )
        ]

    def guidance(self, **context: Any) -> str:
        """When to search earlier conversations."""
        return (
            "search_episodes finds what was said in earlier conversations with this user, with "
            "dates; use it when they refer to something discussed before."
        )
