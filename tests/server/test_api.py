"""The HTTP API on both backends: a turn over HTTP, the rules of the modes, restore with who did
it, forget, export and import, pending work, confused input, keys."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from learning_machines import LearningMachine, LearningMode, NotFoundError
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.server import ApiKey, Gateway, KeyRing, Role, create_app, hash_key
from learning_machines.server.auth import read_keys, write_keys
from learning_machines.stores import LearnedKnowledgeConfig

from ._support import auth, make_machine, principal, sqlite
from .conftest import Served

ROOT = Path(__file__).resolve().parents[2]


def test_a_turn_over_http_recalls_runs_tools_and_learns(served: Served) -> None:
    client = served.client
    begun = client.post(
        "/v1/turns",
        json={"message": "Remember that Acme ships on Mondays.", "session_id": "api"},
        headers=auth("alice"),
    ).json()
    names = {t["function"]["name"] for t in begun["tools"]}
    assert {"save_entity_fact", "search_episodes"} <= names
    assert "approve_proposal" not in names
    said = client.post(
        f"/v1/turns/{begun['turn_id']}/tools/save_entity_fact",
        json={"arguments": {"entity": "Acme", "fact": "ships on Mondays"}},
        headers=auth("alice"),
    )
    assert said.status_code == 200, said.text
    done = client.post(
        f"/v1/turns/{begun['turn_id']}/finish",
        json={
            "messages": [
                {"role": "user", "content": "Remember that Acme ships on Mondays."},
                {"role": "assistant", "content": "Saved."},
            ]
        },
        headers=auth("alice"),
    )
    assert done.status_code == 200, done.text
    assert done.json()["pending_work_id"]
    # A finished turn cannot be finished again.
    again = client.post(
        f"/v1/turns/{begun['turn_id']}/finish",
        json={"messages": [{"role": "user", "content": "x"}]},
        headers=auth("alice"),
    )
    assert again.status_code == 404
    served.machine.wait_idle()
    next_turn = client.post(
        "/v1/turns",
        json={"message": "what does Acme do on Mondays?", "session_id": "api", "history_turns": 2},
        headers=auth("alice"),
    ).json()
    assert "Acme ships on Mondays" in next_turn["context"]
    assert next_turn["turn_index"] == 1
    assert next_turn["history"][0]["content"] == "Remember that Acme ships on Mondays."


def test_hitl_needs_a_reviewer_who_is_not_the_user_and_propose_is_the_users(served: Served) -> None:
    client = served.client
    profile, knowledge = served.alice.pending_proposals
    own = client.post(f"/v1/proposals/{profile}/approve", headers=auth("alice"))
    assert own.status_code == 403
    # A reviewer named "Alice" is alice, whatever the case.
    same = client.post(f"/v1/proposals/{profile}/approve", headers=auth("Alice"))
    assert same.status_code == 403
    assert "another reviewer" in same.json()["detail"]
    assert client.get(f"/v1/proposals/{profile}", headers=auth("alice")).json()["status"] == (
        "pending"
    )
    ok = client.post(
        f"/v1/proposals/{profile}/approve", json={"note": "checked"}, headers=auth("carol")
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["decided_by"] == "carol"
    assert ok.json()["decision_note"] == "checked"
    # PROPOSE: the user approves their own; a decided proposal cannot be decided again.
    mine = client.post(f"/v1/proposals/{knowledge}/approve", headers=auth("alice"))
    assert mine.json()["decided_by"] == "alice"
    twice = client.post(f"/v1/proposals/{knowledge}/reject", headers=auth("carol"))
    assert twice.status_code == 422
    assert "already approved (by alice)" in twice.json()["detail"]
    profile_row = client.get(
        "/v1/learnings", params={"learning_type": "user_profile"}, headers=auth("alice")
    ).json()[0]
    assert profile_row["content"]["team"] == "zebracorn quokka team"
    # Who approved is on the learning too: its provenance and its history.
    assert profile_row["provenance"]["approved_by"] == "carol"
    assert profile_row["provenance"]["proposal_id"] == profile
    history = client.get(f"/v1/learnings/{profile_row['id']}/history", headers=auth("alice"))
    assert history.json()[-1]["actor"]["approved_by"] == "carol"


def test_restore_undoes_an_approved_change_and_records_who(served: Served) -> None:
    client = served.client
    profile = served.alice.pending_proposals[0]
    client.post(f"/v1/proposals/{profile}/approve", headers=auth("carol"))
    row = client.get(
        "/v1/learnings", params={"learning_type": "user_profile"}, headers=auth("alice")
    ).json()[0]
    assert row["content"]["team"]
    restored = client.post(
        f"/v1/learnings/{row['id']}/restore", params={"user_id": "alice"}, headers=auth("carol")
    )
    assert restored.status_code == 200, restored.text
    assert not restored.json()["content"].get("team")
    history = client.get(f"/v1/learnings/{row['id']}/history", headers=auth("alice")).json()
    assert history[-1]["action"] == "restore"
    assert history[-1]["actor"] == {"reviewer": "carol", "via": "server"}
    # A reviewer without the user cannot find a private learning; with it, can.
    assert client.get(f"/v1/learnings/{row['id']}", headers=auth("carol")).status_code == 404
    assert (
        client.get(
            f"/v1/learnings/{row['id']}", params={"user_id": "alice"}, headers=auth("carol")
        ).status_code
        == 200
    )


def test_forget_export_and_import_by_role(served: Served) -> None:
    client = served.client
    exported = client.get("/v1/users/alice/export", headers=auth("alice"))
    assert exported.status_code == 200
    data = exported.json()
    assert data["user_id"] == "alice"
    assert client.post("/v1/users/import", json=data, headers=auth("alice")).status_code == 403
    assert client.post("/v1/users/alice/forget", headers=auth("carol")).status_code == 403
    assert client.get("/v1/users/alice/export", headers=auth("carol")).status_code == 403
    gone = client.post("/v1/users/alice/forget", headers=auth("alice"))
    assert gone.status_code == 200
    assert gone.json()["learnings"] > 0
    assert client.get("/v1/learnings", headers=auth("alice")).json() == []
    assert client.get("/v1/proposals", headers=auth("alice")).json() == []
    back = client.post("/v1/users/import", json=data, headers=auth("root"))
    assert back.status_code == 200, back.text
    assert len(client.get("/v1/learnings", headers=auth("alice")).json()) == len(
        served.alice.learning_ids
    )
    # An admin forgets anyone; bob's data is untouched by alice's forget.
    assert client.get("/v1/learnings", headers=auth("bob")).json()
    assert client.post("/v1/users/bob/forget", headers=auth("root")).status_code == 200
    assert client.get("/v1/learnings", headers=auth("bob")).json() == []


def test_pending_work_a_user_sees_only_their_own(served: Served) -> None:
    client = served.client
    for who in ("alice", "bob"):
        client.post(
            "/v1/turns/remember",
            json={"user_message": f"{who} says hi", "assistant_message": "hello"},
            headers=auth(who),
        )
    mine = client.get("/v1/work", headers=auth("alice")).json()
    assert mine
    assert {w["user_id"] for w in mine} == {"alice"}
    everyone = client.get("/v1/work", headers=auth("root")).json()
    assert {w["user_id"] for w in everyone} >= {"alice", "bob"}
    assert "payload" not in everyone[0]  # whole turns are not listed
    assert client.get("/v1/work/failures", headers=auth("alice")).json() == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/v1/learnings", {"params": {"user_id": "a\x1fb"}}, 422),
        ("GET", "/v1/learnings", {"params": {"limit": 100000}}, 422),
        ("GET", "/v1/learnings", {"params": {"status": "deleted"}}, 422),
        ("GET", "/v1/learnings/nope", {}, 404),
        ("GET", "/v1/learnings/search", {"params": {"q": ""}}, 422),
        ("GET", "/v1/proposals", {"params": {"status": "maybe"}}, 422),
        ("POST", "/v1/turns", {"json": {"message": ""}}, 422),
        ("POST", "/v1/turns", {"json": {"message": "x" * 100_001}}, 422),
        ("POST", "/v1/turns", {"json": {"message": "hi", "session_id": "s\x00"}}, 422),
        (
            "POST",
            "/v1/turns",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
        ),
        ("POST", "/v1/turns/nope/finish", {"json": {"messages": []}}, 422),
    ],
)
def test_confused_input_gets_a_clear_4xx(
    served: Served, method: str, path: str, kwargs: dict[str, object], status: int
) -> None:
    headers = {**auth("alice"), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    response = served.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json().get("detail")


def test_reviewer_keys_do_not_act_as_a_user(served: Served) -> None:
    begun = served.client.post("/v1/turns", json={"message": "hi"}, headers=auth("carol"))
    assert begun.status_code == 403
    assert "use that user's key" in begun.json()["detail"]


def test_openapi_documents_every_endpoint_and_the_bearer_scheme(served: Served) -> None:
    spec = served.client.get("/openapi.json").json()
    assert {
        "/v1/turns",
        "/v1/learnings/{learning_id}/restore",
        "/v1/proposals/{proposal_id}/approve",
    } <= set(spec["paths"])
    assert any(s.get("scheme") == "bearer" for s in spec["components"]["securitySchemes"].values())
    assert not [p for p in spec["paths"] if p.startswith("/ui")]


def test_other_hosts_are_refused_and_answers_are_not_cached(served: Served) -> None:
    other = served.client.get("/v1/health", headers={"Host": "evil.example"})
    assert other.status_code == 400
    ok = served.client.get("/v1/learnings", headers=auth("alice"))
    assert ok.headers["cache-control"] == "no-store"
    assert ok.headers["x-content-type-options"] == "nosniff"


def test_shared_rows_of_others_come_without_author_or_provenance(tmp_path: Path) -> None:
    machine = LearningMachine(
        db=sqlite(tmp_path),
        embedder=HashEmbedder(),
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.AGENTIC, namespace="eng"),
        background=False,
    )
    from ._support import keyring

    with TestClient(create_app(machine, keys=keyring()), base_url="http://127.0.0.1") as client:
        turn = client.post("/v1/turns", json={"message": "x"}, headers=auth("alice")).json()
        client.post(
            f"/v1/turns/{turn['turn_id']}/tools/save_learning",
            json={"arguments": {"title": "Retries", "learning": "Retry idempotent calls only."}},
            headers=auth("alice"),
        )
        hits = client.get(
            "/v1/learnings/search", params={"q": "retry idempotent"}, headers=auth("bob")
        ).json()
        assert hits[0]["learning"]["text"].startswith("Retries")
        assert hits[0]["learning"]["user_id"] is None
        assert hits[0]["learning"]["provenance"] == {}
        row_id = hits[0]["learning"]["id"]
        # Bob cannot manage it either: get, history and restore say it is not there.
        assert client.get(f"/v1/learnings/{row_id}", headers=auth("bob")).status_code == 404
        assert client.get(f"/v1/learnings/{row_id}", headers=auth("alice")).status_code == 200
        mine = client.get(
            "/v1/learnings/search", params={"q": "retry idempotent"}, headers=auth("alice")
        ).json()
        assert mine[0]["learning"]["user_id"] == "alice"
    machine.close()


def test_keys_file_holds_hashes_and_removing_a_key_revokes_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    write_keys(path, [ApiKey(name="alice", role=Role.USER, sha256=hash_key("k1"))])
    ring = KeyRing.from_file(path)
    assert ring.authenticate("k1") is not None
    assert "k1" not in path.read_text()
    write_keys(path, [])
    assert ring.authenticate("k1") is None
    path.write_text("[[keys]]\nname = 'x'\nsha256 = 'k1'\n")
    with pytest.raises(Exception, match="64 hex digits"):
        ring.authenticate("k1")


def test_a_broken_keys_file_refuses_everyone_with_503(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    write_keys(path, [ApiKey(name="alice", role=Role.USER, sha256=hash_key("k1"))])
    machine = LearningMachine(db=sqlite(tmp_path), embedder=HashEmbedder(), background=False)
    app = create_app(machine, keys=KeyRing.from_file(path))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        headers = {"Authorization": "Bearer k1"}
        assert client.get("/v1/me", headers=headers).status_code == 200
        path.write_text("not toml [[[")
        broken = client.get("/v1/me", headers=headers)
        assert broken.status_code == 503
        assert "toml" not in broken.text.lower()  # the caller learns nothing about the file
    machine.close()


def test_keys_command_prints_the_key_once_and_stores_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "learning_machines.cli",
            "keys",
            "add",
            "--file",
            str(path),
            "--name",
            "carol",
            "--role",
            "reviewer",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    key = made.stdout.strip()
    assert key.startswith("lm_")
    assert key not in path.read_text()
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    (stored,) = read_keys(path)
    assert stored.name == "carol"
    assert stored.role is Role.REVIEWER
    assert KeyRing.from_file(path).authenticate(key) is not None
    listed = subprocess.run(
        [sys.executable, "-m", "learning_machines.cli", "keys", "list", "--file", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert "carol" in listed.stdout
    assert key not in listed.stdout


def test_no_page_loads_anything_from_outside(served: Served) -> None:
    # FastAPI's interactive /docs fetches its script from a CDN: it is not served.
    assert served.client.get("/docs").status_code == 404
    assert served.client.get("/openapi.json").status_code == 200


async def test_a_turn_finished_twice_at_once_is_recorded_once(db: Db) -> None:
    machine = make_machine(db)
    gateway = Gateway(machine)
    alice = principal("alice")
    turn = await gateway.abegin(alice, "hello there", session_id="s")
    said = [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "hi"}]
    results = await asyncio.gather(
        *(gateway.afinish(alice, turn.context.turn_id, said) for _ in range(3)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, NotFoundError) for r in results) == 2, results
    assert len((await gateway.aexport(alice, "alice"))["messages"]) == 1
    machine.close()
