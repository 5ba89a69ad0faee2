"""Lost races in curated writes: merges re-read a row changed meanwhile; retries end loudly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from learning_machines.curation import WritePolicy, retry_conflicts, write_learning
from learning_machines.db import Change, Db, GetLearnings, Learning, PutLearning
from learning_machines.exceptions import ConflictError

from ._helpers import CREATE, active, note, private


async def test_a_merge_into_a_row_changed_meanwhile_is_redone_on_the_new_row(db: Db) -> None:
    existing = db.run(
        PutLearning(
            learning=note("The user drinks coffee", embedding=(1.0, 0.0), embedder="e"),
            change=CREATE,
        )
    )
    asked: list[int] = []

    async def confirm(row: Learning, new: Learning) -> bool:
        # Another writer changes the row between this write's read and its merge (first time).
        asked.append(row.version)
        if len(asked) == 1:
            [current] = await db.arun(GetLearnings(ids=(row.id,), filter=private("alice")))
            await db.arun(
                PutLearning(
                    learning=replace(current, feedback=current.feedback + 1.5),
                    change=Change(action="update"),
                )
            )
        return True

    policy = WritePolicy(near_duplicate_threshold=0.95, confirm_threshold=0.7, confirm=confirm)
    result = await write_learning(
        db=db,
        embedder=None,
        learning=note("The user drinks black coffee daily", embedding=(0.8, 0.6), embedder="e"),
        change=CREATE,
        scope=private("alice"),
        policy=policy,
    )
    assert result.action == "merged"
    assert asked == [1, 2]  # the second try read the row the other writer left
    [row] = active(db)
    assert row.id == existing.id
    # Neither write is lost: the concurrent feedback and the merge's provenance are both there.
    assert row.feedback == 1.5
    assert [m["text"] for m in row.provenance["merged"]] == ["The user drinks coffee"]


async def test_retries_that_keep_losing_end_in_a_clear_conflict_error() -> None:
    tries: list[int] = []

    async def always_loses() -> None:
        tries.append(1)
        raise ConflictError("row changed", learning_id="x")

    with pytest.raises(ConflictError, match=r"Could not update the profile of user 'a'.*3 times"):
        await retry_conflicts(always_loses, what="the profile of user 'a'", attempts=3)
    assert len(tries) == 3


async def test_a_conflict_on_the_callers_own_row_is_passed_up_at_once() -> None:
    tries: list[int] = []

    async def loses() -> None:
        tries.append(1)
        raise ConflictError("row changed", learning_id="mine")

    with pytest.raises(ConflictError, match="row changed"):
        await retry_conflicts(loses, what="x", pass_through="mine")
    assert tries == [1]
