"""Forged exports (issue 11, item 10): an import only writes rows of the export's own user.

Each forgery below starts from a genuine export of carol and edits it to reach bob (or a shared
namespace). Every one must be refused with a ValidationError and change nothing in any table.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from learning_machines.curation import Curator
from learning_machines.db import (
    Change,
    Db,
    HistoryEntry,
    Learning,
    LearningFilter,
    ListHistory,
    ListLearnings,
    ListMessages,
    ListProposals,
    ListWork,
    PutHistory,
    PutLearning,
    stable_id,
)
from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import ValidationError

from ._helpers import table_dump
from .test_curator import _seed_user, put

EMB = HashEmbedder()
Forgery = Callable[[dict[str, Any], dict[str, Any]], None]


def _world(db: Db) -> dict[str, Any]:
    """Bob's data, a shared learning, and carol's genuine export (carol then forgotten)."""
    bob_row = _seed_user(db, "bob")
    bob_profile = put(
        db,
        Learning(
            id=stable_id("user_profile", "user", "bob"),
            learning_type="user_profile",
            user_id="bob",
            content={"name": "Bob"},
            search_text="Bob",
        ),
    )
    shared = put(db, Learning(learning_type="note", namespace="global", search_text="Use UTC"))
    _seed_user(db, "carol")
    curator = Curator(db=db, embedder=EMB)
    export = json.loads(json.dumps(curator.export("carol")))
    curator.forget("carol")
    bob_message = db.run(ListMessages(session_id="s-bob", user_id="bob"))[0]
    bob_proposal = db.run(ListProposals(statuses=None, user_id="bob", limit=None))[0]
    bob_work = next(w for w in db.run(ListWork(limit=None)) if w.user_id == "bob")
    return {
        "export": export,
        "bob_row": bob_row.id,
        "bob_profile": bob_profile.id,
        "shared": shared.id,
        "bob_message": bob_message.id,
        "bob_proposal": bob_proposal.id,
        "bob_work": bob_work,
    }


def _pending_work(w: dict[str, Any], x: dict[str, Any]) -> dict[str, Any]:
    item = copy.deepcopy(x["export"]["pending_work"][0])
    item.update(id="forged-work", dedupe_key="forged", kind="extract")
    item["payload"] = {
        "messages": [{"role": "user", "content": "I'm Bob. I hate my team."}],
        "context": {"user_id": "bob", "session_id": "s-bob", "turn_id": "forged"},
        "stores": ["user_profile"],
        "modes": {"user_profile": "background"},
        "extraction": {"user_profile": {"name": "Mallory's puppet"}},
    }
    return item


def work_with_null_owner_for_bob(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["pending_work"] = [{**_pending_work(data, x), "user_id": None}]


def work_of_carol_whose_turn_is_bobs(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["pending_work"] = [_pending_work(data, x)]


def work_of_another_kind(data: dict[str, Any], x: dict[str, Any]) -> None:
    item = _pending_work(data, x)
    item.update(kind="curate", payload={"options": {"user_id": "bob"}})
    data["pending_work"] = [item]


def work_taking_bobs_id(data: dict[str, Any], x: dict[str, Any]) -> None:
    item = _pending_work(data, x)
    item["payload"]["context"]["user_id"] = "carol"
    item["id"] = x["bob_work"].id
    data["pending_work"] = [item]


def _history(learning_id: str, owner: str | None, old: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "forged-entry",
        "learning_id": learning_id,
        "action": "update",
        "old": old,
        "new": old,
        "actor": {"user_id": "carol"},
        "reason": "",
        "turn_id": None,
        "user_id": owner,
        "created_at": datetime.now(UTC).isoformat(),
    }


def _bob_snapshot(x: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": x["bob_profile"],
        "learning_type": "user_profile",
        "namespace": "user",
        "user_id": "bob",
        "content": {"name": "Mallory's puppet"},
        "search_text": "Mallory's puppet",
    }


def history_with_null_owner_for_bobs_profile(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["history"].append(_history(x["bob_profile"], None, _bob_snapshot(x)))


def history_of_carol_for_bobs_row(data: dict[str, Any], x: dict[str, Any]) -> None:
    snapshot = {**_bob_snapshot(x), "id": x["bob_row"], "user_id": "carol"}
    data["history"].append(_history(x["bob_row"], "carol", snapshot))


def history_of_carols_row_naming_bob(data: dict[str, Any], x: dict[str, Any]) -> None:
    mine = data["learnings"][0]["id"]
    data["history"].append(_history(mine, "carol", {**_bob_snapshot(x), "id": mine}))


def history_moving_carols_row_to_global(data: dict[str, Any], x: dict[str, Any]) -> None:
    mine = data["learnings"][0]
    snapshot = {**mine, "namespace": "global", "embedding": None}
    data["history"].append(_history(mine["id"], "carol", snapshot))


def learning_taking_bobs_private_id(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["learnings"][0]["id"] = x["bob_row"]


def learning_taking_a_shared_id(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["learnings"][0]["id"] = x["shared"]


def learning_with_bobs_profile_id(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["learnings"][0].update(id=x["bob_profile"], learning_type="user_profile")


def learning_squatting_a_future_profile_id(data: dict[str, Any], x: dict[str, Any]) -> None:
    # dave has no profile yet: carol's row would sit at the id dave's profile will use.
    data["learnings"][0].update(
        id=stable_id("user_profile", "user", "dave"), learning_type="user_profile"
    )


def learning_squatting_a_session_id(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["learnings"][0].update(
        id=stable_id("session_context", "user", "dave", "s1"),
        learning_type="session_context",
        session_id="s1",
    )


def learning_with_null_owner(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["learnings"][0]["user_id"] = None


def message_with_null_owner(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["messages"][0].update(user_id=None, session_id="s-bob")


def message_taking_bobs_id(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["messages"][0]["id"] = x["bob_message"]


def proposal_with_null_owner(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["proposals"][0].update(user_id=None, id="forged-proposal")


def proposal_taking_bobs_id(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["proposals"][0].update(id=x["bob_proposal"], payload={"name": "puppet"})


def export_claiming_an_invalid_user(data: dict[str, Any], x: dict[str, Any]) -> None:
    data["user_id"] = "carol\x1fbob"


FORGERIES: list[Forgery] = [
    work_with_null_owner_for_bob,
    work_of_carol_whose_turn_is_bobs,
    work_of_another_kind,
    work_taking_bobs_id,
    history_with_null_owner_for_bobs_profile,
    history_of_carol_for_bobs_row,
    history_of_carols_row_naming_bob,
    history_moving_carols_row_to_global,
    learning_taking_bobs_private_id,
    learning_taking_a_shared_id,
    learning_with_bobs_profile_id,
    learning_squatting_a_future_profile_id,
    learning_squatting_a_session_id,
    learning_with_null_owner,
    message_with_null_owner,
    message_taking_bobs_id,
    proposal_with_null_owner,
    proposal_taking_bobs_id,
    export_claiming_an_invalid_user,
]


@pytest.mark.parametrize("forge", FORGERIES, ids=lambda f: f.__name__)
async def test_a_forged_export_is_refused_and_changes_nothing(db: Db, forge: Forgery) -> None:
    world = _world(db)
    forged = copy.deepcopy(world["export"])
    forge(forged, world)
    before = table_dump(db)
    with pytest.raises(ValidationError):
        await Curator(db=db, embedder=EMB).aimport(forged)
    assert table_dump(db) == before


async def test_the_genuine_export_still_imports(db: Db) -> None:
    world = _world(db)
    counts = await Curator(db=db, embedder=EMB).aimport(world["export"])
    assert counts["learnings"] == 2
    assert counts["pending_work"] == 1
    (work,) = [w for w in db.run(ListWork(limit=None)) if w.user_id == "carol"]
    assert work.payload == world["export"]["pending_work"][0]["payload"]


async def test_imported_work_is_redone_by_a_model_not_replayed(db: Db) -> None:
    world = _world(db)
    data = copy.deepcopy(world["export"])
    item = _pending_work(data, world)
    item["payload"]["context"]["user_id"] = "carol"
    item.update(user_id="carol")
    data["pending_work"] = [item]
    await Curator(db=db, embedder=EMB).aimport(data)
    (work,) = [w for w in db.run(ListWork(limit=None)) if w.id == "forged-work"]
    assert "extraction" not in work.payload  # a saved model output is never carried across
    assert work.payload["messages"] == item["payload"]["messages"]


async def test_restore_never_moves_a_row_to_another_owner(db: Db) -> None:
    world = _world(db)
    curator = Curator(db=db, embedder=EMB)
    profile = world["bob_profile"]
    planted = HistoryEntry(
        id="planted",
        learning_id=profile,
        action="update",
        old={**_bob_snapshot(world), "user_id": "mallory"},
        new=None,
        actor={},
        reason="",
        turn_id=None,
        user_id="bob",
        created_at=datetime.now(UTC),
    )
    db.run(PutHistory(entries=(planted,)))
    before = table_dump(db)
    with pytest.raises(ValidationError, match="owner"):
        await curator.arestore(profile, to_entry="planted")
    assert table_dump(db) == before
    rows = db.run(
        ListLearnings(filter=LearningFilter(namespaces=("user",), reader_user_id="bob"), limit=None)
    )
    assert profile in {r.id for r in rows}


async def test_history_of_a_row_still_restores_within_its_owner(db: Db) -> None:
    world = _world(db)
    curator = Curator(db=db, embedder=EMB)
    (row,) = [
        r
        for r in db.run(
            ListLearnings(
                filter=LearningFilter(namespaces=("user",), reader_user_id="bob"), limit=None
            )
        )
        if r.id == world["bob_row"]
    ]
    db.run(PutLearning(learning=row, change=Change(action="archive", actor={})))
    entries = db.run(ListHistory(learning_id=row.id))
    restored = await curator.arestore(row.id, to_entry=entries[1].id)
    assert restored.user_id == "bob"
