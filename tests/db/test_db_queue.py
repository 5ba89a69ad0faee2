"""Messages, pending work and proposals on every backend."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from learning_machines.db import (
    AppendMessage,
    ClaimWork,
    CountWork,
    Db,
    EnqueueWork,
    FailWork,
    FinishWork,
    GetProposal,
    ListMessages,
    ListProposals,
    ListWork,
    Message,
    PendingWork,
    Proposal,
    PutProposal,
    utcnow,
)
from learning_machines.exceptions import ConflictError


def uid(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def turn(session: str, user: str | None, i: int) -> Message:
    return Message(
        session_id=session,
        user_id=user,
        turn_id=f"t{i}",
        turn_index=i,
        user_message=f"hello {i}",
        assistant_message=f"hi {i}",
    )


def test_messages_last_turns_oldest_first(db: Db) -> None:
    session, user = uid("s"), uid()
    for i in range(5):
        db.run(AppendMessage(message=turn(session, user, i)))
    got = db.run(ListMessages(session_id=session, user_id=user, limit=3))
    assert [m.turn_index for m in got] == [2, 3, 4]
    assert got[0].user_message == "hello 2"
    assert len(db.run(ListMessages(session_id=session, user_id=user, limit=None))) == 5


def test_messages_never_leak_to_another_user_with_the_same_session_id(db: Db) -> None:
    session, alice, bob = "shared-session-id", uid("alice"), uid("bob")
    db.run(AppendMessage(message=turn(session, alice, 0)))
    db.run(AppendMessage(message=turn(session, bob, 1)))
    assert [m.user_id for m in db.run(ListMessages(session_id=session, user_id=bob))] == [bob]
    assert db.run(ListMessages(session_id=session, user_id=uid())) == []
    assert db.run(ListMessages(session_id=session, user_id=None)) == []


def work(kind: str, **kw: object) -> PendingWork:
    return PendingWork(kind=kind, payload={"n": 1}, **kw)  # type: ignore[arg-type]


def test_enqueue_dedupes_on_key(db: Db) -> None:
    kind, key = uid("k"), uid("turn")
    first = db.run(EnqueueWork(work=work(kind, dedupe_key=key)))
    again = db.run(EnqueueWork(work=work(kind, dedupe_key=key)))
    assert again.id == first.id
    db.run(EnqueueWork(work=work(kind)))
    db.run(EnqueueWork(work=work(kind)))
    assert db.run(CountWork(kinds=(kind,))) == 3


def test_claim_gives_each_item_to_one_worker(db: Db) -> None:
    kind = uid("k")
    ids = {db.run(EnqueueWork(work=work(kind))).id for _ in range(5)}
    now = utcnow() + timedelta(seconds=1)
    a = db.run(ClaimWork(worker_id="a", kinds=(kind,), limit=3, now=now))
    b = db.run(ClaimWork(worker_id="b", kinds=(kind,), limit=3, now=now))
    c = db.run(ClaimWork(worker_id="c", kinds=(kind,), limit=3, now=now))
    assert len(a) == 3
    assert len(b) == 2
    assert c == []
    assert {w.id for w in a} | {w.id for w in b} == ids
    assert all(w.status == "running" and w.attempts == 1 for w in a + b)
    assert {w.locked_by for w in a} == {"a"}
    assert db.run(CountWork(statuses=("running",), kinds=(kind,))) == 5


def test_claim_respects_not_before_and_reclaims_expired_leases(db: Db) -> None:
    kind = uid("k")
    now = utcnow()
    later = db.run(EnqueueWork(work=work(kind, not_before=now + timedelta(hours=1))))
    item = db.run(EnqueueWork(work=work(kind, not_before=now - timedelta(seconds=1))))
    [claimed] = db.run(ClaimWork(worker_id="a", kinds=(kind,), limit=5, now=now, lease_seconds=60))
    assert claimed.id == item.id
    # Worker "a" died: after the lease, "b" gets the item, and "a" can no longer finish it.
    later_now = now + timedelta(seconds=61)
    [again] = db.run(ClaimWork(worker_id="b", kinds=(kind,), now=later_now))
    assert again.id == item.id
    assert again.attempts == 2
    with pytest.raises(ConflictError, match=r"not held|does not hold"):  # a lost race
        db.run(FinishWork(id=item.id, worker_id="a"))
    db.run(FinishWork(id=item.id, worker_id="b"))
    [done] = db.run(ListWork(statuses=("done",), kinds=(kind,)))
    assert done.id == item.id
    [pending] = db.run(ListWork(statuses=("pending",), kinds=(kind,)))
    assert pending.id == later.id


def test_an_item_whose_workers_keep_dying_is_parked_not_retried_forever(db: Db) -> None:
    kind = uid("k")
    now = utcnow()
    item = db.run(EnqueueWork(work=work(kind, not_before=now, max_attempts=2)))
    for attempt in range(2):  # two workers die holding it
        at = now + timedelta(seconds=61 * attempt)
        [claimed] = db.run(
            ClaimWork(worker_id=f"w{attempt}", kinds=(kind,), now=at, lease_seconds=60)
        )
        assert claimed.attempts == attempt + 1
    assert db.run(ClaimWork(worker_id="w3", kinds=(kind,), now=now + timedelta(hours=1))) == []
    [parked] = db.run(ListWork(statuses=("failed",), kinds=(kind,)))
    assert parked.id == item.id
    assert "expired" in (parked.last_error or "")


def test_fail_retries_then_parks(db: Db) -> None:
    kind = uid("k")
    item = db.run(EnqueueWork(work=work(kind, max_attempts=2)))
    now = utcnow() + timedelta(seconds=1)
    db.run(ClaimWork(worker_id="w", kinds=(kind,), now=now))
    retry_at = now + timedelta(minutes=5)
    failed = db.run(FailWork(id=item.id, worker_id="w", error="boom", retry_at=retry_at))
    assert failed.status == "pending"
    assert failed.last_error == "boom"
    assert db.run(ClaimWork(worker_id="w", kinds=(kind,), now=now)) == []
    [claimed] = db.run(ClaimWork(worker_id="w", kinds=(kind,), now=retry_at))
    assert claimed.attempts == 2
    parked = db.run(
        FailWork(id=item.id, worker_id="w", error="again", raw_output="{bad", retry_at=retry_at)
    )
    assert parked.status == "failed"
    [stored] = db.run(ListWork(statuses=("failed",), kinds=(kind,)))
    assert stored.last_error == "again"
    assert stored.raw_output == "{bad"
    assert db.run(ClaimWork(worker_id="w", kinds=(kind,), now=retry_at + timedelta(days=1))) == []


def test_fail_without_retry_parks_at_once(db: Db) -> None:
    kind = uid("k")
    item = db.run(EnqueueWork(work=work(kind)))
    db.run(ClaimWork(worker_id="w", kinds=(kind,), now=utcnow() + timedelta(seconds=1)))
    assert db.run(FailWork(id=item.id, worker_id="w", error="fatal")).status == "failed"


def proposal(user: str, session: str, **kw: object) -> Proposal:
    return Proposal(
        learning_type="note",
        store="learned_knowledge",
        mode="propose",
        namespace="global",
        user_id=user,
        session_id=session,
        turn_id="t1",
        payload={"text": "x"},
        summary="remember x",
        **kw,  # type: ignore[arg-type]
    )


def test_proposals_round_trip_and_list_newest_first(db: Db) -> None:
    user, session = uid(), uid("s")
    t0 = utcnow()
    p1 = db.run(PutProposal(proposal=proposal(user, session, created_at=t0)))
    p2 = db.run(PutProposal(proposal=proposal(user, session, created_at=t0 + timedelta(seconds=1))))
    assert db.run(GetProposal(id=p1.id)) == p1
    assert db.run(GetProposal(id="missing")) is None
    listed = db.run(ListProposals(user_id=user))
    assert [p.id for p in listed] == [p2.id, p1.id]
    assert db.run(ListProposals(session_id=session, mode="hitl")) == []


def test_proposal_decision_is_compare_and_set(db: Db) -> None:
    user = uid()
    p = db.run(PutProposal(proposal=proposal(user, uid("s"))))
    approved = Proposal(**{**p.__dict__, "status": "approved", "decided_by": "ann"})
    rejected = Proposal(**{**p.__dict__, "status": "rejected", "decided_by": "bob"})
    db.run(PutProposal(proposal=approved, expected_status="pending"))
    with pytest.raises(ConflictError):
        db.run(PutProposal(proposal=rejected, expected_status="pending"))
    stored = db.run(GetProposal(id=p.id))
    assert stored is not None
    assert stored.status == "approved"
    assert stored.decided_by == "ann"
    assert [x.id for x in db.run(ListProposals(statuses=("approved",), user_id=user))] == [p.id]
    assert db.run(ListProposals(user_id=user)) == []
