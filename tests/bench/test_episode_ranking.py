"""Episodic memory's indexing and ranking (learning_machines.stores._episode_ranking)."""

from datetime import UTC, datetime, timedelta

from learning_machines.db import Learning, ScoredLearning, SqliteDb
from learning_machines.embedders import HashEmbedder
from learning_machines.stores import Episode
from learning_machines.stores._episode_ranking import (
    EpisodeRanking,
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
