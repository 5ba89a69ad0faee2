"""Hostile values at the database edge, on every backend: stored identically, or refused.

NUL characters, lone surrogates, dates outside what Python can read, absurd sizes and rows that
cannot be decoded. One bad value must never stop a turn from being stored, nor one bad row the
reads of everybody else.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from learning_machines.db import (
    MAX_KEY_CHARS,
    MAX_SEARCH_TEXT_CHARS,
    MAX_TEXT_CHARS,
    AppendMessage,
    Change,
    ClaimWork,
    Db,
    EnqueueWork,
    FailWork,
    GetLearnings,
    GetProposal,
    HistoryEntry,
    Learning,
    LearningFilter,
    ListHistory,
    ListLearnings,
    ListMessages,
    ListWork,
    Message,
    PendingWork,
    Proposal,
    PutHistory,
    PutLearning,
    PutProposal,
    SearchLearnings,
    SqliteDb,
    UpdateWork,
    new_id,
    utcnow,
)
from learning_machines.exceptions import ValidationError

CREATE = Change(action="create", actor={"store": "test"})
TEAM = LearningFilter(namespaces=("team",))


def shared(text: str, **kw: Any) -> Learning:
    return Learning(learning_type="note", namespace="team", search_text=text, **kw)


def put(db: Db, learning: Learning) -> Learning:
    return db.run(PutLearning(learning=learning, change=CREATE))


def message(**kw: str) -> Message:
    return Message(**{"session_id": "s", "user_id": "u", "turn_id": "t", **kw})  # type: ignore[arg-type]


def everything(db: Db) -> list[Learning]:
    return db.run(ListLearnings(filter=TEAM, limit=None))


# --- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    [
        datetime(476, 9, 4, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(999, 12, 31, 22, 0, tzinfo=timezone(timedelta(hours=-1))),  # year 1000 in UTC
    ],
)
def test_any_time_python_can_hold_in_utc_reads_back(db: Db, when: datetime) -> None:
    row = put(db, shared("the fall of Rome", valid_from=when, valid_to=when))
    other = put(db, shared("an ordinary note"))
    [got] = db.run(GetLearnings(ids=(row.id,), filter=TEAM))
    assert got.valid_from == when
    assert got.valid_to == when
    assert {x.id for x in everything(db)} == {row.id, other.id}
    assert [x.valid_from for x in db.run(ListLearnings(filter=TEAM, order_by="valid_from"))] == [
        when,
        None,
    ]


@pytest.mark.parametrize(
    "when",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59))),
        datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=23, minutes=59))),
    ],
)
def test_a_time_outside_years_1_to_9999_in_utc_is_refused_and_reads_go_on(
    db: Db, when: datetime
) -> None:
    kept = put(db, shared("an ordinary note"))
    with pytest.raises(ValidationError, match="1-9999"):
        put(db, shared("a poisoned date", valid_from=when))
    assert [x.id for x in everything(db)] == [kept.id]
    assert [h.learning.id for h in db.run(SearchLearnings(filter=TEAM, query="note"))] == [kept.id]


# --- NUL, surrogates --------------------------------------------------------------------------


def test_nul_is_removed_from_text_and_json_everywhere_the_same_way(db: Db) -> None:
    learning = shared(
        "tea\x00 time",
        content={"fa\x00ct": ["a\x00b", {"k": "v\x00"}]},
        provenance={"note": "\x00"},
    )
    stored = db.run(
        PutLearning(learning=learning, change=Change(action="create", reason="why\x00"))
    )
    assert (stored.search_text, stored.content) == ("tea time", {"fact": ["ab", {"k": "v"}]})
    [got] = db.run(GetLearnings(ids=(learning.id,), filter=TEAM))
    assert (got.search_text, got.content, got.provenance) == (
        "tea time",
        {"fact": ["ab", {"k": "v"}]},
        {"note": ""},
    )
    assert [h.learning.id for h in db.run(SearchLearnings(filter=TEAM, query="tea\x00"))] == [
        learning.id
    ]
    assert db.run(ListHistory(learning_id=learning.id))[0].reason == "why"

    db.run(
        AppendMessage(
            message=message(
                user_message="hi\x00",
                assistant_message="\x00hello",
                messages_json='[{"content": "hi\\u0000"}]\x00',
            )
        )
    )
    [stored_message] = db.run(ListMessages(session_id="s", user_id="u"))
    assert (stored_message.user_message, stored_message.assistant_message) == ("hi", "hello")
    assert stored_message.messages_json == '[{"content": "hi\\u0000"}]'

    proposal = Proposal(
        learning_type="note",
        store="kb",
        mode="propose",
        namespace="team",
        user_id="u",
        session_id="s",
        turn_id="t",
        payload={"text": "x\x00y"},
        summary="sum\x00mary",
    )
    db.run(PutProposal(proposal=proposal))
    got_proposal = db.run(GetProposal(id=proposal.id))
    assert got_proposal is not None
    assert (got_proposal.payload, got_proposal.summary) == ({"text": "xy"}, "summary")

    work = db.run(EnqueueWork(work=PendingWork(kind="extract", payload={"m": "a\x00"})))
    [claimed] = db.run(ClaimWork(worker_id="w"))
    db.run(UpdateWork(id=work.id, worker_id="w", payload={"m": "b\x00", "done": ["\x00"]}))
    db.run(FailWork(id=work.id, worker_id="w", error="bad\x00", raw_output="{\x00}"))
    [failed] = db.run(ListWork(limit=None))
    assert (claimed.payload, failed.payload) == ({"m": "a"}, {"m": "b", "done": [""]})
    assert (failed.last_error, failed.raw_output) == ("bad", "{}")

    entry = HistoryEntry(
        id=new_id(),
        learning_id="imported",
        action="import",
        old=None,
        new={"search_text": "n\x00"},
        actor={},
        reason="r\x00",
        turn_id=None,
        user_id="u",
        created_at=utcnow(),
    )
    assert db.run(PutHistory(entries=(entry,))) == 1
    [restored] = db.run(ListHistory(learning_id="imported"))
    assert (restored.new, restored.reason) == ({"search_text": "n"}, "r")


def test_nul_or_a_surrogate_in_an_identifier_is_refused(db: Db) -> None:
    for bad in ("ali\x00ce", "ali\ud800ce"):
        with pytest.raises(ValidationError, match="identifiers are stored exactly"):
            put(db, Learning(learning_type="note", user_id=bad, search_text="x"))
        with pytest.raises(ValidationError, match="identifiers are stored exactly"):
            db.run(ListLearnings(filter=LearningFilter(namespaces=(bad,))))
    assert everything(db) == []


def test_lone_surrogates_in_text_become_replacement_characters(db: Db) -> None:
    row = put(db, shared("half \ud83d of an emoji 😀", content={"k\udfff": "\ud800"}))
    [got] = db.run(GetLearnings(ids=(row.id,), filter=TEAM))
    assert got.search_text == "half \ufffd of an emoji 😀"
    assert got.content == {"k\ufffd": "\ufffd"}


def test_nan_in_json_is_refused_on_every_backend(db: Db) -> None:
    with pytest.raises(ValidationError, match="no NaN"):
        put(db, shared("x", content={"score": float("nan")}))
    assert everything(db) == []


# --- sizes ------------------------------------------------------------------------------------


def test_absurd_sizes_are_refused_naming_the_limit(db: Db) -> None:
    with pytest.raises(ValidationError, match=f"at most {MAX_SEARCH_TEXT_CHARS:,}"):
        put(db, shared("x" * 5_000_000))
    with pytest.raises(ValidationError, match=f"at most {MAX_TEXT_CHARS:,}"):
        put(db, shared("small", content={"blob": "y" * (MAX_TEXT_CHARS + 1)}))
    with pytest.raises(ValidationError, match=f"at most {MAX_KEY_CHARS}"):
        put(db, Learning(learning_type="note", user_id="u" * 1_000_000, search_text="x"))
    with pytest.raises(ValidationError, match=r"Message\.user_message"):
        db.run(
            AppendMessage(
                message=message(user_message="z" * (MAX_TEXT_CHARS + 1), assistant_message="")
            )
        )
    assert everything(db) == []
    # At the limit it is stored.
    big = put(db, shared("w " * (MAX_SEARCH_TEXT_CHARS // 2)))
    assert len(db.run(GetLearnings(ids=(big.id,), filter=TEAM))[0].search_text) == (
        MAX_SEARCH_TEXT_CHARS
    )


# --- rows that cannot be decoded ----------------------------------------------------------------


def _corrupt(db: Db, learning_id: str) -> None:
    """Break one stored row the way a foreign writer or a damaged file could."""
    if isinstance(db, SqliteDb):
        conn = sqlite3.connect(db.path)
        conn.execute("UPDATE learnings SET content = '{not json' WHERE id = ?", (learning_id,))
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(db._pool._conninfo, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("UPDATE learnings SET content = '[1, 2]' WHERE id = %s", (learning_id,))


def test_a_row_that_cannot_be_decoded_is_logged_and_skipped(
    db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    good = put(db, shared("the wiki has the runbook"))
    bad = put(db, shared("the wiki is down"))
    _corrupt(db, bad.id)
    caplog.set_level(logging.ERROR, logger="learning_machines")
    assert [x.id for x in everything(db)] == [good.id]
    assert [h.learning.id for h in db.run(SearchLearnings(filter=TEAM, query="wiki"))] == [good.id]
    assert [x.id for x in db.run(GetLearnings(ids=(bad.id, good.id), filter=TEAM))] == [good.id]
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged
    assert all(bad.id in r.getMessage() for r in logged)
    assert "cannot be decoded" in logged[0].getMessage()
    # Writing the row again repairs it.
    put(db, dataclasses.replace(bad, content={"fixed": True}))
    assert {x.id for x in everything(db)} == {good.id, bad.id}
