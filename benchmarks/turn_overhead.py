"""What learning adds to ``agent.run()``: learning on vs off, query embedding excluded.

    python benchmarks/turn_overhead.py [--rows 10000] [--turns 200] [--out result.json]
    python benchmarks/turn_overhead.py --prepare DIR     # write DIR/overhead.db + messages.json
    python benchmarks/turn_overhead.py --data DIR        # measure on them (a copy is used)

A SQLite database holds ``--rows`` synthetic learnings (the ``bench latency`` layout: one user's
turn among thousands of users, 5% shared ``global`` knowledge). The same scripted model answers
instantly with learning off (our Agent with a db, no stores) and on (all five built-in stores,
background learning off so the worker does not compete), turn by turn, interleaved. Every query
is embedded once before timing (a cached MiniLM), so the figure is the machine's own overhead:
recall, context assembly, tools, and writing the turn with its pending work.

Only public names that older versions also have are used, so the same file measures an older
checkout for a before/after comparison: prepare the data once with the OLDER checkout (a newer
version upgrades its database on open), then run both checkouts with ``--data``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from learning_machines import Agent, LearningMachine
from learning_machines.bench._common import CachedEmbedder
from learning_machines.bench._synthetic import SyntheticPlan, load_synthetic
from learning_machines.db import CountLearnings, LearningFilter, SqliteDb
from learning_machines.embedders import default_embedder
from learning_machines.testing import ScriptedModel

FOCUS_USER = "user-000000"


_WORDS = (
    "deploy", "cache", "billing", "postgres", "index", "backfill", "team", "project", "invoice",
    "schedule", "retry", "queue", "lock", "migration", "report", "customer", "vendor", "latency",
    "budget", "review", "release", "api", "token", "search",
)  # fmt: skip


def _sentence(rng: random.Random) -> str:
    try:  # the synthetic data's own words, where this checkout has them
        from learning_machines.bench._synthetic import random_sentence
    except ImportError:
        pass
    else:
        return str(random_sentence(rng, 6, 14))
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "?"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k] * 1000


def _prepare(rows: int, turns: int, folder: Path) -> None:
    """Write the synthetic database and the turn messages both measurements use."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(5)
    messages = [_sentence(rng) for _ in range(turns + 5)]
    (folder / "messages.json").write_text(json.dumps(messages))
    with SqliteDb(folder / "overhead.db") as db:
        load_synthetic(db, SyntheticPlan(rows=rows, embedder=default_embedder().name))


async def _measure(data: Path, workdir: Path) -> dict[str, Any]:
    embedder = CachedEmbedder(default_embedder())
    messages: list[str] = json.loads((data / "messages.json").read_text())
    turns = len(messages) - 5
    embedder.embed(messages)  # every query embedded before timing
    shutil.copy(data / "overhead.db", workdir / "overhead.db")
    db = SqliteDb(workdir / "overhead.db")
    rows = db.run(CountLearnings(filter=LearningFilter(namespaces=("global",)))) * 20
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
        "rows_estimated": rows,
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
    parser.add_argument("--prepare", type=Path, default=None, help="write the data here, stop")
    parser.add_argument("--data", type=Path, default=None, help="measure on prepared data")
    args = parser.parse_args()
    if args.prepare is not None:
        _prepare(args.rows, args.turns, args.prepare)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "data"
            _prepare(args.rows, args.turns, data)
        result = asyncio.run(_measure(data, Path(tmp)))
    text = json.dumps({k: v for k, v in result.items()}, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
