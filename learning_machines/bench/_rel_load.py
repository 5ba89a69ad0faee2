"""A sustained load: turns from 20 users in 4 processes on one database, then the backlog drained.

Every process runs an :class:`~learning_machines.Agent` (scripted model, profile, session
context and episodic memory, learning in the background) and answers, concurrently, turns of
all 20 users: user ``u``'s turn ``i`` is answered by process ``i % 4``, so every profile and
every session context is written by the workers of four processes at once. When all turns are
answered each process waits until nothing is left to learn.

Measured: turns per second while answering (all turns over the wall time from the start
signal to the last answer), the drain time (from the last answer until every process is
idle), and ``agent.arun`` p50 / p95. Checked: no turn raised and no work was parked (errors),
every turn's token is in its user's profile, session context, episodes and messages (lost
updates), and no work is left pending (backlog drained).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .._agent import Agent
from ..db import LearningFilter, ListLearnings, ListMessages, ListWork
from ..exceptions import LearningMachinesError
from ..machine import LearningMachine
from ..stores import SessionContextConfig
from ..testing import ScriptedModel
from ._backends import percentiles
from ._rel_child import ChildIO
from ._rel_common import Child, Target, make_embedder, tokens

__all__ = ["load_agent", "run_load"]

USERS = 20
PROCESSES = 4
_TOKEN = r"\[(u\d{2}t\d{4})\]"
_STORED = r"\b(u\d{2}t\d{4})\b"


def _user(u: int) -> str:
    return f"user-{u:02d}"


def token(u: int, i: int) -> str:
    """User ``u``'s turn ``i``'s token."""
    return f"u{u:02d}t{i:04d}"


def _extraction(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    found = tokens(prompt, _TOKEN)
    return {
        "user_profile": {"preferences": [f"likes {t}" for t in found]},
        "session_context": {
            "summary": f"Numbered turns; the last was {found[-1] if found else 'none'}.",
            "progress": [f"step {t}" for t in found],
        },
    }


def _agent(target: Target, embedder: str, delay: float) -> Agent:
    machine = LearningMachine(
        embedder=make_embedder(embedder),
        user_profile=True,
        session_context=SessionContextConfig(enable_planning=True),
        episodic_memory=True,
        curate_every_turns=None,  # curation merges rows: this counts what the turns wrote
    )
    model = ScriptedModel(answers="Noted.", extraction=_extraction, extraction_delay=delay)
    return Agent(model=model, db=target.open(pool_size=8), learning=machine)


async def _answer(agent: Agent, process: int, turns: int) -> tuple[list[float], list[str]]:
    """Answer the share of every user's turns that falls to ``process``, users concurrently."""
    seconds: list[float] = []
    errors: list[str] = []

    async def user(u: int) -> None:
        for i in range(process, turns, PROCESSES):
            message = f"Turn {i} of {_user(u)}: remember [{token(u, i)}]."
            started = time.perf_counter()
            try:
                await agent.arun(message, user_id=_user(u), session_id=f"{_user(u)}-s")
            except LearningMachinesError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            seconds.append(time.perf_counter() - started)

    await asyncio.gather(*(user(u) for u in range(USERS)))
    return seconds, errors


def load_agent(args: dict[str, Any], io: ChildIO) -> dict[str, Any]:
    """Child role: answer this process's share of the turns, say ``answered``, then drain."""
    agent = _agent(Target.from_json(args["target"]), args["embedder"], args["delay"])
    assert agent.machine is not None
    io.say("ready")
    io.wait_go()
    seconds, errors = asyncio.run(_answer(agent, args["process"], args["turns_per_user"]))
    io.say("answered")
    try:
        agent.machine.wait_idle(timeout=args["timeout"])
    except (LearningMachinesError, TimeoutError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    return {"seconds": seconds, "errors": errors}


def _count(texts: list[str], found: Counter[str]) -> None:
    for text in texts:
        for tok in set(re.findall(_STORED, text)):
            found[tok] += 1


def verify(target: Target, turns_per_user: int) -> dict[str, Any]:
    """Tokens missing from a store (lost updates) or there twice; work by status."""
    db = target.open()
    try:
        by_store: dict[str, Counter[str]] = {
            name: Counter() for name in ("profile", "session", "episode", "message")
        }
        for u in range(USERS):
            user = _user(u)
            rows = db.run(
                ListLearnings(
                    filter=LearningFilter(namespaces=("user",), reader_user_id=user), limit=None
                )
            )
            for row in rows:
                if row.learning_type == "user_profile":
                    _count(
                        [str(p) for p in row.content.get("preferences", [])], by_store["profile"]
                    )
                elif row.learning_type == "session_context":
                    _count([str(p) for p in row.content.get("progress", [])], by_store["session"])
                elif row.learning_type == "episode" and row.content.get("speaker") == user:
                    _count([str(row.content.get("text", ""))], by_store["episode"])
            messages = db.run(ListMessages(session_id=f"{user}-s", user_id=user, limit=None))
            _count([m.user_message for m in messages], by_store["message"])
        work = Counter(w.status for w in db.run(ListWork(limit=None)))
    finally:
        db.close()
    expected = [token(u, i) for u in range(USERS) for i in range(turns_per_user)]
    return {
        "lost": sum(1 for t in expected if any(c[t] == 0 for c in by_store.values())),
        "doubled": sum(1 for t in expected if any(c[t] > 1 for c in by_store.values())),
        "missing_by_store": {
            name: sum(1 for t in expected if c[t] == 0) for name, c in by_store.items()
        },
        "work": dict(work),
    }


def run_load(
    target: Target, *, embedder: str, workdir: Path, turns: int = 2000, delay: float = 0.0
) -> dict[str, Any]:
    """``turns`` turns (rounded to a multiple of 20 users) in 4 processes on ``target``."""
    per_user = max(PROCESSES, turns // USERS)
    timeout = 1800.0
    children = [
        Child(
            "load-agent",
            {
                "target": target.to_json(),
                "embedder": embedder,
                "process": p,
                "turns_per_user": per_user,
                "delay": delay,
                "timeout": timeout,
            },
            log=workdir / f"load-agent-{p}.log",
        )
        for p in range(PROCESSES)
    ]
    try:
        for child in children:
            child.expect("ready", timeout=300)
        started = time.perf_counter()
        for child in children:
            child.send("go")
        for child in children:
            child.expect("answered", timeout=timeout)
        answered = time.perf_counter()
        results = [child.result(timeout=timeout) for child in children]
        drained = time.perf_counter()
    finally:
        for child in children:
            child.kill()
    seconds = [s for r in results for s in r["seconds"]]
    errors = [e for r in results for e in r["errors"]]
    checked = verify(target, per_user)
    parked = checked["work"].get("failed", 0)
    left = sum(n for status, n in checked["work"].items() if status not in ("done", "failed"))
    timing = percentiles(seconds, 50, 95)
    return {
        "turns": per_user * USERS,
        "users": USERS,
        "processes": PROCESSES,
        "errors": len(errors) + parked,
        "error_examples": errors[:3],
        "lost_updates": checked["lost"],
        "applied_twice": checked["doubled"],
        "missing_by_store": checked["missing_by_store"],
        "backlog_left": left,
        "work": checked["work"],
        "turns_per_s": round(per_user * USERS / (answered - started), 1),
        "drain_s": round(drained - answered, 1),
        "run_p50_ms": round(timing["p50"] * 1000, 1),
        "run_p95_ms": round(timing["p95"] * 1000, 1),
    }
