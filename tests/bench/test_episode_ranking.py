"""Episodic memory's indexing and ranking (learning_machines.stores._episode_ranking)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from learning_machines.db import GetLearnings, Learning, LearningFilter, ScoredLearning, SqliteDb
from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import ConfigurationError
from learning_machines.stores import Episode
from learning_machines.stores._episode_ranking import (
    EpisodeRanking,
    asks_about_time,
    index_texts,
    keyword_query,
    rank,
)

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def ep(text, speaker="Ann", i=0, session="s1"):
    return Episode(
        speaker=speaker, text=text, at=T0 + timedelta(seconds=30 * i), session_id=session
    )


def test_index_texts_plain_context_and_date():
    eps = [ep("what did you paint?", "Bob", 0), ep("a sunrise", "Ann", 1), ep("hi", "Ann", 2, "s2")]
    assert index_texts(eps, EpisodeRanking.plain()) == [
        "Bob: what did you paint?",
        "Ann: a sunrise",
        "Ann: hi",
    ]
    ctx = index_texts(eps, EpisodeRanking(context_turns=1))
    assert ctx[1] == "Ann: a sunrise | Bob: what did you paint?"
    assert ctx[2] == "Ann: hi"  # never across sessions
    # the first of a later batch still gets its context
    assert index_texts(eps[1:2], EpisodeRanking(context_turns=1), before=eps[:1]) == [ctx[1]]
    dated = index_texts(eps[:1], EpisodeRanking(date_in_text=True))
    assert dated == ["Bob: what did you paint? (8 May 2023)"]


def test_keyword_query_strips_question_words_only_when_asked():
    q = "When did Caroline go to the support group?"
    assert keyword_query(q, EpisodeRanking(strip_query=False)) == q
    assert keyword_query(q, EpisodeRanking(strip_query=True)) == "Caroline go to the support group"
    assert keyword_query("what did", EpisodeRanking(strip_query=True)) == "what did"


def scored(i, score, speaker="Ann", session="s1"):
    learning = Learning(
        id=f"id{i}",
        learning_type="episode",
        namespace="user",
        user_id="u",
        session_id=session,
        content={"speaker": speaker, "text": str(i)},
        valid_from=T0 + timedelta(seconds=30 * i),
    )
    return ScoredLearning(learning=learning, score=score)


def test_rank_neighbour_propagation_lifts_the_turn_next_to_a_strong_match():
    found = [scored(0, 2.0), scored(1, -0.5), scored(5, -0.4)]
    plain = [s.learning.id for s in rank("q", found, EpisodeRanking(neighbour_weight=0.0), 3)]
    assert plain == ["id0", "id5", "id1"]
    lifted = [s.learning.id for s in rank("q", found, EpisodeRanking(neighbour_weight=0.5), 3)]
    assert lifted == ["id0", "id1", "id5"]  # id1 is 30 s after id0; id5 is minutes away


def test_rank_speaker_boost():
    found = [scored(0, 0.5, "Ann"), scored(3, 0.4, "Bob")]
    ranking = EpisodeRanking(speaker_boost=0.3, neighbour_weight=0.0)
    assert [s.learning.id for s in rank("What did Bob say?", found, ranking, 2)] == ["id3", "id0"]


async def test_store_search_uses_the_ranking(tmp_path):
    from learning_machines.bench._common import CachedEmbedder
    from learning_machines.bench.retrieval import bind_episodic

    db = SqliteDb(str(tmp_path / "e.db"))
    store = bind_episodic(db, CachedEmbedder(HashEmbedder()), EpisodeRanking(context_turns=1))
    await store.aadd_episodes(
        [
            ep("what did you paint last week?", "Bob", 0),
            ep("a sunrise over the lake", "Ann", 1),
            ep("the weather is nice", "Bob", 2),
        ],
        user_id="u",
    )
    hits = await store.asearch("What did Ann paint?", user_id="u", limit=2)
    assert "a sunrise over the lake" in [h.episode.text for h in hits]
    db.close()


def turn(i, text, speaker="Priya", after=None, score=0.0):
    learning = Learning(
        id=f"id{i}",
        learning_type="episode",
        namespace="user",
        user_id="u",
        session_id="s1",
        content={"speaker": speaker, "text": text, "after": after},
        valid_from=T0 + timedelta(seconds=30 * i),
    )
    return ScoredLearning(learning=learning, score=score)


def test_context_cap_keeps_a_generic_reply_below_the_statement_it_borrowed():
    # the reply's indexed text holds the statement, so the db scored them alike
    found = [
        turn(0, "Billing runs on Postgres 16 since Monday.", score=2.0),
        turn(1, "Noted, I'll keep that in mind.", "assistant", after="id0", score=2.0),
        turn(5, "The analytics replica is on Postgres 13.", score=1.5),
    ]
    query = "Which Postgres version does billing use?"
    off = EpisodeRanking(context_cap=None, neighbour_weight=0.0, time_boost=0.0)
    assert [s.learning.id for s in rank(query, found, off, 3)][:2] == ["id0", "id1"]
    capped = [s.learning.id for s in rank(query, found, replace(off, context_cap=1.0), 3)]
    assert capped == ["id0", "id5", "id1"]  # the distractor is a real match; the reply is not


def test_context_cap_leaves_an_answer_to_a_question_alone():
    found = [
        turn(0, "What did you paint last week?", "Ann", score=1.0),
        turn(1, "Yes, a sunrise over the lake!", "Bob", after="id0", score=1.2),
    ]
    ranking = EpisodeRanking(context_cap=1.0, neighbour_weight=0.0, time_boost=0.0)
    order = [s.learning.id for s in rank("What did Bob paint?", found, ranking, 2)]
    assert order == ["id1", "id0"]  # the answer borrowed from a question keeps its score


def test_time_boost_only_for_questions_about_time():
    found = [turn(0, "We went to the lake", score=1.0), turn(9, "Yesterday we hiked", score=0.8)]
    ranking = EpisodeRanking(time_boost=0.8, neighbour_weight=0.0, context_cap=None)
    when = [s.learning.id for s in rank("When did they hike?", found, ranking, 2)]
    what = [s.learning.id for s in rank("Where did they hike?", found, ranking, 2)]
    assert when == ["id9", "id0"]
    assert what == ["id0", "id9"]
    assert asks_about_time("What year did she move?")
    assert not asks_about_time("What did she move?")


def dated(i, text, day, score):
    s = turn(i, text, score=score)
    when = datetime(2023, day[0], day[1], 12, 0, tzinfo=UTC)
    return replace(s, learning=replace(s.learning, valid_from=when))


def test_date_boost_lifts_turns_said_within_the_named_period():
    found = [
        dated(0, "hiking at the lake, best hiking ever", (3, 4), score=1.5),
        dated(1, "we went hiking in the hills", (6, 12), score=0.5),
        dated(2, "hiking again", (6, 20), score=0.2),
    ]
    ranking = EpisodeRanking(neighbour_weight=0.0, context_cap=None)
    order = [s.learning.id for s in rank("Where did Ann go hiking in June?", found, ranking, 3)]
    assert order == ["id1", "id2", "id0"]
    day = [s.learning.id for s in rank("Where did Ann hike on 12 June 2023?", found, ranking, 3)]
    assert day[0] == "id1"
    undated = [s.learning.id for s in rank("Where did Ann go hiking?", found, ranking, 3)]
    assert undated == ["id0", "id1", "id2"]
    off = replace(ranking, date_boost=0.0)
    assert [s.learning.id for s in rank("hiking in June?", found, off, 3)] == undated


def test_date_boost_counts_turns_told_a_few_days_after_the_period():
    found = [dated(0, "hiking", (5, 1), score=1.0), dated(1, "we hiked last week", (7, 3), 0.5)]
    ranking = EpisodeRanking(neighbour_weight=0.0, context_cap=None, time_boost=0.0)
    assert rank("hiking in June 2023", found, ranking, 1)[0].learning.id == "id1"
    late = [dated(0, "hiking", (5, 1), score=1.0), dated(1, "we hiked", (7, 9), score=0.5)]
    assert rank("hiking in June 2023", late, ranking, 1)[0].learning.id == "id0"


def test_plain_ranking_turns_every_signal_off():
    plain = EpisodeRanking.plain()
    assert (plain.context_turns, plain.neighbour_weight, plain.speaker_boost) == (0, 0.0, 0.0)
    assert (plain.time_boost, plain.date_boost, plain.context_cap) == (0.0, 0.0, None)


async def test_ingest_points_each_turn_at_the_turn_it_borrowed(tmp_path):
    from learning_machines.bench._common import CachedEmbedder
    from learning_machines.bench.retrieval import bind_episodic

    db = SqliteDb(str(tmp_path / "e.db"))
    store = bind_episodic(db, CachedEmbedder(HashEmbedder()), EpisodeRanking())
    store.config.batch_size = 1  # the pointer must cross batch boundaries
    eps = [ep("a", "Ann", 0), ep("b", "Bob", 1), ep("c", "Ann", 2, session="s2")]
    ids = await store.aadd_episodes(eps, user_id="u")
    hits = {h.id: h for h in await store.asearch("a b c", user_id="u", limit=3)}
    rows = await db.arun(
        GetLearnings(
            ids=tuple(ids),
            filter=LearningFilter(namespaces=("user",), reader_user_id="u"),
        )
    )
    after = {r.id: r.content.get("after") for r in rows}
    assert after == {ids[0]: None, ids[1]: ids[0], ids[2]: None}  # never across sessions
    assert all(h.similarity is not None for h in hits.values())
    db.close()


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("date_boost", -1.0),
        ("date_boost", float("nan")),
        ("date_lag", 3),
        ("date_lag", timedelta(days=-1)),
        ("keyword_weight", 1.5),
        ("candidates", 0),
        ("context_cap", "high"),
        ("strip_query", "maybe"),
    ],
)
def test_a_wrong_ranking_value_is_refused_when_the_ranking_is_made(field, bad):
    with pytest.raises(ConfigurationError, match=f"EpisodeRanking.{field}"):
        EpisodeRanking(**{field: bad})


def test_ranking_values_given_as_text_are_read():
    ranking = EpisodeRanking(date_boost="1.5", candidates="50")  # type: ignore[arg-type]
    assert (ranking.date_boost, ranking.candidates) == (1.5, 50)
