"""Large write batches (PostgreSQL copies 100+ rows in binary) behave like small ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from learning_machines.db import (
    Change,
    Db,
    GetLearnings,
    Learning,
    LearningFilter,
    ListHistory,
    PutLearning,
)
from learning_machines.exceptions import ValidationError

CREATE = Change(action="create")
EVERYONE = LearningFilter(namespaces=("global", "user"), reader_user_id="u")


def rows(n: int, start: int = 0) -> list[Learning]:
    rng = np.random.default_rng(start)
    return [
        Learning(
            id=f"row-{i}",
            learning_type="note",
            namespace="global" if i % 2 else "user",
            user_id="u",
            search_text=f"note number {i}",
            content={"i": i, "text": "héllo ✓"},
            provenance={"source": "bulk"},
            embedding=tuple(float(x) for x in rng.normal(size=8).astype(np.float32)),
            embedder="e",
        )
        for i in range(start, start + n)
    ]


def test_a_large_batch_upserts_keeps_vectors_exact_and_records_history(db: Db) -> None:
    first = rows(150)
    db.batch([PutLearning(learning=x, change=CREATE) for x in first])
    # Half of the next batch replaces rows of the first.
    second = [
        Learning(**{**x.__dict__, "search_text": x.search_text + " again"}) for x in first[75:]
    ]
    second += rows(75, start=150)
    db.batch([PutLearning(learning=x, change=Change(action="update")) for x in second])
    got = {
        x.id: x
        for x in db.run(GetLearnings(ids=tuple(f"row-{i}" for i in range(225)), filter=EVERYONE))
    }
    assert len(got) == 225
    for x in [*first[:75], *second]:
        stored = got[x.id]
        assert stored.search_text == x.search_text
        assert stored.content == x.content
        assert stored.provenance == x.provenance
        # float32 in, float32 stored (PostgreSQL prints the shortest text that reads back).
        assert stored.embedding is not None
        assert x.embedding is not None
        assert np.array_equal(np.float32(stored.embedding), np.float32(x.embedding))
    history = db.run(ListHistory(learning_id="row-100"))
    assert [h.action for h in history] == ["create", "update"]
    assert history[1].old is not None
    assert history[1].old["search_text"] == "note number 100"


def test_one_bad_vector_in_a_large_batch_writes_nothing(db: Db) -> None:
    batch = rows(120, start=1000)
    bad = Learning(**{**batch[60].__dict__, "embedding": (math.nan,) * 8})
    batch[60] = bad
    with pytest.raises(ValidationError):
        db.batch([PutLearning(learning=x, change=CREATE) for x in batch])
    assert db.run(GetLearnings(ids=tuple(x.id for x in batch), filter=EVERYONE)) == []
