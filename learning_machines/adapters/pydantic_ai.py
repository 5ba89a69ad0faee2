"""Learning for any pydantic-ai ``Agent``: one capability.

``LearningCapability(machine)`` added to an agent's ``capabilities`` begins a turn before each
run (recall, the stores' tools bound to the user and session), gives the model what was
recalled through an instructions function and the turn's tools through a toolset, and finishes
the turn after the run with ``result.new_messages()`` — the run's row, recall marks, its
decision-log record and the pending work that learns from it, in one transaction. The answer
never waits for learning.

What the decision log gets from a run: every tool call timed (the stores' tools time
themselves; the agent's own tools are timed here), and a :class:`~learning_machines.RunInfo`
with the model, the run's tokens and requests and how long the answer took.

Who a run is for: ``user_id`` / ``session_id`` given to the capability, else what its
``scope(ctx)`` returns, else ``ctx.deps.user_id`` (attribute or key) and the run's
``conversation_id`` as the session. ``LearningCapability(turn=turn)`` serves one turn you began
yourself (our :class:`~learning_machines.Agent` does that, to load the session's history first).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_ai import RunContext
from pydantic_ai import messages as pa
from pydantic_ai.capabilities import (
    AbstractCapability,
    ValidatedToolArgs,
    WrapToolExecuteHandler,
)
from pydantic_ai.messages import ModelMessagesTypeAdapter, ToolCallPart
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT, ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, FunctionToolset

from .._messages import from_stored_json, to_pydantic_ai_messages
from .._turn_record import RunInfo
from ..db import ListMessages, Message
from ..exceptions import ConfigurationError, UsageError
from ..machine import LearningMachine, Turn
from ._scope import TurnScope, layered, user_id_of

__all__ = [
    "LearningCapability",
    "answer_text",
    "history_messages",
    "load_history",
    "prompt_text",
    "without_instructions",
]

ScopeFunc = Callable[[RunContext[Any]], TurnScope]


def prompt_text(prompt: str | Sequence[Any] | None) -> str | None:
    """The text of a run's user prompt (text parts joined; images and files left out)."""
    if prompt is None or isinstance(prompt, str):
        return prompt
    return "\n".join(
        part if isinstance(part, str) else part.content
        for part in prompt
        if isinstance(part, str | pa.TextContent)
    )


def answer_text(output: object) -> str | None:
    """A run's output as the answer text kept with the turn (structured output as JSON)."""
    if output is None or isinstance(output, str):
        return output
    if isinstance(output, BaseModel):
        return output.model_dump_json()
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        return json.dumps(dataclasses.asdict(output), ensure_ascii=False, default=str)
    return json.dumps(output, ensure_ascii=False, default=str)


def without_instructions(messages: Sequence[pa.ModelMessage]) -> list[pa.ModelMessage]:
    """The messages without the instructions sent with each request.

    The recalled context changes every turn; what is kept is the conversation, not old prompts.
    """
    return [
        dataclasses.replace(m, instructions=None) if isinstance(m, pa.ModelRequest) else m
        for m in messages
    ]


def history_messages(rows: Sequence[Message]) -> list[pa.ModelMessage]:
    """Stored turns as pydantic-ai messages, for ``message_history``.

    Turns recorded through pydantic-ai come back whole (tool calls included); turns recorded
    through another framework keep their user and assistant text.
    """
    history: list[pa.ModelMessage] = []
    for row in rows:
        data = json.loads(row.messages_json or "[]")
        if data and isinstance(data[0], dict) and "parts" in data[0]:
            history.extend(ModelMessagesTypeAdapter.validate_python(data))
        else:
            history.extend(to_pydantic_ai_messages(from_stored_json(row.messages_json)))
    return history


async def load_history(
    machine: LearningMachine, *, session_id: str, user_id: str | None, turns: int = 20
) -> list[pa.ModelMessage]:
    """The session's last ``turns`` turns as pydantic-ai messages (only ``user_id``'s session)."""
    if machine.db is None:
        raise ConfigurationError(
            "this LearningMachine has no db: pass db=... to LearningMachine(...)"
        )
    rows = await machine.db.arun(
        ListMessages(session_id=session_id, user_id=user_id, limit=max(1, turns))
    )
    return history_messages(rows)


@dataclass(init=False)
class LearningCapability(AbstractCapability[AgentDepsT]):
    """Recall before a pydantic-ai run, the stores' tools during it, learning after it.

    Example::

        agent = Agent("openai:gpt-4.1-mini", capabilities=[LearningCapability(machine)])
        await agent.run("I'm Alice.", deps=Deps(user_id="alice"), conversation_id="s1")

    Works at agent level (a fresh turn per run) or per run
    (``agent.run(..., capabilities=[LearningCapability(machine, user_id="alice")])``).
    A run that fails records nothing.
    """

    machine: LearningMachine | None
    """The machine that recalls and learns (``None`` when serving one given turn)."""
    ids: TurnScope
    """Ids given to the capability; they win over ``scope`` and the run's own."""
    scope: ScopeFunc | None
    """``scope(ctx) -> TurnScope``: who a run is for, from its context (deps, metadata …)."""
    instructions_version: str | None
    """The version of the agent's instructions, recorded with each turn in the decision log."""

    def __init__(
        self,
        machine: LearningMachine | None = None,
        /,
        *,
        turn: Turn | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        scope: ScopeFunc | None = None,
        context: Mapping[str, Any] | None = None,
        instructions_version: str | None = None,
    ) -> None:
        """Learn with ``machine`` on every run, or serve one ``turn`` you began.

        Args:
            machine: The learning machine (with its db and stores).
            turn: A turn begun with ``machine.abegin`` for exactly one run, instead of a machine.
            user_id: The user of every run (else ``scope`` or ``ctx.deps.user_id``).
            session_id: The session of every run (else ``scope`` or the run's
                ``conversation_id``).
            agent_id: Passed to stores as ``agent_id`` (else what ``scope`` says).
            scope: ``scope(ctx) -> TurnScope`` for ids found in the run's deps or metadata.
            context: Your own keys for every store (``{"project_id": "apollo"}``).
            instructions_version: The version of the agent's instructions in force, kept
                with each turn's decision-log record.

        """
        if (machine is None) == (turn is None):
            raise ConfigurationError(
                "LearningCapability takes a LearningMachine (a turn per run) or turn=... (one "
                "turn you began), not both or neither"
            )
        if machine is not None and not isinstance(machine, LearningMachine):
            raise ConfigurationError(
                f"LearningCapability takes a LearningMachine, not {type(machine).__name__}"
            )
        self.machine = machine
        self.ids = TurnScope(
            user_id=user_id, session_id=session_id, agent_id=agent_id, context=context or {}
        )
        self.scope = scope
        self.instructions_version = instructions_version
        self._turn = turn
        self._toolset: FunctionToolset[Any] | None = None
        self._started: float | None = None

    @classmethod
    def get_serialization_name(cls) -> str | None:
        """Not buildable from an agent spec (it holds a machine)."""
        return None

    @property
    def turn(self) -> Turn:
        """The run's turn (raises before the run has begun one)."""
        if self._turn is None:
            raise UsageError(
                "no turn yet: the capability begins one when an agent run starts (use it in "
                "Agent(capabilities=[...]) or agent.run(..., capabilities=[...]))"
            )
        return self._turn

    async def for_run(self, ctx: RunContext[AgentDepsT]) -> AbstractCapability[AgentDepsT]:
        """A copy of its own for each run, so concurrent runs never share a turn."""
        if self.machine is None:
            return self  # serves exactly the turn it was given
        run = copy.copy(self)
        run._turn = None
        run._toolset = None
        run._started = None
        return run

    def _scope(self, ctx: RunContext[Any]) -> TurnScope:
        found = self.scope(ctx) if self.scope is not None else None
        own = TurnScope(user_id=user_id_of(ctx.deps), session_id=ctx.conversation_id)
        return layered(self.ids, found, own)

    async def before_run(self, ctx: RunContext[AgentDepsT]) -> None:
        """Begin the run's turn: check the ids, recall, bind the tools."""
        if self.machine is None:
            if self.turn.finished:
                raise UsageError(
                    f"turn {self.turn.context.turn_id} is already finished; a "
                    "LearningCapability(turn=...) serves one run: give each run its own"
                )
        else:
            message = prompt_text(ctx.prompt)
            self._turn = await self.machine.abegin(
                message, message_required=message is not None, **self._scope(ctx).begin_kwargs()
            )
        self._started = time.perf_counter()  # the answer's latency leaves recall out

    def get_instructions(self) -> Callable[[RunContext[AgentDepsT]], str]:
        """What the stores recalled for this turn, as an instructions function."""
        return self._instructions

    def _instructions(self, ctx: RunContext[AgentDepsT]) -> str:
        return self.turn.learned.text

    def get_toolset(self) -> Callable[[RunContext[AgentDepsT]], AbstractToolset[Any] | None]:
        """The turn's tools (bound to its user and session), as a toolset built per run."""
        return self._tools

    def _tools(self, ctx: RunContext[AgentDepsT]) -> AbstractToolset[Any] | None:
        turn = self.turn
        if not turn.tools:
            return None
        if self._toolset is None:  # one toolset per turn: the run keeps it across steps
            self._toolset = FunctionToolset(turn.tools.pydantic_ai_tools())
        return self._toolset

    async def wrap_tool_execute(
        self,
        ctx: RunContext[AgentDepsT],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: ValidatedToolArgs,
        handler: WrapToolExecuteHandler,
    ) -> Any:
        """Time each call of the agent's own tools into the turn's tool log (decision log)."""
        turn = self.turn
        if tool_def.kind != "function" or call.tool_name in turn.tools.names:
            return await handler(args)  # the stores' tools time themselves
        # Logged with the arguments the model sent, as the messages hold them, so the
        # decision log keeps the call once.
        return await turn.tools.log.timed(
            call.tool_name, call.args_as_dict(), lambda: handler(args), source="app"
        )

    def _run_info(self, ctx: RunContext[AgentDepsT]) -> RunInfo:
        usage = ctx.usage
        started = self._started
        return RunInfo(
            model=ctx.model.model_id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            requests=usage.requests,
            latency_ms=None if started is None else (time.perf_counter() - started) * 1000,
            instructions_version=self.instructions_version,
        )

    async def after_run(
        self, ctx: RunContext[AgentDepsT], *, result: AgentRunResult[Any]
    ) -> AgentRunResult[Any]:
        """Finish the turn: its messages, its run and the work that learns from them."""
        await self.turn.afinish(
            without_instructions(result.new_messages()),
            answer=answer_text(result.output),
            run=self._run_info(ctx),
        )
        return result
