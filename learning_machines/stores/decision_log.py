"""The decision log: what the agent did in every turn, why, and how it turned out.

Every finished turn gets a decision record, written in the turn's own transaction with no model
call (see :mod:`._decision_model` for what it holds). The agent may add the *why* with the
``log_decision`` tool; in BACKGROUND mode the turn's single extraction call adds a one-line
rationale for turns with tool calls, and (with feedback on) reads the user's new message as a
verdict on the previous answer. Recall finds the user's past decisions on similar requests,
with their outcomes, by hybrid search.

Decisions are a store, not a part the machine holds: a record is a learning (private to the
turn's user, in the ``learnings`` table), so search, isolation, history, forget and export
work as for every other kind of learning, and recall, its token budget and its tool go through
the same registry as the other stores. What only a store of finished turns needs — to write
with the turn — is one optional capability (``aturn_ops``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from .._modes import LearningMode
from .._sync import run_sync
from .._turn_context import TurnContext
from .._turn_record import TurnRecord
from ..db import (
    PRIVATE_NAMESPACE,
    Change,
    GetLearnings,
    Learning,
    LearningFilter,
    ListLearnings,
    LocateLearnings,
    Op,
    PatchContent,
    PutLearning,
    ScoredLearning,
)
from ..exceptions import ConfigurationError, NotFoundError
from ._base import BaseStore, StoreConfig
from ._config_values import flag_value, number_value, whole_number
from ._decision_model import (
    DECISION_TYPE,
    DecisionLogExtraction,
    DecisionRecord,
    LoggedDecision,
    bounded_decision,
    call_text,
    decision_id,
    decision_line,
    record_from_turn,
)
from ._protocol import Extraction
from ._shared import fit_lines, relevant, search
from ._tools import ToolSpec

if TYPE_CHECKING:
    from .._messages import ChatMessage

__all__ = ["DecisionLogConfig", "DecisionLogStore", "ReactionSink"]


@dataclass(kw_only=True)
class DecisionLogConfig(StoreConfig):
    """Settings of the decision log (private to the turn's user: its namespace is ``"user"``)."""

    mode: LearningMode = LearningMode.BACKGROUND
    """BACKGROUND: the turn's extraction call adds a rationale (and reads implicit feedback);
    AGENTIC: only what the agent logs with ``log_decision`` (no model needed)."""
    limit: int = 3
    """Past decisions recalled for a turn (the most relevant to its message)."""
    min_similarity: float = 0.3
    """Past decisions whose message is less similar than this (cosine) are not recalled."""
    max_tokens: int = 400
    """Token budget of the decision log's block in the system prompt."""
    per_agent: bool = True
    """Recall only the turn's agent's decisions when the turn names an agent."""
    tool: bool = True
    """Offer the agent ``log_decision`` to record the why of a choice."""
    max_text_chars: int = 1_000
    """Characters kept of the message and of the answer."""
    max_tool_chars: int = 500
    """Characters kept of each tool argument, result and error."""
    max_tool_calls: int = 50
    """Tool calls kept per turn."""

    def __post_init__(self) -> None:
        """Check and coerce the values (see :class:`StoreConfig`)."""
        super().__post_init__()
        self.limit = whole_number(self.limit, field=self._field("limit"), minimum=1)
        self.min_similarity = number_value(
            self.min_similarity, field=self._field("min_similarity"), low=-1.0, high=1.0
        )
        self.per_agent = flag_value(self.per_agent, field=self._field("per_agent"))
        self.tool = flag_value(self.tool, field=self._field("tool"))
        for name in ("max_text_chars", "max_tool_chars", "max_tool_calls"):
            setattr(
                self, name, whole_number(getattr(self, name), field=self._field(name), minimum=1)
            )

    def create_store(self) -> DecisionLogStore:
        """Build the store from this config."""
        return DecisionLogStore(self)


class ReactionSink(Protocol):
    """Where implicit feedback read by the extraction call goes (the feedback store)."""

    async def arecord_reaction(
        self, *, turn_id: str, user_id: str, score: float, reason: str
    ) -> None:
        """Record that the user's next message judged ``turn_id``'s answer ``score``."""
        ...


class _Logged:
    """Decisions logged by the agent during turns not yet finished (bounded, per turn)."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._pending: OrderedDict[str, list[LoggedDecision]] = OrderedDict()
        self._recorded: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, turn_id: str, decision: LoggedDecision) -> bool:
        """Keep ``decision`` for the turn; ``False`` when the turn is already recorded."""
        with self._lock:
            if turn_id in self._recorded:
                return False
            self._pending.setdefault(turn_id, []).append(decision)
            while len(self._pending) > self._size:
                self._pending.popitem(last=False)
            return True

    def take(self, turn_id: str) -> list[LoggedDecision]:
        """The turn's logged decisions; later ones go straight to its record."""
        with self._lock:
            self._recorded[turn_id] = None
            while len(self._recorded) > self._size:
                self._recorded.popitem(last=False)
            return self._pending.pop(turn_id, [])


_CHANGE_ACTOR = {"store": "decision_log"}


class DecisionLogStore(BaseStore):
    """Every turn's decisions with their outcomes, private to the turn's user.

    Written by the machine with each finished turn (``aturn_ops``); recalled by hybrid search on
    the message; listed and searched through ``machine.decisions``.
    """

    learning_type: ClassVar[str] = DECISION_TYPE
    supported_modes: ClassVar[frozenset[LearningMode]] = frozenset(
        {LearningMode.BACKGROUND, LearningMode.AGENTIC}
    )
    required_context: ClassVar[tuple[str, ...]] = ("user_id",)

    config: DecisionLogConfig

    def __init__(self, config: DecisionLogConfig | None = None) -> None:
        config = config or DecisionLogConfig()
        if config.namespace != PRIVATE_NAMESPACE or config.read_namespaces:
            raise ConfigurationError(
                "the decision log is private to the turn's user: leave namespace='user' and "
                "read_namespaces empty (lessons share what worked across users)"
            )
        super().__init__(config)
        self.config = config
        self._logged = _Logged()
        self.reactions: ReactionSink | None = None
        """Where implicit feedback goes; set by the machine when feedback is on."""

    # --- reading ----------------------------------------------------------------------------

    def owner_filter(self, user_id: str, **extra: Any) -> LearningFilter:
        """Decision records of ``user_id`` (any status with ``statuses=...``)."""
        return LearningFilter(
            namespaces=(PRIVATE_NAMESPACE,),
            reader_user_id=user_id,
            learning_types=(DECISION_TYPE,),
            **extra,
        )

    async def aowner(self, turn_id: str) -> str:
        """Whose turn ``turn_id`` is: an admin lookup, before reading through that user."""
        found = await self.db.arun(LocateLearnings(ids=(decision_id(turn_id),)))
        if not found or not found[0].user_id:
            raise NotFoundError(
                f"no turn {turn_id!r} in the decision log; check the id (RunResult.turn_id, or "
                "machine.decisions.list(user_id=...)) and that the turn ran with the log on"
            )
        return found[0].user_id

    async def aget_record(self, turn_id: str, *, user_id: str) -> Learning | None:
        """The decision record of ``turn_id`` if it is ``user_id``'s."""
        rows = await self.db.arun(
            GetLearnings(ids=(decision_id(turn_id),), filter=self.owner_filter(user_id))
        )
        return rows[0] if rows else None

    async def aprevious(self, context: Mapping[str, Any]) -> Learning | None:
        """The decision record of the turn before this one in the session, if any."""
        index = int(context.get("turn_index") or 0)
        user_id = context.get("user_id")
        if index <= 0 or not user_id:
            return None
        rows = await self.db.arun(
            ListLearnings(
                filter=self.owner_filter(str(user_id), session_id=context.get("session_id")),
                limit=5,
                order_by="created_at",
            )
        )
        earlier = [r for r in rows if int(r.content.get("turn_index", 0)) < index]
        return max(earlier, key=lambda r: int(r.content.get("turn_index", 0)), default=None)

    async def asearch(
        self,
        query: str,
        *,
        user_id: str,
        agent_id: str | None = None,
        limit: int | None = None,
        vector: Sequence[float] | None = None,
    ) -> list[ScoredLearning]:
        """``user_id``'s past decisions relevant to ``query``, best first (outcomes weigh in)."""
        flt = self.owner_filter(user_id, agent_id=agent_id if self.config.per_agent else None)
        return await search(
            self, query, flt, limit=self.config.limit if limit is None else limit, vector=vector
        )

    async def arecall(self, **context: Any) -> list[ScoredLearning]:
        """Past decisions of this user (and agent) on requests like this message."""
        message = str(context.get("message") or "")
        user_id = context.get("user_id")
        if not message.strip() or not user_id:
            return []
        found = await self.asearch(
            message,
            user_id=str(user_id),
            agent_id=context.get("agent_id"),
            vector=await self.query_vector(context),
        )
        return relevant(found, self.config.min_similarity)

    def build_context(self, data: Any) -> str:
        """Recalled decisions as a block: when, what was asked, what was done, how it went."""
        if not isinstance(data, list):
            return ""
        lines = [decision_line(s.learning) for s in data if isinstance(s, ScoredLearning)]
        return fit_lines(
            "## Decision log (your past decisions on similar requests, and how they turned out)",
            lines,
            self.config.max_tokens,
        )

    def guidance(self, **context: Any) -> str:
        """How to use past decisions (and the ``log_decision`` tool when offered)."""
        text = (
            "The decision log shows what you did for similar requests before and how it turned "
            "out: repeat what worked, and do not repeat what went wrong."
        )
        if self.config.tool:
            text += (
                " When you make a consequential choice (which tool or approach, and why), call "
                "log_decision once with it."
            )
        return text

    # --- writing ----------------------------------------------------------------------------

    async def aturn_ops(self, record: TurnRecord) -> Sequence[Op[Any]]:
        """The turn's decision record, written in the turn's transaction (no model call)."""
        ctx = record.context
        logged = self._logged.take(ctx.turn_id)
        if not ctx.user_id:
            return []  # required_context makes every turn carry one; kept for stores used alone
        content = record_from_turn(
            record,
            logged=logged,
            max_text_chars=self.config.max_text_chars,
            max_tool_chars=self.config.max_tool_chars,
            max_tool_calls=self.config.max_tool_calls,
        )
        vector = ctx.query_vector
        if vector is None and ctx.message:
            vector = await self.query_vector(ctx.kwargs())
        learning = Learning(
            id=decision_id(ctx.turn_id),
            learning_type=DECISION_TYPE,
            namespace=PRIVATE_NAMESPACE,
            user_id=ctx.user_id,
            session_id=ctx.session_id,
            agent_id=ctx.agent_id,
            team_id=ctx.team_id,
            entity_id=ctx.turn_id,
            content=content.model_dump(mode="json"),
            search_text=_search_text(content),
            embedding=None if vector is None else tuple(vector),
            embedder=None if vector is None else self.embedder.name,
            created_at=ctx.now,
            updated_at=ctx.now,
            provenance={
                "user_id": ctx.user_id,
                "session_id": ctx.session_id,
                "turn_id": ctx.turn_id,
                "store": self.resources.name,
                "mode": self.mode.value,
            },
        )
        change = Change(
            action="create",
            actor={**_CHANGE_ACTOR, "user_id": ctx.user_id},
            reason="turn recorded",
            turn_id=ctx.turn_id,
        )
        return [PutLearning(learning=learning, change=change)]

    async def _patch(
        self, turn_id: str, user_id: str, patch: dict[str, Any], reason: str
    ) -> Learning | None:
        change = Change(
            action="update",
            actor={**_CHANGE_ACTOR, "user_id": user_id},
            reason=reason,
            turn_id=turn_id,
        )
        return await self.db.arun(
            PatchContent(
                id=decision_id(turn_id),
                filter=self.owner_filter(user_id),
                patch=patch,
                change=change,
            )
        )

    async def alog_decision(self, turn: TurnContext, decision: LoggedDecision) -> str:
        """Attach ``decision`` to the turn's record (kept until the turn is written)."""
        decision = bounded_decision(decision, max_chars=self.config.max_tool_chars)
        if self._logged.add(turn.turn_id, decision):
            return "logged; it is saved with this turn"
        if not turn.user_id:
            return "NOT logged: this turn has no user"
        row = await self.aget_record(turn.turn_id, user_id=turn.user_id)
        if row is None:
            return "NOT logged: this turn has no decision record"
        decisions = [*row.content.get("decisions", []), decision.model_dump(mode="json")]
        await self._patch(turn.turn_id, turn.user_id, {"decisions": decisions}, "decision logged")
        return "logged"

    def tool_specs(self) -> list[ToolSpec[Any]]:
        """``log_decision`` when the config offers it."""
        if not self.config.tool:
            return []

        async def log_decision(turn: TurnContext, args: LoggedDecision) -> str:
            return await self.alog_decision(turn, args)

        return [
            ToolSpec(
                name="log_decision",
                description=(
                    "Record a consequential choice you made in this turn (which tool or "
                    "approach) and why, so later turns can learn from how it turned out."
                ),
                args=LoggedDecision,
                handler=log_decision,
                writes=True,
            )
        ]

    # --- the turn's single extraction call (BACKGROUND) ---------------------------------------

    async def aextraction_from(self, recalled: Any, **context: Any) -> Extraction | None:
        """A rationale for a turn with tool calls; a verdict on the previous answer (feedback)."""
        return await self.aextraction(**context)

    async def aextraction(self, **context: Any) -> Extraction | None:
        """What to ask of this turn (``None`` when there is nothing: no model call for it)."""
        if self.mode is not LearningMode.BACKGROUND or not context.get("user_id"):
            return None
        user_id = str(context["user_id"])
        parts: list[str] = []
        asks: list[str] = []
        row = await self.aget_record(str(context.get("turn_id")), user_id=user_id)
        calls = [] if row is None else DecisionRecord.model_validate(row.content).tool_calls
        if calls:
            shown = "; ".join(call_text(c) for c in calls[:10])
            parts.append(f"This turn's tool calls: {shown}")
            asks.append(
                "rationale: one line on why the assistant called the tools it called in this "
                "turn (from what the turn shows; do not invent reasons)."
            )
        previous = await self.aprevious(context) if self.reactions is not None else None
        if previous is not None:
            before = DecisionRecord.model_validate(previous.content)
            parts.append(
                f'Previous turn: user: "{before.message}"\nassistant: "{before.answer}"'
                + (
                    "\nassistant's tool calls: "
                    + "; ".join(call_text(c) for c in before.tool_calls)
                    if before.tool_calls
                    else ""
                )
            )
            asks.append(
                "reaction: does the user's message in THIS turn judge the previous answer? Score "
                "it from -1 (says it was wrong, did not work, complains, or asks the same again) "
                "to +1 (says it was right, thanks for it); null when the message is about "
                "something else."
            )
        if not asks:
            return None
        return Extraction(
            output_type=DecisionLogExtraction,
            instructions="Fill only these fields (null otherwise):\n- " + "\n- ".join(asks),
            current_state="\n".join(parts),
        )

    def extraction(self, **context: Any) -> Extraction | None:
        """Sync :meth:`aextraction`."""
        return run_sync(self.aextraction(**context))

    async def aapply_extraction(self, data: BaseModel, **context: Any) -> None:
        """Attach the rationale to this turn's record; hand a reaction to the feedback store."""
        part = DecisionLogExtraction.model_validate(data.model_dump())
        user_id = context.get("user_id")
        turn_id = context.get("turn_id")
        if not user_id or not turn_id:
            return
        if part.rationale and part.rationale.strip():
            line = part.rationale.strip().splitlines()[0][:300]
            await self._patch(str(turn_id), str(user_id), {"rationale": line}, "rationale")
        if part.reaction is not None and self.reactions is not None:
            previous = await self.aprevious(context)
            if previous is not None:
                await self.reactions.arecord_reaction(
                    turn_id=str(previous.content["turn_id"]),
                    user_id=str(user_id),
                    score=part.reaction.score,
                    reason=part.reaction.reason,
                )

    async def aprocess(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        """Nothing to learn here: the record is written with the turn."""


def _search_text(record: DecisionRecord) -> str:
    """What a decision is found by: the request, then what was done."""
    lines = [record.message]
    tools = sorted({c.name for c in record.tool_calls if c.source == "app"})
    if tools:
        lines.append("Tools: " + ", ".join(tools))
    lines += [f"Decided: {d.decision}" for d in record.decisions]
    return "\n".join(lines)
