"""Updates kept under 8 concurrent writers: 4 threads and 4 processes, 50 updates each.

Every writer makes distinct updates to ONE user's profile, so every update is a
read-modify-write of the same row. Two paths, as an application drives them:

- **tool path**: each update is a turn whose agent calls ``update_user_profile`` (an AGENTIC
  profile): ``machine.begin(...)``, ``turn.tools.call(...)``, ``turn.finish(...)``;
- **background extraction**: each update is a turn whose extraction (a scripted model) adds a
  preference; every process learns in the background while it records turns, then waits
  until nothing is left, so workers of five processes apply turns of one user at once.

An update is kept when its preference is in the profile at the end. An update that failed
loudly (an exception, or a turn parked as failed) is counted as an error, and is not kept.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from .._modes import LearningMode
from ..db import ListWork
from ..exceptions import LearningMachinesError
from ..machine import LearningMachine
from ..stores import UserProfileConfig
from ..testing import ScriptedModel
from ._rel_child import ChildIO
from ._rel_common import Child, Target, make_embedder, tokens

__all__ = ["extract_writer", "run_concurrent", "tool_writer"]

THREADS = 4
PROCESSES = 4
TOOL_USER = "alice"
EXTRACT_USER = "bob"
_PREF = r"\[(pref-[\w-]+)\]"


def _preference(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """What the scripted model extracts: the turn's ``[pref-…]`` token as a preference."""
    return {"user_profile": {"preferences": tokens(prompt, _PREF)}}


def _tool_machine(target: Target, embedder: str) -> LearningMachine:
    return LearningMachine(
        db=target.open(pool_size=THREADS + 2),
        embedder=make_embedder(embedder),
        user_profile=UserProfileConfig(mode=LearningMode.AGENTIC),
        background=False,
        curate_every_turns=None,
    )


def _extract_machine(target: Target, embedder: str) -> LearningMachine:
    model = ScriptedModel(answers="Noted.", extraction=_preference, extraction_delay=0.005)
    return LearningMachine(
        db=target.open(pool_size=THREADS + 2),
        embedder=make_embedder(embedder),
        model=model,
        user_profile=True,
        curate_every_turns=None,
        retry_backoff=0.05,
    )


def _fact(writer: str, i: int) -> str:
    return f"pref-{writer}-{i}"


def _tool_updates(machine: LearningMachine, writer: str, updates: int) -> list[str]:
    errors: list[str] = []
    for i in range(updates):
        message = f"Remember that I like [{_fact(writer, i)}]."
        try:
            turn = machine.begin(message, user_id=TOOL_USER, session_id=f"tool-{writer}")
            turn.tools.call("update_user_profile", {"preferences": [_fact(writer, i)]})
            turn.finish(
                [{"role": "user", "content": message}, {"role": "assistant", "content": "Saved."}]
            )
        except LearningMachinesError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    return errors


def _extract_updates(machine: LearningMachine, writer: str, updates: int) -> list[str]:
    errors: list[str] = []
    for i in range(updates):
        message = f"Remember that I like [{_fact(writer, i)}]."
        try:
            machine.process(
                [{"role": "user", "content": message}, {"role": "assistant", "content": "Noted."}],
                user_id=EXTRACT_USER,
                session_id=f"extract-{writer}",
            )
        except LearningMachinesError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    return errors


def _finish(machine: LearningMachine, errors: list[str], *, timeout: float) -> None:
    try:
        machine.wait_idle(timeout=timeout)
    except (LearningMachinesError, TimeoutError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")


def tool_writer(args: dict[str, Any], io: ChildIO) -> dict[str, Any]:
    """Child role: one writer's updates through the tool path, after ``go``."""
    machine = _tool_machine(Target.from_json(args["target"]), args["embedder"])
    io.say("ready")
    io.wait_go()
    errors = _tool_updates(machine, args["writer"], args["updates"])
    return {"errors": errors}


def extract_writer(args: dict[str, Any], io: ChildIO) -> dict[str, Any]:
    """Child role: one writer's turns learned in the background, then wait until all is done."""
    machine = _extract_machine(Target.from_json(args["target"]), args["embedder"])
    io.say("ready")
    io.wait_go()
    errors = _extract_updates(machine, args["writer"], args["updates"])
    _finish(machine, errors, timeout=args["timeout"])
    return {"errors": errors, "turns_learned_here": machine.usage.turns}


def _run_path(
    path: str, target: Target, *, embedder: str, updates: int, workdir: Path
) -> dict[str, Any]:
    """Run one path with THREADS threads here and PROCESSES children; count what was kept."""
    timeout = 300.0
    role = "tool-writer" if path == "tool" else "extract-writer"
    children = [
        Child(
            role,
            {
                "target": target.to_json(),
                "embedder": embedder,
                "writer": f"p{n}",
                "updates": updates,
                "timeout": timeout,
            },
            log=workdir / f"{role}-{n}.log",
        )
        for n in range(PROCESSES)
    ]
    machine = (_tool_machine if path == "tool" else _extract_machine)(target, embedder)
    errors: list[str] = []
    try:
        for child in children:
            child.expect("ready", timeout=120)
        write = _tool_updates if path == "tool" else _extract_updates
        threads = [
            threading.Thread(
                target=lambda w=f"t{n}": errors.extend(write(machine, w, updates)), daemon=True
            )
            for n in range(THREADS)
        ]
        started = time.perf_counter()
        for child in children:
            child.send("go")
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if path == "extract":
            _finish(machine, errors, timeout=timeout)
        here = machine.usage.turns
        results = [child.result(timeout=timeout) for child in children]
        seconds = time.perf_counter() - started
        for result in results:
            errors.extend(result["errors"])
        store = machine.stores["user_profile"]
        user = TOOL_USER if path == "tool" else EXTRACT_USER
        profile = store.recall(user_id=user)
        kept_set = set(profile.preferences if profile is not None else ())
        expected = {
            _fact(f"{kind}{n}", i)
            for kind, count in (("t", THREADS), ("p", PROCESSES))
            for n in range(count)
            for i in range(updates)
        }
        assert machine.db is not None
        parked = [w for w in machine.db.run(ListWork(statuses=("failed",), limit=None))]
        per_process = [here] + [int(r.get("turns_learned_here", 0)) for r in results]
        return {
            "expected": len(expected),
            "kept": len(expected & kept_set),
            "errors": len(errors) + len(parked),
            "error_examples": [*errors, *(str(w.last_error) for w in parked)][:3],
            "seconds": round(seconds, 2),
            **({"turns_learned_per_process": per_process} if path == "extract" else {}),
        }
    finally:
        for child in children:
            child.kill()
        machine.close()
        if machine.db is not None:
            machine.db.close()


def run_concurrent(
    target: Target, *, embedder: str, workdir: Path, updates: int = 50
) -> dict[str, Any]:
    """Both paths on ``target`` (the tool path writes alice's profile, extraction bob's)."""
    return {
        "writers": f"{THREADS} threads + {PROCESSES} processes",
        "updates_per_writer": updates,
        "tool": _run_path("tool", target, embedder=embedder, updates=updates, workdir=workdir),
        "extract": _run_path(
            "extract", target, embedder=embedder, updates=updates, workdir=workdir
        ),
    }
