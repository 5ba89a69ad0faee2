"""``Agent``: a pydantic-ai agent that recalls before it answers and learns after.

It is one client of the typed turn: ``machine.abegin`` → answer with the turn's context and
tools → ``turn.afinish``, through the pydantic-ai ``LearningCapability`` that any pydantic-ai
agent can use (:mod:`learning_machines.adapters.pydantic_ai`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import messages as pa
from pydantic_ai.models import Model
from pydantic_ai.toolsets import FunctionToolset
from pydantic_ai.usage import RunUsage

from ._ids import check_id, check_optional_id
from ._messages import ToolCall, to_chat_messages
from ._sync import sync_twin
from ._turn_context import check_message
from .adapters.pydantic_ai import LearningCapability, history_messages, without_instructions
from .db import Db, PendingWork, new_id
from .embedders import Embedder
from .exceptions import ConfigurationError
from .feedback import FeedbackSignal
from .improvement import ActiveInstructions, tools_with_notes
from .machine import LearningContext, LearningMachine

__all__ = ["Agent", "RunResult", "ToolCall"]


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
    """Tools that ran, in order, with their arguments, call ids and results."""
    usage: RunUsage = field(default_factory=RunUsage)
    """Tokens of the answer (learning's own usage is on ``machine.usage``)."""
    learning_work: PendingWork | None = None
    """The pending work that will learn from this turn (``None`` if nothing learns from it)."""
    messages: list[pa.ModelMessage] = field(default_factory=list)
    """The turn's pydantic-ai messages."""
    machine: LearningMachine | None = field(default=None, repr=False, compare=False)
    """The machine that recorded the turn (``None`` without learning)."""

    @property
    def recalled(self) -> dict[str, Any]:
        """Each store's recalled data, by store name."""
        return {} if self.context is None else self.context.recalled

    async def afeedback(
        self, score: float, *, comment: str | None = None, by: str | None = None
    ) -> FeedbackSignal:
        """Rate this turn: ``score`` from -1 (bad) to 1 (good); thumbs are ``-1`` and ``+1``.

        Needs a machine built with ``feedback=True``; see :meth:`LearningMachine.afeedback`.
        """
        if self.machine is None:
            raise ConfigurationError(
                "this turn ran without learning: give the Agent learning=LearningMachine("
                "feedback=True) to rate its turns"
            )
        return await self.machine.afeedback(
            turn_id=self.turn_id, score=score, comment=comment, by=by, user_id=self.user_id
        )

    feedback = sync_twin(afeedback)

    def __str__(self) -> str:
        return self.text


def _tool_calls(messages: Sequence[pa.ModelMessage]) -> list[ToolCall]:
    """Every tool call of the turn, with its result."""
    return [call for m in to_chat_messages(messages) for call in m.tool_calls]


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
        if agent_id is not None:
            check_id(agent_id, name="agent_id")
        self.model = model
        self.db = db
        self.machine: LearningMachine | None = learning
        # Turns are driven by the learning machine or, with a db but no learning, by a machine
        # without stores that only keeps each session's history.
        self._turns: LearningMachine | None = learning
        if learning is None and db is not None:
            self._turns = LearningMachine(db=db, embedder=embedder, background=False)
        self.instructions = instructions
        self.tools = list(tools)
        self.agent_id = agent_id
        self.history_turns = history_turns
        # The app's tools are given per run (a turn may swap them); the LearningCapability
        # times each call into the turn's tool log.
        self._app_tools = FunctionToolset(self.tools)
        self._registered = False
        self._agent: PydanticAgent[None, str] = PydanticAgent(
            model, instructions=instructions, name=agent_id
        )

    async def arun(
        self,
        /,
        message: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        **context: Any,
    ) -> RunResult:
        """Answer ``message``: recall, answer with tools, save the turn, learn in the background.

        Ids and the message are checked before the model is called. Without ``session_id``
        every call starts a new session (pass one to keep a conversation). Extra keyword
        arguments (``project_id="apollo"``) reach every store as context.
        """
        if self._turns is None:  # no db: nothing to recall or keep
            check_message(message)
            check_optional_id(user_id, name="user_id")
            session = check_id(session_id or new_id(), name="session_id")
            plain = await self._agent.run(message, toolsets=[self._app_tools])
            return RunResult(
                text=plain.output,
                turn_id=new_id(),
                session_id=session,
                user_id=user_id,
                tool_calls=_tool_calls(plain.new_messages()),
                usage=plain.usage,
                messages=plain.new_messages(),
            )
        turn = await self._turns.abegin(
            message,
            user_id=user_id,
            session_id=session_id,
            agent_id=self.agent_id,
            history_turns=self.history_turns,
            **context,
        )
        # Self-improvement: the approved rules in force now (read on every turn, no restart).
        active = await self._active(context.get("team_id"))
        app_tools = self._app_tools
        if active is not None and active.tool_notes:
            app_tools = FunctionToolset(tools_with_notes(self.tools, active.tool_notes))
        # The instructions of a turn: the agent's own (given to the pydantic-ai agent once, in
        # __init__), the approved rules (this run's), then what the turn recalled (the
        # capability's instructions function). The capability also gives the model the turn's
        # tools, times the app's tools, and finishes the turn after the run with its RunInfo
        # (model, tokens, latency, instructions version) for the decision log; any pydantic-ai
        # agent can use it the same way.
        result = await self._agent.run(
            message,
            message_history=history_messages(turn.history) or None,
            instructions=(active.rules_text or None) if active is not None else None,
            toolsets=[app_tools],
            capabilities=[
                LearningCapability(
                    turn=turn, instructions_version=None if active is None else active.version
                )
            ],
        )
        new_messages = without_instructions(result.new_messages())
        return RunResult(
            text=result.output,
            turn_id=turn.context.turn_id,
            session_id=turn.context.session_id,
            user_id=turn.context.user_id,
            context=turn.learned if self.machine is not None else None,
            tool_calls=_tool_calls(new_messages),
            usage=result.usage,
            learning_work=turn.learning_work,
            messages=new_messages,
            machine=self.machine,
        )

    run = sync_twin(arun)

    async def _active(self, team_id: Any) -> ActiveInstructions | None:
        """The active instructions when the machine improves itself (registers this agent once)."""
        machine = self.machine
        if machine is None or machine.options.improvement is None:
            return None
        book = machine.improvements
        if not self._registered:
            await book.aregister(
                agent_id=self.agent_id,
                instructions=self.instructions,
                tools=self.tools,
                model=self.model,
            )
            self._registered = True
        return await book.ainstructions(
            agent_id=self.agent_id, team_id=team_id, base=self.instructions or ""
        )

    def close(self) -> None:
        """Stop background learning in this process (pending work stays in the db)."""
        if self.machine is not None:
            self.machine.close()

    def wait_idle(self, *, timeout: float | None = 60.0, raise_on_failure: bool = True) -> None:
        """Block until background learning has caught up (no-op without learning).

        Raises :class:`~learning_machines.LearningFailedError` when learning gave up on a turn.
        """
        if self.machine is not None:
            self.machine.wait_idle(timeout=timeout, raise_on_failure=raise_on_failure)
