"""``learning-machines reindex``: rebuild the indexes of large shared namespaces."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from ._common import DbOption, JsonOption, console, emit_json, open_machine

__all__ = ["register"]


def reindex(
    db: DbOption = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", metavar="NS", help="Only this shared namespace (repeatable)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Rebuild the search indexes of large shared namespaces from the database.

    SQLite: the side index files next to the database; PostgreSQL: the keyword postings and
    the namespace's HNSW index (writes wait meanwhile). Searches never need it to be correct;
    run it after restoring a backup or a large import, or to build indexes ahead of the first
    query. Namespaces below the size threshold lose their index and are searched in SQL.
    """
    service = open_machine(db).service
    started = time.perf_counter()
    done = service.reindex(namespaces=namespace)
    seconds = time.perf_counter() - started
    if as_json:
        emit_json({"rebuilt": done, "seconds": round(seconds, 3)})
        return
    table = Table("namespace", "learnings", "index")
    for name, rows in sorted(done.items()):
        table.add_row(name, f"{rows:,}" if rows else "—", "rebuilt" if rows else "none (small)")
    console.print(table)
    console.print(f"{sum(1 for r in done.values() if r)} index(es) rebuilt in {seconds:.1f} s")


def register(app: typer.Typer) -> None:
    """Add the ``reindex`` command to ``app``."""
    app.command("reindex")(reindex)
