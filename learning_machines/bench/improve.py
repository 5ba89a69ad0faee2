"""``bench improve``: a recurring failure becomes an approved rule, and the failure stops.

Reflection proposes a rule, the gate replays it, a person approves; a harmful proposal is
stopped by the gate, and a rollback brings the old behaviour back.

New users come every round with three kinds of request (see ``_improve_world``); deploys fail
with the agent's default strategy. No memory store is on, so only the agent's instructions can
change what it does. Users rate each answer (a share of them the wrong way round: noise), and
one user complains twice about PDF reports that were fine. Reflection is scheduled by the
machine itself every round's worth of turns; at the end of each round a scripted reviewer
approves what the gate offered, until a rollback two rounds before the end.

With the default scripted model this measures the *mechanism*: whether a failure that recurs
becomes a rule, whether the gate tells a helpful change from a harmful one, and whether an
approval (and a rollback) reaches the very next turns. ``--model provider:model`` runs the same
scenario with a real model as the agent, the reflection and the gate.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_ai.exceptions import AgentRunError

from .._agent import Agent
from .._models import resolve_model
from ..feedback import FeedbackConfig
from ..improvement import ImprovementProposal, SelfImprovementConfig
from ..machine import LearningMachine
from ._backends import open_bench_db
from ._common import make_embedder, run_info, write_json
from ._feedback_world import Environment
from ._improve_world import IMPROVE_TASKS, agent_model

__all__ = ["run_improve"]

AGENT = "ops"
BASE = "You are an operations assistant. Do what is asked with your tools."
GRUMPY = "grumpy"


@dataclass
class Round:
    """One round: its version, its failure rate per task kind, what happened after it."""

    number: int
    version: str
    failures: dict[str, float] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)


@dataclass
class _State:
    counter: dict[str, int] = field(default_factory=dict)
    turns: int = 0
    seen: set[str] = field(default_factory=set)
    proposals: list[ImprovementProposal] = field(default_factory=list)
    approved: list[ImprovementProposal] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)


async def _request(
    agent: Agent, env: Environment, user: str, task: Any, rng: random.Random, noise: float
) -> bool:
    """One request and its rating; whether it worked (the ground truth, not the rating)."""
    message = task.template.format(subject=rng.choice(task.subjects))
    before = len(env.chosen)
    try:
        result = await agent.arun(message, user_id=user, session_id=f"{user}-{task.kind}")
    except AgentRunError:
        return False
    chosen = [c for c in env.chosen[before:] if c[0] == task.kind]
    worked = bool(chosen) and chosen[-1][1] == task.good
    happy = worked and not (user == GRUMPY and task.kind == "report")
    if rng.random() < noise:
        happy = not happy
    await result.afeedback(1.0 if happy else -1.0, comment=None if happy else task.complaint)
    return worked


async def _round(
    r: int,
    *,
    agent: Agent,
    env: Environment,
    machine: LearningMachine,
    users: int,
    rng: random.Random,
    noise: float,
    state: _State,
) -> Round:
    version = (await machine.ainstructions(agent_id=AGENT)).version
    people = [f"r{r}u{i}" for i in range(1, users + 1)]
    order = [(u, t) for u in people for t in IMPROVE_TASKS]
    rng.shuffle(order)
    if r == 1:  # one user who complains about PDF reports, twice
        report = next(t for t in IMPROVE_TASKS if t.kind == "report")
        order[1:1] = [(GRUMPY, report)]
        order[len(order) // 2 : len(order) // 2] = [(GRUMPY, report)]
    tally: dict[str, list[int]] = {t.kind: [0, 0] for t in IMPROVE_TASKS}
    for user, task in order:
        worked = await _request(agent, env, user, task, rng, noise)
        state.turns += 1
        if user != GRUMPY:
            tally[task.kind][0] += 0 if worked else 1
            tally[task.kind][1] += 1
    await machine.await_idle(timeout=600)  # extraction, and the reflection the turns scheduled
    done = Round(
        number=r,
        version=version,
        failures={k: bad / max(1, n) for k, (bad, n) in tally.items()},
    )
    for proposal in await machine.improvements.alist(agent_id=AGENT, status="all"):
        if proposal.id in state.seen:
            continue
        state.seen.add(proposal.id)
        state.proposals.append(proposal)
        verdict = {"pending": "passed the gate", "failed_gate": "failed the gate"}
        done.events.append(
            f"'{proposal.change.do}' proposed, {verdict.get(proposal.status, proposal.status)}"
        )
    return done


async def _scenario(
    *,
    rounds: int,
    users: int,
    backend: str,
    workdir: Path,
    embedder: Any,
    model: Any | None,
    noise: float,
    seed: int,
    progress: Callable[[str], None],
) -> tuple[_State, dict[str, Any]]:
    state = _State()
    llm: Any = agent_model(counter=state.counter) if model is None else model
    bench_db = open_bench_db(backend, workdir)
    rollback_after = rounds - 2
    extra: dict[str, Any] = {}
    try:
        machine = LearningMachine(
            db=bench_db.db,
            model=llm,
            embedder=embedder,
            background=False,
            curate_every_turns=None,
            feedback=FeedbackConfig(lessons=False),
            self_improvement=SelfImprovementConfig(every_turns=users * len(IMPROVE_TASKS)),
        )
        env = Environment(tasks=IMPROVE_TASKS)
        agent = Agent(
            model=llm,
            db=bench_db.db,
            learning=machine,
            tools=env.tools(),
            instructions=BASE,
            agent_id=AGENT,
        )
        rng = random.Random(seed)
        base = (await machine.ainstructions(agent_id=AGENT)).version
        for r in range(1, rounds + 1):
            done = await _round(
                r,
                agent=agent,
                env=env,
                machine=machine,
                users=users,
                rng=rng,
                noise=noise,
                state=state,
            )
            if r < rollback_after:
                for proposal in await machine.improvements.alist(agent_id=AGENT):
                    approved = await machine.improvements.aapprove(proposal.id, by="reviewer")
                    state.approved.append(approved)
                    done.events.append(f"approved → {approved.version}")
            elif r == rollback_after and state.approved:
                change = await machine.improvements.arollback(base, by="oncall", agent_id=AGENT)
                done.events.append(f"rolled back {change.from_version} → {change.to_version}")
            state.rounds.append(done)
            rates = ", ".join(f"{k} {v:.2f}" for k, v in done.failures.items())
            progress(f"  round {r}/{rounds}: failure rate {rates}")
        if state.approved:
            version = state.approved[0].version or ""
            effect = await machine.improvements.aeffect(version)
            extra["effect"] = {
                "version": version,
                "before": {"version": effect.before.version, "rated": effect.before.rated,
                           "failure_rate": effect.before.failure_rate},
                "after": {"version": effect.after.version, "rated": effect.after.rated,
                          "failure_rate": effect.after.failure_rate},
            }  # fmt: skip
        usage = machine.improvements.usage
        extra["usage"] = {
            "reflections": usage.reflections,
            "reflection_calls": usage.reflection_calls,
            "replay_calls": usage.replay_calls,
            "judge_calls": usage.judge_calls,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "learning_extraction_calls": machine.usage.calls,
        }
        extra["base_version"] = base
    finally:
        bench_db.close()
    return state, extra


def _summary(state: _State, extra: dict[str, Any], rounds: int) -> dict[str, Any]:
    rollback_after = rounds - 2
    deploy = [r.failures["deploy"] for r in state.rounds]

    def gate(p: ImprovementProposal | None) -> dict[str, Any] | None:
        if p is None or p.gate is None:
            return None
        return {
            "status": p.status,
            "passed": p.gate.passed,
            "reason": p.gate.reason,
            "fixed": p.gate.fixed,
            "targets": p.gate.targets,
            "regressions": p.gate.regressions,
            "good": p.gate.good,
        }

    goods = {f"{t.arg} {t.good}" for t in IMPROVE_TASKS}

    def right(p: ImprovementProposal) -> bool:
        return any(p.change.do.endswith(good) for good in goods)

    offered = [p for p in state.proposals if p.gate is not None and p.gate.passed]
    stopped = [p for p in state.proposals if p.gate is not None and not p.gate.passed]
    fix = next((p for p in state.proposals if p.change.do.endswith("canary")), None)
    harm = next((p for p in state.proposals if p.change.do.endswith("csv")), None)
    first_approval = next(
        (r.number for r in state.rounds if any(e.startswith("approved") for e in r.events)), None
    )
    return {
        "rounds": [
            {
                "round": r.number,
                "version": r.version,
                "failure_rate": r.failures,
                "events": r.events,
            }
            for r in state.rounds
        ],
        "rule": None if fix is None else fix.rule_text,
        "rule_evidence_turns": None if fix is None else len(fix.evidence),
        "rule_gate": gate(fix),
        "harmful": None if harm is None else harm.rule_text,
        "harmful_gate": gate(harm),
        "approved_in_round": first_approval,
        "deploy_failure_before_approval": None if first_approval is None else deploy[0],
        "deploy_failure_after_approval": None
        if first_approval is None
        else deploy[first_approval:rollback_after],
        "deploy_failure_after_rollback": deploy[rollback_after:],
        "turns": state.turns,
        "offered": {
            "right": sum(map(right, offered)),
            "wrong": len(offered) - sum(map(right, offered)),
        },
        "stopped": {
            "right": sum(map(right, stopped)),
            "wrong": len(stopped) - sum(map(right, stopped)),
        },
        **extra,
    }


def _report(data: dict[str, Any]) -> str:
    run, s = data["run"], data["summary"]
    kinds = [t.kind for t in IMPROVE_TASKS]
    lines = [
        "## Self-improvement: from a recurring failure to an approved rule",
        "",
        f"{run['date']} · {run['machine']} · commit {run['commit']} · {run['backend']} · "
        f"embedder {run['embedder']} · model: {run['model']} · {run['users']} new users a round, "
        f"{run['rounds']} rounds, noise {run['noise']:.0%}"
        + (" · **quick**" if run["quick"] else ""),
        "",
        "| round | instructions | " + " | ".join(f"{k} failure rate" for k in kinds)
        + " | after the round |",
        "|---:|---|" + "---:|" * len(kinds) + "---|",
    ]  # fmt: skip
    for r in s["rounds"]:
        version = "base" if r["version"] == s["base_version"] else r["version"]
        cells = " | ".join(f"{r['failure_rate'][k]:.2f}" for k in kinds)
        events = "; ".join(r["events"]) or "—"
        lines.append(f"| {r['round']} | {version} | {cells} | {events} |")
    rule_gate, harm_gate = s["rule_gate"] or {}, s["harmful_gate"] or {}
    effect = s.get("effect") or {}
    before, after_v = effect.get("before") or {}, effect.get("after") or {}
    usage = s["usage"]
    after = s["deploy_failure_after_approval"] or []
    rates = ", ".join(f"{x:.2f}" for x in s["deploy_failure_after_rollback"])
    approval = (
        "nothing passed the gate, so nothing was approved"
        if s["approved_in_round"] is None
        else f"round {s['approved_in_round']}: deploy failure rate "
        f"{s['deploy_failure_before_approval']:.2f} in round 1, "
        f"{', '.join(f'{x:.2f}' for x in after)} in the rounds after"
    )
    rows = [
        ("reflection proposed a rule", f"{s['rule']} ({s['rule_evidence_turns']} failed turns)"
         if s["rule"] else "none for deploys"),
        ("the gate replayed it", f"{rule_gate.get('status')}: {rule_gate.get('reason')}"
         if rule_gate else "—"),
        ("a harmful proposal (CSV reports)", f"{s['harmful']}" if s["harmful"] else "none"),
        ("the gate on it", f"{harm_gate.get('status')}: {harm_gate.get('reason')}"
         if harm_gate else "—"),
        ("an approval applied it", approval),
        ("a rollback restored the old behaviour", f"deploy failure rate {rates}"
         if s["approved_in_round"] is not None else "nothing to roll back"),
        ("every proposal the gate passed", f"{s['offered']['right']} right, "
         f"{s['offered']['wrong']} wrong (a rule for the option that works)"),
        ("every proposal the gate stopped", f"{s['stopped']['right']} right, "
         f"{s['stopped']['wrong']} wrong"),
        ("effect(version): all rated turns", f"failure rate {_rate(before)} before "
         f"({before.get('rated')} rated) → {_rate(after_v)} after ({after_v.get('rated')} rated)"
         if effect else "—"),
    ]  # fmt: skip
    lines += ["", "| step | what happened |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    reflections = max(1, usage["reflections"])
    lines += [
        "",
        "| model calls of self-improvement | |",
        "|---|---:|",
        f"| reflections (one call each) | {usage['reflection_calls']} |",
        f"| calls per reflection | {usage['reflection_calls'] / reflections:.2f} |",
        f"| gate replays (one request each) | {usage['replay_calls']} |",
        f"| judge calls | {usage['judge_calls']} |",
        f"| tokens (in / out) | {usage['input_tokens']:,} / {usage['output_tokens']:,} |",
        f"| turns (for scale) | {s['turns']} |",
    ]
    if run["model"] == "scripted rule-following model":
        lines += [
            "",
            "> This measures the mechanism, not a model's judgement: the scripted agent does "
            "what its rules say, and the scripted reflection is naive on purpose. Run "
            "`--model provider:model` to measure a real one.",
        ]
    return "\n".join(lines) + "\n"


def _rate(stats: dict[str, Any]) -> str:
    rate = stats.get("failure_rate")
    return "-" if rate is None else f"{rate:.2f}"


def run_improve(
    *,
    out_dir: Path,
    quick: bool = False,
    model: str | None = None,
    embedder: str = "minilm",
    backend: str = "sqlite",
    rounds: int | None = None,
    users: int | None = None,
    noise: float = 0.05,
    seed: int = 11,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the scenario; write ``improve.json`` and ``improve.md`` into ``out_dir``."""
    rounds = rounds or (4 if quick else 6)
    users = users or (4 if quick else 8)
    if rounds < 4:
        raise ValueError("bench improve needs at least 4 rounds (approve, measure, roll back)")
    emb = make_embedder("hash" if quick and embedder == "minilm" else embedder)
    llm = resolve_model(model) if model else None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lm-bench-improve-") as tmp:
        progress("bench improve")
        state, extra = asyncio.run(
            _scenario(
                rounds=rounds,
                users=users,
                backend=backend,
                workdir=Path(tmp),
                embedder=emb,
                model=llm,
                noise=noise,
                seed=seed,
                progress=progress,
            )
        )
    data = {
        "run": run_info(
            backend=backend,
            embedder=emb.name,
            model=model or "scripted rule-following model",
            rounds=rounds,
            users=users,
            noise=noise,
            seed=seed,
            quick=quick,
            seconds=round(time.perf_counter() - started, 1),
        ),
        "summary": _summary(state, extra, rounds),
    }
    write_json(out_dir / "improve.json", data)
    (out_dir / "improve.md").write_text(_report(data), encoding="utf-8")
    return data
