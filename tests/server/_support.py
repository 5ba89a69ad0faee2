"""What the server tests share: a machine with every store and mode, keys, seeded users, a live
server on 127.0.0.1.

Alice's data all carries the word ``quokka`` (and ``zebracorn``): a response to anyone else that
contains ``quokka`` leaked her data.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from learning_machines import LearningMachine, LearningMode
from learning_machines._demo import demo_extraction
from learning_machines.db import Db, SqliteDb
from learning_machines.embedders import HashEmbedder
from learning_machines.server import ApiKey, Gateway, KeyRing, Principal, Role, hash_key
from learning_machines.server.http import create_app
from learning_machines.stores import (
    DecisionLogConfig,
    EntityMemoryConfig,
    EpisodicMemoryConfig,
    LearnedKnowledgeConfig,
    SessionContextConfig,
    UserProfileConfig,
)
from learning_machines.testing import ScriptedModel

MARKER = "quokka"

KEYS = {
    "alice": "lm_test_alice_key",
    "bob": "lm_test_bob_key",
    "carol": "lm_test_carol_reviewer",
    "root": "lm_test_root_admin",
    "Alice": "lm_test_reviewer_named_Alice",
}
ROLES = {
    "alice": Role.USER,
    "bob": Role.USER,
    "carol": Role.REVIEWER,
    "root": Role.ADMIN,
    "Alice": Role.REVIEWER,
}


def keyring() -> KeyRing:
    """Two users, a reviewer, an admin, and a reviewer whose name is alice's in other case."""
    return KeyRing(
        ApiKey(name=name, role=ROLES[name], sha256=hash_key(key)) for name, key in KEYS.items()
    )


def principal(name: str) -> Principal:
    """The principal of one of :data:`KEYS`."""
    return Principal(name=name, role=ROLES[name])


def auth(name: str) -> dict[str, str]:
    """The Authorization header of one of :data:`KEYS`."""
    return {"Authorization": f"Bearer {KEYS[name]}"}


def make_machine(db: Db | None, *, background: bool = False) -> LearningMachine:
    """Every store, every mode: profile HITL, knowledge PROPOSE (private), entities AGENTIC;
    the decision log (AGENTIC: no model) and feedback."""
    return LearningMachine(
        db=db,
        model=ScriptedModel(extraction=demo_extraction),
        embedder=HashEmbedder(),
        user_profile=UserProfileConfig(mode=LearningMode.HITL),
        session_context=SessionContextConfig(),
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.PROPOSE, namespace="user"),
        entity_memory=EntityMemoryConfig(mode=LearningMode.AGENTIC),
        episodic_memory=EpisodicMemoryConfig(),
        decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC),
        feedback=True,
        background=background,
    )


def machine() -> LearningMachine:
    """The machine ``learning-machines mcp --machine tests.server._support:machine`` serves
    (the command gives it its ``--db``)."""
    return make_machine(None, background=True)


def proposal_id(text: str) -> str:
    """The proposal id in a tool's answer."""
    match = re.search(r"proposed as (\w+)", text)
    assert match, text
    return match.group(1)


@dataclass
class Seeded:
    """Ids of what a seeded user has."""

    user: str
    learning_ids: list[str] = field(default_factory=list)
    entity_ids: list[str] = field(default_factory=list)
    pending_proposals: list[str] = field(default_factory=list)
    open_turn: str = ""
    finished_turn: str = ""
    session_id: str = ""


async def seed(gateway: Gateway, user: str, word: str) -> Seeded:
    """Give ``user`` a profile (HITL, approved by carol), knowledge (PROPOSE, approved), an
    entity graph, episodes, a session, a finished turn they rated (its decision record and
    signal), pending proposals of both modes, an open turn.

    Every text carries ``word``.
    """
    me = principal(user)
    out = Seeded(user=user)
    session = f"{user}-session"
    turn = await gateway.abegin(me, f"I'm {user} from {word} labs.", session_id=session)
    tools = turn.tools
    profile = proposal_id(
        await tools.acall(
            "update_user_profile", {"name": f"{user} {word}", "company": f"{word} labs"}
        )
    )
    knowledge = proposal_id(
        await tools.acall(
            "save_learning",
            {"title": f"{word} deploys", "learning": f"Deploy {word} services on Fridays."},
        )
    )
    await tools.acall(
        "save_entity",
        {"name": f"{word} Labs", "entity_type": "company", "description": f"{word} makers"},
    )
    await tools.acall("save_entity_fact", {"entity": f"{word} Labs", "fact": f"uses {word}DB"})
    await tools.acall(
        "save_entity_relation",
        {"subject": f"{word} Ceo", "relation": "is CEO of", "object": f"{word} Labs"},
    )
    await tools.acall(
        "save_entity_event",
        {"entity": f"{word} Labs", "event": f"launched {word} v2", "date": "2025-01-15"},
    )
    await gateway.afinish(
        me,
        turn.context.turn_id,
        [
            {"role": "user", "content": f"I'm {user} from {word} labs."},
            {"role": "assistant", "content": f"Noted, {word}."},
        ],
    )
    out.finished_turn = turn.context.turn_id
    await gateway.afeedback(me, out.finished_turn, score=1, comment=f"{word} answer was right")
    await gateway.adecide(principal("carol"), profile, decision="approve")
    await gateway.adecide(me, knowledge, decision="approve")
    # Still waiting: one of each mode.
    later = await gateway.abegin(me, f"More about {word}.", session_id=session)
    out.pending_proposals.append(
        proposal_id(await later.tools.acall("update_user_profile", {"team": f"{word} team"}))
    )
    out.pending_proposals.append(
        proposal_id(
            await later.tools.acall(
                "save_learning",
                {"title": f"{word} rule", "learning": f"Never page {word} at night."},
            )
        )
    )
    out.open_turn = later.context.turn_id
    out.session_id = session
    await gateway.machine.await_idle()
    rows = await gateway.alearnings(me, limit=None)
    out.learning_ids = [r.id for r in rows]
    out.entity_ids = [r.id for r in rows if r.learning_type == "entity"]
    return out


def seed_sync(gateway: Gateway, user: str, word: str) -> Seeded:
    """:func:`seed` from sync code."""
    from learning_machines._sync import run_sync

    return run_sync(seed(gateway, user, word))


class LiveServer:
    """The app served by uvicorn in a thread, on 127.0.0.1 and a free port."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            threading.Event().wait(0.01)
        assert self.server.started, "uvicorn did not start"
        return self

    @property
    def url(self) -> str:
        """Base URL (http://127.0.0.1:PORT)."""
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def live(db: Db, *, background: bool = False) -> Iterator[tuple[LiveServer, Gateway]]:
    """A live server over a fresh machine on ``db``."""
    learning = make_machine(db, background=background)
    app = create_app(learning, keys=keyring())
    try:
        with LiveServer(app) as server:
            yield server, app.state.gateway
    finally:
        learning.close()


def sqlite(tmp_path: Path) -> SqliteDb:
    """A SQLite db in ``tmp_path``."""
    return SqliteDb(tmp_path / "server.db")


def run(coro: Any) -> Any:
    """Run a coroutine from sync test code on a fresh loop."""
    return asyncio.run(coro)


def noisy_machine() -> LearningMachine:
    """:func:`machine`, after printing to stdout (as a user's module might)."""
    import os

    print("NOISE from the user's module")
    os.write(1, b"NOISE from native code\n")
    return machine()
