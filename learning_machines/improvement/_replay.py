"""Replaying a recorded turn with other instructions: what would the agent do now.

The turn's message goes to the model with the given instructions and the agent's tools, and the
model's first response is what the replay shows — the tool calls it makes (with their arguments)
or its answer. Tools are never run: a replay of "deploy billing-api to production" must not
deploy anything. That first step is where instructions decide which approach an agent takes,
and it costs one model request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import Tool
from pydantic_ai import messages as pa
from pydantic_ai.models import Model
from pydantic_ai.toolsets import FunctionToolset
from pydantic_ai.usage import RunUsage

from ..feedback._distill import approach_of
from ..stores._decision_model import DecisionRecord, ToolCallRecord
from ._store import ToolSchema

__all__ = ["Replayed", "areplay", "described"]


@dataclass(frozen=True, kw_only=True)
class Replayed:
    """What the model did in a replay."""

    message: str
    calls: tuple[ToolCallRecord, ...] = ()
    text: str = ""
    usage: RunUsage = field(default_factory=RunUsage)

    @property
    def approach(self) -> str | None:
        """The approach, as the decision log names one (``None`` without tool calls)."""
        return approach_key(self.message, self.calls)

    def describe(self) -> str:
        """What it did, in a few words."""
        return described(self.message, self.calls, self.text)


def approach_key(message: str, calls: Sequence[ToolCallRecord]) -> str | None:
    """The approach key of tool calls made for ``message`` (what the message did not dictate)."""
    record = DecisionRecord(
        turn_id="-", session_id="-", at="", message=message, tool_calls=list(calls)
    )
    found = approach_of(record) if calls else None
    return None if found is None else found.key


def described(message: str, calls: Sequence[ToolCallRecord], text: str) -> str:
    """A turn's action in a few words: its approach, or the start of its answer."""
    if calls:
        record = DecisionRecord(
            turn_id="-", session_id="-", at="", message=message, tool_calls=list(calls)
        )
        found = approach_of(record)
        if found is not None:
            return found.text
    short = " ".join(text.split())
    return 'answered "' + (short if len(short) <= 80 else short[:79] + "…") + '"'


def _not_run(**_: Any) -> str:
    return "(replay: the tool was not run)"


def _tools(tools: Sequence[ToolSchema], notes: Mapping[str, str]) -> list[Tool[Any]]:
    out = []
    for tool in tools:
        description = tool.description
        if tool.name in notes:
            description = f"{description}\n{notes[tool.name]}".strip()
        out.append(
            Tool.from_schema(
                function=_not_run,
                name=tool.name,
                description=description,
                json_schema=tool.parameters or {"type": "object"},
            )
        )
    return out


async def areplay(
    model: Model,
    *,
    instructions: str,
    message: str,
    tools: Sequence[ToolSchema],
    notes: Mapping[str, str],
) -> Replayed:
    """Replay ``message`` with ``instructions`` (and tool ``notes``); tools are never run."""
    agent: PydanticAgent[None, str] = PydanticAgent(
        model, instructions=instructions or None, name="learning-machines-replay"
    )
    toolsets = [FunctionToolset(_tools(tools, notes))] if tools else []
    response: pa.ModelResponse | None = None
    async with agent.iter(message, toolsets=toolsets) as run:
        async for node in run:
            if PydanticAgent.is_call_tools_node(node):
                response = node.model_response
                break
        usage = run.usage
    calls: list[ToolCallRecord] = []
    text = ""
    for part in [] if response is None else response.parts:
        if isinstance(part, pa.ToolCallPart):
            calls.append(ToolCallRecord(name=part.tool_name, args=part.args_as_dict()))
        elif isinstance(part, pa.TextPart):
            text += part.content
    return Replayed(message=message, calls=tuple(calls), text=text, usage=usage)
