"""How fast a worker learns from a backlog of finished turns.

    python benchmarks/worker_throughput.py [--turns 200] [--written-by answer|process]
    taskset -c 0 python benchmarks/worker_throughput.py       # one core
    python benchmarks/worker_throughput.py --embedder hash    # the library's own work

A backlog of turns from 20 users (the demo's scripted extraction, all five built-in stores in
BACKGROUND, the offline MiniLM embedder) is written by one machine with background learning off,
then drained by ``wait_idle()`` of a second machine on the same database file, as a separate
worker process (``learning-machines worker``) would drain it; the drain is timed.

``--written-by`` says how the turns were written:

* ``answer`` (the default): ``machine.begin(message)`` then ``turn.finish(messages)``, what every
  ``Agent`` turn does. The message was embedded to recall while answering, and that vector
  travels with the turn, so the worker does not embed it again.
* ``process``: ``machine.process(messages)`` after the fact, with no recall: the worker embeds
  the message itself (one text more per turn).

``--embedder hash`` swaps MiniLM for the test suite's hash embedder (no model), which leaves what
the worker itself costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from learning_machines import LearningMachine
from learning_machines._demo import demo_extraction
from learning_machines.db import SqliteDb
from learning_machines.embedders import Embedder, HashEmbedder, default_embedder
from learning_machines.testing import ScriptedModel

LINES = (
    "I'm Alice Chen, I lead the data platform team at Acme.",
    "Acme uses PostgreSQL for billing.",
    "Lesson learned: batch your backfills in chunks of 10k rows.",
    "Bob Lee is the CTO of Acme.",
    "Keep answers short please.",
    "We launched v2 on 2024-03-01.",
)


def _machine(db: SqliteDb, embedder: Embedder) -> LearningMachine:
    return LearningMachine(
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


def _write_backlog(machine: LearningMachine, *, turns: int, written_by: str) -> None:
    for i in range(turns):
        message = f"{LINES[i % len(LINES)]} (note {i})"
        messages = [
            {"role": "user", "content": message},
            {"role": "assistant", "content": "Noted, thanks."},
        ]
        ids = {"user_id": f"user{i % 20}", "session_id": f"s{i % 40}"}
        if written_by == "answer":
            machine.begin(message, **ids).finish(messages)
        else:
            machine.process(messages, **ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--embedder", choices=("minilm", "hash"), default="minilm")
    parser.add_argument("--written-by", choices=("answer", "process"), default="answer")
    args = parser.parse_args()
    embedder = HashEmbedder() if args.embedder == "hash" else default_embedder()
    embedder.embed(["warm up"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "backlog.db"
        writer_db = SqliteDb(path)
        _write_backlog(_machine(writer_db, embedder), turns=args.turns, written_by=args.written_by)
        writer_db.close()
        db = SqliteDb(path)
        worker = _machine(db, embedder)
        started = time.perf_counter()
        worker.wait_idle(timeout=None)
        seconds = time.perf_counter() - started
        db.close()
    print(
        f"{args.turns} turns (written by {args.written_by}, {args.embedder}) drained in "
        f"{seconds:.1f} s = {args.turns / seconds:.1f} turns/s"
    )


if __name__ == "__main__":
    main()
