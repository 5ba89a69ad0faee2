"""Self-improvement over HTTP on both backends: a reviewer reads a proposal with its evidence and
gate, approves it and the agent's next turn runs the new version; the evidence users cannot
approve (not even as a reviewer of the same name), user keys reach nothing, a rejection is kept,
a rollback restores the old instructions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learning_machines import Agent, LearningMachine
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.server import create_app

from ..improvement._helpers import agent
from ..improvement.test_reflection_and_gate import failed_deploys
from ._support import auth, keyring

RULE = "Stop deploying with strategy all_at_once"


@dataclass
class World:
    """A served machine with self-improvement, its agent, and one pending proposal."""

    client: TestClient
    bot: Agent
    machine: LearningMachine
    proposal_id: str
    turns: list[str]


@pytest.fixture
def world(db: Db) -> Iterator[World]:
    bot, learning = agent(db)
    # alice and bob have keys; dave has none. Each deploy fails with the default strategy.
    turns = failed_deploys(bot, ["alice", "bob", "dave"])
    learning.wait_idle()
    [proposal] = learning.improve(agent_id="ops").proposals
    assert proposal.status == "pending"
    app = create_app(learning, keys=keyring())
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield World(client, bot, learning, proposal.id, turns)
    learning.close()


def _get(world: World, path: str, who: str, **params: Any) -> Any:
    return world.client.get(path, params=params, headers=auth(who))


def _post(world: World, path: str, who: str, body: dict[str, Any] | None = None) -> Any:
    return world.client.post(path, json=body, headers=auth(who))


def test_a_reviewer_approves_and_the_agents_next_turn_runs_the_new_version(world: World) -> None:
    pid = world.proposal_id
    listed = _get(world, "/v1/improvements", "carol")
    assert listed.status_code == 200, listed.text
    assert [p["proposal"]["id"] for p in listed.json()] == [pid]
    assert RULE in listed.json()[0]["summary"]

    detail = _get(world, f"/v1/improvements/{pid}", "carol").json()
    assert sorted(t["turn_id"] for t in detail["evidence_turns"]) == sorted(world.turns)
    assert {t["user_id"] for t in detail["evidence_turns"]} == {"alice", "bob", "dave"}
    assert all(t["verdict"] == "bad" for t in detail["evidence_turns"])
    gate = detail["proposal"]["gate"]
    assert gate["passed"] is True
    assert {c["verdict"] for c in gate["cases"] if c["kind"] == "target"} == {"fixed"}

    before = _get(world, "/v1/instructions", "carol", agent_id="ops").json()
    assert RULE not in before["text"]

    # "Alice" is a reviewer, but alice's turns are evidence: she cannot approve it alone.
    refused = _post(world, f"/v1/improvements/{pid}/approve", "Alice")
    assert refused.status_code == 403, refused.text
    assert "cannot approve it alone" in refused.json()["detail"]
    assert world.machine.improvements.get(pid).status == "pending"

    approved = _post(world, f"/v1/improvements/{pid}/approve", "carol", {"note": "canary it is"})
    assert approved.status_code == 200, approved.text
    done = approved.json()["proposal"]
    assert (done["status"], done["decided_by"], done["decision_note"]) == (
        "approved",
        "carol",
        "canary it is",
    )

    now = _get(world, "/v1/instructions", "carol", agent_id="ops").json()
    assert now["version"] == done["version"] != before["version"]
    assert RULE in now["text"]
    assert [(c["action"], c["by"]) for c in now["history"]] == [("approve", "carol")]

    # The agent picks the new version up on its next turn, without a restart.
    result = world.bot.run("deploy svc-erin to production", user_id="erin", session_id="e")
    assert "canary" in str(result.tool_calls)
    record = world.machine.decisions.get(result.turn_id, user_id="erin").record
    assert record.instructions_version == done["version"]

    # An admin rolls back to the version before: the rule is gone again.
    rolled = _post(
        world,
        "/v1/instructions/rollback",
        "root",
        {"version": before["version"], "agent_id": "ops", "note": "too slow"},
    )
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == before["version"]
    assert RULE not in rolled.json()["text"]
    assert [(c["action"], c["by"]) for c in rolled.json()["history"]] == [
        ("approve", "carol"),
        ("rollback", "root"),
    ]


def test_user_keys_reach_no_improvement_and_no_tool_approves(world: World) -> None:
    pid = world.proposal_id
    for who in ("alice", "bob"):
        for response in (
            _get(world, "/v1/improvements", who),
            _get(world, f"/v1/improvements/{pid}", who),
            _get(world, "/v1/instructions", who, agent_id="ops"),
            _post(world, f"/v1/improvements/{pid}/approve", who),
            _post(world, f"/v1/improvements/{pid}/reject", who),
            _post(world, "/v1/instructions/rollback", who, {"version": "v0", "agent_id": "ops"}),
        ):
            assert response.status_code == 403, response.text
    assert world.client.get("/v1/improvements").status_code == 401
    assert world.machine.improvements.get(pid).status == "pending"
    # The tools a user's turn is offered (HTTP and MCP) include nothing that approves.
    began = _post(world, "/v1/turns", "alice", {"message": "deploy svc-x"}).json()
    names = {t["function"]["name"] for t in began["tools"]}
    assert names
    assert not {n for n in names if "approve" in n or "improve" in n or "instruction" in n}


def test_a_rejection_is_kept_and_confused_requests_change_nothing(world: World) -> None:
    pid = world.proposal_id
    rejected = _post(world, f"/v1/improvements/{pid}/reject", "carol", {"reason": "we use blue"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["proposal"]["decision_note"] == "we use blue"
    again = _post(world, f"/v1/improvements/{pid}/approve", "carol")
    assert again.status_code == 422
    assert "already rejected by carol" in again.json()["detail"]
    assert _get(world, "/v1/improvements", "carol").json() == []
    kept = _get(world, "/v1/improvements", "carol", status="rejected").json()
    assert [p["proposal"]["id"] for p in kept] == [pid]
    # Reflection does not propose the rejected change again.
    assert world.machine.improve(agent_id="ops").proposals == []

    assert _get(world, "/v1/improvements/no-such-id", "carol").status_code == 404
    assert _get(world, "/v1/improvements", "carol", status="meh").status_code == 422
    bad_version = _post(
        world, "/v1/instructions/rollback", "carol", {"version": "v000", "agent_id": "ops"}
    )
    assert bad_version.status_code == 404
    assert _get(world, "/v1/instructions", "carol", agent_id="ops").json()["history"] == []


def test_a_server_without_self_improvement_says_how_to_turn_it_on(db: Db) -> None:
    machine = LearningMachine(db=db, embedder=HashEmbedder(), feedback=True, background=False)
    with TestClient(create_app(machine, keys=keyring()), base_url="http://127.0.0.1") as client:
        response = client.get("/v1/improvements", headers=auth("carol"))
    machine.close()
    assert response.status_code == 422
    assert "self_improvement=True" in response.json()["detail"]
