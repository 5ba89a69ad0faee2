"""Lost races in curated writes: merges re-read a row changed meanwhile; retries end loudly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from learning_machines.curation import (
    CurationPolicy,
    Curator,
    WritePolicy,
    retry_conflicts,
    write_learning,
)
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


class _EditsBeforeTheWrite:
    """The real db; its first write of ``action`` waits while another writer changes a row."""

    def __init__(self, db: Db, action: str, edit: Callable[[Db], Awaitable[None]]) -> None:
        self.db = db
        self.action = action
        self.edit: Callable[[Db], Awaitable[None]] | None = edit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    async def _maybe_edit(self, ops: Sequence[Any]) -> None:
        if self.edit is not None and any(
            isinstance(op, PutLearning) and op.change.action == self.action for op in ops
        ):
            edit, self.edit = self.edit, None
            await edit(self.db)

    async def arun(self, op: Any) -> Any:
        await self._maybe_edit([op])
        return await self.db.arun(op)

    async def abatch(self, ops: Sequence[Any]) -> list[Any]:
        await self._maybe_edit(ops)
        return await self.db.abatch(ops)


async def _correct(db: Db, learning_id: str) -> None:
    """Another writer (a person, a worker) edits the row, with its own version check."""
    flt = private("alice", statuses=("active", "archived"))
    [row] = await db.arun(GetLearnings(ids=(learning_id,), filter=flt))
    await db.arun(
        PutLearning(
            learning=replace(row, search_text=row.search_text + " (corrected)"),
            change=Change(action="update", actor={"user": "alice"}),
            expected_version=row.version,
        )
    )


async def test_a_curation_run_never_overwrites_a_row_changed_after_it_read_it(db: Db) -> None:
    old = datetime.now(UTC) - timedelta(days=400)
    stale = db.run(PutLearning(learning=note("An old thing", at=old), change=CREATE))
    fresh = db.run(PutLearning(learning=note("A new thing"), change=CREATE))
    policy = {"note": CurationPolicy(half_life_days=30.0)}
    racing = _EditsBeforeTheWrite(db, "archive", lambda d: _correct(d, stale.id))
    report = await Curator(db=racing, policies=policy).acurate()  # type: ignore[arg-type]

    # The scope was curated again on what is stored now: the edit survives inside the archive.
    assert [a.id for a in report.archived] == [stale.id]  # reported once, not once per try
    flt = private("alice", statuses=("archived",))
    [row] = db.run(GetLearnings(ids=(stale.id,), filter=flt))
    assert row.search_text == "An old thing (corrected)"
    assert [x.id for x in active(db)] == [fresh.id]


async def test_archiving_by_hand_keeps_an_edit_made_meanwhile(db: Db) -> None:
    row = db.run(PutLearning(learning=note("The user likes tea"), change=CREATE))
    racing = _EditsBeforeTheWrite(db, "archive", lambda d: _correct(d, row.id))
    archived = await Curator(db=racing).aarchive(row.id, reason="by hand")  # type: ignore[arg-type]
    assert archived.status == "archived"
    assert archived.search_text == "The user likes tea (corrected)"
    assert archived.version == 3  # created, corrected, archived: nothing overwritten
