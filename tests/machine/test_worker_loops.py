"""Background learning and ``await_idle`` called from the application's own event loop.

An async application (``asyncio.run(main())``, a FastAPI server) answers turns on its own loop,
while the machine's background runner learns on the library's loop (the "portal" thread). Both
drive the same worker; its pass lock once belonged to whichever loop touched it first, so
``await machine.await_idle()`` from the application's loop waited forever for a lock released
on the other loop (found by ``learning-machines bench reliability``: 50 turns, then a hang).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from learning_machines import Agent, LearningMachine
from learning_machines.db import CountWork, Db
from learning_machines.embedders import HashEmbedder
from learning_machines.testing import ScriptedModel

USERS = 5
TURNS = 10


def _preference(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The turn's ``[pref-…]`` token as a new preference (the state section is ignored)."""
    turn = prompt.split("# Memory sections", 1)[0]
    found = re.search(r"\[(pref-[\w-]+)\]", turn)
    return {"user_profile": {"preferences": [found.group(1)] if found else []}}


async def test_await_idle_on_the_apps_loop_while_the_background_runner_learns(db: Db) -> None:
    model = ScriptedModel(answers="Noted.", extraction=_preference, extraction_delay=0.01)
    machine = LearningMachine(user_profile=True, embedder=HashEmbedder())
    agent = Agent(model=model, db=db, learning=machine)

    async def talk(user: int) -> None:
        for k in range(TURNS):
            await agent.arun(
                f"Please remember [pref-{user}-{k}].", user_id=f"u{user}", session_id=f"s{user}"
            )

    await asyncio.gather(*(talk(u) for u in range(USERS)))
    # The runner is busy with the backlog on its own loop while this loop waits for it.
    await asyncio.wait_for(machine.await_idle(timeout=30), timeout=45)

    assert await db.arun(CountWork(statuses=("pending", "running", "failed"))) == 0
    profiles = machine.stores["user_profile"]
    for user in range(USERS):
        profile = await profiles.arecall(user_id=f"u{user}")
        assert profile is not None
        assert sorted(profile.preferences) == sorted(f"pref-{user}-{k}" for k in range(TURNS))
    agent.close()
