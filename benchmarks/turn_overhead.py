"""What learning adds to ``agent.run()``: learning on vs off, query embedding excluded.

    python benchmarks/turn_overhead.py [--rows 10000] [--turns 200] [--out result.json]

A SQLite database holds ``--rows`` synthetic learnings (the ``bench latency`` layout: one user's
turn among thousands of users, 5% shared ``global`` knowledge). The same scripted model answers
instantly with learning off (our Agent with a db, no stores) and on (all five built-in stores,
background learning off so the worker does not compete), turn by turn, interleaved. Every query
is embedded once before timing (a cached MiniLM), so the figure is the machine's own overhead:
recall, context assembly, tools, and writing the turn with its pending work.

Only public names that older versions also have are used, so the same file measures an older
checkout for a before/after comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from learning_machines import Agent, LearningMachine
from learning_machines.bench._common import CachedEmbedder
from learning_machines.bench._synthetic import SyntheticPlan, load_synthetic, random_sentence
from learning_machines.db import SqliteDb
from learning_machines.embedders import default_embedder
from learning_machines.testing import ScriptedModel

FOCUS_USER = "user-000000"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k] * 1000


async def _measure(rows: int, turns: int, workdir: Path) -> dict[str, Any]:
    embedder = CachedEmbedder(default_embedder())
    rng = random.Random(5)
    messages = [random_sentence(rng, 6, 14) for _ in range(turns + 5)]
    embedder.embed(messages)  # every query embedded before timing
    db = SqliteDb(workdir / "overhead.db")
    load_synthetic(db, SyntheticPlan(rows=rows, embedder=embedder.name))
    model = ScriptedModel(answers="Sure.")
    off = Agent(model=model, db=db, learning=None)
    machine = LearningMachine(
        model=model,
        embedder=embedder,  # type: ignore[arg-type]
        user_profile=True,
        session_context=True,
        learned_knowledge=True,
        entity_memory=True,
        episodic_memory=True,
        background=False,
        curate_every_turns=None,
    )
    on = Agent(model=model, db=db, learning=machine)
    times: dict[str, list[float]] = {"off": [], "on": []}
    for i, message in enumerate(messages):
        for key, agent in (("off", off), ("on", on)):
            started = time.perf_counter()
            await agent.arun(message, user_id=FOCUS_USER, session_id=f"s{i}-{key}")
            if i >= 5:  # warm-up turns
                times[key].append(time.perf_counter() - started)
    db.close()
    added = [a - b for a, b in zip(times["on"], times["off"], strict=True)]
    return {
        "rows": rows,
        "turns": turns,
        "off_ms": {"p50": _pct(times["off"], 50), "p95": _pct(times["off"], 95)},
        "on_ms": {"p50": _pct(times["on"], 50), "p95": _pct(times["on"], 95)},
        "added_ms": {
            "p50": statistics.median(added) * 1000,
            "p95": _pct(added, 95),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(_measure(args.rows, args.turns, Path(tmp)))
    text = json.dumps({k: v for k, v in result.items()}, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
