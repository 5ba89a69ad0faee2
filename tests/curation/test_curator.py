"""Curator: curation runs, history of every action, archive/restore, forget, export/import."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from learning_machines.curation import CurationPolicy, Curator, WritePolicy, write_learning
from learning_machines.db import (
    AppendMessage,
    Change,
    Db,
    DeleteLearnings,
    EnqueueWork,
    GetProposal,
    Learning,
    LearningFilter,
    ListHistory,
    ListLearnings,
    Message,
    PendingWork,
    Proposal,
    PutLearning,
    PutProposal,
    SearchLearnings,
)
from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import NotFoundError, ValidationError

from ._helpers import CREATE, active, note, private, table_dump

EMB = HashEmbedder()
NOW = datetime.now(UTC)
NOTE_POLICY = {"note": CurationPolicy(half_life_days=30.0, near_duplicate_threshold=0.7)}


def put(db: Db, learning: Learning) -> Learning:
    if learning.embedding is None:
        vector = tuple(float(x) for x in EMB.embed([learning.search_text])[0])
        learning = Learning(**{**learning.__dict__, "embedding": vector, "embedder": EMB.name})
    return db.run(PutLearning(learning=learning, change=CREATE))


def recall(db: Db, query: str, user_id: str = "alice") -> list[str]:
    vector = tuple(float(x) for x in EMB.embed([query])[0])
    found = db.run(
        SearchLearnings(filter=private(user_id), query=query, vector=vector, embedder=EMB.name)
    )
    return [s.learning.search_text for s in found]


async def test_curate_merges_leftover_near_duplicates_and_restore_undoes_it(db: Db) -> None:
    a = put(db, note("The user likes strong black coffee", at=NOW - timedelta(hours=2)))
    b = put(db, note("The user really likes strong black coffee every morning", at=NOW))
    put(db, note("The user has a dog called Rex"))
    curator = Curator(db=db, embedder=EMB, policies=NOTE_POLICY)

    report = await curator.acurate()
    assert [(m.id, m.into) for m in report.merged] == [(b.id, a.id)]
    assert report.archived == []
    assert report.superseded == []
    assert report.scopes == 1
    assert report.examined == 3
    texts = sorted(x.search_text for x in active(db))
    assert texts == [
        "The user has a dog called Rex",
        "The user really likes strong black coffee every morning",
    ]
    kept = next(x for x in active(db) if x.id == a.id)
    assert kept.provenance["merged"][0]["id"] == b.id

    again = await curator.acurate()
    assert again.merged == []  # idempotent

    restored = await curator.arestore(b.id)
    assert restored.status == "active"
    assert len(active(db)) == 3
    assert [h.action for h in await curator.ahistory(b.id)] == ["create", "merge", "restore"]


async def test_an_archived_learning_is_not_recalled_and_restore_brings_it_back(db: Db) -> None:
    stale = put(
        db, note("The user once asked about Fortran compilers", at=NOW - timedelta(days=400))
    )
    put(db, note("The user prefers tabs over spaces", at=NOW))
    curator = Curator(db=db, embedder=EMB, policies=NOTE_POLICY)

    report = await curator.acurate()
    assert [x.id for x in report.archived] == [stale.id]
    assert "retention" in report.archived[0].reason
    assert stale.search_text not in recall(db, "Fortran compilers")
    assert stale.id not in {x.id for x in active(db)}

    await curator.arestore(stale.id)
    assert stale.search_text in recall(db, "Fortran compilers")
    history = await curator.ahistory(stale.id)
    assert [h.action for h in history] == ["create", "archive", "restore"]
    assert history[1].old is not None
    assert history[1].old["status"] == "active"
    assert history[1].new is not None
    assert history[1].new["status"] == "archived"


async def test_caps_archive_the_weakest_first(db: Db) -> None:
    rows = [put(db, note(f"fact number {i} about topic {i}", at=NOW - timedelta(days=3 * i)))
            for i in range(5)]  # fmt: skip
    recalled = rows[4]  # the oldest, but often recalled
    db.run(PutLearning(learning=Learning(**{**recalled.__dict__, "recall_count": 50}),
                       change=Change(action="update")))  # fmt: skip
    policy = {"note": CurationPolicy(half_life_days=30.0, max_per_scope=3, archive_below=None)}
    report = await Curator(db=db, embedder=EMB, policies=policy).acurate()
    assert sorted(x.id for x in report.archived) == sorted([rows[2].id, rows[3].id])
    assert {x.id for x in active(db)} == {rows[0].id, rows[1].id, rows[4].id}


async def test_dry_run_reports_and_writes_nothing(db: Db) -> None:
    stale = put(db, note("An old thing", at=NOW - timedelta(days=400)))
    fresh = put(db, note("A new thing", at=NOW))
    seen: list[tuple[int, int | None]] = []
    report = await Curator(db=db, embedder=EMB, policies=NOTE_POLICY).acurate(
        dry_run=True, on_progress=lambda done, total: seen.append((done, total))
    )
    assert report.dry_run
    assert [x.id for x in report.archived] == [stale.id]
    assert {x.id for x in active(db)} == {stale.id, fresh.id}
    # The summary counts what changed, apart from what was only looked at.
    assert "examined 2 learnings in 1 scopes and would change 1: " in report.summary()
    assert seen == [(1, 1)]


async def test_curate_supersedes_same_key_facts_and_respects_user_scope(db: Db) -> None:
    old = put(db, note("Lives in London", at=NOW - timedelta(days=3),
                       content={"conflict_key": "lives_in"}))  # fmt: skip
    new = put(db, note("Lives in Berlin", at=NOW, content={"conflict_key": "lives_in"}))
    bob = put(db, note("Lives in London", "bob", at=NOW, content={"conflict_key": "lives_in"}))
    report = await Curator(db=db, embedder=EMB).acurate(user_id="alice")
    assert [(x.id, x.into) for x in report.superseded] == [(old.id, new.id)]
    assert [x.id for x in active(db, "bob")] == [bob.id]
    row = db.run(ListLearnings(filter=private("alice", statuses=("superseded",)), limit=None))[0]
    assert row.superseded_by == new.id
    assert row.valid_to is not None


async def test_history_records_every_action(db: Db) -> None:
    curator = Curator(db=db, embedder=EMB, policies=NOTE_POLICY)
    facts = WritePolicy(conflict_key="attribute", near_duplicate_threshold=0.7)

    async def write(text: str, attribute: str = "drink") -> Learning:
        learning = note(text, content={"attribute": attribute})
        result = await write_learning(
            db=db, embedder=EMB, learning=learning, change=CREATE, scope=private("alice"),
            policy=facts,
        )  # fmt: skip
        return result.learning

    first = await write("Drinks green tea", attribute="drink")
    await write("Drinks black coffee", attribute="drink")  # supersedes first
    await curator.arestore(first.id)  # undo the supersede
    await curator.aarchive(first.id, reason="user asked", actor={"reviewer": "ops"})
    await curator.arestore(first.id)
    db.run(DeleteLearnings(ids=(first.id,), change=Change(action="delete", reason="cleanup")))
    back = await curator.arestore(first.id)
    assert back.status == "active"
    assert back.search_text == "Drinks green tea"
    assert back.embedding is not None  # re-embedded: deleted rows' history has no vector

    history = await curator.ahistory(first.id)
    assert [h.action for h in history] == [
        "create", "supersede", "restore", "archive", "restore", "delete", "restore",
    ]  # fmt: skip
    assert history[0].old is None
    assert history[0].new is not None
    assert history[0].actor == {"store": "test", "mode": "background"}
    assert history[0].turn_id == "t1"
    assert history[3].actor == {"reviewer": "ops"}
    assert history[3].reason == "user asked"
    assert history[5].new is None
    assert history[5].old is not None
    assert all(h.user_id == "alice" for h in history)

    with pytest.raises(NotFoundError):
        await curator.ahistory("no-such-id")
    with pytest.raises(NotFoundError):
        await curator.arestore(first.id, to_entry="no-such-entry")


async def test_restore_to_a_chosen_entry(db: Db) -> None:
    curator = Curator(db=db, embedder=EMB)
    row = put(db, note("Version one"))
    db.run(PutLearning(learning=Learning(**{**row.__dict__, "search_text": "Version two"}),
                       change=Change(action="update")))  # fmt: skip
    first_update = db.run(ListHistory(learning_id=row.id))[1]
    db.run(PutLearning(learning=Learning(**{**row.__dict__, "search_text": "Version three"}),
                       change=Change(action="update")))  # fmt: skip
    back = await curator.arestore(row.id, to_entry=first_update.id)
    assert back.search_text == "Version one"
    with pytest.raises(ValidationError):
        await curator.arestore(row.id, to_entry=db.run(ListHistory(learning_id=row.id))[0].id)


async def test_stale_proposals_expire_and_are_kept(db: Db) -> None:
    def proposal(created: datetime, expires: datetime | None) -> Proposal:
        return Proposal(
            learning_type="note", store="notes", mode="propose", namespace="user",
            user_id="alice", session_id="s", turn_id="t", payload={"text": "x"},
            created_at=created, expires_at=expires,
        )  # fmt: skip

    old = db.run(PutProposal(proposal=proposal(NOW - timedelta(days=20), None)))
    due = db.run(PutProposal(proposal=proposal(NOW - timedelta(days=2), NOW - timedelta(days=1))))
    fresh = db.run(PutProposal(proposal=proposal(NOW, NOW + timedelta(days=14))))
    report = await Curator(db=db, embedder=EMB).acurate()
    assert sorted(x.id for x in report.expired) == sorted([old.id, due.id])
    assert db.run(GetProposal(id=old.id)).status == "expired"  # type: ignore[union-attr]
    assert db.run(GetProposal(id=fresh.id)).status == "pending"  # type: ignore[union-attr]


def _seed_user(db: Db, user_id: str) -> Learning:
    row = put(db, note(f"{user_id} likes hiking", user_id))
    db.run(PutLearning(learning=Learning(**{**row.__dict__, "search_text": f"{user_id} hikes"}),
                       change=Change(action="update", actor={"user_id": user_id})))  # fmt: skip
    put(db, note(f"{user_id} archived thing", user_id, status="archived"))
    db.run(AppendMessage(message=Message(
        session_id=f"s-{user_id}", user_id=user_id, turn_id=f"turn-{user_id}",
        user_message=f"hi from {user_id}", assistant_message="hello",
    )))  # fmt: skip
    db.run(PutProposal(proposal=Proposal(
        learning_type="note", store="notes", mode="propose", namespace="user", user_id=user_id,
        session_id=f"s-{user_id}", turn_id=f"turn-{user_id}", payload={"by": user_id},
    )))  # fmt: skip
    payload = {"messages": [], "context": {"user_id": user_id}, "stores": []}
    db.run(EnqueueWork(work=PendingWork(kind="extract", payload=payload,
                                        user_id=user_id, dedupe_key=f"k-{user_id}")))  # fmt: skip
    return row


async def test_forget_leaves_no_row_of_the_user_in_any_table(db: Db) -> None:
    _seed_user(db, "zelda-7f3a")
    keep = _seed_user(db, "bob")
    shared = put(db, Learning(learning_type="note", namespace="global", user_id="zelda-7f3a",
                              search_text="Shared tip: use ripgrep",
                              provenance={"user_id": "zelda-7f3a", "turn_id": "x"}))  # fmt: skip

    counts = await Curator(db=db, embedder=EMB).aforget("zelda-7f3a")
    assert sum(counts.values()) > 0
    for table, rows in table_dump(db).items():
        leaked = [r for r in rows if "zelda-7f3a" in r]
        assert not leaked, f"{table} still holds {leaked}"
    # The shared learning survives without the link; bob is untouched.
    glob = db.run(ListLearnings(filter=LearningFilter(namespaces=("global",)), limit=None))
    assert [(x.id, x.user_id) for x in glob] == [(shared.id, None)]
    assert keep.id in {x.id for x in active(db, "bob")}
    assert any("bob" in r for r in table_dump(db)["messages"])


async def test_export_then_import_restores_everything_idempotently(db: Db) -> None:
    row = _seed_user(db, "carol")
    curator = Curator(db=db, embedder=EMB)
    exported = await curator.aexport("carol")
    text = json.dumps(exported)  # JSON-ready
    assert len(exported["learnings"]) == 2
    assert len(exported["messages"]) == 1
    assert len(exported["proposals"]) == 1
    assert len(exported["pending_work"]) == 1
    assert len(exported["history"]) == 3
    assert isinstance(exported["learnings"][0]["embedding"], list)
    history_before = [(h.id, h.action) for h in await curator.ahistory(row.id)]

    await curator.aforget("carol")
    assert active(db, "carol") == []
    counts = await curator.aimport(json.loads(text))
    assert counts == {"learnings": 2, "history": 3, "messages": 1, "proposals": 1,
                      "pending_work": 1}  # fmt: skip
    assert [x.search_text for x in active(db, "carol")] == ["carol hikes"]
    assert recall(db, "carol hikes", "carol")[0] == "carol hikes"  # embeddings came back
    after = [(h.id, h.action) for h in await curator.ahistory(row.id)]
    assert after[: len(history_before)] == history_before
    again = await curator.aimport(json.loads(text))
    assert again == {"learnings": 0, "history": 0, "messages": 0, "proposals": 0,
                     "pending_work": 0}  # fmt: skip
    with pytest.raises(ValidationError):
        await curator.aimport({"format": "something else"})
    tampered = json.loads(text)
    tampered["messages"][0]["user_id"] = "dave"
    with pytest.raises(ValidationError, match="of user 'dave'"):
        await curator.aimport(tampered)


def test_sync_wrappers(db: Db) -> None:
    curator = Curator(db=db, embedder=EMB)
    row = put(db, note("sync works"))
    assert curator.curate().examined == 1
    assert [h.action for h in curator.history(row.id)] == ["create"]
    assert curator.archive(row.id).status == "archived"
    assert curator.restore(row.id).status == "active"
    assert curator.export("alice")["user_id"] == "alice"
    assert curator.forget("alice")
