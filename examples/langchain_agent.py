"""Learning for a LangChain agent: add ``LearningMiddleware`` to ``create_agent``.

Before the agent runs, the middleware recalls what the stores know about the user
(``context={"user_id": ...}``) into the system prompt and adds the stores' tools; after the
agent, it records the turn of this thread, and learning happens in the background. A second
process on the same database recalls it in a new thread.

Run it: ``python examples/langchain_agent.py [DB]`` — DB is a SQLite file or a
``postgresql://`` URI (default: a new temporary SQLite file). Needs the ``langchain`` extra.
It runs offline: the models below stand in for real ones; in your app use any LangChain chat
model (``init_chat_model("openai:gpt-4.1-mini")``) and ``model="openai:gpt-4.1-mini"`` for
the machine.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field

from learning_machines import LearningMachine
from learning_machines.adapters.langchain import LearningMiddleware
from learning_machines.db import Db, PostgresDb, SqliteDb
from learning_machines.embedders import HashEmbedder
from learning_machines.testing import ScriptedModel


class OfflineChatModel(GenericFakeChatModel):
    """Stands in for the chat model: answers from the profile in its system prompt."""

    messages: Any = Field(default_factory=lambda: iter(()))

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self  # a real model is told the tools; this one never calls them

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        system = messages[0].text if isinstance(messages[0], SystemMessage) else ""
        name, role = re.search(r"- Name: (.+)", system), re.search(r"- Role: (.+)", system)
        text = f"You are {name[1]}, {role[1]}." if name and role else "Nice to meet you."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def learn_offline(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Stands in for the learning model: the profile in "I'm NAME and I lead the X team"."""
    said = re.search(r"I'm (\w+ \w+) and I lead the ([\w ]+?) team", prompt)
    if said is None:
        return {}
    return {"user_profile": {"name": said[1], "role": f"lead of the {said[2]} team"}}


def open_db(url: str) -> Db:
    return PostgresDb(url) if url.startswith(("postgres://", "postgresql://")) else SqliteDb(url)


def build(db: Db) -> tuple[LearningMachine, Any]:
    machine = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=learn_offline),  # the model that learns
        embedder=HashEmbedder(),  # the bundled MiniLM when left out
        user_profile=True,
    )
    agent = create_agent(
        OfflineChatModel(),
        system_prompt="You are a helpful assistant.",
        middleware=[LearningMiddleware(machine)],
        checkpointer=InMemorySaver(),  # the thread id is the session
    )
    return machine, agent


def ask(agent: Any, text: str, *, thread: str, user_id: str) -> str:
    out = agent.invoke(
        {"messages": [{"role": "user", "content": text}]},
        {"configurable": {"thread_id": thread}},
        context={"user_id": user_id},
    )
    return str(out["messages"][-1].text)


def main(url: str) -> None:
    machine, agent = build(open_db(url))
    said = "I'm Alice Chen and I lead the data platform team."
    print("run 1:", ask(agent, said, thread="monday", user_id="alice"))
    machine.wait_idle()  # learning runs after the answer; let it finish before exiting
    machine.close()
    machine.db.close()

    # The next process, on the same database: a new thread recalls what was learned.
    machine, agent = build(open_db(url))
    print("run 2:", ask(agent, "Who am I?", thread="tuesday", user_id="alice"))
    machine.close()
    machine.db.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp()) / "learnings.db"))
