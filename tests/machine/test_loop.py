"""The learning loop: background extraction that never blocks and never loses a turn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from learning_machines import (
    Agent,
    ConfigurationError,
    LearningFailedError,
    LearningMachine,
    LearningStore,
    ValidationError,
)
from learning_machines.db import Db, SqliteDb
from learning_machines.embedders import HashEmbedder
from learning_machines.testing import ScriptedModel

from ._stores import NoteStore, TranscriptStore, notes_extraction

ROOT = Path(__file__).resolve().parents[2]


def machine_with(*stores: NoteStore, **kwargs: object) -> LearningMachine:
    return LearningMachine(
        custom_stores={store.learning_type: store for store in stores},
        embedder=HashEmbedder(),
        **kwargs,  # type: ignore[arg-type]
    )


def test_custom_store_satisfies_the_protocol() -> None:
    assert isinstance(NoteStore("a"), LearningStore)
    assert isinstance(TranscriptStore(), LearningStore)


def test_run_returns_before_slow_extraction_and_learning_appears_after_wait_idle(db: Db) -> None:
    store = NoteStore("notes")
    model = ScriptedModel(answers="Hello Alice.", extraction=notes_extraction, extraction_delay=1.5)
    agent = Agent(model=model, db=db, learning=machine_with(store))

    result = agent.run("I'm Alice and I like tea.", user_id="alice", session_id="s1")

    assert result.text == "Hello Alice."
    # The answer is back while the extraction model is still working: nothing learned yet.
    assert store.notes("alice") == []
    assert result.learning_work is not None
    agent.wait_idle(timeout=30)
    assert store.notes("alice") == ["I'm Alice and I like tea."]
    assert model.extraction_calls == 1


def test_extractor_sees_the_users_message_and_the_answer_and_tool_results(db: Db) -> None:
    store = NoteStore("notes")

    def lookup_weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    model = ScriptedModel(
        answers="It is sunny.",
        tool_calls=[("lookup_weather", {"city": "Oslo"})],
        extraction=notes_extraction,
    )
    agent = Agent(model=model, db=db, learning=machine_with(store), tools=[lookup_weather])
    result = agent.run("Weather in Oslo?", user_id="u", session_id="s")
    agent.wait_idle(timeout=30)

    assert [call.name for call in result.tool_calls] == ["lookup_weather"]
    assert result.tool_calls[0].result == "sunny in Oslo"
    prompt = next(call.prompt for call in model.calls if call.kind == "extraction")
    assert "user: Weather in Oslo?" in prompt
    assert "assistant: It is sunny." in prompt
    assert "sunny in Oslo" in prompt


def test_one_extraction_call_per_turn_for_all_describing_stores(db: Db) -> None:
    stores = [NoteStore(name) for name in ("a", "b", "c", "d")]
    model = ScriptedModel(answers="ok", extraction=notes_extraction)
    agent = Agent(model=model, db=db, learning=machine_with(*stores))
    for turn in range(10):
        agent.run(f"fact number {turn}", user_id="u", session_id="s")
    agent.wait_idle(timeout=60)

    assert model.extraction_calls == 10
    for store in stores:
        assert len(store.notes("u")) == 10
    assert agent.machine is not None
    assert agent.machine.usage.calls == 10


def test_store_without_description_gets_its_own_process_call_with_custom_context(db: Db) -> None:
    transcript = TranscriptStore()
    model = ScriptedModel(answers="Sure.")
    machine = LearningMachine(custom_stores={"t": transcript}, embedder=HashEmbedder())
    agent = Agent(model=model, db=db, learning=machine)
    agent.run("Plan the launch.", user_id="u1", session_id="s1", project_id="apollo")
    agent.wait_idle(timeout=30)

    assert model.extraction_calls == 0
    ((messages, context),) = transcript.seen
    assert ("user", "Plan the launch.") in messages
    assert ("assistant", "Sure.") in messages
    assert context["project_id"] == "apollo"
    assert context["user_id"] == "u1"


def test_session_history_is_kept_in_the_db(tmp_path: Path) -> None:
    seen_prompts: list[int] = []

    def answer(prompt: str, info: object) -> str:
        return "ack"

    model = ScriptedModel(answers=answer)
    path = tmp_path / "agent.db"
    Agent(model=model, db=SqliteDb(path)).run("first", user_id="u", session_id="s")
    captured: list[list[str]] = []

    from pydantic_ai import messages as pa
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def record(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        texts = [
            part.content
            for m in messages
            if isinstance(m, pa.ModelRequest)
            for part in m.parts
            if isinstance(part, pa.UserPromptPart) and isinstance(part.content, str)
        ]
        captured.append(texts)
        return pa.ModelResponse(parts=[pa.TextPart("second answer")])

    agent = Agent(model=FunctionModel(record), db=SqliteDb(path))
    agent.run("second", user_id="u", session_id="s")
    agent.run("other user", user_id="v", session_id="s")
    assert captured[0] == ["first", "second"]
    # Another user guessing the same session id gets none of its history.
    assert captured[1] == ["other user"]
    assert not seen_prompts


def test_model_failures_are_retried_then_parked_with_the_error(db: Db) -> None:
    store = NoteStore("notes")
    model = ScriptedModel(answers="ok", extraction=notes_extraction, fail_extractions=10)
    machine = machine_with(store, max_attempts=2, retry_backoff=0.01)
    agent = Agent(model=model, db=db, learning=machine)
    agent.run("remember me", user_id="u", session_id="s")
    with pytest.raises(LearningFailedError, match="scripted extraction failure"):
        agent.wait_idle(timeout=30)
    agent.wait_idle(timeout=30)  # each failure is reported once

    failures = machine.service.failures()
    assert len(failures) == 1
    assert failures[0].attempts == 2
    assert "scripted extraction failure" in (failures[0].last_error or "")
    assert store.notes("u") == []


def test_invalid_model_output_is_recorded_raw_and_nothing_learned_is_touched(db: Db) -> None:
    store = NoteStore("notes")
    good = ScriptedModel(answers="ok", extraction=notes_extraction)
    machine = machine_with(store, max_attempts=1)
    Agent(model=good, db=db, learning=machine).run("keep this", user_id="u", session_id="s")
    machine.wait_idle(timeout=30)

    bad = ScriptedModel(answers="ok", extraction={"notes": {"notes": "not a list"}})
    machine.model = bad
    Agent(model=bad, db=db, learning=machine).run("break", user_id="u", session_id="s")
    machine.wait_idle(timeout=30, raise_on_failure=False)

    (failure,) = machine.service.failures()
    assert failure.raw_output is not None
    assert "not a list" in failure.raw_output
    assert "did not validate" in (failure.last_error or "")
    assert store.notes("u") == ["keep this"]


def test_a_retry_resumes_and_never_applies_a_turn_twice(db: Db) -> None:
    class FlakyStore(NoteStore):
        fail_once = True

        async def aapply_extraction(self, data: object, **context: object) -> None:
            if self.fail_once:
                self.fail_once = False
                raise RuntimeError("disk on fire")
            await super().aapply_extraction(data, **context)  # type: ignore[arg-type]

    first, flaky = NoteStore("first"), FlakyStore("second")
    model = ScriptedModel(answers="ok", extraction=notes_extraction)
    machine = machine_with(first, flaky, retry_backoff=0.01)
    Agent(model=model, db=db, learning=machine).run("once", user_id="u", session_id="s")
    machine.wait_idle(timeout=30)

    assert model.extraction_calls == 1  # the saved output was reused on retry
    assert first.notes("u") == ["once"]  # applied once, not again on retry
    assert flaky.notes("u") == ["once"]
    assert len(first.applied) == 1


def test_killed_process_leaves_pending_work_that_a_fresh_process_finishes(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from learning_machines import Agent, LearningMachine
        from learning_machines.db import SqliteDb
        from learning_machines.embedders import HashEmbedder
        from learning_machines.testing import ScriptedModel
        from tests.machine._stores import NoteStore, notes_extraction

        model = ScriptedModel(answers="ok", extraction=notes_extraction, extraction_delay=60)
        machine = LearningMachine(custom_stores={{"notes": NoteStore("notes")}},
                                  embedder=HashEmbedder(), lease_seconds=1)
        agent = Agent(model=model, db=SqliteDb({str(path)!r}), learning=machine)
        print(agent.run("I was said before the crash", user_id="u", session_id="s").text,
              flush=True)
        import time; time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ok"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    store = NoteStore("notes")
    model = ScriptedModel(answers="ok", extraction=notes_extraction)
    machine = LearningMachine(
        db=SqliteDb(path),
        custom_stores={"notes": store},
        embedder=HashEmbedder(),
        model=model,
        lease_seconds=1,
    )
    assert len(machine.service.pending(statuses=("pending", "running"))) == 1
    machine.wait_idle(timeout=30)
    assert store.notes("u") == ["I was said before the crash"]
    assert model.extraction_calls == 1


def test_machine_works_without_our_agent(db: Db) -> None:
    store = NoteStore("notes")
    model = ScriptedModel(extraction=notes_extraction)
    machine = LearningMachine(
        db=db,
        model=model,
        custom_stores={"notes": store},
        embedder=HashEmbedder(),
        background=False,
    )
    machine.process(
        [{"role": "user", "content": "I use vim"}, {"role": "assistant", "content": "Noted"}],
        user_id="u",
        session_id="s",
    )
    assert store.notes("u") == []  # nothing runs in this process: background=False
    machine.wait_idle(timeout=30)
    context = machine.build_context(message="editor?", user_id="u", session_id="s")
    assert "- I use vim" in context.text
    assert context.recalled["notes"] == ["I use vim"]


def test_sync_stores_do_not_block_the_event_loop(db: Db) -> None:
    started = threading.Event()
    release = threading.Event()

    class SlowRecall(TranscriptStore):
        def recall(self, **context: object) -> int:
            started.set()
            release.wait(10)
            return 0

    machine = LearningMachine(
        db=db, custom_stores={"slow": SlowRecall()}, embedder=HashEmbedder(), background=False
    )

    import asyncio

    async def main() -> bool:
        task = asyncio.create_task(machine.abuild_context(message="hi", user_id="u"))
        # The loop keeps running while the sync recall blocks in its worker thread.
        for _ in range(200):
            if started.is_set():
                break
            await asyncio.sleep(0.01)
        ticked = started.is_set()
        release.set()
        await task
        return ticked

    assert asyncio.run(main())


def test_misconfiguration_fails_when_built() -> None:
    with pytest.raises(ConfigurationError, match="needs a db"):
        Agent(model=ScriptedModel(), learning=machine_with(NoteStore("n")))

    class NotAStore:
        learning_type = "x"

        def recall(self, **context: object) -> None:
            return None

    with pytest.raises(ConfigurationError, match="lacks process, build_context, get_tools"):
        LearningMachine(custom_stores={"bad": NotAStore()})

    with pytest.raises(ConfigurationError, match="both have learning_type"):
        LearningMachine(custom_stores={"a": NoteStore("same"), "b": NoteStore("same")})

    with pytest.raises(ConfigurationError, match="need a model"):
        LearningMachine(db=SqliteDb(":memory:"), custom_stores={"n": NoteStore("n")})


def test_missing_context_key_and_unserialisable_context_are_loud(db: Db) -> None:
    class NeedsUser(NoteStore):
        required_context = ("user_id",)

    machine = machine_with(NeedsUser("n"), db=db, model=ScriptedModel())
    with pytest.raises(ConfigurationError, match="needs user_id"):
        machine.build_context(message="hi")
    with pytest.raises(ValidationError, match="not JSON-serialisable"):
        machine.process("hi", user_id="u", session_id="s", thing=object())
