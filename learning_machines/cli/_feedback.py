"""Feedback commands: ``feedback TURN_ID`` (rate a turn) and ``decisions`` (the decision log)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ._common import DbOption, JsonOption, clip, console, emit_json, open_machine

__all__ = ["register"]

MachineOption = Annotated[
    str | None,
    typer.Option(
        "--machine",
        metavar="MODULE:ATTR",
        help="Your LearningMachine (or a function returning one), e.g. myapp.learning:machine. "
        "Default: one with the decision log and feedback.",
    ),
]


def _machine(db: str | None, spec: str | None) -> Any:
    from ..machine import LearningMachine

    return open_machine(db, spec, default=lambda: LearningMachine(decision_log=True, feedback=True))


def _decision_json(decision: Any) -> dict[str, Any]:
    return {
        "id": decision.id,
        "turn_id": decision.turn_id,
        "user_id": decision.user_id,
        "created_at": decision.created_at,
        "verdict": decision.verdict,
        "helpful": decision.helpful,
        "harmful": decision.harmful,
        "record": decision.record.model_dump(mode="json"),
    }


def feedback(
    turn_id: Annotated[
        str,
        typer.Argument(
            metavar="TURN_ID", help="The turn to rate (RunResult.turn_id).", show_default=False
        ),
    ],
    score: Annotated[
        float,
        typer.Option(
            "--score",
            metavar="SCORE",
            help="From -1 (bad) to 1 (good); thumbs down is -1, up is 1.",
        ),
    ],
    comment: Annotated[
        str | None, typer.Option("--comment", metavar="TEXT", help="What went right or wrong.")
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", metavar="RATER", help="Who rates (default: the turn's user)."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", metavar="USER", help="Whose turn it is (found from the id if not given)."
        ),
    ] = None,
    db: DbOption = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rate a turn: credits its outcome to what it recalled; a new rating replaces yours."""
    learning = _machine(db, machine)
    signal = learning.feedback(turn_id=turn_id, score=score, comment=comment, by=by, user_id=user)
    decision = learning.decisions.get(turn_id, user_id=signal.user_id)
    if as_json:
        emit_json({"signal": signal, "decision": _decision_json(decision)})
        return
    outcome = decision.outcome
    console.print(
        f"turn {turn_id} of {signal.user_id}: {signal.source} {signal.score:+g} by "
        f"{signal.rater.split(':', 1)[-1]}; outcome now "
        + (f"{outcome.score:+.2f} ({outcome.source})" if outcome else "none")
        + f", credited to {len(decision.record.credit)} learning(s)"
    )


def decisions(
    user: Annotated[str, typer.Option("--user", metavar="USER", help="Whose decisions.")],
    session: Annotated[
        str | None, typer.Option("--session", metavar="SESSION", help="Only this session.")
    ] = None,
    tool: Annotated[
        str | None, typer.Option("--tool", metavar="TOOL", help="Only turns calling this tool.")
    ] = None,
    outcome: Annotated[
        str | None,
        typer.Option("--outcome", metavar="OUTCOME", help="good, bad, unclear or unrated."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="At most this many, newest first.")
    ] = 20,
    db: DbOption = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a user's decision log: what each turn did and how it turned out."""
    learning = _machine(db, machine)
    rows = learning.decisions.list(
        user_id=user, session_id=session, tool=tool, outcome=outcome, limit=limit
    )
    if as_json:
        emit_json([_decision_json(d) for d in rows])
        return
    table = Table(
        "turn", "when", "message", "tools", "outcome", box=box.SIMPLE_HEAD, title_justify="left"
    )
    table.columns[0].no_wrap = True  # ids must stay whole to be copied
    table.title = f"Decisions of {user}"
    for d in rows:
        table.add_row(
            d.turn_id,
            f"{d.created_at:%Y-%m-%d %H:%M}",
            clip(d.record.message, 50),
            ", ".join(c.name for c in d.record.tool_calls),
            d.verdict if d.outcome is None else f"{d.verdict} ({d.outcome.score:+.2f})",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the feedback commands to the ``learning-machines`` app."""
    app.command()(feedback)
    app.command()(decisions)
