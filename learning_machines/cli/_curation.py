"""Curation and data commands, all through ``machine.service``.

``curate``, ``history``, ``restore``, ``forget``, ``export``, ``import`` and ``reembed``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from .._progress import progress
from ..db._records import ALL_STATUSES
from ..exceptions import NotFoundError, ValidationError
from ._common import (
    DbOption,
    JsonOption,
    MachineOption,
    MkdirOption,
    clip,
    console,
    db_url,
    emit_json,
    open_machine,
)

__all__ = ["register"]

LearningId = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="The learning's id, or a unique start of it (from `show`).",
        show_default=False,
    ),
]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in counts.items() if n)


def curate(
    db: DbOption = None,
    user: Annotated[
        str | None, typer.Option("--user", metavar="USER", help="Only this user's scopes.")
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", metavar="NS", help="Only this namespace (repeatable)."),
    ] = None,
    learning_type: Annotated[
        list[str] | None,
        typer.Option("--type", metavar="TYPE", help="Only this learning type (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; write nothing.")
    ] = False,
    judge_model: Annotated[
        str | None,
        typer.Option(
            "--judge-model",
            metavar="PROVIDER:MODEL",
            help="A model that judges uncertain near duplicates, in one call per run.",
        ),
    ] = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Merge duplicates, supersede outdated facts, archive what decayed; say what changed."""
    service = open_machine(db, machine).service
    if judge_model:
        from ..curation import ModelJudge

        service.curator.judge = ModelJudge(judge_model)
    with progress("curating scopes", heartbeat=True) as bar:
        report = service.curate(
            user_id=user,
            namespaces=namespace,
            learning_types=learning_type,
            dry_run=dry_run,
            on_progress=bar.update,
        )
    if as_json:
        emit_json({"summary": report.summary(), "changed": report.changed, **vars(report)})
        return
    if report.actions:
        ids = service.short_ids(
            [a.id for a in report.actions if a.action != "expire"]
            + [a.into for a in report.actions if a.into]
        )
        table = Table(
            "learning", "change", "into", "why", box=box.SIMPLE_HEAD, title_justify="left"
        )
        table.columns[0].no_wrap = True
        table.title = "Curation" + (" (dry run: nothing written)" if dry_run else "")
        for a in report.actions:
            table.add_row(
                ids.get(a.id, a.id), a.action, ids.get(a.into or "", ""), clip(a.reason, 120)
            )
        console.print(table)
    console.print(report.summary())


def history(learning_id: LearningId, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every recorded change of a learning: when, what, who, why, and the text after it."""
    service = open_machine(db).service
    whole = service.resolve_id(learning_id)
    entries = service.history(whole)
    if as_json:
        emit_json(entries)
        return
    short = service.short_ids([e.id for e in entries], kind="history")
    table = Table("entry", "when", "change", "details", box=box.SIMPLE_HEAD, title_justify="left")
    table.columns[0].no_wrap = True
    table.title = f"History of learning {whole}"
    for e in entries:
        row = e.new or e.old or {}
        actor = ", ".join(f"{k}={v}" for k, v in e.actor.items())
        details = [f"by {clip(actor, 60)}" if actor else ""]
        if e.reason:
            details.append(f"why: {clip(e.reason, 100)}")
        status = "deleted" if e.new is None else str(row.get("status", ""))
        details.append(f"{status}: {clip(row.get('search_text'), 160)}")
        table.add_row(
            short[e.id],
            e.created_at.strftime("%Y-%m-%d %H:%M"),
            e.action,
            "\n".join(d for d in details if d),
        )
    console.print(table)
    console.print(
        f"[dim]Undo the last curation step: learning-machines restore {whole[:8]} "
        "(or --to-entry ENTRY)[/dim]"
    )


def restore(
    learning_id: LearningId,
    db: DbOption = None,
    to_entry: Annotated[
        str | None,
        typer.Option(
            "--to-entry",
            metavar="ENTRY",
            help="Bring back the row from before this history entry (an id or unique start).",
        ),
    ] = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Undo the last curation step of a learning (or go back to before --to-entry)."""
    service = open_machine(db, machine).service
    whole = service.resolve_id(learning_id)
    entry = service.resolve_id(to_entry, kind="history") if to_entry else None
    restored = service.restore(whole, to_entry=entry)
    if as_json:
        emit_json(restored)
        return
    console.print(f"restored {restored.id} ({restored.status}): {clip(restored.search_text, 200)}")


def _known(service: Any, user: str) -> dict[str, int]:
    """How much is stored for ``user``: their private data and what they contributed."""
    data = service.export(user)
    counts = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    shared = [
        r
        for r in service.learnings(user_id=user, statuses=ALL_STATUSES, limit=None)
        if r.namespace != "user"
    ]
    counts["shared learnings they contributed"] = len(shared)
    return counts


def forget(
    user: Annotated[str, typer.Option("--user", metavar="USER", help="The user to forget.")],
    db: DbOption = None,
    delete_shared: Annotated[
        bool,
        typer.Option(
            "--delete-shared",
            help="Also delete shared learnings they contributed (default: keep them, unlinked).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete everything private to a user: learnings, history, messages, proposals, work."""
    service = open_machine(db).service
    known = _known(service, user)
    if not any(known.values()):
        raise NotFoundError(
            f"nothing is stored for user {user!r} in {db_url(db)}; nothing was deleted (user "
            "ids are case-sensitive)"
        )
    if not yes:
        typer.confirm(f"Delete everything private to {user!r} ({_counts(known)})?", abort=True)
    counts = service.forget(user, keep_shared=not delete_shared)
    if as_json:
        emit_json({"user_id": user, "deleted": counts})
        return
    console.print(f"Forgot {user}: {_counts(counts) or 'nothing left to delete'}.")


def export(
    user: Annotated[str, typer.Option("--user", metavar="USER", help="The user to export.")],
    out: Annotated[
        Path, typer.Option("--out", metavar="FILE", help="JSON file to write ('-': stdout).")
    ],
    db: DbOption = None,
) -> None:
    """Write everything private to a user as JSON (bring it back with `import`)."""
    data = open_machine(db).service.export(user)
    counts = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    if not any(counts.values()):
        raise NotFoundError(
            f"nothing is stored for user {user!r} in {db_url(db)}; nothing was written (user "
            "ids are case-sensitive)"
        )
    text = json.dumps(data, ensure_ascii=False, indent=1)
    if str(out) == "-":
        typer.echo(text)
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"Exported {user} to {out}: {_counts(counts)}.")


def import_(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="A JSON file written by `export`.", show_default=False),
    ],
    db: DbOption = None,
    mkdir: MkdirOption = False,
    as_json: JsonOption = False,
) -> None:
    """Bring back an export (running it twice changes nothing)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{file} is not JSON ({exc.msg}, line {exc.lineno}); pass a file written by "
            "`learning-machines export`"
        ) from None
    if not isinstance(data, dict):
        raise ValidationError(f"{file} is not a user export; pass a file written by `export`")
    service = open_machine(db, create=True, mkdir=mkdir).service
    with progress(f"importing {file.name}", heartbeat=True):
        counts = service.import_(data)
    if as_json:
        emit_json({"user_id": data.get("user_id"), "written": counts})
        return
    written = _counts(counts)
    console.print(
        f"Imported {data.get('user_id')} from {file}: {written}."
        if written
        else f"Nothing new in {file}: everything was already there."
    )


def reembed(
    db: DbOption = None,
    embedder: Annotated[
        str | None,
        typer.Option(
            "--embedder",
            metavar="NAME",
            help="minilm (the default model), openai:MODEL (an OpenAI-compatible endpoint, "
            "$OPENAI_API_KEY / $OPENAI_BASE_URL) or hash (tests).",
        ),
    ] = None,
    machine: MachineOption = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", metavar="N", help="Texts per embedder call.")
    ] = 64,
    as_json: JsonOption = False,
) -> None:
    """Re-embed every learning whose vector another embedder made (after changing embedder)."""
    service = open_machine(db, machine, embedder=_embedder(embedder)).service
    with progress(f"re-embedding with {service.embedder.name}", heartbeat=True) as bar:
        report = service.reembed(batch_size=batch_size, on_progress=bar.update)
    if as_json:
        emit_json(report)
        return
    before = _counts(report.before) or "none"
    if report.updated:
        console.print(
            f"Re-embedded {report.updated:,} learnings with {report.embedder} "
            f"(vectors before: {before})."
        )
    else:
        console.print(f"Nothing to do: every vector was already made by {report.embedder}.")


def _embedder(name: str | None) -> Any:
    from ..embedders import HashEmbedder, OpenAIEmbedder, default_embedder

    if name is None:
        return None
    if name == "minilm":
        return default_embedder()
    if name == "hash" or name.startswith("hash-"):
        dims = name.partition("-")[2]
        return HashEmbedder(dimensions=int(dims)) if dims.isdigit() else HashEmbedder()
    if name.startswith("openai:"):
        return OpenAIEmbedder(name.partition(":")[2])
    raise ValidationError(f"unknown --embedder {name!r}; use minilm, openai:MODEL or hash")


def register(app: typer.Typer) -> None:
    """Add the curation and data commands to the ``learning-machines`` app."""
    app.command()(curate)
    app.command()(history)
    app.command()(restore)
    app.command()(forget)
    app.command()(export)
    app.command(name="import")(import_)
    app.command()(reembed)
