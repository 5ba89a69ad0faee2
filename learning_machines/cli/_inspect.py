"""Reading and reviewing: ``show``, ``pending`` and ``proposals list|approve|reject``.

Ids are shown as their shortest unique start (8 characters or more); every command that takes
an id accepts the whole id or such a start. ``--json`` prints whole records for scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from ..db import Learning
from ..db._records import ALL_STATUSES
from ..exceptions import ValidationError
from ._common import (
    ByOption,
    DbOption,
    JsonOption,
    MachineOption,
    NoteOption,
    clip,
    console,
    db_url,
    emit_json,
    open_machine,
)

__all__ = ["register"]

_PROPOSAL_STATUSES = ("pending", "approved", "rejected", "expired")
_WORK_STATUSES = ("pending", "running", "failed", "done")


def learning_text(row: Learning, width: int = 300) -> str:
    """How a learning reads in a table, cut to ``width`` with ``…``.

    An episode shows its own words, not the text it was indexed with (which repeats the turn
    before it).
    """
    if row.learning_type == "episode" and "text" in row.content:
        caption = row.content.get("caption")
        said = str(row.content["text"]) + (f" [image: {caption}]" if caption else "")
        return clip(f"{row.content.get('speaker', '?')}: {said}", width)
    return clip(row.search_text, width)


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(*columns, title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.columns[0].no_wrap = True  # ids must stay whole to be copied
    return table


def show(
    user: Annotated[str, typer.Option("--user", metavar="USER", help="The user to show.")],
    db: DbOption = None,
    learning_type: Annotated[
        str | None, typer.Option("--type", metavar="TYPE", help="Only this learning type.")
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Also archived and superseded learnings.")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="At most this many, newest first.")
    ] = 200,
    as_json: JsonOption = False,
) -> None:
    """Show what is known about a user: their private learnings and what they contributed."""
    service = open_machine(db).service
    rows = service.learnings(
        user_id=user,
        learning_type=learning_type,
        statuses=ALL_STATUSES if everything else ("active",),
        limit=limit,
    )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(f"Nothing is known about user {user!r} in {db_url(db)}.")
        return
    ids = service.short_ids([r.id for r in rows])
    table = _table("id", "store", "namespace", "learning", title=f"What is known about {user}")
    for row in sorted(rows, key=lambda r: (r.learning_type, r.created_at, r.id)):
        status = "" if row.status == "active" else f" [{row.status}]"
        table.add_row(ids[row.id], row.learning_type, row.namespace, learning_text(row) + status)
    console.print(table)
    console.print(
        "[dim]See how one changed: learning-machines history ID (ids: a unique start is "
        "enough)[/dim]"
    )


def pending(
    db: DbOption = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="pending, running, failed, done or all (repeatable; default: all but done).",
        ),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", metavar="KIND", help="Only this kind of work: extract or curate."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="At most this many.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Learning work not finished yet: waiting, running, or parked as failed (with the error)."""
    statuses = _statuses(status or ["pending", "running", "failed"], _WORK_STATUSES, "work")
    service = open_machine(db).service
    items = service.pending(
        statuses=statuses,
        kinds=(kind,) if kind else None,
        limit=limit,
    )
    if as_json:
        emit_json(items)
        return
    if not items:
        console.print(f"No {' or '.join(statuses)} learning work in {db_url(db)}.")
        return
    ids = service.short_ids([w.id for w in items], kind="work")
    table = _table("id", "kind", "status", "user", "tries", "error / waiting since")
    for w in items:
        error = (w.last_error or "").strip().splitlines()
        detail = error[0] if w.status == "failed" and error else f"{w.created_at:%Y-%m-%d %H:%M}"
        table.add_row(
            ids[w.id],
            w.kind,
            w.status,
            w.user_id or "",
            f"{w.attempts}/{w.max_attempts}",
            clip(detail, 200),
        )
    console.print(table)


def _statuses(given: list[str], allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    if "all" in given:
        return allowed
    bad = [s for s in given if s not in allowed]
    if bad:
        raise ValidationError(
            f"unknown {what} status {', '.join(map(repr, bad))}; use {', '.join(allowed)} or all"
        )
    return tuple(dict.fromkeys(given))


proposals_app = typer.Typer(
    help="Review writes waiting for approval (PROPOSE and HITL stores).", no_args_is_help=True
)


@proposals_app.command("list")
def proposals_list(
    db: DbOption = None,
    status: Annotated[
        str,
        typer.Option(
            "--status", metavar="STATUS", help="pending, approved, rejected, expired or all."
        ),
    ] = "pending",
    user: Annotated[
        str | None, typer.Option("--user", metavar="USER", help="Only this user's proposals.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List proposals, newest first, with the namespace each would write to."""
    _statuses([status], _PROPOSAL_STATUSES, "proposal")  # refuses an unknown status
    chosen = status
    service = open_machine(db).service
    rows = service.proposals.list(
        status=None if chosen == "all" else chosen, user_id=user, limit=None
    )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(f"No {'' if chosen == 'all' else chosen + ' '}proposals in {db_url(db)}.")
        return
    ids = service.short_ids([p.id for p in rows], kind="proposal")
    table = _table("id", "status", "user", "namespace", "proposed")
    for p in rows:
        state = p.status + (f"\nby {p.decided_by}" if p.decided_by else "")
        table.add_row(
            ids[p.id],
            state,
            p.user_id or "",
            p.namespace,
            f"{p.store} ({p.mode}): {clip(p.summary, 200)}",
        )
    console.print(table)
    if chosen == "pending":
        console.print(
            "[dim]Decide: learning-machines proposals approve ID --by REVIEWER (or reject)[/dim]"
        )


ProposalId = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="The proposal's id, or a unique start of it (from `proposals list`).",
        show_default=False,
    ),
]


def _decision(*, approve: bool, doc: str) -> Callable[..., None]:
    """The ``proposals approve`` or ``reject`` command (the same options, one verb apart)."""

    def decide(
        proposal_id: ProposalId,
        by: ByOption,
        note: NoteOption = None,
        db: DbOption = None,
        machine: MachineOption = None,
        as_json: JsonOption = False,
    ) -> None:
        service = open_machine(db, machine).service
        whole = service.resolve_id(proposal_id, kind="proposal")
        book = service.proposals
        decided = (
            book.approve(whole, by=by, note=note)
            if approve
            else book.reject(whole, by=by, note=note)
        )
        if as_json:
            emit_json(decided)
            return
        saved = f"; saved as learning {decided.learning_id}" if decided.learning_id else ""
        console.print(
            f"{decided.status} {decided.id} ({decided.store} in {decided.namespace}) by "
            f"{decided.decided_by}{saved}"
        )

    decide.__doc__ = doc
    return decide


proposals_app.command("approve")(
    _decision(
        approve=True,
        doc="Approve a proposal and write it (a HITL proposal needs a reviewer other than its "
        "user).",
    )
)
proposals_app.command("reject")(
    _decision(
        approve=False, doc="Reject a proposal; nothing is written (the proposal is kept for audit)."
    )
)


def register(app: typer.Typer) -> None:
    """Add ``show``, ``pending`` and ``proposals`` to ``app``."""
    app.command()(show)
    app.command()(pending)
    app.add_typer(proposals_app, name="proposals")
