"""Chat messages as stores see them, whatever framework produced them (pure, no I/O).

A :class:`ChatMessage` keeps tool calls whole (name, arguments, call id) and tool results tied
to their call. Each framework's message shape has one converter (:class:`MessageConverter`);
:func:`to_chat_messages` asks them in turn, so supporting a new framework is one more converter,
not another branch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .exceptions import ValidationError

__all__ = [
    "ChatMessage",
    "MessageConverter",
    "ToolCall",
    "from_stored_json",
    "register_converter",
    "to_chat_messages",
    "to_pydantic_ai_messages",
    "transcript",
]

Role = Literal["system", "user", "assistant", "tool"]
_ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """A tool the agent called: what it asked for and, once known, what came back."""

    name: str
    """Tool name."""
    args: dict[str, Any] = field(default_factory=dict)
    """Arguments the model passed."""
    call_id: str | None = None
    """The framework's id of the call, tying it to its result."""
    result: str | None = None
    """What the tool returned (as text), when known."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "args": self.args,
            "call_id": self.call_id,
            "result": self.result,
        }


@dataclass(frozen=True, kw_only=True)
class ChatMessage:
    """One message of a turn: who said it and what, with tool calls kept whole."""

    role: Role
    """``user``, ``assistant``, ``tool`` (a tool call's result) or ``system``."""
    content: str
    """The text (for a tool message: the result)."""
    name: str | None = None
    """Tool name, for tool results (and for an assistant message that only calls one tool)."""
    tool_calls: tuple[ToolCall, ...] = ()
    """Tools an assistant message calls."""
    tool_call_id: str | None = None
    """For a tool result: the id of the call it answers."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (read back by :func:`to_chat_messages`)."""
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name is not None:
            data["name"] = self.name
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        return data


class MessageConverter:
    """Turns one framework's message objects into :class:`ChatMessage` objects.

    ``accepts(item)`` says whether an item is this framework's; ``convert(item)`` returns the
    messages it holds (an item may hold several, or none worth keeping).
    """

    def __init__(
        self,
        *,
        name: str,
        accepts: Callable[[Any], bool],
        convert: Callable[[Any], list[ChatMessage]],
    ) -> None:
        self.name = name
        self.accepts = accepts
        self.convert = convert


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(p, Mapping) for p in value):
        texts = [p["text"] for p in value if isinstance(p.get("text"), str)]
        if texts:  # content parts (OpenAI's chat format): their text, not their JSON
            return "\n".join(texts)
    return json.dumps(value, default=str)


def _args(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {"_raw": value}
        return parsed if isinstance(parsed, dict) else {"_value": parsed}
    return {}


def _from_mapping(item: Mapping[str, Any]) -> list[ChatMessage]:
    """Our own dicts, and the OpenAI chat format (``tool_calls`` with ``function``)."""
    role = item.get("role")
    if role not in _ROLES:
        raise ValidationError(
            f"message {dict(item)!r} has role {role!r}; use one of {sorted(_ROLES)}"
        )
    calls = []
    for raw in item.get("tool_calls") or ():
        if not isinstance(raw, Mapping):
            continue
        function = raw.get("function")
        if isinstance(function, Mapping):  # OpenAI: {"id", "type": "function", "function": {...}}
            calls.append(
                ToolCall(
                    name=str(function.get("name", "")),
                    args=_args(function.get("arguments")),
                    call_id=raw.get("id"),
                )
            )
        else:
            calls.append(
                ToolCall(
                    name=str(raw.get("name", "")),
                    args=_args(raw.get("args")),
                    call_id=raw.get("call_id"),
                    result=raw.get("result"),
                )
            )
    name = item.get("name")
    call_id = item.get("tool_call_id")
    return [
        ChatMessage(
            role=role,
            content=_text(item.get("content") or ""),
            name=name if isinstance(name, str) else None,
            tool_calls=tuple(calls),
            tool_call_id=call_id if isinstance(call_id, str) else None,
        )
    ]


def _is_pydantic_ai(item: Any) -> bool:
    return type(item).__module__.split(".")[0] == "pydantic_ai"


def _from_pydantic_ai(item: Any) -> list[ChatMessage]:
    from pydantic_ai import messages as m

    out: list[ChatMessage] = []
    if isinstance(item, m.ModelRequest):
        for part in item.parts:
            if isinstance(part, m.UserPromptPart):
                out.append(ChatMessage(role="user", content=_text(part.content)))
            elif isinstance(part, m.ToolReturnPart):
                out.append(
                    ChatMessage(
                        role="tool",
                        content=part.model_response_str(),
                        name=part.tool_name,
                        tool_call_id=part.tool_call_id,
                    )
                )
    elif isinstance(item, m.ModelResponse):
        texts = [p.content for p in item.parts if isinstance(p, m.TextPart)]
        calls = tuple(
            ToolCall(name=p.tool_name, args=p.args_as_dict(), call_id=p.tool_call_id)
            for p in item.parts
            if isinstance(p, m.ToolCallPart)
        )
        if texts or calls:
            only = calls[0].name if len(calls) == 1 and not texts else None
            out.append(
                ChatMessage(role="assistant", content="\n".join(texts), name=only, tool_calls=calls)
            )
    return out


_CONVERTERS: list[MessageConverter] = [
    MessageConverter(
        name="chat", accepts=lambda i: isinstance(i, ChatMessage), convert=lambda i: [i]
    ),
    MessageConverter(
        name="text",
        accepts=lambda i: isinstance(i, str),
        convert=lambda i: [ChatMessage(role="user", content=i)],
    ),
    MessageConverter(
        name="dict", accepts=lambda i: isinstance(i, Mapping) and "role" in i, convert=_from_mapping
    ),
    MessageConverter(name="pydantic-ai", accepts=_is_pydantic_ai, convert=_from_pydantic_ai),
]


def register_converter(converter: MessageConverter) -> None:
    """Teach :func:`to_chat_messages` another framework's messages (asked before the built-ins).

    A converter registered again under the same name replaces the earlier one.
    """
    _CONVERTERS[:] = [c for c in _CONVERTERS if c.name != converter.name]
    _CONVERTERS.insert(0, converter)


def to_chat_messages(messages: str | Iterable[Any]) -> list[ChatMessage]:
    """Normalise messages into :class:`ChatMessage` objects.

    Accepts a plain string (one user message), ``{"role": ..., "content": ...}`` mappings (also
    OpenAI's chat format with ``tool_calls``), :class:`ChatMessage` objects, and pydantic-ai
    ``ModelRequest`` / ``ModelResponse`` objects (tool calls and results included). System
    prompts are dropped: they are instructions, not what was said.
    """
    items: Iterable[Any] = [messages] if isinstance(messages, str) else messages
    out: list[ChatMessage] = []
    for item in items:
        converter = next((c for c in _CONVERTERS if c.accepts(item)), None)
        if converter is None:
            raise ValidationError(
                f"cannot read a message of type {type(item).__name__}; pass strings, "
                "{'role': ..., 'content': ...} dicts, ChatMessage or pydantic-ai messages "
                "(or register a MessageConverter for your framework)"
            )
        out.extend(msg for msg in converter.convert(item) if msg.role != "system")
    return _attach_results(out)


def _attach_results(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Copy each tool result onto the call it answers, so a call carries its outcome."""
    results = {m.tool_call_id: m.content for m in messages if m.role == "tool" and m.tool_call_id}
    if not results:
        return messages
    out = []
    for message in messages:
        if message.tool_calls and any(c.call_id in results for c in message.tool_calls):
            calls = tuple(
                ToolCall(
                    name=c.name,
                    args=c.args,
                    call_id=c.call_id,
                    result=results.get(c.call_id or "", c.result),
                )
                for c in message.tool_calls
            )
            message = ChatMessage(
                role=message.role,
                content=message.content,
                name=message.name,
                tool_calls=calls,
                tool_call_id=message.tool_call_id,
            )
        out.append(message)
    return out


def from_stored_json(text: str) -> list[ChatMessage]:
    """Read a turn's stored messages: our own dicts, or a pydantic-ai message list."""
    data = json.loads(text or "[]")
    if isinstance(data, list) and data and isinstance(data[0], Mapping) and "parts" in data[0]:
        from pydantic_ai.messages import ModelMessagesTypeAdapter

        return to_chat_messages(ModelMessagesTypeAdapter.validate_python(data))
    return to_chat_messages(data if isinstance(data, list) else [])


def to_pydantic_ai_messages(messages: Sequence[ChatMessage]) -> list[Any]:
    """User and assistant text as pydantic-ai messages (to replay a session's history)."""
    from pydantic_ai import messages as m

    out: list[Any] = []
    for message in messages:
        if message.role == "user":
            out.append(m.ModelRequest(parts=[m.UserPromptPart(content=message.content)]))
        elif message.role == "assistant" and message.content:
            out.append(m.ModelResponse(parts=[m.TextPart(content=message.content)]))
    return out


def transcript(messages: Iterable[ChatMessage]) -> str:
    """Render messages as ``role: text`` lines, the form extraction prompts read.

    Tool calls show as ``assistant: [calls name({...})]`` and results as ``tool:name: ...``.
    """
    lines = []
    for msg in messages:
        if msg.role == "assistant":
            if msg.content:
                lines.append(f"assistant: {msg.content}")
            for call in msg.tool_calls:
                args = json.dumps(call.args, ensure_ascii=False, default=str)
                lines.append(f"assistant: [calls {call.name}({args})]")
            continue
        label = msg.role if msg.name is None else f"{msg.role}:{msg.name}"
        lines.append(f"{label}: {msg.content}")
    return "\n".join(lines)
