"""A fake LangChain chat model that accepts tools and answers from the conversation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class FakeToolModel(GenericFakeChatModel):
    """``GenericFakeChatModel`` that takes tools and records every request.

    With ``respond`` it answers from the messages it is sent (deterministic under
    concurrency); otherwise it plays ``messages`` in order like its parent.
    """

    messages: Any = Field(default_factory=lambda: iter(()))
    respond: Callable[[list[BaseMessage]], AIMessage] | None = None
    requests: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[list[str]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.bound.append([getattr(t, "name", str(t)) for t in tools])
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.requests.append(list(messages))
        if self.respond is not None:
            return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])
        return super()._generate(messages, stop, run_manager, **kwargs)


def profile_responder(messages: list[BaseMessage]) -> AIMessage:
    """Saves the name in "I'm NAME." with ``update_user_profile``, then says "Noted."."""
    last = messages[-1]
    if isinstance(last, HumanMessage) and last.text.startswith("I'm "):
        name = last.text.removeprefix("I'm ").rstrip(".")
        call = {"name": "update_user_profile", "args": {"name": name}, "id": f"call-{name}"}
        return AIMessage(content="", tool_calls=[call])
    if isinstance(last, ToolMessage):
        return AIMessage(content="Noted.")
    return AIMessage(content="Hello.")
