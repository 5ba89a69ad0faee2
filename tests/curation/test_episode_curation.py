"""Curation keeps episodic memory verbatim: no episode is merged or superseded by dedup.

Episodes are what was said, word for word. An answer is indexed together with the user message
before it, and people repeat themselves ("ok"), so similarity-based curation would fold real turns
into each other. Decay and the per-scope cap still apply, with the documented episode policy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from learning_machines import LearningMachine
from learning_machines.curation import DEFAULT_POLICIES, CurationPolicy, Curator
from learning_machines.db import Db, LearningFilter, ListLearnings
from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import ConfigurationError
from learning_machines.stores import Episode

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

TOPICS = [
    "I moved the weekly standup to Tuesdays at ten",
    "our staging database is called falcon",
    "Priya owns the billing service now",
    "the release train leaves every second Thursday",
    "I prefer short answers with code first",
    "the on-call rotation changes on Mondays",
    "we deprecated the v1 search endpoint",
    "my manager is Tomasz Nowak",
    "the design review for payments is on the 14th",
    "we store invoices in the eu-west bucket",
]


def _episodes(db: Db, user: str = "alice") -> list[tuple[str, str]]:
    rows = db.run(
        ListLearnings(
            filter=LearningFilter(
                namespaces=("user",), reader_user_id=user, learning_types=("episode",)
            ),
            limit=None,
        )
    )
    return [(str(r.content["speaker"]), str(r.content["text"])) for r in rows]


def _machine(db: Db) -> LearningMachine:
    return LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        episodic_memory=True,
        background=False,
        curate_every_turns=None,
    )


def _run_turns(machine: LearningMachine, turns: list[tuple[str, str]]) -> None:
    for i, (said, answer) in enumerate(turns):
        machine.process(
            [{"role": "user", "content": said}, {"role": "assistant", "content": answer}],
            user_id="alice",
            session_id="s1",
            now=T0 + timedelta(minutes=i),
        )
    machine.wait_idle(timeout=120)


def test_a_hundred_turns_answered_got_it_survive_curation(db: Db) -> None:
    machine = _machine(db)
    said = [f"Note {i}: {TOPICS[i % len(TOPICS)]}" for i in range(100)]
    _run_turns(machine, [(s, "Got it.") for s in said])
    assert len(_episodes(db)) == 200

    report = machine.service.curate(now=T0 + timedelta(days=1))

    kept = _episodes(db)
    assert sorted(t for sp, t in kept if sp == "alice") == sorted(said)
    assert sum(1 for sp, t in kept if sp == "assistant" and t == "Got it.") == 100
    assert [a for a in report.actions if a.learning_type == "episode"] == []


def test_realistic_one_sentence_answers_survive_curation(db: Db) -> None:
    machine = _machine(db)
    turns = [
        (TOPICS[0], "Noted: the weekly standup is now on Tuesdays at ten."),
        (TOPICS[1], "Understood, staging runs on the falcon database."),
        (TOPICS[2], "Thanks, I'll route billing questions to Priya."),
        (TOPICS[3], "Got it, releases go out every second Thursday."),
        (TOPICS[4], "Sure, short answers with code first from now on."),
        (TOPICS[5], "Okay, the on-call rotation changes on Mondays."),
        (TOPICS[6], "Noted that the v1 search endpoint is deprecated."),
        (TOPICS[7], "Thanks, your manager is Tomasz Nowak."),
        (TOPICS[8], "I'll remember the payments design review is on the 14th."),
        (TOPICS[9], "Understood, invoices live in the eu-west bucket."),
        ("ok", "Great."),
        ("ok", "Great."),
        ("ok", "Anything else?"),
        ("thanks", "You're welcome."),
        ("thanks", "You're welcome."),
    ]
    _run_turns(machine, turns)
    before = sorted(_episodes(db))
    assert len(before) == 2 * len(turns)

    machine.service.curate(now=T0 + timedelta(days=1))

    assert sorted(_episodes(db)) == before  # every "ok" and every answer is still there


def test_the_documented_episode_policy_applies_to_learning_type_episode() -> None:
    policy = Curator(db=None, embedder=None).policy("episode")  # type: ignore[arg-type]
    assert policy.half_life_days == 60.0
    assert policy.max_per_scope == 2_000
    assert policy.deduplicate is False
    assert CurationPolicy().deduplicates("episode") is False  # verbatim whatever the policy
    assert CurationPolicy().deduplicates("learned_knowledge") is True
    assert DEFAULT_POLICIES["episode"] is policy
    assert "episodic_memory" not in DEFAULT_POLICIES  # a store slot, not a learning type


def test_a_policy_keyed_by_a_store_slot_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'episode'"):
        Curator(db=None, policies={"episodic_memory": CurationPolicy()})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'decision'"):
        Curator(db=None, policies={"decision_log": CurationPolicy()})  # type: ignore[arg-type]


async def test_decay_archives_old_unused_episodes(db: Db) -> None:
    machine = _machine(db)
    store = machine.stores["episodic_memory"]
    old = [
        Episode(speaker="alice", text=f"old remark {i}", at=T0, session_id="s0") for i in range(3)
    ]
    await store.aadd_episodes(old, user_id="alice")  # type: ignore[attr-defined]
    # 60-day half-life, archived below 0.05: about 260 days without use.
    report = await machine.service.acurate(now=datetime.now(UTC) + timedelta(days=300))
    assert len([a for a in report.archived if a.learning_type == "episode"]) == 3
    assert _episodes(db) == []


async def test_the_cap_archives_episodes_beyond_it_and_merges_none(db: Db) -> None:
    machine = _machine(db)
    store = machine.stores["episodic_memory"]
    now = datetime.now(UTC)
    said = [
        Episode(speaker="alice", text="ok", at=now - timedelta(minutes=8 - i), session_id="s")
        for i in range(8)
    ]
    await store.aadd_episodes(said, user_id="alice")  # type: ignore[attr-defined]
    capped = Curator(
        db=db,
        embedder=HashEmbedder(),
        # A policy of one's own that does not say deduplicate=False still keeps them verbatim.
        policies={"episode": CurationPolicy(half_life_days=60.0, max_per_scope=5)},
    )
    report = await capped.acurate(now=now + timedelta(days=2))
    assert len(report.archived) == 3
    assert report.merged == []
    assert _episodes(db) == [("alice", "ok")] * 5
    # With the default cap (2,000) the same eight "ok"s are all kept.
    assert (await machine.service.acurate(now=now + timedelta(days=2))).actions == []
