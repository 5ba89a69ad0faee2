"""A turn, first-class: begun with what was learned and the tools, finished with what was said.

``turn = await machine.abegin(message, user_id=..., session_id=...)`` gives the turn's typed
:class:`~learning_machines.TurnContext`, the learned context for the system prompt, the tools
bound to this turn and the session's recent history. ``await turn.afinish(messages)`` writes the
turn's row, the recall marks, the records of stores that keep every turn (the decision log) and
the pending work that learns from it in one transaction, then wakes the background worker. Any
framework can drive a turn this way; our ``Agent`` does (and passes ``run=RunInfo(...)``: the
model, its tokens and latency, which only the agent knows).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from .._messages import ChatMessage, from_stored_json, to_chat_messages
from .._modes import LearningMode
from .._sync import sync_twin
from .._turn_context import TurnContext
from .._turn_record import RunInfo, TurnRecord, merge_tool_runs
from ..db import (
    AppendMessage,
    Db,
    EnqueueWork,
    ListMessages,
    MarkRecalled,
    Message,
    Op,
    PendingWork,
)
from ..exceptions import ValidationError
from ..stores import BoundTools, ToolSpec
from ._context import LearningContext
from ._jobs import CurationSchedule, ExtractionJob, Job, encode_job
from ._recall import RecallCache, Recaller
from ._registry import StoreRegistry

__all__ = ["Turn", "TurnOpener", "TurnRecorder"]


def _is_pydantic_ai(messages: Sequence[Any]) -> bool:
    return bool(messages) and all(
        type(m).__module__.startswith("pydantic_ai") and hasattr(m, "parts") for m in messages
    )


def _messages_json(messages: Sequence[Any]) -> tuple[str, list[ChatMessage]]:
    """The turn's messages as stored (pydantic-ai's own JSON for its messages) and as chat."""
    if _is_pydantic_ai(messages):
        from pydantic_ai.messages import ModelMessagesTypeAdapter

        text = ModelMessagesTypeAdapter.dump_json(list(messages)).decode()
        return text, to_chat_messages(messages)
    chat = to_chat_messages(messages)
    return json.dumps([m.to_dict() for m in chat], ensure_ascii=False), chat


class TurnRecorder:
    """Writes finished turns and the work that learns from them, in one transaction each."""

    def __init__(
        self,
        *,
        db: Db,
        registry: StoreRegistry,
        schedule: CurationSchedule,
        max_attempts: int,
        recalled: RecallCache,
        on_enqueued: Callable[[], None],
        also_due: Callable[[TurnContext], Job | None] | None = None,
    ) -> None:
        self.db = db
        self.also_due = also_due
        """Other work a finished turn may make due (a reflection), by the turn."""
        self.registry = registry
        self.schedule = schedule
        self.max_attempts = max_attempts
        self.recalled = recalled
        self.on_enqueued = on_enqueued

    async def record(
        self,
        turn: Turn,
        messages: str | Sequence[Any],
        *,
        answer: str | None,
        run: RunInfo | None = None,
    ) -> PendingWork | None:
        """Store the turn's row, recall marks, turn records, extraction work and curation due."""
        ctx = turn.context
        items = [messages] if isinstance(messages, str) else list(messages)
        stored, chat = _messages_json(items)
        user_text = ctx.message or next((m.content for m in chat if m.role == "user"), "")
        if answer is None:
            answer = next((m.content for m in reversed(chat) if m.role == "assistant"), "")
        ops: list[Op[Any]] = [
            AppendMessage(
                message=Message(
                    session_id=ctx.session_id,
                    user_id=ctx.user_id,
                    agent_id=ctx.agent_id,
                    turn_id=ctx.turn_id,
                    turn_index=ctx.turn_index,
                    user_message=user_text,
                    assistant_message=answer,
                    messages_json=stored,
                )
            )
        ]
        ids = turn.learned.learning_ids
        if ids:
            ops.append(MarkRecalled(ids=tuple(ids), at=ctx.now))
        recorders = self.registry.turn_recorders()
        if recorders:
            record = _turn_record(turn, chat, answer=answer, run=run or RunInfo())
            for slot in recorders:
                ops.extend(await slot.turn_ops(record))
        slots = self.registry.background()
        work: PendingWork | None = None
        if slots:
            job = ExtractionJob(
                context=ctx,
                stores=tuple(slot.name for slot in slots),
                fingerprint={slot.name: slot.fingerprint() for slot in slots},
            )
            work = encode_job(job, max_attempts=self.max_attempts, route=self.registry.route())
            ops.append(EnqueueWork(work=work))
            if turn.learned.recalled:
                self.recalled.put(ctx.turn_id, turn.learned.recalled)
        curation = self.schedule.after_turn() if self.registry else None
        if curation is not None:
            ops.append(EnqueueWork(work=encode_job(curation, max_attempts=self.max_attempts)))
        due = self.also_due(ctx) if self.also_due is not None else None
        if due is not None:
            ops.append(EnqueueWork(work=encode_job(due, max_attempts=self.max_attempts)))
        # The turn and the work that learns from it are durable before the answer returns.
        await self.db.abatch(ops)
        if work is not None or curation is not None or due is not None:
            self.on_enqueued()
        return work


def _turn_record(turn: Turn, chat: list[ChatMessage], *, answer: str, run: RunInfo) -> TurnRecord:
    by_store = turn.learned.learnings_by_store()
    return TurnRecord(
        context=turn.context,
        answer=answer,
        messages=tuple(chat),
        tool_runs=merge_tool_runs(turn.tools.log.runs, chat, store_tools=set(turn.tools.names)),
        recalled={name: tuple(found) for name, found in by_store.items()},
        recalled_types={
            i: x.learning_type for found in by_store.values() for i, x in found.items()
        },
        recalled_texts={i: x.search_text for found in by_store.values() for i, x in found.items()},
        run=run,
        duration_ms=(time.perf_counter() - turn.started) * 1000,
    )


class Turn:
    """One turn of a conversation, from recall to the pending work that learns from it."""

    def __init__(
        self,
        *,
        context: TurnContext,
        learned: LearningContext,
        tools: BoundTools,
        history: Sequence[Message],
        recorder: TurnRecorder,
    ) -> None:
        self.context = context
        """Who, when and what: the turn's typed context."""
        self.learned = learned
        """What the stores recalled, and the text to add to the system prompt."""
        self.tools = tools
        """The stores' tools bound to this turn (adapters for each framework)."""
        self.history = list(history)
        """The session's most recent turns before this one, oldest first."""
        self.learning_work: PendingWork | None = None
        """The pending work that learns from the turn, once finished (``None`` if none)."""
        self._recorder = recorder
        self._finished = False
        self.started = time.perf_counter()
        """When the turn began (``time.perf_counter()``), for its duration."""

    @property
    def finished(self) -> bool:
        """Whether :meth:`afinish` was called."""
        return self._finished

    def history_messages(self) -> list[ChatMessage]:
        """The session's earlier turns as chat messages, oldest first."""
        out: list[ChatMessage] = []
        for row in self.history:
            out.extend(from_stored_json(row.messages_json))
        return out

    async def afinish(
        self,
        messages: str | Sequence[Any],
        *,
        answer: str | None = None,
        run: RunInfo | None = None,
    ) -> PendingWork | None:
        """Record the finished turn and queue its learning; returns the pending work.

        ``messages`` is the whole turn — the user's message, the answer, tool calls and their
        results — as pydantic-ai messages, ``{"role", "content"}`` dicts or ``ChatMessage``.
        ``answer`` is the final answer when it is not the last assistant message. ``run`` is
        what only the agent knows (model, tokens, latency, instructions version) for the
        decision log. A turn is finished once.
        """
        if self._finished:
            raise ValidationError(
                f"turn {self.context.turn_id} is already finished; begin a new turn for the "
                "next message"
            )
        # Claimed before the first await: two finishes at once record the turn once.
        self._finished = True
        try:
            self.learning_work = await self._recorder.record(self, messages, answer=answer, run=run)
        except BaseException:
            self._finished = False  # nothing was written: the turn may be finished again
            raise
        return self.learning_work

    finish = sync_twin(afinish)


class TurnOpener:
    """Opens turns: the session's recent history, recall, and the tools bound to the turn."""

    def __init__(
        self,
        *,
        db: Db,
        registry: StoreRegistry,
        recaller: Recaller,
        recorder: TurnRecorder,
        approve_tool: ToolSpec[Any],
    ) -> None:
        self.db = db
        self.registry = registry
        self.recaller = recaller
        self.recorder = recorder
        self.approve_tool = approve_tool

    async def aopen(self, context: TurnContext, *, history_turns: int, recall: bool) -> Turn:
        """The turn of a checked ``context`` (its index follows the session's last turn)."""
        self.registry.check_context(context.kwargs())
        history = await self.db.arun(
            ListMessages(
                session_id=context.session_id,
                user_id=context.user_id,
                limit=max(1, history_turns),
            )
        )
        if history:
            context = dataclasses.replace(context, turn_index=history[-1].turn_index + 1)
        if recall:
            context, learned = await self.recaller.recall(context)
        else:
            learned = LearningContext(text="")
        propose = self.registry.has_mode(LearningMode.PROPOSE)
        extra = [self.approve_tool] if propose else []
        tools = BoundTools(self.registry.tool_specs(context.kwargs(), extra=extra), context)
        return Turn(
            context=context,
            learned=learned,
            tools=tools,
            history=history[-history_turns:] if history_turns > 0 else [],
            recorder=self.recorder,
        )
