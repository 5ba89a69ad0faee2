"""What the reliability sections share: the database under test, child processes, table dumps.

A section that needs several processes starts children with :class:`Child`: each runs
``python -m learning_machines.bench._rel_child ROLE ARGS`` and talks over its stdin and stdout
in short lines (``ready``, ``ack 17``, ``result {...}``), so the parent can hold every child at
a start line, follow its progress, and kill it with ``SIGKILL`` at a chosen moment.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from ..db import Db, SqliteDb
from ..embedders import Embedder, HashEmbedder, default_embedder
from ..exceptions import ConfigurationError
from ._backends import open_bench_db

__all__ = [
    "Child",
    "Target",
    "make_embedder",
    "new_target",
    "table_dump",
    "turn_section",
]

#: Embedders the reliability bench can use (``--embedder``).
EMBEDDERS = ("minilm", "hash")


@dataclass(frozen=True, kw_only=True)
class Target:
    """The database under test, as any process can open it."""

    kind: str
    """``"sqlite"`` or ``"postgres"``."""
    location: str
    """The SQLite file, or the PostgreSQL database URI."""

    def open(self, *, pool_size: int = 4, **options: Any) -> Db:
        """Open the database in this process (``options`` go to the backend)."""
        if self.kind == "sqlite":
            return SqliteDb(self.location, **options)
        from ..db._postgres import PostgresDb

        return PostgresDb(self.location, pool_size=pool_size, **options)

    def to_json(self) -> dict[str, str]:
        """The target as JSON (for a child's arguments)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Target:
        """Read :meth:`to_json`'s output back."""
        return cls(kind=str(data["kind"]), location=str(data["location"]))


def new_target(kind: str, workdir: Path) -> Target:
    """A fresh, empty database of backend ``kind`` (its schema created)."""
    bench = open_bench_db(kind, workdir)
    bench.close()
    return Target(kind=kind, location=bench.location)


def make_embedder(kind: str) -> Embedder:
    """``"minilm"`` (the bundled offline model) or ``"hash"`` (no model: fast, for CI)."""
    if kind == "hash":
        return HashEmbedder()
    if kind == "minilm":
        return default_embedder()
    raise ConfigurationError(f"unknown embedder {kind!r}; choose from {', '.join(EMBEDDERS)}")


def turn_section(prompt: str) -> str:
    """The transcript part of an extraction prompt (without what the stores already know).

    Scripted extraction reads the turn's own tokens from here: the rest of the prompt repeats
    what earlier turns taught.
    """
    head = prompt.split("# Memory sections", 1)[0]
    return head.split("# The turn", 1)[-1]


def tokens(prompt: str, pattern: str) -> list[str]:
    """Every match of ``pattern`` (one group) in the turn's transcript, in order, once each."""
    return list(dict.fromkeys(re.findall(pattern, turn_section(prompt))))


def table_dump(db: Db, *, except_private_of: str | None = None) -> dict[str, list[str]]:
    """Every row of every table of the backend, as text (read over a connection of its own).

    ``except_private_of``: only the tables of owned rows (with a ``user_id`` column; the rest
    are counters and indexes derived from them), without that user's own rows outside shared
    namespaces (what an import of her own export may legitimately write). Her proposals are her
    own even when they target a shared namespace: they change nothing others read.
    """

    def keep(table: str, columns: list[str], row: tuple[Any, ...]) -> bool:
        if except_private_of is None:
            return True
        if "user_id" not in columns:
            return False
        values = dict(zip(columns, row, strict=True))
        shared = table != "proposals" and values.get("namespace", "user") not in ("user", None)
        return values["user_id"] != except_private_of or shared

    out: dict[str, list[str]] = {}
    if isinstance(db, SqliteDb):
        import sqlite3

        conn = sqlite3.connect(db.path)
        try:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            names = [r[0] for r in tables.fetchall()]
            for name in names:
                cursor = conn.execute(f'SELECT * FROM "{name}"')
                columns = [d[0] for d in cursor.description]
                rows = [tuple(r) for r in cursor.fetchall()]
                out[name] = sorted(repr(r) for r in rows if keep(name, columns, r))
        finally:
            conn.close()
        return out
    import psycopg

    with psycopg.connect(db._pool._conninfo) as pg:  # type: ignore[attr-defined]
        names = [
            str(r[0])
            for r in pg.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        for name in names:
            cur = pg.execute(f'SELECT * FROM "{name}"'.encode())
            columns = [d.name for d in cur.description or ()]
            rows = [tuple(r) for r in cur.fetchall()]
            out[name] = sorted(repr(r) for r in rows if keep(name, columns, r))
    return out


class Child:
    """A child process running one role of the bench; lines of its stdout arrive in a queue."""

    def __init__(self, role: str, args: Mapping[str, Any], *, log: Path) -> None:
        self.role = role
        self._log: IO[str] = open(log, "a", encoding="utf-8")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "learning_machines.bench._rel_child", role, json.dumps(args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def line(self, *, timeout: float) -> str | None:
        """The next line it printed; ``None`` once it exited. ``TimeoutError`` if none came."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.role} printed nothing for {timeout:.0f} s") from None

    def expect(self, word: str, *, timeout: float) -> str:
        """Wait for a line starting with ``word``; return the rest of it."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError(f"{self.role} exited before saying {word!r}; see its log")
            if line == word or line.startswith(word + " "):
                return line[len(word) :].strip()

    def send(self, line: str) -> None:
        """Write a line to its stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def result(self, *, timeout: float) -> dict[str, Any]:
        """Its ``result {...}`` line as data, after which it exits."""
        data: dict[str, Any] = json.loads(self.expect("result", timeout=timeout))
        self.wait(timeout=timeout)
        return data

    def kill(self) -> None:
        """``SIGKILL``: no exit hook, no flush, no handing back of held work."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.wait(timeout=30)

    def wait(self, *, timeout: float) -> int:
        """Wait for it to exit (killed if it does not); its exit status."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code
