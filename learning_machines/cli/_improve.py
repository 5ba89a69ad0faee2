"""Self-improvement commands: ``improve`` (reflect now) and the ``improvements`` group.

``improvements list|show|approve|reject|history|rollback|effect|instructions``: review,
versions and measurement.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ..exceptions import LearningMachinesError, UsageError
from ._common import DEFAULT_DB, open_db

__all__ = ["register"]

T = TypeVar("T")

console = Console()
DbOption = Annotated[str, typer.Option("--db", help="SQLite file or postgresql:// URL.")]
MachineOption = Annotated[
    str | None,
    typer.Option(
        "--machine",
        help="module:attribute of your LearningMachine (default: one with the decision log, "
        "feedback and self-improvement, in-process learning off).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Model for reflection and the gate's replays, 'provider:model' "
        "(default: $LEARNING_MACHINES_MODEL; not needed to list, approve or reject).",
    ),
]
AgentOption = Annotated[str | None, typer.Option("--agent", help="The agent's id.")]
TeamOption = Annotated[
    str | None, typer.Option("--team", help="The team (when rules are kept per team).")
]
ByOption = Annotated[str, typer.Option("--by", help="Who decides (recorded).")]

improvements_app = typer.Typer(
    help="Review self-improvement: proposals, approvals, versions, rollback, effect.",
    no_args_is_help=True,
)


def _machine(db_url: str, spec: str | None, model: str | None) -> Any:
    from ..machine import LearningMachine
    from ._app import load_machine

    chosen = model or os.environ.get("LEARNING_MACHINES_MODEL") or None
    db = open_db(db_url)
    if spec:
        return load_machine(spec, db=db, model=chosen)
    return LearningMachine(
        db=db,
        model=chosen,
        decision_log=True,
        feedback=True,
        self_improvement=True,
        background=False,
    )


def _on(db_url: str, spec: str | None, model: str | None, act: Callable[[Any], T]) -> T:
    """``act(machine)`` on the machine for ``db_url``; a library error ends the command loudly."""
    learning = _machine(db_url, spec, model)
    try:
        return act(learning)
    except LearningMachinesError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2 if isinstance(exc, UsageError) else 1) from exc
    finally:
        learning.db.close()


def _proposals_table(title: str, proposals: list[Any]) -> Table:
    table = Table(title=title)
    for column in ("id", "agent", "status", "change", "evidence", "gate"):
        table.add_column(column)
    for p in proposals:
        gate = "-"
        if p.gate is not None:
            gate = ("passed: " if p.gate.passed else "failed: ") + p.gate.reason
        if p.status == "blocked":
            gate = "screen: " + "; ".join(n.reason for n in p.screen)
        table.add_row(
            p.id, p.agent_id or "-", p.status, p.summary, f"{len(p.evidence)} turns", gate
        )
    return table


def improve(
    agent: AgentOption = None,
    team: TeamOption = None,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
    model: ModelOption = None,
) -> None:
    """Reflect now on an agent's turns: one model call, then the screen and the gate."""
    report = _on(db, machine, model, lambda m: m.improve(agent_id=agent, team_id=team))
    console.print(f"reflection for {report.scope.label}: {report.reason}")
    if report.proposals:
        console.print(_proposals_table("Proposals", report.proposals))
    for what, why in report.dropped:
        console.print(f"[dim]dropped ({why}): {what}[/dim]")


@improvements_app.command("list")
def list_(
    agent: AgentOption = None,
    team: TeamOption = None,
    status: Annotated[
        str,
        typer.Option(
            help="pending (offered for approval), failed_gate, blocked, approved, rejected, "
            "withdrawn or all"
        ),
    ] = "pending",
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
) -> None:
    """List proposals (by default those waiting for approval)."""
    rows = _on(
        db,
        machine,
        None,
        lambda m: m.improvements.list(agent_id=agent, team_id=team, status=status),
    )
    console.print(_proposals_table(f"Proposals ({status})", rows))


@improvements_app.command("show")
def show(proposal_id: str, db: DbOption = DEFAULT_DB, machine: MachineOption = None) -> None:
    """Show a proposal: the change, its evidence turns, the screen and the gate's replays."""
    p, turns = _on(
        db,
        machine,
        None,
        lambda m: (m.improvements.get(proposal_id), m.improvements.evidence(proposal_id)),
    )
    console.print(f"[bold]{p.summary}[/bold]\nstatus: {p.status}; made against {p.base_version}")
    console.print(f"expected effect: {p.expected_effect}\nrisk: {p.risk}")
    table = Table(title="Evidence")
    for column in ("turn", "user", "asked", "outcome"):
        table.add_column(column)
    for t in turns:
        outcome = t.record.outcome
        said = "" if outcome is None else f"{outcome.score:+.2f} {outcome.source}"
        table.add_row(t.turn_id, t.user_id, t.record.message[:60], said)
    console.print(table)
    for note in p.screen:
        console.print(f"[red]screen: {note.kind}: {note.reason}[/red]")
    if p.gate is not None:
        gate = Table(title=f"Gate ({'passed' if p.gate.passed else 'failed'}: {p.gate.reason})")
        for column in ("turn", "kind", "verdict", "without the change", "with it", "by"):
            gate.add_column(column)
        for c in p.gate.cases:
            gate.add_row(c.turn_id, c.kind, c.verdict, c.without, c.with_change, c.scored_by)
        console.print(gate)


@improvements_app.command("approve")
def approve(
    proposal_id: str,
    by: ByOption,
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
    model: ModelOption = None,
) -> None:
    """Approve a proposal: the agent's instructions get a new version at once."""
    done = _on(db, machine, model, lambda m: m.improvements.approve(proposal_id, by=by, note=note))
    console.print(f"{done.id}: approved by {done.decided_by}; now at version {done.version}")


@improvements_app.command("reject")
def reject(
    proposal_id: str,
    by: ByOption,
    reason: Annotated[str | None, typer.Option(help="Why (kept with it).")] = None,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
) -> None:
    """Reject a proposal: kept, and the same change is never proposed again."""
    done = _on(
        db, machine, None, lambda m: m.improvements.reject(proposal_id, by=by, reason=reason)
    )
    console.print(f"{done.id}: rejected by {done.decided_by}")


@improvements_app.command("history")
def history(
    agent: AgentOption = None,
    team: TeamOption = None,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
) -> None:
    """Every approval and rollback: versions, who, what, the evidence."""
    changes = _on(db, machine, None, lambda m: m.improvements.history(agent_id=agent, team_id=team))
    table = Table(title="Instruction history")
    for column in ("when", "agent", "action", "from", "to", "by", "change", "evidence"):
        table.add_column(column)
    for c in changes:
        table.add_row(
            c.at[:16], c.agent_id or "-", c.action, c.from_version, c.to_version, c.by,
            c.summary, f"{len(c.evidence)} turns",
        )  # fmt: skip
    console.print(table)


@improvements_app.command("rollback")
def rollback(
    version: str,
    by: ByOption,
    agent: AgentOption = None,
    team: TeamOption = None,
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
) -> None:
    """Make an earlier version of an agent's instructions active again."""
    change = _on(
        db,
        machine,
        None,
        lambda m: m.improvements.rollback(version, by=by, agent_id=agent, team_id=team, note=note),
    )
    console.print(f"rolled back from {change.from_version} to {change.to_version} by {change.by}")


@improvements_app.command("effect")
def effect(version: str, db: DbOption = DEFAULT_DB, machine: MachineOption = None) -> None:
    """Outcomes of the turns before and after a version became active."""
    report = _on(db, machine, None, lambda m: m.improvements.effect(version))
    table = Table(title=f"Effect of {version} (active since {report.activated_at[:16]})")
    for column in ("", "version", "turns", "rated", "went wrong", "failure rate", "mean"):
        table.add_column(column)
    for label, s in (("before", report.before), ("after", report.after)):
        rate = "-" if s.failure_rate is None else f"{s.failure_rate:.2f}"
        mean = "-" if s.mean_score is None else f"{s.mean_score:+.2f}"
        table.add_row(label, s.version, str(s.turns), str(s.rated), str(s.bad), rate, mean)
    console.print(table)


@improvements_app.command("instructions")
def instructions(
    agent: AgentOption = None,
    team: TeamOption = None,
    db: DbOption = DEFAULT_DB,
    machine: MachineOption = None,
) -> None:
    """Print an agent's active instructions (base text plus approved rules) and version."""
    active = _on(db, machine, None, lambda m: m.instructions(agent_id=agent, team_id=team))
    console.print(f"[bold]version {active.version}[/bold]")
    typer.echo(active.text or "(no instructions recorded)")


def register(app: typer.Typer) -> None:
    """Add ``improve`` and the ``improvements`` group to the ``learning-machines`` app."""
    app.command()(improve)
    app.add_typer(improvements_app, name="improvements")
