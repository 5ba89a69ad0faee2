"""Compare-and-set content patches on every backend: expected values, create-if-absent, races."""

from __future__ import annotations

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
    PatchContent,
    PutLearning,
)
from learning_machines.exceptions import ConflictError, ValidationError

SHARED = LearningFilter(namespaces=("ops",))
CHANGE = Change(action="update", actor={"test": True}, reason="test")


def _head(learning_id: str) -> Learning:
    return Learning(
        id=learning_id, learning_type="head", namespace="ops", content={"active": None, "n": 0}
    )


def _get(db: Db, learning_id: str) -> Learning | None:
    rows = db.run(GetLearnings(ids=(learning_id,), filter=SHARED))
    return rows[0] if rows else None


def test_create_then_compare_and_set(db: Db) -> None:
    head_id = uuid.uuid4().hex
    made = db.run(
        PatchContent(
            id=head_id,
            filter=SHARED,
            patch={"active": "v1", "n": 1},
            change=CHANGE,
            expected={"active": None},
            create=_head(head_id),
        )
    )
    assert made is not None
    assert made.content == {"active": "v1", "n": 1}
    stale = PatchContent(
        id=head_id,
        filter=SHARED,
        patch={"active": "v2"},
        change=CHANGE,
        expected={"active": None},
        create=_head(head_id),
    )
    with pytest.raises(ConflictError, match="changed since it was read"):
        db.run(stale)
    fresh = PatchContent(
        id=head_id, filter=SHARED, patch={"active": "v2"}, change=CHANGE, expected={"active": "v1"}
    )
    assert db.run(fresh) is not None
    got = _get(db, head_id)
    assert got is not None
    assert got.content["active"] == "v2"
    assert got.content["n"] == 1
    assert [h.action for h in db.run(ListHistory(learning_id=head_id))] == ["update", "update"]


def test_a_conflict_rolls_back_the_whole_batch(db: Db) -> None:
    head_id, other_id = uuid.uuid4().hex, uuid.uuid4().hex
    db.run(PutLearning(learning=_head(head_id), change=CHANGE))
    other = Learning(id=other_id, learning_type="note", namespace="ops", search_text="other")
    with pytest.raises(ConflictError):
        db.batch(
            [
                PutLearning(learning=other, change=CHANGE),
                PatchContent(
                    id=head_id,
                    filter=SHARED,
                    patch={"active": "x"},
                    change=CHANGE,
                    expected={"active": "not what is stored"},
                ),
            ]
        )
    assert _get(db, other_id) is None
    got = _get(db, head_id)
    assert got is not None
    assert got.content["active"] is None


def test_create_never_overwrites_a_row_the_reader_cannot_see(db: Db) -> None:
    private_id = uuid.uuid4().hex
    private = Learning(
        id=private_id, learning_type="head", namespace="user", user_id="ann", content={"a": 1}
    )
    db.run(PutLearning(learning=private, change=CHANGE))
    result = db.run(
        PatchContent(
            id=private_id,
            filter=SHARED,
            patch={"a": 2},
            change=CHANGE,
            create=_head(private_id),
        )
    )
    assert result is None
    [row] = db.run(
        GetLearnings(
            ids=(private_id,), filter=LearningFilter(namespaces=("user",), reader_user_id="ann")
        )
    )
    assert row.content == {"a": 1}
    assert row.namespace == "user"


def test_create_must_name_the_patched_row(db: Db) -> None:
    with pytest.raises(ValidationError, match="must create the row it patches"):
        db.run(PatchContent(id="a", filter=SHARED, patch={}, change=CHANGE, create=_head("b")))


def test_concurrent_compare_and_set_loses_no_update(db: Db) -> None:
    head_id = uuid.uuid4().hex
    writers, each = 4, 5
    conflicts = [0]
    lock = threading.Lock()

    def bump() -> None:
        done = 0
        while done < each:
            row = _get(db, head_id)
            n = 0 if row is None else int(row.content["n"])
            try:
                db.run(
                    PatchContent(
                        id=head_id,
                        filter=SHARED,
                        patch={"n": n + 1},
                        change=CHANGE,
                        expected={"n": n},
                        create=_head(head_id),
                    )
                )
            except ConflictError:
                with lock:
                    conflicts[0] += 1
                continue
            done += 1

    threads = [threading.Thread(target=bump) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = _get(db, head_id)
    assert got is not None
    assert got.content["n"] == writers * each
