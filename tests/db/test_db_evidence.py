"""Outcome evidence on every backend: add, compare-and-set, locate, and what they leave alone."""

from __future__ import annotations

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
from learning_machines.exceptions import ConflictError

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
