"""A key for bob never reaches alice's data: by any endpoint, UI page, MCP tool, resource or
prompt — enumerated from the app and the MCP server, so a new one is covered without a new test.

Alice's data all carries the word ``quokka``; bob's requests never send it. Each response to bob
must not contain it, and alice's data must be exactly as it was after bob tried everything
(approve her proposals, restore and forget her, finish her open turn, rate her finished one, …).
The same enumeration with a reviewer's key *does* find her data, so the check is able to fail.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from fastapi.routing import APIRoute
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from learning_machines.db import Db
from learning_machines.db._records import ALL_STATUSES
from learning_machines.server import Gateway

from ._support import KEYS, MARKER, Seeded, auth, live, principal, seed
from .conftest import Served

#: Bodies for the API's POST routes, by path. A new POST route must add one here.
API_BODIES: dict[str, Any] = {
    "/v1/turns": {"message": "zebracorn labs?", "session_id": "alice-session"},
    "/v1/turns/remember": {
        "user_message": "zebracorn?",
        "assistant_message": "walrus.",
        "session_id": "alice-session",
    },
    "/v1/turns/{turn_id}/tools/{name}": {"arguments": {"query": "zebracorn"}},
    "/v1/turns/{turn_id}/finish": {"messages": [{"role": "user", "content": "walrus"}]},
    "/v1/turns/{turn_id}/feedback": {"score": -1, "comment": "bob says it was wrong"},
    "/v1/learnings/{learning_id}/restore": {},
    "/v1/proposals/{proposal_id}/approve": {"note": "bob says yes"},
    "/v1/proposals/{proposal_id}/reject": {"note": "bob says no"},
    "/v1/users/{user_id}/forget": None,
    "/v1/users/import": {
        "format": "learning-machines/user-export",
        "version": 1,
        "user_id": "alice",
    },
}
#: Form fields of the UI's POST routes, by path (the CSRF token is added).
UI_FORMS: dict[str, dict[str, str]] = {
    "/ui/login": {"key": KEYS["bob"]},
    "/ui/logout": {},
    "/ui/users/{user_id}/learnings/{learning_id}/restore": {},
    "/ui/proposals/{proposal_id}/{decision}": {"note": "bob"},
    "/ui/users/{user_id}/forget": {},
}


def path_values(alice: Seeded) -> dict[str, list[str]]:
    """What bob puts in each path parameter: alice's ids (a new parameter must add a line)."""
    return {
        "user_id": ["alice", "ALICE"],
        "learning_id": alice.learning_ids,
        "entity_id": alice.entity_ids,
        "proposal_id": alice.pending_proposals,
        "turn_id": [alice.open_turn, alice.finished_turn],
        "name": ["search_learnings", "save_learning", "lookup_entity", "approve_proposal"],
        "decision": ["approve", "reject"],
    }


def expand(path: str, values: dict[str, list[str]]) -> Iterator[str]:
    """Every path with its parameters filled from ``values``."""
    names = re.findall(r"{(\w+)}", path)
    missing = [n for n in names if n not in values]
    assert not missing, f"{path}: add values for {missing} to path_values()"
    for combo in itertools.product(*(values[n] for n in names)):
        filled = path
        for name, value in zip(names, combo, strict=True):
            filled = filled.replace("{" + name + "}", value)
        yield filled


def _walk(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.16x)
            yield from _walk(route.original_router.routes)


def routes(app: Any, prefix: str) -> list[tuple[str, str, APIRoute]]:
    """(method, path template, route) of every route under ``prefix``, from the app itself."""
    out = []
    for route in _walk(app.routes):
        if route.path.startswith(prefix):
            out.extend((method, route.path, route) for method in sorted(route.methods))
    assert out, f"no routes under {prefix}"
    if prefix == "/v1":  # everything the OpenAPI document shows was found
        documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
        assert documented <= {(m, p) for m, p, _ in out}
    return out


def queries(route: APIRoute) -> list[dict[str, str]]:
    """Query strings to try: without a user, and naming alice where the route takes a user."""
    names = {p.name for p in route.dependant.query_params}
    base = {"q": "zebracorn labs"} if "q" in names else {}
    if "user_id" in names:
        return [base, {**base, "user_id": "alice"}]
    return [base]


async def snapshot(gateway: Gateway, user: str) -> dict[str, Any]:
    """Everything of ``user``'s, as an admin sees it."""
    admin = principal("root")
    rows = await gateway.alearnings(admin, user_id=user, statuses=ALL_STATUSES, limit=None)
    proposals = await gateway.aproposals(admin, status=None, user_id=user)
    export = await gateway.aexport(admin, user)
    return {
        "learnings": sorted((r.id, r.status, r.updated_at, json.dumps(r.content)) for r in rows),
        "proposals": sorted((p.id, p.status) for p in proposals),
        "messages": len(export["messages"]),
        "history": len(export["history"]),
    }


def call_api(served: Served, name: str) -> list[tuple[str, int, str]]:
    """Every /v1 route, with every filling of alice's ids, called with ``name``'s key."""
    seen = []
    values = path_values(served.alice)
    for method, template, route in routes(served.app, "/v1"):
        if method == "POST":
            assert template in API_BODIES, f"{template}: add a body to API_BODIES"
        for path, query in itertools.product(expand(template, values), queries(route)):
            response = served.client.request(
                method,
                path,
                params=query,
                json=API_BODIES.get(template) if method == "POST" else None,
                headers=auth(name),
            )
            seen.append((f"{method} {path} {query}", response.status_code, response.text))
    return seen


def test_bob_reaches_none_of_alices_data_through_any_api_route(served: Served) -> None:
    before = served.client.portal.call(snapshot, served.gateway, "alice")
    seen = call_api(served, "bob")
    leaks = [(what, status) for what, status, text in seen if MARKER in text]
    assert not leaks, leaks
    # Nothing bob tried changed anything of alice's (approve, reject, restore, forget, finish).
    assert served.client.portal.call(snapshot, served.gateway, "alice") == before
    # And alice's open turn is still hers to finish.
    done = served.client.post(
        f"/v1/turns/{served.alice.open_turn}/finish",
        json={"messages": [{"role": "user", "content": "ok"}]},
        headers=auth("alice"),
    )
    assert done.status_code == 200, done.text


def test_the_same_enumeration_with_a_reviewer_key_does_find_alices_data(served: Served) -> None:
    seen = call_api(served, "carol")
    assert any(MARKER in text for _, status, text in seen if status == 200)


def test_no_key_is_a_401_on_every_route_but_health(served: Served) -> None:
    values = path_values(served.alice)
    for method, template, route in routes(served.app, "/v1"):
        path = next(expand(template, values))
        response = served.client.request(
            method, path, params=queries(route)[-1], json=API_BODIES.get(template)
        )
        if template == "/v1/health":
            assert response.status_code == 200
        else:
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
        wrong = served.client.request(
            method, path, json=API_BODIES.get(template), headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == (200 if template == "/v1/health" else 401)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def test_bob_reaches_none_of_alices_data_through_any_ui_page(served: Served) -> None:
    before = served.client.portal.call(snapshot, served.gateway, "alice")
    client = served.client
    login = client.post("/ui/login", data={"key": KEYS["bob"]}, follow_redirects=True)
    assert login.status_code == 200
    assert "bob" in login.text
    csrf = _csrf(login.text)
    values = path_values(served.alice)
    checked = 0
    for method, template, route in routes(served.app, "/ui"):
        if template in ("/ui/logout", "/ui/login"):
            continue
        for path, query in itertools.product(expand(template, values), queries(route)):
            if method == "POST":
                form = {**UI_FORMS[template], "csrf": csrf}
                response = client.post(path, data=form, params=query)
            else:
                response = client.get(path, params=query)
            assert MARKER not in response.text, (method, path)
            checked += 1
    assert checked > 20
    assert client.portal.call(snapshot, served.gateway, "alice") == before


def _arguments(tool: Any, *, word: str) -> dict[str, Any]:
    """Arguments for ``tool`` from its schema: strings are ``word``, other required fields a
    plain value; ``user_id='alice'`` is slipped in (it must change nothing)."""
    schema = tool.input_schema
    args: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        kinds = {prop.get("type")} | {p.get("type") for p in prop.get("anyOf", [])}
        if "string" in kinds:
            args[name] = word
        elif name in schema.get("required", []):
            args[name] = {"integer": 1, "number": 1, "boolean": False, "array": []}.get(
                str(prop.get("type")), word
            )
    return args


async def _mcp_as(url: str, name: str, alice: Seeded) -> list[str]:
    """Everything an MCP client with ``name``'s key can get: every tool, resource and prompt."""
    texts: list[str] = []
    async with (
        httpx2.AsyncClient(headers=auth(name), timeout=30) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        tools = (await client.list_tools()).tools
        for tool in tools:
            read_only = bool(tool.annotations and tool.annotations.read_only_hint)
            # Reads look for alice's words; writes write bob's own.
            base = _arguments(tool, word="zebracorn labs" if read_only else "walrus note")
            for args in (
                base,
                {**base, "user_id": "alice"},
                {**base, "session_id": alice.session_id},
            ):
                result = await client.call_tool(tool.name, args)
                texts.extend(c.text for c in result.content if hasattr(c, "text"))
        for resource in (await client.list_resources()).resources:
            read = await client.read_resource(str(resource.uri))
            texts.extend(c.text for c in read.contents if hasattr(c, "text"))
        for prompt in (await client.list_prompts()).prompts:
            got = await client.get_prompt(
                prompt.name, {"question": "zebracorn labs?", "session_id": alice.session_id}
            )
            texts.extend(m.content.text for m in got.messages if hasattr(m.content, "text"))
    return texts


@pytest.mark.slow
async def test_bob_reaches_none_of_alices_data_through_any_mcp_tool_resource_or_prompt(
    db: Db,
) -> None:
    with live(db) as (server, gateway):
        alice = await seed(gateway, "alice", "zebracorn quokka")
        await seed(gateway, "bob", "walrus")
        before = await snapshot(gateway, "alice")
        texts = await _mcp_as(server.url, "bob", alice)
        assert len(texts) > 20
        assert not [t for t in texts if MARKER in t]
        assert await snapshot(gateway, "alice") == before
        # The same calls with alice's own key find her data: the check can fail.
        assert any(MARKER in t for t in await _mcp_as(server.url, "alice", alice))
