"""The ``learning-machines`` command: demo, chat and worker here; the rest registered below.

Commands that inspect or change what was learned live in ``_inspect`` (show, pending,
proposals) and ``_curation`` (curate, history, restore, forget, export, import, reembed).
"""

from __future__ import annotations

import importlib
import os
import shlex
import time
from typing import Annotated

import typer

from .. import __version__
from .._progress import progress
from .._sync import run_sync
from ..exceptions import ConfigurationError
from ._common import (
    DbOption,
    MachineOption,
    MkdirOption,
    ModelOption,
    console,
    db_url,
    model_name,
    open_db,
    open_machine,
)
from ._group import DEBUG_ENV, Group, run, styled

__all__ = ["app", "main"]

app = typer.Typer(
    name="learning-machines",
    help="Agents that learn from every interaction. Start with: learning-machines demo",
    no_args_is_help=True,
    add_completion=False,
    cls=Group,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"learning-machines {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help=f"Show tracebacks instead of one-line errors (or {DEBUG_ENV}=1)."
        ),
    ] = False,
) -> None:
    """Agents that learn from every interaction. Start with: learning-machines demo."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


@app.command()
def demo(
    db: DbOption = None,
    model: ModelOption = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep what an earlier demo learned (default: reset it).")
    ] = False,
    mkdir: MkdirOption = False,
) -> None:
    """The whole learning loop on embedded defaults, offline, in seconds: see what it learns."""
    from .._demo import run_demo
    from .._models import resolve_model

    chosen = model_name(model)
    if chosen is not None:
        resolve_model(chosen)  # a missing SDK or key is said before anything is written
    url = db_url(db)
    backend = open_db(url, create=True, mkdir=mkdir)
    option = "" if db is None else f"--db {shlex.quote(url)}"
    if not run_demo(db=backend, db_option=option, model=chosen, keep=keep, console=console):
        raise typer.Exit(1)


@app.command()
def chat(
    user: Annotated[str, typer.Option("--user", metavar="USER", help="Who is chatting.")] = "me",
    session: Annotated[
        str, typer.Option("--session", metavar="ID", help="Session id (keeps the conversation).")
    ] = "cli",
    model: ModelOption = None,
    db: DbOption = None,
    machine: MachineOption = None,
    mkdir: MkdirOption = False,
) -> None:
    """Chat with an agent that learns (/quit to leave, /context to see what it recalled)."""
    from .._agent import Agent

    chosen = model_name(model)
    if chosen is None:
        raise ConfigurationError(
            "chat needs a real model: pass --model openai:gpt-4.1-mini (or set "
            "LEARNING_MACHINES_MODEL); `learning-machines demo` runs offline without one"
        )
    learning = open_machine(
        db, machine, model=chosen, background=True, learns=True, create=True, mkdir=mkdir
    )
    agent = Agent(model=chosen, db=learning.db, learning=learning)
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


@app.command()
def worker(
    db: DbOption = None,
    model: ModelOption = None,
    machine: MachineOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Process what is pending now, then exit.")
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", metavar="SECONDS", help="Seconds between polls when idle.")
    ] = 1.0,
) -> None:
    """Learn from turns other processes recorded (several workers may share a db)."""
    learning = open_machine(db, machine, model=model_name(model), learns=True)
    needs = learning.registry.needing_a_model()
    if needs and learning.model is None:
        raise ConfigurationError(
            f"stores {', '.join(needs)} extract with a model: pass --model openai:gpt-4.1-mini "
            "(or set LEARNING_MACHINES_MODEL, or give --machine a model)"
        )
    # A dedicated worker takes every kind of work: a turn its machine cannot honour (other
    # stores, modes or namespaces) is parked loudly rather than left waiting unseen.
    learning.worker.kinds = None
    total = 0
    while True:
        waiting = len(learning.service.pending(statuses=("pending",), limit=None))
        if waiting:
            ok = failed = 0
            with progress("learning", total=waiting) as bar:
                while True:
                    result = run_sync(learning.worker.run_pending(limit=1))
                    if not result.done and not result.failed:
                        break
                    ok += len(result.done)
                    failed += len(result.failed)
                    bar.update(ok + failed, max(waiting, ok + failed))
            total += ok + failed
            console.print(f"processed {ok} ok, {failed} failed")
            if failed:
                console.print("[dim]See why: learning-machines pending --status failed[/dim]")
        if once:
            break
        time.sleep(poll)
    console.print(f"[dim]{total} item(s) processed[/dim]")


def _register_optional() -> None:
    for module in (
        "._inspect",
        "._curation",
        "._bench",
        "._reindex",
        "._server",
        "._feedback",
        "._improve",
    ):
        try:
            register = importlib.import_module(module, __package__).register
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(module.lstrip(".")):
                continue
            raise
        register(app)


_register_optional()
styled(app)


def main() -> None:
    """Entry point of the ``learning-machines`` command."""
    run(app)
