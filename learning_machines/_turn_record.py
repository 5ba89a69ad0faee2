"""What a finished turn did, as typed data: its tool calls (timed), what it recalled, its run.

:class:`ToolLog` times every tool call made through a turn — the stores' tools (through
``BoundTools``) and, when our ``Agent`` drives the turn, the app's own tools — in one place.
:class:`RunInfo` is what only the agent knows (the model, its tokens, how long the answer took,
which instructions version it ran with); it is passed to ``turn.afinish(..., run=...)``.
:class:`TurnRecord` is the whole finished turn that stores recording turns (the decision log)
receive, built by the turn recorder in the transaction that writes the turn.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ._messages import ChatMessage
from ._turn_context import TurnContext

__all__ = ["RunInfo", "ToolLog", "ToolRun", "TurnRecord", "merge_tool_runs"]

T = TypeVar("T")

#: Characters of a tool's result or error a turn keeps in memory (the decision log bounds more).
MAX_LOGGED_CHARS = 20_000

ToolSource = Literal["store", "app"]


@dataclass(frozen=True, kw_only=True)
class ToolRun:
    """One tool call of a turn: what was asked, what came back (or failed), how long it took."""

    name: str
    """The tool's name."""
    args: Mapping[str, Any] = field(default_factory=dict)
    """The arguments it was called with."""
    result: str | None = None
    """What it returned, as text (``None`` when it failed or is unknown)."""
    error: str | None = None
    """``ExceptionType: message`` when it raised (the model then usually retries)."""
    duration_ms: float | None = None
    """Wall time of the call; ``None`` for calls known only from the messages."""
    source: ToolSource = "app"
    """``store``: a learning store's tool (memory); ``app``: one of the app's own tools."""


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """What only the agent knows about a turn; pass it to ``turn.afinish(..., run=...)``."""

    model: str | None = None
    """The model that answered (``"openai:gpt-4.1-mini"``)."""
    input_tokens: int | None = None
    """Input tokens of the answer (all requests of the turn)."""
    output_tokens: int | None = None
    """Output tokens of the answer."""
    requests: int | None = None
    """Model requests the answer took (tool round trips included)."""
    latency_ms: float | None = None
    """How long the answer took (the model and its tool calls)."""
    instructions_version: str | None = None
    """The version of the agent's instructions in force (set once instructions are versioned)."""


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_LOGGED_CHARS]


class ToolLog:
    """Every tool call of one turn, timed; both the stores' tools and the app's go through it."""

    def __init__(self) -> None:
        self._runs: list[ToolRun] = []
        self._lock = threading.Lock()

    @property
    def runs(self) -> list[ToolRun]:
        """The calls so far, in the order they finished."""
        with self._lock:
            return list(self._runs)

    async def timed(
        self,
        name: str,
        args: Mapping[str, Any],
        call: Callable[[], Awaitable[T]],
        *,
        source: ToolSource,
    ) -> T:
        """Run ``call`` and log it as a call of tool ``name``; errors are logged and re-raised."""
        start = time.perf_counter()
        try:
            result = await call()
        except BaseException as exc:
            self._add(
                ToolRun(
                    name=name,
                    args=dict(args),
                    error=_text(f"{type(exc).__name__}: {exc}"),
                    duration_ms=(time.perf_counter() - start) * 1000,
                    source=source,
                )
            )
            raise
        self._add(
            ToolRun(
                name=name,
                args=dict(args),
                result=_text(result),
                duration_ms=(time.perf_counter() - start) * 1000,
                source=source,
            )
        )
        return result

    def _add(self, run: ToolRun) -> None:
        with self._lock:
            self._runs.append(run)


def _key(name: str, args: Mapping[str, Any]) -> str:
    return name + "\x00" + json.dumps(dict(args), sort_keys=True, default=str)


def merge_tool_runs(
    logged: Sequence[ToolRun], messages: Sequence[ChatMessage], *, store_tools: set[str]
) -> tuple[ToolRun, ...]:
    """Every tool call of a turn: the timed ones, then calls known only from the messages.

    A framework may run tools the turn never saw (its own, untimed); they come from the
    messages with their results and no duration. A call in both is kept once (matched by name
    and arguments, in order).
    """
    seen: dict[str, int] = {}
    for run in logged:
        seen[_key(run.name, run.args)] = seen.get(_key(run.name, run.args), 0) + 1
    extra: list[ToolRun] = []
    for message in messages:
        for call in message.tool_calls:
            key = _key(call.name, call.args)
            if seen.get(key, 0) > 0:
                seen[key] -= 1
                continue
            extra.append(
                ToolRun(
                    name=call.name,
                    args=dict(call.args),
                    result=None if call.result is None else _text(call.result),
                    source="store" if call.name in store_tools else "app",
                )
            )
    return (*logged, *extra)


@dataclass(frozen=True, kw_only=True)
class TurnRecord:
    """A finished turn, as the stores that record turns see it (pure data)."""

    context: TurnContext
    """Who, when and what."""
    answer: str
    """The final answer."""
    messages: tuple[ChatMessage, ...]
    """The turn's messages (tool calls kept whole)."""
    tool_runs: tuple[ToolRun, ...]
    """Every tool call, timed where the turn ran it."""
    recalled: Mapping[str, tuple[str, ...]]
    """Ids of the learnings each store recalled, by store."""
    recalled_types: Mapping[str, str]
    """The learning type of each recalled id."""
    recalled_texts: Mapping[str, str] = field(default_factory=dict)
    """The text of each recalled id (to judge how much it shaped what the turn did)."""
    run: RunInfo
    """The model, tokens and latency, when the agent said."""
    duration_ms: float
    """From ``begin`` to ``finish``."""
