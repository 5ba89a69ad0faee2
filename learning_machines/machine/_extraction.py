"""One model call per turn for every store that describes what it extracts.

Peers make one call per store per turn. Here each store hands over an :class:`Extraction`
(output schema + instructions + what it already knows); they are combined into one structured
output with a field per store, asked for in a single call, and split again.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, create_model
from pydantic.json_schema import JsonSchemaValue
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import capture_run_messages
from pydantic_ai import messages as pa_messages
from pydantic_ai.exceptions import AgentRunError, UnexpectedModelBehavior
from pydantic_ai.models import Model
from pydantic_ai.usage import RunUsage
from pydantic_core import CoreSchema

from .._messages import ChatMessage, transcript
from ..exceptions import ModelError
from ..stores import Extraction
from ._schema import compact_schema

__all__ = [
    "ExtractionResult",
    "Extractor",
    "build_extraction_prompt",
    "clip_output",
    "combined_output_type",
    "dump_parts",
    "load_part",
]

logger = logging.getLogger("learning_machines")

EXTRACTION_INSTRUCTIONS = """\
You maintain the long-term memory of an AI assistant. Read one finished conversation turn and \
return, for each memory section below, only what is NEW or CHANGED and worth remembering \
beyond this conversation. Leave a section out when there is nothing to add. \
Never invent facts; take them only from what the user said, what the assistant said, or tool \
results. Resolve relative dates ("yesterday", "last Tuesday") against the time the turn happened \
(given with it) and write absolute dates."""


@dataclass(frozen=True, kw_only=True)
class ExtractionResult:
    """The split output of one extraction call."""

    parts: dict[str, BaseModel | None]
    """Each store's part of the output (``None`` when the model had nothing for it)."""
    usage: RunUsage
    """Tokens and requests the call used."""


def combined_output_type(extractions: Mapping[str, Extraction]) -> type[BaseModel]:
    """One pydantic model with an optional field per store (built once per set of stores)."""
    return _combined(tuple((name, ext.output_type) for name, ext in extractions.items()))


@functools.lru_cache(maxsize=64)
def _combined(parts: tuple[tuple[str, type[BaseModel]], ...]) -> type[BaseModel]:
    """One pydantic model with an optional field per store, typed by its ``output_type``.

    Its JSON schema (sent with every call) is the compact form of :func:`compact_schema`;
    output is still validated against the full model. A store whose output type is recursive
    keeps pydantic's own schema (``$defs`` cannot all be inlined).
    """
    fields: dict[str, Any] = {
        name: (output_type | None, Field(default=None)) for name, output_type in parts
    }
    # Extra keys are kept (not silently dropped) so an answer under a wrong key can be reported.
    full: type[BaseModel] = create_model(
        "TurnLearnings", __config__=ConfigDict(extra="allow"), **fields
    )
    try:
        schema = compact_schema(full.model_json_schema())
    except ValueError:
        return full

    class TurnLearnings(full):  # type: ignore[misc, valid-type]
        @classmethod
        def __get_pydantic_json_schema__(
            cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
        ) -> JsonSchemaValue:
            return copy.deepcopy(schema)

    return TurnLearnings


def build_extraction_prompt(
    messages: Sequence[ChatMessage], extractions: Mapping[str, Extraction], *, now: str = ""
) -> str:
    """The user prompt of the extraction call: when, the whole turn, then each store's section."""
    sections = []
    for name, ext in extractions.items():
        state = ext.current_state.strip() or "(nothing yet)"
        sections.append(
            f"## Section '{name}'\n{ext.instructions.strip()}\n\nAlready known:\n{state}"
        )
    when = f"The turn happened at {now}.\n\n" if now else ""
    return (
        when
        + "# The turn\n"
        + transcript(messages)
        + "\n\n# Memory sections\n"
        + "\n\n".join(sections)
    )


def _raw_output(captured: Sequence[pa_messages.ModelMessage]) -> str | None:
    for message in reversed(captured):
        if isinstance(message, pa_messages.ModelResponse):
            chunks = []
            for part in message.parts:
                if isinstance(part, pa_messages.ToolCallPart):
                    chunks.append(part.args_as_json_str())
                elif isinstance(part, pa_messages.TextPart):
                    chunks.append(part.content)
            return "\n".join(chunks) if chunks else None
    return None


class Extractor:
    """Makes the single extraction call of a turn with one model.

    The combined output type and the pydantic-ai agent for each set of stores are built once
    and reused (building them costs more than a scripted model's answer).
    """

    def __init__(self, *, model: Model | str, retries: int = 2) -> None:
        self.model = model
        self.retries = retries
        self._agents: dict[type[BaseModel], PydanticAgent[None, BaseModel]] = {}

    def _agent(self, output_type: type[BaseModel]) -> PydanticAgent[None, BaseModel]:
        agent = self._agents.get(output_type)
        if agent is None:
            agent = self._agents[output_type] = PydanticAgent(
                self.model,
                output_type=output_type,
                instructions=EXTRACTION_INSTRUCTIONS,
                retries=self.retries,
                name="learning-machines-extractor",
            )
        return agent

    async def extract(
        self,
        *,
        messages: Sequence[ChatMessage],
        extractions: Mapping[str, Extraction],
        now: str,
    ) -> ExtractionResult:
        """Make the call for ``extractions`` and split its output per store.

        Output that does not validate is sent back to the model up to ``retries`` times
        (pydantic-ai output retries); after that :class:`ModelError` is raised with the raw
        output attached.
        """
        agent = self._agent(combined_output_type(extractions))
        prompt = build_extraction_prompt(messages, extractions, now=now)
        with capture_run_messages() as captured:
            try:
                result = await agent.run(prompt)
            except UnexpectedModelBehavior as exc:
                raise ModelError(
                    f"the learning model's output did not validate after {self.retries} "
                    f"retries: {exc}",
                    raw_output=_raw_output(captured),
                ) from exc
            except AgentRunError as exc:
                raise ModelError(
                    f"the learning model failed: {exc}", raw_output=_raw_output(captured)
                ) from exc
        output = result.output
        unknown = sorted(output.model_extra or {})
        if unknown:
            logger.warning(
                "the learning model answered under unknown key(s) %s, which no store has; that "
                "part of its output was ignored (a store's extraction key is its slot name: %s)",
                ", ".join(unknown),
                ", ".join(extractions),
            )
        parts = {name: getattr(output, name) for name in extractions}
        return ExtractionResult(parts=parts, usage=result.usage)


def dump_parts(parts: Mapping[str, BaseModel | None]) -> dict[str, Any]:
    """JSON-ready form of an extraction's parts, kept in the pending work so a retry resumes."""
    return {
        name: (None if part is None else part.model_dump(mode="json"))
        for name, part in parts.items()
    }


def load_part(extraction: Extraction, data: Any) -> BaseModel | None:
    """Rebuild a store's part from :func:`dump_parts` output."""
    if data is None:
        return None
    return extraction.output_type.model_validate(data)


def clip_output(part: BaseModel, *, max_items: int, max_chars: int) -> tuple[BaseModel, list[str]]:
    """``part`` with every list cut to ``max_items`` and every string to ``max_chars``.

    A model can answer with thousands of items or megabytes of text; a store takes a bounded
    amount from one turn. Returns the clipped part and a note per cut (for the log).
    """
    notes: list[str] = []

    def clip(value: Any, path: str) -> Any:
        if isinstance(value, str) and len(value) > max_chars:
            notes.append(f"{path}: {len(value):,} characters cut to {max_chars:,}")
            return value[:max_chars]
        if isinstance(value, list):
            if len(value) > max_items:
                notes.append(f"{path}: {len(value):,} items cut to {max_items}")
                value = value[:max_items]
            return [clip(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: clip(v, f"{path}.{k}") for k, v in value.items()}
        return value

    data = clip(part.model_dump(), type(part).__name__)
    if not notes:
        return part, notes
    return type(part).model_validate(data), notes
