"""Eight writers (4 threads + 4 processes) updating one row each never lose an update.

Profiles and session contexts are read, changed and written back; without a version check two
writers that read the same row overwrite each other. Each writer here makes 50 distinct updates
through the store write path (``apply_write`` and the background ``aapply_extraction``), so the
rows must end up with all 400 of them, on both backends.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from learning_machines.db import Db, SqliteDb
from learning_machines.stores import (
    EntityMemoryStore,
    SessionContextConfig,
    SessionContextStore,
    UserProfileStore,
)
from learning_machines.stores.user_profile import profile_update_model
from tests.stores.conftest import bind_store, ctx

THREADS = 4
PROCESSES = 4
UPDATES = 50
WRITERS = THREADS + PROCESSES


def _open(kind: str, where: str) -> Db:
    if kind == "sqlite":
        return SqliteDb(where)
    from learning_machines.db._postgres import PostgresDb

    return PostgresDb(where, pool_size=THREADS + 2)


async def _write_all(db: Db, writer: str) -> None:
    """Fifty distinct updates to each of four rows: alice's profile and session, bob's profile
    (through background extraction) and the aliases of one entity (a row updated in place)."""
    profile = bind_store(UserProfileStore(), db)
    session = bind_store(SessionContextStore(SessionContextConfig(enable_planning=True)), db)
    entity = bind_store(EntityMemoryStore(), db)
    update = profile_update_model(profile.schema)
    for i in range(UPDATES):
        await entity.apply_write(
            {"op": "entity", "name": "Acme", "aliases": [f"a{writer}-{i}"]}, **ctx()
        )
        await profile.apply_write({"updates": {"preferences": [f"likes {writer} {i}"]}}, **ctx())
        await session.apply_write({"progress": [f"step {writer} {i}"]}, **ctx())
        await profile.aapply_extraction(update(preferences=[f"uses {writer} {i}"]), **ctx("bob"))


def _process_writer(kind: str, where: str, writer: str) -> None:
    db = _open(kind, where)
    try:
        asyncio.run(_write_all(db, writer))
    finally:
        db.close()


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """``(backend kind, where)``: a SQLite file path or a fresh PostgreSQL database URI."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "shared.db")
    pg = pytest.importorskip("tests._pg")
    return "postgres", str(pg.fresh_database_uri())


@pytest.mark.skipif(sys.platform == "win32", reason="uses fork")
def test_eight_writers_keep_every_update(target: tuple[str, str]) -> None:
    kind, where = target
    db = _open(kind, where)
    mp = multiprocessing.get_context("fork")
    procs = [
        mp.Process(target=_process_writer, args=(kind, where, f"p{n}")) for n in range(PROCESSES)
    ]
    errors: list[BaseException] = []

    def thread_writer(name: str) -> None:
        try:
            asyncio.run(_write_all(db, name))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=thread_writer, args=(f"t{n}",)) for n in range(THREADS)]
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(timeout=300)
    assert errors == []
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    async def read() -> tuple[Any, Any, Any, Any]:
        profile = bind_store(UserProfileStore(), db)
        session = bind_store(SessionContextStore(SessionContextConfig(enable_planning=True)), db)
        return (
            await profile.arecall(**ctx()),
            await session.arecall(**ctx()),
            await profile.arecall(**ctx("bob")),
            await bind_store(EntityMemoryStore(), db).alookup("Acme", **ctx()),
        )

    alice, alice_session, bob, acme = asyncio.run(read())
    db.close()
    expected = WRITERS * UPDATES
    kept = {
        "profile via apply_write": len(alice.preferences),
        "session progress via apply_write": len(alice_session.progress),
        "profile via aapply_extraction": len(bob.preferences),
        "entity aliases via apply_write": len(acme.entities[0].entity.content["aliases"]),
    }
    assert kept == dict.fromkeys(kept, expected)
    assert set(alice.preferences) == {
        f"likes {w}{n} {i}"
        for w, count in (("t", THREADS), ("p", PROCESSES))
        for n in range(count)
        for i in range(UPDATES)
    }
