"""Curation commands: ``curate``, ``history``, ``restore``, ``forget``, ``export``, ``import``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..curation import Curator
from ._common import DEFAULT_DB, open_db

__all__ = ["register"]

console = Console()
DbOption = Annotated[str, typer.Option("--db", help="SQLite file or postgresql:// URL.")]


def _curator(db_url: str, *, embedder: bool = False) -> Curator:
    db = open_db(db_url)
    if not embedder:
        return Curator(db=db)
    from ..embedders import default_embedder

    return Curator(db=db, embedder=default_embedder())


def _short(value: Any, width: int = 60) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _counts(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    return table


def curate(
    db: DbOption = DEFAULT_DB,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's scopes.")] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", help="Only these namespaces.")
    ] = None,
    learning_type: Annotated[
        list[str] | None, typer.Option("--type", help="Only these learning types.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, write nothing.")] = False,
    judge_model: Annotated[
        str | None,
        typer.Option(
            "--judge-model",
            help="A model (provider:name) that judges uncertain near duplicates, in one call.",
        ),
    ] = None,
) -> None:
    """Merge duplicates, supersede old facts, archive what decayed; print what changed."""
    curator = _curator(db)
    if judge_model:
        from ..curation import ModelJudge

        curator.judge = ModelJudge(judge_model)
    try:
        report = curator.curate(
            user_id=user, namespaces=namespace, learning_types=learning_type, dry_run=dry_run
        )
    finally:
        curator.db.close()
    table = Table(title="Curation" + (" (dry run)" if dry_run else ""))
    for column in ("action", "learning", "type", "into", "reason"):
        table.add_column(column)
    for a in report.actions:
        table.add_row(a.action, a.id, a.learning_type or "", a.into or "", _short(a.reason, 70))
    console.print(table)
    console.print(report.summary())


def history(learning_id: str, db: DbOption = DEFAULT_DB) -> None:
    """Show every recorded change of a learning: what, who, why, when, and the text."""
    curator = _curator(db)
    try:
        entries = curator.history(learning_id)
    finally:
        curator.db.close()
    table = Table(title=f"History of {learning_id}")
    for column in ("entry", "when", "action", "actor", "reason", "turn", "status", "text"):
        table.add_column(column)
    for e in entries:
        row = e.new or e.old or {}
        actor = ", ".join(f"{k}={v}" for k, v in e.actor.items())
        table.add_row(
            e.id,
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.action,
            _short(actor, 30),
            _short(e.reason, 40),
            e.turn_id or "",
            "deleted" if e.new is None else str(row.get("status", "")),
            _short(row.get("search_text"), 50),
        )
    console.print(table)


def restore(
    learning_id: str,
    db: DbOption = DEFAULT_DB,
    to_entry: Annotated[
        str | None, typer.Option("--to-entry", help="Restore the row from before this entry.")
    ] = None,
) -> None:
    """Undo the last curation step of a learning (or restore it to before --to-entry)."""
    curator = _curator(db, embedder=True)
    try:
        restored = curator.restore(learning_id, to_entry=to_entry, actor={"cli": "restore"})
    finally:
        curator.db.close()
    console.print(f"restored {restored.id} ({restored.status}): {restored.search_text}")


def forget(
    user: Annotated[str, typer.Option("--user", help="The user to forget.")],
    db: DbOption = DEFAULT_DB,
    delete_shared: Annotated[
        bool,
        typer.Option(help="Also delete shared learnings they authored (default: unlink them)."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete everything private to a user (learnings, history, messages, proposals, work)."""
    if not yes:
        typer.confirm(f"Delete everything private to user {user!r}?", abort=True)
    curator = _curator(db)
    try:
        counts = curator.forget(user, keep_shared=not delete_shared)
    finally:
        curator.db.close()
    console.print(_counts(f"Forgot {user}", counts))


def export(
    user: Annotated[str, typer.Option("--user", help="The user to export.")],
    out: Annotated[Path, typer.Option("--out", help="JSON file to write.")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Write everything private to a user as JSON (restore it with `import`)."""
    curator = _curator(db)
    try:
        data = curator.export(user)
    finally:
        curator.db.close()
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    sizes = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    console.print(_counts(f"Exported {user} to {out}", sizes))


def import_(
    file: Annotated[Path, typer.Argument(help="A JSON file written by `export`.")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Restore an export into the database (running it twice changes nothing)."""
    data = json.loads(file.read_text(encoding="utf-8"))
    curator = _curator(db)
    try:
        counts = curator.import_(data)
    finally:
        curator.db.close()
    console.print(_counts(f"Imported {file}", counts))


def register(app: typer.Typer) -> None:
    """Add the curation commands to the ``learning-machines`` app."""
    app.command()(curate)
    app.command()(history)
    app.command()(restore)
    app.command()(forget)
    app.command()(export)
    app.command(name="import")(import_)
