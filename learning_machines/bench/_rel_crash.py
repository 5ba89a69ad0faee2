"""Turns lost or applied twice when the process answering them is killed with ``SIGKILL``.

A child process answers a numbered list of turns through our ``Agent`` (all five built-in
stores, BACKGROUND, a scripted model whose extraction takes ``delay`` seconds, so learning
runs behind the answers). The bench kills it at random moments — after a random number of
answers plus a random fraction of a second, so the kill lands while a turn is being answered,
recorded or learned — and starts it again; a restarted process skips the turns already
recorded (as a client that checks what was saved would). After the last answer the last
process is killed too, and a fresh process drains the backlog.

Every turn carries a distinctive token, and its extraction writes it to each store: a
preference in the profile, a progress step in the session context, a fact about an entity, an
insight in the shared namespace; episodic memory keeps the message. A turn is **lost** when
any store lacks its token at the end, **applied twice** when any store holds it twice.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .._agent import Agent
from ..db import (
    GLOBAL_NAMESPACE,
    PRIVATE_NAMESPACE,
    LearningFilter,
    ListLearnings,
    ListMessages,
    ListWork,
)
from ..db._records import ALL_STATUSES
from ..exceptions import LearningMachinesError
from ..machine import LearningMachine
from ..stores import SessionContextConfig
from ..testing import ScriptedModel
from ._rel_child import ChildIO
from ._rel_common import Child, Target, make_embedder, tokens

__all__ = ["crash_agent", "crash_drain", "run_crash"]

USER = "casey"
SESSION = "crash-1"
_TOKEN = r"\[(k\d{4}[a-z]{4})\]"
_STORED = r"\b(k\d{4}[a-z]{4})\b"
# Varied words, so the facts of different turns are not near duplicates of each other.
_VOCABULARY = (
    "amber basalt cedar delta ember fjord garnet harbor indigo juniper kelp lagoon meadow "
    "nickel orchid pepper quartz raven saffron tundra umber violet willow yarrow zephyr "
    "anchor bramble canyon dune estuary falcon glacier heron island jasper kestrel lantern "
    "marble nectar osprey prairie quiver ridge sorrel thistle upland vortex walnut"
)
_WORDS = tuple(_VOCABULARY.split())


def token(i: int) -> str:
    """Turn ``i``'s token: its number and four letters."""
    rng = random.Random(i)
    return f"k{i:04d}" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(4))


def _words(tok: str) -> str:
    rng = random.Random(tok)
    return " ".join(rng.sample(_WORDS, 4))


def message(i: int) -> str:
    """The user's message of turn ``i``."""
    return f"Turn {i}: please remember [{token(i)}], it is about {_words(token(i))}."


def _extraction(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One item per store for each token of the turn (what a model would learn from it)."""
    found = tokens(prompt, _TOKEN)
    return {
        "user_profile": {"preferences": [f"pref {t}" for t in found]},
        "session_context": {
            "summary": f"Numbered turns; the last was {found[-1] if found else 'none'}.",
            "progress": [f"step {t}" for t in found],
        },
        "learned_knowledge": {
            "learnings": [
                {"title": f"Insight {t}", "learning": f"When {_words(t)}, note {t}."} for t in found
            ]
        },
        "entity_memory": {
            "facts": [{"entity": "Falcon project", "fact": f"{_words(t)} ({t})"} for t in found]
        },
    }


def _machine(embedder: str, *, lease: float) -> LearningMachine:
    return LearningMachine(
        embedder=make_embedder(embedder),
        user_profile=True,
        session_context=SessionContextConfig(enable_planning=True),
        learned_knowledge=True,
        entity_memory=True,
        episodic_memory=True,
        lease_seconds=lease,
        retry_backoff=0.2,
        # Curation would merge and archive rows: this section counts what turns wrote.
        curate_every_turns=None,
    )


def _model(delay: float) -> ScriptedModel:
    return ScriptedModel(answers="Noted.", extraction=_extraction, extraction_delay=delay)


def crash_agent(args: dict[str, Any], io: ChildIO) -> None:
    """Child role: answer the turns not yet recorded, printing ``ack i`` after each answer.

    A restarted process learns the backlog its predecessors left once it has recorded a turn
    (that starts its background worker), as an application restarted after a crash does.
    """
    target = Target.from_json(args["target"])
    agent = Agent(
        model=_model(args["delay"]),
        db=target.open(),
        learning=_machine(args["embedder"], lease=args["lease"]),
    )
    assert agent.db is not None
    recorded = {
        m.user_message
        for m in agent.db.run(ListMessages(session_id=SESSION, user_id=USER, limit=None))
    }
    io.say("ready")
    for i in range(args["turns"]):
        if message(i) not in recorded:
            agent.run(message(i), user_id=USER, session_id=SESSION)
            io.say("ack", str(i))
            time.sleep(args["pace"])  # the user reads the answer; learning runs meanwhile
    io.say("finished")
    time.sleep(3600)  # learning goes on in the background until the bench kills this process


def crash_drain(args: dict[str, Any], io: ChildIO) -> dict[str, Any]:
    """Child role: a fresh process that learns whatever the killed ones left."""
    target = Target.from_json(args["target"])
    machine = _machine(args["embedder"], lease=args["lease"])
    machine.bind(db=target.open(), model=_model(args["delay"]))
    io.say("ready")
    started = time.perf_counter()
    error = None
    try:
        machine.wait_idle(timeout=args["timeout"], raise_on_failure=False)
    except (LearningMachinesError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "turns": machine.usage.turns,
        "error": error,
    }


def _count(texts: list[str], found: Counter[str]) -> None:
    for text in texts:
        for tok in set(re.findall(_STORED, text)):
            found[tok] += 1


def verify(target: Target, turns: int) -> dict[str, Any]:
    """Per store, how many turns' tokens are missing and how many are there twice or more."""
    db = target.open()
    try:
        rows = db.run(
            ListLearnings(
                # Every status: a fact a later turn superseded, or a near duplicate merged into
                # another, was still applied (curation's own choice, not a crash's loss).
                filter=LearningFilter(
                    namespaces=(PRIVATE_NAMESPACE, GLOBAL_NAMESPACE),
                    reader_user_id=USER,
                    statuses=ALL_STATUSES,
                ),
                limit=None,
            )
        )
        by_store: dict[str, Counter[str]] = {
            name: Counter()
            for name in ("profile", "session", "knowledge", "entity", "episode", "message")
        }
        for row in rows:
            if row.learning_type == "user_profile":
                _count([str(p) for p in row.content.get("preferences", [])], by_store["profile"])
            elif row.learning_type == "session_context":
                _count([str(p) for p in row.content.get("progress", [])], by_store["session"])
            elif row.learning_type == "learned_knowledge":
                _count([row.search_text], by_store["knowledge"])
            elif row.learning_type == "entity_fact":
                _count([row.search_text], by_store["entity"])
            elif row.learning_type == "episode" and row.content.get("speaker") == USER:
                _count([str(row.content.get("text", ""))], by_store["episode"])
        messages = db.run(ListMessages(session_id=SESSION, user_id=USER, limit=None))
        _count([m.user_message for m in messages], by_store["message"])
        work = Counter(w.status for w in db.run(ListWork(limit=None)))
    finally:
        db.close()
    expected = [token(i) for i in range(turns)]
    lost = [t for t in expected if any(c[t] == 0 for c in by_store.values())]
    doubled = [t for t in expected if any(c[t] > 1 for c in by_store.values())]
    return {
        "lost": len(lost),
        "doubled": len(doubled),
        "lost_examples": lost[:5],
        "doubled_examples": doubled[:5],
        "missing_by_store": {
            name: sum(1 for t in expected if c[t] == 0) for name, c in by_store.items()
        },
        "work": dict(work),
    }


def _held(target: Target) -> set[tuple[str, str]]:
    """``(item, worker)`` of every claimed item (learning in progress, or its worker died)."""
    db = target.open()
    try:
        return {
            (w.id, str(w.locked_by)) for w in db.run(ListWork(statuses=("running",), limit=None))
        }
    finally:
        db.close()


def run_crash(
    target: Target,
    *,
    embedder: str,
    workdir: Path,
    turns: int = 200,
    kills: int = 10,
    delay: float = 0.2,
    pace: float = 0.1,
    lease: float = 2.0,
    seed: int = 7,
) -> dict[str, Any]:
    """Answer ``turns`` turns in processes killed about ``kills`` times; drain; count.

    ``pace`` seconds pass between a turn's answer and the next message, so that learning runs
    while turns are answered (kills land in both).
    """
    rng = random.Random(seed)
    args = {
        "target": target.to_json(),
        "embedder": embedder,
        "turns": turns,
        "delay": delay,
        "pace": pace,
        "lease": lease,
        "timeout": 600,
    }
    mean_span = max(2, turns // kills)
    killed = 0
    in_flight: list[int] = []
    seen: set[tuple[str, str]] = set()
    started = time.perf_counter()
    finished = False
    while not finished:
        child = Child("crash-agent", args, log=workdir / "crash-agent.log")
        try:
            child.expect("ready", timeout=180)
            span, answered = rng.randint(mean_span // 2 + 1, mean_span * 3 // 2), 0
            while True:
                line = child.line(timeout=120)
                if line is None:
                    raise RuntimeError(f"the crash agent exited on its own; see {workdir}")
                if line == "finished":
                    finished = True
                    time.sleep(rng.uniform(0, delay))  # in the middle of learning the backlog
                    break
                if line.startswith("ack "):
                    answered += 1
                    if answered >= span:
                        time.sleep(rng.uniform(0, 0.3))
                        break
        finally:
            child.kill()
        killed += 1
        held = _held(target)
        in_flight.append(len(held - seen))  # claimed by the process just killed
        seen |= held
    answering = time.perf_counter() - started
    db = target.open()
    try:
        left = Counter(w.status for w in db.run(ListWork(limit=None)))
    finally:
        db.close()
    drainer = Child("crash-drain", args, log=workdir / "crash-drain.log")
    try:
        drainer.expect("ready", timeout=180)
        drain = drainer.result(timeout=660)
    finally:
        drainer.kill()
    return {
        "turns": turns,
        "kills": killed,
        "learning_in_flight_at_kills": in_flight,
        "seconds_between_turns": pace,
        "extraction_delay_s": delay,
        "lease_s": lease,
        "answering_seconds": round(answering, 1),
        "left_after_last_kill": dict(left),
        "drain": drain,
        **verify(target, turns),
    }
