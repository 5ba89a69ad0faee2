"""Curation benchmark: a long stream of repeated, drifting and contradicting facts.

A synthetic user talks about people (Alice lives in Berlin, works at Globex, …). Each event
restates a fact, rewords it (drift), or changes it (a contradiction: she moved). The stream is
written three ways into SQLite:

- ``none``: every learning stored as it comes (no curation);
- ``similarity``: through ``write_learning`` with duplicate and near-duplicate merging only
  (no conflict keys), plus a ``curate()`` run every 100 events;
- ``full``: as ``similarity``, and each fact carries its conflict key (person + attribute), as
  the built-in extraction provides, so a new value supersedes the old one.

For every (person, attribute) the benchmark asks a question through hybrid search and prints the
store's size and the share of current-and-correct facts in recall: ``top1 current`` (the first
result states the current value), ``current in k`` (some top-k result does) and ``current share``
(of the top-k results about that person and attribute, the share stating the current value).

    python benchmarks/curation.py            # MiniLM (the default embedder)
    python benchmarks/curation.py --hash     # HashEmbedder, no model
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from learning_machines.curation import Curator, WritePolicy, write_learning
from learning_machines.db import (
    Change,
    CountLearnings,
    Learning,
    LearningFilter,
    PutLearning,
    SearchLearnings,
    SqliteDb,
)
from learning_machines.embedders import Embedder, HashEmbedder, MiniLMEmbedder

PEOPLE = ["Alice", "Bruno", "Chiara", "Dmitri", "Esther", "Farid", "Greta", "Hiro"]
ATTRIBUTES: dict[str, tuple[list[str], list[str], str]] = {
    "lives_in": (
        ["London", "Berlin", "Lisbon", "Toronto", "Osaka", "Nairobi", "Lima", "Oslo"],
        [
            "{p} lives in {v}.",
            "{p} is living in {v} these days.",
            "{p}'s home is in {v}, where they rent a flat.",
        ],
        "Where does {p} live?",
    ),
    "works_at": (
        ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises"],
        [
            "{p} works at {v}.",
            "{p} is employed by {v}.",
            "{p} has a job at {v} on the platform team.",
        ],
        "Where does {p} work?",
    ),
    "drinks": (
        ["green tea", "espresso", "flat whites", "mate", "oolong", "hot chocolate"],
        [
            "{p} drinks {v} every morning.",
            "{p}'s favourite drink is {v}.",
            "Every morning {p} has {v} before work.",
        ],
        "What does {p} drink in the morning?",
    ),
    "pet": (
        ["a cat", "a dog", "a parrot", "two rabbits", "a tortoise"],
        ["{p} has {v} as a pet.", "{p}'s pet is {v}.", "{p} lives with {v}, their pet."],
        "What pet does {p} have?",
    ),
}


@dataclass
class Event:
    person: str
    attribute: str
    value: str
    text: str
    at: datetime


def stream(n: int, seed: int, change_rate: float) -> tuple[list[Event], dict[tuple[str, str], str]]:
    rng = random.Random(seed)
    truth: dict[tuple[str, str], str] = {}
    events: list[Event] = []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        person = rng.choice(PEOPLE)
        attribute = rng.choice(list(ATTRIBUTES))
        values, templates, _ = ATTRIBUTES[attribute]
        key = (person, attribute)
        if key not in truth or rng.random() < change_rate:
            truth[key] = rng.choice([v for v in values if v != truth.get(key)])
        value = truth[key]
        text = rng.choice(templates).format(p=person, v=value)
        events.append(Event(person, attribute, value, text, start + timedelta(hours=i)))
    return events, truth


SCOPE = LearningFilter(namespaces=("user",), reader_user_id="u1")
CREATE = Change(action="create", actor={"store": "benchmark"})


async def load(mode: str, events: list[Event], embedder: Embedder, path: Path) -> SqliteDb:
    db = SqliteDb(path)
    curator = Curator(db=db, embedder=embedder)
    vectors = embedder.embed([e.text for e in events])
    for i, (event, vector) in enumerate(zip(events, vectors, strict=True)):
        content = {"person": event.person, "attribute": event.attribute, "value": event.value}
        if mode == "full":
            content["conflict_key"] = f"{event.person}.{event.attribute}"
        learning = Learning(
            learning_type="fact",
            user_id="u1",
            search_text=event.text,
            content=content,
            embedding=tuple(float(x) for x in vector),
            embedder=embedder.name,
            valid_from=event.at,
            created_at=event.at,
            updated_at=event.at,
        )
        if mode == "none":
            await db.arun(PutLearning(learning=learning, change=CREATE))
            continue
        await write_learning(
            db=db, embedder=embedder, learning=learning, change=CREATE, scope=SCOPE,
            policy=WritePolicy(),
        )  # fmt: skip
        if (i + 1) % 100 == 0:
            await curator.acurate(now=event.at)
    if mode != "none":
        await curator.acurate(now=events[-1].at)
    return db


async def score(
    db: SqliteDb, embedder: Embedder, truth: dict[tuple[str, str], str], k: int
) -> tuple[int, float, float, float]:
    size = await db.arun(CountLearnings(filter=SCOPE))
    top1 = hits = 0
    precision: list[float] = []
    questions = [(p, a, ATTRIBUTES[a][2].format(p=p)) for p, a in sorted(truth)]
    vectors = embedder.embed([q for _, _, q in questions])
    for (person, attribute, question), vector in zip(questions, vectors, strict=True):
        found = await db.arun(
            SearchLearnings(
                filter=SCOPE, query=question, vector=tuple(float(x) for x in vector),
                embedder=embedder.name, limit=k,
            )
        )  # fmt: skip
        current = truth[(person, attribute)]
        about = [
            s.learning
            for s in found
            if s.learning.content.get("person") == person
            and s.learning.content.get("attribute") == attribute
        ]
        correct = [x for x in about if x.content.get("value") == current]
        if found and found[0].learning in correct:
            top1 += 1
        hits += bool(correct)
        if about:
            precision.append(len(correct) / len(about))
    n = len(questions)
    return size, top1 / n, hits / n, sum(precision) / max(1, len(precision))


async def main() -> None:
    parser = argparse.ArgumentParser(description="Curation benchmark (store size, recall).")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--change-rate", type=float, default=0.15)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hash", action="store_true", help="HashEmbedder instead of MiniLM")
    args = parser.parse_args()
    embedder: Embedder = HashEmbedder() if args.hash else MiniLMEmbedder()
    events, truth = stream(args.events, args.seed, args.change_rate)
    last: dict[tuple[str, str], str] = {}
    changes = 0
    for e in events:
        key = (e.person, e.attribute)
        changes += key in last and last[key] != e.value
        last[key] = e.value
    distinct = len({e.text for e in events})
    print(
        f"embedder {embedder.name}; {len(events)} events, {distinct} distinct texts, "
        f"{changes} contradictions, {len(truth)} (person, attribute) facts; top-{args.k}"
    )
    header = ("mode", "stored", "top1 current", "current in k", "current share")
    print(f"{header[0]:>11} {header[1]:>7} {header[2]:>13} {header[3]:>13} {header[4]:>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("none", "similarity", "full"):
            db = await load(mode, events, embedder, Path(tmp) / f"{mode}.db")
            size, top1, hits, precision = await score(db, embedder, truth, args.k)
            db.close()
            print(f"{mode:>11} {size:>7d} {top1:>13.1%} {hits:>13.1%} {precision:>14.1%}")


if __name__ == "__main__":
    asyncio.run(main())
