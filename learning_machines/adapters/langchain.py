"""Learning for LangChain 1.x agents: one middleware for ``create_agent``.

``LearningMiddleware(machine)`` begins a turn before the agent runs (recall, the stores' tools
bound to the user and session), adds what was recalled to the system prompt and the turn's
tools to every model call, runs those tools itself when the model calls them, and finishes the
turn after the agent with the messages of this invocation — its row, recall marks, its
decision-log record and the pending work that learns from it, in one transaction. The answer
never waits for learning.

What the decision log gets from an invocation: the stores' tool calls timed, the agent's own
tool calls from the messages (name, arguments, result; no duration), and a
:class:`~learning_machines.RunInfo` with the model (from the answers' ``response_metadata``),
the tokens the answers report (``usage_metadata``), the model calls and how long the agent ran.

Who an invocation is for: ``user_id`` / ``session_id`` given to the middleware, else what its
``scope(runtime)`` returns, else ``runtime.context.user_id`` (attribute or key) and the
LangGraph ``thread_id`` as the session. The turn's id rides in the agent's state (a private
field), so a checkpointed thread keeps it across steps; the turn itself stays in this process.

Also registers a message converter, so LangChain messages can be given to ``machine.process``
and ``turn.finish`` directly.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, NotRequired

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest
from langchain.agents.middleware.types import ModelResponse, PrivateStateAttr
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.runtime import Runtime
from langgraph.types import Command

from .._messages import ChatMessage, MessageConverter, ToolCall, register_converter
from .._sync import run_sync
from .._turn_record import RunInfo
from ..exceptions import ConfigurationError, ValidationError
from ..machine import LearningMachine, Turn
from ._scope import TurnScope, layered, user_id_of

__all__ = ["LearningMiddleware", "LearningState", "chat_messages"]

ScopeFunc = Callable[[Runtime[Any]], TurnScope]


# --- messages ------------------------------------------------------------------------------------


def _one(message: BaseMessage) -> list[ChatMessage]:
    if isinstance(message, HumanMessage):
        return [ChatMessage(role="user", content=message.text)]
    if isinstance(message, AIMessage):
        calls = tuple(
            ToolCall(name=call["name"], args=dict(call["args"]), call_id=call.get("id"))
            for call in message.tool_calls
        )
        if not message.text and not calls:
            return []
        only = calls[0].name if len(calls) == 1 and not message.text else None
        return [ChatMessage(role="assistant", content=message.text, name=only, tool_calls=calls)]
    if isinstance(message, ToolMessage):
        return [
            ChatMessage(
                role="tool",
                content=message.text,
                name=message.name,
                tool_call_id=message.tool_call_id,
            )
        ]
    if isinstance(message, SystemMessage):
        return [ChatMessage(role="system", content=message.text)]
    return []  # function messages, removals: nothing a store learns from


def chat_messages(message: object) -> list[ChatMessage]:
    """One LangChain message as chat messages (tool calls kept whole, system prompts kept)."""
    if not isinstance(message, BaseMessage):
        raise ValidationError(f"not a LangChain message: {type(message).__name__}")
    return _one(message)


register_converter(
    MessageConverter(
        name="langchain",
        accepts=lambda item: isinstance(item, BaseMessage),
        convert=chat_messages,
    )
)


# --- the turns of running invocations --------------------------------------------------------


class LearningState(AgentState[Any]):
    """The agent state with the running turn's id (private: not input, not output)."""

    learning_turn_id: NotRequired[Annotated[str | None, PrivateStateAttr]]
    """The id of the turn this invocation began."""
    learning_turn_start: NotRequired[Annotated[str | None, PrivateStateAttr]]
    """The id of the turn's first message (its user message) in ``messages``."""


@dataclass
class _Open:
    turn: Turn
    tools: list[BaseTool] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)  # after recall


class _OpenTurns:
    """Turns of invocations still running in this process, by turn id (bounded)."""

    def __init__(self, *, size: int = 4096) -> None:
        self._size = size
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, turn: Turn) -> None:
        with self._lock:
            self._open[turn.context.turn_id] = _Open(turn=turn, tools=_langchain_tools(turn))
            while len(self._open) > self._size:
                self._open.popitem(last=False)

    def get(self, turn_id: object) -> _Open | None:
        with self._lock:
            return self._open.get(turn_id) if isinstance(turn_id, str) else None

    def take(self, turn_id: object) -> _Open | None:
        with self._lock:
            return self._open.pop(turn_id, None) if isinstance(turn_id, str) else None


def _langchain_tools(turn: Turn) -> list[BaseTool]:
    """The turn's tools as LangChain tools, for their schemas (the middleware runs the calls)."""
    pairs = zip(turn.tools, turn.tools.sync_callables(), turn.tools.async_callables(), strict=True)
    return [
        StructuredTool(
            name=spec.name,
            description=spec.description,
            args_schema=spec.parameters_schema,
            func=func,
            coroutine=coro,
        )
        for spec, func, coro in pairs
    ]


def _last_user_message(messages: Sequence[AnyMessage]) -> tuple[int, str | None]:
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return index, messages[index].text
    return len(messages), None


def _with_context(system: SystemMessage | None, text: str) -> SystemMessage | None:
    if not text:
        return system
    if system is None:
        return SystemMessage(content=text)
    if isinstance(system.content, str):
        return SystemMessage(content=f"{system.content}\n\n{text}" if system.content else text)
    return SystemMessage(content=[*system.content, {"type": "text", "text": text}])


def _model_of(message: AIMessage) -> str | None:
    meta = message.response_metadata
    name, provider = meta.get("model_name") or meta.get("model"), meta.get("model_provider")
    if isinstance(name, str) and isinstance(provider, str) and provider:
        return name if name.startswith(f"{provider}:") else f"{provider}:{name}"
    return name if isinstance(name, str) else None


def _run_info(messages: Sequence[AnyMessage], started: float | None) -> RunInfo:
    """What the invocation's answers say about the model and its tokens."""
    answers = [m for m in messages if isinstance(m, AIMessage)]
    usages = [m.usage_metadata for m in answers if m.usage_metadata is not None]
    models = [name for name in map(_model_of, answers) if name]
    return RunInfo(
        model=models[-1] if models else None,
        input_tokens=sum(u["input_tokens"] for u in usages) if usages else None,
        output_tokens=sum(u["output_tokens"] for u in usages) if usages else None,
        requests=len(answers),
        latency_ms=None if started is None else (time.perf_counter() - started) * 1000,
    )


def _tool_reply(request: ToolCallRequest, text: str, *, error: bool = False) -> ToolMessage:
    call = request.tool_call
    return ToolMessage(
        content=text,
        tool_call_id=call["id"] or "",
        name=call["name"],
        status="error" if error else "success",
    )


class LearningMiddleware(AgentMiddleware[LearningState, Any]):
    """Recall into the system prompt, the stores' tools, learning after the agent.

    Example::

        agent = create_agent(model, tools=[...], middleware=[LearningMiddleware(machine)])
        agent.invoke({"messages": [{"role": "user", "content": "I'm Alice."}]},
                     {"configurable": {"thread_id": "s1"}}, context={"user_id": "alice"})

    Sync (``invoke``) and async (``ainvoke``) agents both work. An invocation that fails
    records nothing.
    """

    state_schema = LearningState

    def __init__(
        self,
        machine: LearningMachine,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        scope: ScopeFunc | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Learn with ``machine`` on every invocation of the agent.

        Args:
            machine: The learning machine (with its db and stores).
            user_id: The user of every invocation (else ``scope`` or ``runtime.context``).
            session_id: The session of every invocation (else ``scope`` or the thread id).
            agent_id: Passed to stores as ``agent_id``.
            scope: ``scope(runtime) -> TurnScope`` for ids found in the run's context.
            context: Your own keys for every store (``{"project_id": "apollo"}``).

        """
        super().__init__()
        if not isinstance(machine, LearningMachine):
            raise ConfigurationError(
                f"LearningMiddleware takes a LearningMachine, not {type(machine).__name__}"
            )
        self.machine = machine
        self.ids = TurnScope(
            user_id=user_id, session_id=session_id, agent_id=agent_id, context=context or {}
        )
        self.scope = scope
        self.tools = []
        self._open = _OpenTurns()

    def _scope(self, runtime: Runtime[Any]) -> TurnScope:
        found = self.scope(runtime) if self.scope is not None else None
        info = runtime.execution_info
        own = TurnScope(
            user_id=user_id_of(runtime.context),
            session_id=info.thread_id if info is not None else None,
        )
        return layered(self.ids, found, own)

    # --- before the agent: begin the turn ------------------------------------------------------

    async def abefore_agent(
        self, state: LearningState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Begin the invocation's turn with its last user message: recall, bind the tools."""
        messages = state["messages"]
        index, text = _last_user_message(messages)
        turn = await self.machine.abegin(
            text, message_required=text is not None, **self._scope(runtime).begin_kwargs()
        )
        self._open.put(turn)
        start = messages[index].id if index < len(messages) else None
        return {"learning_turn_id": turn.context.turn_id, "learning_turn_start": start}

    def before_agent(self, state: LearningState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Sync :meth:`abefore_agent`."""
        return run_sync(self.abefore_agent(state, runtime))

    # --- each model call: context and tools ---------------------------------------------------

    def _request(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        found = self._open.get(request.state.get("learning_turn_id"))
        if found is None:
            return request
        return request.override(
            system_message=_with_context(request.system_message, found.turn.learned.text),
            tools=[*request.tools, *found.tools],
        )

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        """Add the recalled context to the system prompt and the turn's tools to the request."""
        return await handler(self._request(request))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        """Sync :meth:`awrap_model_call`."""
        return handler(self._request(request))

    # --- each tool call: the turn's tools run here --------------------------------------------

    def _ours(self, request: ToolCallRequest) -> Turn | None:
        found = self._open.get(request.state.get("learning_turn_id"))
        if found is None or request.tool_call["name"] not in found.turn.tools.names:
            return None
        return found.turn

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        """Run a call of one of the turn's tools for its turn; pass others on."""
        turn = self._ours(request)
        if turn is None:
            return await handler(request)
        try:
            text = await turn.tools.acall(request.tool_call["name"], request.tool_call["args"])
        except ValidationError as exc:  # the model sent bad arguments: it reads why and retries
            return _tool_reply(request, f"error: {exc}", error=True)
        return _tool_reply(request, text)

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        """Sync :meth:`awrap_tool_call`."""
        turn = self._ours(request)
        if turn is None:
            return handler(request)
        try:
            text = turn.tools.call(request.tool_call["name"], request.tool_call["args"])
        except ValidationError as exc:
            return _tool_reply(request, f"error: {exc}", error=True)
        return _tool_reply(request, text)

    # --- after the agent: finish the turn -----------------------------------------------------

    async def aafter_agent(
        self, state: LearningState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Finish the turn with this invocation's messages; learning happens in the background."""
        messages = state["messages"]
        start = state.get("learning_turn_start")
        ids = [m.id for m in messages]
        index = ids.index(start) if start in ids else _last_user_message(messages)[0]
        found = self._open.take(state.get("learning_turn_id"))
        run = _run_info(messages[index:], None if found is None else found.started)
        if found is None:  # begun in another process (a resumed thread): record the turn
            text = _last_user_message(messages)[1]
            turn = await self.machine.abegin(
                text,
                recall=False,
                message_required=False,
                **self._scope(runtime).begin_kwargs(),
            )
        else:
            turn = found.turn
        await turn.afinish(messages[index:], run=run)
        return {"learning_turn_id": None, "learning_turn_start": None}

    def after_agent(self, state: LearningState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Sync :meth:`aafter_agent`."""
        return run_sync(self.aafter_agent(state, runtime))
