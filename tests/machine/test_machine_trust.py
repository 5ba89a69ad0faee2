"""Trust items that live in the machine: exit, namespaces, loud failures, limits, partial turns."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from learning_machines import (
    Agent,
    ConfigurationError,
    LearningFailedError,
    LearningMachine,
)
from learning_machines._demo import demo_extraction
from learning_machines.db import (
    Db,
    LearningFilter,
    ListLearnings,
    ListWork,
    SqliteDb,
)
from learning_machines.embedders import BatchingEmbedder, HashEmbedder
from learning_machines.stores import (
    EntityMemoryConfig,
    EpisodicMemoryConfig,
    LearnedKnowledgeConfig,
)
from learning_machines.testing import ScriptedModel

ROOT = Path(__file__).resolve().parents[2]


def _db_url(db: Db, tmp_path: Path) -> str:
    """A URL another process can open: the SQLite file, or a fresh PostgreSQL database."""
    if isinstance(db, SqliteDb):
        return str(tmp_path / "script.db")
    from tests._pg import fresh_database_uri

    return fresh_database_uri()


def _open(url: str) -> Db:
    if url.startswith("postgresql"):
        from learning_machines.db import PostgresDb

        return PostgresDb(url)
    return SqliteDb(url)


_QUICKSTART = """
import sys
sys.path.insert(0, {root!r})
from learning_machines import Agent, LearningMachine
from learning_machines.db import PostgresDb, SqliteDb
from learning_machines.embedders import BatchingEmbedder, HashEmbedder
from learning_machines.testing import ScriptedModel
from learning_machines._demo import demo_extraction

url = {url!r}
db = PostgresDb(url) if url.startswith("postgresql") else SqliteDb(url)
model = ScriptedModel(answers="Hi Alice.", extraction=demo_extraction,
                      extraction_delay={delay})
agent = Agent(model=model, db=db,
              learning=LearningMachine(user_profile=True, embedder=HashEmbedder(),
                                       drain_on_exit={drain}))
agent.run(
    "I'm Alice, I lead the data platform team. Keep answers short.",
    user_id="alice",
    session_id="s1",
)
print("answered", flush=True)
"""


def _run_script(url: str, *, delay: float, drain: float) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(_QUICKSTART).format(root=str(ROOT), url=url, delay=delay, drain=drain)
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_a_script_that_exits_right_after_its_turn_still_learns(db: Db, tmp_path: Path) -> None:
    url = _db_url(db, tmp_path)
    done = _run_script(url, delay=0.2, drain=10)
    assert done.returncode == 0, done.stderr
    assert "answered" in done.stdout
    with _open(url) as reopened:
        rows = reopened.run(
            ListLearnings(filter=LearningFilter(namespaces=("user",), reader_user_id="alice"))
        )
        assert [r.content.get("name") for r in rows] == ["Alice"]
        assert reopened.run(ListWork(statuses=("pending", "running"))) == []


def test_a_script_that_exits_mid_extraction_hands_the_work_back(db: Db, tmp_path: Path) -> None:
    url = _db_url(db, tmp_path)
    done = _run_script(url, delay=30, drain=0.5)
    assert done.returncode == 0, done.stderr
    with _open(url) as reopened:
        (item,) = [w for w in reopened.run(ListWork()) if w.kind.startswith("extract")]
        # Not stuck as "running" for a 300 s lease: another process can take it at once.
        assert item.status == "pending"
        assert item.locked_by is None
        assert item.attempts == 0
        machine = LearningMachine(
            db=reopened,
            model=ScriptedModel(extraction=demo_extraction),
            embedder=HashEmbedder(),
            user_profile=True,
            background=False,
        )
        machine.wait_idle(timeout=30)
        assert "Alice" in machine.build_context(message="hi", user_id="alice").text


def test_a_worker_with_another_namespace_parks_the_turn_instead_of_writing_elsewhere(
    db: Db,
) -> None:
    app = LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        learned_knowledge=LearnedKnowledgeConfig(namespace="engineering"),
        background=False,
    )
    app.process("Lesson learned: cache DNS lookups in workers.", user_id="a", session_id="s")
    default_worker = LearningMachine(  # what `learning-machines worker --db ...` used to build
        db=db,
        model=ScriptedModel(extraction=demo_extraction),
        embedder=HashEmbedder(),
        learned_knowledge=True,
        background=False,
    )
    default_worker.wait_idle(timeout=5)  # an in-process worker leaves other machines' work alone
    assert len(default_worker.service.pending(statuses=("pending",))) == 1
    default_worker.worker.kinds = None  # a dedicated worker (the CLI's) takes every kind
    with pytest.raises(LearningFailedError, match="namespace 'engineering'"):
        default_worker.wait_idle(timeout=30)
    everything = db.run(ListLearnings(filter=LearningFilter(), limit=None))
    assert everything == []  # nothing reached 'global'
    (parked,) = default_worker.service.failures()
    assert parked.attempts == 1


def test_failures_are_logged_and_wait_idle_raises_with_the_cause(
    db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    model = ScriptedModel(extraction=demo_extraction, fail_extractions=10)
    machine = LearningMachine(
        db=db,
        model=model,
        embedder=HashEmbedder(),
        user_profile=True,
        max_attempts=2,
        retry_backoff=0.01,
        background=False,
    )
    machine.process("I'm Alice.", user_id="alice", session_id="s")
    with (
        caplog.at_level(logging.WARNING, logger="learning_machines"),
        pytest.raises(LearningFailedError, match="scripted extraction failure") as raised,
    ):
        machine.wait_idle(timeout=30)
    assert raised.value.failures[0].status == "failed"
    attempts = [r for r in caplog.records if "failed (attempt" in r.getMessage()]
    assert [r.levelname for r in attempts] == ["WARNING", "ERROR"]
    machine.wait_idle(timeout=30)  # reported once; nothing new since


def test_model_strings_are_checked_when_the_machine_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    db = SqliteDb(":memory:")
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        LearningMachine(db=db, model="openai:gpt-4.1-mini", user_profile=True)
    with pytest.raises(ConfigurationError, match="Unknown model"):
        LearningMachine(db=db, model="nosuchprovider:model", user_profile=True)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        Agent(model="openai:gpt-4.1-mini", db=db, learning=True)
    monkeypatch.setenv("OPENAI_API_KEY", "")
    with pytest.raises(ConfigurationError, match="Missing credentials"):
        LearningMachine(db=db, model="openai:gpt-4.1-mini", user_profile=True)
    # A machine that only records (a separate worker learns) needs no model at all.
    LearningMachine(db=db, user_profile=True, background=False)


def test_a_missing_provider_sdk_names_the_extra_to_install() -> None:
    try:
        import anthropic  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the anthropic SDK is installed here")
    with pytest.raises(ConfigurationError, match=r"learning-machines\[anthropic\]"):
        LearningMachine(
            db=SqliteDb(":memory:"), model="anthropic:claude-3-5-haiku-latest", user_profile=True
        )


def _flood(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "entity_memory": {
            "entities": [{"name": f"Entity {i}", "entity_type": "thing"} for i in range(2_000)],
            "facts": [{"entity": "Acme", "fact": "x" * 5_000_000}],
        }
    }


def test_huge_extraction_output_is_cut_to_the_store_limits(
    db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    machine = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=_flood),
        embedder=HashEmbedder(),
        entity_memory=EntityMemoryConfig(),
        background=False,
    )
    machine.process("Acme has many entities.", user_id="u", session_id="s")
    with caplog.at_level(logging.WARNING, logger="learning_machines"):
        machine.wait_idle(timeout=120)
    rows = db.run(
        ListLearnings(filter=LearningFilter(namespaces=("user",), reader_user_id="u"), limit=None)
    )
    entities = [r for r in rows if r.learning_type == "entity"]
    facts = [r for r in rows if r.learning_type == "entity_fact"]
    assert len(entities) <= 51  # 50 from the list, and Acme for its fact
    assert facts
    assert all(len(f.search_text) <= 4_100 for f in facts)
    notes = " ".join(r.getMessage() for r in caplog.records)
    assert "2,000 items cut to 50" in notes
    assert "5,000,000 characters cut" in notes


def test_one_store_failing_keeps_the_rest_of_the_turn(db: Db) -> None:
    class Broken(Exception):
        pass

    machine = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=demo_extraction),
        embedder=HashEmbedder(),
        user_profile=True,
        entity_memory=True,
        episodic_memory=EpisodicMemoryConfig(),
        max_attempts=1,
        background=False,
    )

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise Broken("entity store is down")

    machine.stores["entity_memory"].aapply_extraction = broken
    machine.process(
        [
            {"role": "user", "content": "I'm Alice Chen. Acme uses PostgreSQL."},
            {"role": "assistant", "content": "Noted."},
        ],
        user_id="alice",
        session_id="s",
    )
    with pytest.raises(LearningFailedError, match="entity_memory"):
        machine.wait_idle(timeout=60)
    rows = db.run(
        ListLearnings(
            filter=LearningFilter(namespaces=("user",), reader_user_id="alice"), limit=None
        )
    )
    kinds = {r.learning_type for r in rows}
    assert {"user_profile", "episode"} <= kinds  # the profile and the verbatim turn were kept
    (failed,) = machine.service.failures()
    assert failed.payload["done"] == ["episodic_memory", "user_profile"]
    assert "entity store is down" in failed.payload["errors"]["entity_memory"]


def test_closed_means_closed_on_both_backends(db: Db) -> None:
    assert not db.closed
    db.close()
    assert db.closed


def test_extraction_sees_known_facts_even_when_the_message_asks_about_news(db: Db) -> None:
    model = ScriptedModel(extraction=demo_extraction)
    machine = LearningMachine(
        db=db, model=model, embedder=HashEmbedder(), entity_memory=True, background=False
    )
    machine.process("Acme runs billing on MySQL 5.7.", user_id="u", session_id="s")
    machine.wait_idle(timeout=60)
    machine.process(
        "News: recently Acme moved billing to PostgreSQL 16.", user_id="u", session_id="s"
    )
    machine.wait_idle(timeout=60)
    prompt = [c.prompt for c in model.calls if c.kind == "extraction"][-1]
    assert "runs billing on MySQL 5.7" in prompt  # so the model can say what it replaces


def test_the_extraction_limits_are_set_on_the_machine(
    db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    machine = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=_flood),
        embedder=HashEmbedder(),
        entity_memory=EntityMemoryConfig(),
        background=False,
        max_items_per_store=5,
        max_text_chars=200,
    )
    machine.process("Acme has many entities.", user_id="u", session_id="s")
    with caplog.at_level(logging.WARNING, logger="learning_machines"):
        machine.wait_idle(timeout=120)
    rows = db.run(
        ListLearnings(filter=LearningFilter(namespaces=("user",), reader_user_id="u"), limit=None)
    )
    assert len([r for r in rows if r.learning_type == "entity"]) <= 6  # 5, and Acme for its fact
    facts = [r for r in rows if r.learning_type == "entity_fact"]
    assert facts
    assert all(len(f.search_text) <= 300 for f in facts)
    assert "2,000 items cut to 5" in " ".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"max_items_per_store": 0}, "max_items_per_store"),
        ({"max_text_chars": "lots"}, "max_text_chars"),
        ({"worker_concurrency": 0}, "worker_concurrency"),
    ],
)
def test_confused_extraction_limits_are_refused_naming_the_argument(
    kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        LearningMachine(user_profile=True, **kwargs)


def _profile_and_stray_key(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_profile": {"name": "Alice"},
        "project_notes": {"notes": ["the learning model invented this section"]},
    }


def test_an_extraction_under_a_key_no_store_has_is_logged_and_the_rest_is_kept(
    db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    machine = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=_profile_and_stray_key),
        embedder=HashEmbedder(),
        user_profile=True,
        background=False,
    )
    machine.process("I'm Alice.", user_id="u", session_id="s")
    with caplog.at_level(logging.WARNING, logger="learning_machines"):
        machine.wait_idle(timeout=60)
    notes = " ".join(r.getMessage() for r in caplog.records)
    assert "unknown key(s) project_notes" in notes
    assert "user_profile" in notes  # names the keys that would have been read
    profile = machine.service.learnings(user_id="u", learning_type="user_profile")
    assert profile
    assert profile[0].content.get("name") == "Alice"


def _one_preference(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    import re

    numbers = re.findall(r"user: Remember item (\d+)", prompt)
    return {"user_profile": {"preferences": [f"likes item {numbers[-1]}"]}} if numbers else {}


def test_the_background_worker_and_wait_idle_in_one_process_lose_no_update(db: Db) -> None:
    # process() wakes the background runner while wait_idle() runs a pass of its own: two
    # workers of one process on one profile used to overwrite each other's read-modify-write.
    machine = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=_one_preference),
        embedder=HashEmbedder(),
        user_profile=True,
        retry_backoff=0.05,
        curate_every_turns=None,
    )
    try:
        for n in range(100):
            machine.process(f"Remember item {n}.", user_id="alice", session_id=f"s{n % 7}")
            if n % 10 == 9:
                machine.wait_idle(timeout=120)
        machine.wait_idle(timeout=120)
    finally:
        machine.close()
    (profile,) = machine.service.learnings(user_id="alice", learning_type="user_profile")
    kept = set(profile.content.get("preferences", []))
    assert kept == {f"likes item {n}" for n in range(100)}


class _Overlapping(ScriptedModel):
    """Counts extraction calls in flight at once."""

    def __init__(self) -> None:
        super().__init__(extraction=demo_extraction)
        self.in_flight = 0
        self.most = 0

    async def _respond(self, messages: list[Any], info: Any) -> Any:
        if not info.output_tools:
            return await super()._respond(messages, info)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.05)
            return await super()._respond(messages, info)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize(("concurrency", "most"), [(2, 2), (None, 6)])
def test_worker_concurrency_bounds_the_turns_learned_from_at_once(
    db: Db, concurrency: int | None, most: int
) -> None:
    model = _Overlapping()
    extra = {} if concurrency is None else {"worker_concurrency": concurrency}
    machine = LearningMachine(
        db=db, model=model, embedder=HashEmbedder(), user_profile=True, background=False, **extra
    )
    for i in range(6):
        machine.process(
            [{"role": "user", "content": f"I'm user {i}, I work at Acme."}], user_id=f"u{i}"
        )
    machine.wait_idle()
    assert model.extraction_calls == 6
    assert model.most == most  # the default learns from all six users' turns at once


def test_forgetting_a_user_empties_the_embedders_memory_of_texts(db: Db) -> None:
    machine = LearningMachine(
        db=db,
        model=ScriptedModel(extraction=demo_extraction),
        embedder=HashEmbedder(),
        episodic_memory=True,
        learned_knowledge=True,
        background=False,
    )
    machine.process(
        [{"role": "user", "content": "My door code is 4471, keep it private."}],
        user_id="alice",
        session_id="s1",
    )
    machine.wait_idle()
    embedder = machine.embedder
    assert isinstance(embedder, BatchingEmbedder)
    assert embedder.cached_texts > 0  # the worker embedded alice's words
    machine.service.forget("alice")
    assert embedder.cached_texts == 0
