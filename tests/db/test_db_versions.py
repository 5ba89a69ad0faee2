"""Optimistic concurrency on every backend: row versions and ``PutLearning(expected_version=)``."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable

import pytest

from learning_machines.db import (
    Change,
    Db,
    GetLearnings,
    Learning,
    LearningFilter,
    ListHistory,
    MarkRecalled,
    PutLearning,
    SetEmbeddings,
    utcnow,
)
from learning_machines.exceptions import ConflictError

CREATE = Change(action="create", actor={"store": "test"})
UPDATE = Change(action="update", actor={"store": "test"})
SHARED = LearningFilter(namespaces=("global",))


def note(text: str, **kw: object) -> Learning:
    return Learning(learning_type="note", namespace="global", search_text=text, **kw)  # type: ignore[arg-type]


def get(db: Db, learning_id: str) -> Learning:
    [row] = db.run(GetLearnings(ids=(learning_id,), filter=SHARED))
    return row


def test_every_write_of_a_row_takes_the_next_version(db: Db) -> None:
    first = db.run(PutLearning(learning=note("v1"), change=CREATE))
    assert first.version == 1
    assert get(db, first.id).version == 1
    second = db.run(
        PutLearning(learning=dataclasses.replace(first, search_text="v2"), change=UPDATE)
    )
    assert second.version == 2
    db.run(MarkRecalled(ids=(first.id,), at=utcnow()))
    assert get(db, first.id).version == 3
    db.run(SetEmbeddings(vectors=((first.id, (1.0, 0.0)),), embedder="e"))
    assert get(db, first.id).version == 4
    # The history records which version each write made.
    assert [e.new["version"] for e in db.run(ListHistory(learning_id=first.id))] == [1, 2]


def test_a_put_at_a_stale_version_is_refused_and_writes_nothing(db: Db) -> None:
    row = db.run(PutLearning(learning=note("original"), change=CREATE))
    db.run(PutLearning(learning=dataclasses.replace(row, search_text="theirs"), change=UPDATE))
    other = note("written in the same batch")
    with pytest.raises(ConflictError, match="changed since it was read") as caught:
        db.batch(
            [
                PutLearning(learning=other, change=CREATE),
                PutLearning(
                    learning=dataclasses.replace(row, search_text="mine"),
                    change=UPDATE,
                    expected_version=row.version,
                ),
            ]
        )
    assert caught.value.learning_id == row.id
    assert get(db, row.id).search_text == "theirs"
    assert db.run(GetLearnings(ids=(other.id,), filter=SHARED)) == []
    # At the current version the same write applies.
    current = get(db, row.id)
    mine = db.run(
        PutLearning(
            learning=dataclasses.replace(current, search_text="mine"),
            change=UPDATE,
            expected_version=current.version,
        )
    )
    assert (mine.version, get(db, row.id).search_text) == (current.version + 1, "mine")


def test_create_only_fails_when_the_row_exists(db: Db) -> None:
    fresh = note("created once")
    assert db.run(PutLearning(learning=fresh, change=CREATE, expected_version=0)).version == 1
    with pytest.raises(ConflictError, match="already exists"):
        db.run(
            PutLearning(
                learning=dataclasses.replace(fresh, search_text="again"),
                change=CREATE,
                expected_version=0,
            )
        )
    assert get(db, fresh.id).search_text == "created once"


def test_an_update_of_a_missing_row_is_a_conflict(db: Db) -> None:
    with pytest.raises(ConflictError, match="no longer exists"):
        db.run(PutLearning(learning=note("gone"), change=UPDATE, expected_version=3))


def _race(writers: int, rounds: int, attempt: Callable[[int, int], object]) -> list[list[int]]:
    """Run ``attempt(writer, round)`` on ``writers`` threads, released together each round.

    Returns who succeeded in each round; a ConflictError is a lost race, any other error fails.
    """
    barrier = threading.Barrier(writers)
    wins: list[list[int]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []

    def run(w: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait(timeout=30)
                try:
                    attempt(w, r)
                    wins[r].append(w)
                except ConflictError:
                    pass
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return wins


def test_racing_creators_of_one_id_exactly_one_wins(db: Db) -> None:
    ids = [uuid.uuid4().hex for _ in range(15)]
    wins = _race(
        6,
        len(ids),
        lambda w, r: db.run(
            PutLearning(learning=note(f"by {w}", id=ids[r]), change=CREATE, expected_version=0)
        ),
    )
    assert [len(w) for w in wins] == [1] * len(ids)
    for learning_id, [winner] in zip(ids, wins, strict=True):
        row = get(db, learning_id)
        assert (row.search_text, row.version) == (f"by {winner}", 1)


# PostgreSQL copies batches of 100+ puts in (``_postgres_copy``): the checks must hold there too.
BIG = 120


def test_large_batches_check_versions_like_small_ones(db: Db) -> None:
    rows = [note(f"bulk {i}") for i in range(BIG)]
    created = db.batch([PutLearning(learning=x, change=CREATE, expected_version=0) for x in rows])
    assert {x.version for x in created} == {1}
    updated = db.batch(
        [
            PutLearning(
                learning=dataclasses.replace(x, search_text=f"{x.search_text} v2"),
                change=UPDATE,
                expected_version=1,
            )
            for x in created
        ]
    )
    assert {x.version for x in updated} == {2}
    # One stale put in a large batch refuses the whole batch.
    stale = [
        PutLearning(
            learning=dataclasses.replace(x, search_text="lost"),
            change=UPDATE,
            expected_version=2 if i != 70 else 1,
        )
        for i, x in enumerate(updated)
    ]
    with pytest.raises(ConflictError) as caught:
        db.batch(stale)
    assert caught.value.learning_id == updated[70].id
    with pytest.raises(ConflictError, match="already exists"):
        db.batch([PutLearning(learning=x, change=CREATE, expected_version=0) for x in rows])
    stored = db.run(GetLearnings(ids=tuple(x.id for x in rows), filter=SHARED))
    assert {(x.search_text.endswith(" v2"), x.version) for x in stored} == {(True, 2)}


def test_racing_large_batch_creators_exactly_one_wins(db: Db) -> None:
    ids = [uuid.uuid4().hex for _ in range(BIG)]
    [[winner]] = _race(
        4,
        1,
        lambda w, _: db.batch(
            [
                PutLearning(learning=note(f"by {w}", id=i), change=CREATE, expected_version=0)
                for i in ids
            ]
        ),
    )
    stored = db.run(GetLearnings(ids=tuple(ids), filter=SHARED))
    assert {(x.search_text, x.version) for x in stored} == {(f"by {winner}", 1)}
    assert len(stored) == BIG
