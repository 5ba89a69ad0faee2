"""How episodic memory indexes and ranks turns (pure functions apart from one search call).

Settings of :class:`EpisodeRanking` were chosen on three LoCoMo conversations and checked on the
two others and on a user/assistant chat set written for the purpose
(``learning_machines/bench/_assistant_chats.py``); figures in ``docs/benchmarks.md``:

* **Indexed text** (default: previous turn included). A turn is indexed as ``"speaker: text"``
  followed by the previous turn of the same session (``context_turns``): the answer "Yes, a
  sunrise!" is found by "what did Melanie paint" only through the question before it.
  The session date in the text (``date_in_text``) did not help and is off.
* **Context cap** (default: 1.0). The borrowed text also lets a generic reply ("Noted, I'll keep
  that in mind") rank with the statement it follows: on the assistant-style chat set recall@1
  fell to 0.40 (plain hybrid 0.76). A turn whose own words match fewer query words than the
  *statement* it borrowed ends at least ``context_cap`` below it (0.74 on that set); an answer
  to a question keeps the question's score.
* **Fusion** (default: 0.6 keyword). Keyword and vector candidates are fused by weighted
  z-scores; with a stemmed BM25, the keyword side deserves most of the weight.
* **Neighbours** (default: 0.2). A turn next to a strong match in the same session gets part of
  its score (``neighbour_weight``): answers sit next to the turn that names the topic.
* **Speaker** (default: 1.5). When the query names a participant, their own turns get
  ``speaker_boost`` (z-score units). Larger boosts turn the boost into a filter that misses
  turns where the person is spoken to.
* **Time** (default: 0.8, time questions only). For "when..." questions, turns that mention a
  time (yesterday, last week, a month, a year) get ``time_boost``; other questions are untouched.
* **Dates** (default: 2.0). When the query names a calendar date or period ("on 1 May,
  2022", "in January", "the week before 16 June"), turns said within it, or up to
  ``date_lag`` after it (things are told after they happen), get ``date_boost``; a period
  with a year is also searched on its own, so that its turns compete even when better matches
  of other days fill the candidates.
* **Query handling** (off). Dropping question words and adding relative-time words to "when"
  questions each moved recall@10 by less than 0.01; they stay available as settings.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from ..curation import cosine
from ..db import LearningFilter, ScoredLearning, SearchLearnings
from ..exceptions import ConfigurationError
from ._config_values import flag_value, number_value, whole_number
from ._episode_model import Episode
from ._query_dates import moved_day, query_periods

if TYPE_CHECKING:
    from ._base import BaseStore

__all__ = [
    "EpisodeRanking",
    "asks_about_time",
    "borrowers",
    "index_texts",
    "keyword_query",
    "rank",
    "search_episodes",
]

_WORD = re.compile(r"\w+", re.UNICODE)
# Words that make a question a question; as BM25 terms they match chit-chat, not answers.
_QUESTION_TEXT = """
    what when where which who whom whose why how did does do was were is are has have had kind
    type likely would could might ever since many much long often
"""
_QUESTION_WORDS = frozenset(_QUESTION_TEXT.split())
_TIME_QUESTION = re.compile(
    r"\b(when|what (date|day|time|year|month|week)|which (date|day|year|month|week)|"
    r"how long (ago|before|after)|what time)\b",
    re.IGNORECASE,
)
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_TIME_MENTION = re.compile(
    rf"\b(yesterday|today|tonight|tomorrow|ago|recently|(last|next|this|past|coming) "
    rf"(week|weekend|month|year|night|summer|winter|spring|fall|autumn|{_DAYS})|"
    rf"{_MONTHS}|{_DAYS}|(19|20)\d\d|\d+(st|nd|rd|th))\b",
    re.IGNORECASE,
)
# Answers to "when" questions usually date the event relative to the day it was said.
_WHEN_TERMS = "yesterday today last week weekend month year ago recently tomorrow next"


@dataclass(frozen=True, kw_only=True)
class EpisodeRanking:
    """How episodes are indexed and ranked (defaults measured on LoCoMo, ``docs/benchmarks.md``)."""

    keyword_weight: float = 0.6
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
    neighbour_weight: float = 0.2
    """Share of the best neighbouring turn's score a turn receives (0 disables)."""
    neighbour_window: timedelta = timedelta(minutes=1)
    """Turns of one session at most this far apart in time are neighbours."""
    speaker_boost: float = 1.5
    """Added (in z-score units) to turns said by a participant the query names."""
    time_boost: float = 0.8
    """Added (z-score units) to turns that mention a time (yesterday, last week, a month, a
    year...), for questions about time only ("when...", "what year...")."""
    date_boost: float = 2.0
    """Added (z-score units) to turns said within a calendar date or period the query names
    ("on 1 May, 2022", "in March", "the week before 16 June"); 0 disables."""
    date_lag: timedelta = timedelta(days=3)
    """How long after the named period a turn still counts as said within it."""
    context_cap: float | None = 1.0
    """A turn whose indexed text borrowed a *statement* (``context_turns``) and whose own words
    match fewer query words than it ends at least this far (z-score units) below that
    statement; ``None`` disables. Answers to a question keep the question's score."""

    def __post_init__(self) -> None:
        """Check the values, so that a wrong one fails here and not in the middle of a search."""
        numbers = {
            "keyword_weight": (0.0, 1.0),
            "neighbour_weight": (0.0, 10.0),
            "speaker_boost": (0.0, 10.0),
            "time_boost": (0.0, 10.0),
            "date_boost": (0.0, 10.0),
        }
        for name, (low, high) in numbers.items():
            value = number_value(getattr(self, name), field=_field(name), low=low, high=high)
            object.__setattr__(self, name, value)
        if self.context_cap is not None:
            cap = number_value(self.context_cap, field=_field("context_cap"), low=0.0, high=10.0)
            object.__setattr__(self, "context_cap", cap)
        for name, minimum in (("candidates", 1), ("context_turns", 0)):
            value = whole_number(getattr(self, name), field=_field(name), minimum=minimum)
            object.__setattr__(self, name, value)
        for name in ("date_in_text", "strip_query", "when_terms"):
            object.__setattr__(self, name, flag_value(getattr(self, name), field=_field(name)))
        for name in ("neighbour_window", "date_lag"):
            span = getattr(self, name)
            if not isinstance(span, timedelta) or span < timedelta(0):
                raise ConfigurationError(
                    f"{_field(name)} must be a timedelta of zero or more (timedelta(days=3)), "
                    f"not {span!r}"
                )

    @classmethod
    def plain(cls) -> EpisodeRanking:
        """Plain hybrid search: ``"speaker: text"`` documents, z-score fusion, nothing else."""
        return cls(
            keyword_weight=0.3,
            candidates=50,
            context_turns=0,
            neighbour_weight=0.0,
            speaker_boost=0.0,
            time_boost=0.0,
            date_boost=0.0,
            context_cap=None,
        )


def _field(name: str) -> str:
    return f"EpisodeRanking.{name}"


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
    """Re-rank fused hybrid candidates (speaker, neighbours, time, context cap), best first.

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
    if ranking.time_boost and asks_about_time(query):
        for i, s in by_id.items():
            if _TIME_MENTION.search(str(s.learning.content.get("text", ""))):
                fused[i] += ranking.time_boost
    if ranking.date_boost:
        fused = _boost_dated(query, fused, by_id, ranking)
    if ranking.context_cap is not None:
        fused = _cap_by_context(query, fused, by_id, ranking.context_cap)
    order = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [replace(by_id[i], score=score) for i, score in order]


def _boost_dated(
    query: str, fused: dict[str, float], by_id: dict[str, ScoredLearning], ranking: EpisodeRanking
) -> dict[str, float]:
    """Turns said within a period the query names (:func:`query_periods`) get ``date_boost``.

    The turn's day is read in UTC and the query's in the user's time zone, so the period is
    widened by a day on both sides, and by ``date_lag`` after it.
    """
    periods = query_periods(query)
    if not periods:
        return fused
    before, after = _margins(ranking)
    out = dict(fused)
    for i, s in by_id.items():
        said = _said_on(s)
        if any(p.holds(said, before_days=before, after_days=after) for p in periods):
            out[i] += ranking.date_boost
    return out


def _margins(ranking: EpisodeRanking) -> tuple[int, int]:
    """Days a named period is widened by, before and after it.

    One on each side for time zones, and ``date_lag`` more after it.
    """
    return 1, ranking.date_lag.days + 1


def asks_about_time(query: str) -> bool:
    """Tell whether ``query`` asks when something happened (or how long ago, which date...)."""
    return bool(_TIME_QUESTION.search(query))


_STOP_TEXT = """
    a an the and or but of to in on at for with from by about as is are was were be been being
    do does did done have has had i me my we our you your he him his she her they them their it
    its this that these those what when where which who whom whose why how not no so if then
    than too very can could would should will just also there here up out any some
"""
_STOP = frozenset(_STOP_TEXT.split())


def _terms(text: str) -> set[str]:
    """Content words of ``text``, lower-cased and crudely stemmed (for own-text evidence)."""
    out: set[str] = set()
    for w in _WORD.findall(text.casefold()):
        if len(w) < 3 or w in _STOP:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                w = w[: -len(suffix)]
                break
        out.add(w)
    return out


def borrowers(query: str, found: Sequence[ScoredLearning]) -> dict[str, int]:
    """Turns of ``found`` that match ``query`` through the statement before them.

    A turn's indexed text holds the previous turn (``context_turns``). When that turn states
    something (it asks no question) and its own words match more query words, the later turn's
    score was borrowed ("Noted, I'll keep that in mind" after the fact). Returns their ids, each
    with how many query words its own text matches. An answer to a question is no borrower.
    """
    q = _terms(query)
    if not q:
        return {}
    by_id = {s.learning.id: s for s in found}
    own = {i: len(q & _terms(str(s.learning.content.get("text", "")))) for i, s in by_id.items()}
    out: dict[str, int] = {}
    for i, s in by_id.items():
        after = s.learning.content.get("after")
        if not isinstance(after, str) or after not in by_id or own[after] <= own[i]:
            continue
        if "?" not in str(by_id[after].learning.content.get("text", "")):
            out[i] = own[i]
    return out


def _cap_by_context(
    query: str, fused: dict[str, float], by_id: dict[str, ScoredLearning], margin: float
) -> dict[str, float]:
    """A turn that borrowed its match (:func:`borrowers`) ends ``margin`` below its source."""
    cap = borrowers(query, list(by_id.values()))
    out = dict(fused)
    # in time order, so that a chain of borrowed turns stays in the order it was said
    for i in sorted(cap, key=lambda i: (_when(by_id[i]), i)):
        after = str(by_id[i].learning.content["after"])
        out[i] = min(out[i], out[after] - margin)
    return out


def _when(s: ScoredLearning) -> float:
    return (s.learning.valid_from or s.learning.created_at).timestamp()


def _said_on(s: ScoredLearning) -> date:
    """The day (UTC) a turn was said."""
    return datetime.fromtimestamp(_when(s), UTC).date()


def _propagate(
    fused: dict[str, float], by_id: dict[str, ScoredLearning], ranking: EpisodeRanking
) -> dict[str, float]:
    floor = min(fused.values())
    base = {i: v - floor for i, v in fused.items()}  # non-negative, so a neighbour only helps
    sessions: dict[str | None, list[tuple[float, str]]] = {}
    for i, s in by_id.items():
        sessions.setdefault(s.learning.session_id, []).append((_when(s), i))
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
    min_similarity: float | None = None,
) -> list[ScoredLearning]:
    """Hybrid candidates from the store's db, re-ranked by :func:`rank`.

    Every result carries ``vector_score``, the cosine of the query with the turn's indexed text
    (computed here for turns found by keyword only). With ``min_similarity`` (the relevance
    cutoff of automatic recall), turns below it are dropped, and so are turns that match only
    through the statement before them (:func:`borrowers` whose own words match no query word):
    their similarity is the borrowed text's.
    """
    if not query.strip() or limit <= 0:
        return []
    from ..embedders import aembed

    if vector is None:
        vector = (await aembed(store.embedder, [query]))[0]
    vec = tuple(float(x) for x in vector)
    found = await _hybrid(store, query, filter, vec, ranking, max(limit, ranking.candidates))
    if ranking.date_boost:
        found = [*found, *await _within_named_periods(store, query, filter, found, vec, ranking)]
    ranked = [_with_similarity(s, vec) for s in rank(query, found, ranking, limit)]
    if min_similarity is None:
        return ranked
    hollow = {i for i, own in borrowers(query, found).items() if own == 0}
    return [
        s
        for s in ranked
        if (s.vector_score or 0.0) >= min_similarity and s.learning.id not in hollow
    ]


async def _hybrid(
    store: BaseStore,
    query: str,
    filter: LearningFilter,
    vector: tuple[float, ...],
    ranking: EpisodeRanking,
    n: int,
) -> list[ScoredLearning]:
    """The db's fused hybrid search: ``n`` candidates per side, the best ``n`` returned."""
    return await store.db.arun(
        SearchLearnings(
            filter=filter,
            query=keyword_query(query, ranking),
            vector=vector,
            embedder=store.embedder.name,
            limit=n,
            candidates=n,
            keyword_weight=ranking.keyword_weight,
        )
    )


#: At most this many periods a query names are searched apart.
_PERIOD_SEARCHES = 3
#: Candidates taken from within each named period.
_PERIOD_CANDIDATES = 50


async def _within_named_periods(
    store: BaseStore,
    query: str,
    filter: LearningFilter,
    found: Sequence[ScoredLearning],
    vector: tuple[float, ...],
    ranking: EpisodeRanking,
) -> list[ScoredLearning]:
    """Turns said within a dated period the query names that the main search left out.

    The main candidates are the best of the whole memory; a turn of the named day can be missed
    when the words of the question are common elsewhere. Each period with a year is searched
    apart; a period without one ("in May") in the years the main candidates were said in. Its
    turns are placed just below the main candidates, in their own order, before the date boost
    lifts them.
    """
    named = query_periods(query)
    if not named or not found:
        return []
    # "in May": the Mays of the years the best candidates were said in
    years = [y for y, _ in Counter(_said_on(s).year for s in found).most_common(_PERIOD_SEARCHES)]
    periods = [q for p in named for q in ([p.in_year(y) for y in years] if p.any_year else [p])]
    seen = {s.learning.id for s in found}
    floor = min(s.score for s in found)
    extra: list[ScoredLearning] = []
    for period in periods[:_PERIOD_SEARCHES]:
        # the days :func:`_boost_dated` lifts, as [first midnight, midnight after the last)
        before, after = _margins(ranking)
        start = datetime.combine(moved_day(period.start, -before), time(), UTC)
        end = datetime.combine(moved_day(period.end, after + 1), time(), UTC)
        dated = replace(filter, happened_between=(start, end))
        within = await _hybrid(store, query, dated, vector, ranking, _PERIOD_CANDIDATES)
        for s in within:
            if s.learning.id not in seen:
                seen.add(s.learning.id)
                extra.append(replace(s, score=floor - 0.01 * (len(extra) + 1)))
    return extra


def _with_similarity(s: ScoredLearning, vector: Sequence[float]) -> ScoredLearning:
    emb = s.learning.embedding
    if s.vector_score is not None or emb is None or len(emb) != len(vector):
        return s
    return replace(s, vector_score=cosine(emb, vector))
