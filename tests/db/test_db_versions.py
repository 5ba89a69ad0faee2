"""Optimistic concurrency on every backend: row versions and ``PutLearning(expected_version=)``."""

from __future__ import annotations

import dataclasses
import threading
import uuid

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


def test_racing_creators_of_one_id_exactly_one_wins(db: Db) -> None:
    ids = [uuid.uuid4().hex for _ in range(15)]
    writers = 6
    barrier = threading.Barrier(writers)
    wins: dict[str, list[int]] = {i: [] for i in ids}
    errors: list[BaseException] = []

    def create(w: int) -> None:
        try:
            for learning_id in ids:
                barrier.wait(timeout=30)
                try:
                    db.run(
                        PutLearning(
                            learning=note(f"by {w}", id=learning_id),
                            change=CREATE,
                            expected_version=0,
                        )
                    )
                    wins[learning_id].append(w)
                except ConflictError:
                    pass
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {i: len(w) for i, w in wins.items()} == dict.fromkeys(ids, 1)
    for learning_id, [winner] in wins.items():
        row = get(db, learning_id)
        assert (row.search_text, row.version) == (f"by {winner}", 1)
