"""``bench feedback``: whether feedback makes an agent stop repeating what went wrong.

Scripted multi-session scenarios: several users come back, round after round, with recurring
kinds of task where one approach fails and another works (a deploy strategy that takes
production down, stale cached exchange rates recommended by a misleading learning, invites in
the server's time zone) and one control task where the default works. Users react as people
do: a thumbs up or down, "no, that's wrong" in their next message, or the same request again —
and sometimes the wrong way (noise). The same rounds run against three machines: without
Phase 2, with the decision log and feedback, and with lessons shared in a team namespace
(reviewed by a scripted reviewer at the end of each round).

With the default scripted model this measures the *mechanism*: whether the evidence of what
went wrong reaches the context of later turns, for the same user and for other users. The
model follows its context literally; it has no judgement to measure. ``--model
provider:model`` runs the same scenarios with a real model (and ``--judge`` scores turns where
it answered without the task's tool, which no rule can score).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_ai.exceptions import AgentRunError

from .._agent import Agent, RunResult
from .._models import resolve_model
from .._modes import LearningMode
from ..db import LearningFilter, ListLearnings
from ..feedback import FeedbackConfig, LessonConfig
from ..machine import LearningMachine
from ..stores import LearnedKnowledgeConfig
from ._backends import open_bench_db
from ._common import make_embedder, run_info, write_json
from ._feedback_world import (
    MISLEADING,
    TASKS,
    Environment,
    Task,
    User,
    extraction_script,
    newcomer,
    rule_following_model,
    users,
)

__all__ = ["ARMS", "run_feedback"]

#: The machines compared, by name.
ARMS = ("without Phase 2", "decision log + feedback", "Phase 2 with shared lessons")
TEAM = "team"
_POSITIVE_REPLY = "Thanks, perfect."


@dataclass
class ArmResult:
    """What one machine did over the rounds."""

    name: str
    failures: list[float] = field(default_factory=list)
    """Failure rate of first attempts, per round."""
    per_task: dict[str, list[float]] = field(default_factory=dict)
    """Failure rate per task kind, per round."""
    newcomers: list[float] = field(default_factory=list)
    """Failure rate of the user who joined in that round (rounds 2 on)."""
    turns: int = 0
    extraction_calls: int = 0
    unscored: int = 0
    lessons: list[dict[str, Any]] = field(default_factory=list)
    retired: int = 0
    misleading_status: str = "active"
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers."""
        wrong = [x for x in self.lessons if x["wrong"]]
        return {
            "failure_rate_per_round": [round(x, 3) for x in self.failures],
            "newcomer_failure_rate_per_round": [round(x, 3) for x in self.newcomers],
            "failure_rate_per_task": {
                k: [round(x, 3) for x in v] for k, v in self.per_task.items()
            },
            "turns": self.turns,
            "extraction_calls_per_turn": round(self.extraction_calls / max(1, self.turns), 3),
            "unscored_turns": self.unscored,
            "lessons_created": len(self.lessons),
            "wrong_lessons_created": len(wrong),
            "lessons_retired": self.retired,
            "lessons": self.lessons,
            "misleading_learning": self.misleading_status,
            "seconds": round(self.seconds, 1),
        }


def _machine(arm: str, *, db: Any, model: Any, embedder: Any) -> LearningMachine:
    knowledge = LearnedKnowledgeConfig(mode=LearningMode.AGENTIC, namespace=TEAM)
    common: dict[str, Any] = {
        "db": db,
        "model": model,
        "embedder": embedder,
        "user_profile": True,  # a background store in every arm: one extraction call per turn
        "learned_knowledge": knowledge,
        "background": False,
        "curate_every_turns": None,
        # Curation between rounds archives what misled; no judge model calls (the figures
        # count the learning calls of turns alone).
        "dedup_judge": False,
    }
    if arm == ARMS[0]:
        return LearningMachine(**common)
    lessons: LessonConfig | bool = False
    if arm == ARMS[2]:
        lessons = LessonConfig(namespace=TEAM, min_sessions=3, min_users=2)
    return LearningMachine(**common, feedback=FeedbackConfig(lessons=lessons))


def _wrong(lesson: dict[str, Any]) -> bool:
    """A lesson that would teach the failing option, or to avoid the working one."""
    approach = str(lesson.get("approach", ""))
    for task in TASKS:
        if task.tool + "(" not in approach:
            continue
        good = f'"{task.good}"' in approach
        return good if lesson.get("action") == "avoid" else not good
    return False


class _Judge:
    """Scores a turn where a real model answered without the task's tool (``--judge``)."""

    def __init__(self, model: Any) -> None:
        from pydantic_ai import Agent as PydanticAgent

        self.agent: Any = PydanticAgent(
            model,
            output_type=bool,
            instructions=(
                "You grade an assistant's answer to a task. Answer true only if the answer "
                "does the task the way stated as the one that works; false otherwise."
            ),
        )

    async def worked(self, task: Task, message: str, answer: str) -> bool:
        prompt = (
            f"Task: {message}\nWhat works: {task.arg}={task.good} (not "
            f"{', '.join(o for o in task.options if o != task.good)}).\nAnswer: {answer}"
        )
        result = await self.agent.run(prompt)
        return bool(result.output)


async def _session(
    agent: Agent,
    env: Environment,
    user: User,
    task: Task,
    message: str,
    rng: random.Random,
    judge: _Judge | None,
    turns: list[int],
) -> bool | None:
    """One session: the request, then the user's reaction. Whether the request worked.

    ``turns[0]`` counts the turns run (requests and replies).
    """
    session = f"{user.id}-{rng.getrandbits(40):x}"
    before = len(env.chosen)
    turns[0] += 1
    try:
        result: RunResult | None = await agent.arun(message, user_id=user.id, session_id=session)
    except AgentRunError:
        # A real model can give up (a tool kept failing past its retries): no answer at all.
        result = None
    calls = [c for c in env.chosen[before:] if c[0] == task.kind]
    if calls:
        worked: bool | None = calls[-1][1] == task.good
    elif result is None:
        worked = False
    elif judge is not None:
        worked = await judge.worked(task, message, result.text)
    else:
        worked = None  # answered without the tool: a rule cannot tell
    happy = user.reaction(task, bool(worked), rng) if worked is not None else True
    if user.style == "explicit":
        if result is not None and agent.machine is not None and "feedback" in agent.machine.stores:
            await result.afeedback(
                1.0 if happy else -1.0, comment=None if happy else task.complaint
            )
        # (without Phase 2 a thumbs up or down goes nowhere)
    elif user.style == "implicit" or happy:
        reply = _POSITIVE_REPLY if happy else f"No, that's wrong: {task.complaint}."
        turns[0] += 1
        await _quietly(agent.arun(reply, user_id=user.id, session_id=session))
    else:  # "repeat": asks the same again when it went wrong
        turns[0] += 1
        await _quietly(agent.arun(message, user_id=user.id, session_id=session))
    return worked


async def _quietly(run: Awaitable[Any]) -> None:
    """A follow-up turn; a real model that gives up on it ends the session, nothing more."""
    with contextlib.suppress(AgentRunError):
        await run


async def _arm(
    arm: str,
    *,
    rounds: int,
    people: list[User],
    backend: str,
    workdir: Path,
    embedder: Any,
    model: Any | None,
    judge: _Judge | None,
    seed: int,
    progress: Callable[[str], None],
) -> ArmResult:
    rng = random.Random(seed)
    counter = [0]
    scripted = model is None
    llm: Any = (
        rule_following_model(extraction=extraction_script, counter=counter) if scripted else model
    )
    bench_db = open_bench_db(backend, workdir)
    result = ArmResult(name=arm)
    turns = [0]
    started = time.perf_counter()
    try:
        machine = _machine(arm, db=bench_db.db, model=llm, embedder=embedder)
        env = Environment()
        agent = Agent(model=llm, db=bench_db.db, learning=machine, tools=env.tools())
        seeded = await machine.abegin("seed", user_id="ops", session_id="seed")
        await seeded.tools.acall(
            "save_learning", {"title": MISLEADING[0], "learning": MISLEADING[1]}
        )
        misleading_id = seeded.tools.log.runs[-1].result or ""
        misleading_id = misleading_id.split("(")[-1].rstrip(")")
        usage_before = machine.usage.calls
        cohort = list(people)
        for r in range(rounds):
            if r > 0:  # someone new joins every round: they have no history of their own
                cohort.append(newcomer(r, noise=people[0].noise if people else 0.0))
            failed = attempts = 0
            newcomer_failed = newcomer_attempts = 0
            per_task: dict[str, list[int]] = {t.kind: [0, 0] for t in TASKS}
            order = [(u, t) for u in cohort for t in TASKS]
            rng.shuffle(order)
            for user, task in order:
                message = task.template.format(subject=rng.choice(task.subjects))
                worked = await _session(agent, env, user, task, message, rng, judge, turns)
                await machine.await_idle(timeout=300)
                if worked is None:
                    result.unscored += 1
                    continue
                attempts += 1
                failed += 0 if worked else 1
                if r > 0 and user.id == f"new{r}":
                    newcomer_attempts += 1
                    newcomer_failed += 0 if worked else 1
                per_task[task.kind][0] += 0 if worked else 1
                per_task[task.kind][1] += 1
            await machine.service.acurate()
            if arm == ARMS[2]:
                for proposal in await machine.proposals.alist(store="lessons", limit=None):
                    await machine.proposals.aapprove(proposal.id, by="reviewer")
            result.failures.append(failed / max(1, attempts))
            if r > 0:
                result.newcomers.append(newcomer_failed / max(1, newcomer_attempts))
            for kind, (bad, total) in per_task.items():
                result.per_task.setdefault(kind, []).append(bad / max(1, total))
            progress(f"  {arm}: round {r + 1}/{rounds} failure rate {result.failures[-1]:.2f}")
        result.turns = turns[0]
        result.extraction_calls = counter[0] if scripted else machine.usage.calls - usage_before
        rows = await bench_db.db.arun(
            ListLearnings(
                filter=LearningFilter(
                    namespaces=(TEAM,),
                    learning_types=("lesson",),
                    statuses=("active", "archived"),
                ),
                limit=None,
            )
        )
        for row in rows:
            lesson = {
                "action": row.content.get("action"),
                "approach": row.content.get("approach"),
                "condition": row.content.get("condition"),
                "sessions": row.content.get("sessions"),
                "users": row.content.get("users"),
                "status": row.status,
            }
            lesson["wrong"] = _wrong(lesson)
            result.lessons.append(lesson)
        result.retired = sum(1 for x in result.lessons if x["status"] == "archived")
        found = await machine.service.alearnings(
            namespace=TEAM, learning_type="learned_knowledge", statuses=("active", "archived")
        )
        result.misleading_status = next(
            (x.status for x in found if x.id == misleading_id), "missing"
        )
    finally:
        bench_db.close()
    result.seconds = time.perf_counter() - started
    return result


def _table(results: dict[str, ArmResult], rounds: int) -> str:
    lines = [
        "Failure rate of all first requests in each round (in brackets: of the user who joined "
        "that round).",
        "",
        "| round | " + " | ".join(results) + " |",
        "|---:|" + "---:|" * len(results),
    ]
    for r in range(rounds):
        cells = " | ".join(
            f"{a.failures[r]:.2f}" + (f" ({a.newcomers[r - 1]:.2f})" if r > 0 else "")
            for a in results.values()
        )
        lines.append(f"| {r + 1} | {cells} |")
    lines += [
        "",
        "| | " + " | ".join(results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    rows: list[tuple[str, Callable[[ArmResult], str]]] = [
        ("lessons created", lambda a: str(len(a.lessons))),
        ("wrong lessons created", lambda a: str(sum(1 for x in a.lessons if x["wrong"]))),
        ("lessons retired", lambda a: str(a.retired)),
        ("misleading learning at the end", lambda a: a.misleading_status),
        ("extraction calls per turn", lambda a: f"{a.extraction_calls / max(1, a.turns):.2f}"),
        ("turns (requests and replies)", lambda a: str(a.turns)),
        ("turns a rule could not score", lambda a: str(a.unscored)),
    ]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(a) for a in results.values()) + " |")
    return "\n".join(lines)


def run_feedback(
    *,
    out_dir: Path,
    quick: bool = False,
    model: str | None = None,
    judge: str | None = None,
    embedder: str = "minilm",
    backend: str = "sqlite",
    rounds: int | None = None,
    user_count: int | None = None,
    noise: float = 0.1,
    seed: int = 7,
    ranking: bool = True,
    latency_records: int | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the scenarios (and the ranking-weight and latency measurements); write the report.

    Returns the results (also in ``out_dir/feedback.json`` and ``feedback.md``).
    """
    rounds = rounds or (3 if quick else 6)
    user_count = user_count or (3 if quick else 6)
    people = users(user_count, noise=noise)
    emb = make_embedder("hash" if quick and embedder == "minilm" else embedder)
    llm = resolve_model(model) if model else None
    grader = _Judge(resolve_model(judge)) if judge else None
    results: dict[str, ArmResult] = {}
    with tempfile.TemporaryDirectory(prefix="lm-bench-feedback-") as tmp:
        for arm in ARMS:
            progress(f"bench feedback: {arm}")
            results[arm] = asyncio.run(
                _arm(
                    arm,
                    rounds=rounds,
                    people=people,
                    backend=backend,
                    workdir=Path(tmp),
                    embedder=emb,
                    model=llm,
                    judge=grader,
                    seed=seed,
                    progress=progress,
                )
            )
        extra: dict[str, Any] = {}
        if ranking:
            from ._feedback_ranking import run_ranking

            progress("bench feedback: ranking weight")
            extra["ranking"] = run_ranking(
                embedder=emb, backend=backend, workdir=Path(tmp), quick=quick, seed=seed
            )
        if latency_records:
            from ._feedback_latency import run_decision_latency

            progress(f"bench feedback: recall latency at {latency_records:,} decisions")
            extra["latency"] = run_decision_latency(
                records=latency_records, backend=backend, workdir=Path(tmp), seed=seed
            )
    data = {
        "run": run_info(
            backend=backend,
            embedder=emb.name,
            model=model or "scripted rule-following model",
            judge=judge,
            rounds=rounds,
            users=user_count,
            noise=noise,
            seed=seed,
            quick=quick,
        ),
        "arms": {name: arm.summary() for name, arm in results.items()},
        **extra,
    }
    write_json(out_dir / "feedback.json", data)
    (out_dir / "feedback.md").write_text(_report(data, results, rounds), encoding="utf-8")
    return data


def _report(data: dict[str, Any], results: dict[str, ArmResult], rounds: int) -> str:
    from ._feedback_ranking import ranking_table

    run = data["run"]
    scripted = run["model"] == "scripted rule-following model"
    lines = [
        "## Feedback: failure rate per round",
        "",
        f"{run['date']} · {run['machine']} · commit {run['commit']} · {run['backend']} · "
        f"embedder {run['embedder']} · model: {run['model']} · {run['users']} users, "
        f"{rounds} rounds, {len(TASKS)} task kinds, feedback noise {run['noise']:.0%}"
        + (" · **quick**" if run.get("quick") else ""),
        "",
        _table(results, rounds),
        "",
    ]
    if scripted:
        lines += [
            "> This measures the mechanism, not a model's judgement: the scripted model does "
            "exactly what its context argues for. A real model may ignore good evidence or act "
            "on weak evidence; run `--model provider:model` to measure one.",
            "",
        ]
    if "ranking" in data:
        lines += ["## Feedback weight in search ranking", "", ranking_table(data["ranking"]), ""]
    if "latency" in data:
        lat = data["latency"]
        lines += [
            "## Recall latency with the decision log",
            "",
            f"{lat['records']:,} decision records of {lat['users']:,} users on {lat['backend']}; "
            f"one user's recall (hybrid search of their decisions, query embedding excluded): "
            f"p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms over {lat['queries']} "
            "queries.",
            "",
        ]
    return "\n".join(lines)
