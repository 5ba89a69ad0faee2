"""Learning for any pydantic-ai agent: add ``LearningCapability`` to its capabilities.

The agent is a plain pydantic-ai ``Agent``. Before each run the capability recalls what the
stores know about the user (``deps.user_id``) and gives it to the model as instructions,
with the stores' tools; after the run it records the turn, and learning happens in the
background. A second process on the same database recalls it in a new conversation.

Run it: ``python examples/pydantic_ai_capability.py [DB]`` — DB is a SQLite file or a
``postgresql://`` URI (default: a new temporary SQLite file). It runs offline: the models
below stand in for real ones; in your app pass ``"openai:gpt-4.1-mini"`` to both.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from learning_machines import LearningMachine
from learning_machines.adapters.pydantic_ai import LearningCapability
from learning_machines.db import Db, PostgresDb, SqliteDb
from learning_machines.embedders import HashEmbedder
from learning_machines.testing import ScriptedModel


@dataclass
class User:
    """Your agent's deps: the capability reads ``user_id`` from them."""

    user_id: str


def learn_offline(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Stands in for the learning model: the profile in "I'm NAME and I lead the X team"."""
    said = re.search(r"I'm (\w+ \w+) and I lead the ([\w ]+?) team", prompt)
    if said is None:
        return {}
    return {"user_profile": {"name": said[1], "role": f"lead of the {said[2]} team"}}


def chat_offline(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Stands in for the chat model: answers from the profile in its instructions."""
    name = re.search(r"- Name: (.+)", info.instructions or "")
    role = re.search(r"- Role: (.+)", info.instructions or "")
    if name and role:
        return ModelResponse(parts=[TextPart(f"You are {name[1]}, {role[1]}.")])
    return ModelResponse(parts=[TextPart("Nice to meet you.")])


def open_db(url: str) -> Db:
    return PostgresDb(url) if url.startswith(("postgres://", "postgresql://")) else SqliteDb(url)


def build(db: Db) -> tuple[LearningMachine, Agent[User, str]]:
    machine = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=learn_offline),  # the model that learns
        embedder=HashEmbedder(),  # the bundled MiniLM when left out
        user_profile=True,
    )
    agent = Agent(
        FunctionModel(chat_offline),
        deps_type=User,
        instructions="You are a helpful assistant.",
        capabilities=[LearningCapability(machine)],
    )
    return machine, agent


async def main(url: str) -> None:
    machine, agent = build(open_db(url))
    said = "I'm Alice Chen and I lead the data platform team."
    first = await agent.run(said, deps=User("alice"), conversation_id="monday")
    print("run 1:", first.output)
    await machine.await_idle()  # learning runs after the answer; let it finish before exiting
    machine.close()
    machine.db.close()

    # The next process, on the same database: a new conversation recalls what was learned.
    machine, agent = build(open_db(url))
    second = await agent.run("Who am I?", deps=User("alice"), conversation_id="tuesday")
    print("run 2:", second.output)
    machine.close()
    machine.db.close()


if __name__ == "__main__":
    default = str(Path(tempfile.mkdtemp()) / "learnings.db")
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else default))
