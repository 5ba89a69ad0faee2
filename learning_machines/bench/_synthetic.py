"""Synthetic learnings of every built-in learning type, for speed and scale benchmarks.

Rows are spread over many users, so a scoped query is "one user among many"; a fraction of the
rows is shared knowledge in the ``global`` namespace, which every reader searches (the broad
scope). Embedding a million texts with MiniLM takes hours on two cores, so texts and vectors are
generated, but with the structure real ones have, because an index can only be judged on data
that has it (random unit vectors are all nearly orthogonal: every approximate index looks bad on
them, and every exact one looks good; a 300-word vocabulary makes every word common):

- **Topics.** 400 topics in 40 groups; a topic has a centre vector (its group's centre plus
  noise) and 40 topical words. A row is about one topic: its vector is the centre plus noise
  (cosine about 0.45 within a topic, about 0.25 within a group, about 0 across), and a third of
  its words are topical. Queries are drawn the same way, so the keyword and vector sides agree
  about what is relevant, as they do on real text.
- **Vocabulary.** 21,000 English words (the whole words of MiniLM's tokenizer vocabulary, which
  is ordered roughly by frequency), drawn with Zipf's law (frequency ~ 1 / rank): a few words are
  in most rows, most words in few.
"""

from __future__ import annotations

import functools
import itertools
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources

import numpy as np
import numpy.typing as npt

from ..db import (
    GLOBAL_NAMESPACE,
    PRIVATE_NAMESPACE,
    Change,
    Db,
    Learning,
    PutLearning,
    stable_id,
    utcnow,
)
from ..stores._entity_model import ENTITY, FACT, RELATION

__all__ = [
    "FOCUS_USER",
    "LoadStats",
    "SyntheticPlan",
    "Topics",
    "load_synthetic",
    "synthetic_batches",
    "user_name",
    "vocabulary",
    "with_embedding",
]

_TOPICS = 400
_GROUPS = 40
_TOPIC_WORDS = 40
_TOPICAL_SHARE = 0.35
# Noise scales: cosine(centre + a*g1, centre + a*g2) ~ 1 / (1 + a^2) for g of unit norm.
_ROW_NOISE = 1.1
_TOPIC_NOISE = 0.9


@functools.cache
def vocabulary() -> tuple[str, ...]:
    """Whole English words of MiniLM's vocabulary, most frequent first (about 21,000)."""
    text = (resources.files("learning_machines.embedders") / "data" / "vocab.txt").read_text()
    return tuple(w for w in text.split() if re.fullmatch(r"[a-z]{3,}", w))


class Topics:
    """The topic model of a synthetic data set (deterministic for a seed and dimension)."""

    def __init__(self, *, dimensions: int, seed: int = 7) -> None:
        """Draw topic centres, topical words and the Zipf weights of the vocabulary."""
        rng = np.random.default_rng(seed)
        self.dimensions = dimensions
        self.words = np.asarray(vocabulary())
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        self._cdf = np.cumsum((1 / ranks) / (1 / ranks).sum())
        groups = _unit(rng.standard_normal((_GROUPS, dimensions)))
        noise = _unit(rng.standard_normal((_TOPICS, dimensions))) * _TOPIC_NOISE
        self.centres = _unit(groups[np.arange(_TOPICS) % _GROUPS] + noise)
        # Topical words come from the middle of the frequency range (not "the", not hapaxes).
        self.topic_words = rng.integers(200, 15_000, size=(_TOPICS, _TOPIC_WORDS))

    def sentence(self, rng: np.random.Generator, topic: int, low: int = 8, high: int = 16) -> str:
        """A sentence of ``low`` to ``high`` words about ``topic``."""
        length = int(rng.integers(low, high + 1))
        ids = np.searchsorted(self._cdf, rng.random(length))
        topical = rng.random(length) < _TOPICAL_SHARE
        ids[topical] = rng.choice(self.topic_words[topic], size=int(topical.sum()))
        return " ".join(self.words[np.minimum(ids, len(self.words) - 1)]).capitalize() + "."

    def word(self, rng: np.random.Generator, topic: int | None = None) -> str:
        """One word: topical when ``topic`` is given, else by frequency."""
        if topic is not None:
            return str(self.words[rng.choice(self.topic_words[topic])])
        pick = int(np.searchsorted(self._cdf, rng.random()))
        return str(self.words[min(len(self.words) - 1, pick)])

    def vectors(self, rng: np.random.Generator, topics: Sequence[int]) -> npt.NDArray[np.float32]:
        """Unit vectors near the topics' centres."""
        noise = _unit(rng.standard_normal((len(topics), self.dimensions))) * _ROW_NOISE
        return _unit(self.centres[np.asarray(topics, dtype=np.int64)] + noise)

    def queries(self, n: int, *, seed: int = 11) -> list[tuple[str, npt.NDArray[np.float32]]]:
        """``n`` queries (text and vector), each about a random topic."""
        rng = np.random.default_rng(seed)
        topics = rng.integers(0, _TOPICS, size=n).tolist()
        texts = [self.sentence(rng, t, 6, 14) for t in topics]
        return list(zip(texts, self.vectors(rng, topics), strict=True))


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(
        np.float32
    )
    return out


#: The user whose turns the latency benchmarks time (present at every size).
FOCUS_USER = "user-000000"

_ENTITY_TYPES = ("person", "company", "project", "place")
_RELATIONS = ("works at", "manages", "is CTO of", "uses", "lives in", "owns")


def user_name(index: int) -> str:
    """The synthetic user id number ``index``."""
    return f"user-{index:06d}"


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


class _Rows:
    """Learnings and their topics, made with one random state (so a plan is reproducible)."""

    def __init__(self, plan: SyntheticPlan) -> None:
        self.plan = plan
        self.topics = Topics(dimensions=plan.dimensions, seed=plan.seed)
        self.rng = np.random.default_rng(plan.seed)
        self.rows: list[Learning] = []
        self.row_topics: list[int] = []

    def add(self, row: Learning, topic: int) -> None:
        self.rows.append(row)
        self.row_topics.append(topic)

    def name(self, topic: int) -> str:
        t = self.topics
        return t.word(self.rng, topic).capitalize() + " " + t.word(self.rng).capitalize()

    def user(self, user_id: str, count: int) -> None:
        """``count`` private learnings of one user, of every private built-in type."""
        rng, t, embedder = self.rng, self.topics, self.plan.embedder
        interests = rng.integers(0, _TOPICS, size=3).tolist()
        start = len(self.rows)
        now = utcnow()
        sessions = [f"{user_id}-s{i}" for i in range(2)]
        main = interests[0]
        name = self.name(main)
        profile = {
            "name": name,
            "preferred_name": name.split()[0],
            "role": f"lead of the {t.word(rng, main)} team",
            "company": t.word(rng, main).capitalize(),
            "team": t.word(rng, main),
            "projects": [t.word(rng, interests[1])],
            "preferences": [t.word(rng, interests[2]), t.word(rng)],
            "communication_style": "keep answers short",
        }
        self.add(
            Learning(
                id=stable_id("user_profile", PRIVATE_NAMESPACE, user_id),
                learning_type="user_profile",
                user_id=user_id,
                content=profile,
                search_text="\n".join(f"- {k}: {v}" for k, v in profile.items()),
                embedder=embedder,
            ),
            main,
        )
        for i, session in enumerate(sessions):
            topic = interests[i]
            summary = "The user said: " + t.sentence(rng, topic)
            self.add(
                Learning(
                    id=stable_id("session_context", PRIVATE_NAMESPACE, user_id, session),
                    learning_type="session_context",
                    user_id=user_id,
                    session_id=session,
                    content={"summary": summary, "goal": None, "plan": [], "progress": []},
                    search_text=f"Summary: {summary}",
                    embedder=embedder,
                ),
                topic,
            )
        entities = []
        for topic in interests:
            ename = self.name(topic)
            content = {
                "name": ename,
                "entity_type": _ENTITY_TYPES[int(rng.integers(len(_ENTITY_TYPES)))],
                "aliases": [],
                "description": t.sentence(rng, topic, 4, 8),
            }
            eid = stable_id(ENTITY, PRIVATE_NAMESPACE, user_id, ename.lower())
            entities.append((eid, ename, topic))
            self.add(
                Learning(
                    id=eid,
                    learning_type=ENTITY,
                    user_id=user_id,
                    entity_id=eid,
                    content=content,
                    search_text=f"{ename} ({content['entity_type']}) — {content['description']}",
                    embedder=embedder,
                ),
                topic,
            )
        for eid, ename, topic in entities:
            for _ in range(2):
                fact = t.sentence(rng, topic, 5, 10).rstrip(".").lower()
                self.add(
                    Learning(
                        learning_type=FACT,
                        user_id=user_id,
                        entity_id=eid,
                        content={"entity": ename, "fact": fact},
                        search_text=f"{ename}: {fact}",
                        embedder=embedder,
                    ),
                    topic,
                )
        for (sid, sname, topic), (oid, oname, _) in itertools.pairwise(entities):
            relation = _RELATIONS[int(rng.integers(len(_RELATIONS)))]
            self.add(
                Learning(
                    learning_type=RELATION,
                    user_id=user_id,
                    entity_id=sid,
                    content={
                        "subject": sname,
                        "relation": relation,
                        "object": oname,
                        "object_id": oid,
                    },
                    search_text=f"{sname} {relation} {oname}",
                    embedder=embedder,
                ),
                topic,
            )
        index = 0
        while len(self.rows) - start < count:
            speaker = user_id if index % 2 == 0 else "assistant"
            topic = interests[int(rng.integers(3))]
            text = t.sentence(rng, topic)
            at = now - timedelta(minutes=count - index)
            self.add(
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
                ),
                topic,
            )
            index += 1
        del self.rows[start + count :], self.row_topics[start + count :]

    def shared(self, author: str) -> None:
        """One learning of shared knowledge in ``global``."""
        rng, t = self.rng, self.topics
        topic = int(rng.integers(_TOPICS))
        title = " ".join(t.word(rng, topic if i % 2 else None) for i in range(4)).capitalize()
        learning = t.sentence(rng, topic)
        tags = sorted({t.word(rng, topic), t.word(rng, topic)})
        self.add(
            Learning(
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
                embedder=self.plan.embedder,
            ),
            topic,
        )

    def take(self, n: int) -> list[Learning]:
        """The first ``n`` rows made, with their vectors."""
        rows, topics = self.rows[:n], self.row_topics[:n]
        del self.rows[:n], self.row_topics[:n]
        vectors = self.topics.vectors(self.rng, topics)
        return [
            with_embedding(row, tuple(vector.tolist()))
            for row, vector in zip(rows, vectors, strict=True)
        ]


def synthetic_batches(plan: SyntheticPlan, *, batch_size: int = 1000) -> Iterator[list[Learning]]:
    """The plan's learnings, in batches, with their vectors (never all in memory)."""
    made = _Rows(plan)
    private_total = plan.rows - plan.shared_rows
    private_done = shared_done = user = 0
    while private_done < private_total or shared_done < plan.shared_rows:
        if private_done < private_total:
            count = min(plan.rows_per_user, private_total - private_done)
            made.user(user_name(user), count)
            private_done += count
            user += 1
        # Shared rows are interleaved with the users' rows, in proportion.
        due = (
            plan.shared_rows * private_done // private_total if private_total else plan.shared_rows
        )
        for _ in range(due - shared_done):
            made.shared(user_name(int(made.rng.integers(user or 1))))
        shared_done = max(shared_done, due)
        while len(made.rows) >= batch_size:
            yield made.take(batch_size)
    if made.rows:
        yield made.take(len(made.rows))


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
