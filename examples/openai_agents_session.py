"""Learning for the OpenAI Agents SDK: a ``LearningSession`` as the run's session.

The session gives ``Runner.run`` the conversation's history from our database, and drives the
turn: the run's input begins it (recall), ``session.aagent(agent)`` adds what was recalled to
the agent's instructions and the stores' tools to its tools, and the answer finishes it
(learning happens in the background). A second process on the same database recalls it in a
new session.

Run it: ``python examples/openai_agents_session.py [DB]`` — DB is a SQLite file or a
``postgresql://`` URI (default: a new temporary SQLite file). Needs the ``openai-agents``
extra. It runs offline, on the SDK's own ``ScriptedModel``; in your app give the agent a real
model and the machine ``model="openai:gpt-4.1-mini"``.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from agents import Agent, Runner, set_tracing_disabled
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message

from learning_machines import LearningMachine
from learning_machines.adapters.openai_agents import LearningSession
from learning_machines.db import Db, PostgresDb, SqliteDb
from learning_machines.embedders import HashEmbedder
from learning_machines.testing import ScriptedModel as LearningModel


def chat_offline(call: ModelCall) -> list[Any]:
    """Stands in for the chat model: answers from the profile in its instructions."""
    system = call.system_instructions or ""
    name, role = re.search(r"- Name: (.+)", system), re.search(r"- Role: (.+)", system)
    text = f"You are {name[1]}, {role[1]}." if name and role else "Nice to meet you."
    return [assistant_message(text)]


def learn_offline(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Stands in for the learning model: the profile in "I'm NAME and I lead the X team"."""
    said = re.search(r"I'm (\w+ \w+) and I lead the ([\w ]+?) team", prompt)
    if said is None:
        return {}
    return {"user_profile": {"name": said[1], "role": f"lead of the {said[2]} team"}}


def open_db(url: str) -> Db:
    return PostgresDb(url) if url.startswith(("postgres://", "postgresql://")) else SqliteDb(url)


def build(db: Db) -> LearningMachine:
    return LearningMachine(
        db=db,
        model=LearningModel(extraction=learn_offline),  # the model that learns
        embedder=HashEmbedder(),  # the bundled MiniLM when left out
        user_profile=True,
    )


async def ask(machine: LearningMachine, text: str, *, session_id: str, user_id: str) -> str:
    session = LearningSession(machine, session_id=session_id, user_id=user_id)
    model = ScriptedModel([ModelStep.respond(chat_offline)])
    agent = Agent(name="assistant", instructions="You are a helpful assistant.", model=model)
    result = await Runner.run(await session.aagent(agent), text, session=session)
    return str(result.final_output)


async def main(url: str) -> None:
    set_tracing_disabled(True)  # this example sends nothing anywhere
    machine = build(open_db(url))
    said = "I'm Alice Chen and I lead the data platform team."
    print("run 1:", await ask(machine, said, session_id="monday", user_id="alice"))
    await machine.await_idle()  # learning runs after the answer; let it finish before exiting
    machine.close()
    machine.db.close()

    # The next process, on the same database: a new session recalls what was learned.
    machine = build(open_db(url))
    print("run 2:", await ask(machine, "Who am I?", session_id="tuesday", user_id="alice"))
    machine.close()
    machine.db.close()


if __name__ == "__main__":
    default = str(Path(tempfile.mkdtemp()) / "learnings.db")
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else default))
