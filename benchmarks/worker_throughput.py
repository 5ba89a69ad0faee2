"""How fast a worker learns from a backlog of finished turns.

    python benchmarks/worker_throughput.py [--turns 200]
    taskset -c 0 python benchmarks/worker_throughput.py       # one core

A backlog of turns from 20 users (the demo's scripted extraction, all five built-in stores in
BACKGROUND, the offline MiniLM embedder) is written with background learning off, then drained
by ``wait_idle()`` in this process; the drain is timed. Only public names that older versions
also have are used, so the same file measures an older checkout.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from learning_machines import LearningMachine
from learning_machines._demo import demo_extraction
from learning_machines.db import SqliteDb
from learning_machines.embedders import default_embedder
from learning_machines.testing import ScriptedModel

LINES = (
    "I'm Alice Chen, I lead the data platform team at Acme.",
    "Acme uses PostgreSQL for billing.",
    "Lesson learned: batch your backfills in chunks of 10k rows.",
    "Bob Lee is the CTO of Acme.",
    "Keep answers short please.",
    "We launched v2 on 2024-03-01.",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = SqliteDb(Path(tmp) / "backlog.db")
        embedder = default_embedder()
        embedder.embed(["warm up"])
        machine = LearningMachine(
            db=db,
            model=ScriptedModel(extraction=demo_extraction),
            embedder=embedder,
            user_profile=True,
            session_context=True,
            learned_knowledge=True,
            entity_memory=True,
            episodic_memory=True,
            background=False,
            curate_every_turns=None,
        )
        for i in range(args.turns):
            machine.process(
                [
                    {"role": "user", "content": f"{LINES[i % len(LINES)]} (note {i})"},
                    {"role": "assistant", "content": "Noted, thanks."},
                ],
                user_id=f"user{i % 20}",
                session_id=f"s{i % 40}",
            )
        started = time.perf_counter()
        machine.wait_idle(timeout=None)
        seconds = time.perf_counter() - started
        db.close()
    print(f"{args.turns} turns drained in {seconds:.1f} s = {args.turns / seconds:.1f} turns/s")


if __name__ == "__main__":
    main()
