"""The MCP server, through the ``mcp`` SDK's own client: over stdio (``learning-machines mcp``),
over streamable HTTP (``/mcp`` of the server app) and in process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from learning_machines.db import Db, SqliteDb
from learning_machines.server import Gateway
from learning_machines.server.mcp import build_mcp_server, local_user

from ._support import auth, live, make_machine, principal, seed

ROOT = Path(__file__).resolve().parents[2]
#: A raw MCP initialize request (the 2025-06-18 handshake).
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
STORE_TOOLS = {
    "update_user_profile",
    "search_learnings",
    "save_learning",
    "search_entities",
    "lookup_entity",
    "save_entity",
    "save_entity_fact",
    "save_entity_event",
    "save_entity_relation",
    "search_episodes",
}


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if hasattr(c, "text"))


async def _exercise(client: Client) -> None:
    """What every transport must do: list, call, read, prompt."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"recall", "remember_turn"} | STORE_TOOLS <= set(tools)
    assert "approve_proposal" not in tools  # approvals are never agent tools
    assert tools["recall"].annotations.read_only_hint is True
    assert tools["search_learnings"].annotations.read_only_hint is True
    assert tools["remember_turn"].annotations.read_only_hint is False
    assert tools["remember_turn"].annotations.destructive_hint is False
    assert tools["update_user_profile"].annotations.destructive_hint is True
    # The stores' tools keep their names and arguments.
    assert set(tools["save_learning"].input_schema["properties"]) >= {"title", "learning"}

    said = await client.call_tool(
        "remember_turn",
        {
            "user_message": "Our on-call rotation changes every Tuesday.",
            "assistant_message": "Noted: on-call changes on Tuesdays.",
            "session_id": "s1",
        },
    )
    assert not said.is_error, _text(said)
    assert "remembered" in _text(said)
    saved = await client.call_tool(
        "save_entity_relation", {"subject": "Dana", "relation": "runs", "object": "on-call"}
    )
    assert not saved.is_error, _text(saved)

    # remember_turn returns before the background worker has learned from it: wait (bounded).
    question = {
        "message": "who runs the on-call rotation, and which day does it change?",
        "session_id": "s2",
    }
    for _ in range(300):
        recalled = await client.call_tool("recall", question)
        if "Tuesday" in _text(recalled):
            break
        await asyncio.sleep(0.1)
    assert "Tuesday" in _text(recalled)
    assert "Dana runs on-call" in _text(recalled)
    assert "approve_proposal" not in _text(recalled)  # the guidance names no tool we hide

    proposal = await client.call_tool(
        "save_learning", {"title": "Rotation", "learning": "Hand over on-call notes in writing."}
    )
    assert "proposed" in _text(proposal)
    # A tool that is not offered, and bad arguments, are errors the agent can read.
    refused = await client.call_tool("approve_proposal", {"proposal_id": "x"})
    assert refused.is_error
    assert "not offered" in _text(refused)
    bad = await client.call_tool("recall", {"nothing": 1})
    assert bad.is_error
    assert "message" in _text(bad)

    uris = {str(r.uri) for r in (await client.list_resources()).resources}
    assert uris == {"memory://profile", "memory://export", "memory://proposals"}
    waiting = await client.read_resource("memory://proposals")
    assert "Hand over on-call notes" in waiting.contents[0].text
    export = json.loads((await client.read_resource("memory://export")).contents[0].text)
    assert export["user_id"] == "alice"

    prompt = await client.get_prompt("with_memory", {"question": "When is the on-call handover?"})
    text = prompt.messages[0].content.text
    assert "Tuesday" in text
    assert text.endswith("My question: When is the on-call handover?")


@pytest.mark.slow
async def test_stdio_client_lists_and_calls_tools_and_stdout_carries_only_protocol(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "learning_machines.cli",
            "mcp",
            "--user",
            "alice",
            "--db",
            str(tmp_path / "stdio.db"),
            "--machine",
            "tests.server._support:noisy_machine",
        ],
        env=env,
        cwd=str(ROOT),
    )
    with (tmp_path / "stderr.txt").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            await _exercise(client)


def test_stdout_of_the_stdio_server_is_protocol_only_even_when_the_machine_prints(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    lines = [
        json.dumps(INITIALIZE),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json.dumps(listing),
    ]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "learning_machines.cli",
            "mcp",
            "--user",
            "alice",
            "--db",
            str(tmp_path / "raw.db"),
            "--machine",
            "tests.server._support:noisy_machine",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        process.stdin.write("\n".join(lines) + "\n")
        process.stdin.flush()
        out = [process.stdout.readline(), process.stdout.readline()]
        process.stdin.close()
        process.wait(timeout=60)
        rest = process.stdout.read()
        err = process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
    answers = [json.loads(line) for line in out]  # every line is JSON-RPC
    assert [a["id"] for a in answers] == [1, 2]
    assert "recall" in {t["name"] for t in answers[1]["result"]["tools"]}
    assert rest.strip() == ""  # and nothing else came out
    assert "NOISE from the user's module" in err
    assert "NOISE from native code" in err


def test_mcp_command_refuses_a_bad_user_id_before_serving(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "learning_machines.cli", "mcp", "--user", "a\x1fb"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "control" in done.stderr


async def test_http_client_lists_and_calls_tools_with_a_bearer_key(db: Db) -> None:
    with live(db, background=True) as (server, _gateway):
        async with (
            httpx2.AsyncClient(headers=auth("alice"), timeout=30) as http,
            Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
        ):
            await _exercise(client)


async def test_http_mcp_needs_a_user_key(tmp_path: Path) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    with live(SqliteDb(tmp_path / "x.db")) as (server, _gateway):
        async with httpx2.AsyncClient(timeout=30) as http:
            url = f"{server.url}/mcp"
            nokey = await http.post(url, json=INITIALIZE, headers=headers)
            assert nokey.status_code == 401
            assert nokey.headers["www-authenticate"] == "Bearer"
            wrong = await http.post(
                url, json=INITIALIZE, headers={**headers, "Authorization": "Bearer nope"}
            )
            assert wrong.status_code == 401
            reviewer = await http.post(url, json=INITIALIZE, headers={**headers, **auth("carol")})
            assert reviewer.status_code == 403
            ok = await http.post(url, json=INITIALIZE, headers={**headers, **auth("alice")})
            assert ok.status_code == 200
            # A page on another site cannot drive it through the browser (DNS rebinding).
            evil = await http.post(
                url, json=INITIALIZE, headers={**headers, **auth("alice"), "Host": "evil.example"}
            )
            assert evil.status_code in (400, 421)


async def test_an_mcp_session_answers_only_the_key_that_opened_it(tmp_path: Path) -> None:
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    with live(SqliteDb(tmp_path / "s.db")) as (server, _gateway):
        async with httpx2.AsyncClient(timeout=30) as http:
            url = f"{server.url}/mcp"
            opened = await http.post(url, json=INITIALIZE, headers={**accept, **auth("alice")})
            session = opened.headers["mcp-session-id"]
            version = {"mcp-session-id": session, "mcp-protocol-version": "2025-06-18"}
            theirs = await http.post(
                url, json=listing, headers={**accept, **version, **auth("bob")}
            )
            assert theirs.status_code == 404
            ended = await http.delete(url, headers={**version, **auth("bob")})
            assert ended.status_code == 404
            mine = await http.post(
                url, json=listing, headers={**accept, **version, **auth("alice")}
            )
            assert mine.status_code == 200, mine.text


async def test_every_result_is_capped_and_says_so(db: Db) -> None:
    machine = make_machine(db)
    gateway = Gateway(machine)
    await seed(gateway, "alice", "long " * 50)
    for i in range(30):
        await gateway.aremember(
            principal("alice"),
            user_message=f"note {i}: " + "the quarterly report covers revenue " * 10,
            assistant_message="ok",
            session_id="s",
        )
    await machine.await_idle()
    server = build_mcp_server(gateway, principal_of=local_user("alice"), result_cap=600)
    async with Client(server) as client:
        recalled = await client.call_tool("recall", {"message": "quarterly report revenue"})
        text = recalled.content[0].text
        assert len(text) <= 600
        assert "more characters left out" in text
        export = (await client.read_resource("memory://export")).contents[0].text
        summary = json.loads(export)  # a cut export is still JSON, and says what to do
        assert summary["truncated"] is True
        assert summary["user_id"] == "alice"  # whose it is, cut or not
        assert summary["counts"]["messages"] >= 30
    machine.close()


async def test_in_process_reviewer_principal_is_refused(tmp_path: Path) -> None:
    from learning_machines.server import Principal, Role

    machine = make_machine(SqliteDb(tmp_path / "r.db"))
    server = build_mcp_server(
        Gateway(machine), principal_of=lambda ctx: Principal(name="carol", role=Role.REVIEWER)
    )
    async with Client(server) as client:
        with pytest.raises(Exception, match="not a user key"):
            await client.list_tools()
    machine.close()
