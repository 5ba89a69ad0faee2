"""Outcome evidence on every backend: add, compare-and-set, locate, and what they leave alone."""

from __future__ import annotations

import dataclasses
import threading
import uuid

import pytest

from learning_machines.db import (
    AddEvidence,
    Change,
    Db,
    GetLearnings,
    Learning,
    LearningFilter,
    ListHistory,
    LocateLearnings,
    PatchContent,
    PutLearning,
    SetEvidence,
)
from learning_machines.exceptions import ConflictError, ValidationError

CREATE = Change(action="create", actor={"store": "test"}, reason="test")


def _put(db: Db, user: str, text: str) -> Learning:
    row = Learning(learning_type="note", namespace="user", user_id=user, search_text=text)
    return db.run(PutLearning(learning=row, change=CREATE))


def _get(db: Db, user: str, learning_id: str) -> Learning:
    [row] = db.run(
        GetLearnings(
            ids=(learning_id,), filter=LearningFilter(namespaces=("user",), reader_user_id=user)
        )
    )
    return row


def test_add_evidence_moves_counts_and_net_feedback_without_history(db: Db) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    a, b = _put(db, user, "alpha"), _put(db, user, "beta")
    assert db.run(AddEvidence(ids=(a.id, b.id, a.id), harmful=0.6)) == 2
    assert db.run(AddEvidence(ids=(a.id,), helpful=1.0)) == 1
    got = _get(db, user, a.id)
    assert (got.helpful, got.harmful) == (1.0, 0.6)
    assert got.feedback == pytest.approx(0.4)
    assert got.updated_at == a.updated_at  # a usage signal, not an edit
    assert len(db.run(ListHistory(learning_id=a.id))) == 1  # only the create
    assert _get(db, user, b.id).harmful == 0.6


def test_set_evidence_refuses_a_stale_read_and_rolls_the_batch_back(db: Db) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    turn, credited = _put(db, user, "the turn"), _put(db, user, "recalled")
    db.run(SetEvidence(id=turn.id, helpful=0, harmful=1, expected_helpful=0, expected_harmful=0))
    stale = [
        SetEvidence(id=turn.id, helpful=0, harmful=0.5, expected_helpful=0, expected_harmful=0),
        AddEvidence(ids=(credited.id,), harmful=0.5),
    ]
    with pytest.raises(ConflictError, match="changed since it was read"):
        db.batch(stale)
    assert _get(db, user, credited.id).harmful == 0.0  # nothing of the lost race was written
    got = _get(db, user, turn.id)
    assert (got.helpful, got.harmful, got.feedback) == (0.0, 1.0, -1.0)
    with pytest.raises(ConflictError):
        db.run(SetEvidence(id="nope", helpful=1, harmful=0, expected_helpful=0, expected_harmful=0))


def test_concurrent_compare_and_set_counts_once(db: Db) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    row = _put(db, user, "contended")
    outcomes: list[str] = []

    def bump() -> None:
        try:
            db.run(
                SetEvidence(id=row.id, helpful=1, harmful=0, expected_helpful=0, expected_harmful=0)
            )
            outcomes.append("won")
        except ConflictError:
            outcomes.append("lost")

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    assert _get(db, user, row.id).feedback == 1.0


def test_locate_names_owner_and_type_in_order(db: Db) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    a, b = _put(db, user, "one"), _put(db, user, "two")
    found = db.run(LocateLearnings(ids=(b.id, "missing", a.id)))
    assert [(x.id, x.user_id, x.namespace, x.status) for x in found] == [
        (b.id, user, "user", "active"),
        (a.id, user, "user", "active"),
    ]


def test_patch_content_keeps_counters_and_records_history(db: Db) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    row = _put(db, user, "a decision")
    db.run(AddEvidence(ids=(row.id,), harmful=1.0))
    change = Change(action="update", actor={"store": "test"}, reason="rationale")
    mine = LearningFilter(namespaces=("user",), reader_user_id=user)
    patched = db.run(
        PatchContent(id=row.id, filter=mine, patch={"rationale": "because"}, change=change)
    )
    assert patched is not None
    got = _get(db, user, row.id)
    assert got.content == {"rationale": "because"}
    assert (got.harmful, got.feedback) == (1.0, -1.0)  # not written back from a stale copy
    assert got.search_text == "a decision"
    [_, entry] = db.run(ListHistory(learning_id=row.id))
    assert entry.action == "update"
    assert entry.new is not None
    assert entry.new["content"] == {"rationale": "because"}
    # Another user cannot patch it, and learns nothing from trying.
    other = LearningFilter(namespaces=("user",), reader_user_id="someone-else")
    assert db.run(PatchContent(id=row.id, filter=other, patch={"x": 1}, change=change)) is None
    assert _get(db, user, row.id).content == {"rationale": "because"}


def test_every_evidence_write_takes_the_next_version(db: Db) -> None:
    # A read-modify-write that read the row before feedback moved it must not write the old
    # evidence back: the evidence ops are writes of the row, so its version moves.
    user = f"u-{uuid.uuid4().hex[:8]}"
    row = _put(db, user, "versioned")
    assert row.version == 1
    db.run(AddEvidence(ids=(row.id,), harmful=1.0))
    assert _get(db, user, row.id).version == 2
    db.run(SetEvidence(id=row.id, helpful=0, harmful=2, expected_helpful=0, expected_harmful=1))
    assert _get(db, user, row.id).version == 3
    mine = LearningFilter(namespaces=("user",), reader_user_id=user)
    change = Change(action="update", actor={"store": "test"})
    patched = db.run(PatchContent(id=row.id, filter=mine, patch={"why": "x"}, change=change))
    assert patched is not None
    assert patched.version == _get(db, user, row.id).version == 4
    stale = dataclasses.replace(row, search_text="edited from a stale read")
    with pytest.raises(ConflictError):
        db.run(PutLearning(learning=stale, change=change, expected_version=row.version))
    got = _get(db, user, row.id)
    assert (got.harmful, got.search_text) == (2.0, "versioned")


def test_patches_and_evidence_are_cleaned_like_every_write(db: Db) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    row = _put(db, user, "clean me")
    mine = LearningFilter(namespaces=("user",), reader_user_id=user)
    change = Change(action="update", actor={"store": "test"})
    db.run(PatchContent(id=row.id, filter=mine, patch={"why\x00": "be\x00cause"}, change=change))
    assert _get(db, user, row.id).content == {"why": "because"}
    for bad in (
        PatchContent(id=row.id, filter=mine, patch={"score": float("nan")}, change=change),
        PatchContent(id=row.id, filter=mine, patch={"x": "y" * 16_000_001}, change=change),
        AddEvidence(ids=(row.id,), harmful=float("nan")),
        AddEvidence(ids=("bad\x00id",), harmful=1.0),
        SetEvidence(
            id=row.id, helpful=float("inf"), harmful=0, expected_helpful=0, expected_harmful=0
        ),
        PutLearning(learning=dataclasses.replace(row, helpful=float("nan")), change=change),
    ):
        with pytest.raises(ValidationError):
            db.run(bad)
    got = _get(db, user, row.id)
    assert (got.helpful, got.harmful, got.content) == (0.0, 0.0, {"why": "because"})


def test_evidence_goes_through_large_batches_and_back(db: Db) -> None:
    # 120 rows: PostgreSQL writes them by binary COPY, which must carry the evidence columns.
    user = f"u-{uuid.uuid4().hex[:8]}"
    rows = [
        Learning(
            learning_type="note",
            namespace="user",
            user_id=user,
            search_text=f"row {i}",
            embedding=(1.0, float(i)),
            embedder="e",
            helpful=i / 10,
            harmful=i / 20,
            feedback=i / 20,
        )
        for i in range(120)
    ]
    db.batch([PutLearning(learning=x, change=CREATE) for x in rows])
    mine = LearningFilter(namespaces=("user",), reader_user_id=user)
    stored = db.run(GetLearnings(ids=tuple(x.id for x in rows), filter=mine))
    assert [(x.helpful, x.harmful) for x in stored] == [(x.helpful, x.harmful) for x in rows]
    again = [dataclasses.replace(x, helpful=x.helpful + 1) for x in stored]
    db.batch([PutLearning(learning=x, change=CREATE, expected_version=1) for x in again])
    stored = db.run(GetLearnings(ids=tuple(x.id for x in rows), filter=mine))
    assert [x.helpful for x in stored] == [x.helpful + 1 for x in rows]
    assert stored == again  # equal rows whatever their version
