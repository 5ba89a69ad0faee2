"""``LearningMachinesStore`` against LangGraph's ``InMemoryStore`` on the same random operations.

Each sequence of puts, deletes, gets, searches (prefix, filter, query, paging), namespace
listings and mixed batches runs on both stores; every answer is compared. Where LangGraph
leaves the order of a page open (no query), each store's pages must be slices of its own full
ordering and hold the same items; everything else must be equal.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from langgraph.store.base import GetOp, MatchCondition, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from learning_machines.adapters.langgraph_store import LearningMachinesStore
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder

NAMESPACES = [
    ("user", "alice"),
    ("user", "alice", "notes"),
    ("user", "bob"),
    ("user", "bob", "notes", "work"),
    ("user",),
    ("docs",),
    ("docs", "guides"),
    ("team", "x", "notes"),
]
KEYS = ["k1", "k2", "k3", "k4"]
WORDS = ["tea", "coffee", "python", "postgres", "oslo", "paris", "music", "rust"]
TAGS = ["red", "blue", "green"]


def _value(rng: random.Random) -> dict[str, Any]:
    return {
        "text": " ".join(rng.sample(WORDS, 3)),
        "n": rng.randint(0, 9),
        "tag": rng.choice(TAGS),
        "nested": {"k": rng.choice(TAGS)},
        "items": rng.sample([1, 2, 3], 2),
    }


def _prefix(rng: random.Random) -> tuple[str, ...]:
    ns = rng.choice(NAMESPACES)
    return ns[: rng.randint(0, len(ns))]


def _filter(rng: random.Random) -> dict[str, Any] | None:
    return rng.choice(
        [
            None,
            {"tag": rng.choice(TAGS)},
            {"n": {"$gt": rng.randint(0, 9)}},
            {"n": {"$lte": rng.randint(0, 9)}, "tag": {"$ne": rng.choice(TAGS)}},
            {"nested": {"k": rng.choice(TAGS)}},
            {"items": rng.sample([1, 2, 3], 2)},
        ]
    )


def _conditions(rng: random.Random) -> tuple[MatchCondition, ...] | None:
    out = []
    for _ in range(rng.randint(0, 2)):
        ns = rng.choice(NAMESPACES)
        path = [rng.choice([label, "*"]) for label in ns[: rng.randint(1, len(ns))]]
        out.append(MatchCondition(match_type=rng.choice(["prefix", "suffix"]), path=tuple(path)))
    return tuple(out) or None


def _rows(items: list[Any]) -> list[tuple[tuple[str, ...], str, str]]:
    return sorted((i.namespace, i.key, json.dumps(i.value, sort_keys=True)) for i in items)


class Reference(InMemoryStore):
    """LangGraph's ``InMemoryStore``, except that it lists only namespaces holding items.

    ``InMemoryStore`` keeps listing a namespace after its last item is deleted, and lists one
    that was only read (a ``defaultdict``); LangGraph's ``PostgresStore`` and ours list
    namespaces from the items that exist.
    """

    def batch(self, ops: Any) -> Any:
        for namespace in [ns for ns, items in self._data.items() if not items]:
            del self._data[namespace]
        return super().batch(ops)


def _stores(db: Db) -> tuple[InMemoryStore, LearningMachinesStore]:
    embedder = HashEmbedder()
    memory = Reference(
        index={
            "dims": embedder.dimensions,
            "embed": lambda texts: [list(map(float, v)) for v in embedder.embed(texts)],
            "fields": ["text"],
        }
    )
    ours = LearningMachinesStore(db, embedder=embedder, fields=("text",))
    return memory, ours


def _check_search(
    memory: InMemoryStore, ours: LearningMachinesStore, rng: random.Random, where: str
) -> None:
    prefix, flt = _prefix(rng), _filter(rng)
    query = rng.choice([None, None, rng.choice(WORDS)])
    limit, offset = rng.randint(1, 6), rng.randint(0, 3)
    args: dict[str, Any] = {"filter": flt, "query": query}
    theirs_all = memory.search(prefix, limit=1000, **args)
    ours_all = ours.search(prefix, limit=1000, **args)
    assert _rows(ours_all) == _rows(theirs_all), where
    page = ours.search(prefix, limit=limit, offset=offset, **args)
    assert len(page) == max(0, min(limit, len(ours_all) - offset)), where
    if query is None:  # one order, paged consistently
        assert [(i.namespace, i.key) for i in page] == [
            (i.namespace, i.key) for i in ours_all[offset : offset + limit]
        ], where
    else:
        assert set(_rows(page)) <= set(_rows(ours_all)), where


def _run_sequence(db: Db, seed: int, steps: int) -> None:
    rng = random.Random(seed)
    memory, ours = _stores(db)
    for step in range(steps):
        where = f"seed {seed} step {step}"
        kind = rng.choices(
            ["put", "delete", "get", "search", "list", "batch"], weights=[8, 2, 3, 4, 2, 1]
        )[0]
        ns, key = rng.choice(NAMESPACES), rng.choice(KEYS)
        if kind == "put":
            value = _value(rng)
            index = rng.choice([None, None, False, ["text"]])
            memory.put(ns, key, value, index=index)
            ours.put(ns, key, value, index=index)
        elif kind == "delete":
            memory.delete(ns, key)
            ours.delete(ns, key)
        elif kind == "get":
            theirs, mine = memory.get(ns, key), ours.get(ns, key)
            assert (mine is None) == (theirs is None), where
            if mine is not None and theirs is not None:
                assert (mine.namespace, mine.key, mine.value) == (
                    theirs.namespace,
                    theirs.key,
                    theirs.value,
                ), where
        elif kind == "search":
            _check_search(memory, ours, rng, where)
        elif kind == "list":
            args: dict[str, Any] = {
                "max_depth": rng.choice([None, 1, 2, 3]),
                "limit": rng.randint(1, 10),
                "offset": rng.randint(0, 2),
            }
            conditions = _conditions(rng)
            theirs_ns = memory.batch([_list_op(conditions, **args)])[0]
            ours_ns = ours.batch([_list_op(conditions, **args)])[0]
            assert ours_ns == theirs_ns, where
        else:  # reads in a batch see the store as it was before the batch's puts
            value = _value(rng)
            ops: list[Any] = [
                PutOp(ns, key, value),
                GetOp(ns, key),
                SearchOp(ns[:1], limit=100),
                PutOp(ns, key, None if rng.random() < 0.5 else _value(rng)),
            ]
            theirs_b, ours_b = memory.batch(ops), ours.batch(ops)
            assert (ours_b[1] is None) == (theirs_b[1] is None), where
            assert _rows(ours_b[2]) == _rows(theirs_b[2]), where
    for ns in NAMESPACES:  # the end state is the same; then empty the db for the next seed
        for key in KEYS:
            theirs, mine = memory.get(ns, key), ours.get(ns, key)
            assert (None if mine is None else mine.value) == (
                None if theirs is None else theirs.value
            ), f"seed {seed} end state {ns} {key}"
            ours.delete(ns, key)
    assert ours.list_namespaces() == []


def _list_op(conditions: tuple[MatchCondition, ...] | None, **args: Any) -> Any:
    from langgraph.store.base import ListNamespacesOp

    return ListNamespacesOp(match_conditions=conditions, **args)


@pytest.mark.parametrize("block", range(4))
def test_random_operation_sequences_match_langgraphs_in_memory_store(db: Db, block: int) -> None:
    for seed in range(block * 10, block * 10 + 10):
        _run_sequence(db, seed, steps=40)
