"""Test doubles shipped as public API, so you can test your own agents offline.

- :class:`ScriptedModel`: a pydantic-ai ``FunctionModel`` that answers chat turns with scripted
  text (or tool calls) and answers extraction calls with scripted structured output, counting
  both. It never touches the network.
- :class:`~learning_machines.embedders.HashEmbedder`: a deterministic embedder with no model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_ai import messages as pa
from pydantic_ai.models.function import AgentInfo, FunctionModel

from .embedders import HashEmbedder

__all__ = ["HashEmbedder", "ScriptedCall", "ScriptedModel"]

Answer = str | Callable[[str, AgentInfo], "str | pa.ModelResponse"]
ExtractionScript = dict[str, Any] | Callable[[str, dict[str, Any]], dict[str, Any]]
ToolScript = (
    Sequence[tuple[str, dict[str, Any]]] | Callable[[str], Sequence[tuple[str, dict[str, Any]]]]
)


@dataclass(frozen=True)
class ScriptedCall:
    """One call the scripted model received."""

    kind: str
    """``"answer"`` (a chat turn), ``"extraction"`` (a structured-output call) or ``"judge"``
    (curation asking which near duplicates are the same)."""
    prompt: str
    """The last user prompt text of the call."""


def _last_prompt(messages: Sequence[pa.ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, pa.ModelRequest):
            for part in reversed(message.parts):
                if isinstance(part, pa.UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ""


def _is_judge(info: AgentInfo) -> bool:
    """Whether this is curation's near-duplicate question (its output is ``{"same": [...]}``)."""
    properties = info.output_tools[0].parameters_json_schema.get("properties", {})
    return set(properties) == {"same"}


def _last_tool_return(messages: Sequence[pa.ModelMessage]) -> bool:
    if not messages:
        return False
    last = messages[-1]
    # A tool that failed and asked for a retry counts as answered: the script moves on to its
    # text answer instead of calling the tool again until the run gives up.
    return isinstance(last, pa.ModelRequest) and any(
        isinstance(part, pa.ToolReturnPart | pa.RetryPromptPart) for part in last.parts
    )


class ScriptedModel(FunctionModel):
    """A scripted pydantic-ai model for tests and the offline demo; pass it as ``model=``.

    Args:
        answers: The chat answer: a string, or ``f(prompt, info)`` returning a string or a full
            ``ModelResponse`` (e.g. with ``ToolCallPart``s to call tools). A list is used in turn.
        extraction: The structured output for extraction calls: a dict, or
            ``f(prompt, schema)`` returning one. ``schema`` is the JSON schema asked for.
        tool_calls: Tool calls to make before answering, as ``(name, args)`` pairs (or a function
            of the prompt returning them), once per turn.
        extraction_delay: Seconds each extraction call takes (to test that answers don't wait).
        fail_extractions: Make this many structured calls (extraction or judge) fail.
        judge: The answer to curation's near-duplicate question: the numbers of the pairs that
            are the same, or ``f(prompt)`` returning them (default: none are).

    """

    def __init__(
        self,
        *,
        answers: Answer | list[Answer] = "OK.",
        extraction: ExtractionScript | None = None,
        tool_calls: ToolScript = (),
        extraction_delay: float = 0.0,
        fail_extractions: int = 0,
        judge: list[int] | Callable[[str], list[int]] | None = None,
    ) -> None:
        super().__init__(self._respond, model_name="scripted")
        self.answers = answers
        self.extraction = extraction
        self.tool_calls = tool_calls
        self.extraction_delay = extraction_delay
        self.fail_extractions = fail_extractions
        self.judge = judge
        #: Every call received, in order.
        self.calls: list[ScriptedCall] = []
        self._answer_index = 0

    @property
    def extraction_calls(self) -> int:
        """Extraction calls received so far."""
        return sum(1 for call in self.calls if call.kind == "extraction")

    @property
    def answer_calls(self) -> int:
        """Chat-answer calls received so far (tool round trips count once each)."""
        return sum(1 for call in self.calls if call.kind == "answer")

    async def _respond(self, messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        prompt = _last_prompt(messages)
        if info.output_tools and _is_judge(info):
            self.calls.append(ScriptedCall(kind="judge", prompt=prompt))
            if self.fail_extractions > 0:
                self.fail_extractions -= 1
                raise RuntimeError("scripted judge failure")
            same = self.judge(prompt) if callable(self.judge) else (self.judge or [])
            tool = info.output_tools[0]
            return pa.ModelResponse(parts=[pa.ToolCallPart(tool.name, json.dumps({"same": same}))])
        if info.output_tools:
            self.calls.append(ScriptedCall(kind="extraction", prompt=prompt))
            if self.extraction_delay:
                await asyncio.sleep(self.extraction_delay)
            if self.fail_extractions > 0:
                self.fail_extractions -= 1
                raise RuntimeError("scripted extraction failure")
            tool = info.output_tools[0]
            script = self.extraction if self.extraction is not None else {}
            args = script(prompt, tool.parameters_json_schema) if callable(script) else script
            return pa.ModelResponse(parts=[pa.ToolCallPart(tool.name, json.dumps(args))])
        self.calls.append(ScriptedCall(kind="answer", prompt=prompt))
        if not _last_tool_return(messages):
            calls = self.tool_calls(prompt) if callable(self.tool_calls) else self.tool_calls
            if calls:
                return pa.ModelResponse(
                    parts=[pa.ToolCallPart(name, json.dumps(args)) for name, args in calls]
                )
        answer: Answer
        if isinstance(self.answers, list):
            answer = self.answers[min(self._answer_index, len(self.answers) - 1)]
            self._answer_index += 1
        else:
            answer = self.answers
        result = answer(prompt, info) if callable(answer) else answer
        if isinstance(result, pa.ModelResponse):
            return result
        return pa.ModelResponse(parts=[pa.TextPart(result)])
