"""Forgetting a user on every backend: nothing that names them is left anywhere."""

from __future__ import annotations

import json
import uuid

from learning_machines.db import (
    AppendMessage,
    Change,
    CountLearnings,
    Db,
    EnqueueWork,
    GetLearnings,
    Learning,
    LearningFilter,
    ListHistory,
    ListLearnings,
    ListMessages,
    ListProposals,
    ListWork,
    Message,
    PendingWork,
    Proposal,
    PurgeUser,
    PutLearning,
    PutProposal,
    SearchLearnings,
)


def uid(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def seed_user(db: Db, user: str, ns: str) -> dict[str, Learning]:
    session = uid("s")
    private = Learning(
        learning_type="note",
        namespace="user",
        user_id=user,
        session_id=session,
        search_text="my private diary entry",
        provenance={"user_id": user, "session_id": session},
    )
    shared = Learning(
        learning_type="note",
        namespace=ns,
        user_id=user,
        session_id=session,
        search_text="the deploy runbook lives in the wiki",
        provenance={"user_id": user, "session_id": session, "turn_id": "t1", "store": "kb"},
    )
    change = Change(action="create", actor={"user_id": user})
    db.batch(
        [
            PutLearning(learning=private, change=change),
            PutLearning(learning=shared, change=change),
            AppendMessage(
                message=Message(
                    session_id=session,
                    user_id=user,
                    turn_id="t1",
                    user_message="hi",
                    assistant_message="hello",
                )
            ),
            EnqueueWork(work=PendingWork(kind="extract", payload={}, user_id=user)),
            PutProposal(
                proposal=Proposal(
                    learning_type="note",
                    store="kb",
                    mode="propose",
                    namespace=ns,
                    user_id=user,
                    session_id=session,
                    turn_id="t1",
                    payload={},
                )
            ),
        ]
    )
    return {"private": private, "shared": shared}


def test_purge_forgets_user_and_anonymises_shared_rows(db: Db) -> None:
    ns, gone, stays = uid("team"), uid("gone"), uid("stays")
    rows = seed_user(db, gone, ns)
    kept = seed_user(db, stays, ns)
    counts = db.run(PurgeUser(user_id=gone))
    assert counts["learnings"] == 1
    assert counts["messages"] == 1
    assert counts["pending_work"] == 1
    assert counts["proposals"] == 1

    # The private learning is gone, with its history.
    assert (
        db.run(CountLearnings(filter=LearningFilter(namespaces=("user",), reader_user_id=gone)))
        == 0
    )
    assert db.run(ListHistory(learning_id=rows["private"].id)) == []
    # The shared learning stays, but nothing in it names the user.
    f = LearningFilter(namespaces=(ns,))
    [shared] = db.run(GetLearnings(ids=(rows["shared"].id,), filter=f))
    assert shared.user_id is None
    assert gone not in json.dumps(shared.provenance)
    assert shared.provenance.get("turn_id") == "t1"
    for entry in db.run(ListHistory(learning_id=shared.id)):
        assert gone not in json.dumps([entry.old, entry.new, entry.actor, entry.user_id])
    assert db.run(ListLearnings(filter=LearningFilter(namespaces=(ns,), user_id=gone))) == []
    assert (
        db.run(ListLearnings(filter=LearningFilter(namespaces=(ns,), provenance_user_id=gone)))
        == []
    )
    hits = db.run(SearchLearnings(filter=f, query="runbook wiki"))
    assert gone not in json.dumps([h.learning.provenance for h in hits])
    # Messages, work and proposals are gone.
    assert db.run(ListMessages(session_id=rows["private"].session_id or "", user_id=gone)) == []
    assert all(w.user_id != gone for w in db.run(ListWork(limit=None)))
    assert db.run(ListProposals(statuses=None, user_id=gone)) == []

    # The other user is untouched.
    mine = LearningFilter(namespaces=("user",), reader_user_id=stays)
    assert db.run(CountLearnings(filter=mine)) == 1
    [other_shared] = db.run(GetLearnings(ids=(kept["shared"].id,), filter=f))
    assert other_shared.user_id == stays
    assert len(db.run(ListProposals(statuses=None, user_id=stays))) == 1
    assert (
        len(db.run(ListMessages(session_id=kept["private"].session_id or "", user_id=stays))) == 1
    )


def test_purge_can_delete_shared_rows_too(db: Db) -> None:
    ns, gone = uid("team"), uid("gone")
    rows = seed_user(db, gone, ns)
    counts = db.run(PurgeUser(user_id=gone, delete_shared=True))
    assert counts["learnings"] == 2
    f = LearningFilter(namespaces=(ns,))
    assert db.run(GetLearnings(ids=(rows["shared"].id,), filter=f)) == []


def test_purge_removes_a_reviewer_from_other_users_proposals(db: Db) -> None:
    reviewer, author = f"rev-{uuid.uuid4().hex[:6]}", f"au-{uuid.uuid4().hex[:6]}"
    proposal = Proposal(
        learning_type="note",
        store="s",
        mode="hitl",
        namespace="global",
        user_id=author,
        session_id=None,
        turn_id=None,
        payload={},
        status="approved",
        decided_by=reviewer,
    )
    db.run(PutProposal(proposal=proposal))
    db.run(PurgeUser(user_id=reviewer))
    (kept,) = db.run(ListProposals(statuses=None, user_id=author))
    assert kept.decided_by is None
    assert kept.status == "approved"
