"""Isolation matrix: users × namespaces × every read path of the built-in stores.

Alice's private data carries the word "zanzibar"; nothing Bob can reach may ever contain it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from learning_machines._modes import LearningMode
from learning_machines.exceptions import ConfigurationError, IsolationError
from learning_machines.stores import (
    EntityMemoryConfig,
    Episode,
    EpisodicMemoryConfig,
    LearnedKnowledgeConfig,
    SessionContextConfig,
    UserProfileConfig,
)

from .conftest import ctx, tool

SECRET = "zanzibar"
QUERIES = [SECRET, f"what do we know about {SECRET}", f"what happened with {SECRET}", "acme"]


async def call_all_tools(store: Any, context: dict[str, Any]) -> list[str]:
    """Every read tool the store offers Bob, with every query (and names, for lookups)."""
    out: list[str] = []
    for t in store.get_tools(**context):
        name = t.__name__
        if name.startswith("search_"):
            out.extend([t(q) for q in QUERIES])
        elif name == "lookup_entity":
            for q in [SECRET, "Acme", "Acme Corp", "Zanzibar Ltd"]:
                out.append(t(q))
                out.append(t(q, history=True))
    return out


async def recall_all(store: Any, context: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for q in QUERIES:
        data = await store.arecall(**{**context, "message": q})
        out.extend([repr(data), store.build_context(data)])
    return out


def assert_clean(outputs: list[str]) -> None:
    # A lookup that finds nothing echoes the name asked for; that is not a leak.
    leaked = [
        o for o in outputs if SECRET in o.lower() and not o.startswith("Nothing is remembered")
    ]
    assert not leaked, leaked


async def test_user_profile(bind):
    store = bind(UserProfileConfig(mode=LearningMode.AGENTIC).create_store())
    await tool(store, "update_user_profile", **ctx("alice"))(name=f"Alice {SECRET}")
    assert SECRET in store.build_context(await store.arecall(**ctx("alice")))
    bob = ctx("bob")
    assert await store.arecall(**bob) is None
    assert_clean(await recall_all(store, bob))
    await tool(store, "update_user_profile", **bob)(name="Bob")
    assert (await store.arecall(**ctx("alice"))).name == f"Alice {SECRET}"
    assert (await store.arecall(**bob)).name == "Bob"


async def test_session_context_guessed_session_id(bind):
    store = bind(SessionContextConfig(mode=LearningMode.AGENTIC).create_store())
    await tool(store, "update_session_context", **ctx("alice", "s-42"))(summary=SECRET)
    # Bob uses (or guesses) the same session id: he never sees Alice's context.
    bob = ctx("bob", "s-42")
    assert await store.arecall(**bob) is None
    assert_clean(await recall_all(store, bob))
    await tool(store, "update_session_context", **bob)(summary="bob's own")
    assert (await store.arecall(**ctx("alice", "s-42"))).summary == SECRET
    assert (await store.arecall(**bob)).summary == "bob's own"


@pytest.mark.parametrize("namespace", ["user", "team-a"])
async def test_learned_knowledge(bind, namespace):
    store = bind(
        LearnedKnowledgeConfig(mode=LearningMode.AGENTIC, namespace=namespace).create_store()
    )
    await tool(store, "save_learning", **ctx("alice"))(
        title=f"{SECRET} tip", learning=f"{SECRET} acme tip", tags=[SECRET]
    )
    alice_sees = await store.asearch(SECRET, user_id="alice")
    assert len(alice_sees) == 1
    others = [
        bind(LearnedKnowledgeConfig(namespace="team-b", read_namespaces=("global",)).create_store())
    ]
    if namespace == "user":
        others.append(store)  # Bob, same store: the private namespace is Alice's only
    for other in others:
        bob = ctx("bob")
        assert_clean(await recall_all(other, bob))
        assert_clean(await call_all_tools(other, bob))
        assert_clean([repr(await other.asearch(q, user_id="bob")) for q in QUERIES])
    if namespace == "team-a":
        # A shared namespace is shared: Bob, configured with it, reads it (author recorded).
        [hit] = await store.asearch(SECRET, user_id="bob")
        assert hit.learning.user_id == "alice"
        assert hit.learning.provenance["user_id"] == "alice"


async def test_learned_knowledge_private_needs_user(bind):
    store = bind(LearnedKnowledgeConfig(namespace="user").create_store())
    with pytest.raises((ConfigurationError, IsolationError)):
        await store.arecall(message=SECRET)
    with pytest.raises((ConfigurationError, IsolationError)):
        await store.apply_write({"title": "t", "learning": "l"})


@pytest.mark.parametrize("namespace", ["user", "team-a"])
async def test_entity_memory(bind, namespace):
    store = bind(EntityMemoryConfig(mode=LearningMode.AGENTIC, namespace=namespace).create_store())
    alice = ctx("alice")
    await tool(store, "save_entity", **alice)(
        name="Acme", entity_type="company", description=f"{SECRET} maker", aliases=["Acme Corp"]
    )
    await tool(store, "save_entity_fact", **alice)(entity="Acme", fact=f"uses {SECRET}")
    await tool(store, "save_entity_event", **alice)(
        entity="Acme", event=f"{SECRET} launch", date="2025-01-15"
    )
    await tool(store, "save_entity_relation", **alice)(
        subject="Bob", relation="is CEO of", object=f"{SECRET} Ltd"
    )
    await tool(store, "save_entity", **alice)(name=f"{SECRET} Ltd", entity_type="company")
    assert SECRET in "\n".join(await call_all_tools(store, alice))
    others = [bind(EntityMemoryConfig(namespace="team-b").create_store())]
    if namespace == "user":
        others.append(store)
    bob = ctx("bob")
    for other in others:
        assert_clean(await recall_all(other, bob))
        assert_clean(await call_all_tools(other, bob))
        assert_clean([repr(await other.alookup(n, user_id="bob")) for n in ["Acme", "Acme Corp"]])
    if namespace == "user":
        # Bob's own "Acme" is a different entity; Alice's stays untouched by his facts.
        await tool(store, "save_entity_fact", **bob)(entity="Acme", fact="is Bob's client")
        [bob_acme] = (await store.alookup("Acme", user_id="bob")).entities
        assert [f.content["fact"] for f in bob_acme.facts] == ["is Bob's client"]
        [alice_acme] = (await store.alookup("Acme", user_id="alice")).entities
        assert [f.content["fact"] for f in alice_acme.facts] == [f"uses {SECRET}"]
        assert bob_acme.entity.id != alice_acme.entity.id


async def test_episodic_memory(bind):
    store = bind(EpisodicMemoryConfig().create_store())
    await store.aadd_episodes(
        [
            Episode(
                speaker="alice",
                text=f"my password hint is {SECRET}",
                at=datetime(2024, 1, 1, tzinfo=UTC),
                session_id="s1",
            )
        ],
        user_id="alice",
    )
    assert len(await store.asearch(SECRET, user_id="alice")) == 1
    bob = ctx("bob", "s1")
    assert_clean(await recall_all(store, bob))
    assert_clean(await call_all_tools(store, bob))
    assert_clean([repr(await store.asearch(q, user_id="bob", session_id="s1")) for q in QUERIES])
    with pytest.raises(ConfigurationError):
        await store.arecall(message=SECRET)
