"""write_learning: exact and near duplicates, scope, supersession, confirmation, entity names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from learning_machines.curation import WritePolicy, write_learning
from learning_machines.db import Db, Learning, LearningFilter, ListHistory, ListLearnings
from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import IsolationError

from ._helpers import CREATE, active, note, private

EMB = HashEmbedder()
NEAR = WritePolicy(near_duplicate_threshold=0.7)  # HashEmbedder scale, not MiniLM's
FACTS = WritePolicy(conflict_key="attribute")
NOW = datetime.now(UTC)


async def write(db: Db, learning: Learning, policy: WritePolicy | None = None, **kw: object):
    scope = private(learning.user_id or "")
    return await write_learning(
        db=db, embedder=EMB, learning=learning, change=CREATE, scope=scope, policy=policy, **kw
    )


async def test_an_exact_duplicate_is_stored_once(db: Db) -> None:
    first = await write(db, note("The user likes green tea."))
    again = await write(db, note("the user likes   GREEN tea"))
    assert (first.action, again.action) == ("created", "duplicate")
    assert again.learning.id == first.learning.id
    assert [x.id for x in active(db)] == [first.learning.id]
    assert [h.action for h in db.run(ListHistory(learning_id=first.learning.id))] == ["create"]


async def test_a_near_duplicate_is_merged_keeping_the_richer_text_and_both_provenances(
    db: Db,
) -> None:
    first = await write(db, note("The user likes strong black coffee", provenance={"turn_id": "a"}))
    richer = "The user really likes strong black coffee every morning"
    second = await write(db, note(richer, provenance={"turn_id": "b"}), NEAR)
    assert second.action == "merged"
    assert second.similarity is not None
    assert second.similarity >= 0.7
    rows = active(db)
    assert len(rows) == 1
    assert rows[0].id == first.learning.id
    assert rows[0].search_text == richer
    assert rows[0].provenance["turn_id"] == "a"
    merged = rows[0].provenance["merged"]
    assert [m["provenance"]["turn_id"] for m in merged] == ["b"]
    assert merged[0]["text"] == "The user likes strong black coffee"  # the dropped text is kept
    history = db.run(ListHistory(learning_id=first.learning.id))
    assert [h.action for h in history] == ["create", "merge"]
    assert history[1].old is not None
    assert history[1].old["search_text"] == first.learning.search_text
    assert history[1].new is not None
    assert history[1].new["search_text"] == richer
    assert history[1].actor["store"] == "test"
    assert history[1].turn_id == "t1"


async def test_the_default_threshold_does_not_merge_a_different_fact(db: Db) -> None:
    await write(db, note("The user likes strong black coffee"))
    other = await write(db, note("The user likes strong green tea"), NEAR)
    assert other.action == "created"
    assert len(active(db)) == 2


async def test_two_users_identical_private_learnings_stay_two_rows(db: Db) -> None:
    a = await write(db, note("Likes green tea.", "alice"))
    b = await write(db, note("Likes green tea.", "bob"))
    c = await write(db, note("Likes green tea every day", "bob"), NEAR)
    assert (a.action, b.action) == ("created", "created")
    assert c.action == "merged"
    assert c.learning.id == b.learning.id
    assert [x.id for x in active(db, "alice")] == [a.learning.id]
    assert [x.id for x in active(db, "bob")] == [b.learning.id]
    assert "merged" not in active(db, "alice")[0].provenance


async def test_a_scope_of_another_user_is_refused(db: Db) -> None:
    with pytest.raises(IsolationError):
        await write_learning(
            db=db, embedder=EMB, learning=note("x", "alice"), change=CREATE,
            scope=private("bob"),
        )  # fmt: skip


async def test_a_contradicting_fact_supersedes_and_as_of_shows_the_old_one(db: Db) -> None:
    t0, t1 = NOW - timedelta(days=10), NOW - timedelta(days=1)
    london = note(
        "Alice lives in London", at=t0, content={"attribute": "lives_in", "value": "London"}
    )
    old = await write(db, london, FACTS)
    berlin = note(
        "Alice moved to Berlin", at=t1, content={"attribute": "lives_in", "value": "Berlin"}
    )
    new = await write(db, berlin, FACTS)
    assert new.action == "superseded"
    assert new.affected == (old.learning.id,)

    assert [x.search_text for x in active(db)] == ["Alice moved to Berlin"]
    everything = db.run(
        ListLearnings(filter=private("alice", statuses=("active", "superseded")), limit=None)
    )
    retired = next(x for x in everything if x.id == old.learning.id)
    assert retired.status == "superseded"
    assert retired.superseded_by == new.learning.id
    assert retired.valid_to == t1

    def known_at(t: datetime) -> list[str]:
        rows = db.run(ListLearnings(filter=private("alice", as_of=t), limit=None))
        return [x.search_text for x in rows]

    assert known_at(NOW - timedelta(days=5)) == ["Alice lives in London"]
    assert known_at(NOW) == ["Alice moved to Berlin"]
    assert known_at(NOW - timedelta(days=20)) == []
    actions = [h.action for h in db.run(ListHistory(learning_id=old.learning.id))]
    assert actions == ["create", "supersede"]


async def test_a_fact_with_another_key_or_the_same_value_is_not_superseded(db: Db) -> None:
    lives = await write(
        db, note("Alice lives in London", content={"attribute": "lives_in", "value": "London"}),
        FACTS,
    )  # fmt: skip
    works = await write(
        db, note("Alice works in London", content={"attribute": "works_in", "value": "London"}),
        FACTS,
    )  # fmt: skip
    same = await write(
        db, note("Alice is living in London now",
                 content={"attribute": "lives_in", "value": "london"}),
        FACTS,
    )  # fmt: skip
    assert works.action == "created"
    assert same.action == "merged"
    assert same.learning.id == lives.learning.id
    assert len(active(db)) == 2


async def test_supersedes_names_the_replaced_learnings(db: Db) -> None:
    old = await write(db, note("Sprint ends on Friday"))
    new = await write(db, note("The sprint was extended by a week"), supersedes=[old.learning.id])
    assert new.action == "superseded"
    assert [x.id for x in active(db)] == [new.learning.id]
    assert new.learning.provenance["supersedes"] == [old.learning.id]


async def test_the_confirm_hook_decides_the_ambiguous_band(db: Db) -> None:
    asked: list[tuple[str, str]] = []

    def hook(answer: bool):
        async def confirm(existing: Learning, new: Learning) -> bool:
            asked.append((existing.search_text, new.search_text))
            return answer

        return confirm

    await write(db, note("User prefers dark mode in the editor"))
    no = WritePolicy(near_duplicate_threshold=0.99, confirm_threshold=0.3, confirm=hook(False))
    refused = await write(db, note("User prefers light mode in the editor"), no)
    assert refused.action == "created"
    assert len(asked) == 1
    yes = WritePolicy(near_duplicate_threshold=0.99, confirm_threshold=0.3, confirm=hook(True))
    accepted = await write(db, note("The user prefers dark mode in their code editor"), yes)
    assert accepted.action == "merged"
    assert len(active(db)) == 2


async def test_entities_sharing_a_name_or_alias_are_merged(db: Db) -> None:
    def entity(name: str, aliases: list[str], text: str) -> Learning:
        return Learning(
            learning_type="entity", namespace="global", search_text=text,
            content={"name": name, "aliases": aliases},
        )  # fmt: skip

    scope = LearningFilter(namespaces=("global",))

    async def put(x: Learning):
        return await write_learning(db=db, embedder=EMB, learning=x, change=CREATE, scope=scope)

    acme = await put(entity("Acme Corp", ["ACME"], "Acme Corp, a company"))
    again = await put(entity("Acme", ["acme"], "Acme: makes anvils and rockets for coyotes"))
    other = await put(entity("Globex", [], "Globex, another company"))
    assert again.action == "merged"
    assert again.learning.id == acme.learning.id
    assert other.action == "created"
    merged = again.learning
    assert merged.search_text == "Acme: makes anvils and rockets for coyotes"
    assert merged.content["name"] == "Acme"
    assert merged.content["aliases"] == ["Acme Corp"]  # "ACME"/"acme" are the name itself


async def test_updates_are_written_as_given(db: Db) -> None:
    first = await write(db, note("Draft"))
    from learning_machines.db import Change

    updated = await write_learning(
        db=db, embedder=EMB, learning=replace(first.learning, search_text="Draft two"),
        change=Change(action="update"), scope=private("alice"),
    )  # fmt: skip
    assert updated.action == "updated"
    assert [x.search_text for x in active(db)] == ["Draft two"]


@pytest.mark.parametrize("answer", [True, False])
async def test_model_confirmation_asks_the_model(db: Db, answer: bool) -> None:
    from pydantic_ai.models.test import TestModel

    from learning_machines.curation import model_confirmation

    confirm = model_confirmation(TestModel(custom_output_args=answer))
    policy = WritePolicy(near_duplicate_threshold=0.99, confirm_threshold=0.3, confirm=confirm)
    await write(db, note("User prefers dark mode in the editor"))
    result = await write(db, note("The user prefers dark mode in their code editor"), policy)
    assert result.action == ("merged" if answer else "created")
