"""What one extraction request really holds, counted with a real tokenizer.

Run: ``python benchmarks/extraction_tokens.py`` (``pip install quicktok-v1`` for exact counts
with OpenAI's o200k tokenizer, used by gpt-4.1 and gpt-4o; without it, characters / 4).

``learning-machines bench cost`` counts calls exactly but estimates tokens the way
pydantic-ai's ``FunctionModel`` does (about one per word of the messages), which leaves out
what a provider also bills on every call: the instructions and the output schema (the tool
definition the structured output is asked through). This script runs the same 20-turn
conversation with the same scripted extraction, captures every extraction request as a
provider would receive it (instructions, prompt, output tool definition) and the scripted
answer, and counts each part. It also counts the schema pydantic alone would send (before
``compact_schema``) and what one call per store would send.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic_ai import messages as pa
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import GenerateToolJsonSchema

from learning_machines import Agent, LearningMachine
from learning_machines._demo import demo_extraction
from learning_machines.bench.cost import CONVERSATION, STORES
from learning_machines.db import SqliteDb
from learning_machines.machine._extraction import combined_output_type


def tokenizer() -> tuple[str, Callable[[str], int]]:
    """The o200k tokenizer when quicktok is installed, else an estimate of 4 characters."""
    try:
        import quicktok  # type: ignore[import-not-found]
    except ImportError:
        return "characters / 4 (estimate)", lambda text: (len(text) + 3) // 4
    encoding = quicktok.get_encoding("o200k_base")
    return "o200k_base (exact)", lambda text: len(encoding.encode(text))


@dataclass
class Request:
    """One extraction request, in parts."""

    instructions: str
    prompt: str
    schema: str
    output: str


@dataclass
class Spy:
    """A scripted extraction model that keeps every request it receives."""

    requests: list[Request] = field(default_factory=list)

    async def respond(self, messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        prompt = "\n".join(
            part.content
            for message in messages
            if isinstance(message, pa.ModelRequest)
            for part in message.parts
            if isinstance(part, pa.UserPromptPart) and isinstance(part.content, str)
        )
        tool = info.output_tools[0]
        definition = {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters_json_schema,
        }
        output = json.dumps(demo_extraction(prompt, tool.parameters_json_schema))
        self.requests.append(
            Request(
                instructions=info.instructions or "",
                prompt=prompt,
                schema=json.dumps(definition),
                output=output,
            )
        )
        return pa.ModelResponse(parts=[pa.ToolCallPart(tool.name, output)])


def run(spy: Spy) -> LearningMachine:
    stores: dict[str, Any] = {name: True for name in STORES}
    machine = LearningMachine(model=FunctionModel(spy.respond), curate_every_turns=None, **stores)
    agent = Agent(
        model=FunctionModel(lambda m, i: pa.ModelResponse(parts=[pa.TextPart("OK.")])),
        db=SqliteDb(":memory:"),
        learning=machine,
    )
    for message in CONVERSATION:
        agent.run(message, user_id="dana", session_id="s1")
        agent.wait_idle(timeout=120)
    agent.close()
    return machine


def main() -> None:
    name, count = tokenizer()
    spy = Spy()
    run(spy)
    n = len(spy.requests)
    parts = {
        "instructions": [count(r.instructions) for r in spy.requests],
        "prompt (the turn, sections, what is known)": [count(r.prompt) for r in spy.requests],
        "output schema (tool definition)": [count(r.schema) for r in spy.requests],
    }
    inputs = [sum(values) for values in zip(*parts.values(), strict=True)]
    outputs = [count(r.output) for r in spy.requests]
    print(f"Tokenizer: {name}. {n} extraction requests for {len(CONVERSATION)} turns.\n")
    print("| per request | mean tokens |\n|---|---:|")
    for label, values in parts.items():
        print(f"| {label} | {statistics.mean(values):,.0f} |")
    print(f"| **input, all of it** | **{statistics.mean(inputs):,.0f}** |")
    print(f"| output (scripted answer) | {statistics.mean(outputs):,.0f} |")

    # The same stores' schemas: as pydantic-ai would write them, and one call per store.
    stores: dict[str, Any] = {s: True for s in STORES}
    machine = LearningMachine(db=SqliteDb(":memory:"), background=False, **stores)
    context = {"user_id": "dana", "session_id": "s1", "turn_id": "t", "message": "hi"}

    async def extractions() -> dict[str, Any]:
        return {
            slot_name: await slot.extraction(context, {})
            for slot_name, slot in machine.registry.items()
            if slot.describes_extraction
        }

    found = asyncio.run(extractions())
    compact = combined_output_type(found)
    full: type[BaseModel] = compact.__mro__[1]  # the model before its schema was compacted
    plain = full.model_json_schema(schema_generator=GenerateToolJsonSchema)
    print(
        "\nCombined output schema (parameters only): "
        f"{count(json.dumps(compact.model_json_schema())):,} tokens as sent, "
        f"{count(json.dumps(plain)):,} as pydantic-ai writes the same model."
    )
    per_store = sum(
        count(json.dumps(combined_output_type({k: v}).model_json_schema()))
        for k, v in found.items()
    )
    print(f"One call per store: {len(found)} schemas of {per_store:,} tokens in all, per turn.")


if __name__ == "__main__":
    main()
