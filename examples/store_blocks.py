"""Each built-in store's context block and tools, exactly as docs/stores.md shows them.

The doc's blocks are generated from this file, so they cannot drift from what the stores
really print. Runs offline: an in-memory SQLite database and the default MiniLM embedder.

    python examples/store_blocks.py                          # print every block
    python examples/store_blocks.py --write-docs docs/stores.md   # regenerate the doc's blocks

In docs/stores.md, a line ``<!-- store_blocks: NAME -->`` is followed by a ``text`` code block
that holds block NAME; ``--write-docs`` rewrites those code blocks and nothing else.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from learning_machines import LearningMachine, LearningMode
from learning_machines.db import SqliteDb
from learning_machines.embedders import MiniLMEmbedder
from learning_machines.machine import Turn
from learning_machines.stores import (
    EntityMemoryConfig,
    Episode,
    LearnedKnowledgeConfig,
    SessionContextConfig,
    UserProfileConfig,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Blocks:
    """One machine per store on a shared in-memory db, and the blocks collected from them."""

    def __init__(self) -> None:
        self.db = SqliteDb(":memory:")
        self.embedder = MiniLMEmbedder()
        self.blocks: dict[str, str] = {}

    def machine(self, **store: Any) -> LearningMachine:
        return LearningMachine(db=self.db, embedder=self.embedder, background=False, **store)

    async def turn(self, machine: LearningMachine, message: str = "") -> Turn:
        """A turn of Alice's, as the agent would begin it."""
        return await machine.abegin(
            message or None, user_id="alice", session_id="s1", now=NOW, message_required=False
        )

    async def show(self, name: str, machine: LearningMachine, slot: str, message: str) -> None:
        """Record the block ``slot`` recalls for ``message``, and its tools' signatures."""
        turn = await self.turn(machine, message)
        self.blocks[name] = turn.learned.blocks.get(slot, "")
        self.blocks[f"{slot} tools"] = "\n".join(
            f"{fn.__name__}{inspect.signature(fn)}" for fn in turn.tools.sync_callables()
        )


async def collect() -> dict[str, str]:
    """Every block, by name."""
    b = Blocks()

    profile = b.machine(user_profile=UserProfileConfig(mode=LearningMode.AGENTIC))
    await (await b.turn(profile)).tools.acall(
        "update_user_profile",
        {
            "name": "Alice Martin",
            "preferred_name": "Ali",
            "role": "staff engineer",
            "company": "Acme",
            "projects": ["billing migration"],
            "preferences": ["Python examples", "no emojis"],
            "communication_style": "concise",
        },
    )
    await b.show("user_profile", profile, "user_profile", "hi")

    session = b.machine(
        session_context=SessionContextConfig(mode=LearningMode.AGENTIC, enable_planning=True)
    )
    await (await b.turn(session)).tools.acall(
        "update_session_context",
        {
            "summary": "Moving billing from MySQL to PostgreSQL; decided to use logical "
            "replication.",
            "goal": "Cut over billing to PostgreSQL with no downtime",
            "plan": ["set up replication", "backfill history", "switch reads", "switch writes"],
            "progress": ["set up replication"],
        },
    )
    await b.show("session_context", session, "session_context", "where are we?")

    knowledge = b.machine(learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.AGENTIC))
    tools = (await b.turn(knowledge)).tools
    for item in (
        {
            "title": "Backfill before switching reads",
            "learning": "Backfill history before pointing reads at the new database, or "
            "reports show gaps.",
            "context": "database migrations",
            "tags": ["migration", "postgres"],
        },
        {
            "title": "Retry only idempotent calls",
            "learning": "Retry HTTP calls only when they are idempotent, with exponential backoff.",
            "context": "calling payment APIs",
            "tags": ["http"],
        },
        {
            "title": "Pin dependencies",
            "learning": "Pin exact versions in a lock file for reproducible builds.",
            "tags": ["python"],
        },
    ):
        await tools.acall("save_learning", item)
    await b.show(
        "learned_knowledge",
        knowledge,
        "learned_knowledge",
        "how should we switch reads to the new database?",
    )

    entities = b.machine(entity_memory=EntityMemoryConfig(mode=LearningMode.AGENTIC))
    tools = (await b.turn(entities)).tools
    for name, args in (
        (
            "save_entity",
            {
                "name": "Acme",
                "entity_type": "company",
                "description": "Alice's employer",
                "aliases": ["Acme Corp"],
            },
        ),
        ("save_entity_fact", {"entity": "Acme", "fact": "runs billing on MySQL"}),
        (
            "save_entity_fact",
            {
                "entity": "Acme",
                "fact": "runs billing on PostgreSQL",
                "replaces": "runs billing on MySQL",
            },
        ),
        (
            "save_entity_event",
            {"entity": "Acme", "event": "launched billing v2", "date": "2025-01-15"},
        ),
        ("save_entity_event", {"entity": "Acme", "event": "was founded", "date": "2015-06-01"}),
        (
            "save_entity_relation",
            {"subject": "Bob Stone", "relation": "is CEO of", "object": "Acme"},
        ),
        ("save_entity_fact", {"entity": "Bob Stone", "fact": "prefers weekly status emails"}),
    ):
        await tools.acall(name, args)
    await b.show("entity_memory facts", entities, "entity_memory", "What do we know about Acme?")
    await b.show("entity_memory events", entities, "entity_memory", "What happened with Acme?")

    episodic = b.machine(episodic_memory=True)
    await episodic.stores["episodic_memory"].aadd_episodes(
        [
            Episode(
                speaker="alice",
                text="My cat Miso hates the vacuum cleaner.",
                at=datetime(2025, 2, 3, 9, 15, tzinfo=UTC),
            ),
            Episode(
                speaker="assistant",
                text="Poor Miso! Try running it while she's outside.",
                at=datetime(2025, 2, 3, 9, 16, tzinfo=UTC),
            ),
            Episode(
                speaker="alice",
                text="Look at Miso's new bed",
                at=datetime(2025, 2, 20, 18, 2, tzinfo=UTC),
                caption="a grey cat asleep in a basket",
            ),
            Episode(
                speaker="alice",
                text="The billing cutover is planned for March.",
                at=datetime(2025, 2, 21, 10, 0, tzinfo=UTC),
            ),
        ],
        user_id="alice",
    )
    await b.show("episodic_memory", episodic, "episodic_memory", "how is my cat Miso doing?")
    b.db.close()
    return b.blocks


_MARKED = re.compile(r"(<!-- store_blocks: (?P<name>[^>]+?) -->\n```text\n)(.*?)(\n```)", re.S)


def render_docs(doc: str, blocks: dict[str, str]) -> str:
    """``doc`` with every marked ``text`` block replaced by the block it names."""

    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in blocks:
            raise KeyError(f"docs name a block {name!r} that examples/store_blocks.py lacks")
        return match.group(1) + blocks[name] + match.group(4)

    return _MARKED.sub(fill, doc)


def main(argv: list[str]) -> None:
    blocks = asyncio.run(collect())
    if argv[:1] == ["--write-docs"]:
        path = Path(argv[1])
        path.write_text(render_docs(path.read_text(encoding="utf-8"), blocks), encoding="utf-8")
        return
    for name, text in blocks.items():
        print(f"===== {name}\n{text}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
