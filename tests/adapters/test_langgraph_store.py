"""``LearningMachinesStore``: the namespace mapping, isolation, history, curation, search."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from langgraph.store.base import InvalidNamespaceError

from learning_machines import (
    ConfigurationError,
    IsolationError,
    LearningMachine,
    ValidationError,
)
from learning_machines.adapters._langgraph_scopes import value_matches
from learning_machines.adapters.langgraph_store import LearningMachinesStore
from learning_machines.curation import CurationPolicy
from learning_machines.db import PRIVATE_NAMESPACE, Db, LearningFilter, ListLearnings
from learning_machines.embedders import HashEmbedder


def _store(db: Db, **options: Any) -> LearningMachinesStore:
    return LearningMachinesStore(db, embedder=HashEmbedder(), **options)


def test_user_namespaces_are_private_rows_of_that_user_and_others_are_shared(db: Db) -> None:
    store = _store(db)
    store.put(("user", "alice", "memories"), "m1", {"text": "likes green tea"})
    store.put(("docs", "guides"), "g1", {"text": "deploy on fridays? never"})

    private = db.run(
        ListLearnings(
            filter=LearningFilter(namespaces=(PRIVATE_NAMESPACE,), reader_user_id="alice")
        )
    )
    assert [(r.learning_type, r.user_id, r.content["key"]) for r in private] == [
        ("langgraph", "alice", "m1")
    ]
    bob_reads = db.run(
        ListLearnings(filter=LearningFilter(namespaces=(PRIVATE_NAMESPACE,), reader_user_id="bob"))
    )
    assert bob_reads == []  # the db's own isolation rule hides alice's item from bob
    shared = db.run(ListLearnings(filter=LearningFilter(namespaces=("langgraph:docs.guides",))))
    assert [r.content["value"] for r in shared] == [{"text": "deploy on fridays? never"}]


def test_a_store_bound_to_a_user_never_reaches_another_users_namespace(db: Db) -> None:
    store = _store(db)
    store.put(("user", "alice", "memories"), "m1", {"text": "alice's secret"})
    store.put(("user", "bob", "memories"), "m1", {"text": "bob's secret"})
    store.put(("docs",), "d1", {"text": "shared handbook"})
    bob = store.for_user("bob")

    for attempt in (
        lambda: bob.get(("user", "alice", "memories"), "m1"),
        lambda: bob.put(("user", "alice", "memories"), "m2", {"text": "planted"}),
        lambda: bob.delete(("user", "alice", "memories"), "m1"),
        lambda: bob.search(("user", "alice")),
        lambda: bob.search(("user", "alice", "memories"), query="secret"),
    ):
        with pytest.raises(IsolationError, match="bound to user 'bob'"):
            attempt()

    found = bob.search((), query="secret", limit=50)
    assert sorted(i.value["text"] for i in found) == ["bob's secret", "shared handbook"]
    assert bob.search(("user",), limit=50)[0].value == {"text": "bob's secret"}
    assert bob.list_namespaces() == [("docs",), ("user", "bob", "memories")]
    assert store.get(("user", "alice", "memories"), "m2") is None  # nothing was planted
    assert store.get(("user", "alice", "memories"), "m1") is not None


def test_forget_and_export_treat_a_users_langgraph_items_as_theirs(db: Db) -> None:
    machine = LearningMachine(db=db, embedder=HashEmbedder(), background=False)
    store = LearningMachinesStore.from_machine(machine)
    store.put(("user", "alice", "memories"), "m1", {"text": "alice likes tea"})
    store.put(("user", "bob", "memories"), "m1", {"text": "bob likes coffee"})

    exported = machine.service.export("alice")
    assert [row["content"]["key"] for row in exported["learnings"]] == ["m1"]
    machine.service.forget("alice")
    assert store.get(("user", "alice", "memories"), "m1") is None
    item = store.get(("user", "bob", "memories"), "m1")
    assert item is not None
    assert item.value == {"text": "bob likes coffee"}


def test_every_put_is_kept_in_history_and_created_at_survives_updates(db: Db) -> None:
    machine = LearningMachine(db=db, embedder=HashEmbedder(), background=False)
    store = LearningMachinesStore.from_machine(machine)
    ns = ("docs",)
    store.put(ns, "k", {"text": "v1"})
    first = store.get(ns, "k")
    store.put(ns, "k", {"text": "v2"})
    second = store.get(ns, "k")
    assert first is not None
    assert second is not None
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    row = db.run(ListLearnings(filter=LearningFilter(namespaces=("langgraph:docs",))))[0]
    history = machine.service.history(row.id)
    assert [h.action for h in history] == ["create", "update"]
    assert history[1].old is not None
    assert history[1].old["content"]["value"] == {"text": "v1"}
    store.delete(ns, "k")
    assert [h.action for h in machine.service.history(row.id)][-1] == "delete"


def test_curation_leaves_langgraph_items_alone(db: Db) -> None:
    machine = LearningMachine(db=db, embedder=HashEmbedder(), background=False)
    store = LearningMachinesStore.from_machine(machine)
    ns = ("user", "alice", "memories")
    for key in ("a", "b", "c"):  # the same text three times: exact duplicates to curation
        store.put(ns, key, {"text": "the user likes green tea"})
    report = machine.service.curate(now=_far_future())  # ten years on, never recalled
    assert report.merged == []
    assert report.superseded == []
    assert report.archived == []
    assert [store.get(ns, key) is not None for key in ("a", "b", "c")] == [True, True, True]


def _far_future() -> Any:
    from learning_machines.db import utcnow

    return utcnow() + timedelta(days=3650)


def test_the_policy_is_what_keeps_them(db: Db) -> None:
    # With the default policy of an unknown type, the same items would be merged and archived.
    machine = LearningMachine(db=db, embedder=HashEmbedder(), background=False)
    store = LearningMachinesStore.from_machine(machine)
    ns = ("user", "alice", "memories")
    for key in ("a", "b"):
        store.put(ns, key, {"text": "the user likes green tea"})
    machine.service.curator.policies["langgraph"] = CurationPolicy()
    report = machine.service.curate(now=_far_future())
    assert report.merged or report.superseded or report.archived


def test_search_ranks_by_query_and_filters_by_value(db: Db) -> None:
    store = _store(db, fields=("text",))
    ns = ("user", "alice", "memories")
    store.put(ns, "tea", {"text": "Alice drinks green tea every morning", "kind": "habit"})
    store.put(ns, "oslo", {"text": "Alice moved to Oslo in May", "kind": "fact"})
    store.put(ns, "rust", {"text": "Alice writes Rust at work", "kind": "fact"})
    store.put(ns, "raw", {"text": "tea tea tea"}, index=False)  # found by filter, not by query

    best = store.search(("user", "alice"), query="which tea does alice drink", limit=1)
    assert best[0].key == "tea"
    assert best[0].score is not None
    facts = store.search(("user", "alice"), filter={"kind": "fact"}, limit=10)
    assert sorted(i.key for i in facts) == ["oslo", "rust"]
    everything = store.search(("user", "alice"), query="tea", limit=10)
    assert {i.key for i in everything} == {"tea", "oslo", "rust", "raw"}
    assert everything[-1].score is None  # unindexed items come last, unscored


def test_keyword_search_without_an_embedder(db: Db) -> None:
    store = LearningMachinesStore(db)
    store.put(("docs",), "a", {"text": "postgres vacuum settings"})
    store.put(("docs",), "b", {"text": "python packaging"})
    assert store.search(("docs",), query="vacuum", limit=1)[0].key == "a"


def test_confused_input_is_refused_with_the_fix(db: Db) -> None:
    store = _store(db)
    with pytest.raises(InvalidNamespaceError):
        store.put(("docs.guides",), "k", {"text": "dots are LangGraph's separator"})
    with pytest.raises(InvalidNamespaceError):
        store.get(("a.b",), "k")
    with pytest.raises(ValidationError, match="not JSON"):
        store.put(("docs",), "k", {"when": object()})
    with pytest.raises(NotImplementedError, match="TTL"):
        store.put(("docs",), "k", {"text": "x"}, ttl=5)
    with pytest.raises(ValidationError, match="user_id"):
        store.put(("user", " padded"), "k", {"text": "x"})
    with pytest.raises(ValidationError, match="must not be negative"):
        store.search(("docs",), limit=-1)
    with pytest.raises(ConfigurationError, match="must end with"):
        LearningMachinesStore(db, user_namespaces=[("{user_id}", "memories")])
    with pytest.raises(ConfigurationError, match="overlap"):
        LearningMachinesStore(db, user_namespaces=[("u", "{user_id}"), ("u", "x", "{user_id}")])


def test_a_custom_user_namespace(db: Db) -> None:
    store = _store(db, user_namespaces=[("memories", "{user_id}")])
    store.put(("memories", "carol"), "k", {"text": "carol's note"})
    rows = db.run(
        ListLearnings(filter=LearningFilter(namespaces=("user",), reader_user_id="carol"))
    )
    assert [r.content["namespace"] for r in rows] == [["memories", "carol"]]
    with pytest.raises(IsolationError):
        store.for_user("dave").get(("memories", "carol"), "k")


def test_value_filters_follow_langgraph() -> None:
    value = {"n": 3, "tag": "red", "nested": {"k": "x"}, "items": [1, 2]}
    assert value_matches(value, {"n": {"$gte": 3, "$lt": 4}})
    assert value_matches(value, {"nested": {"k": "x"}, "items": [1, 2]})
    assert not value_matches(value, {"items": [2, 1]})
    assert not value_matches(value, {"missing": {"$gt": 1}})  # missing is not greater
    assert value_matches(value, {"tag": {"$ne": "blue"}})
    with pytest.raises(ValueError, match="unknown filter operator"):
        value_matches(value, {"n": {"$in": [3]}})


async def test_concurrent_writers_leave_one_whole_value_per_key(db: Db) -> None:
    import asyncio

    store = _store(db)
    other = _store(db)  # a second store on the same db, as a second worker would have
    ns = ("user", "alice", "memories")
    writes = [
        (s.aput(ns, "same", {"text": f"version {i}", "i": i}))
        for i, s in enumerate([store, other] * 5)
    ]
    writes += [store.aput(ns, f"k{i}", {"text": f"note {i}"}) for i in range(10)]
    await asyncio.gather(*writes)
    same = await other.aget(ns, "same")
    assert same is not None
    assert same.value == {"text": f"version {same.value['i']}", "i": same.value["i"]}
    found = await store.asearch(ns, limit=100)
    assert len(found) == 11
