"""The PostgreSQL schema as an ordered list of migrations, and the code that applies them.

A database records the last migration applied in ``schema_version``; opening it applies the
missing ones in order, in one transaction, under an advisory lock so that several processes
opening the same database at once do not race. A new column is a new migration, never a reason
for a user to drop their database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._postgres_broad import BROAD_SCHEMA

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]

# Arbitrary constant key for pg_advisory_xact_lock while migrating.
_MIGRATION_LOCK = 7_361_204_811

# The first and last instants a Python datetime can hold.
_FIRST = "'0001-01-01 00:00:00+00'::timestamptz"
_LAST = "'9999-12-31 23:59:59.999999+00'::timestamptz"

#: Migrations in order; migration ``i`` (0-based) brings the schema to version ``i + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the tables.
    (
        "CREATE EXTENSION IF NOT EXISTS vector",
        """
        CREATE TABLE learnings (
            id               text PRIMARY KEY,
            learning_type    text NOT NULL,
            namespace        text NOT NULL,
            content          jsonb NOT NULL DEFAULT '{}'::jsonb,
            search_text      text NOT NULL DEFAULT '',
            content_hash     text NOT NULL,
            user_id          text,
            session_id       text,
            agent_id         text,
            team_id          text,
            entity_id        text,
            embedding        vector,
            embedder         text,
            status           text NOT NULL DEFAULT 'active',
            valid_from       timestamptz,
            valid_to         timestamptz,
            superseded_by    text,
            created_at       timestamptz NOT NULL,
            updated_at       timestamptz NOT NULL,
            recall_count     integer NOT NULL DEFAULT 0,
            last_recalled_at timestamptz,
            feedback         double precision NOT NULL DEFAULT 0,
            provenance       jsonb NOT NULL DEFAULT '{}'::jsonb
        )
        """,
        "CREATE INDEX learnings_scope_idx ON learnings (namespace, user_id, learning_type, status)",
        "CREATE INDEX learnings_type_idx ON learnings (learning_type, namespace, status)",
        "CREATE INDEX learnings_session_idx ON learnings (session_id)",
        "CREATE INDEX learnings_entity_idx ON learnings (entity_id)",
        "CREATE INDEX learnings_hash_idx ON learnings (content_hash)",
        """
        CREATE TABLE learning_history (
            seq         bigserial PRIMARY KEY,
            id          text NOT NULL UNIQUE,
            learning_id text NOT NULL,
            action      text NOT NULL,
            old         jsonb,
            new         jsonb,
            actor       jsonb NOT NULL DEFAULT '{}'::jsonb,
            reason      text NOT NULL DEFAULT '',
            turn_id     text,
            user_id     text,
            created_at  timestamptz NOT NULL
        )
        """,
        "CREATE INDEX learning_history_learning_idx ON learning_history (learning_id, seq)",
        "CREATE INDEX learning_history_user_idx ON learning_history (user_id)",
        """
        CREATE TABLE messages (
            seq               bigserial NOT NULL UNIQUE,
            id                text PRIMARY KEY,
            session_id        text NOT NULL,
            user_id           text,
            agent_id          text,
            turn_id           text NOT NULL,
            turn_index        integer NOT NULL DEFAULT 0,
            user_message      text NOT NULL,
            assistant_message text NOT NULL,
            messages_json     text NOT NULL DEFAULT '[]',
            created_at        timestamptz NOT NULL
        )
        """,
        "CREATE INDEX messages_session_idx ON messages (session_id, user_id, turn_index)",
        "CREATE INDEX messages_user_idx ON messages (user_id)",
        """
        CREATE TABLE pending_work (
            seq          bigserial NOT NULL UNIQUE,
            id           text PRIMARY KEY,
            kind         text NOT NULL,
            payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
            dedupe_key   text UNIQUE,
            user_id      text,
            status       text NOT NULL DEFAULT 'pending',
            attempts     integer NOT NULL DEFAULT 0,
            max_attempts integer NOT NULL DEFAULT 5,
            not_before   timestamptz NOT NULL,
            locked_by    text,
            locked_until timestamptz,
            last_error   text,
            raw_output   text,
            created_at   timestamptz NOT NULL,
            updated_at   timestamptz NOT NULL
        )
        """,
        "CREATE INDEX pending_work_claim_idx ON pending_work (status, not_before)",
        "CREATE INDEX pending_work_user_idx ON pending_work (user_id)",
        """
        CREATE TABLE proposals (
            id            text PRIMARY KEY,
            learning_type text NOT NULL,
            store         text NOT NULL,
            mode          text NOT NULL,
            namespace     text NOT NULL,
            user_id       text,
            session_id    text,
            turn_id       text,
            turn_index    integer,
            payload       jsonb NOT NULL DEFAULT '{}'::jsonb,
            summary       text NOT NULL DEFAULT '',
            status        text NOT NULL DEFAULT 'pending',
            decided_by    text,
            decided_at    timestamptz,
            decision_note text,
            learning_id   text,
            created_at    timestamptz NOT NULL,
            expires_at    timestamptz
        )
        """,
        "CREATE INDEX proposals_status_idx ON proposals (status, created_at)",
        "CREATE INDEX proposals_user_idx ON proposals (user_id)",
    ),
    # 2: keyword search through a generated tsvector, and provenance lookups for forget/export.
    (
        """
        ALTER TABLE learnings ADD COLUMN search_tsv tsvector
            GENERATED ALWAYS AS (to_tsvector('english'::regconfig, search_text)) STORED
        """,
        "CREATE INDEX learnings_tsv_idx ON learnings USING gin (search_tsv)",
        "CREATE INDEX learnings_prov_user_idx ON learnings ((provenance ->> 'user_id'))",
        # Which embedders (and dimensions) have vectors here, each with its own HNSW index:
        # lets a search skip the embedder-mismatch scan when only one embedder was ever used.
        "CREATE INDEX learnings_embedder_idx ON learnings (embedder)",
        # Searches filter on vector_dims(embedding) (the HNSW index predicate): without
        # statistics the planner guesses 0.5% of rows match, and misjudges scope selectivity.
        "CREATE STATISTICS learnings_dims_stats ON (vector_dims(embedding)) FROM learnings",
        """
        CREATE TABLE vector_indexes (
            embedder   text NOT NULL,
            dims       integer NOT NULL,
            index_name text,  -- NULL: no index yet; '': too many dimensions for one
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (embedder, dims)
        )
        """,
        # Vectors already stored: registered without an index (index_name NULL); the next write
        # of that embedder creates it.
        """
        INSERT INTO vector_indexes (embedder, dims)
        SELECT DISTINCT coalesce(embedder, ''), vector_dims(embedding) FROM learnings
        WHERE embedding IS NOT NULL
        """,
    ),
    # 3: large shared namespaces: BM25 postings, partial HNSW registry, inline vectors.
    BROAD_SCHEMA,
    # 4: optimistic concurrency. Every write of a row takes the next version, and a
    # read-modify-write (``PutLearning(expected_version=...)``) applies only if the row is still
    # at the version it read. Rows already stored have been written once. (``IF NOT EXISTS``:
    # see ``_renumber_unreleased``.)
    ("ALTER TABLE learnings ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1",),
    # 5: times Python cannot read. Older versions passed a time with its offset through, so
    # ``9999-12-31T23:59:59-23:59`` was stored as year 10000 and every read of its namespace
    # failed. Writes are now converted to UTC and checked; clamp what is already stored.
    tuple(
        f"UPDATE learnings SET {c} = LEAST(GREATEST({c}, {_FIRST}), {_LAST})"
        f" WHERE {c} < {_FIRST} OR {c} > {_LAST}"
        for c in ("valid_from", "valid_to", "created_at", "updated_at", "last_recalled_at")
    ),
    # 6: outcome evidence from behavioural feedback (how much a learning helped or misled the
    # turns that recalled it); ``feedback`` stays the net value retention reads. (``IF NOT
    # EXISTS``: see ``_renumber_unreleased``.)
    (
        "ALTER TABLE learnings ADD COLUMN IF NOT EXISTS helpful double precision NOT NULL"
        " DEFAULT 0",
        "ALTER TABLE learnings ADD COLUMN IF NOT EXISTS harmful double precision NOT NULL"
        " DEFAULT 0",
    ),
    # 7: the postings' primary key carries what BM25 reads (type, status, tf, doclen), so a
    # broad keyword search scans the index alone instead of visiting a heap page per posting
    # (at 1M learnings: the keyword side's p95 from 9.1 to 3.0 ms, docs/scale.md).
    (
        "ALTER TABLE lm_postings DROP CONSTRAINT lm_postings_pkey,"
        " ADD CONSTRAINT lm_postings_pkey PRIMARY KEY (namespace, lexeme, learning_id)"
        " INCLUDE (learning_type, status, tf, doclen)",
    ),
)

#: The version a database has once every migration is applied.
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """Return the schema version of the database (0 without a ``schema_version`` table)."""
    from psycopg.rows import tuple_row

    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
        got = cur.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(got[0]) if got and got[0] is not None else 0


def migrate(conn: psycopg.Connection[Any], *, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations up to ``target`` in one transaction; return the new version.

    ``conn`` must be in autocommit mode (the transaction is opened here).
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        _renumber_unreleased(conn)
        current = schema_version(conn)
        for version in range(current + 1, target + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        return max(current, target)


def _renumber_unreleased(conn: psycopg.Connection[Any]) -> None:
    """Put a database written by a development build between releases back in the numbering.

    That build recorded migrations 4 and 5 (the ``version`` column, clamped times) as 3 and 4,
    and the feedback build recorded 6 (the ``helpful``/``harmful`` columns) as 3, before
    migration 3 (broad namespaces) existed. Such a database has the ``version`` or ``helpful``
    column but no ``lm_postings``: forget its 3 and later, so that 3 onwards run in order (4, 5
    and 6 are safe to run again).
    """
    from psycopg.rows import tuple_row

    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "SELECT to_regclass('lm_postings') IS NULL AND EXISTS (SELECT 1 FROM pg_attribute"
            " WHERE attrelid = to_regclass('learnings') AND attname IN ('version', 'helpful')"
            " AND NOT attisdropped)"
        ).fetchone()
        if row is not None and row[0]:
            cur.execute("DELETE FROM schema_version WHERE version >= 3")
