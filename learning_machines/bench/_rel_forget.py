"""Copies of forgotten text found on disk after ``forget``.

Two users teach a machine with every private store (profile, session context, entities,
episodes) over turns learned by the worker; each says a word nobody else says. After
``machine.service.forget`` of the first, the files are read byte by byte and her word counted
(as written and lower-cased, as the keyword index keeps it):

- SQLite: the database file, its ``-wal`` (read while the database is still open, as in a
  server) and the side index files;
- PostgreSQL: every file of the database's directory (after a ``CHECKPOINT`` writes the
  buffers), and apart, the server's WAL segments (``pg_wal``), which ``forget`` does not
  promise to clean (see ``docs/curation.md``).

The second user's word must still be found (the scan sees what is stored), and the first
user's word must have been found before the forget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..db import Db, SqliteDb
from ..machine import LearningMachine
from ..stores import SessionContextConfig
from ..testing import ScriptedModel
from ._rel_common import Target, make_embedder, tokens

__all__ = ["database_files", "run_forget"]

HERS = "Zanzibarquokka"
HIS = "Ordinarywombat"
_WORD = r"\b((?:Zanzibarquokka|Ordinarywombat) \d+)\b"


def _extraction(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    said = tokens(prompt, _WORD)
    return {
        "user_profile": {"preferences": said},
        "session_context": {"summary": f"Talked about {', '.join(said)}.", "progress": said},
        "entity_memory": {
            "facts": [{"entity": s.split()[0], "fact": f"was said: {s}"} for s in said]
        },
    }


def _copies(files: list[Path], word: str) -> int:
    needles = {word.encode(), word.lower().encode()}
    return sum(path.read_bytes().count(n) for path in files if path.is_file() for n in needles)


def database_files(db: Db) -> tuple[list[Path], list[Path]]:
    """The database's files (buffers flushed), and the server's WAL segments (PostgreSQL)."""
    if isinstance(db, SqliteDb):
        side = Path(db.path + "-lmindex")
        return [Path(db.path), Path(db.path + "-wal"), *side.glob("*")], []
    import psycopg

    with psycopg.connect(db._pool._conninfo, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("CHECKPOINT")
        row = conn.execute(
            "SELECT current_setting('data_directory'), oid FROM pg_database"
            " WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    data = Path(row[0])
    return sorted((data / "base" / str(row[1])).iterdir()), sorted((data / "pg_wal").glob("0*"))


def run_forget(target: Target, *, embedder: str, turns: int = 20) -> dict[str, Any]:
    """Teach two users ``turns`` turns each, forget the first, count her word in the files."""
    machine = LearningMachine(
        db=target.open(),
        embedder=make_embedder(embedder),
        model=ScriptedModel(answers="Noted.", extraction=_extraction),
        user_profile=True,
        session_context=SessionContextConfig(enable_planning=True),
        entity_memory=True,
        episodic_memory=True,
        background=False,
        curate_every_turns=None,
    )
    assert machine.db is not None
    try:
        for i in range(turns):
            for user, word in (("alice", HERS), ("bob", HIS)):
                said = f"Let me tell you about {word} {i}."
                machine.process(
                    [{"role": "user", "content": said}, {"role": "assistant", "content": "Noted."}],
                    user_id=user,
                    session_id=f"{user}-s",
                )
        machine.wait_idle(timeout=300)
        files, wal = database_files(machine.db)
        before = _copies(files, HERS)
        deleted = machine.service.forget("alice")
        files, wal = database_files(machine.db)
        found = _copies(files, HERS)
        return {
            "turns_per_user": turns,
            "copies_before_forget": before,
            "rows_deleted": sum(deleted.values()),
            "copies_in_database_files": found,
            "files_read": len(files),
            "copies_in_server_wal": _copies(wal, HERS) if wal else None,
            "other_users_copies": _copies(files, HIS),
        }
    finally:
        machine.db.close()
