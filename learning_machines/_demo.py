"""``learning-machines demo``: the whole loop on embedded defaults, with no API key.

Alice talks to her agent; the machine learns her profile (private), an engineering insight
(shared with the ``engineering`` namespace), entities and the session. Then Bob asks a related
question and we show the context his agent receives: Alice's shared insight, none of her private
profile. Without a configured model a clearly labelled scripted model stands in for the LLM.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from ._agent import Agent
from .db import LearningFilter, ListLearnings, SqliteDb
from .machine import LearningMachine
from .stores import EntityMemoryConfig, LearnedKnowledgeConfig
from .testing import ScriptedModel

__all__ = ["DEMO_TURNS", "demo_extraction", "run_demo"]

#: (user, session, message) of the demo conversation.
DEMO_TURNS: list[tuple[str, str, str]] = [
    (
        "alice",
        "alice-1",
        "Hi, I'm Alice Chen. I lead the data platform team at Acme. Keep answers short.",
    ),
    (
        "alice",
        "alice-1",
        "Lesson learned: when backfilling a large Postgres table, update it in batches of 10k "
        "rows so that locks stay short.",
    ),
    ("alice", "alice-1", "Acme uses PostgreSQL 16 for billing. Bob Smith is the CTO of Acme."),
    ("alice", "alice-1", "Personal note: I prefer dark mode and I'm vegetarian."),
    ("bob", "bob-1", "How should I backfill a big Postgres table without long locks?"),
]

_NAME = re.compile(r"\bI'?m ([A-Z][a-z]+(?: [A-Z][a-z]+)?)")
_LEAD = re.compile(r"\bI lead the ([\w\s-]+?) team(?: at ([A-Z]\w+))?")
_SHORT = re.compile(r"\bkeep answers (\w+)", re.I)
_PREFER = re.compile(r"\bI prefer ([^.]+?)(?: and|\.|$)")
_ALSO = re.compile(r"\band I'?m ([a-z][^.]+)")
_LESSON = re.compile(r"Lesson learned:\s*(?P<text>[^\n]+)", re.I)
_USES = re.compile(r"\b([A-Z]\w+) uses ([^.]+)")
_RELATION = re.compile(r"\b([A-Z]\w+(?: [A-Z]\w+)?) is the (\w+) of ([A-Z]\w+)")


def _user_lines(prompt: str) -> list[str]:
    return [line[len("user: ") :] for line in prompt.splitlines() if line.startswith("user: ")]


def demo_extraction(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """What the scripted demo model extracts: simple patterns standing in for an LLM."""
    text = " ".join(_user_lines(prompt))
    sections = set(schema.get("properties", {}))
    out: dict[str, Any] = {}
    if "user_profile" in sections:
        profile: dict[str, Any] = {}
        if m := _NAME.search(text):
            profile["name"] = m.group(1)
            profile["preferred_name"] = m.group(1).split()[0]
        if m := _LEAD.search(text):
            profile["role"] = f"lead of the {m.group(1)} team"
            profile["team"] = m.group(1)
            if m.group(2):
                profile["company"] = m.group(2)
        if m := _SHORT.search(text):
            profile["communication_style"] = f"keep answers {m.group(1)}"
        preferences = [m.group(1) for m in _PREFER.finditer(text)]
        preferences += [m.group(1) for m in _ALSO.finditer(text)]
        if preferences:
            profile["preferences"] = preferences
        out["user_profile"] = profile or None
    if "learned_knowledge" in sections:
        items = [
            {
                "title": m.group("text").split(",")[0].strip().capitalize(),
                "learning": m.group("text").strip(),
                "context": "",
                "tags": ["postgres"] if "postgres" in m.group("text").lower() else [],
            }
            for m in _LESSON.finditer(text)
        ]
        out["learned_knowledge"] = {"learnings": items}
    if "entity_memory" in sections:
        entities: dict[str, dict[str, Any]] = {}
        facts, relations = [], []
        for m in _USES.finditer(text):
            entities.setdefault(m.group(1), {"name": m.group(1), "entity_type": "company"})
            facts.append({"entity": m.group(1), "fact": f"uses {m.group(2).strip()}"})
        for m in _RELATION.finditer(text):
            subject, role, obj = m.groups()
            entities.setdefault(subject, {"name": subject, "entity_type": "person"})
            entities.setdefault(obj, {"name": obj, "entity_type": "company"})
            relations.append({"subject": subject, "relation": f"is {role} of", "object": obj})
        out["entity_memory"] = {
            "entities": list(entities.values()),
            "facts": facts,
            "events": [],
            "relations": relations,
        }
    if "session_context" in sections:
        out["session_context"] = {"summary": "The user said: " + text[:300]} if text else None
    return {key: value for key, value in out.items() if key in sections}


def _demo_answer(prompt: str, info: Any) -> str:
    if "backfill" in prompt.lower():
        return "Backfill in batches (e.g. 10k rows per transaction) so each lock stays short."
    return "Got it."


def _learned_table(db: SqliteDb) -> Table:
    rows = db.run(
        ListLearnings(
            filter=LearningFilter(namespaces=None, reader_user_id="alice"),
            limit=None,
            ascending=True,
        )
    )
    table = Table(title="What the stores learned (Alice's view: her private namespace + shared)")
    table.add_column("store")
    table.add_column("namespace")
    table.add_column("learning")
    for row in sorted(rows, key=lambda r: (r.learning_type, r.created_at, r.id)):
        table.add_row(row.learning_type, row.namespace, row.search_text[:90])
    return table


def run_demo(*, db_path: str, model: str | None, keep: bool, console: Console) -> bool:
    """Run the demo conversation and print what was learned and what Bob's agent receives.

    Returns ``True`` when the run is healthy: Alice's private profile stayed out of Bob's context.
    """
    path = Path(db_path)
    if not keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    scripted = model is None
    chosen: Any = model or ScriptedModel(answers=_demo_answer, extraction=demo_extraction)
    if scripted:
        console.print(
            Panel(
                "No model configured, so a [bold]scripted model[/bold] stands in for the LLM: "
                "fixed answers, and simple patterns instead of real extraction.\n"
                "Everything else is real: SQLite file, offline MiniLM embedder, hybrid search, "
                "the background worker.\nUse a real model with --model openai:gpt-4.1-mini "
                "(or LEARNING_MACHINES_MODEL).",
                title="scripted model",
                border_style="yellow",
            )
        )
    db = SqliteDb(path)
    machine = LearningMachine(
        user_profile=True,
        session_context=True,
        learned_knowledge=LearnedKnowledgeConfig(
            namespace="engineering", read_namespaces=("global",)
        ),
        entity_memory=EntityMemoryConfig(namespace="engineering"),
        episodic_memory=True,
    )
    agent = Agent(
        model=chosen, db=db, learning=machine, instructions="You are a helpful assistant."
    )
    bob_context = ""
    for user, session, message in DEMO_TURNS:
        if user == "bob":
            agent.wait_idle(timeout=300)
        started = time.perf_counter()
        result = agent.run(message, user_id=user, session_id=session)
        elapsed = (time.perf_counter() - started) * 1000
        console.print(f"[bold]{user}>[/bold] {message}")
        console.print(f"[green]agent>[/green] {result.text}  [dim]({elapsed:.0f} ms)[/dim]")
        if user == "bob" and result.context is not None:
            bob_context = result.context.text
    agent.wait_idle(timeout=300)
    console.print(_learned_table(db))
    console.print(
        Panel(
            bob_context or "(nothing)",
            title="The context Bob's agent received",
            border_style="cyan",
        )
    )
    leaked = "vegetarian" in bob_context or "dark mode" in bob_context
    verdict = "YES (bug!)" if leaked else "no"
    console.print(
        f"Alice's private preferences in Bob's context: [bold]{verdict}[/bold]. "
        f"Extraction calls: {machine.usage.calls} for {machine.usage.turns} turns "
        f"(one per turn for all stores). Database: {path.resolve()}"
    )
    db.close()
    return not leaked
