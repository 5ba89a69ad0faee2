"""Print each built-in store's context block and tools, as shown in docs/stores.md.

Runs offline: an in-memory SQLite database and the default MiniLM embedder.

    python examples/store_blocks.py
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime
from typing import Any

from learning_machines import LearningMode
from learning_machines.db import SqliteDb
from learning_machines.embedders import MiniLMEmbedder
from learning_machines.stores import (
    BaseStore,
    EntityMemoryConfig,
    Episode,
    EpisodicMemoryConfig,
    LearnedKnowledgeConfig,
    SessionContextConfig,
    StoreResources,
    UserProfileConfig,
    WriteGate,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DB = SqliteDb(":memory:")
EMBEDDER = MiniLMEmbedder()


def bind(store: BaseStore) -> Any:
    """Attach a store to the database, as a LearningMachine does."""
    gate = WriteGate(
        store_name=store.learning_type,
        learning_type=store.learning_type,
        mode=store.mode,
        db=DB,
    )
    store.bind(StoreResources(name=store.learning_type, db=DB, embedder=EMBEDDER, gate=gate))
    return store


def turn(message: str = "", user: str = "alice") -> dict[str, Any]:
    return {"user_id": user, "session_id": "s1", "turn_id": "t1", "message": message, "now": NOW}


def tools(store: BaseStore) -> dict[str, Any]:
    return {t.__name__: t for t in store.get_tools(**turn())}


def show(title: str, store: BaseStore, block: str) -> None:
    print(f"===== {title} ({store.mode.name})")
    print(block)
    print("-- tools:")
    for name, fn in tools(store).items():
        print(f"   {name}{inspect.signature(fn)}")
    print()


async def main() -> None:
    profile = bind(UserProfileConfig(mode=LearningMode.AGENTIC).create_store())
    tools(profile)["update_user_profile"](
        name="Alice Martin",
        preferred_name="Ali",
        role="staff engineer",
        company="Acme",
        projects=["billing migration"],
        preferences=["Python examples", "no emojis"],
        communication_style="concise",
    )
    show("user_profile", profile, profile.build_context(await profile.arecall(**turn())))

    session = bind(
        SessionContextConfig(mode=LearningMode.AGENTIC, enable_planning=True).create_store()
    )
    tools(session)["update_session_context"](
        summary="Moving billing from MySQL to PostgreSQL; decided to use logical replication.",
        goal="Cut over billing to PostgreSQL with no downtime",
        plan=["set up replication", "backfill history", "switch reads", "switch writes"],
        progress=["set up replication"],
    )
    show("session_context", session, session.build_context(await session.arecall(**turn())))

    knowledge = bind(LearnedKnowledgeConfig(mode=LearningMode.AGENTIC).create_store())
    save = tools(knowledge)["save_learning"]
    save(
        title="Backfill before switching reads",
        learning="Backfill history before pointing reads at the new database, or reports "
        "show gaps.",
        context="database migrations",
        tags=["migration", "postgres"],
    )
    save(
        title="Retry only idempotent calls",
        learning="Retry HTTP calls only when they are idempotent, with exponential backoff.",
        context="calling payment APIs",
        tags=["http"],
    )
    save(
        title="Pin dependencies",
        learning="Pin exact versions in a lock file for reproducible builds.",
        tags=["python"],
    )
    recalled = await knowledge.arecall(**turn("how should we switch reads to the new database?"))
    show("learned_knowledge", knowledge, knowledge.build_context(recalled))

    entities = bind(EntityMemoryConfig(mode=LearningMode.AGENTIC).create_store())
    t = tools(entities)
    t["save_entity"](
        name="Acme", entity_type="company", description="Alice's employer", aliases=["Acme Corp"]
    )
    t["save_entity_fact"](entity="Acme", fact="runs billing on MySQL")
    t["save_entity_fact"](
        entity="Acme", fact="runs billing on PostgreSQL", replaces="runs billing on MySQL"
    )
    t["save_entity_event"](entity="Acme", event="launched billing v2", date="2025-01-15")
    t["save_entity_event"](entity="Acme", event="was founded", date="2015-06-01")
    t["save_entity_relation"](subject="Bob Stone", relation="is CEO of", object="Acme")
    t["save_entity_fact"](entity="Bob Stone", fact="prefers weekly status emails")
    facts = await entities.arecall(**turn("What do we know about Acme?"))
    show("entity_memory: 'What do we know about Acme?'", entities, entities.build_context(facts))
    events = await entities.arecall(**turn("What happened with Acme?"))
    show("entity_memory: 'What happened with Acme?'", entities, entities.build_context(events))

    episodes = bind(EpisodicMemoryConfig().create_store())
    await episodes.aadd_episodes(
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
    recalled_eps = await episodes.arecall(**turn("how is my cat Miso doing?"))
    show("episodic_memory", episodes, episodes.build_context(recalled_eps))


if __name__ == "__main__":
    asyncio.run(main())
