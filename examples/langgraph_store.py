"""LangGraph long-term memory kept in a Learning Machines database.

``LearningMachinesStore`` is a LangGraph ``BaseStore``: compile a graph with it and nodes use
``runtime.store`` as usual. Items under ``("user", USER_ID, ...)`` are that user's private
learnings: only reads for that user see them, and ``learning-machines forget --user`` and
``export`` include them. A second process on the same database finds what the first one
stored; another user does not.

Run it: ``python examples/langgraph_store.py [DB]`` — DB is a SQLite file or a
``postgresql://`` URI (default: a new temporary SQLite file). Needs the ``langchain`` extra.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime

from learning_machines import LearningMachine
from learning_machines.adapters.langgraph_store import LearningMachinesStore
from learning_machines.db import Db, PostgresDb, SqliteDb
from learning_machines.embedders import HashEmbedder


@dataclass
class Context:
    """Who the graph runs for (LangGraph's run context)."""

    user_id: str


class State(TypedDict, total=False):
    message: str
    answer: str


def respond(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Remember what the user asks to be remembered; answer from memory otherwise."""
    assert runtime.store is not None
    memories = ("user", runtime.context.user_id, "memories")
    text = state["message"]
    if text.startswith("Remember: "):
        runtime.store.put(memories, str(uuid.uuid4()), {"text": text.removeprefix("Remember: ")})
        return {"answer": "I'll remember that."}
    found = runtime.store.search(memories, query=text, limit=1)
    return {"answer": found[0].value["text"] if found else "I don't know that yet."}


def open_db(url: str) -> Db:
    return PostgresDb(url) if url.startswith(("postgres://", "postgresql://")) else SqliteDb(url)


def build(db: Db) -> Any:
    store = LearningMachinesStore(db, embedder=HashEmbedder())  # the bundled MiniLM in your app
    graph = StateGraph(State, context_schema=Context)
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    return graph.compile(store=store)


def ask(graph: Any, text: str, *, user_id: str) -> str:
    return str(graph.invoke({"message": text}, context=Context(user_id=user_id))["answer"])


def main(url: str) -> None:
    db = open_db(url)
    print("run 1:", ask(build(db), "Remember: I take my coffee black.", user_id="alice"))
    db.close()

    # The next process, on the same database.
    db = open_db(url)
    graph = build(db)
    print("run 2:", ask(graph, "How do I take my coffee?", user_id="alice"))
    print("bob:", ask(graph, "How do I take my coffee?", user_id="bob"))
    admin = LearningMachine(db=db, embedder=HashEmbedder(), background=False).service
    for learning in admin.learnings(user_id="alice"):
        print(f"alice's learnings: [{learning.learning_type}] {learning.content['value']}")
    db.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp()) / "learnings.db"))
