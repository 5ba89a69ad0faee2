"""Learnings on every backend: writes, reads, isolation, history, transactions."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from learning_machines.db import (
    Change,
    CountLearnings,
    Db,
    DeleteLearnings,
    GetLearnings,
    Learning,
    LearningFilter,
    ListEmbedders,
    ListHistory,
    ListLearnings,
    MarkRecalled,
    PutLearning,
    SetEmbeddings,
    content_hash,
    utcnow,
)
from learning_machines.exceptions import IsolationError, ValidationError

CREATE = Change(action="create", actor={"store": "test"}, reason="test")


def uid(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def vec(key: str, dim: int = 8) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=dim)
    return tuple(float(x) for x in v / np.linalg.norm(v))


def note(text: str, *, user: str | None = None, ns: str = "user", **kw: Any) -> Learning:
    kw.setdefault("content", {"text": text})
    return Learning(learning_type="note", namespace=ns, user_id=user, search_text=text, **kw)


def put(db: Db, learning: Learning, change: Change = CREATE) -> Learning:
    return db.run(PutLearning(learning=learning, change=change))


def mine(user: str) -> LearningFilter:
    return LearningFilter(namespaces=("user",), reader_user_id=user)


def test_put_then_get_round_trips_every_field(db: Db) -> None:
    user = uid()
    now = utcnow()
    x = note(
        "Alice prefers tea",
        user=user,
        session_id=uid("s"),
        agent_id="agent",
        team_id="team",
        entity_id="alice",
        embedding=(0.5, -0.25, 1.0),
        embedder="emb",
        valid_from=now - timedelta(days=1),
        provenance={"user_id": user, "turn_id": "t1", "merged": [{"id": "x"}]},
        content={"text": "Alice prefers tea", "nested": {"n": [1, 2.5, None, True]}},
        feedback=1.5,
        recall_count=2,
    )
    assert put(db, x) == x
    [got] = db.run(GetLearnings(ids=(x.id,), filter=mine(user)))
    assert got.embedding is not None
    assert np.allclose(got.embedding, x.embedding or ())
    assert dataclasses.replace(got, embedding=x.embedding) == x
    assert got.content_hash == content_hash("alice prefers tea.")


def test_put_same_id_replaces_and_keeps_history(db: Db) -> None:
    user = uid()
    x = put(db, note("likes tea", user=user))
    y = dataclasses.replace(x, search_text="likes coffee", updated_at=utcnow())
    put(db, y, Change(action="update", reason="changed mind", turn_id="t2"))
    assert db.run(CountLearnings(filter=mine(user))) == 1
    [got] = db.run(GetLearnings(ids=(x.id,), filter=mine(user)))
    assert got.search_text == "likes coffee"
    db.run(DeleteLearnings(ids=(x.id,), change=Change(action="delete", reason="gone")))
    history = db.run(ListHistory(learning_id=x.id))
    assert [h.action for h in history] == ["create", "update", "delete"]
    assert history[0].old is None
    assert history[0].new is not None
    assert history[1].old is not None
    assert history[1].old["search_text"] == "likes tea"
    assert history[1].new is not None
    assert history[1].new["search_text"] == "likes coffee"
    assert history[1].reason == "changed mind"
    assert history[1].turn_id == "t2"
    assert history[2].new is None
    assert history[2].old is not None
    assert all(h.user_id == user for h in history)
    assert all("embedding" not in (h.old or {}) for h in history)


def test_private_rows_never_reach_another_user(db: Db) -> None:
    alice, bob = uid("alice"), uid("bob")
    secret = put(
        db, note("alice secret password hint", user=alice, embedding=vec("a"), embedder="e")
    )
    # Bob reads his own private namespace, shared namespaces, or everything he may see.
    for f in (
        mine(bob),
        LearningFilter(reader_user_id=bob),
        LearningFilter(namespaces=("user", "global"), reader_user_id=bob),
        LearningFilter(reader_user_id=bob, user_id=alice),
        LearningFilter(),
    ):
        assert db.run(GetLearnings(ids=(secret.id,), filter=f)) == []
        assert secret.id not in [x.id for x in db.run(ListLearnings(filter=f, limit=None))]
        assert db.run(CountLearnings(filter=dataclasses.replace(f, ids=(secret.id,)))) == 0
    # Alice sees it.
    assert db.run(GetLearnings(ids=(secret.id,), filter=mine(alice)))[0].id == secret.id


def test_reading_private_namespace_without_reader_is_refused(db: Db) -> None:
    with pytest.raises(IsolationError):
        db.run(ListLearnings(filter=LearningFilter(namespaces=("user",))))


def test_shared_namespace_is_visible_to_everyone(db: Db) -> None:
    ns = uid("team")
    x = put(db, note("deploys happen on friday", user=uid(), ns=ns))
    for reader in (uid(), None):
        f = LearningFilter(namespaces=(ns,), reader_user_id=reader)
        assert [y.id for y in db.run(ListLearnings(filter=f))] == [x.id]


def test_get_returns_requested_order_any_status_and_skips_missing(db: Db) -> None:
    user = uid()
    a = put(db, note("a", user=user))
    b = put(db, note("b", user=user, status="archived"))
    got = db.run(GetLearnings(ids=(b.id, "missing", a.id), filter=mine(user)))
    assert [x.id for x in got] == [b.id, a.id]


def test_list_orders_filters_and_pages(db: Db) -> None:
    user = uid()
    t0 = utcnow()
    rows = [
        put(
            db,
            note(
                f"row {i}",
                user=user,
                created_at=t0 + timedelta(seconds=i),
                updated_at=t0 + timedelta(seconds=10 - i),
                entity_id=f"e{i % 2}",
            ),
        )
        for i in range(5)
    ]
    put(db, note("old", user=user, status="superseded"))
    by_updated = db.run(ListLearnings(filter=mine(user)))
    assert [x.id for x in by_updated] == [x.id for x in rows]
    by_created = db.run(ListLearnings(filter=mine(user), order_by="created_at", ascending=True))
    assert [x.id for x in by_created] == [x.id for x in rows]
    page = db.run(ListLearnings(filter=mine(user), order_by="created_at", limit=2, offset=1))
    assert [x.id for x in page] == [rows[3].id, rows[2].id]
    f = dataclasses.replace(mine(user), entity_ids=("e0",))
    assert db.run(CountLearnings(filter=f)) == 3
    f = dataclasses.replace(mine(user), statuses=("active", "superseded"))
    assert db.run(CountLearnings(filter=f)) == 6
    f = dataclasses.replace(mine(user), content_hash=content_hash("ROW 3"))
    assert [x.id for x in db.run(ListLearnings(filter=f))] == [rows[3].id]


def test_as_of_sees_the_past(db: Db) -> None:
    user = uid()
    t0 = utcnow() - timedelta(days=10)
    old = put(db, note("lives in paris", user=user, created_at=t0, updated_at=t0))
    t1 = t0 + timedelta(days=5)
    new = put(db, note("lives in berlin", user=user, created_at=t1, updated_at=t1))
    put(
        db,
        dataclasses.replace(old, status="superseded", superseded_by=new.id, updated_at=t1),
        Change(action="supersede"),
    )
    now = [x.id for x in db.run(ListLearnings(filter=mine(user)))]
    assert now == [new.id]
    then = dataclasses.replace(mine(user), as_of=t0 + timedelta(days=1))
    assert [x.id for x in db.run(ListLearnings(filter=then))] == [old.id]


def test_provenance_user_filter(db: Db) -> None:
    ns, author = uid("ns"), uid()
    x = put(db, note("shared fact", user=None, ns=ns, provenance={"user_id": author}))
    put(db, note("other fact", user=None, ns=ns, provenance={"user_id": uid()}))
    f = LearningFilter(namespaces=(ns,), provenance_user_id=author)
    assert [y.id for y in db.run(ListLearnings(filter=f))] == [x.id]


def test_mark_recalled_counts_without_touching_updated_at(db: Db) -> None:
    user = uid()
    x = put(db, note("recall me", user=user))
    at = utcnow()
    db.run(MarkRecalled(ids=(x.id,), at=at))
    db.run(MarkRecalled(ids=(x.id,), at=at))
    [got] = db.run(GetLearnings(ids=(x.id,), filter=mine(user)))
    assert got.recall_count == 2
    assert got.last_recalled_at is not None
    assert abs((got.last_recalled_at - at).total_seconds()) < 0.01
    assert abs((got.updated_at - x.updated_at).total_seconds()) < 0.01


def test_delete_counts_rows_and_ignores_missing(db: Db) -> None:
    user = uid()
    a, b = put(db, note("a", user=user)), put(db, note("b", user=user))
    assert db.run(DeleteLearnings(ids=(a.id, "missing"), change=Change(action="delete"))) == 1
    assert [x.id for x in db.run(ListLearnings(filter=mine(user)))] == [b.id]


def test_embedders_listed_and_replaced(db: Db) -> None:
    ns = uid("ns")
    a = put(db, note("a", ns=ns, embedding=vec("a"), embedder="old"))
    b = put(db, note("b", ns=ns, embedding=vec("b"), embedder="old"))
    put(db, note("c", ns=ns))
    f = LearningFilter(namespaces=(ns,))
    assert db.run(ListEmbedders(filter=f)) == {"old": 2}
    n = db.run(SetEmbeddings(vectors=((a.id, vec("a2", 4)), (b.id, vec("b2", 4))), embedder="new"))
    assert n == 2
    assert db.run(ListEmbedders(filter=f)) == {"new": 2}
    [got] = db.run(GetLearnings(ids=(a.id,), filter=f))
    assert got.embedder == "new"
    assert got.embedding is not None
    assert len(got.embedding) == 4
    assert db.run(ListEmbedders(all_rows=True)).get("new", 0) >= 2


@pytest.mark.parametrize("bad", [(0.1, float("nan")), (float("inf"), 0.2), ()])
def test_non_finite_or_empty_vectors_are_refused_and_nothing_changes(
    db: Db, bad: tuple[float, ...]
) -> None:
    ns = uid("ns")
    kept = put(db, note("kept", ns=ns, embedding=vec("k"), embedder="e"))
    f = LearningFilter(namespaces=(ns,))
    [before] = db.run(GetLearnings(ids=(kept.id,), filter=f))
    with pytest.raises(ValidationError, match="finite"):
        db.run(PutLearning(learning=note("new", ns=ns, embedding=bad, embedder="e"), change=CREATE))
    with pytest.raises(ValidationError, match="finite"):
        db.run(SetEmbeddings(vectors=((kept.id, bad),), embedder="e2"))
    [got] = db.run(GetLearnings(ids=(kept.id,), filter=f))
    assert (got.embedder, got.embedding) == ("e", before.embedding)
    assert [x.id for x in db.run(ListLearnings(filter=f))] == [kept.id]


def test_batch_is_atomic(db: Db) -> None:
    user = uid()
    good = note("first op", user=user)
    with pytest.raises(Exception):  # noqa: B017, PT011 - any error must roll back
        db.batch(
            [
                PutLearning(learning=good, change=CREATE),
                PutLearning(
                    learning=note("bad", user=user, content={"x": object()}), change=CREATE
                ),
            ]
        )
    assert db.run(CountLearnings(filter=mine(user))) == 0
    assert db.run(ListHistory(learning_id=good.id)) == []
    results = db.batch(
        [
            PutLearning(learning=good, change=CREATE),
            CountLearnings(filter=mine(user)),
        ]
    )
    assert results[0].id == good.id
    assert results[1] == 1


async def test_async_entry_points(db: Db) -> None:
    user = uid()
    x = await db.arun(PutLearning(learning=note("async", user=user), change=CREATE))
    [n] = await db.abatch([CountLearnings(filter=mine(user))])
    assert n == 1
    assert x.search_text == "async"
