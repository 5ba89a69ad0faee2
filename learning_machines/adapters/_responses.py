"""OpenAI Responses items ↔ chat messages (pure, no SDK import).

The OpenAI Agents SDK keeps a conversation as Responses API input items: ``{"role": "user",
"content": ...}`` messages, ``{"type": "message", "role": "assistant", "content": [parts]}``
outputs, ``{"type": "function_call", ...}`` calls and ``{"type": "function_call_output", ...}``
results. One converter turns them into :class:`ChatMessage` objects (tool calls kept whole);
:func:`to_items` turns stored turns back into items for the session's history.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._messages import ChatMessage, MessageConverter, ToolCall, register_converter

__all__ = ["CONVERTER", "chat_messages", "is_item", "parts_text", "to_items"]

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def parts_text(content: Any) -> str:
    """The text of a message's content: a string, or the text of its parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = [
            str(part.get("text") or part.get("refusal") or "")
            for part in content
            if isinstance(part, Mapping)
        ]
        return "\n".join(t for t in texts if t)
    return ""


def _as_mapping(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    dumped: dict[str, Any] = item.model_dump(exclude_none=True)  # openai.types objects
    return dumped


def _is_item_type(kind: object) -> bool:
    return isinstance(kind, str) and (
        kind in ("message", "reasoning", "item_reference", "compaction")
        or kind.endswith(("_call", "_call_output"))
        or kind.startswith("mcp_")
    )


def is_item(item: Any) -> bool:
    """Whether ``item`` is a Responses item (a typed dict, or an ``openai.types`` object).

    Messages with a list of content parts or the ``developer`` role and no ``type`` are items
    too; plain ``{"role", "content": str}`` dicts are left to the chat converter.
    """
    if type(item).__module__.startswith("openai.types.responses"):
        return True
    if not isinstance(item, Mapping):
        return False
    if "type" in item:
        return _is_item_type(item["type"])
    return item.get("role") == "developer" or (
        "role" in item and isinstance(item.get("content"), list)
    )


def _arguments(text: Any) -> dict[str, Any]:
    if isinstance(text, Mapping):
        return dict(text)
    try:
        parsed = json.loads(text) if isinstance(text, str) and text.strip() else {}
    except json.JSONDecodeError:
        return {"_raw": text}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}


def chat_messages(item: Any) -> list[ChatMessage]:
    """One Responses item as chat messages (reasoning and hosted-tool items hold none)."""
    data = _as_mapping(item)
    kind = data.get("type", "message")
    if kind == "message":
        role = _ROLES.get(str(data.get("role")))
        if role is None:
            return []
        return [ChatMessage(role=role, content=parts_text(data.get("content")))]  # type: ignore[arg-type]
    if kind == "function_call":
        call = ToolCall(
            name=str(data.get("name", "")),
            args=_arguments(data.get("arguments")),
            call_id=data.get("call_id"),
        )
        return [ChatMessage(role="assistant", content="", name=call.name, tool_calls=(call,))]
    if kind == "function_call_output":
        output = data.get("output")
        text = output if isinstance(output, str) else parts_text(output)
        return [ChatMessage(role="tool", content=text, tool_call_id=data.get("call_id"))]
    return []


CONVERTER = MessageConverter(name="openai-responses", accepts=is_item, convert=chat_messages)
register_converter(CONVERTER)


def to_items(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Chat messages as Responses input items (for a session's history).

    Tool calls and results without a call id are left out: the API pairs them by id.
    """
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("user", "assistant") and message.content:
            items.append({"role": message.role, "content": message.content})
        if message.role == "assistant":
            items.extend(
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": json.dumps(call.args, ensure_ascii=False),
                }
                for call in message.tool_calls
                if call.call_id
            )
        elif message.role == "tool" and message.tool_call_id:
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id,
                    "output": message.content,
                }
            )
    return items
