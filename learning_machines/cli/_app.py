"""The ``learning-machines`` command: demo, chat, show, worker and proposals."""

from __future__ import annotations

import importlib
import os
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..db import Db, LearningFilter, ListLearnings
from ._common import DEFAULT_DB, open_db

__all__ = ["app", "main"]

app = typer.Typer(
    name="learning-machines",
    help="Agents that learn from every interaction. Start with: learning-machines demo",
    no_args_is_help=True,
    add_completion=False,
)
proposals_app = typer.Typer(help="Review proposals (PROPOSE and HITL modes).", no_args_is_help=True)
app.add_typer(proposals_app, name="proposals")
console = Console()

DbOption = Annotated[str, typer.Option("--db", help="SQLite file or postgresql:// URL.")]
MachineOption = Annotated[
    str | None,
    typer.Option(
        "--machine",
        help="module:attribute of your LearningMachine (or a function returning one). "
        "Default: all built-in stores in BACKGROUND mode.",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="pydantic-ai model string, e.g. openai:gpt-4.1-mini "
        "(default: $LEARNING_MACHINES_MODEL).",
    ),
]


def load_machine(spec: str | None, *, db: Db, model: Any, background: bool = True) -> Any:
    """The machine named by ``module:attribute``, or one with every built-in store.

    ``background=False`` leaves learning to a separate ``learning-machines worker``.
    """
    from ..machine import LearningMachine

    if spec:
        module_name, _, attribute = spec.partition(":")
        target = getattr(importlib.import_module(module_name), attribute or "machine")
        machine = (
            target() if callable(target) and not isinstance(target, LearningMachine) else target
        )
        if not isinstance(machine, LearningMachine):
            raise typer.BadParameter(f"{spec} is not a LearningMachine")
        if not background:
            machine.background = False
        machine.bind(db=db, model=model)
        return machine
    return LearningMachine(
        db=db,
        model=model,
        user_profile=True,
        session_context=True,
        learned_knowledge=True,
        entity_memory=True,
        episodic_memory=True,
        background=background,
    )


def _model(model: str | None) -> str | None:
    return model or os.environ.get("LEARNING_MACHINES_MODEL") or None


@app.command()
def demo(
    db: Annotated[str, typer.Option("--db", help="Where the demo writes.")] = "demo.db",
    model: ModelOption = None,
    keep: Annotated[bool, typer.Option(help="Keep what an earlier demo learned.")] = False,
) -> None:
    """Run the whole learning loop on embedded defaults and show what was learned."""
    from .._demo import run_demo

    if not run_demo(db_path=db, model=_model(model), keep=keep, console=console):
        raise typer.Exit(1)


@app.command()
def chat(
    user: Annotated[str, typer.Option("--user", help="Who is chatting.")] = "me",
    session: Annotated[str, typer.Option("--session", help="Session id.")] = "cli",
    model: ModelOption = None,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
) -> None:
    """Chat with an agent that learns (type /quit to leave, /context to see what it recalled)."""
    from .._agent import Agent

    chosen = _model(model)
    if chosen is None:
        raise typer.BadParameter(
            "chat needs a real model: pass --model openai:gpt-4.1-mini (or set "
            "LEARNING_MACHINES_MODEL); try `learning-machines demo` for an offline run"
        )
    backend = open_db(db)
    agent = Agent(
        model=chosen, db=backend, learning=load_machine(machine, db=backend, model=chosen)
    )
    console.print(f"[dim]Learning as {user!r} in session {session!r}. /quit to leave.[/dim]")
    last_context = ""
    while True:
        try:
            message = console.input("[bold]you> [/bold]")
        except (EOFError, KeyboardInterrupt):
            break
        if message.strip() in {"/quit", "/exit"}:
            break
        if message.strip() == "/context":
            console.print(last_context or "[dim](nothing recalled)[/dim]")
            continue
        result = agent.run(message, user_id=user, session_id=session)
        last_context = result.context.text if result.context else ""
        console.print(f"[bold green]agent>[/bold green] {result.text}")
    agent.wait_idle(timeout=120)


def learnings_table(db: Db, user: str) -> Table:
    """Everything ``user`` may read that they own or authored, as a table."""
    rows = db.run(
        ListLearnings(
            filter=LearningFilter(reader_user_id=user, user_id=user), limit=None, ascending=True
        )
    )
    table = Table(title=f"What is known about {user}")
    table.add_column("store")
    table.add_column("namespace")
    table.add_column("learning")
    table.add_column("learned at")
    for row in sorted(rows, key=lambda r: (r.learning_type, r.created_at, r.id)):
        table.add_row(
            row.learning_type, row.namespace, row.search_text, f"{row.created_at:%Y-%m-%d %H:%M}"
        )
    return table


@app.command()
def show(
    user: Annotated[str, typer.Option("--user", help="The user to show.")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Show what is known about a user (their private learnings and what they contributed)."""
    backend = open_db(db)
    console.print(learnings_table(backend, user))


@app.command()
def worker(
    db: DbOption = DEFAULT_DB,
    model: ModelOption = None,
    machine: MachineOption = None,
    once: Annotated[bool, typer.Option(help="Process what is pending, then exit.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls when idle.")] = 1.0,
) -> None:
    """Process pending learning work from other processes (several workers may share a db)."""
    from .._sync import run_sync

    backend = open_db(db)
    learning = load_machine(machine, db=backend, model=_model(model))
    learning.background = False
    total = 0
    while True:
        result = run_sync(learning.worker.run_pending())
        total += len(result.done) + len(result.failed)
        if result.done or result.failed:
            console.print(f"processed {len(result.done)} ok, {len(result.failed)} failed")
        if once:
            break
        time.sleep(poll)
    console.print(f"[dim]{total} item(s) processed[/dim]")


@proposals_app.command("list")
def proposals_list(
    db: DbOption = DEFAULT_DB,
    status: Annotated[
        str, typer.Option(help="pending, approved, rejected, expired or all")
    ] = "pending",
) -> None:
    """List proposals."""
    from ..db import ListProposals

    statuses = None if status == "all" else (status,)
    rows = open_db(db).run(ListProposals(statuses=statuses, limit=None))  # type: ignore[arg-type]
    table = Table(title="Proposals")
    for column in ("id", "mode", "store", "user", "summary", "status", "decided by"):
        table.add_column(column)
    for p in rows:
        table.add_row(
            p.id, p.mode, p.store, p.user_id or "", p.summary, p.status, p.decided_by or ""
        )
    console.print(table)


def _decide(
    db: str, machine: str | None, proposal_id: str, by: str, note: str | None, approve: bool
) -> None:
    backend = open_db(db)
    learning = load_machine(machine, db=backend, model=None if machine else "test")
    book = learning.proposals
    result = (
        book.approve(proposal_id, by=by, note=note)
        if approve
        else book.reject(proposal_id, by=by, note=note)
    )
    console.print(f"{result.id}: {result.status} by {result.decided_by}")


@proposals_app.command("approve")
def proposals_approve(
    proposal_id: str,
    by: Annotated[str, typer.Option("--by", help="Reviewer id (recorded).")],
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
) -> None:
    """Approve a proposal (a HITL proposal cannot be approved by the user who made it)."""
    _decide(db, machine, proposal_id, by, note, approve=True)


@proposals_app.command("reject")
def proposals_reject(
    proposal_id: str,
    by: Annotated[str, typer.Option("--by", help="Reviewer id (recorded).")],
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
) -> None:
    """Reject a proposal (kept for audit)."""
    _decide(db, machine, proposal_id, by, note, approve=False)


def _register_optional() -> None:
    for module in ("._curation", "._bench", "._server"):
        try:
            register = importlib.import_module(module, __package__).register
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(module.lstrip(".")):
                continue
            raise
        register(app)


_register_optional()


def main() -> None:
    """Entry point of the ``learning-machines`` command."""
    app()
