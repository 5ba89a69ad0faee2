"""``machine.service``: ids a person can type (unique starts), re-embedding, pending work.

Run on both backends: the prefix lookup is SQL of each backend.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from learning_machines import LearningMachine
from learning_machines.db import (
    Change,
    Db,
    DeleteLearnings,
    EnqueueWork,
    Learning,
    LearningFilter,
    PendingWork,
    Proposal,
    PutLearning,
    PutProposal,
    SearchLearnings,
    utcnow,
)
from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import EmbedderMismatchError, NotFoundError, ValidationError


def _service(db: Db, embedder: HashEmbedder | None = None) -> LearningMachine:
    return LearningMachine(
        db=db, embedder=embedder or HashEmbedder(), background=False, user_profile=True
    )


def _put(db: Db, learning_id: str, *, namespace: str = "user", user: str = "u") -> Learning:
    return db.run(
        PutLearning(
            learning=Learning(
                id=learning_id,
                learning_type="note",
                namespace=namespace,
                user_id=user,
                search_text=f"note {learning_id}",
            ),
            change=Change(action="create"),
        )
    )


def test_a_unique_start_names_a_learning_whatever_its_namespace(db: Db) -> None:
    _put(db, "abcd1111" + "0" * 24, user="alice")  # private to alice
    _put(db, "abcd2222" + "0" * 24, namespace="global")
    service = _service(db).service

    assert service.resolve_id("abcd1") == "abcd1111" + "0" * 24
    assert service.resolve_id("abcd2222") == "abcd2222" + "0" * 24
    whole = "abcd1111" + "0" * 24
    assert service.resolve_id(whole) == whole
    assert service.resolve_id(f"  {whole}\n") == whole  # pasted with whitespace


def test_an_ambiguous_start_is_refused_and_lists_the_candidates(db: Db) -> None:
    _put(db, "abcd1111" + "0" * 24)
    _put(db, "abcd2222" + "0" * 24)
    service = _service(db).service

    with pytest.raises(ValidationError, match=r"starts several learning ids .*abcd1111.*abcd2222"):
        service.resolve_id("abcd")


def test_unknown_and_too_short_ids_say_what_to_do(db: Db) -> None:
    _put(db, "abcd1111" + "0" * 24)
    service = _service(db).service

    with pytest.raises(NotFoundError, match=r"no learning id starts with 'ffff'.*show --user"):
        service.resolve_id("ffff")
    with pytest.raises(ValidationError, match="at least 4 characters"):
        service.resolve_id("ab")
    with pytest.raises(ValidationError, match="empty"):
        service.resolve_id("  ")
    # SQL wildcards in what was typed are plain characters, not patterns.
    with pytest.raises(NotFoundError):
        service.resolve_id("abc%")
    with pytest.raises(NotFoundError):
        service.resolve_id("abc_")


def test_a_deleted_learning_is_still_found_through_its_history(db: Db) -> None:
    gone = _put(db, "dead0000" + "0" * 24)
    db.run(DeleteLearnings(ids=(gone.id,), change=Change(action="delete")))
    service = _service(db).service

    assert service.resolve_id("dead0000") == gone.id
    assert [e.action for e in service.history(service.resolve_id("dead"))] == ["create", "delete"]


def test_proposal_and_work_ids_resolve_in_their_own_kind(db: Db) -> None:
    proposal = db.run(
        PutProposal(
            proposal=Proposal(
                id="feed0001" + "0" * 24,
                learning_type="note",
                store="notes",
                mode="propose",
                namespace="user",
                user_id="u",
                session_id="s",
                turn_id="t",
                payload={},
                summary="a note",
            )
        )
    )
    work = db.run(
        EnqueueWork(work=PendingWork(id="beef0001" + "0" * 24, kind="extraction", payload={}))
    )
    service = _service(db).service

    assert service.resolve_id("feed", kind="proposal") == proposal.id
    assert service.resolve_id("beef", kind="work") == work.id
    with pytest.raises(NotFoundError, match=r"no learning id starts with .feed"):
        service.resolve_id("feed")  # not a learning id


def test_short_ids_are_unique_starts_that_resolve_back(db: Db) -> None:
    ids = ["12345678aa" + "0" * 22, "12345678ab" + "0" * 22, "99999999" + "0" * 24]
    for i in ids:
        _put(db, i)
    service = _service(db).service

    short = service.short_ids(ids)
    assert short[ids[2]] == "99999999"  # alone: the minimum length
    assert short[ids[0]] == "12345678aa"
    assert short[ids[1]] == "12345678ab"
    for whole, start in short.items():
        assert service.resolve_id(start) == whole


def test_reembed_moves_every_row_to_the_new_embedder_and_search_works_again(db: Db) -> None:
    old, new = HashEmbedder(dimensions=32), HashEmbedder(dimensions=48)
    before = _service(db, old)
    before.service.learnings()  # bind
    for i, (ns, user) in enumerate([("user", "alice"), ("user", "bob"), ("global", "alice")]):
        text = f"postgres backfill tip number {i}"
        db.run(
            PutLearning(
                learning=Learning(
                    learning_type="note",
                    namespace=ns,
                    user_id=user,
                    search_text=text,
                    embedding=tuple(float(x) for x in old.embed([text])[0]),
                    embedder=old.name,
                    status="archived" if i == 1 else "active",
                ),
                change=Change(action="create"),
            )
        )
    query = tuple(float(x) for x in new.embed(["postgres backfill"])[0])
    search = SearchLearnings(
        filter=LearningFilter(namespaces=None, reader_user_id="alice"),
        query="postgres backfill",
        vector=query,
        embedder=new.name,
    )
    with pytest.raises(EmbedderMismatchError):
        db.run(search)

    seen: list[tuple[int, int | None]] = []
    report = _service(db, new).service.reembed(
        batch_size=2, on_progress=lambda d, t: seen.append((d, t))
    )

    assert report.updated == 3
    assert report.before == {old.name: 3}
    assert seen[0] == (0, 3)
    assert seen[-1] == (3, 3)
    assert len(db.run(search)) == 2  # alice's private row and the shared one
    again = _service(db, new).service.reembed()
    assert again.updated == 0  # nothing left to do: a second run is free


def test_pending_lists_what_needs_attention_and_done_work_only_when_asked(db: Db) -> None:
    from learning_machines.db import ClaimWork, FinishWork

    service = _service(db).service
    db.run(EnqueueWork(work=PendingWork(kind="extraction", payload={}, user_id="u")))
    finished = db.run(EnqueueWork(work=PendingWork(kind="extraction", payload={}, user_id="u")))
    claimed = db.run(ClaimWork(worker_id="w", limit=2, now=utcnow() + timedelta(seconds=1)))
    db.run(FinishWork(id=finished.id, worker_id="w"))

    waiting = service.pending()
    assert finished.id not in [w.id for w in waiting]
    assert len(waiting) == len(claimed) - 1
    assert finished.id in [w.id for w in service.pending(statuses=("done",))]
    with pytest.raises(ValidationError, match="unknown work status 'bogus'"):
        service.pending(statuses=("bogus",))  # type: ignore[arg-type]
