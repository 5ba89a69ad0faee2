"""Self-improvement commands: ``improve`` (reflect now) and the ``improvements`` group.

``improvements list|show|approve|reject|history|rollback|effect|instructions``: review,
versions and measurement. Only ``improve`` and ``approve`` may call a model (reflection, and
the gate again when the instructions moved since a proposal was gated); the rest never do.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..improvement import ImprovementProposal
from ._common import (
    ByOption,
    DbOption,
    JsonOption,
    NoteOption,
    clip,
    console,
    emit_json,
    model_name,
    open_machine,
)

__all__ = ["register"]

MachineOption = Annotated[
    str | None,
    typer.Option(
        "--machine",
        metavar="MODULE:ATTR",
        help="Your LearningMachine (or a function returning one), e.g. myapp.learning:machine. "
        "Default: one with the decision log, feedback and self-improvement.",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="PROVIDER:MODEL",
        help="Model for reflection and the gate's replays, e.g. openai:gpt-4.1-mini (default: "
        "the machine's, else $LEARNING_MACHINES_MODEL).",
    ),
]
AgentOption = Annotated[
    str | None, typer.Option("--agent", metavar="AGENT", help="The agent's id.")
]
TeamOption = Annotated[
    str | None,
    typer.Option("--team", metavar="TEAM", help="The team (when rules are kept per team)."),
]
ProposalId = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="The proposal's id, or a unique start of it (from `improvements list`).",
        show_default=False,
    ),
]
VersionArg = Annotated[
    str,
    typer.Argument(
        metavar="VERSION",
        help="A version of the instructions, v… (from `improvements history`).",
        show_default=False,
    ),
]

improvements_app = typer.Typer(
    help="Review self-improvement: proposals, approvals, versions, rollback, effect.",
    no_args_is_help=True,
)


def _machine(
    db: str | None, spec: str | None, *, model: str | None = None, calls: bool = False
) -> Any:
    """The machine to work with; it keeps (or gets) a model only for a command that ``calls``."""
    from ..machine import LearningMachine

    def default() -> LearningMachine:
        return LearningMachine(decision_log=True, feedback=True, self_improvement=True)

    return open_machine(db, spec, model=model_name(model), learns=calls, default=default)


def _whole(learning: Any, proposal_id: str) -> str:
    """The whole id a proposal's id or unique start names (proposals are kept as learnings)."""
    return str(learning.service.resolve_id(proposal_id, kind="learning"))


def _table(*columns: str, title: str) -> Table:
    table = Table(*columns, title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.columns[0].no_wrap = True  # ids must stay whole to be copied
    return table


def _gate(p: ImprovementProposal) -> str:
    if p.status == "blocked":
        return "screen: " + "; ".join(n.reason for n in p.screen)
    if p.gate is None:
        return "-"
    return ("passed: " if p.gate.passed else "failed: ") + p.gate.reason


def _proposals_table(title: str, proposals: list[ImprovementProposal]) -> Table:
    table = _table("id", "agent", "status", "change", "evidence", "gate", title=title)
    for p in proposals:
        table.add_row(
            p.id,
            p.agent_id or "-",
            p.status,
            clip(p.summary, 120),
            f"{len(p.evidence)} turns",
            clip(_gate(p), 80),
        )
    return table


def improve(
    agent: AgentOption = None,
    team: TeamOption = None,
    db: DbOption = None,
    machine: MachineOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reflect now on an agent's turns: one model call, then the screen and the gate."""
    report = _machine(db, machine, model=model, calls=True).improve(agent_id=agent, team_id=team)
    if as_json:
        emit_json(report)
        return
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
            "--status",
            metavar="STATUS",
            help="pending (offered for approval), failed_gate, blocked, approved, rejected, "
            "withdrawn or all.",
        ),
    ] = "pending",
    db: DbOption = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """List proposals (by default those waiting for approval), newest first."""
    rows = _machine(db, machine).improvements.list(agent_id=agent, team_id=team, status=status)
    if as_json:
        emit_json(rows)
        return
    console.print(_proposals_table(f"Proposals ({status})", rows))
    if status == "pending" and rows:
        console.print(
            "[dim]Decide: learning-machines improvements approve ID --by REVIEWER (or reject)[/dim]"
        )


@improvements_app.command("show")
def show(
    proposal_id: ProposalId,
    db: DbOption = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a proposal: the change, its evidence turns, the screen and the gate's replays."""
    learning = _machine(db, machine)
    whole = _whole(learning, proposal_id)
    book = learning.improvements
    p, turns = book.get(whole), book.evidence(whole)
    if as_json:
        emit_json({"proposal": p, "evidence": turns})
        return
    console.print(f"[bold]{p.summary}[/bold]\nstatus: {p.status}; made against {p.base_version}")
    console.print(f"expected effect: {p.expected_effect}\nrisk: {p.risk}")
    table = _table("turn", "user", "asked", "outcome", title="Evidence")
    for t in turns:
        outcome = t.record.outcome
        said = "" if outcome is None else f"{outcome.score:+.2f} {outcome.source}"
        table.add_row(t.turn_id, t.user_id, clip(t.record.message, 60), said)
    console.print(table)
    for note in p.screen:
        console.print(f"[red]screen: {note.kind}: {note.reason}[/red]")
    if p.gate is not None:
        gate = _table(
            "turn", "kind", "verdict", "without the change", "with it", "by",
            title=f"Gate ({'passed' if p.gate.passed else 'failed'}: {p.gate.reason})",
        )  # fmt: skip
        for c in p.gate.cases:
            gate.add_row(c.turn_id, c.kind, c.verdict, c.without, c.with_change, c.scored_by)
        console.print(gate)


@improvements_app.command("approve")
def approve(
    proposal_id: ProposalId,
    by: ByOption,
    note: NoteOption = None,
    db: DbOption = None,
    machine: MachineOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a proposal: the agent's instructions get a new version at once.

    A reviewer whose own turns are its evidence cannot approve it alone.
    """
    learning = _machine(db, machine, model=model, calls=True)
    done = learning.improvements.approve(_whole(learning, proposal_id), by=by, note=note)
    if as_json:
        emit_json(done)
        return
    console.print(f"{done.id}: approved by {done.decided_by}; now at version {done.version}")


@improvements_app.command("reject")
def reject(
    proposal_id: ProposalId,
    by: ByOption,
    note: NoteOption = None,
    db: DbOption = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a proposal: kept, and the same change is never proposed again."""
    learning = _machine(db, machine)
    done = learning.improvements.reject(_whole(learning, proposal_id), by=by, reason=note)
    if as_json:
        emit_json(done)
        return
    console.print(f"{done.id}: rejected by {done.decided_by}")


@improvements_app.command("history")
def history(
    agent: AgentOption = None,
    team: TeamOption = None,
    db: DbOption = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every approval and rollback: versions, who, what, the evidence."""
    changes = _machine(db, machine).improvements.history(agent_id=agent, team_id=team)
    if as_json:
        emit_json(changes)
        return
    table = _table(
        "when", "agent", "action", "from", "to", "by", "change", "evidence",
        title="Instruction history",
    )  # fmt: skip
    for c in changes:
        table.add_row(
            c.at[:16], c.agent_id or "-", c.action, c.from_version, c.to_version, c.by,
            clip(c.summary, 80), f"{len(c.evidence)} turns",
        )  # fmt: skip
    console.print(table)


@improvements_app.command("rollback")
def rollback(
    version: VersionArg,
    by: ByOption,
    agent: AgentOption = None,
    team: TeamOption = None,
    note: NoteOption = None,
    db: DbOption = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make an earlier version of an agent's instructions active again."""
    change = _machine(db, machine).improvements.rollback(
        version, by=by, agent_id=agent, team_id=team, note=note
    )
    if as_json:
        emit_json(change)
        return
    console.print(f"rolled back from {change.from_version} to {change.to_version} by {change.by}")


@improvements_app.command("effect")
def effect(
    version: VersionArg,
    db: DbOption = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Outcomes of the turns before and after a version became active."""
    report = _machine(db, machine).improvements.effect(version)
    if as_json:
        emit_json(report)
        return
    table = _table(
        "", "version", "turns", "rated", "went wrong", "failure rate", "mean",
        title=f"Effect of {version} (active since {report.activated_at[:16]})",
    )  # fmt: skip
    for label, s in (("before", report.before), ("after", report.after)):
        rate = "-" if s.failure_rate is None else f"{s.failure_rate:.2f}"
        mean = "-" if s.mean_score is None else f"{s.mean_score:+.2f}"
        table.add_row(label, s.version, str(s.turns), str(s.rated), str(s.bad), rate, mean)
    console.print(table)


@improvements_app.command("instructions")
def instructions(
    agent: AgentOption = None,
    team: TeamOption = None,
    db: DbOption = None,
    machine: MachineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print an agent's active instructions (base text plus approved rules) and version."""
    active = _machine(db, machine).instructions(agent_id=agent, team_id=team)
    if as_json:
        emit_json({"version": active.version, "text": active.text, "rules": active.rules})
        return
    console.print(f"[bold]version {active.version}[/bold]")
    typer.echo(active.text or "(no instructions recorded)")


def register(app: typer.Typer) -> None:
    """Add ``improve`` and the ``improvements`` group to the ``learning-machines`` app."""
    app.command()(improve)
    app.add_typer(improvements_app, name="improvements")
