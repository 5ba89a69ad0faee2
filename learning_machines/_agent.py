"""``Agent``: a pydantic-ai agent that recalls before it answers and learns after."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import Tool
from pydantic_ai import messages as pa
from pydantic_ai.messages import ModelMessagesTypeAdapter
from pydantic_ai.models import Model
from pydantic_ai.toolsets import FunctionToolset
from pydantic_ai.usage import RunUsage

from ._sync import run_sync
from .db import (
    AppendMessage,
    Db,
    EnqueueWork,
    ListMessages,
    MarkRecalled,
    Message,
    PendingWork,
    new_id,
    utcnow,
)
from .embedders import Embedder
from .exceptions import ConfigurationError, ValidationError
from .machine import LearningContext, LearningMachine

__all__ = ["Agent", "RunResult", "ToolCall"]


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """A tool the agent called during a run."""

    name: str
    """Tool name."""
    args: dict[str, Any]
    """Arguments the model passed."""
    result: str | None = None
    """What the tool returned (as text)."""


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """The answer of one turn, with what was recalled for it and which tools ran."""

    text: str
    """The answer."""
    turn_id: str
    """Id of the turn (provenance of what is learned from it)."""
    session_id: str
    """The session."""
    user_id: str | None
    """The user."""
    context: LearningContext | None = None
    """What the machine recalled and injected (``None`` without learning)."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    """Tools that ran, in order."""
    usage: RunUsage = field(default_factory=RunUsage)
    """Tokens of the answer (learning's own usage is on ``machine.usage``)."""
    learning_work: PendingWork | None = None
    """The pending work that will learn from this turn (``None`` if nothing learns from it)."""
    messages: list[pa.ModelMessage] = field(default_factory=list)
    """The turn's pydantic-ai messages."""

    @property
    def recalled(self) -> dict[str, Any]:
        """Each store's recalled data, by store name."""
        return {} if self.context is None else self.context.recalled

    def __str__(self) -> str:
        return self.text


def _tool_calls(messages: Sequence[pa.ModelMessage]) -> list[ToolCall]:
    returns: dict[str, str] = {}
    for message in messages:
        if isinstance(message, pa.ModelRequest):
            for part in message.parts:
                if isinstance(part, pa.ToolReturnPart):
                    returns[part.tool_call_id] = part.model_response_str()
    calls = []
    for message in messages:
        if isinstance(message, pa.ModelResponse):
            for rpart in message.parts:
                if isinstance(rpart, pa.ToolCallPart):
                    calls.append(
                        ToolCall(
                            name=rpart.tool_name,
                            args=rpart.args_as_dict(),
                            result=returns.get(rpart.tool_call_id),
                        )
                    )
    return calls


#: Context keys the agent sets itself.
_RESERVED_CONTEXT = frozenset(
    {"agent_id", "turn_id", "turn_index", "now", "message", "query_vector", "mode"}
)

#: Tool schemas by the code object of the tool function. Stores return fresh closures every turn
#: (bound to the turn's context); their schema is the same, so it is built once per process.
_SCHEMAS: dict[Any, Any] = {}


def _as_tool(function: Callable[..., Any]) -> Tool[None]:
    code = getattr(function, "__code__", None)
    if code is None:
        return Tool(function)
    key = (code, getattr(function, "__name__", ""), getattr(function, "__doc__", None))
    schema = _SCHEMAS.get(key)
    if schema is None:
        schema = _SCHEMAS[key] = Tool(function).function_schema
    return Tool(function, function_schema=dataclasses.replace(schema, function=function))


def _without_instructions(messages: Sequence[pa.ModelMessage]) -> list[pa.ModelMessage]:
    # The recalled context changes every turn; history keeps the conversation, not old prompts.
    return [
        dataclasses.replace(m, instructions=None) if isinstance(m, pa.ModelRequest) else m
        for m in messages
    ]


class Agent:
    """An agent that learns from every turn.

    Example::

        agent = Agent(model="openai:gpt-4.1-mini", db=SqliteDb("agent.db"), learning=True)
        agent.run("I'm Alice, I lead the data platform team.", user_id="alice", session_id="s1")

    Built on pydantic-ai: ``model`` is a ``"provider:model"`` string or any pydantic-ai ``Model``
    (``TestModel`` and ``FunctionModel`` in tests). Each turn recalls what the stores know,
    answers with the stores' tools, saves the turn to the session's history and leaves the
    learning to a background worker — the answer never waits for it.
    """

    def __init__(
        self,
        *,
        model: Model | str,
        db: Db | None = None,
        learning: bool | LearningMachine | None = None,
        instructions: str | None = None,
        tools: Sequence[Callable[..., Any]] = (),
        embedder: Embedder | None = None,
        agent_id: str | None = None,
        history_turns: int = 20,
    ) -> None:
        """Build an agent.

        Args:
            model: The model that answers (and, unless the machine has its own, learns).
            db: Where history and learnings live (``SqliteDb("agent.db")``). Required for learning.
            learning: ``True`` (user profile, background), a ``LearningMachine``, or nothing.
            instructions: Your system instructions.
            tools: Your own tools (plain functions with type hints and docstrings).
            embedder: Embedder for ``learning=True`` (default: the bundled offline MiniLM).
            agent_id: Id of this agent, passed to stores as ``agent_id``.
            history_turns: Turns of the session's history sent with each message.

        """
        if learning is True:
            learning = LearningMachine(user_profile=True, embedder=embedder)
        elif learning is False:
            learning = None
        if learning is not None:
            if not isinstance(learning, LearningMachine):
                raise ConfigurationError(
                    f"learning= takes True or a LearningMachine, not {type(learning).__name__}"
                )
            learning.bind(db=db if learning.db is None else learning.db, model=model)
            db = learning.db
        self.model = model
        self.db = db
        self.machine: LearningMachine | None = learning
        self.instructions = instructions
        self.tools = list(tools)
        self.agent_id = agent_id
        self.history_turns = history_turns
        self._agent: PydanticAgent[None, str] = PydanticAgent(
            model, instructions=instructions, tools=self.tools, name=agent_id
        )

    async def _history(
        self, session_id: str, user_id: str | None
    ) -> tuple[list[pa.ModelMessage], int]:
        if self.db is None:
            return [], 0
        turns = await self.db.arun(
            ListMessages(session_id=session_id, user_id=user_id, limit=self.history_turns)
        )
        history: list[pa.ModelMessage] = []
        for turn in turns:
            history.extend(ModelMessagesTypeAdapter.validate_json(turn.messages_json))
        next_index = turns[-1].turn_index + 1 if turns else 0
        return history, next_index

    async def arun(
        self,
        message: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        **context: Any,
    ) -> RunResult:
        """Answer ``message``: recall, answer with tools, save the turn, learn in the background.

        Extra keyword arguments (``project_id="apollo"``) reach every store as context.
        """
        reserved = sorted(set(context) & _RESERVED_CONTEXT)
        if reserved:
            raise ValidationError(
                f"{', '.join(reserved)} are set by the agent for every turn; do not pass them "
                "as context"
            )
        session_id = session_id or new_id()
        turn_id = new_id()
        history, turn_index = await self._history(session_id, user_id)
        ctx: dict[str, Any] = {
            "user_id": user_id,
            "session_id": session_id,
            "agent_id": self.agent_id,
            "turn_id": turn_id,
            "turn_index": turn_index,
            "now": utcnow(),
            **context,
        }
        learned: LearningContext | None = None
        tools: list[Callable[..., Any]] = []
        if self.machine is not None:
            learned = await self.machine.abuild_context(message=message, **ctx)
            tools = self.machine.get_tools(message=message, **ctx)
        result = await self._agent.run(
            message,
            message_history=history or None,
            instructions=(learned.text or None) if learned is not None else None,
            toolsets=[FunctionToolset([_as_tool(t) for t in tools])] if tools else None,
        )
        new_messages = _without_instructions(result.new_messages())
        answer = result.output
        work: PendingWork | None = None
        if self.db is not None:
            ops: list[Any] = [
                AppendMessage(
                    message=Message(
                        session_id=session_id,
                        user_id=user_id,
                        agent_id=self.agent_id,
                        turn_id=turn_id,
                        turn_index=turn_index,
                        user_message=message,
                        assistant_message=answer,
                        messages_json=ModelMessagesTypeAdapter.dump_json(new_messages).decode(),
                    )
                )
            ]
            if learned is not None and learned.learning_ids:
                ops.append(MarkRecalled(ids=tuple(learned.learning_ids), at=ctx["now"]))
            if self.machine is not None:
                work = self.machine.extraction_work(new_messages, message=message, **ctx)
                if work is not None:
                    ops.append(EnqueueWork(work=work))
                curate = self.machine.curation_work()
                if curate is not None:
                    ops.append(EnqueueWork(work=curate))
            # The turn and the work that learns from it are durable before the answer returns.
            await self.db.abatch(ops)
            if self.machine is not None:
                self.machine.notify()
        return RunResult(
            text=answer,
            turn_id=turn_id,
            session_id=session_id,
            user_id=user_id,
            context=learned,
            tool_calls=_tool_calls(new_messages),
            usage=result.usage,
            learning_work=work,
            messages=new_messages,
        )

    def run(
        self,
        message: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        **context: Any,
    ) -> RunResult:
        """Sync :meth:`arun`. Returns as soon as the answer is ready."""
        return run_sync(self.arun(message, user_id=user_id, session_id=session_id, **context))

    def close(self) -> None:
        """Stop background learning in this process (pending work stays in the db)."""
        if self.machine is not None:
            self.machine.close()

    def wait_idle(self, *, timeout: float | None = 60.0) -> None:
        """Block until background learning has caught up (no-op without learning)."""
        if self.machine is not None:
            self.machine.wait_idle(timeout=timeout)
