"""Synthetic learnings of every built-in learning type, for speed and scale benchmarks.

Texts are random sentences from a fixed vocabulary and vectors are random unit vectors (not
model embeddings: embedding a million texts with MiniLM takes hours on two cores). Rows are spread
over many users, so a scoped query is "one user among many"; a fraction of the rows is shared
knowledge in the ``global`` namespace, which every reader searches (the broad scope).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from ..db import (
    GLOBAL_NAMESPACE,
    PRIVATE_NAMESPACE,
    Change,
    Db,
    Learning,
    PutLearning,
    utcnow,
)
from ..stores._entity_model import ENTITY, FACT, RELATION
from ..stores._shared import stable_id

__all__ = [
    "FOCUS_USER",
    "VOCABULARY",
    "LoadStats",
    "SyntheticPlan",
    "load_synthetic",
    "random_sentence",
    "synthetic_batches",
    "user_name",
    "with_embedding",
]

#: Words the synthetic texts are drawn from (shared by rows and queries, so keyword search hits).
_WORDS = """
    postgres table index backfill batch lock migration schema query latency replica cluster
    billing invoice customer account payment refund subscription plan pricing discount
    deploy release rollback canary pipeline build test coverage review merge branch commit
    kubernetes container pod node autoscale memory cpu disk network timeout retry queue worker
    python rust golang typescript react frontend backend api endpoint token auth session cookie
    alice bob carol dave erin frank grace heidi ivan judy mallory oscar peggy trent victor walter
    acme globex initech umbrella hooli stark wayne wonka cyberdyne tyrell soylent vandelay
    meeting standup roadmap quarter budget hiring onboarding offsite vacation holiday birthday
    coffee tea vegetarian vegan running cycling hiking climbing chess guitar piano painting
    paris london berlin tokyo lisbon madrid rome oslo prague vienna dublin zurich boston austin
    dashboard metric alert incident outage postmortem oncall pager escalation runbook sla slo
    dataset model training inference embedding vector search ranking recall precision fusion
    cache redis kafka spark airflow dbt snowflake bigquery s3 bucket backup restore snapshot
    prefers likes dislikes uses owns manages leads joined left moved started finished planned
"""
VOCABULARY: tuple[str, ...] = tuple(_WORDS.split())

#: The user whose turns the latency benchmarks time (present at every size).
FOCUS_USER = "user-000000"

_ENTITY_TYPES = ("person", "company", "project", "place")
_RELATIONS = ("works at", "manages", "is CTO of", "uses", "lives in", "owns")


def user_name(index: int) -> str:
    """The synthetic user id number ``index``."""
    return f"user-{index:06d}"


def random_sentence(rng: random.Random, low: int = 8, high: int = 16) -> str:
    """A random sentence of ``low`` to ``high`` vocabulary words."""
    words = rng.choices(VOCABULARY, k=rng.randint(low, high))
    return " ".join(words).capitalize() + "."


@dataclass(frozen=True, kw_only=True)
class SyntheticPlan:
    """How ``rows`` synthetic learnings are laid out."""

    rows: int
    """Learnings in total."""
    embedder: str
    """Embedder name stored with the vectors (the one queries are embedded with)."""
    dimensions: int = 384
    """Vector length."""
    rows_per_user: int = 60
    """Private learnings per user: one profile, two sessions, entities with facts and relations,
    and episodes for the rest."""
    shared_fraction: float = 0.05
    """Fraction of all rows that is shared knowledge (``global`` namespace)."""
    seed: int = 7
    """Random seed (same plan, same rows)."""

    @property
    def shared_rows(self) -> int:
        """Rows of shared learned knowledge."""
        return int(self.rows * self.shared_fraction)

    @property
    def users(self) -> int:
        """Users holding the private rows (at least one: the focus user)."""
        return max(1, (self.rows - self.shared_rows) // self.rows_per_user)


def _user_rows(rng: random.Random, user_id: str, count: int, embedder: str) -> list[Learning]:
    """``count`` private learnings of one user, of every private built-in type."""
    now = utcnow()
    rows: list[Learning] = []
    sessions = [f"{user_id}-s{i}" for i in range(2)]
    name = rng.choice(VOCABULARY).capitalize() + " " + rng.choice(VOCABULARY).capitalize()
    profile = {
        "name": name,
        "preferred_name": name.split()[0],
        "role": f"lead of the {rng.choice(VOCABULARY)} team",
        "company": rng.choice(VOCABULARY).capitalize(),
        "team": rng.choice(VOCABULARY),
        "projects": [rng.choice(VOCABULARY)],
        "preferences": rng.sample(VOCABULARY, 2),
        "communication_style": "keep answers short",
    }
    rows.append(
        Learning(
            id=stable_id("user_profile", PRIVATE_NAMESPACE, user_id),
            learning_type="user_profile",
            user_id=user_id,
            content=profile,
            search_text="\n".join(f"- {k}: {v}" for k, v in profile.items()),
            embedder=embedder,
        )
    )
    for session in sessions:
        summary = "The user said: " + random_sentence(rng)
        rows.append(
            Learning(
                id=stable_id("session_context", PRIVATE_NAMESPACE, user_id, session),
                learning_type="session_context",
                user_id=user_id,
                session_id=session,
                content={"summary": summary, "goal": None, "plan": [], "progress": []},
                search_text=f"Summary: {summary}",
                embedder=embedder,
            )
        )
    entities = []
    for _ in range(3):
        ename = rng.choice(VOCABULARY).capitalize() + " " + rng.choice(VOCABULARY).capitalize()
        content = {
            "name": ename,
            "entity_type": rng.choice(_ENTITY_TYPES),
            "aliases": [],
            "description": random_sentence(rng, 4, 8),
        }
        eid = stable_id(ENTITY, PRIVATE_NAMESPACE, user_id, ename.lower())
        entities.append((eid, ename))
        rows.append(
            Learning(
                id=eid,
                learning_type=ENTITY,
                user_id=user_id,
                entity_id=eid,
                content=content,
                search_text=f"{ename} ({content['entity_type']}) — {content['description']}",
                embedder=embedder,
            )
        )
    for eid, ename in entities:
        for _ in range(2):
            fact = random_sentence(rng, 5, 10).rstrip(".").lower()
            rows.append(
                Learning(
                    learning_type=FACT,
                    user_id=user_id,
                    entity_id=eid,
                    content={"entity": ename, "fact": fact},
                    search_text=f"{ename}: {fact}",
                    embedder=embedder,
                )
            )
    for (sid, sname), (oid, oname) in itertools.pairwise(entities):
        relation = rng.choice(_RELATIONS)
        rows.append(
            Learning(
                learning_type=RELATION,
                user_id=user_id,
                entity_id=sid,
                content={"subject": sname, "relation": relation, "object": oname, "object_id": oid},
                search_text=f"{sname} {relation} {oname}",
                embedder=embedder,
            )
        )
    index = 0
    while len(rows) < count:
        speaker = user_id if index % 2 == 0 else "assistant"
        text = random_sentence(rng)
        at = now - timedelta(minutes=count - index)
        rows.append(
            Learning(
                id=stable_id("episode", user_id, str(index)),
                learning_type="episode",
                user_id=user_id,
                session_id=sessions[index % 2],
                content={
                    "speaker": speaker,
                    "text": text,
                    "at": at.isoformat(),
                    "ref": None,
                    "caption": None,
                },
                search_text=f"{speaker}: {text}",
                valid_from=at,
                embedder=embedder,
            )
        )
        index += 1
    return rows[:count]


def _shared_row(rng: random.Random, author: str, embedder: str) -> Learning:
    title = " ".join(rng.choices(VOCABULARY, k=4)).capitalize()
    learning = random_sentence(rng)
    tags = sorted(set(rng.sample(VOCABULARY, 2)))
    return Learning(
        learning_type="learned_knowledge",
        namespace=GLOBAL_NAMESPACE,
        user_id=author,
        content={
            "title": title,
            "learning": learning,
            "context": "",
            "tags": tags,
            "source": "conversation",
        },
        search_text=f"{title}: {learning}\nTags: {', '.join(tags)}",
        embedder=embedder,
    )


def synthetic_batches(plan: SyntheticPlan, *, batch_size: int = 1000) -> Iterator[list[Learning]]:
    """The plan's learnings, in batches, with random unit vectors (never all in memory)."""
    rng = random.Random(plan.seed)
    np_rng = np.random.default_rng(plan.seed)
    private_total = plan.rows - plan.shared_rows
    private_done = shared_done = user = 0
    pending: list[Learning] = []

    def with_vectors(rows: list[Learning]) -> list[Learning]:
        vectors = np_rng.standard_normal((len(rows), plan.dimensions)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return [
            with_embedding(row, tuple(vector.tolist()))
            for row, vector in zip(rows, vectors, strict=True)
        ]

    while private_done < private_total or shared_done < plan.shared_rows:
        if private_done < private_total:
            count = min(plan.rows_per_user, private_total - private_done)
            pending.extend(_user_rows(rng, user_name(user), count, plan.embedder))
            private_done += count
            user += 1
        # Shared rows are interleaved with the users' rows, in proportion.
        due = (
            plan.shared_rows * private_done // private_total if private_total else plan.shared_rows
        )
        for _ in range(due - shared_done):
            pending.append(_shared_row(rng, user_name(rng.randrange(user or 1)), plan.embedder))
        shared_done = max(shared_done, due)
        while len(pending) >= batch_size:
            batch, pending = pending[:batch_size], pending[batch_size:]
            yield with_vectors(batch)
    if pending:
        yield with_vectors(pending)


def with_embedding(row: Learning, vector: tuple[float, ...]) -> Learning:
    """``row`` with ``vector`` as its embedding (set in place on the frozen record)."""
    # dataclasses.replace re-runs field defaults of nothing; this keeps ids and times.
    object.__setattr__(row, "embedding", vector)
    return row


@dataclass(frozen=True, kw_only=True)
class LoadStats:
    """What :func:`load_synthetic` wrote and how fast."""

    rows: int
    """Learnings written."""
    seconds: float
    """Wall time of the writes (vectors generated beforehand are not counted)."""
    index_seconds: float = 0.0
    """PostgreSQL: time to build the HNSW index after the bulk load (0 on SQLite)."""

    @property
    def rows_per_second(self) -> float:
        """Write throughput (index build excluded)."""
        return self.rows / self.seconds if self.seconds else float("inf")

    @property
    def rows_per_second_with_index(self) -> float:
        """Throughput counting the index build too: rows per second until searchable at speed."""
        total = self.seconds + self.index_seconds
        return self.rows / total if total else float("inf")


_CHANGE = Change(action="create", actor={"store": "bench"}, reason="synthetic")


def load_synthetic(
    db: Db,
    plan: SyntheticPlan,
    *,
    batch_size: int = 1000,
    progress: bool = False,
) -> LoadStats:
    """Write the plan's learnings through bulk :class:`PutLearning` batches; time the writes.

    On PostgreSQL the load runs inside :meth:`PostgresDb.bulk_load` (the HNSW index is built
    once at the end, timed apart), as a production import of this size would.
    """
    from ..db import PostgresDb

    postgres = db if isinstance(db, PostgresDb) else None
    written = 0
    spent = 0.0
    next_report = 100_000
    with ExitStack() as stack:
        if postgres is not None:
            stack.enter_context(postgres.bulk_load(maintenance_work_mem="2GB"))
        for batch in synthetic_batches(plan, batch_size=batch_size):
            ops: Sequence[PutLearning] = [
                PutLearning(learning=row, change=_CHANGE) for row in batch
            ]
            started = time.perf_counter()
            db.batch(ops)
            spent += time.perf_counter() - started
            written += len(batch)
            if progress and written >= next_report:
                print(f"  … {written:,} rows ({written / spent:,.0f}/s)", flush=True)
                next_report += 100_000
        index_started = time.perf_counter()
    index_seconds = time.perf_counter() - index_started if postgres is not None else 0.0
    if progress and index_seconds:
        print(f"  … HNSW index built in {index_seconds:,.0f} s", flush=True)
    return LoadStats(rows=written, seconds=spent, index_seconds=index_seconds)
