"""Learning for the OpenAI Agents SDK: a ``Session``, the turn's tools, dynamic instructions.

``LearningSession(machine, session_id=..., user_id=...)`` is a Session for ``Runner.run``
backed by the session's turns in our db, and it drives the typed turn:

- when the run's input is added to the session, a turn begins with it (recall, tools bound
  to the user and session);
- ``session.instructions(base)`` is a dynamic-instructions function that adds what was
  recalled; ``await session.atools()`` are ``FunctionTool``s that run the stores' tools for
  the turn in progress (``await session.aagent(agent)`` clones an agent with both);
- when the run's answer is added (an assistant message with every tool call answered), the
  turn is finished: its row, recall marks, its decision-log record and the pending work that
  learns from it, in one transaction. A run that ends on a tool result is finished by the next
  input, or by ``await session.afinish_turn()``.

What the decision log gets from a run: the stores' tool calls timed, the agent's own tool calls
from the items (name, arguments, output; no duration), and — when the run used
``session.instructions`` (or ``session.aagent``) — a :class:`~learning_machines.RunInfo` with
the agent's model, the run's tokens and model requests, and how long the run took.

History (``get_items``) is the session's finished turns, as Responses items, then the items of
the turn in progress. Finished turns are kept — they were learned from, with provenance — so
``pop_item`` only takes back items of the turn in progress and ``clear_session`` refuses.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents import Agent, FunctionTool, RunContextWrapper
from agents.items import TResponseInputItem
from agents.memory import SessionSettings
from agents.models import get_default_model
from agents.tool_context import ToolContext

from .._ids import check_id, check_optional_id
from .._messages import from_stored_json
from .._sync import sync_twin
from .._turn_record import RunInfo
from ..db import ListMessages, Message, PendingWork
from ..exceptions import ConfigurationError, UsageError, ValidationError
from ..machine import LearningMachine, Turn
from ..stores import ToolSpec
from ._responses import chat_messages, parts_text, to_items
from ._scope import TurnScope

__all__ = ["LearningSession"]

Instructions = str | Callable[[RunContextWrapper[Any], Agent[Any]], Any] | None


def _data(item: Any) -> Mapping[str, Any]:
    return item if isinstance(item, Mapping) else item.model_dump(exclude_none=True)


@dataclass
class _RunSeen:
    """The run as the instructions function saw it: its context (usage) and latest agent."""

    ctx: RunContextWrapper[Any]
    agent: Agent[Any]
    started: float

    def info(self) -> RunInfo:
        model = self.agent.model
        if model is None:
            name: str | None = get_default_model()
        elif isinstance(model, str):
            name = model
        else:  # a Model object: the name it calls the API with, else its kind
            found = getattr(model, "model", None)
            name = found if isinstance(found, str) else type(model).__name__
        usage = self.ctx.usage
        return RunInfo(
            model=name,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            requests=usage.requests,
            latency_ms=(time.perf_counter() - self.started) * 1000,
        )


def _is_user(item: Any) -> bool:
    data = _data(item)
    return data.get("type", "message") == "message" and data.get("role") == "user"


def _answered(items: Sequence[Any]) -> bool:
    """Whether a turn's items end with the answer: an assistant message, no call left open."""
    if not items:
        return False
    last = _data(items[-1])
    if last.get("type", "message") != "message" or last.get("role") != "assistant":
        return False
    calls = {d.get("call_id") for d in map(_data, items) if d.get("type") == "function_call"}
    outputs = {
        d.get("call_id") for d in map(_data, items) if d.get("type") == "function_call_output"
    }
    return calls <= outputs


class LearningSession:
    """A Session of the OpenAI Agents SDK that learns from every run.

    Example::

        session = LearningSession(machine, session_id="s1", user_id="alice")
        agent = await session.aagent(Agent(name="assistant", instructions="You help."))
        result = await Runner.run(agent, "I'm Alice.", session=session)

    One run at a time per session object, as with the SDK's own sessions.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        machine: LearningMachine,
        *,
        session_id: str,
        user_id: str | None,
        agent_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        history_turns: int | None = None,
    ) -> None:
        """Open the session ``session_id`` of ``user_id``.

        Args:
            machine: The learning machine (with its db and stores).
            session_id: The conversation (our session; its turns are the history).
            user_id: Whose conversation it is (``None``: no user, shared stores only).
            agent_id: Passed to stores as ``agent_id``.
            context: Your own keys for every store (``{"project_id": "apollo"}``).
            history_turns: At most this many finished turns in the history (``None``: all).

        """
        if not isinstance(machine, LearningMachine):
            raise ConfigurationError(
                f"LearningSession takes a LearningMachine, not {type(machine).__name__}"
            )
        self.machine = machine
        self.session_id = check_id(session_id, name="session_id")
        check_optional_id(user_id, name="user_id")
        self.scope = TurnScope(
            user_id=user_id, session_id=self.session_id, agent_id=agent_id, context=context or {}
        )
        self.history_turns = history_turns
        self._items: list[Any] = []
        self._turn: Turn | None = None
        self._tools: list[FunctionTool] | None = None
        self._starting = False
        self._run: _RunSeen | None = None
        self.last_work: PendingWork | None = None
        """The pending work of the last finished turn (``None`` if nothing learns from it)."""

    @property
    def turn(self) -> Turn | None:
        """The turn in progress (``None`` between runs)."""
        return self._turn

    # --- Session -------------------------------------------------------------------------------

    async def _turns(self, limit: int | None) -> list[Message]:
        """The session's last ``limit`` finished turns (``None``: all), this user's only."""
        db = self.machine.db
        if db is None:
            raise ConfigurationError(
                "this LearningMachine has no db: pass db=... to LearningMachine(...)"
            )
        return await db.arun(
            ListMessages(session_id=self.session_id, user_id=self.scope.user_id, limit=limit)
        )

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The session's history as Responses items, oldest first (the last ``limit``)."""
        turns = self.history_turns
        if limit is not None and limit > 0:  # every turn holds at least one item
            turns = limit if turns is None else min(turns, limit)
        rows = await self._turns(turns)
        items: list[Any] = []
        for row in rows:
            items.extend(to_items(from_stored_json(row.messages_json)))
        items.extend(self._items)
        self._starting = True  # a run reads its history first; its input follows
        return items[-limit:] if limit is not None and limit > 0 else items

    async def _begin(self, items: Sequence[Any]) -> Turn:
        users = [i for i in items if _is_user(i)]
        message = parts_text(_data(users[-1]).get("content")) if users else None
        self._turn = await self.machine.abegin(
            message, message_required=False, **self.scope.begin_kwargs()
        )
        self._starting = False
        return self._turn

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Add a run's items; its input begins a turn and its answer finishes it."""
        for item in items:
            if _is_user(item) and any(not _is_user(i) for i in self._items):
                await self.afinish_turn()  # a new input after an answered or unfinished turn
            self._items.append(item)
        if self._turn is None and self._items:
            try:
                await self._begin(self._items)
            except BaseException:
                self._items.clear()  # a refused input (a bad message) is not kept
                raise
        if _answered(self._items):
            await self.afinish_turn()

    async def pop_item(self) -> TResponseInputItem | None:
        """Take back the last item of the turn in progress.

        Items of finished turns are kept (they were learned from): popping one raises
        :class:`UsageError`.
        """
        if not self._items:
            if await self._turns(1):
                raise UsageError(
                    "the last turn of this session is finished and recorded (and learned "
                    "from); it cannot be popped. Start a new session_id to start over."
                )
            return None
        item: TResponseInputItem = self._items.pop()
        if not self._items:
            self._turn, self._run = None, None  # nothing left of the turn: never recorded
        return item

    async def clear_session(self) -> None:
        """Drop the turn in progress; refused once the session has finished turns.

        Finished turns are kept: start a new ``session_id`` instead. To delete a user's data,
        use ``machine.service.forget(user_id)``.
        """
        self._items.clear()
        self._turn, self._run = None, None
        if not await self._turns(1):
            return
        raise UsageError(
            "a Learning Machines session keeps its finished turns (they were learned from, "
            "with provenance); start a new session_id to start over, or delete a user's data "
            "with machine.service.forget(user_id)"
        )

    # --- the turn --------------------------------------------------------------------------------

    async def afinish_turn(self) -> PendingWork | None:
        """Record the turn in progress now (a run that ended on a tool result)."""
        items, turn, seen = self._items, self._turn, self._run
        self._items, self._turn, self._run = [], None, None
        if not items:
            return None
        if turn is None:
            turn = await self.machine.abegin(
                None, recall=False, message_required=False, **self.scope.begin_kwargs()
            )
        self.last_work = await turn.afinish(
            [m for i in items for m in chat_messages(i)],
            run=None if seen is None else seen.info(),
        )
        return self.last_work

    finish_turn = sync_twin(afinish_turn)

    async def _current(self, ctx: RunContextWrapper[Any] | None = None) -> Turn:
        if self._turn is not None:
            return self._turn
        if ctx is not None and self._starting:
            # A streamed run asks for instructions before it adds its input to the session:
            # the input is already in the run context.
            return await self._begin(ctx.turn_input)
        raise UsageError(
            "no turn in progress: pass session=this LearningSession to Runner.run (the "
            "turn begins when the run's input is added to the session)"
        )

    def instructions(self, base: Instructions = None) -> Callable[..., Awaitable[str]]:
        """A dynamic-instructions function: ``base`` then what was recalled for the turn.

        ``base`` is the agent's own instructions (a string or a function of the run context
        and the agent).
        """

        async def instructions(ctx: RunContextWrapper[Any], agent: Agent[Any]) -> str:
            text = base(ctx, agent) if callable(base) else base
            if inspect.isawaitable(text):
                text = await text
            learned = (await self._current(ctx)).learned.text
            if self._run is None or self._run.ctx is not ctx:  # the first call of a run
                self._run = _RunSeen(ctx=ctx, agent=agent, started=time.perf_counter())
            else:
                self._run.agent = agent  # a handoff: the agent that answers last
            return "\n\n".join(part for part in (text, learned) if part)

        return instructions

    async def atools(self) -> list[FunctionTool]:
        """The stores' tools as ``FunctionTool``s; each call runs for the turn in progress."""
        if self._tools is None:
            # Names and schemas come from a turn of this user and session that is never
            # recorded; each call runs on the turn the run's input began.
            specimen = await self.machine.abegin(
                None, recall=False, message_required=False, **self.scope.begin_kwargs()
            )
            self._tools = [self._function_tool(spec) for spec in specimen.tools]
        return list(self._tools)

    tools = sync_twin(atools)

    def _function_tool(self, spec: ToolSpec[Any]) -> FunctionTool:
        async def invoke(ctx: ToolContext[Any], arguments: str) -> str:
            try:
                args = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                return f"error: the arguments are not JSON ({exc}); send a JSON object"
            if not isinstance(args, dict):
                return "error: send the arguments as a JSON object"
            try:
                return await (await self._current()).tools.acall(spec.name, args)
            except ValidationError as exc:  # the model reads why and retries
                return f"error: {exc}"

        return FunctionTool(
            name=spec.name,
            description=spec.description,
            params_json_schema=spec.parameters_schema,
            on_invoke_tool=invoke,
            strict_json_schema=False,
        )

    async def aagent(self, agent: Agent[Any]) -> Agent[Any]:
        """A copy of ``agent`` with the recalled context in its instructions and the tools."""
        return agent.clone(
            instructions=self.instructions(agent.instructions),
            tools=[*agent.tools, *await self.atools()],
        )

    agent = sync_twin(aagent)
