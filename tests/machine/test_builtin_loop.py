"""The loop with the built-in stores, as users write it: README example, modes, cross-user story."""

from __future__ import annotations

import re
from typing import Any

import pytest

from learning_machines import (
    Agent,
    LearningFailedError,
    LearningMachine,
    LearningMode,
    PermissionDenied,
)
from learning_machines._demo import demo_extraction
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.stores import (
    EntityMemoryConfig,
    LearnedKnowledgeConfig,
    SessionContextConfig,
    UserProfileConfig,
)
from learning_machines.testing import ScriptedModel


def test_readme_example_learns_the_user_profile_in_the_background(db: Db) -> None:
    model = ScriptedModel(answers="Hi Alice.", extraction=demo_extraction)
    agent = Agent(
        model=model, db=db, learning=LearningMachine(user_profile=True, embedder=HashEmbedder())
    )
    agent.run(
        "I'm Alice, I lead the data platform team. Keep answers short.",
        user_id="alice",
        session_id="s1",
    )
    agent.wait_idle(timeout=60)

    result = agent.run("What do you know about me?", user_id="alice", session_id="s2")
    assert result.context is not None
    assert "Alice" in result.context.text
    assert "data platform" in result.context.text
    assert "keep answers short" in result.context.text.lower()
    other = agent.run("What do you know about me?", user_id="bob", session_id="s3")
    assert other.context is not None
    assert "Alice" not in other.context.text


def test_learning_true_means_user_profile_in_background() -> None:
    from learning_machines.db import SqliteDb

    agent = Agent(model=ScriptedModel(), db=SqliteDb(":memory:"), learning=True)
    assert agent.machine is not None
    assert list(agent.machine.stores) == ["user_profile"]
    assert agent.machine.stores["user_profile"].mode is LearningMode.BACKGROUND  # type: ignore[attr-defined]


def test_four_background_stores_ten_turns_ten_extraction_calls(db: Db) -> None:
    model = ScriptedModel(answers="ok", extraction=demo_extraction)
    machine = LearningMachine(
        user_profile=True,
        session_context=True,
        learned_knowledge=True,
        entity_memory=True,
        embedder=HashEmbedder(),
    )
    agent = Agent(model=model, db=db, learning=machine)
    for turn in range(10):
        agent.run(f"Acme uses tool number {turn}.", user_id="u", session_id="s")
    agent.wait_idle(timeout=120)

    assert model.extraction_calls == 10
    assert machine.service.failures() == []
    answer = agent.run("What does Acme use?", user_id="u", session_id="s")
    assert answer.context is not None
    assert "uses tool number 9" in answer.context.text


def test_cross_user_story_shared_insight_reaches_bob_private_preference_does_not(db: Db) -> None:
    model = ScriptedModel(answers="Noted.", extraction=demo_extraction)
    machine = LearningMachine(
        user_profile=True,
        learned_knowledge=LearnedKnowledgeConfig(namespace="engineering"),
        embedder=HashEmbedder(),
    )
    agent = Agent(model=model, db=db, learning=machine)
    agent.run(
        "Lesson learned: when backfilling a large Postgres table, "
        "update it in batches of 10k rows.",
        user_id="alice",
        session_id="a1",
    )
    agent.run("Personal note: I prefer dark mode.", user_id="alice", session_id="a1")
    agent.wait_idle(timeout=60)

    bob = agent.run("How do I backfill a large Postgres table?", user_id="bob", session_id="b1")
    assert bob.context is not None
    assert "batches of 10k rows" in bob.context.text
    assert "dark mode" not in bob.context.text
    alice = agent.run("Remind me of my settings", user_id="alice", session_id="a2")
    assert alice.context is not None
    assert "dark mode" in alice.context.text


def _proposal_id(text: str | None) -> str:
    match = re.search(r"proposed as (\w+)", text or "")
    assert match, text
    return match.group(1)


def test_propose_in_chat_needs_a_later_turn_and_a_confirming_message(db: Db) -> None:
    calls: dict[str, Any] = {}

    def tool_calls(prompt: str) -> list[tuple[str, dict[str, Any]]]:
        if prompt.startswith("Remember"):
            return [
                ("save_learning", {"title": "Pin versions", "learning": "Pin every dependency."})
            ]
        if "proposal_id" in calls:
            return [("approve_proposal", {"proposal_id": calls["proposal_id"]})]
        return []

    model = ScriptedModel(answers="Done.", tool_calls=tool_calls)
    machine = LearningMachine(
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.PROPOSE, namespace="eng"),
        embedder=HashEmbedder(),
    )
    agent = Agent(model=model, db=db, learning=machine)
    first = agent.run("Remember: pin every dependency.", user_id="alice", session_id="s")
    calls["proposal_id"] = _proposal_id(first.tool_calls[0].result)
    proposal_id = calls["proposal_id"]

    # Unapproved: not recalled, not searchable.
    probe = agent.run("pin dependency?", user_id="alice", session_id="other")
    assert probe.context is not None
    assert "Pin every dependency" not in probe.context.text
    refused = [c for c in probe.tool_calls if c.name == "approve_proposal"]
    assert refused
    assert "NOT approved" in (refused[0].result or "")  # another session cannot approve it

    vague = agent.run("hmm, what was that about?", user_id="alice", session_id="s")
    assert "NOT approved" in (vague.tool_calls[0].result or "")  # no confirmation in the message
    assert machine.proposals.get(proposal_id).status == "pending"

    confirm = agent.run("Yes, save it.", user_id="alice", session_id="s")
    assert "approved" in (confirm.tool_calls[0].result or "")
    proposal = machine.proposals.get(proposal_id)
    assert proposal.status == "approved"
    assert proposal.decided_by == "alice"
    assert proposal.decision_note == "Yes, save it."
    calls.pop("proposal_id")
    later = agent.run("pin dependency?", user_id="bob", session_id="b")
    assert later.context is not None
    assert "Pin every dependency" in later.context.text


def test_propose_cannot_be_approved_in_the_same_turn(db: Db) -> None:
    state: dict[str, str] = {}

    def tool_calls(prompt: str) -> list[tuple[str, dict[str, Any]]]:
        return [("save_learning", {"title": "T", "learning": "Always add an index."})]

    def answer(prompt: str, info: Any) -> str:
        return "ok"

    model = ScriptedModel(answers=answer, tool_calls=tool_calls)
    machine = LearningMachine(
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.PROPOSE),
        embedder=HashEmbedder(),
    )
    agent = Agent(model=model, db=db, learning=machine)
    result = agent.run("yes yes save it", user_id="u", session_id="s")
    state["id"] = _proposal_id(result.tool_calls[0].result)
    ctx_turn = {"user_id": "u", "session_id": "s", "turn_index": 0, "message": "yes"}
    from learning_machines._sync import run_sync

    with pytest.raises(PermissionDenied, match="later message"):
        run_sync(machine.proposals.aapprove_in_chat(state["id"], **ctx_turn))


def test_hitl_only_a_reviewer_approves_and_the_agent_has_no_approve_tool(db: Db) -> None:
    model = ScriptedModel(
        answers="ok",
        tool_calls=[
            ("save_learning", {"title": "Rotate keys", "learning": "Rotate API keys monthly."})
        ],
    )
    machine = LearningMachine(
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.HITL, namespace="security"),
        embedder=HashEmbedder(),
    )
    agent = Agent(model=model, db=db, learning=machine)
    result = agent.run("We rotate keys monthly.", user_id="alice", session_id="s")
    proposal_id = _proposal_id(result.tool_calls[0].result)

    tools = {t.__name__ for t in machine.get_tools(user_id="alice", session_id="s", message="yes")}
    assert "approve_proposal" not in tools
    with pytest.raises(PermissionDenied):
        machine.proposals.approve(proposal_id, by="alice")
    from learning_machines._sync import run_sync

    with pytest.raises(PermissionDenied):
        run_sync(
            machine.proposals.aapprove_in_chat(
                proposal_id, user_id="alice", session_id="s", turn_index=5, message="yes"
            )
        )
    probe = agent.run("rotate keys?", user_id="carol", session_id="c")
    assert probe.context is not None
    assert "Rotate API keys" not in probe.context.text

    approved = machine.proposals.approve(proposal_id, by="reviewer-1", note="fine")
    assert approved.decided_by == "reviewer-1"
    assert approved.learning_id is not None
    after = agent.run("rotate keys?", user_id="carol", session_id="c")
    assert after.context is not None
    assert "Rotate API keys" in after.context.text


def test_full_config_level_builds(db: Db) -> None:
    machine = LearningMachine(
        user_profile=UserProfileConfig(mode=LearningMode.AGENTIC),
        session_context=SessionContextConfig(enable_planning=True),
        learned_knowledge=LearnedKnowledgeConfig(
            mode=LearningMode.PROPOSE, namespace="engineering"
        ),
        entity_memory=EntityMemoryConfig(mode=LearningMode.BACKGROUND),
        embedder=HashEmbedder(),
    )
    agent = Agent(model=ScriptedModel(extraction=demo_extraction), db=db, learning=machine)
    names = {t.__name__ for t in machine.get_tools(user_id="u", session_id="s")}
    assert {"update_user_profile", "save_learning", "search_learnings", "approve_proposal"} <= names
    assert agent.run("hello", user_id="u", session_id="s").text == "OK."


def test_what_was_recalled_is_counted_for_decay(db: Db) -> None:
    from learning_machines.db import LearningFilter, ListLearnings

    model = ScriptedModel(answers="ok", extraction=demo_extraction)
    machine = LearningMachine(
        learned_knowledge=LearnedKnowledgeConfig(namespace="eng"), embedder=HashEmbedder()
    )
    agent = Agent(model=model, db=db, learning=machine)
    agent.run("Lesson learned: cache DNS lookups in workers.", user_id="a", session_id="s")
    agent.wait_idle(timeout=60)
    (row,) = db.run(ListLearnings(filter=LearningFilter(namespaces=("eng",)), limit=None))
    assert row.recall_count == 0

    result = agent.run("Should workers cache DNS lookups?", user_id="b", session_id="t")
    assert result.context is not None
    assert row.id in result.context.learning_ids
    (after,) = db.run(ListLearnings(filter=LearningFilter(namespaces=("eng",)), limit=None))
    assert after.recall_count == 1
    assert after.last_recalled_at is not None


def test_curation_runs_by_itself_every_n_turns(db: Db) -> None:
    from learning_machines.db import ListWork

    model = ScriptedModel(answers="ok", extraction=demo_extraction)
    machine = LearningMachine(user_profile=True, embedder=HashEmbedder(), curate_every_turns=3)
    agent = Agent(model=model, db=db, learning=machine)
    for turn in range(6):
        agent.run(f"I prefer option {turn}.", user_id="u", session_id="s")
    agent.wait_idle(timeout=60)

    done = db.run(ListWork(statuses=("done",), kinds=("curate",), limit=None))
    assert len(done) == 2
    assert machine.service.failures() == []


def test_a_worker_missing_a_store_or_with_another_mode_parks_the_turn_loudly(db: Db) -> None:
    from learning_machines.stores import UserProfileConfig as Cfg

    app = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=demo_extraction),
        embedder=HashEmbedder(),
        user_profile=Cfg(mode=LearningMode.HITL),
        background=False,
    )
    app.process("I'm Alice Chen.", user_id="alice", session_id="s")
    worker = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=demo_extraction),
        embedder=HashEmbedder(),
        user_profile=True,
        background=False,
        retry_backoff=0.01,
    )
    worker.worker.kinds = None  # a dedicated worker process takes every kind of work
    with pytest.raises(LearningFailedError, match="mode 'hitl'"):
        worker.wait_idle(timeout=30)
    (failed,) = worker.service.failures()
    assert "mode 'hitl'" in (failed.last_error or "")
    assert failed.attempts == 1  # refused at once: retrying cannot help
    assert app.proposals.list() == []  # nothing was applied around the review either


def test_approval_with_a_machine_writing_elsewhere_is_refused(db: Db) -> None:
    from learning_machines import ConfigurationError

    app = LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        model=ScriptedModel(),
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.HITL, namespace="user"),
    )
    tools = {t.__name__: t for t in app.get_tools(user_id="alice", session_id="s")}
    tools["save_learning"](title="salary", learning="Alice earns a lot.")
    (proposal,) = app.proposals.list()
    assert proposal.namespace == "user"
    default_reviewer_machine = LearningMachine(
        db=db, embedder=HashEmbedder(), learned_knowledge=True, model=ScriptedModel()
    )
    with pytest.raises(ConfigurationError, match="namespace 'user'"):
        default_reviewer_machine.proposals.approve(proposal.id, by="reviewer")
    assert app.proposals.get(proposal.id).status == "pending"


def test_reserved_context_keys_are_refused(db: Db) -> None:
    from learning_machines import ValidationError

    agent = Agent(model=ScriptedModel(), db=db, learning=LearningMachine(embedder=HashEmbedder()))
    with pytest.raises(ValidationError, match="turn_index"):
        agent.run("hi", user_id="u", session_id="s", turn_index=99)


def test_chat_approval_needs_a_session(db: Db) -> None:
    from learning_machines._sync import run_sync

    machine = LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.PROPOSE),
    )
    tools = {t.__name__: t for t in machine.get_tools(user_id="u")}
    tools["save_learning"](title="t", learning="Use UTC everywhere.")
    (proposal,) = machine.proposals.list()
    with pytest.raises(PermissionDenied):
        run_sync(
            machine.proposals.aapprove_in_chat(
                proposal.id, user_id="u", session_id=None, turn_index=3, message="yes"
            )
        )


def test_updating_a_profile_keeps_its_recall_signals(db: Db) -> None:
    from learning_machines.db import LearningFilter, ListLearnings, MarkRecalled, utcnow

    model = ScriptedModel(answers="ok", extraction=demo_extraction)
    machine = LearningMachine(user_profile=True, embedder=HashEmbedder())
    agent = Agent(model=model, db=db, learning=machine)
    agent.run("I'm Alice Chen.", user_id="alice", session_id="s")
    agent.wait_idle(timeout=60)
    flt = LearningFilter(namespaces=("user",), reader_user_id="alice")
    (row,) = db.run(ListLearnings(filter=flt))
    db.run(MarkRecalled(ids=(row.id,), at=utcnow()))
    agent.run("Keep answers short.", user_id="alice", session_id="s")
    agent.wait_idle(timeout=60)
    (updated,) = db.run(ListLearnings(filter=flt))
    assert updated.content["communication_style"] == "keep answers short"
    assert updated.recall_count == 1
    assert updated.last_recalled_at is not None
