"""Feedback commands: ``feedback TURN_ID`` (rate a turn) and ``decisions`` (the decision log)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..exceptions import LearningMachinesError, UsageError
from ._common import DEFAULT_DB, open_db

__all__ = ["register"]

console = Console()
DbOption = Annotated[str, typer.Option("--db", help="SQLite file or postgresql:// URL.")]
MachineOption = Annotated[
    str | None,
    typer.Option(
        "--machine",
        help="module:attribute of your LearningMachine (default: one with the decision log and "
        "feedback, in-process learning off).",
    ),
]


def _machine(db_url: str, spec: str | None) -> Any:
    from ..machine import LearningMachine
    from ._app import load_machine

    db = open_db(db_url)
    if spec:
        return load_machine(spec, db=db, model=None)
    return LearningMachine(db=db, decision_log=True, feedback=True, background=False)


def _fail(exc: LearningMachinesError) -> typer.Exit:
    console.print(f"[red]{exc}[/red]")
    return typer.Exit(2 if isinstance(exc, UsageError) else 1)


def feedback(
    turn_id: Annotated[str, typer.Argument(help="The turn to rate (RunResult.turn_id).")],
    score: Annotated[
        float,
        typer.Option("--score", help="From -1 (bad) to 1 (good); thumbs down is -1, up is 1."),
    ],
    comment: Annotated[str | None, typer.Option(help="What went right or wrong.")] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who rates (default: the turn's user).")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Whose turn it is (found from the id if not given)."),
    ] = None,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
) -> None:
    """Rate a turn: credits its outcome to what it recalled; a new rating replaces yours."""
    learning = _machine(db, machine)
    try:
        signal = learning.feedback(
            turn_id=turn_id, score=score, comment=comment, by=by, user_id=user
        )
        decision = learning.decisions.get(turn_id, user_id=signal.user_id)
    except LearningMachinesError as exc:
        raise _fail(exc) from exc
    finally:
        learning.db.close()
    outcome = decision.outcome
    console.print(
        f"turn {turn_id} of {signal.user_id}: {signal.source} {signal.score:+g} by "
        f"{signal.rater.split(':', 1)[-1]}; outcome now "
        + (f"{outcome.score:+.2f} ({outcome.source})" if outcome else "none")
        + f", credited to {len(decision.record.credit)} learning(s)"
    )


def decisions(
    user: Annotated[str, typer.Option("--user", help="Whose decisions.")],
    session: Annotated[str | None, typer.Option("--session", help="Only this session.")] = None,
    tool: Annotated[
        str | None, typer.Option("--tool", help="Only turns calling this tool.")
    ] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="good, bad, unclear or unrated.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
) -> None:
    """List a user's decision log: what each turn did and how it turned out."""
    learning = _machine(db, machine)
    try:
        rows = learning.decisions.list(
            user_id=user, session_id=session, tool=tool, outcome=outcome, limit=limit
        )
    except LearningMachinesError as exc:
        raise _fail(exc) from exc
    finally:
        learning.db.close()
    table = Table(title=f"Decisions of {user}")
    for column in ("turn", "when", "message", "tools", "outcome"):
        table.add_column(column)
    for d in rows:
        table.add_row(
            d.turn_id,
            f"{d.created_at:%Y-%m-%d %H:%M}",
            d.record.message[:50],
            ", ".join(c.name for c in d.record.tool_calls),
            d.verdict if d.outcome is None else f"{d.verdict} ({d.outcome.score:+.2f})",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the feedback commands to the ``learning-machines`` app."""
    app.command()(feedback)
    app.command()(decisions)
