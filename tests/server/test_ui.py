"""The review UI without a browser: sign-in, escaping of everything user-written, CSRF, cookies,
the entity picture. (The click-through tests in a real browser are in test_browser.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from learning_machines._sync import run_sync
from learning_machines.server import Gateway, create_app

from ._support import KEYS, keyring, make_machine, principal, proposal_id, seed_sync, sqlite

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[TestClient, Gateway]]:
    machine = make_machine(sqlite(tmp_path))
    app = create_app(machine, keys=keyring())
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, app.state.gateway
    machine.close()


def sign_in(client: TestClient, name: str) -> str:
    """Sign in with ``name``'s key; returns the session's CSRF token."""
    page = client.post("/ui/login", data={"key": KEYS[name]}, follow_redirects=True)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


async def _hostile(gateway: Gateway) -> str:
    """Alice's memory, every field written by an attacker; returns a pending proposal id."""
    me = principal("alice")
    turn = await gateway.abegin(me, XSS, session_id="s")
    profile = proposal_id(await turn.tools.acall("update_user_profile", {"name": XSS}))
    knowledge = proposal_id(
        await turn.tools.acall("save_learning", {"title": XSS, "learning": XSS})
    )
    await turn.tools.acall("save_entity", {"name": XSS, "description": XSS})
    await turn.tools.acall(
        "save_entity_relation", {"subject": XSS, "relation": XSS, "object": "Acme"}
    )
    await turn.tools.acall("save_entity_fact", {"entity": XSS, "fact": XSS})
    await gateway.afinish(me, turn.context.turn_id, [{"role": "user", "content": XSS}])
    await gateway.adecide(principal("carol"), profile, decision="approve", note=XSS)
    await gateway.adecide(me, knowledge, decision="approve")
    later = await gateway.abegin(me, "again", session_id="s")
    pending = proposal_id(await later.tools.acall("save_learning", {"title": XSS, "learning": XSS}))
    await gateway.machine.await_idle()
    return pending


def test_everything_user_written_is_escaped_on_every_page(ui: tuple[TestClient, Gateway]) -> None:
    client, gateway = ui
    run_sync(_hostile(gateway))
    sign_in(client, "carol")
    user = client.get("/ui/users/alice").text
    pages = [user, client.get("/ui/proposals?status=all").text]
    pages += [
        client.get(url).text for url in set(re.findall(r'href="(/ui/users/alice/[^"]+)"', user))
    ]
    assert len(pages) > 6
    for html in pages:
        assert "<script>alert" not in html
        assert "<img src=x" not in html
    joined = "\n".join(pages)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in joined  # shown, as text
    assert "<svg" in joined  # the entity picture rendered, its labels escaped too


def test_a_hostile_user_id_in_the_url_is_escaped(ui: tuple[TestClient, Gateway]) -> None:
    client, _ = ui
    sign_in(client, "carol")
    page = client.get("/ui/users/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert page.status_code == 200
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_pages_allow_no_script_and_no_framing(ui: tuple[TestClient, Gateway]) -> None:
    client, _ = ui
    page = client.get("/ui/login")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # so no script runs, inline or not
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"


def test_without_a_session_pages_go_to_sign_in_and_a_bad_key_is_refused(
    ui: tuple[TestClient, Gateway],
) -> None:
    client, _ = ui
    assert client.get("/ui/proposals", follow_redirects=False).headers["location"] == "/ui/login"
    refused = client.post("/ui/login", data={"key": "lm_wrong"})
    assert refused.status_code == 401
    assert "not known" in refused.text
    assert "lm_wrong" not in refused.text


def test_the_session_cookie_is_httponly_strict_and_holds_no_key(
    ui: tuple[TestClient, Gateway],
) -> None:
    client, _ = ui
    signed = client.post("/ui/login", data={"key": KEYS["carol"]}, follow_redirects=False)
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/ui" in cookie
    assert KEYS["carol"] not in cookie


def test_form_posts_need_the_sessions_csrf_token_and_this_origin(
    ui: tuple[TestClient, Gateway],
) -> None:
    client, gateway = ui
    pending = run_sync(_hostile(gateway))
    csrf = sign_in(client, "carol")
    url = f"/ui/proposals/{pending}/approve"
    assert client.post(url, data={}).status_code == 403
    assert client.post(url, data={"csrf": "forged"}).status_code == 403
    cross = client.post(url, data={"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert run_sync(gateway.aproposal(principal("carol"), pending)).status == "pending"
    done = client.post(url, data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    decided = run_sync(gateway.aproposal(principal("carol"), pending))
    assert decided.status == "approved"
    assert decided.decided_by == "carol"


def test_signing_out_ends_the_session(ui: tuple[TestClient, Gateway]) -> None:
    client, _ = ui
    csrf = sign_in(client, "carol")
    cookie = client.cookies.get("lm_session")
    client.post("/ui/logout", data={"csrf": csrf})
    client.cookies.set("lm_session", cookie or "", path="/ui")
    assert client.get("/ui/proposals", follow_redirects=False).status_code == 303


def test_a_user_cannot_approve_their_own_hitl_proposal_in_the_ui(
    ui: tuple[TestClient, Gateway],
) -> None:
    client, gateway = ui
    seeded = seed_sync(gateway, "alice", "otter")
    hitl = seeded.pending_proposals[0]
    csrf = sign_in(client, "alice")
    page = client.post(f"/ui/proposals/{hitl}/approve", data={"csrf": csrf})
    assert page.status_code == 403
    assert "needs human review" in page.text
    assert run_sync(gateway.aproposal(principal("alice"), hitl)).status == "pending"


def test_the_entity_page_draws_its_relationships(ui: tuple[TestClient, Gateway]) -> None:
    client, gateway = ui
    seeded = seed_sync(gateway, "alice", "otter")
    sign_in(client, "alice")
    pages = [client.get(f"/ui/users/alice/entities/{e}").text for e in seeded.entity_ids]
    labs = next(p for p in pages if "<h1>otter Labs" in p)
    svg = labs[labs.index("<svg") : labs.index("</svg>")]
    assert svg.count("<circle") == 2
    assert "is CEO of" in svg
    assert "otter Ceo" in svg
    assert "launched otter v2" in labs
    assert "uses otterDB" in labs
