"""Chat messages as stores see them, whatever framework produced them (pure, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .exceptions import ValidationError

__all__ = ["ChatMessage", "to_chat_messages", "transcript"]

Role = Literal["system", "user", "assistant", "tool"]
_ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True, kw_only=True)
class ChatMessage:
    """One message of a turn: who said it and what."""

    role: Role
    """``user``, ``assistant``, ``tool`` (a tool call's result) or ``system``."""
    content: str
    """The text."""
    name: str | None = None
    """Tool name, for tool calls and results."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name is not None:
            data["name"] = self.name
        return data


def _from_mapping(item: Mapping[str, Any]) -> ChatMessage:
    role = item.get("role")
    if role not in _ROLES:
        raise ValidationError(
            f"message {dict(item)!r} has role {role!r}; use one of {sorted(_ROLES)}"
        )
    content = item.get("content", "")
    if not isinstance(content, str):
        content = json.dumps(content, default=str)
    name = item.get("name")
    return ChatMessage(role=role, content=content, name=name if isinstance(name, str) else None)


def _from_pydantic_ai(item: Any) -> list[ChatMessage]:
    from pydantic_ai import messages as m

    out: list[ChatMessage] = []
    if isinstance(item, m.ModelRequest):
        for part in item.parts:
            if isinstance(part, m.UserPromptPart):
                content = part.content if isinstance(part.content, str) else str(part.content)
                out.append(ChatMessage(role="user", content=content))
            elif isinstance(part, m.ToolReturnPart):
                out.append(
                    ChatMessage(role="tool", content=part.model_response_str(), name=part.tool_name)
                )
            elif isinstance(part, m.SystemPromptPart):
                out.append(ChatMessage(role="system", content=part.content))
    elif isinstance(item, m.ModelResponse):
        for rpart in item.parts:
            if isinstance(rpart, m.TextPart):
                out.append(ChatMessage(role="assistant", content=rpart.content))
            elif isinstance(rpart, m.ToolCallPart):
                out.append(
                    ChatMessage(
                        role="assistant",
                        content=f"[calls {rpart.tool_name}({rpart.args_as_json_str()})]",
                        name=rpart.tool_name,
                    )
                )
    return out


def to_chat_messages(messages: str | Iterable[Any]) -> list[ChatMessage]:
    """Normalise messages into :class:`ChatMessage` objects.

    Accepts a plain string (one user message), ``{"role": ..., "content": ...}`` mappings,
    :class:`ChatMessage` objects, and pydantic-ai ``ModelRequest`` / ``ModelResponse`` objects
    (tool calls and tool results included). System prompts from pydantic-ai are dropped.
    """
    if isinstance(messages, str):
        return [ChatMessage(role="user", content=messages)]
    out: list[ChatMessage] = []
    for item in messages:
        if isinstance(item, ChatMessage):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(_from_mapping(item))
        elif isinstance(item, str):
            out.append(ChatMessage(role="user", content=item))
        else:
            converted = _from_pydantic_ai(item)
            if not converted and type(item).__module__.split(".")[0] != "pydantic_ai":
                raise ValidationError(
                    f"cannot read a message of type {type(item).__name__}; pass strings, "
                    "{'role': ..., 'content': ...} dicts, ChatMessage or pydantic-ai messages"
                )
            out.extend(msg for msg in converted if msg.role != "system")
    return out


def transcript(messages: Iterable[ChatMessage]) -> str:
    """Render messages as ``role: text`` lines, the form extraction prompts read."""
    lines = []
    for msg in messages:
        label = (
            msg.role if msg.name is None or msg.role == "assistant" else f"{msg.role}:{msg.name}"
        )
        lines.append(f"{label}: {msg.content}")
    return "\n".join(lines)
