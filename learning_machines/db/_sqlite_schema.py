"""Schema of the SQLite backend: an ordered list of migrations and the table that records them.

Each migration is a list of SQL statements applied in one transaction; ``schema_version`` holds a
row per applied migration. Opening an older database applies the missing ones, so a new column
never needs a user to drop their database. Append new migrations at the end; never edit old ones.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from ..exceptions import BackendError

__all__ = ["MIGRATIONS", "migrate", "schema_version"]

_M001_INITIAL = [
    """
    CREATE TABLE learnings (
        pk INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        learning_type TEXT NOT NULL,
        namespace TEXT NOT NULL,
        content TEXT NOT NULL,
        search_text TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        user_id TEXT,
        session_id TEXT,
        agent_id TEXT,
        team_id TEXT,
        entity_id TEXT,
        embedding BLOB,
        embedder TEXT,
        status TEXT NOT NULL,
        valid_from TEXT,
        valid_to TEXT,
        superseded_by TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        recall_count INTEGER NOT NULL DEFAULT 0,
        last_recalled_at TEXT,
        feedback REAL NOT NULL DEFAULT 0,
        provenance TEXT NOT NULL
    )
    """,
    "CREATE INDEX learnings_scope ON learnings (namespace, user_id)",
    "CREATE INDEX learnings_session ON learnings (session_id)",
    "CREATE INDEX learnings_entity ON learnings (entity_id)",
    "CREATE INDEX learnings_type ON learnings (learning_type)",
    "CREATE INDEX learnings_hash ON learnings (content_hash)",
    "CREATE INDEX learnings_status ON learnings (status)",
    """
    CREATE VIRTUAL TABLE learnings_fts USING fts5(
        search_text, content='learnings', content_rowid='pk', tokenize='porter unicode61'
    )
    """,
    """
    CREATE TRIGGER learnings_fts_insert AFTER INSERT ON learnings BEGIN
        INSERT INTO learnings_fts (rowid, search_text) VALUES (new.pk, new.search_text);
    END
    """,
    """
    CREATE TRIGGER learnings_fts_delete AFTER DELETE ON learnings BEGIN
        INSERT INTO learnings_fts (learnings_fts, rowid, search_text)
        VALUES ('delete', old.pk, old.search_text);
    END
    """,
    """
    CREATE TRIGGER learnings_fts_update AFTER UPDATE OF search_text ON learnings BEGIN
        INSERT INTO learnings_fts (learnings_fts, rowid, search_text)
        VALUES ('delete', old.pk, old.search_text);
        INSERT INTO learnings_fts (rowid, search_text) VALUES (new.pk, new.search_text);
    END
    """,
    """
    CREATE TABLE learning_history (
        pk INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        learning_id TEXT NOT NULL,
        action TEXT NOT NULL,
        old TEXT,
        new TEXT,
        actor TEXT NOT NULL,
        reason TEXT NOT NULL,
        turn_id TEXT,
        user_id TEXT,
        created_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX learning_history_learning ON learning_history (learning_id)",
    "CREATE INDEX learning_history_user ON learning_history (user_id)",
    """
    CREATE TABLE messages (
        pk INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL,
        user_id TEXT,
        agent_id TEXT,
        turn_id TEXT NOT NULL,
        turn_index INTEGER NOT NULL,
        user_message TEXT NOT NULL,
        assistant_message TEXT NOT NULL,
        messages_json TEXT NOT NULL,
        created_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX messages_session ON messages (session_id, user_id)",
    "CREATE INDEX messages_user ON messages (user_id)",
    """
    CREATE TABLE pending_work (
        pk INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        dedupe_key TEXT UNIQUE,
        user_id TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        not_before TEXT NOT NULL,
        locked_by TEXT,
        locked_until TEXT,
        last_error TEXT,
        raw_output TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX pending_work_claim ON pending_work (status, not_before)",
    "CREATE INDEX pending_work_user ON pending_work (user_id)",
    """
    CREATE TABLE proposals (
        pk INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        learning_type TEXT NOT NULL,
        store TEXT NOT NULL,
        mode TEXT NOT NULL,
        namespace TEXT NOT NULL,
        user_id TEXT,
        session_id TEXT,
        turn_id TEXT,
        turn_index INTEGER,
        payload TEXT NOT NULL,
        summary TEXT NOT NULL,
        status TEXT NOT NULL,
        decided_by TEXT,
        decided_at TEXT,
        decision_note TEXT,
        learning_id TEXT,
        created_at TEXT NOT NULL,
        expires_at TEXT
    )
    """,
    "CREATE INDEX proposals_status ON proposals (status, created_at)",
    "CREATE INDEX proposals_user ON proposals (user_id)",
]

# A write sequence for the in-process vector cache: every write of a learning takes the next value
# of the counter, so a cache that has seen everything up to N only reloads rows with seq > N.
_M002_WRITE_SEQUENCE = [
    "ALTER TABLE learnings ADD COLUMN seq INTEGER NOT NULL DEFAULT 0",
    "UPDATE learnings SET seq = pk",
    "CREATE INDEX learnings_seq ON learnings (seq)",
    "CREATE TABLE lm_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO lm_counters (name, value) SELECT 'seq', COALESCE(MAX(pk), 0) FROM learnings",
]

# Scoped reads filter on (namespace, user_id, learning_type, status). With single-column indexes
# only, SQLite (no ANALYZE statistics) picked the ``status`` index, which matches every active row:
# a scoped hybrid search scanned the whole table (~85 ms at 10k learnings, linear in size).
# These match the PostgreSQL scope indexes; one user's search then reads only that user's rows.
_M003_SCOPE_INDEXES = [
    "CREATE INDEX learnings_owner_scope ON learnings (namespace, user_id, learning_type, status)",
    "CREATE INDEX learnings_type_scope ON learnings (learning_type, namespace, status)",
]

# Scope tokens in the full-text index. FTS5 finds every row matching the query's words in the
# whole table before the scope filter can apply, so keyword search grew with the table (12-25 ms
# at 10k learnings, linear beyond). Each row now also indexes one token for where it lives
# (``u<hex user_id>`` in the private namespace, ``n<hex namespace>`` elsewhere) and one for its
# type (``t<hex learning_type>``); a scoped query ANDs them with its words, so FTS5 intersects
# posting lists instead of ranking the whole table (measured ~10x faster at 10k). The SQL scope
# filter still applies on top: the tokens only narrow, they never decide isolation.
_FTS_SCOPE = (
    "CASE WHEN namespace = 'user' THEN 'u' || hex(user_id) ELSE 'n' || hex(namespace) END"
    " || ' t' || hex(learning_type)"
)
_M004_FTS_SCOPE = [
    f"ALTER TABLE learnings ADD COLUMN fts_scope TEXT GENERATED ALWAYS AS ({_FTS_SCOPE}) VIRTUAL",
    "DROP TRIGGER learnings_fts_insert",
    "DROP TRIGGER learnings_fts_delete",
    "DROP TRIGGER learnings_fts_update",
    "DROP TABLE learnings_fts",
    """
    CREATE VIRTUAL TABLE learnings_fts USING fts5(
        search_text, fts_scope, content='learnings', content_rowid='pk',
        tokenize='porter unicode61'
    )
    """,
    "INSERT INTO learnings_fts (learnings_fts) VALUES ('rebuild')",
    """
    CREATE TRIGGER learnings_fts_insert AFTER INSERT ON learnings BEGIN
        INSERT INTO learnings_fts (rowid, search_text, fts_scope)
        VALUES (new.pk, new.search_text, new.fts_scope);
    END
    """,
    """
    CREATE TRIGGER learnings_fts_delete AFTER DELETE ON learnings BEGIN
        INSERT INTO learnings_fts (learnings_fts, rowid, search_text, fts_scope)
        VALUES ('delete', old.pk, old.search_text, old.fts_scope);
    END
    """,
    """
    CREATE TRIGGER learnings_fts_update
    AFTER UPDATE OF search_text, namespace, user_id, learning_type ON learnings BEGIN
        INSERT INTO learnings_fts (learnings_fts, rowid, search_text, fts_scope)
        VALUES ('delete', old.pk, old.search_text, old.fts_scope);
        INSERT INTO learnings_fts (rowid, search_text, fts_scope)
        VALUES (new.pk, new.search_text, new.fts_scope);
    END
    """,
    # Vector candidates of a scope read (pk, seq) from these covering indexes alone; without
    # them every candidate row (with its 1.5 kB embedding) was read from the table.
    "CREATE INDEX learnings_owner_vec ON learnings "
    "(namespace, user_id, learning_type, status, embedder, seq)",
    "CREATE INDEX learnings_type_vec ON learnings "
    "(learning_type, namespace, status, embedder, seq)",
]

# Side indexes of large shared namespaces (``_sqlite_broad.py``) catch up on what changed in their
# namespace since they were built: rows by ``(namespace, seq)``, and a tombstone (with a write
# sequence of its own) for every row that leaves a shared namespace, deleted or moved. ``db_id``
# tells an index file which database it belongs to (a new file at the same path is another one).
_GONE = (
    "UPDATE lm_counters SET value = value + 1 WHERE name = 'seq'; "
    "INSERT INTO learnings_gone (seq, pk, namespace) "
    "SELECT value, old.pk, old.namespace FROM lm_counters WHERE name = 'seq';"
)
_M005_SIDE_INDEXES = [
    "CREATE INDEX learnings_namespace_seq ON learnings (namespace, seq)",
    "CREATE TABLE learnings_gone "
    "(seq INTEGER PRIMARY KEY, pk INTEGER NOT NULL, namespace TEXT NOT NULL)",
    "CREATE INDEX learnings_gone_namespace ON learnings_gone (namespace, seq)",
    "CREATE TRIGGER learnings_gone_delete AFTER DELETE ON learnings "
    f"WHEN old.namespace <> 'user' BEGIN {_GONE} END",
    "CREATE TRIGGER learnings_gone_move AFTER UPDATE OF namespace ON learnings "
    f"WHEN old.namespace <> new.namespace AND old.namespace <> 'user' BEGIN {_GONE} END",
    "INSERT OR IGNORE INTO lm_counters (name, value) "
    "VALUES ('db_id', abs(random()) % 9007199254740991)",
]

# Optimistic concurrency: every write of a row takes the next version, and a read-modify-write
# (``PutLearning(expected_version=...)``) applies only if the row is still at the version it read.
# Rows already stored have been written once.
_M006_ROW_VERSION = [
    "ALTER TABLE learnings ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
]

# Older versions wrote years below 1000 without leading zeros (``476-09-04T…``): such a time
# neither parsed back nor sorted as text, and one model-made event date broke every read of its
# namespace. Pad the stored ones (``instr`` finds the first '-': at 2-4 the year is short).
_M007_PAD_YEARS = [
    f"UPDATE learnings SET {c} = substr('000', 1, 5 - instr({c}, '-')) || {c} "
    f"WHERE instr({c}, '-') BETWEEN 2 AND 4"
    for c in ("valid_from", "valid_to", "created_at", "updated_at", "last_recalled_at")
]

# Forgetting a user erases deleted rows' bytes: every connection now runs with secure_delete,
# which zeroes what it frees. Free space left by older versions may still hold text, so such a
# database is VACUUMed once, at its next forget (``SqliteDb.erase_deleted``). ``seq`` counts
# every learning ever written; a new database (no rows, nothing written) starts clean.
_M008_UNZEROED_FREE_SPACE = [
    """
    INSERT INTO lm_counters (name, value) SELECT 'unzeroed_free_space',
        (SELECT value FROM lm_counters WHERE name = 'seq') > 0
        OR EXISTS (SELECT 1 FROM learnings) OR EXISTS (SELECT 1 FROM messages)
        OR EXISTS (SELECT 1 FROM pending_work) OR EXISTS (SELECT 1 FROM proposals)
        OR EXISTS (SELECT 1 FROM learning_history)
    """,
]

# Outcome evidence from behavioural feedback: how much a learning helped or misled the turns that
# recalled it (trust-weighted), so search ranks by it and curation can archive what misleads.
# ``feedback`` stays the net value (helpful - harmful) that retention already reads.
_M009_FEEDBACK_EVIDENCE = [
    "ALTER TABLE learnings ADD COLUMN helpful REAL NOT NULL DEFAULT 0",
    "ALTER TABLE learnings ADD COLUMN harmful REAL NOT NULL DEFAULT 0",
]

#: Ordered migrations: ``(name, statements)``. Version ``n`` means the first ``n`` are applied.
MIGRATIONS: list[tuple[str, list[str]]] = [
    ("initial", _M001_INITIAL),
    ("write_sequence", _M002_WRITE_SEQUENCE),
    ("scope_indexes", _M003_SCOPE_INDEXES),
    ("fts_scope_tokens", _M004_FTS_SCOPE),
    ("side_indexes", _M005_SIDE_INDEXES),
    ("row_version", _M006_ROW_VERSION),
    ("pad_short_years", _M007_PAD_YEARS),
    ("unzeroed_free_space", _M008_UNZEROED_FREE_SPACE),
    ("feedback_evidence", _M009_FEEDBACK_EVIDENCE),
]

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


def schema_version(conn: sqlite3.Connection) -> int:
    """Return how many migrations the database of ``conn`` has (0 for a new database)."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection, *, target: int | None = None) -> int:
    """Apply the missing migrations (up to ``target``, default all) in one write transaction.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Returns the version reached.
    Safe when several processes open the same file at once: the write lock serialises them and
    each re-reads the version under it.
    """
    target = len(MIGRATIONS) if target is None else target
    current = schema_version(conn)
    if target <= current <= len(MIGRATIONS):
        # Up to date: no write lock needed, so opening never waits for another writer.
        return current
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_VERSION_TABLE)
        _renumber_unreleased(conn)
        current = schema_version(conn)
        if current > len(MIGRATIONS):
            raise BackendError(
                f"This database is at schema version {current}, newer than this version of "
                f"learning-machines knows ({len(MIGRATIONS)}). Upgrade learning-machines."
            )
        for version in range(current + 1, target + 1):
            name, statements = MIGRATIONS[version - 1]
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, datetime.now(UTC).isoformat()),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(current, target)


def _renumber_unreleased(conn: sqlite3.Connection) -> None:
    """Put a database written by a development build between releases back in the numbering.

    That build recorded ``row_version``, ``pad_short_years`` and ``unzeroed_free_space`` as
    versions 5-7, before ``side_indexes`` took 5, and the feedback build recorded
    ``feedback_evidence`` as 5. The names tell: apply the migrations such a
    database skipped and record every one under its number here, so the rest follow in order.
    A name this version does not know is left for the version check (a newer database).
    """
    rows = conn.execute("SELECT name, applied_at FROM schema_version ORDER BY version").fetchall()
    names = [name for name, _ in MIGRATIONS]
    applied = {str(name): str(at) for name, at in rows}
    if list(applied) == names[: len(applied)] or not set(applied) <= set(names):
        return
    last = max(names.index(name) for name in applied) + 1
    conn.execute("DELETE FROM schema_version")
    for version, (name, statements) in enumerate(MIGRATIONS[:last], start=1):
        if name not in applied:
            for statement in statements:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
            (version, name, applied.get(name, datetime.now(UTC).isoformat())),
        )
