"""Forgetting a user reaches the disk: her text is in none of the database's files afterwards.

The tables were clean after ``forget`` before, but the SQLite write-ahead log still held hundreds
of copies of her text and PostgreSQL kept them in dead tuples. These tests read the files
themselves: the SQLite database and its ``-wal`` (while the database is open, as in a server),
and every file of the PostgreSQL database's directory (after a CHECKPOINT writes the buffers).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from learning_machines.curation import Curator
from learning_machines.db import (
    AppendMessage,
    Db,
    EnqueueWork,
    Message,
    PendingWork,
    Proposal,
    PutProposal,
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
    """The files holding the database, with its buffers flushed to them."""
    if isinstance(db, SqliteDb):
        return [Path(db.path), Path(db.path + "-wal")]
    import psycopg

    with psycopg.connect(db._pool._conninfo, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("CHECKPOINT")
        row = conn.execute(
            "SELECT current_setting('data_directory'), oid FROM pg_database"
            " WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return sorted((Path(row[0]) / "base" / str(row[1])).iterdir())


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
