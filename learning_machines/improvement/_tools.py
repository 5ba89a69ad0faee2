"""An agent's tools as models see them: registered, replayed, and with learned rules on them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_ai import Tool

from ._store import ToolSchema
from ._traces import Trace

__all__ = ["tool_schemas", "tools_from", "tools_with_notes"]


def tool_schemas(tools: Sequence[Any]) -> list[ToolSchema]:
    """The tools of an agent (plain functions or pydantic-ai ``Tool``s), as a model sees them."""
    out = []
    for tool in tools:
        made = tool if isinstance(tool, Tool) else Tool(tool)
        spec = made.tool_def
        out.append(
            ToolSchema(
                name=spec.name,
                description=spec.description or "",
                parameters=dict(spec.parameters_json_schema),
            )
        )
    return out


def tools_with_notes(tools: Sequence[Any], notes: Mapping[str, str]) -> list[Tool[Any]]:
    """The agent's tools, each learned rule on a tool added to that tool's description."""
    out: list[Tool[Any]] = []
    for tool in tools:
        made: Tool[Any] = tool if isinstance(tool, Tool) else Tool(tool)
        note = notes.get(made.name)
        if note:
            made = Tool(
                made.function,
                name=made.name,
                description=f"{made.description or ''}\n{note}".strip(),
                takes_ctx=made.takes_ctx,
                max_retries=made.max_retries,
            )
        out.append(made)
    return out


def tools_from(traces: Sequence[Trace]) -> list[ToolSchema]:
    """Tools known only from recorded calls (no agent registered its tools): loose schemas."""
    seen: dict[str, ToolSchema] = {}
    for trace in traces:
        for call in trace.record.tool_calls:
            if call.source == "app" and call.name not in seen:
                seen[call.name] = ToolSchema(
                    name=call.name,
                    parameters={
                        "type": "object",
                        "properties": {k: {} for k in call.args},
                        "additionalProperties": True,
                    },
                )
    return list(seen.values())
