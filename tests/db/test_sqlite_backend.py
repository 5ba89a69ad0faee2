"""SQLite only: migrations, threads, processes, locking, the vector cache, forgetting on disk."""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from learning_machines.db import (
    AddEvidence,
    Change,
    ClaimWork,
    CountLearnings,
    DeleteLearnings,
    EnqueueWork,
    GetLearnings,
    Learning,
    LearningFilter,
    ListLearnings,
    MarkRecalled,
    PendingWork,
    Proposal,
    PurgeUser,
    PutLearning,
    PutProposal,
    SearchLearnings,
    SetEmbeddings,
    SqliteDb,
    utcnow,
)
from learning_machines.db._sqlite_rows import LEARNING_COLUMNS, learning_params
from learning_machines.db._sqlite_schema import MIGRATIONS, migrate, schema_version
from learning_machines.exceptions import BackendError, ConflictError, ValidationError

CREATE = Change(action="create")
SHARED = LearningFilter(namespaces=("global",))


def vec(key: str, dim: int = 8) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=dim)
    return tuple(float(x) for x in v / np.linalg.norm(v))


def shared_note(text: str, **kw: object) -> Learning:
    return Learning(learning_type="note", namespace="global", search_text=text, **kw)  # type: ignore[arg-type]


# --- migrations -------------------------------------------------------------------------------


def _insert_raw(conn: sqlite3.Connection, learning: Learning, **columns: object) -> None:
    """Insert ``learning`` as an older version would have (columns overridden as given).

    Only the columns the table has at its version are written (later migrations add more).
    """
    values = dict(zip(LEARNING_COLUMNS, learning_params(learning), strict=True)) | columns
    have = {row[1] for row in conn.execute("PRAGMA table_info(learnings)")}
    names = [c for c in LEARNING_COLUMNS if c in have]
    conn.execute(
        f"INSERT INTO learnings ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [values[c] for c in names],
    )


def test_opening_a_version_1_database_upgrades_it_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    old = shared_note("written by version one", embedding=vec("old"), embedder="e")
    _insert_raw(conn, old)
    conn.close()

    with SqliteDb(path) as db:
        [got] = db.run(GetLearnings(ids=(old.id,), filter=SHARED))
        assert got.search_text == old.search_text
        assert (got.helpful, got.harmful, got.feedback) == (0.0, 0.0, 0.0)  # new columns default
        new = db.run(
            PutLearning(
                learning=shared_note("after", embedding=vec("new"), embedder="e"), change=CREATE
            )
        )
        hits = db.run(
            SearchLearnings(
                filter=SHARED, query="", vector=vec("old"), embedder="e", method="vector"
            )
        )
        assert [h.learning.id for h in hits] == [old.id, new.id]
        assert [h.learning.id for h in db.run(SearchLearnings(filter=SHARED, query="version"))] == [
            old.id
        ]
    conn = sqlite3.connect(path)
    assert schema_version(conn) == len(MIGRATIONS)
    conn.close()


def test_rows_stored_before_row_versions_upgrade_to_version_one(tmp_path: Path) -> None:
    # Version 5 ("side_indexes") is the newest schema released before row versions.
    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=5) == 5
    old = shared_note("written before versions")
    _insert_raw(conn, old)
    conn.close()
    with SqliteDb(path) as db:
        [got] = db.run(GetLearnings(ids=(old.id,), filter=SHARED))
        assert got.version == 1
        with pytest.raises(ConflictError):
            db.run(PutLearning(learning=got, change=CREATE, expected_version=0))
        assert db.run(PutLearning(learning=got, change=CREATE, expected_version=1)).version == 2


def test_a_side_indexed_namespace_of_the_previous_release_keeps_working(tmp_path: Path) -> None:
    # A database of the release with side indexes (schema 5) whose namespace already has its
    # index file: the upgrade keeps the file valid, and searches through it return versions.
    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=5) == 5
    rows = [shared_note(f"deploy note {i}") for i in range(12)]
    for row in rows:
        _insert_raw(conn, row)
    conn.close()
    with SqliteDb(path, broad_scope_rows=5) as db:
        assert db.reindex() == {"global": 12}
        index_files = list((tmp_path / "v5.db-lmindex").glob("*.lmx"))
        assert len(index_files) == 1
        [hit, *_] = db.run(SearchLearnings(filter=SHARED, query="deploy note 3"))
        assert hit.learning.version == 1
        changed = db.run(
            PutLearning(
                learning=dataclasses.replace(hit.learning, search_text="zebra crossing"),
                change=CREATE,
                expected_version=1,
            )
        )
        [again] = db.run(SearchLearnings(filter=SHARED, query="zebra"))
        assert (again.learning.id, again.learning.version) == (hit.learning.id, changed.version)
        assert changed.version == 2


def test_a_database_of_the_unreleased_numbering_gets_the_side_indexes(tmp_path: Path) -> None:
    # A development build recorded row_version, pad_short_years and unzeroed_free_space as
    # versions 5-7 before side_indexes took 5. Opening such a database adds what it lacks.
    path = tmp_path / "dev.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=4) == 4
    old = shared_note("written by the development build")
    _insert_raw(conn, old)
    names = [name for name, _ in MIGRATIONS]
    for version, name in enumerate(("row_version", "pad_short_years", "unzeroed_free_space"), 5):
        for statement in MIGRATIONS[names.index(name)][1]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, ?, '')", (version, name))
    conn.close()
    with SqliteDb(path, broad_scope_rows=1) as db:
        [got] = db.run(GetLearnings(ids=(old.id,), filter=SHARED))
        assert got.version == 1
        db.run(DeleteLearnings(ids=(old.id,), change=Change(action="delete")))
    conn = sqlite3.connect(path)
    recorded = [r[0] for r in conn.execute("SELECT name FROM schema_version ORDER BY version")]
    gone = conn.execute("SELECT count(*) FROM learnings_gone").fetchone()
    conn.close()
    assert recorded == names
    assert gone == (1,)  # the delete left a tombstone for the side indexes


def test_a_database_of_the_release_before_feedback_gets_the_evidence_columns(
    tmp_path: Path,
) -> None:
    # Version 8 ("unzeroed_free_space") is the newest schema before feedback evidence.
    path = tmp_path / "v8.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=8) == 8
    old = shared_note("written before feedback", feedback=0.5)
    _insert_raw(conn, old)
    conn.close()
    with SqliteDb(path) as db:
        [got] = db.run(GetLearnings(ids=(old.id,), filter=SHARED))
        assert (got.helpful, got.harmful, got.feedback, got.version) == (0.0, 0.0, 0.5, 1)
        assert db.run(AddEvidence(ids=(old.id,), harmful=1.0)) == 1
        [got] = db.run(GetLearnings(ids=(old.id,), filter=SHARED))
        assert (got.harmful, got.feedback, got.version) == (1.0, -0.5, 2)
    conn = sqlite3.connect(path)
    recorded = [r[0] for r in conn.execute("SELECT name FROM schema_version ORDER BY version")]
    conn.close()
    assert recorded == [name for name, _ in MIGRATIONS]
    assert recorded[8] == "feedback_evidence"


def test_a_database_of_the_feedback_build_numbering_gets_the_migrations_it_skipped(
    tmp_path: Path,
) -> None:
    # The feedback branch recorded feedback_evidence as version 5, before side_indexes took 5:
    # opening such a database adds what it lacks and keeps the evidence it holds.
    path = tmp_path / "feedback-dev.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=4) == 4
    names = [name for name, _ in MIGRATIONS]
    for statement in MIGRATIONS[names.index("feedback_evidence")][1]:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (5, 'feedback_evidence', '')")
    old = shared_note("rated on the feedback build", helpful=2.0, feedback=2.0)
    _insert_raw(conn, old)
    conn.close()
    with SqliteDb(path, broad_scope_rows=1) as db:
        [got] = db.run(GetLearnings(ids=(old.id,), filter=SHARED))
        assert (got.helpful, got.version) == (2.0, 1)
        db.run(DeleteLearnings(ids=(old.id,), change=Change(action="delete")))
    conn = sqlite3.connect(path)
    recorded = [r[0] for r in conn.execute("SELECT name FROM schema_version ORDER BY version")]
    gone = conn.execute("SELECT count(*) FROM learnings_gone").fetchone()
    conn.close()
    assert recorded == names
    assert gone == (1,)


def test_years_stored_without_leading_zeros_are_read_and_repaired(tmp_path: Path) -> None:
    # Versions before the fix wrote ``476-09-04T…`` (strftime leaves the zeros out), which did
    # not parse, so one event date broke every read of its namespace; and it sorted after 2020.
    path = tmp_path / "v6.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=6) == 6
    rome = shared_note("the fall of Rome")
    recent = shared_note("a recent launch", valid_from=datetime(2020, 5, 1, tzinfo=UTC))
    _insert_raw(conn, rome, valid_from="476-09-04T00:00:00.000000Z")
    _insert_raw(conn, recent)
    conn.close()
    with SqliteDb(path) as db:
        rows = db.run(ListLearnings(filter=SHARED, order_by="valid_from", ascending=True))
    assert [(r.id, r.valid_from) for r in rows] == [
        (rome.id, datetime(476, 9, 4, tzinfo=UTC)),
        (recent.id, datetime(2020, 5, 1, tzinfo=UTC)),
    ]


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SqliteDb(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO schema_version VALUES (999, 'future', '')")
    conn.close()
    with pytest.raises(BackendError, match="newer"):
        SqliteDb(path)


# --- transactions and errors -------------------------------------------------------------------


def test_failing_second_op_rolls_back_the_first(tmp_path: Path) -> None:
    with SqliteDb(tmp_path / "x.db") as db:
        p = db.run(
            PutProposal(
                proposal=Proposal(
                    learning_type="n",
                    store="s",
                    mode="propose",
                    namespace="global",
                    user_id=None,
                    session_id=None,
                    turn_id=None,
                    payload={},
                )
            )
        )
        first = shared_note("should not survive")
        with pytest.raises(ConflictError):
            db.batch(
                [
                    PutLearning(learning=first, change=CREATE),
                    PutProposal(proposal=p, expected_status="approved"),
                ]
            )
        assert db.run(CountLearnings(filter=SHARED)) == 0


def test_a_long_lock_becomes_backend_error_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    SqliteDb(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with (
            SqliteDb(path, busy_timeout=0.01, retries=1) as db,
            pytest.raises(BackendError, match="locked"),
        ):
            db.run(PutLearning(learning=shared_note("x"), change=CREATE))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with SqliteDb(path) as db:
        assert db.run(CountLearnings(filter=SHARED)) == 0


def test_duplicate_ids_are_the_callers_mistake(tmp_path: Path) -> None:
    with SqliteDb(tmp_path / "x.db") as db:
        work = PendingWork(kind="k", payload={})
        db.run(EnqueueWork(work=work))
        with pytest.raises(ValidationError, match="already exists"):
            db.run(EnqueueWork(work=work))


def test_private_learning_needs_an_owner(tmp_path: Path) -> None:
    with SqliteDb(tmp_path / "x.db") as db, pytest.raises(ValidationError, match="user_id"):
        db.run(PutLearning(learning=Learning(learning_type="n", search_text="x"), change=CREATE))


def test_closed_db_refuses_work(tmp_path: Path) -> None:
    db = SqliteDb(tmp_path / "x.db")
    db.close()
    with pytest.raises(BackendError, match="closed"):
        db.run(CountLearnings(filter=SHARED))


# --- threads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["file", "memory"])
def test_threads_writing_and_searching_lose_nothing(tmp_path: Path, where: str) -> None:
    db = SqliteDb(tmp_path / "x.db" if where == "file" else ":memory:")
    counter = db.run(PutLearning(learning=shared_note("counter"), change=CREATE))
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(25):
                db.run(
                    PutLearning(
                        learning=shared_note(
                            f"thread {t} row {i}", embedding=vec(f"{t}-{i}"), embedder="e"
                        ),
                        change=CREATE,
                    )
                )
                db.run(MarkRecalled(ids=(counter.id,), at=utcnow()))
                db.run(SearchLearnings(filter=SHARED, query="row", vector=vec("q"), embedder="e"))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.run(CountLearnings(filter=SHARED)) == 201
    [c] = db.run(GetLearnings(ids=(counter.id,), filter=SHARED))
    assert c.recall_count == 200
    db.close()


# --- processes --------------------------------------------------------------------------------


def _mp_context() -> Any:
    # fork skips re-importing everything in each child; spawn where fork does not exist.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _put_many(path: str, worker: int, n: int, counter_id: str) -> None:
    with SqliteDb(path) as db:
        for i in range(n):
            db.run(
                PutLearning(
                    learning=shared_note(
                        f"process {worker} row {i}", embedding=vec(f"{worker}-{i}"), embedder="e"
                    ),
                    change=CREATE,
                )
            )
            db.run(MarkRecalled(ids=(counter_id,), at=utcnow()))


def _claim_all(path: str, worker: str) -> list[str]:
    claimed: list[str] = []
    with SqliteDb(path) as db:
        now = utcnow() + timedelta(seconds=5)
        while items := db.run(ClaimWork(worker_id=worker, limit=3, now=now)):
            claimed.extend(w.id for w in items)
    return claimed


def test_processes_writing_one_file_lose_no_update(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    with SqliteDb(path) as db:
        counter = db.run(PutLearning(learning=shared_note("counter"), change=CREATE))
    ctx = _mp_context()
    procs = [ctx.Process(target=_put_many, args=(path, w, 50, counter.id)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with SqliteDb(path) as db:
        assert db.run(CountLearnings(filter=SHARED)) == 201
        [c] = db.run(GetLearnings(ids=(counter.id,), filter=SHARED))
        assert c.recall_count == 200
        hits = db.run(
            SearchLearnings(
                filter=SHARED, query="", vector=vec("3-7"), embedder="e", method="vector", limit=1
            )
        )
        assert hits[0].learning.search_text == "process 3 row 7"


def test_claiming_processes_never_share_an_item(tmp_path: Path) -> None:
    path = str(tmp_path / "queue.db")
    with SqliteDb(path) as db:
        ids = {
            db.run(EnqueueWork(work=PendingWork(kind="k", payload={"i": i}))).id for i in range(60)
        }
    ctx = _mp_context()
    with ctx.Pool(4) as pool:
        results = pool.starmap(_claim_all, [(path, f"w{i}") for i in range(4)])
    claimed = [i for r in results for i in r]
    assert len(claimed) == len(set(claimed))
    assert set(claimed) == ids


# --- the vector cache --------------------------------------------------------------------------


def test_cache_follows_writes_of_other_connections(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    reader, writer = SqliteDb(path), SqliteDb(path)
    q = vec("q")

    def top() -> list[str]:
        hits = reader.run(
            SearchLearnings(
                filter=SHARED, query="", vector=q, embedder="e", method="vector", limit=2
            )
        )
        return [h.learning.search_text for h in hits]

    a = writer.run(
        PutLearning(learning=shared_note("a", embedding=vec("a"), embedder="e"), change=CREATE)
    )
    assert top() == ["a"]
    writer.run(PutLearning(learning=shared_note("b", embedding=q, embedder="e"), change=CREATE))
    assert top() == ["b", "a"]
    writer.run(SetEmbeddings(vectors=((a.id, q),), embedder="e"))
    assert top()[0] == "a" or top()[1] == "a"
    hits = reader.run(
        SearchLearnings(filter=SHARED, query="", vector=q, embedder="e", method="vector")
    )
    assert all(h.vector_score == pytest.approx(1.0, abs=1e-5) for h in hits)
    writer.run(DeleteLearnings(ids=(a.id,), change=Change(action="delete")))
    assert top() == ["b"]
    reader.close()
    writer.close()


# --- forgetting -------------------------------------------------------------------------------


def test_purge_leaves_no_row_mentioning_the_user(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    user = "user-to-forget-42"
    with SqliteDb(path) as db:
        db.batch(
            [
                PutLearning(
                    learning=Learning(learning_type="n", user_id=user, search_text="mine"),
                    change=Change(action="create", actor={"user_id": user}),
                ),
                PutLearning(
                    learning=shared_note(
                        "shared",
                        user_id=user,
                        provenance={
                            "user_id": user,
                            "session_id": "s",
                            "merged": [{"user_id": user}],
                        },
                    ),
                    change=CREATE,
                ),
                EnqueueWork(work=PendingWork(kind="k", payload={}, user_id=user)),
            ]
        )
        db.run(PurgeUser(user_id=user))
    conn = sqlite3.connect(path)
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'learnings_fts%'"
        )
    ]
    for table in tables:
        for row in conn.execute(f"SELECT * FROM {table}"):
            assert user not in repr(row), table
    conn.close()


def test_forget_vacuums_once_a_database_older_versions_left_unzeroed(tmp_path: Path) -> None:
    # Older versions did not set secure_delete: text they overwrote stays in free space (on
    # builds where it is off by default). The first forget after the upgrade VACUUMs it away.
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA secure_delete = OFF")
    assert migrate(conn, target=7) == 7
    for text, user in (("Quetzalcoatlus notes", "alice"), ("bob's notes", "bob")):
        _insert_raw(conn, Learning(learning_type="n", user_id=user, search_text=text))
    conn.execute("DELETE FROM learnings WHERE user_id = 'alice'")  # e.g. by curation, long ago
    conn.close()
    assert b"Quetzalcoatlus" in path.read_bytes()  # left in free space by the delete

    with SqliteDb(path) as db:
        db.run(PurgeUser(user_id="alice"))
        assert b"Quetzalcoatlus" not in path.read_bytes()
        assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
        # Once clean, later forgets only checkpoint (no VACUUM).
        [[flag]] = (
            db._conn()
            .execute("SELECT value FROM lm_counters WHERE name = 'unzeroed_free_space'")
            .fetchall()
        )
        assert flag == 0
