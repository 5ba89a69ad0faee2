"""Retrieval quality on long conversations: episodic memory vs plain BM25 and dense search.

Each LoCoMo conversation is ingested through :meth:`EpisodicMemoryStore.aadd_episodes` as the
memory of one user (the sample id); every question of categories 1-4 is then asked as a recall
query for that user, and the evidence turns found are scored (recall@1/5/10, NDCG@10,
session-level recall@10, overall and per category). Baselines run in the same process on rows
indexed as plain ``"speaker: text"``: BM25 only (``method="keyword"``), dense only
(``method="vector"``) and the plain z-score hybrid of the db layer.

The ranking was tuned on the first conversations of ``locomo-dev.json``; the last
``held_out`` conversations (default 2) were not looked at while tuning, and every metric is
reported for both splits side by side. The relevance cutoff of automatic recall
(``EpisodicMemoryConfig.min_similarity``) is measured too: evidence lost from the five episodes
recall injects, against episodes injected for questions about someone else's conversation.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..db import PRIVATE_NAMESPACE, Db, LearningFilter, SearchLearnings, SqliteDb
from ..stores import EpisodicMemoryConfig, EpisodicMemoryStore, StoreResources, WriteGate
from ..stores._episode_ranking import EpisodeRanking
from ._common import CachedEmbedder, make_embedder, percentile, run_info, write_json
from ._locomo import CATEGORY_NAMES, Conversation, Question, load_locomo
from ._metrics import QuestionScore, aggregate, score_question
from ._report import bar_chart, metrics_table

__all__ = ["SYSTEMS", "bind_episodic", "open_backend", "recall_questions", "run_retrieval"]

#: Systems compared, in report order.
SYSTEMS = ("learning-machines", "plain hybrid", "BM25", "dense")
QUICK_QUESTIONS = 40
#: Relevance cutoffs measured (cosine of the question with an episode's indexed text); ``None``
#: is recall without a cutoff. Any cutoff also drops turns that only borrowed their match.
CUTOFFS: tuple[float | None, ...] = (None, 0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35)
#: Episodes automatic recall injects (``EpisodicMemoryConfig.limit``).
RECALL_LIMIT = 5
PG_URL_ENV = "LEARNING_MACHINES_BENCH_PG_URL"


def recall_questions(conv: Conversation, quick: bool = False) -> list[Question]:
    """Questions of categories 1-4 that have evidence (the first 40 with ``quick``)."""
    qs = [q for q in conv.questions if q.category in (1, 2, 3, 4) and q.evidence]
    return qs[:QUICK_QUESTIONS] if quick else qs


def open_backend(backend: str, folder: Path, name: str) -> Db:
    """A fresh SQLite file in ``folder``, or PostgreSQL at ``$LEARNING_MACHINES_BENCH_PG_URL``."""
    if backend == "sqlite":
        return SqliteDb(str(folder / f"{name}.db"))
    if backend == "postgres":
        url = os.environ.get(PG_URL_ENV)
        if not url:
            raise ValueError(f"--backend postgres needs ${PG_URL_ENV} (a postgresql:// URL)")
        from ..db import PostgresDb

        return PostgresDb(url)
    raise ValueError(f"unknown backend {backend!r}: use 'sqlite' or 'postgres'")


def bind_episodic(db: Db, embedder: CachedEmbedder, ranking: EpisodeRanking) -> EpisodicMemoryStore:
    """An episodic memory store on ``db``, bound the way the machine binds it."""
    store = EpisodicMemoryConfig(ranking=ranking).create_store()
    gate = WriteGate(
        store_name="episodic_memory",
        learning_type=store.learning_type,
        mode=store.mode,
        db=db,
    )
    store.bind(StoreResources(name="episodic_memory", db=db, embedder=embedder, gate=gate))
    return store


def _filter(user_id: str) -> LearningFilter:
    return LearningFilter(
        namespaces=(PRIVATE_NAMESPACE,), reader_user_id=user_id, learning_types=("episode",)
    )


class _Runs:
    """Scores and search latencies per system, and what recall's cutoff would keep."""

    def __init__(self) -> None:
        self.scores: dict[str, list[QuestionScore]] = {s: [] for s in SYSTEMS}
        self.latency: dict[str, list[float]] = {s: [] for s in SYSTEMS}
        self.conversation: list[str] = []  # of each question, in score order
        # per question: evidence count, and (similarity, is evidence) of the top RECALL_LIMIT
        # episodes without a cutoff and with the borrowed-only turns dropped
        self.own: list[tuple[int, list[tuple[float, bool]], list[tuple[float, bool]]]] = []
        # similarities of what recall injects for another user's question (same two lists)
        self.foreign: list[tuple[list[float], list[float]]] = []

    def add(self, system: str, q: Question, refs: Sequence[str | None], seconds: float) -> None:
        ranked = [r for r in refs if r]
        self.scores[system].append(score_question(q.category, ranked, q.evidence))
        self.latency[system].append(seconds)


async def _conversation(
    conv: Conversation,
    ours: EpisodicMemoryStore,
    plain: EpisodicMemoryStore,
    embedder: CachedEmbedder,
    runs: _Runs,
    quick: bool,
    *,
    user: str,
) -> None:
    await ours.aadd_episodes(conv.episodes, user_id=user)
    # Plain rows are indexed differently, so they belong to a user of their own: episode ids
    # derive from the user and the turn, and in a database shared by both stores (PostgreSQL)
    # the second ingest would otherwise rewrite the first one's rows.
    plain_user = user if plain is ours else f"{user}-plain"
    if plain is not ours:
        await plain.aadd_episodes(conv.episodes, user_id=plain_user)
    questions = recall_questions(conv, quick)
    vectors = embedder.embed([q.question for q in questions])
    for q, vec in zip(questions, vectors, strict=True):
        vector = tuple(float(x) for x in vec)
        start = time.perf_counter()
        hits = await ours.asearch(q.question, user_id=user, limit=10, vector=vector)
        runs.add("learning-machines", q, [h.episode.ref for h in hits], time.perf_counter() - start)
        runs.conversation.append(conv.sample_id)
        cut = await ours.asearch(
            q.question, user_id=user, limit=RECALL_LIMIT, vector=vector, min_similarity=-1.0
        )
        runs.own.append(
            (
                len(q.evidence),
                [(h.similarity or 0.0, h.episode.ref in q.evidence) for h in hits[:RECALL_LIMIT]],
                [(h.similarity or 0.0, h.episode.ref in q.evidence) for h in cut],
            )
        )
        for system, method in (
            ("plain hybrid", "hybrid"),
            ("BM25", "keyword"),
            ("dense", "vector"),
        ):
            op = SearchLearnings(
                filter=_filter(plain_user),
                query=q.question,
                vector=None if method == "keyword" else vector,
                embedder=embedder.name,
                limit=10,
                method=method,  # type: ignore[arg-type]
            )
            start = time.perf_counter()
            found = await plain.db.arun(op)
            refs = [s.learning.content.get("ref") for s in found]
            runs.add(system, q, refs, time.perf_counter() - start)


async def _foreign(
    conv: Conversation,
    memory_of: str,
    ours: EpisodicMemoryStore,
    embedder: CachedEmbedder,
    runs: _Runs,
    quick: bool,
) -> None:
    """Ask ``conv``'s questions of another user's memory: whatever recall injects is unrelated."""
    questions = recall_questions(conv, quick)
    vectors = embedder.embed([q.question for q in questions])
    for q, vec in zip(questions, vectors, strict=True):
        vector = tuple(float(x) for x in vec)
        hits = await ours.asearch(q.question, user_id=memory_of, limit=RECALL_LIMIT, vector=vector)
        cut = await ours.asearch(
            q.question, user_id=memory_of, limit=RECALL_LIMIT, vector=vector, min_similarity=-1.0
        )
        runs.foreign.append(
            ([h.similarity or 0.0 for h in hits], [h.similarity or 0.0 for h in cut])
        )


def _changes_index(ranking: EpisodeRanking) -> bool:
    return ranking.context_turns > 0 or ranking.date_in_text


async def _run(
    convs: Sequence[Conversation],
    folder: Path,
    *,
    quick: bool,
    backend: str,
    embedder: CachedEmbedder,
    ranking: EpisodeRanking,
) -> _Runs:
    runs = _Runs()
    # Users of this run: a PostgreSQL database outlives the run (ablations run several
    # rankings against one), and rows of an earlier run must not answer for this one.
    run = uuid.uuid4().hex[:8]
    users = {c.sample_id: f"{c.sample_id}-{run}" for c in convs}
    ours_db = open_backend(backend, folder, "ours")
    plain_db = open_backend(backend, folder, "plain") if _changes_index(ranking) else ours_db
    try:
        ours = bind_episodic(ours_db, embedder, ranking)
        plain = (
            bind_episodic(plain_db, embedder, EpisodeRanking.plain())
            if (plain_db is not ours_db)
            else ours
        )
        for conv in convs:
            await _conversation(
                conv, ours, plain, embedder, runs, quick, user=users[conv.sample_id]
            )
        for i, conv in enumerate(convs):
            if len(convs) > 1:  # the next conversation's memory holds nothing about this one
                other = users[convs[(i + 1) % len(convs)].sample_id]
                await _foreign(conv, other, ours, embedder, runs, quick)
    finally:
        for db in {id(ours_db): ours_db, id(plain_db): plain_db}.values():
            db.close()
    return runs


def run_retrieval(
    data_path: str | Path,
    *,
    out_dir: str | Path = "bench-results",
    quick: bool = False,
    backend: str = "sqlite",
    embedder: str = "minilm",
    ranking: EpisodeRanking | None = None,
    held_out: int = 2,
    plot: bool = True,
) -> dict[str, Any]:
    """Run the retrieval benchmark on a LoCoMo-format file; write and return the results.

    Writes ``retrieval.json``, ``retrieval.md`` and ``retrieval.png`` into ``out_dir``. The last
    ``held_out`` conversations form the held-out split (at least one conversation stays in the
    tuning split). ``quick`` uses two conversations (one per split) and their first 40
    questions (CI smoke test).
    """
    ranking = ranking or EpisodeRanking()
    data = load_locomo(data_path, limit=2 if quick else None)
    if quick:
        held_out = 1
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    emb = make_embedder(embedder)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lm-bench-") as tmp:
        runs = asyncio.run(
            _run(
                data.conversations,
                Path(tmp),
                quick=quick,
                backend=backend,
                embedder=emb,
                ranking=ranking,
            )
        )
    emb.save()
    results: dict[str, Any] = {
        "benchmark": "retrieval",
        "run": run_info(
            data=str(data_path),
            quick=quick,
            backend=backend,
            embedder=emb.name,
            seconds=round(time.perf_counter() - started, 1),
        ),
        "data": {
            "conversations": len(data.conversations),
            "turns": sum(len(c.episodes) for c in data.conversations),
            "questions": len(runs.scores["BM25"]),
            "evidence_ids_fixed": data.fixed_evidence,
            "evidence_ids_skipped": data.skipped_evidence,
            "skipped_examples": list(data.skipped_examples),
        },
        "ranking": {
            k: str(v) if not isinstance(v, int | float | bool) else v
            for k, v in asdict(ranking).items()
        },
        "categories": {str(k): v for k, v in CATEGORY_NAMES.items() if k < 5},
        "systems": {s: aggregate(runs.scores[s]) for s in SYSTEMS},
        "splits": _splits(data.conversations, runs, held_out),
        "recall_cutoff": _cutoffs(runs),
        "latency_ms": {
            s: {
                "p50": round(percentile(runs.latency[s], 50) * 1000, 2),
                "p95": round(percentile(runs.latency[s], 95) * 1000, 2),
            }
            for s in SYSTEMS
        },
    }
    write_json(out / "retrieval.json", results)
    md = metrics_table(results, "Retrieval (LoCoMo)") + split_table(results) + cutoff_table(results)
    (out / "retrieval.md").write_text(md, "utf-8")
    if plot:
        bar_chart(results, out / "retrieval.png")
    return results


def _splits(convs: Sequence[Conversation], runs: _Runs, held_out: int) -> dict[str, Any]:
    """Metrics of the tuning and held-out conversations, per system."""
    held = max(0, min(held_out, len(convs) - 1))
    if held == 0:  # nothing held out: the overall table is the whole story
        return {}
    names = [c.sample_id for c in convs]
    parts = {"tuning": names[: len(names) - held], "held-out": names[len(names) - held :]}
    out: dict[str, Any] = {}
    for split, members in parts.items():
        if not members:
            continue
        chosen = [i for i, c in enumerate(runs.conversation) if c in members]
        out[split] = {
            "conversations": members,
            "questions": len(chosen),
            "systems": {s: aggregate([runs.scores[s][i] for i in chosen]) for s in SYSTEMS},
        }
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _cutoffs(runs: _Runs) -> list[dict[str, float | None]]:
    """Per cutoff: evidence kept in the top five, episodes injected for foreign questions."""
    rows: list[dict[str, float | None]] = []
    for t in CUTOFFS:
        own = [
            (n, [(s, hit) for s, hit in (top if t is None else cut) if t is None or s >= t])
            for n, top, cut in runs.own
        ]
        foreign = [
            [s for s in (top if t is None else cut) if t is None or s >= t]
            for top, cut in runs.foreign
        ]
        rows.append(
            {
                "cutoff": t,
                "R@5": _mean([sum(1 for _, hit in kept if hit) / n for n, kept in own if n]),
                "own_injected": _mean([len(kept) for _, kept in own]),
                "foreign_injected": _mean([len(kept) for kept in foreign]),
                "foreign_none": _mean([1.0 if not kept else 0.0 for kept in foreign]),
            }
        )
    return rows


_SPLIT_COLUMNS = ("R@1", "R@5", "R@10", "NDCG@10")


def split_table(results: dict[str, Any]) -> str:
    """The tuning and held-out splits side by side, as markdown."""
    splits = results.get("splits") or {}
    if not splits:
        return ""
    names = list(splits)
    lines = ["", "### Tuning split and held-out split", ""]
    for split in names:
        part = splits[split]
        lines.append(
            f"- {split}: {', '.join(part['conversations'])} ({part['questions']} questions)"
        )
    header = " | ".join(f"{split} {c}" for split in names for c in _SPLIT_COLUMNS)
    lines += ["", f"| system | {header} |", "|---|" + "---|" * (len(names) * 4)]
    for system in SYSTEMS:
        cells = " | ".join(
            f"{splits[split]['systems'][system]['overall'][c]:.3f}"
            for split in names
            for c in _SPLIT_COLUMNS
        )
        lines.append(f"| {system} | {cells} |")
    return "\n".join(lines) + "\n"


def cutoff_table(results: dict[str, Any]) -> str:
    """What the relevance cutoff of automatic recall keeps and drops, as markdown."""
    rows = results.get("recall_cutoff") or []
    if not rows:
        return ""
    lines = [
        "",
        f"### Relevance cutoff of automatic recall (top {RECALL_LIMIT})",
        "",
        "| min_similarity | R@5 kept | episodes injected (own question) | "
        "episodes injected (another user's question) | another's questions with none |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {'off' if r['cutoff'] is None else format(r['cutoff'], '.2f')} | "
            f"{r['R@5']:.3f} | {r['own_injected']:.2f} | "
            f"{r['foreign_injected']:.2f} | {r['foreign_none']:.1%} |"
        )
    return "\n".join(lines) + "\n"
