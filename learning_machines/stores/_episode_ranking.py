"""How episodic memory indexes and ranks turns (pure functions apart from one search call).

Every setting of :class:`EpisodeRanking` was measured on LoCoMo conversations, one at a time
(table of ablations in ``docs/benchmarks.md``); the defaults keep what helped:

* **Indexed text** (default: previous turn included). A turn is indexed as ``"speaker: text"``
  followed by the previous turn of the same session (``context_turns``): the answer "Yes, a
  sunrise!" is found by "what did Melanie paint" only through the question before it.
  The session date in the text (``date_in_text``) did not help and is off.
* **Fusion** (default: 0.7 keyword). Keyword and vector candidates are fused by weighted
  z-scores; with a stemmed BM25, the keyword side deserves most of the weight.
* **Neighbours** (default: 0.4). A turn next to a strong match in the same session gets part of
  its score (``neighbour_weight``): answers sit next to the turn that names the topic.
* **Speaker** (default: 1.0). When the query names a participant, their own turns get
  ``speaker_boost`` (z-score units): recall@1 0.285 → 0.401. Larger boosts gained a little more
  on LoCoMo but turn the boost into a filter that misses turns where the person is spoken to.
* **Query handling** (off). Dropping question words and adding relative-time words to "when"
  questions each moved recall@10 by less than 0.01; they stay available as settings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, timedelta
from typing import TYPE_CHECKING

from ..db import LearningFilter, ScoredLearning, SearchLearnings

if TYPE_CHECKING:
    from ._base import BaseStore
    from .episodic_memory import Episode

__all__ = ["EpisodeRanking", "index_texts", "keyword_query", "rank", "search_episodes"]

_WORD = re.compile(r"\w+", re.UNICODE)
# Words that make a question a question; as BM25 terms they match chit-chat, not answers.
_QUESTION_TEXT = """
    what when where which who whom whose why how did does do was were is are has have had kind
    type likely would could might ever since many much long often
"""
_QUESTION_WORDS = frozenset(_QUESTION_TEXT.split())
# Answers to "when" questions usually date the event relative to the day it was said.
_WHEN_TERMS = "yesterday today last week weekend month year ago recently tomorrow next"


@dataclass(frozen=True, kw_only=True)
class EpisodeRanking:
    """How episodes are indexed and ranked (defaults measured on LoCoMo, ``docs/benchmarks.md``)."""

    keyword_weight: float = 0.7
    """Weight of the keyword (BM25) z-score in the fusion; the vector side gets the rest."""
    candidates: int = 100
    """Candidates taken from each side and fused by the db; the best this many are re-ranked."""
    context_turns: int = 1
    """Previous turns of the same session appended to a turn's indexed text (set at ingest)."""
    date_in_text: bool = False
    """Append the day the turn was said (``"8 May 2023"``) to its indexed text (set at ingest)."""
    strip_query: bool = False
    """Drop question words (what, when, did, kind…) from the keyword query."""
    when_terms: bool = False
    """Add relative-time words (yesterday, last week…) to the keyword query of "when" questions."""
    neighbour_weight: float = 0.4
    """Share of the best neighbouring turn's score a turn receives (0 disables)."""
    neighbour_window: timedelta = timedelta(minutes=1)
    """Turns of one session at most this far apart in time are neighbours."""
    speaker_boost: float = 1.0
    """Added (in z-score units) to turns said by a participant the query names."""

    @classmethod
    def plain(cls) -> EpisodeRanking:
        """Plain hybrid search: ``"speaker: text"`` documents, z-score fusion, nothing else."""
        return cls(
            keyword_weight=0.3,
            candidates=50,
            context_turns=0,
            neighbour_weight=0.0,
            speaker_boost=0.0,
        )


def index_texts(
    episodes: Sequence[Episode], ranking: EpisodeRanking, *, before: Sequence[Episode] = ()
) -> list[str]:
    """The text indexed (and embedded) for each of ``episodes``, in order.

    ``before`` are episodes preceding ``episodes[0]`` (context for the first ones).
    """
    seq = [*before, *episodes]
    out: list[str] = []
    for i in range(len(before), len(seq)):
        e = seq[i]
        text = f"{e.speaker}: {e.full_text}"
        if ranking.date_in_text:
            text += f" ({e.at.astimezone(UTC).strftime('%-d %B %Y')})"
        context = [
            f"{p.speaker}: {p.full_text}"
            for p in seq[max(0, i - ranking.context_turns) : i]
            if p.session_id == e.session_id
        ]
        if context:
            text += " | " + " | ".join(context)
        out.append(text)
    return out


def keyword_query(query: str, ranking: EpisodeRanking) -> str:
    """The query sent to keyword search (the vector side always embeds the original query)."""
    if ranking.when_terms and "when" in {w.casefold() for w in _WORD.findall(query)}:
        query = f"{query} {_WHEN_TERMS}"
    if not ranking.strip_query:
        return query
    words = [w for w in _WORD.findall(query) if w.casefold() not in _QUESTION_WORDS]
    return " ".join(words) or query


def _named(query: str, speakers: set[str]) -> set[str]:
    words = {w.casefold() for w in _WORD.findall(query)}
    return {s for s in speakers if s and s.split()[0].casefold() in words}


def rank(
    query: str, found: Sequence[ScoredLearning], ranking: EpisodeRanking, limit: int
) -> list[ScoredLearning]:
    """Re-rank fused hybrid candidates: speaker boost and neighbour propagation, best first.

    ``found`` carries the db's fused z-scores (``score``); a re-fusion of a truncated candidate
    list would shift every z-score, so the scores are only added to.
    """
    if not found:
        return []
    by_id = {s.learning.id: s for s in found}
    fused = {i: s.score for i, s in by_id.items()}
    if ranking.speaker_boost:
        named = _named(query, {str(s.learning.content.get("speaker", "")) for s in found})
        for i, s in by_id.items():
            if s.learning.content.get("speaker") in named:
                fused[i] += ranking.speaker_boost
    if ranking.neighbour_weight:
        fused = _propagate(fused, by_id, ranking)
    order = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [replace(by_id[i], score=score) for i, score in order]


def _propagate(
    fused: dict[str, float], by_id: dict[str, ScoredLearning], ranking: EpisodeRanking
) -> dict[str, float]:
    floor = min(fused.values())
    base = {i: v - floor for i, v in fused.items()}  # non-negative, so a neighbour only helps
    sessions: dict[str | None, list[tuple[float, str]]] = {}
    for i, s in by_id.items():
        sessions.setdefault(s.learning.session_id, []).append(
            ((s.learning.valid_from or s.learning.created_at).timestamp(), i)
        )
    window = ranking.neighbour_window.total_seconds()
    out = dict(fused)
    for session, members in sessions.items():
        if session is None:
            continue
        members.sort()
        for a, (t, i) in enumerate(members):
            best = 0.0
            for b in (a - 1, a + 1):
                if 0 <= b < len(members) and abs(members[b][0] - t) <= window:
                    best = max(best, base[members[b][1]])
            out[i] = fused[i] + ranking.neighbour_weight * best
    return out


async def search_episodes(
    store: BaseStore,
    query: str,
    filter: LearningFilter,
    *,
    limit: int,
    ranking: EpisodeRanking,
    vector: Sequence[float] | None = None,
) -> list[ScoredLearning]:
    """Hybrid candidates from the store's db, re-ranked by :func:`rank`."""
    if not query.strip() or limit <= 0:
        return []
    from ..embedders import aembed

    if vector is None:
        vector = (await aembed(store.embedder, [query]))[0]
    vec = tuple(float(x) for x in vector)
    n = max(limit, ranking.candidates)
    found = await store.db.arun(
        SearchLearnings(
            filter=filter,
            query=keyword_query(query, ranking),
            vector=vec,
            embedder=store.embedder.name,
            limit=n,
            candidates=n,
            keyword_weight=ranking.keyword_weight,
        )
    )
    return rank(query, found, ranking, limit)
