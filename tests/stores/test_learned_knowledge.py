from __future__ import annotations

import pytest

from learning_machines._modes import LearningMode
from learning_machines._tokens import estimate_tokens
from learning_machines.stores import (
    KnowledgeItem,
    LearnedKnowledgeConfig,
    LearnedKnowledgeExtraction,
    LearnedKnowledgeStore,
)

from .conftest import all_rows, approve, ctx, proposals, tool, tool_names


def make(bind, mode=LearningMode.AGENTIC, **kw):
    return bind(LearnedKnowledgeConfig(mode=mode, **kw).create_store())


TIPS = [
    ("Use COPY for bulk loads", "COPY is much faster than INSERT for bulk loads", "postgres"),
    ("Pin dependencies", "Pin exact versions in lock files for reproducible builds", "python"),
    ("Retry idempotent calls", "Only retry idempotent HTTP calls, with backoff", "http"),
]


async def seed(store, **context):
    save = tool(store, "save_learning", **ctx(**context))
    for title, learning, tag in TIPS:
        out = await save(title=title, learning=learning, context=f"when using {tag}", tags=[tag])
        assert out.startswith("saved (")


async def test_agentic_save_and_search(bind, db):
    store = make(bind)
    assert tool_names(store, **ctx()) == ["save_learning", "search_learnings"]
    await seed(store)
    found = await tool(store, "search_learnings", **ctx())("bulk loads postgres COPY", limit=1)
    assert found.startswith(
        "- Use COPY for bulk loads: COPY is much faster than INSERT for bulk loads "
        "(when: when using postgres) [postgres] "
        "(shared in 'global', from alice, agentic, not reviewed, "
    )
    rows = await all_rows(db, "learned_knowledge")
    assert len(rows) == 3
    assert all(r.namespace == "global" and r.user_id == "alice" for r in rows)
    assert all(r.content["source"] == "agent" and r.provenance["mode"] == "agentic" for r in rows)
    assert all(r.embedding is not None for r in rows)


async def test_recall_is_relevant_not_everything(bind):
    store = make(bind, limit=1)
    await seed(store)
    recalled = await store.arecall(**ctx(message="how do I retry HTTP calls safely"))
    assert [s.learning.content["title"] for s in recalled] == ["Retry idempotent calls"]
    text = store.build_context(recalled)
    assert text.startswith("## Learned knowledge")
    assert "Retry idempotent calls" in text
    assert await store.arecall(**ctx(message="")) == []
    assert store.build_context([]) == ""


async def test_duplicates_are_refused(bind, db):
    store = make(bind)
    save = tool(store, "save_learning", **ctx())
    first = await save(title="Pin dependencies", learning="Pin exact versions")
    second = await save(title="Pin dependencies", learning="Pin exact versions.")
    assert first == second
    assert len(await all_rows(db, "learned_knowledge")) == 1


async def test_background_extraction_round_trip(bind, db):
    store = make(bind, mode=LearningMode.BACKGROUND)
    assert tool_names(store, **ctx()) == ["search_learnings"]
    await store.apply_write(
        {"title": "Pin dependencies", "learning": "Pin exact versions"}, **ctx(mode="background")
    )
    spec = store.extraction(**ctx(message="should I pin dependencies?"))
    assert spec is not None
    assert spec.output_type is LearnedKnowledgeExtraction
    assert "Pin dependencies" in spec.current_state
    out = LearnedKnowledgeExtraction(
        learnings=[
            KnowledgeItem(title="Use COPY", learning="COPY beats INSERT", tags=["Postgres"]),
            KnowledgeItem(title=" ", learning="dropped: no title"),
        ]
    )
    await store.aapply_extraction(out, **ctx())
    rows = {r.content["title"]: r for r in await all_rows(db, "learned_knowledge")}
    assert set(rows) == {"Pin dependencies", "Use COPY"}
    assert rows["Use COPY"].content["tags"] == ["postgres"]
    assert rows["Use COPY"].content["source"] == "conversation"
    assert rows["Use COPY"].provenance["mode"] == "background"


@pytest.mark.parametrize("mode", [LearningMode.PROPOSE, LearningMode.HITL])
async def test_proposals_invisible_until_approved(bind, db, mode):
    store = make(bind, mode=mode)
    out = await tool(store, "save_learning", **ctx())(
        title="Use COPY", learning="COPY is faster than INSERT"
    )
    assert "proposed as" in out
    assert await store.arecall(**ctx(message="COPY INSERT")) == []
    assert await tool(store, "search_learnings", **ctx())("COPY") == "No learnings found."
    [proposal] = await proposals(db)
    assert proposal.namespace == "global"
    assert proposal.summary.startswith("learning: Use COPY")
    [learning_id] = await approve(store, proposal)
    recalled = await store.arecall(**ctx(user="bob", message="COPY INSERT"))
    assert [s.learning.id for s in recalled] == [learning_id]
    assert recalled[0].learning.provenance["mode"] == mode.value


async def test_hitl_extraction_becomes_proposals(bind, db):
    store = make(bind, mode=LearningMode.HITL)
    spec = await store.aextraction(**ctx(message="x"))
    assert spec is not None
    await store.aapply_extraction(
        LearnedKnowledgeExtraction(learnings=[KnowledgeItem(title="a", learning="b")]), **ctx()
    )
    assert len(await proposals(db)) == 1
    assert await all_rows(db, "learned_knowledge") == []


async def test_shared_namespace_and_read_namespaces(bind):
    global_store = make(bind)
    await tool(global_store, "save_learning", **ctx())(
        title="Global tip", learning="Write tests for deploy scripts"
    )
    eng = make(bind, namespace="engineering", read_namespaces=("global",))
    await tool(eng, "save_learning", **ctx())(
        title="Eng tip", learning="Write tests for migration scripts"
    )
    sales = make(bind, namespace="sales")
    titles = lambda found: sorted(s.learning.content["title"] for s in found)  # noqa: E731
    assert titles(await eng.asearch("write tests scripts", user_id="bob")) == [
        "Eng tip",
        "Global tip",
    ]
    assert titles(await global_store.asearch("write tests scripts")) == ["Global tip"]
    assert titles(await sales.asearch("write tests scripts", user_id="bob")) == []


async def test_budget(bind):
    store = make(bind, limit=10, max_tokens=30)
    for i in range(10):
        await tool(store, "save_learning", **ctx())(
            title=f"Tip {i}", learning=f"database tip number {i} " + "detail " * 10
        )
    text = store.build_context(await store.arecall(**ctx(message="database tip")))
    assert estimate_tokens(text) <= 30
    assert text.startswith("## Learned knowledge")


def test_guidance(bind):
    assert "save_learning" not in make(bind, mode=LearningMode.BACKGROUND).guidance()
    assert "save_learning" in make(bind).guidance()
    assert isinstance(make(bind), LearnedKnowledgeStore)


async def test_unrelated_learnings_are_not_recalled(bind):
    store = make(bind)
    save = tool(store, "save_learning", **ctx())
    await save(title="Backfill before switching reads", learning="Backfill the new database first")
    await save(title="Pin dependencies", learning="Pin exact versions in a lock file")
    recalled = await store.arecall(**ctx(message="how should we switch reads to the new database?"))
    assert [s.learning.content["title"] for s in recalled] == ["Backfill before switching reads"]
    # An explicit search still ranks everything it may read.
    assert len(await store.asearch("switch reads to the new database", user_id="alice")) == 2
