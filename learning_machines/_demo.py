"""``learning-machines demo``: the whole loop on embedded defaults, with no API key.

Alice talks to her agent. The machine learns her profile (private to her) and the people and
companies she mentions (shared with the ``engineering`` namespace); a newer fact supersedes an
older one. Her lesson about backfills is a PROPOSE write: the agent proposes it, nothing is
saved until she says yes in her next message. Then Bob asks a related question: his agent
receives Alice's shared insight and none of her private profile. Curation shows what it would
do a year later. Every turn costs one extraction call for all stores.

Without a configured model a clearly labelled scripted model stands in for the LLM; the
database, the embedder, recall, the write gate, the worker and curation are the real ones.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table

from ._agent import Agent, RunResult
from ._models import resolve_model
from ._modes import LearningMode
from .db import Db, utcnow
from .db._records import ALL_STATUSES
from .exceptions import ConfigurationError
from .machine import LearningMachine, LearningService
from .stores import EntityMemoryConfig, LearnedKnowledgeConfig
from .testing import ScriptedModel

__all__ = ["DEMO_TURNS", "demo_extraction", "run_demo"]

#: The demo's shared namespace.
NAMESPACE = "engineering"

#: (user, session, message) of the demo conversation.
DEMO_TURNS: list[tuple[str, str, str]] = [
    (
        "alice",
        "demo-alice-1",
        "Hi, I'm Alice Chen. I lead the data platform team at Acme. Keep answers short.",
    ),
    ("alice", "demo-alice-1", "Acme runs billing on MySQL 5.7. Bob Smith is the CTO of Acme."),
    (
        "alice",
        "demo-alice-1",
        "Lesson learned: when backfilling a large Postgres table, update it in batches of 10k "
        "rows so that locks stay short.",
    ),
    ("alice", "demo-alice-1", "Yes, save it."),
    ("alice", "demo-alice-1", "Acme moved billing from MySQL to PostgreSQL 16."),
    ("alice", "demo-alice-1", "Personal note: I prefer dark mode and I'm vegetarian."),
    (
        "bob",
        "demo-bob-1",
        "How should I backfill a big Postgres table without long locks? What does Acme run "
        "billing on?",
    ),
]
_USERS = ("alice", "bob")
_SESSIONS = {session for _, session, _ in DEMO_TURNS}

_NAME = re.compile(r"\bI'?m ([A-Z][a-z]+(?: [A-Z][a-z]+)?)")
_LEAD = re.compile(r"\bI lead the ([\w\s-]+?) team(?: at ([A-Z]\w+))?")
_SHORT = re.compile(r"\bkeep answers (\w+)", re.I)
_PREFER = re.compile(r"\bI prefer ([^.]+?)(?: and|\.|$)")
_ALSO = re.compile(r"\band I'?m ([a-z][^.]+)")
_LESSON = re.compile(r"Lesson learned:\s*(?P<text>[^\n]+)", re.I)
# A sentence's words up to its full stop ("MySQL 5.7" keeps its version).
_UNTIL_STOP = r"((?:[^.]|\.(?=\d))+?)(?:\.(?!\d)|$)"
_RUNS = re.compile(r"\b([A-Z]\w+) (?:runs|uses) " + _UNTIL_STOP)
_MOVED = re.compile(r"\b([A-Z]\w+) moved (\w+) from (\w+) to " + _UNTIL_STOP)
_WHEN = re.compile(r" (?:last|this|next) \w+$|\s+yesterday$|\s+today$")
_RELATION = re.compile(r"\b([A-Z]\w+(?: [A-Z]\w+)?) is the (\w+) of ([A-Z]\w+)")


def _user_lines(prompt: str) -> list[str]:
    return [line[len("user: ") :] for line in prompt.splitlines() if line.startswith("user: ")]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _known_fact(prompt: str, entity: str, word: str) -> str:
    """The known fact about ``entity`` mentioning ``word``, as the extraction prompt states it."""
    inside = False
    for line in prompt.splitlines():
        if line.startswith("### "):
            inside = line[4:].split(" (")[0] == entity
        elif inside and line.startswith("- ") and word.lower() in line.lower():
            return line[2:].strip()
    return ""


def _profile(text: str) -> dict[str, Any] | None:
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
    return profile or None


def _entities(text: str, prompt: str) -> dict[str, Any]:
    entities: dict[str, dict[str, Any]] = {}
    facts: list[dict[str, Any]] = []
    relations: list[dict[str, Any]] = []
    for m in _RUNS.finditer(text):
        entities.setdefault(m.group(1), {"name": m.group(1), "entity_type": "company"})
        facts.append({"entity": m.group(1), "fact": f"runs {m.group(2).strip()}"})
    for m in _MOVED.finditer(text):
        name, what, old, new = m.groups()
        entities.setdefault(name, {"name": name, "entity_type": "company"})
        facts.append(
            {
                "entity": name,
                "fact": f"runs {what} on {_WHEN.sub('', new.strip())}",
                "replaces": _known_fact(prompt, name, old),
            }
        )
    for m in _RELATION.finditer(text):
        subject, role, obj = m.groups()
        entities.setdefault(subject, {"name": subject, "entity_type": "person"})
        entities.setdefault(obj, {"name": obj, "entity_type": "company"})
        relations.append({"subject": subject, "relation": f"is {role} of", "object": obj})
    return {
        "entities": list(entities.values()),
        "facts": facts,
        "events": [],
        "relations": relations,
    }


def demo_extraction(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """What the scripted demo model extracts: simple patterns standing in for an LLM."""
    text = " ".join(_user_lines(prompt))
    sections = set(schema.get("properties", {}))
    out: dict[str, Any] = {}
    if "user_profile" in sections:
        out["user_profile"] = _profile(text)
    if "learned_knowledge" in sections:
        items = []
        for m in _LESSON.finditer(text):
            lesson = m.group("text").strip()
            title = lesson.split(",")[-1].strip().rstrip(".")
            items.append(
                {
                    "title": _cut(title[:1].upper() + title[1:], 60),
                    "learning": lesson,
                    "context": "",
                    "tags": ["postgres"] if "postgres" in lesson.lower() else [],
                }
            )
        out["learned_knowledge"] = {"learnings": items}
    if "entity_memory" in sections:
        out["entity_memory"] = _entities(text, prompt)
    if "session_context" in sections:
        out["session_context"] = {"summary": "The user said: " + _cut(text, 300)} if text else None
    return out


@dataclass
class _Script:
    """The scripted model's side of the conversation (what a real LLM would decide)."""

    proposal_id: str = ""
    """The proposal made in the previous turn; a real model reads it from the tool result."""

    def tool_calls(self, prompt: str) -> list[tuple[str, dict[str, Any]]]:
        """Propose the lesson; approve it when Alice says yes in her next message."""
        if prompt.startswith("Lesson learned:"):
            return [
                (
                    "save_learning",
                    {
                        "title": "Backfill large tables in batches",
                        "learning": "Update a large Postgres table in batches of 10k rows so "
                        "that each lock stays short.",
                        "context": "backfilling or migrating big tables",
                        "tags": ["postgres", "migrations"],
                    },
                )
            ]
        if prompt.startswith("Yes, save it") and self.proposal_id:
            return [("approve_proposal", {"proposal_id": self.proposal_id})]
        return []

    @staticmethod
    def answer(prompt: str, info: Any) -> str:
        """The agent's fixed answers."""
        if prompt.startswith("Hi, I'm"):
            return "Nice to meet you, Alice. Short answers it is."
        if prompt.startswith("Lesson learned:"):
            return "Good lesson. Shall I save it for the engineering team?"
        if prompt.startswith("Yes, save it"):
            return "Saved for the engineering team."
        if prompt.startswith("Acme moved"):
            return "Noted: billing is on PostgreSQL 16 now."
        if "backfill" in prompt.lower():
            return (
                "Backfill in batches of about 10k rows per transaction so each lock stays short. "
                "Acme runs billing on PostgreSQL 16."
            )
        return "Noted."


def _reset(service: LearningService, where: str) -> None:
    """Forget what an earlier demo wrote, refusing to touch users the demo did not write."""
    for user in _USERS:
        data = service.export(user)
        sessions = {m["session_id"] for m in data["messages"]} - _SESSIONS
        if sessions:
            raise ConfigurationError(
                f"{where} holds conversations of {user!r} that the demo did not write (session "
                f"{sorted(sessions)[0]!r}); run the demo on its own file: learning-machines demo "
                "--db demo.db"
            )
    for user in _USERS:
        service.forget(user, keep_shared=False)


_LONG_ID = re.compile(r"\b([0-9a-f]{8})[0-9a-f]{24}\b")


def _print_turn(console: Console, user: str, message: str, result: RunResult, ms: float) -> None:
    console.print(f"[bold]{user}>[/bold] {message}")
    for call in result.tool_calls:
        # Ids as the CLI shows them: a unique start (8 characters) any command accepts.
        outcome = _LONG_ID.sub(r"\1", str(call.result or "").split(";")[0])
        console.print(f"  [dim]tool {call.name} → {_cut(outcome, 70)}[/dim]")
    console.print(f"[green]agent>[/green] {result.text}  [dim]({ms:.0f} ms)[/dim]")


def _learned(console: Console, service: LearningService) -> str:
    """Print what was learned; returns the id of a superseded fact (for `history`), if any."""
    profile = service.learnings(user_id="alice", learning_type="user_profile")
    console.print(
        Panel(
            profile[0].search_text if profile else "(nothing)",
            title="Alice's profile: private to her",
            title_align="left",
            border_style="green",
        )
    )
    rows = service.learnings(namespace=NAMESPACE, statuses=ALL_STATUSES, limit=None)
    table = Table(
        "store", "learning", title=f"Shared with the {NAMESPACE!r} namespace", title_justify="left"
    )
    superseded = ""
    for row in sorted(rows, key=lambda r: (r.learning_type, r.created_at, r.id)):
        text = _cut(row.search_text.replace("\n", " "), 200)
        if row.status == "superseded":
            superseded = superseded or row.id
            text = f"[strike]{text}[/strike] [dim](superseded by a newer fact)[/dim]"
        table.add_row(row.learning_type, text)
    console.print(table)
    episodes = service.learnings(user_id="alice", learning_type="episode", limit=None)
    console.print(
        f"Episodic memory keeps the {len(episodes)} messages of Alice's conversation (hers and "
        "the agent's) verbatim, private to her."
    )
    return superseded


def _curation(console: Console, service: LearningService) -> None:
    now = service.curate()
    console.print(f"Now: {now.summary()}.")
    later = service.curate(dry_run=True, now=utcnow() + timedelta(days=365))
    kinds: dict[str, int] = {}
    for action in later.archived:
        kinds[action.learning_type or "?"] = kinds.get(action.learning_type or "?", 0) + 1
    what = ", ".join(f"{kind}: {n}" for kind, n in sorted(kinds.items()))
    console.print(
        f"A year from now, unused (dry run): it would archive {len(later.archived)} learnings"
        + (f" ({what})" if what else "")
        + "; profiles and entities never decay. Archived rows keep their history and can be "
        "restored."
    )


def _explore(console: Console, db: str, superseded: str) -> None:
    lines = [
        f"learning-machines show --user alice{db}",
        f"learning-machines proposals list --status all{db}",
    ]
    if superseded:
        lines.append(f"learning-machines history {superseded[:8]}{db}")
    lines.append(f"learning-machines curate --dry-run{db}")
    console.print("\n[bold]Explore what the demo wrote:[/bold]")
    for line in lines:
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)


def run_demo(
    *, db: Db, db_option: str = "", model: str | None, keep: bool, console: Console
) -> bool:
    """Run the demo conversation on ``db`` and print what was learned and what Bob receives.

    ``db_option`` is what the printed commands need to find the same db (``--db PATH``, or
    nothing for the default). Returns ``True`` when the run is healthy: Alice's private
    profile stayed out of Bob's context.
    """
    started = time.perf_counter()
    script = _Script()
    scripted = model is None
    # A real model is checked (SDK, key) before anything is written.
    chosen: Any = (
        resolve_model(model)
        if model
        else ScriptedModel(
            answers=script.answer, extraction=demo_extraction, tool_calls=script.tool_calls
        )
    )
    if scripted:
        console.print(
            Panel(
                "No model configured, so a [bold]scripted model[/bold] stands in for the LLM: "
                "fixed answers and tool calls, and simple patterns instead of real extraction.\n"
                "Everything else is real: the SQLite file, the offline MiniLM embedder, hybrid "
                "search, the write gate, the background worker and curation.\nUse a real model "
                "with --model openai:gpt-4.1-mini (or LEARNING_MACHINES_MODEL).",
                title="scripted model",
                border_style="yellow",
            )
        )
    machine = LearningMachine(
        user_profile=True,
        session_context=True,
        learned_knowledge=LearnedKnowledgeConfig(
            mode=LearningMode.PROPOSE, namespace=NAMESPACE, read_namespaces=("global",)
        ),
        entity_memory=EntityMemoryConfig(namespace=NAMESPACE),
        episodic_memory=True,
    )
    agent = Agent(
        model=chosen, db=db, learning=machine, instructions="You are a helpful assistant."
    )
    service = machine.service
    try:
        if not keep:
            _reset(service, repr(db))
        console.print(Rule("Alice talks to her agent", align="left"))
        bob_context = bob_recalled = ""
        for user, session, message in DEMO_TURNS:
            # A person takes a few seconds to type the next message; background learning
            # catches up meanwhile (the answers themselves never wait for it).
            agent.wait_idle(timeout=300)
            if user == "bob":
                console.print(Rule("Bob asks a related question", align="left"))
            began = time.perf_counter()
            result = agent.run(message, user_id=user, session_id=session)
            _print_turn(console, user, message, result, (time.perf_counter() - began) * 1000)
            waiting = service.proposals.list(user_id=user, session_id=session)
            if waiting and waiting[0].id != script.proposal_id:
                script.proposal_id = waiting[0].id
                console.print(
                    f"  [yellow]PROPOSE:[/yellow] proposal {waiting[0].id[:8]} for the "
                    f"{waiting[0].namespace!r} namespace waits; nothing is saved until Alice "
                    "says yes in a later message"
                )
            if user == "bob" and result.context is not None:
                bob_context = result.context.text
                bob_recalled = "\n\n".join(result.context.blocks.values())
        agent.wait_idle(timeout=300)
        console.print(
            Panel(
                bob_recalled or "(nothing)",
                title="What Bob's agent recalled (its system prompt also gets tool guidance)",
                title_align="left",
                border_style="cyan",
            )
        )
        leaked = "vegetarian" in bob_context or "dark mode" in bob_context
        console.print(
            "Alice's private preferences in Bob's context: "
            + ("[bold red]YES (bug!)[/bold red]" if leaked else "[bold]no[/bold]")
        )
        console.print(Rule("What the machine learned", align="left"))
        superseded = _learned(console, service)
        _curation(console, service)
        console.print(
            f"Extraction calls: {machine.usage.calls} for {machine.usage.turns} turns (one per "
            f"turn for all stores). Demo took {time.perf_counter() - started:.1f} s."
        )
        _explore(console, f" {db_option}" if db_option else "", superseded)
    finally:
        agent.close()
        db.close()
    return not leaked
