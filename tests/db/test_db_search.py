"""Hybrid search on every backend: keyword, vector, fusion, scope, embedder mismatch."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Literal

import numpy as np
import pytest

from learning_machines.db import (
    Change,
    Db,
    Learning,
    LearningFilter,
    PutLearning,
    SearchLearnings,
    SetEmbeddings,
)
from learning_machines.exceptions import EmbedderMismatchError

CREATE = Change(action="create")
DIM = 16


def uid(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def vec(key: str, dim: int = DIM) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=dim)
    return tuple(float(x) for x in v / np.linalg.norm(v))


def near(base: tuple[float, ...], key: str, cosine: float) -> tuple[float, ...]:
    """A unit vector whose cosine similarity with ``base`` is exactly ``cosine``."""
    b = np.asarray(base)
    r = np.asarray(vec(key, len(base)))
    p = r - (r @ b) * b
    p /= np.linalg.norm(p)
    v = cosine * b + np.sqrt(1 - cosine**2) * p
    return tuple(float(x) for x in v)


def note(text: str, *, user: str | None = None, ns: str = "user", **kw: Any) -> Learning:
    return Learning(learning_type="note", namespace=ns, user_id=user, search_text=text, **kw)


def put_all(db: Db, learnings: list[Learning]) -> None:
    db.batch([PutLearning(learning=x, change=CREATE) for x in learnings])


def mine(user: str) -> LearningFilter:
    return LearningFilter(namespaces=("user",), reader_user_id=user)


def test_keyword_search_ranks_by_bm25_and_matches_partially(db: Db) -> None:
    user = uid()
    a = note("Alice drinks green tea every morning", user=user)
    b = note("Bob drinks coffee", user=user)
    c = note("The weather is sunny", user=user)
    put_all(db, [a, b, c])
    hits = db.run(SearchLearnings(filter=mine(user), query="green tea?", method="keyword"))
    assert [h.learning.id for h in hits] == [a.id]
    assert hits[0].keyword_score is not None
    assert hits[0].keyword_score > 0
    assert hits[0].vector_score is None
    # Partial matches count; the better match ranks first.
    hits = db.run(SearchLearnings(filter=mine(user), query="who drinks tea", method="keyword"))
    assert [h.learning.id for h in hits] == [a.id, b.id]
    assert hits[0].score > hits[1].score


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        "tea AND OR NOT",
        "tea*",
        "col:tea",
        "(tea",
        "NEAR(tea coffee)",
        "a'b; --",
        "^",
    ],
)
def test_keyword_query_syntax_in_user_text_is_harmless(db: Db, query: str) -> None:
    user = uid()
    put_all(db, [note("tea and coffee", user=user)])
    db.run(SearchLearnings(filter=mine(user), query=query, method="keyword"))


@pytest.mark.parametrize("query", ["", "   ", "the and of", "?!.,"])
def test_empty_or_stopword_queries_find_nothing_by_keyword(db: Db, query: str) -> None:
    user = uid()
    put_all(db, [note("the tea of the day", user=user)])
    assert db.run(SearchLearnings(filter=mine(user), query=query, method="keyword")) == []


def test_vector_search_orders_by_cosine(db: Db) -> None:
    user = uid()
    q = vec("query")
    rows = [
        note(f"row {i}", user=user, embedding=near(q, f"n{i}", 0.9 - 0.15 * i), embedder="e")
        for i in range(5)
    ]
    put_all(db, [*reversed(rows), note("no vector", user=user)])
    hits = db.run(
        SearchLearnings(filter=mine(user), query="", vector=q, embedder="e", method="vector")
    )
    assert [h.learning.id for h in hits] == [x.id for x in rows]
    assert hits[0].vector_score == pytest.approx(0.9, abs=1e-4)
    scores = [h.vector_score for h in hits]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]


def test_hybrid_fuses_both_sides(db: Db) -> None:
    user = uid()
    q = vec("q")
    both = note("quarterly budget review", user=user, embedding=near(q, "b", 0.9), embedder="e")
    words = note("budget budget review", user=user, embedding=near(q, "w", 0.0), embedder="e")
    meaning = note("money planning", user=user, embedding=near(q, "m", 0.95), embedder="e")
    neither = note("cats sleep", user=user, embedding=near(q, "n", -0.5), embedder="e")
    put_all(db, [both, words, meaning, neither])
    # With a balanced weight, the row strong on both sides beats the one strong on words only.
    hits = db.run(
        SearchLearnings(
            filter=mine(user),
            query="budget review",
            vector=q,
            embedder="e",
            keyword_weight=0.3,
            limit=3,
        )
    )
    ids = [h.learning.id for h in hits]
    assert ids[0] == both.id
    assert set(ids) == {both.id, words.id, meaning.id}
    top = hits[0]
    assert top.keyword_score is not None
    assert top.vector_score is not None
    # All weight on keywords: BM25 order, whatever the vectors say.
    hits = db.run(
        SearchLearnings(
            filter=mine(user), query="budget", vector=q, embedder="e", keyword_weight=1.0, limit=2
        )
    )
    assert hits[0].learning.id == words.id


def test_rows_without_embeddings_still_found_by_keyword(db: Db) -> None:
    user = uid()
    x = note("plain text about sailing", user=user)
    put_all(db, [x, note("vector row", user=user, embedding=vec("v"), embedder="e")])
    hits = db.run(
        SearchLearnings(filter=mine(user), query="sailing", vector=vec("q"), embedder="e")
    )
    [hit] = [h for h in hits if h.learning.id == x.id]
    assert hit.keyword_score is not None
    assert hit.vector_score is None


@pytest.mark.slow
def test_scoped_search_finds_a_small_users_rows_among_many_better_ones(db: Db) -> None:
    small, crowd, ns = uid("small"), uid("crowd"), uid("ns")
    q = vec("topic")
    theirs = [
        note(
            f"the topic of {small} item {i}",
            user=small,
            embedding=near(q, f"s{i}", 0.3),
            embedder="e",
        )
        for i in range(3)
    ]
    others = [
        note(f"topic topic topic {i}", user=crowd, embedding=near(q, f"c{i}", 0.99), embedder="e")
        for i in range(2500)
    ] + [
        note(f"topic topic {i}", ns=ns, embedding=near(q, f"g{i}", 0.99), embedder="e")
        for i in range(2500)
    ]
    put_all(db, others + theirs)
    methods: tuple[Literal["keyword", "vector", "hybrid"], ...] = ("keyword", "vector", "hybrid")
    for method in methods:
        hits = db.run(
            SearchLearnings(
                filter=mine(small), query="topic", vector=q, embedder="e", method=method, limit=10
            )
        )
        assert {h.learning.id for h in hits} == {x.id for x in theirs}, method
    # The crowd's private rows stay out of a search over everything the small user may see...
    hits = db.run(
        SearchLearnings(
            filter=LearningFilter(reader_user_id=small),
            query="topic",
            vector=q,
            embedder="e",
            limit=50,
        )
    )
    assert all(h.learning.user_id != crowd for h in hits)
    assert {h.learning.namespace for h in hits} <= {"user", ns}


def test_search_refuses_to_mix_embedders(db: Db) -> None:
    user = uid()
    x = note("one", user=user, embedding=vec("a"), embedder="old-model")
    put_all(db, [x, note("two", user=user, embedding=vec("b"), embedder="new-model")])
    with pytest.raises(EmbedderMismatchError, match="old-model"):
        db.run(
            SearchLearnings(filter=mine(user), query="one", vector=vec("q"), embedder="new-model")
        )
    db.run(SetEmbeddings(vectors=((x.id, vec("a")),), embedder="new-model"))
    hits = db.run(
        SearchLearnings(filter=mine(user), query="one", vector=vec("q"), embedder="new-model")
    )
    assert len(hits) == 2
    # Another user's rows with another embedder do not block this user's search.
    put_all(db, [note("x", user=uid(), embedding=vec("c"), embedder="third")])
    assert (
        len(
            db.run(
                SearchLearnings(
                    filter=mine(user),
                    query="",
                    vector=vec("q"),
                    embedder="new-model",
                    method="vector",
                )
            )
        )
        == 2
    )


def test_search_sees_updates_and_deletes(db: Db) -> None:
    user = uid()
    q = vec("q")
    x = note("moving target", user=user, embedding=vec("far"), embedder="e")
    y = note("other", user=user, embedding=near(q, "y", 0.6), embedder="e")
    put_all(db, [x, y])
    search = SearchLearnings(filter=mine(user), query="", vector=q, embedder="e", method="vector")
    assert db.run(search)[0].learning.id == y.id
    db.run(SetEmbeddings(vectors=((x.id, q),), embedder="e"))
    assert db.run(search)[0].learning.id == x.id
    db.run(
        PutLearning(
            learning=note(
                "moving target", user=user, id=x.id, status="archived", embedding=q, embedder="e"
            ),
            change=Change(action="archive"),
        )
    )
    assert [h.learning.id for h in db.run(search)] == [y.id]


def test_keyword_ranking_in_a_users_scope_ignores_other_users_rows(db: Db) -> None:
    # Word rarity is judged within the scope searched: another user's many private rows about
    # "invoice" neither change this user's ranking nor its scores.
    user, other = uid(), uid()
    a = note("invoice for the acme account is overdue", user=user)
    b = note("the acme account renewal is due in march", user=user)
    c = note("lunch with the acme team", user=user)
    put_all(db, [a, b, c])
    query = SearchLearnings(filter=mine(user), query="acme invoice account", method="keyword")
    before = [(h.learning.id, h.score) for h in db.run(query)]
    put_all(db, [note(f"invoice number {i} sent", user=other) for i in range(60)])
    after = [(h.learning.id, h.score) for h in db.run(query)]
    assert [i for i, _ in before] == [a.id, b.id, c.id]
    if db.backend_name == "sqlite":
        assert after == before
    else:  # PostgreSQL's ts_rank has no document frequency at all: same ranking.
        assert [i for i, _ in after] == [i for i, _ in before]


def test_keyword_search_matches_word_forms_in_a_small_scope(db: Db) -> None:
    user = uid()
    a = note("She runs every weekend", user=user)
    put_all(db, [a, note("He swims", user=user)])
    hits = db.run(SearchLearnings(filter=mine(user), query="running", method="keyword"))
    assert [h.learning.id for h in hits] == [a.id]


def test_happened_between_keeps_rows_said_in_the_range(db: Db) -> None:
    from datetime import UTC, datetime, timedelta

    from learning_machines.db import ListLearnings
    from learning_machines.exceptions import ValidationError

    user = uid()
    day = datetime(2023, 5, 1, tzinfo=UTC)
    said = [
        note("hiking in april", user=user, valid_from=day - timedelta(days=3)),
        note("hiking on the first", user=user, valid_from=day + timedelta(hours=9)),
        note("hiking on the second", user=user, valid_from=day + timedelta(days=1, hours=9)),
        # no valid_from: its creation time counts
        note("hiking written in may", user=user, created_at=day + timedelta(hours=1)),
        note("hiking written later", user=user, created_at=day + timedelta(days=30)),
    ]
    put_all(db, said)
    window = (day, day + timedelta(days=2))
    scoped = LearningFilter(namespaces=("user",), reader_user_id=user, happened_between=window)
    listed = {x.search_text for x in db.run(ListLearnings(filter=scoped))}
    assert listed == {"hiking on the first", "hiking on the second", "hiking written in may"}
    found = db.run(SearchLearnings(filter=scoped, query="hiking", method="keyword"))
    assert {h.learning.search_text for h in found} == listed
    # the end is left out; naive datetimes are UTC
    naive = (day.replace(tzinfo=None), day.replace(tzinfo=None) + timedelta(days=1))
    one = LearningFilter(namespaces=("user",), reader_user_id=user, happened_between=naive)
    one_day = {x.search_text for x in db.run(ListLearnings(filter=one))}
    assert one_day == {"hiking on the first", "hiking written in may"}
    # a shared namespace is filtered the same way
    shared = [
        note("team hiking in may", ns="team", valid_from=day + timedelta(hours=2)),
        note("team hiking in june", ns="team", valid_from=day + timedelta(days=40)),
    ]
    put_all(db, shared)
    team = LearningFilter(namespaces=("team",), happened_between=window)
    hits = db.run(SearchLearnings(filter=team, query="hiking"))
    assert [h.learning.search_text for h in hits] == ["team hiking in may"]
    for bad in ((window[1], window[0]), (day, day), (day,), ("2023-05-01", "2023-05-02")):
        confused = LearningFilter(namespaces=("team",), happened_between=bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="happened_between"):
            db.run(ListLearnings(filter=confused))


def test_a_rare_query_word_outranks_a_common_one_repeated_in_a_users_scope(db: Db) -> None:
    # BM25 with the scope's document frequencies on both backends; PostgreSQL's ts_rank_cd,
    # used before for every scope, ranked the row repeating "ferry" first.
    user = uid()
    rows = [note(f"the ferry left at {h} o'clock", user=user) for h in range(8, 18)]
    repeated = note("ferry ferry ferry, the ferry and the ferry again, ferry", user=user)
    rare = note("our zanzibar trip", user=user)
    put_all(db, [*rows, repeated, rare])
    hits = db.run(SearchLearnings(filter=mine(user), query="zanzibar ferry", method="keyword"))
    ranked = [h.learning.id for h in hits]
    assert ranked[0] == rare.id
    assert ranked.index(repeated.id) > 0


def test_postgres_tsvector_text_is_read_into_lexeme_counts() -> None:
    from learning_machines.db._postgres_keyword import lexeme_counts

    assert lexeme_counts("'ferri':3,7B 'timet':9 'zanzibar':1") == {
        "ferri": 2,
        "timet": 1,
        "zanzibar": 1,
    }
    assert lexeme_counts("'don''t':2 'stripped'") == {"don't": 1, "stripped": 1}
    assert lexeme_counts("") == {}
